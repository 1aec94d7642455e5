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
def own_roots():
    """Roots made by make_root(): their daemons are killed even when a test fails."""
    made = []
    yield made
    for r in made:
        if r.daemon and r.daemon.poll() is None:
            r.stop(signal.SIGKILL)


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if sh("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt), check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    sh("umount", "-l", str(mnt), check=False)


def make_root(path, made, review="true"):
    r = Root(path)
    made.append(r)
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
def test_disk_full_holds_work_and_resumes_when_space_is_freed(tmpfs, own_roots):
    r = make_root(tmpfs / "root", own_roots)
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


# ------------------------------------------------------------ tools missing or crashing

def fake_bin(tmp_path, crash=(), drop=()):
    """A PATH folder: ffmpeg, ffprobe and espeak-ng linked in, those in
    `drop` left out, those in `crash` replaced by a program that dies of
    SIGSEGV after writing a line to stderr."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for tool in ("ffmpeg", "ffprobe", "espeak-ng"):
        if tool in drop:
            continue
        if tool in crash:
            (d / tool).write_text("#!/bin/sh\necho \"$0: simulated crash\" >&2\nkill -SEGV $$\n")
            (d / tool).chmod(0o755)
        else:
            os.symlink(shutil.which(tool), d / tool)
    return str(d)


def drain_with(root, path_dir, timeout=240):
    env = dict(os.environ, PATH=path_dir)
    with open(root.log, "a") as log:
        p = subprocess.run([BIN, "-C", str(root.path), "run", "--drain"], stdout=log, stderr=log,
                           env=env, timeout=timeout)
    return p.returncode


@pytest.mark.parametrize("crash,drop,want", [
    ((), ("ffmpeg",), "ffmpeg is not installed or not in PATH"),
    (("ffmpeg",), (), "ffmpeg"),
    (("espeak-ng",), (), "espeak-ng"),
])
def test_missing_or_crashing_media_tool_fails_the_stage_clearly(root, tmp_path, crash, drop, want):
    root.drop(GOOD, "tool.json")
    rc = drain_with(root, fake_bin(tmp_path, crash, drop))
    assert rc == 0, root.log.read_text()[-2000:]
    ep = root.q("SELECT id, status, stage FROM episodes")[0]
    assert ep["status"] == "failed", ep
    shown = root.show(ep["id"])
    text = json.dumps(shown)
    assert want in text, text[:3000]
    if crash:
        assert "signal" in text or "crash" in text, text[:3000]
    # the reason is beside the ticket in spool/failed
    notes = [p for p in (root.path / "spool/failed").iterdir() if p.suffix]
    assert notes and want in notes[0].read_text()


# ------------------------------------------------------------ database locked

def test_database_locked_by_another_process_then_released(root):
    """An sqlite3 shell holds BEGIN EXCLUSIVE longer than the busy timeout
    (ACOG_TEST_BUSY_MS in test builds): ideas wait in incoming/ with the
    reason logged, and are ingested by the daemon's own retry once the lock
    goes, with no new event."""
    os.environ["ACOG_TEST_BUSY_MS"] = "300"
    try:
        root.start()
    finally:
        del os.environ["ACOG_TEST_BUSY_MS"]
    shell = subprocess.Popen(["sqlite3", str(root.path / "acog.db")], stdin=subprocess.PIPE, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        shell.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        shell.stdin.flush()
        assert shell.stdout.readline().strip() == "locked"
        for i in range(3):
            root.drop(dict(GOOD, topic=f"Locked out {i}"), f"locked{i}.json")
        wait_or_explain(root, lambda: "daemon.retry_later" in root.log.read_text(), what="the lock noticed")
        assert "locked" in root.log.read_text()
        time.sleep(1)
        assert len(root.spool("incoming")) == 3 and root.spool("rejected") == []
    finally:
        shell.stdin.write("COMMIT;\n.quit\n")
        shell.stdin.close()
        shell.wait(timeout=10)
    wait_or_explain(root, lambda: len(root.q("SELECT id FROM episodes WHERE ingest_done = 1")) == 3,
                    what="the 3 ideas ingested after the lock went", timeout=30)
    assert root.spool("incoming") == []
    root.stop(signal.SIGKILL)
    assert integrity(root) == "ok"


# ------------------------------------------------------------ inotify queue overflow

@ROOT_ONLY
def test_inotify_overflow_rescan_misses_nothing(root):
    knob = Path("/proc/sys/fs/inotify/max_queued_events")
    old = knob.read_text()
    try:
        knob.write_text("16\n")
        root.start()           # the limit applies to inotify instances made from now on
        os.kill(root.daemon.pid, signal.SIGSTOP)
        try:
            names = [root.drop(dict(GOOD, topic=f"Flood {i}"), f"flood{i:03d}.json") for i in range(60)]
        finally:
            os.kill(root.daemon.pid, signal.SIGCONT)
    finally:
        knob.write_text(old)
    wait_or_explain(root, lambda: len(root.q("SELECT id FROM episodes WHERE ingest_done = 1")) == 60,
                    what="all 60 ideas ingested", timeout=60)
    assert sorted(e["source_name"] for e in root.q("SELECT source_name FROM episodes")) == sorted(names)
    assert "inotify.overflow" in root.log.read_text(), "the queue never overflowed: the test proved nothing"
    assert root.spool("incoming") == []
    root.stop(signal.SIGKILL)


# ------------------------------------------------------------ files changing under the reader

def test_files_vanishing_growing_and_replaced_while_ingested(root):
    """Producers misbehaving as fast as they can: files renamed in and
    removed at once, replaced by rename, appended to after the drop.  The
    daemon survives; whatever it read ends as one episode or one rejection
    with its reason; nothing stays behind in incoming/."""
    root.start()
    inc = root.path / "spool/incoming"
    for i in range(25):
        n = root.drop(dict(GOOD, topic=f"Vanish {i}"), f"vanish{i}.json")
        try:
            os.unlink(inc / n)
        except FileNotFoundError:
            pass
        root.drop(dict(GOOD, topic=f"Replaced A {i}"), f"replace{i}.json")
        root.drop(dict(GOOD, topic=f"Replaced B {i}"), f"replace{i}.json")
        n = root.drop(dict(GOOD, topic=f"Grow {i}"), f"grow{i}.json")
        try:
            with open(inc / n, "ab") as f:
                f.write(b"   \n")
        except FileNotFoundError:
            pass
    def settled():
        return not root.spool("incoming")
    wait_or_explain(root, settled, what="incoming/ empty", timeout=60)
    time.sleep(0.5)
    assert root.daemon.poll() is None
    for p in (root.path / "spool/rejected").iterdir():
        if not p.name.endswith(".error"):
            assert (p.parent / (p.name + ".error")).exists(), p
    titles = [e["title"] for e in root.q("SELECT title FROM episodes")]
    assert len(titles) == len(set(titles))
    # every replace<i>.json ended as B (or A then B): B is never lost
    for i in range(25):
        assert f"Replaced B {i}" in titles or (root.path / f"spool/rejected/replace{i}.json").exists()
    root.stop(signal.SIGKILL)
    assert integrity(root) == "ok"


# ------------------------------------------------------------ read-only root

@ROOT_ONLY
def test_read_only_root(tmp_path, own_roots):
    """The root seen through a read-only bind mount: the daemon refuses to
    start with the reason and the path, and touches nothing; writable again,
    it takes the idea that waited.  (A live switch to read-only is refused by
    the kernel, EBUSY, while the daemon holds the database open for writing.)"""
    r = make_root(tmp_path / "root", own_roots)
    r.drop(dict(GOOD, topic="Dropped before the root went read-only"), "ro.json")
    ro = tmp_path / "ro"
    ro.mkdir()
    if sh("mount", "--bind", str(r.path), str(ro), check=False).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        sh("mount", "-o", "remount,bind,ro", str(ro))
        before = sorted(str(p.relative_to(r.path)) for p in r.path.rglob("*"))
        p = subprocess.run([BIN, "-C", str(ro), "run", "--drain"], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0
        assert "read-only" in p.stderr.lower(), p.stderr[-2000:]
        assert str(ro) in p.stderr, p.stderr[-2000:]
        assert "Sanitizer" not in p.stderr
        assert sorted(str(p.relative_to(r.path)) for p in r.path.rglob("*")) == before
    finally:
        sh("umount", str(ro), check=False)
    r.start()
    wait_or_explain(r, lambda: r.q("SELECT id FROM episodes WHERE ingest_done = 1"), what="ingested after rw")
    r.stop(signal.SIGKILL)
    assert integrity(r) == "ok"
