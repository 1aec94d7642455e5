"""Backup and restore (issue 9, item 8): `backup DEST` while the daemon works,
restored on another path, carries on with nothing lost and nothing paid for
twice; a plain `rsync -a` of a live root, taken over with `restore`, loses no
idea either."""
import json
import os
import re
import shutil
import sqlite3
import signal
import subprocess

import pytest

from cloudkit import timeline_segments
from conftest import Root, run, wait_for




def _kill_tree(root):
    """The machine is gone: the daemon and its stage children, at once."""
    pid = root.daemon.pid
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    root.daemon.send_signal(signal.SIGKILL)
    for k in kids:
        try:
            os.kill(int(k), signal.SIGKILL)
        except ProcessLookupError:
            pass
    root.daemon.wait(30)
    root.daemon = None


def _avatar_ids(root, n_eps):
    """{episode: {seg-NN: id}} once every episode has stored all its avatar job ids."""
    try:
        rows = root.q("SELECT episode_id, key, value FROM provider_state WHERE stage = 'avatar'"
                      " AND key GLOB 'seg-[0-9][0-9]'")
        eps = root.q("SELECT id FROM episodes")
    except Exception:
        return None
    ids = {}
    for r in rows:
        ids.setdefault(r["episode_id"], {})[r["key"]] = r["value"]
    if len(eps) < n_eps or len(ids) < n_eps:
        return None
    for e in eps:
        d = root.path / "channels" / "c" / "episodes" / e["id"]
        try:
            want = [s for s in timeline_segments(d) if s["visual"] == "avatar"]
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if len(ids.get(e["id"], {})) != len(want):
            return None
    return ids


def _check_each_idea_once(r, topics):
    eps = r.q("SELECT id, title, status, state, ticket, last_error FROM episodes")
    assert sorted(e["title"] for e in eps) == sorted(topics), "every idea is exactly one episode"
    assert {e["status"] for e in eps} == {"published"}, eps
    tickets = r.tickets()
    assert all(tickets.get(e["ticket"]) == ["published"] for e in eps), tickets
    assert r.spool("incoming") == [] and r.spool("rejected") == []
    outbox = r.path / "channels" / "c" / "outbox"
    assert sorted(p.name for p in outbox.iterdir() if not p.name.startswith(".")) == sorted(e["id"] for e in eps)
    for e in eps:
        done = r.q("SELECT stage, COUNT(*) c FROM jobs WHERE episode_id = ? AND status = 'completed'"
                   " GROUP BY stage", e["id"])
        assert all(x["c"] == 1 for x in done), done
    return eps


def test_backup_while_running_restores_elsewhere_without_paying_twice(cloud, root, tmp_path):
    c = cloud
    c.fake("heygen", "--polls", "25")   # jobs still rendering when the backup is taken
    c.fake("runway", "--polls", "3")
    c.acog_yaml()
    c.channel("c", cloud=("avatar", "broll"))
    names = [f"Backup {i}" for i in range(2)]
    for i, t in enumerate(names):
        root.drop(root.idea(t, channel="c"), f"b{i}.json")
    c.start("-j", "2")
    ids = wait_for(lambda: _avatar_ids(root, 2), timeout=180, what="every avatar job submitted")

    dest = tmp_path / "backup"
    p = run(["backup", str(dest)], root.path)
    assert "consistent copy" in p.stdout and "under the database lock" in p.stdout, p.stdout
    _kill_tree(root)            # the original is lost right after its backup
    assert not (dest / ".acog-backup-incomplete").exists()
    assert not (dest / "acog.lock").exists() and not (dest / "acog.db-wal").exists()
    jobs = c["heygen"].state("heygen_jobs.json")
    assert any(j["status"] != "completed" for j in jobs.values()), "backup taken too late: nothing in flight"

    # a second backup into the same folder copies only what changed since (logs, mostly)
    p = run(["backup", str(dest)], root.path)
    copied, same = map(int, re.search(r"(\d+) file\(s\) copied .*, (\d+) unchanged", p.stdout).groups())
    assert same > copied, p.stdout

    new = Root(tmp_path / "elsewhere")
    p = run(["restore", str(dest)], new.path)
    assert "reconciled" in p.stdout, p.stdout
    assert new.q("SELECT COUNT(*) n FROM episodes WHERE state = 'running'")[0]["n"] == 0
    c.root = new
    c.drain("-j", "2")
    eps = _check_each_idea_once(new, names)
    # the copy polled the jobs the original had paid for: no second submission
    n_avatar = n_broll = 0
    for e in eps:
        segs = timeline_segments(new.path / "channels" / "c" / "episodes" / e["id"])
        n_avatar += sum(s["visual"] == "avatar" for s in segs)
        n_broll += sum(s["visual"] == "broll" for s in segs)
        stored = {r["key"]: r["value"] for r in new.q(
            "SELECT key, value FROM provider_state WHERE episode_id = ? AND stage = 'avatar'"
            " AND key GLOB 'seg-[0-9][0-9]'", e["id"])}
        assert stored == ids[e["id"]]
    assert c["heygen"].submissions().get("heygen_generate") == n_avatar, c["heygen"].submissions()
    assert c["runway"].submissions().get("runway_create") == n_broll, c["runway"].submissions()
    # nothing in the copy points at the old root
    assert str(root.path) not in (new.path / "spool" / "published" / eps[0]["ticket"]).read_text()


