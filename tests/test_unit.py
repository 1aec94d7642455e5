"""Runs the C unit tests (TAP producers built by `make unit`)."""
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent / "unit"
BINS = sorted(UNIT.glob("*.bin"))


@pytest.mark.parametrize("binary", BINS, ids=[b.stem for b in BINS])
def test_unit(binary):
    p = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    failed = [l for l in p.stdout.splitlines() if l.startswith("not ok")]
    assert p.returncode == 0 and not failed, p.stdout + p.stderr
    assert "1.." in p.stdout


def test_unit_binaries_exist():
    assert len(BINS) >= 5, "run `make unit` first"
