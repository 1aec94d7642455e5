"""Hostile input (issue 9, item 4): the idea corpus in tests/corpus/ideas/
(EXPECTED.tsv: file -> substring of its .error), plus what only the file
system can make (symlinks, FIFOs, sockets, folders, zero-byte and oversized
files, a file still being written), all dropped while the daemon runs.
Each is rejected with its reason, the user's bytes land in spool/rejected/
unchanged (same SHA-256), nothing is deleted, and a good idea dropped
alongside is still accepted.  Broken channel.yaml files (tests/corpus/
channels/) are each reported precisely while the good channel keeps working."""
import hashlib
import json
import os
import socket
import stat
import time
from pathlib import Path

from conftest import wait_for

CORPUS = Path(__file__).resolve().parent / "corpus"
GOOD = {"channel": "t", "topic": "Tides", "target_length_minutes": 0.3}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def expected_ideas():
    rows = []
    for line in (CORPUS / "ideas" / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, want = line.split("\t", 1)
            rows.append((name, want))
    return rows


def rejected(root, name):
    return root.path / "spool/rejected" / name


def done(root, name):
    """The reason is written first, then the file moved beside it."""
    return rejected(root, name + ".error").exists() and os.path.lexists(rejected(root, name))


def test_corpus_has_at_least_60_ideas():
    rows = expected_ideas()
    assert len(rows) >= 60
    on_disk = {p.name for p in (CORPUS / "ideas").iterdir() if p.name != "EXPECTED.tsv"}
    assert on_disk == {n for n, _ in rows}, "every corpus file has exactly one expectation"


def test_idea_corpus_rejected_with_reasons_bytes_kept(root, tmp_path):
    rows = expected_ideas()
    root.start()
    hashes = {}
    for name, _ in rows:
        data = (CORPUS / "ideas" / name).read_bytes()
        hashes[name] = sha(data)
        root.drop(data, name)
    good = root.drop(GOOD, "good-among-bad.json")
    missing = lambda: [n for n, _ in rows if not done(root, n)]
    try:
        wait_for(lambda: not missing(), timeout=30, what="every corpus idea rejected")
    except AssertionError:
        raise AssertionError(f"not rejected: {missing()}; episodes: {root.q('SELECT source_name FROM episodes')}")
    bad = []
    for name, want in rows:
        err = rejected(root, name + ".error").read_text()
        if f"spool/incoming/{name}" not in err or want not in err:
            bad.append(f"{name}: {err.strip()!r} lacks {want!r}")
        kept = rejected(root, name).read_bytes()
        if sha(kept) != hashes[name]:
            bad.append(f"{name}: the rejected file is not the user's bytes")
    assert not bad, "\n".join(bad)
    wait_for(lambda: root.q("SELECT id FROM episodes WHERE source_name = ? AND ingest_done = 1", good),
             what="the good idea accepted alongside")
    assert len(root.q("SELECT id FROM episodes")) == 1
    assert root.spool("incoming") == []
    assert root.daemon.poll() is None
    assert root.stop() == 0


def _special_files(root, tmp_path):
    """Makes each file-system oddity aside in spool/tmp, then renames it into
    incoming (an IN_MOVED_TO, as a careful producer's drop), except the ones
    created right in incoming.  Returns {name: (expected reason, sha or None)}."""
    inc, aside = root.path / "spool/incoming", root.path / "spool/tmp"
    out = {}
    target = tmp_path / "outside.json"
    target.write_text(json.dumps(dict(GOOD, topic="Outside")))
    os.symlink(target, aside / "link.json")
    out["link.json"] = ("symbolic link", None)
    os.symlink("/nonexistent/idea.json", aside / "dangling.json")
    out["dangling.json"] = ("symbolic link", None)
    os.symlink("../../acog.db", aside / "dblink.json")
    out["dblink.json"] = ("symbolic link", None)
    os.mkfifo(aside / "fifo.json")
    out["fifo.json"] = ("not a regular file", None)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(aside / "sock.json"))
    s.close()
    out["sock.json"] = ("not a regular file", None)
    (aside / "adir.json").mkdir()
    (aside / "adir.json" / "inner.json").write_text(json.dumps(GOOD))
    out["adir.json"] = ("not a regular file", None)
    (aside / "zero.json").write_bytes(b"")
    out["zero.json"] = ("empty", sha(b""))
    big = b'{"channel": "t", "topic": "' + b"x" * (1 << 20) + b'"}'
    (aside / "big.json").write_bytes(big)
    out["big.json"] = ("at most 1 MiB", sha(big))
    sparse = aside / "sparse.json"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)   # a 1 GiB hole: never read into memory
    out["sparse.json"] = ("at most 1 MiB", None)
    for name in out:
        os.rename(aside / name, inc / name)
    return out


