"""Replays every fuzz seed and every kept crash input (tests/fuzz/seeds/<t>/,
tests/fuzz/regress/<t>/) through the fuzz targets linked with the ASan+UBSan
objects and tests/fuzz/replay.c (`make fuzz-replay`, part of `make test`):
a crash once found and fixed in src/ stays fixed.  The fuzzing itself is
`make fuzz SECONDS=60` (contrib/test.sh runs it)."""
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "tests" / "fuzz"
TARGETS = re.search(r"^FUZZ_TARGETS = (.*)$", (REPO / "Makefile").read_text(), re.M).group(1).split()


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_inputs_replay_clean(target):
    binary = REPO / "build" / "fuzz" / f"replay_{target}"
    assert binary.exists(), "run `make fuzz-replay` first (make test does)"
    inputs = sorted(p for d in ("seeds", "regress") for p in (FUZZ / d / target).glob("*") if p.is_file())
    assert any("seeds" in str(p) for p in inputs), f"no seeds in tests/fuzz/seeds/{target}"
    p = subprocess.run([str(binary)] + [str(i) for i in inputs], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr[-6000:]
    assert f"replayed {len(inputs)} inputs" in p.stdout
    assert "ERROR: AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr[-6000:]


def test_every_target_has_a_source_and_seeds():
    for t in TARGETS:
        assert (FUZZ / f"fuzz_{t}.c").exists()
        assert list((FUZZ / "seeds" / t).iterdir())