def test_restore_refuses_unfinished_backup_live_source_and_existing_root(root, tmp_path):
    dest = tmp_path / "b"
    run(["backup", str(dest)], root.path)
    (dest / ".acog-backup-incomplete").write_text("x")
    p = run(["restore", str(dest)], tmp_path / "n1", check=False)
    assert p.returncode != 0 and "unfinished backup" in p.stderr
    os.unlink(dest / ".acog-backup-incomplete")
    p = run(["restore", str(dest)], root.path, check=False)     # a root that is in use
    assert p.returncode != 0 and "not empty" in p.stderr, p.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("a person's file")
    p = run(["restore", str(dest)], other, check=False)
    assert p.returncode != 0 and "not empty" in p.stderr, p.stderr
    # a backup removes what the root lacks: never into a folder that is not an earlier backup
    p = run(["backup", str(other)], root.path, check=False)
    assert p.returncode != 0 and "holds no acog-batch backup" in p.stderr, p.stderr
    assert (other / "mine.txt").read_text() == "a person's file"
    p = run(["backup", str(root.path / "spool" / "x")], root.path, check=False)
    assert p.returncode != 0 and "overlaps" in p.stderr
    root.start()
    p = run(["restore", str(root.path)], tmp_path / "n2", check=False)
    assert p.returncode != 0 and "a daemon is running" in p.stderr, p.stderr
    root.stop()


GATED = ("id: {id}\nname: Gated\npersona: {{name: Tess}}\nstyle_guide: {{tone: plain}}\n"
         "gates: {{script_review: true, review: true}}\n")


def _gated(root, cid):
    d = root.path / "channels" / cid
    d.mkdir()
    (d / "channel.yaml").write_text(GATED.format(id=cid))


