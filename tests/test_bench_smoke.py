"""`make bench-smoke`: the benchmark harness (tests/bench/bench.py) runs at a
tiny size and writes its table; the figures themselves are not checked."""
import subprocess
import sys

from conftest import BIN, REPO


def test_bench_harness_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "results.md"
    p = subprocess.run([sys.executable, str(REPO / "tests/bench/bench.py"), "--bin", BIN, "--work",
                        str(tmp_path / "work"), "--out", str(out), "--episodes", "200", "--burst", "20",
                        "--batch", "2", "--batch-delay", "0.2", "--pickups", "5", "--reps", "1", "--idle-seconds", "1", "--skip", "assembly"],
                       capture_output=True, text=True, timeout=170)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    table = out.read_text()
    for metric in ("pickup p99, empty root", "burst of 20 ideas", "20 ideas waiting at start-up",
                   "daemon CPU per stage transition", "batch of 2 episodes", "static binary size",
                   "daemon start-up, 200 episodes", "`status --json`", "`show` peak RSS",
                   "idle system calls", "load average"):
        assert metric in table, f"{metric!r} missing from the table:\n{table}"