def test_special_files_rejected_while_running(root, tmp_path):
    root.start()
    specials = _special_files(root, tmp_path)
    good = root.drop(dict(GOOD, topic="Good beside specials"))
    wait_for(lambda: all(done(root, n) for n in specials), timeout=60,
             what="every special file rejected")
    for name, (want, digest) in specials.items():
        err = rejected(root, name + ".error").read_text()
        assert f"spool/incoming/{name}" in err and want in err, f"{name}: {err!r}"
        assert os.path.lexists(rejected(root, name)), f"{name} was not kept"
        if digest:
            assert sha(rejected(root, name).read_bytes()) == digest
    assert stat.S_ISFIFO(os.lstat(rejected(root, "fifo.json")).st_mode)
    assert stat.S_ISSOCK(os.lstat(rejected(root, "sock.json")).st_mode)
    assert (rejected(root, "adir.json") / "inner.json").exists(), "a folder dropped is kept whole"
    assert os.readlink(rejected(root, "dblink.json")) == "../../acog.db"
    assert (tmp_path / "outside.json").exists() and (root.path / "acog.db").exists()
    assert os.path.getsize(rejected(root, "sparse.json")) == 1 << 30
    wait_for(lambda: root.q("SELECT id FROM episodes WHERE source_name = ?", good), what="good idea accepted")
    assert root.daemon.poll() is None
    assert root.stop() == 0


def test_specials_created_in_place_are_found_by_the_start_up_scan(root, tmp_path):
    inc = root.path / "spool/incoming"
    os.mkfifo(inc / "fifo-in-place.json")
    os.symlink(tmp_path, inc / "dirlink.json")
    (inc / "dir-in-place").mkdir()
    root.start()
    for name, want in (("fifo-in-place.json", "not a regular file"), ("dirlink.json", "symbolic link"),
                       ("dir-in-place", "not a regular file")):
        wait_for(lambda: done(root, name), what=name)
        assert want in rejected(root, name + ".error").read_text()
    assert root.stop() == 0


def test_file_still_being_written_is_not_read_half_way(root):
    """A producer writing straight into incoming/ (no rename): the start-up
    scan must not read the half it sees; the close delivers the whole."""
    inc = root.path / "spool/incoming"
    data = json.dumps(dict(GOOD, topic="Written slowly", brief="b" * 5000)).encode()
    with open(inc / "slow.json", "wb") as f:
        f.write(data[:100])
        f.flush()
        root.start()
        time.sleep(0.5)
        assert not rejected(root, "slow.json.error").exists(), rejected(root, "slow.json.error").read_text()
        assert root.q("SELECT id FROM episodes") == []
        f.write(data[100:])
    wait_for(lambda: root.q("SELECT id FROM episodes WHERE source_name = 'slow.json' AND ingest_done = 1"),
             what="the finished file accepted")
    assert not rejected(root, "slow.json").exists()
    assert root.stop() == 0


# ------------------------------------------------------------ broken channel.yaml

def expected_channels():
    rows = []
    for line in (CORPUS / "channels" / "EXPECTED.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, *want = line.split("\t")
            rows.append((name[:-len(".yaml")], want))
    return rows


def test_broken_channels_reported_precisely_while_others_run(root):
    rows = expected_channels()
    assert len(rows) >= 20
    for cid, _ in rows:
        d = root.path / "channels" / cid
        d.mkdir()
        (d / "channel.yaml").write_bytes((CORPUS / "channels" / f"{cid}.yaml").read_bytes())
    root.start()
    log = root.log.read_text()
    assert "config.channel_errors" in log
    for cid, _ in rows:
        root.drop({"channel": cid, "topic": "For a broken channel"}, f"to-{cid}.json")
    good = root.drop(dict(GOOD, topic="Good channel keeps running"))
    wait_for(lambda: all(done(root, f"to-{cid}.json") for cid, _ in rows), timeout=30,
             what="ideas for broken channels rejected")
    bad = []
    for cid, want in rows:
        err = rejected(root, f"to-{cid}.json.error").read_text()
        need = ["failed to load", f"channels/{cid}/channel.yaml"] + want
        missing = [w for w in need if w not in err]
        if missing:
            bad.append(f"{cid}: {err.strip()!r} lacks {missing}")
        if "sk-live" in err:
            bad.append(f"{cid}: a value that may be a key is repeated: {err.strip()!r}")
    assert not bad, "\n".join(bad)
    wait_for(lambda: root.q("SELECT id FROM episodes WHERE source_name = ?", good), what="good channel serves")
    assert root.daemon.poll() is None
    assert root.stop() == 0