def _each_idea_awaiting_once(r, topics):
    eps = r.q("SELECT title, state, gate_pending, ticket, last_error FROM episodes")
    assert sorted(e["title"] for e in eps) == sorted(topics), "every idea is exactly one episode"
    assert {(e["state"], e["gate_pending"]) for e in eps} == {("awaiting", "script_review")}, eps
    tickets = r.tickets()
    assert all(tickets.get(e["ticket"]) == ["script_review"] for e in eps), tickets
    assert len(tickets) == len(eps) and r.spool("incoming") == [] and r.spool("rejected") == []


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed (contrib/install-deps.sh)")
def test_rsync_of_a_live_root_then_restore_loses_nothing(root, tmp_path):
    _gated(root, "g")       # planning and scripting, then a gate: a batch of many short episodes
    topics = [f"Rsync {i}" for i in range(12)]
    for i, t in enumerate(topics[:8]):
        root.drop(root.idea(t, channel="g"), f"r{i}.json")
    root.start("-j", "2")
    wait_for(lambda: root.q("SELECT COUNT(*) n FROM episodes WHERE state = 'running'")[0]["n"] > 0,
             timeout=60, what="a stage running")
    for i, t in enumerate(topics[8:]):
        root.drop(root.idea(t, channel="g"), f"late{i}.json")   # arriving during the copy
    copy = tmp_path / "copy"
    p = subprocess.run(["rsync", "-a", f"{root.path}/", f"{copy}/"], capture_output=True, text=True)
    assert p.returncode in (0, 24), p.stderr      # 24: files vanished meanwhile (a ticket moved on)
    root.stop(signal.SIGKILL)

    new = Root(copy)
    # what the copy holds of each idea: its row, its file in incoming/, or its idea.json.
    # (rsync can miss an idea whose ticket moved against its scan order after it copied the
    # database: then the copy holds nothing of it, and only `backup` prevents that)
    held = {json.loads(f.read_text())["topic"] for f in copy.glob("channels/g/episodes/*/idea.json")}
    held |= {json.loads(f.read_text())["topic"] for f in (copy / "spool" / "incoming").glob("*.json")}
    p = run(["restore"], new.path, check=False)
    if p.returncode != 0:
        # the one way a live copy can fail: the database torn by a checkpoint mid-copy
        assert "is damaged" in p.stderr and "acog-batch backup" in p.stderr, p.stderr
        pytest.skip("rsync caught a checkpoint mid-copy; restore refused, as documented")
    assert "reconciled" in p.stdout, p.stdout
    new.drain("-j", "2")
    # rsync lists folders before it copies the database: an episode whose finished stage's
    # files the copy missed fails at the next stage with the reason, and `retry` resumes it
    for e in new.q("SELECT ticket, last_error FROM episodes WHERE state = 'failed'"):
        assert e["last_error"], e
        run(["retry", e["ticket"], "--from", "planning"], new.path)
    new.drain("-j", "2")
    held |= {e["title"] for e in new.q("SELECT title FROM episodes")}
    assert set(topics[:8]) <= held or len(held) >= len(topics) - 2, held
    _each_idea_awaiting_once(new, sorted(held))


def test_restore_queues_again_an_idea_the_database_copy_never_saw(root, tmp_path):
    """A copy whose database is older than its spool (what rsync of a live root
    can give): the ticket of an idea ingested after the database was copied has
    no episode; restore puts its idea.json back into incoming/, once."""
    _gated(root, "g")
    root.drop(root.idea("Seen by the copy", channel="g"), "a.json")
    root.drain()
    old_db = tmp_path / "old.db"
    src = sqlite3.connect(root.path / "acog.db")
    dst = sqlite3.connect(old_db)
    src.backup(dst)
    src.close(), dst.close()
    root.drop(root.idea("Ingested after the copy", channel="g"), "b.json")
    root.drain()
    [b] = root.q("SELECT id, ticket FROM episodes WHERE title = 'Ingested after the copy'")

    copy = tmp_path / "copy"
    shutil.copytree(root.path, copy, symlinks=True)
    for n in ("acog.db-wal", "acog.db-shm"):
        (copy / n).unlink(missing_ok=True)
    shutil.copy(old_db, copy / "acog.db")
    new = Root(copy)
    p = run(["restore"], copy)
    assert f"spool/script_review/{b['ticket']} has no episode" in p.stdout, p.stdout
    assert new.spool("incoming") == [f"{b['ticket']}.restored.json"]
    new.drain()
    eps = new.q("SELECT title, state, gate_pending FROM episodes ORDER BY title")
    assert [(e["title"], e["state"], e["gate_pending"]) for e in eps] == [
        ("Ingested after the copy", "awaiting", "script_review"),
        ("Seen by the copy", "awaiting", "script_review")], eps
    assert new.spool("incoming") == [] and new.spool("rejected") == []
    assert b["ticket"] not in new.tickets()
