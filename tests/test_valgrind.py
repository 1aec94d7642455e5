"""The happy path under valgrind memcheck (issue 9, item 6): one idea through
the offline pipeline with the plain build (./acog-batch, not the ASan one:
the two instrumentations do not mix), the daemon and every stage child it
starts traced (ffmpeg, ffprobe and espeak-ng are not ours and are skipped).
Every process's log must show no invalid access and nothing definitely
lost."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, Root, run

PLAIN = REPO / "acog-batch"
SKIP = "*/ffmpeg,*/ffprobe,*/espeak*,*/fc-match,*/flite,*/festival,*/sh,*/dash,*/bash"


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed (contrib/install-deps.sh)")
def test_happy_path_under_valgrind(tmp_path):
    assert PLAIN.exists(), "build ./acog-batch first (make all)"
    r = Root(tmp_path / "root")
    subprocess.run([str(PLAIN), "-C", str(r.path), "init"], check=True, capture_output=True)
    r.channel("v", review="false")
    r.drop(r.idea("Valgrind", channel="v"), "v.json")
    logs = tmp_path / "vg"
    logs.mkdir()
    cmd = ["valgrind", "--tool=memcheck", "--trace-children=yes", f"--trace-children-skip={SKIP}",
           "--child-silent-after-fork=yes", "--leak-check=full", "--show-leak-kinds=definite",
           "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--track-fds=no",
           f"--log-file={logs}/vg.%p.log", str(PLAIN), "-C", str(r.path), "run", "--drain", "-j", "2"]
    env = dict(os.environ, ACOG_STAGE_EXE=str(PLAIN))   # under valgrind /proc/self/exe is valgrind's
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:] + _errors(logs)
    eps = r.q("SELECT status FROM episodes")
    assert [e["status"] for e in eps] == ["published"], eps

    files = sorted(logs.glob("vg.*.log"))
    ours = [f for f in files if "acog-batch" in f.read_text()]
    # the daemon, and at least one child per stage kind (__stage runs every stage)
    assert len(ours) >= 8, [f.name for f in files]
    bad = _errors(logs)
    assert not bad, bad
    for f in ours:
        text = f.read_text()
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        assert m and m.group(1) == "0", f"{f.name}:\n{text[-4000:]}"
        lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
        assert lost is None or lost.group(1) == "0", f"{f.name}:\n{text[-4000:]}"


def _errors(logs: Path):
    out = []
    for f in sorted(logs.glob("vg.*.log")):
        t = f.read_text()
        if re.search(r"Invalid (read|write|free)|uninitialised|definitely lost: [1-9]|"
                     r"ERROR SUMMARY: [1-9]", t):
            out.append(f"--- {f.name}\n{t[-4000:]}")
    return "\n".join(out)
