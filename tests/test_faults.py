"""Environment faults (issue 9, item 3), as root where the kernel allows:
the root on a small tmpfs that fills up, a read-only root, ffmpeg and
espeak-ng missing or crashing, the database locked by another process, the
inotify queue overflowing, files that vanish, grow or are replaced while
being read, and a clock jump.  Each test says what must survive."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, FAST_CHANNEL, Root, run, wait_for

GOOD = {"channel": "t", "topic": "Tides", "target_length_minutes": 0.3}
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, /proc/sys)")


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if sh("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt), check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    sh("umount", "-l", str(mnt), check=False)


def make_root(path, review="true"):
    r = Root(path)
    run(["init"], r.path)
    r.channel("t", review=review)
    return r


def fill(mnt):
    """Fills the file system to the last byte (unbuffered writes)."""
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def free(mnt):
    os.unlink(mnt / "filler")


def integrity(r):
    con = sqlite3.connect(str(r.path / "acog.db"), timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def wait_or_explain(r, cond, what, timeout=60):
    try:
        return wait_for(cond, timeout=timeout, what=what)
    except AssertionError as e:
        lines = [l for l in r.log.read_text().splitlines() if '"info"' not in l]
        raise AssertionError(f"{e}\nepisodes: {episodes(r)}\njobs: {r.q('SELECT stage, status FROM jobs')}"
                             f"\nlog (not info):\n" + "\n".join(lines[-25:])) from None


def episodes(r, where="1"):
    return r.q(f"SELECT id, title, stage, status FROM episodes WHERE {where}")


@ROOT_ONLY
def test_disk_full_holds_work_and_resumes_when_space_is_freed(tmpfs):
    r = make_root(tmpfs / "root")
    r.start()
    # one idea in flight, one written aside before the disk fills
    r.drop(dict(GOOD, topic="In flight"), "a.json")
    wait_for(lambda: episodes(r), what="first episode")
    aside = r.path / "spool/tmp/b.json.part"
    aside.write_text(json.dumps(dict(GOOD, topic="Arrives on a full disk")))
    fill(tmpfs)
    os.rename(aside, r.path / "spool/incoming/b.json")
    wait_for(lambda: "daemon.retry_later" in r.log.read_text(), timeout=60, what="the full disk noticed")
    time.sleep(2)
    log = r.log.read_text()
    assert "full" in log.lower(), log[-3000:]
    assert r.daemon.poll() is None, "the daemon must survive a full disk"
    # the idea is neither lost nor rejected
    assert (r.path / "spool/incoming/b.json").exists() or any(e["title"] == "Arrives on a full disk"
                                                              for e in episodes(r))
    assert not (r.path / "spool/rejected/b.json").exists()
    free(tmpfs)
    # resumes by itself: no signal, no new file, only the daemon's own retry timer
    later = "stage IN ('audio', 'avatar', 'broll', 'assembly', 'review')"
    wait_or_explain(r, lambda: len(episodes(r, later)) == 2, timeout=90,
                    what="both episodes move on after space is freed")
    assert not (r.path / "spool/incoming/b.json").exists()
    assert r.q("SELECT count(*) AS n FROM episodes WHERE status = 'failed'")[0]["n"] == 0
    r.stop(signal.SIGKILL)
    assert integrity(r) == "ok"
