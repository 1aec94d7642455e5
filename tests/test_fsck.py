"""`acog-batch fsck`: the invariant checker.  A root is made once (one
episode through the real pipeline, waiting at review; one failed at
planning, in failed/ with its .error note), copied per test, then broken on purpose in one way; fsck must
name the file and the fix, exit EX_DATAERR (65), and --repair must fix what
is safe to fix and nothing else."""
import json
import os
import shutil
import signal
import sqlite3

import pytest

from conftest import Root, run

EX_DATAERR = 65


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    r = Root(tmp_path_factory.mktemp("fsck-made") / "root")
    run(["init"], r.path)
    r.channel("t")
    # a channel whose planning fails at once: its episode is failed with a note, cheaply
    r.channel("f", extra="  planning: {name: command, argv: [/bin/sh, -c, 'exit 1']}\n")
    r.drop(r.idea("Kept at review"), "a.json")
    r.drop(r.idea("To fail", channel="f"), "b.json")
    r.drain()
    return r.path


@pytest.fixture
def root(made, tmp_path):
    dst = tmp_path / "root"
    shutil.copytree(made, dst, symlinks=True)
    r = Root(dst)
    yield r
    if r.daemon and r.daemon.poll() is None:
        r.stop(signal.SIGKILL)


def fsck(root, *args):
    return run(["fsck", *args], root.path, check=False)


def findings(root, *args):
    p = fsck(root, "--json", *args)
    out = json.loads(p.stdout)
    return p.returncode, out


def episode(root, source):
    [e] = root.q("SELECT id, ticket FROM episodes WHERE source_name = ?", source)
    return e


def test_clean_root_passes(root):
    p = fsck(root)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 problems" in p.stdout and "consistent" in p.stdout
    rc, out = findings(root)
    assert rc == 0 and out["consistent"] is True and out["problems"] == 0
    assert [f for f in out["findings"] if f["status"] == "open"] == []


def test_ticket_in_wrong_folder(root):
    t = episode(root, "a.json")["ticket"]
    os.rename(root.path / "spool/review" / t, root.path / "spool/planning" / t)
    p = fsck(root)
    assert p.returncode == EX_DATAERR, p.stdout
    assert f"spool/planning/{t}: ticket in the wrong folder" in p.stdout
    assert f"spool/review/{t}" in p.stdout and "--repair" in p.stdout
    assert root.tickets()[t] == ["planning"], "fsck without --repair changes nothing"
    p = fsck(root, "--repair")
    assert p.returncode == 0, p.stdout
    assert "repaired: " in p.stdout
    assert root.tickets()[t] == ["review"]
    assert fsck(root).returncode == 0


def asset_path(root, ep, name="final.mp4"):
    return root.episode_dir(ep["id"]) / name


def test_missing_asset(root):
    ep = episode(root, "a.json")
    f = asset_path(root, ep)
    data = f.read_bytes()
    f.unlink()
    rc, out = findings(root)
    assert rc == EX_DATAERR
    [m] = [x for x in out["findings"] if x["kind"] == "asset_missing"]
    assert m["file"].endswith(f"{ep['id']}/final.mp4") and m["status"] == "open"
    assert "is missing" in m["message"] and f"retry {ep['ticket']} --from assembly" in m["message"]
    assert fsck(root, "--repair").returncode == EX_DATAERR, "a lost asset is not something fsck can make"
    f.write_bytes(data)
    assert fsck(root).returncode == 0


def test_truncated_asset(root):
    ep = episode(root, "a.json")
    f = asset_path(root, ep)
    size = f.stat().st_size
    os.truncate(f, size // 2)
    p = fsck(root)
    assert p.returncode == EX_DATAERR
    assert f"final.mp4: {size // 2} bytes, but {size} were recorded (truncated or changed)" in p.stdout


def test_changed_asset_same_size(root):
    ep = episode(root, "a.json")
    f = asset_path(root, ep, "script.md") if asset_path(root, ep, "script.md").exists() else asset_path(root, ep)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    rc, out = findings(root)
    assert rc == EX_DATAERR
    assert [x["kind"] for x in out["findings"] if x["status"] == "open"] == ["asset_hash"]


def test_duplicate_ticket(root):
    t = episode(root, "a.json")["ticket"]
    shutil.copy(root.path / "spool/review" / t, root.path / "spool/published" / t)
    rc, out = findings(root)
    assert rc == EX_DATAERR
    [d] = [x for x in out["findings"] if x["status"] == "open"]
    assert d["kind"] == "ticket_duplicate" and f"spool/published/{t}: a second copy" in d["message"]
    rc, out = findings(root, "--repair")
    assert rc == 0 and out["repaired"] == 1
    assert root.tickets()[t] == ["review"]


def test_missing_reason_file(root):
    ep = episode(root, "b.json")
    note = root.path / "spool/failed" / (ep["ticket"] + ".error")
    assert note.exists()
    note.unlink()
    p = fsck(root)
    assert p.returncode == EX_DATAERR
    assert f"spool/failed/{ep['ticket']}.error: the note saying why episode {ep['id']} is failed is missing" \
        in p.stdout
    assert fsck(root, "--repair").returncode == 0
    assert "acog-batch retry" in note.read_text() and "planning" in note.read_text()
    assert fsck(root).returncode == 0


def test_missing_held_reason(root):
    ep = episode(root, "a.json")
    root.cli("cancel", ep["id"])
    note = root.path / "spool/held" / (ep["ticket"] + ".reason")
    note.unlink()
    p = fsck(root)
    assert p.returncode == EX_DATAERR and f"spool/held/{ep['ticket']}.reason: the note" in p.stdout
    assert fsck(root, "--repair").returncode == 0 and "cancelled" in note.read_text()


def test_other_kinds_and_safe_repairs(root):
    """An orphan ticket, a rejection without its note, a stray temporary,
    a stage completed twice, a cost row without a job."""
    (root.path / "spool/audio/stray-ticket-0000").write_text("{}")
    (root.path / "spool/rejected/bad.json").write_text("{not json")
    ep = episode(root, "a.json")
    tmp = root.episode_dir(ep["id"]) / ".final.mp4.999999999.tmp"
    tmp.write_bytes(b"x")
    os.utime(tmp, (1, 1))
    con = sqlite3.connect(root.path / "acog.db")
    with con:
        con.execute("INSERT INTO jobs (id, episode_id, stage, status, completed_at, created_at)"
                    " SELECT 'dup-job', episode_id, stage, 'completed', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM jobs WHERE status = 'completed'"
                    " AND stage = 'audio' AND episode_id = ?", (ep["id"],))
        con.execute("INSERT INTO cost_entries (id, provider, operation_type, cost_cents, cost_usd)"
                    " VALUES ('lost-cost', 'openai', 'chat', 1, 0.01)")
    con.close()
    rc, out = findings(root)
    assert rc == EX_DATAERR
    kinds = sorted(x["kind"] for x in out["findings"] if x["status"] == "open")
    assert kinds == ["cost_without_job", "job_completed_twice", "note_missing", "temp_stray", "ticket_orphan"]
    rc, out = findings(root, "--repair")
    assert rc == EX_DATAERR  # the database findings are for a person
    assert sorted(x["kind"] for x in out["findings"] if x["status"] == "repaired") == [
        "note_missing", "temp_stray", "ticket_orphan"]
    assert (root.path / "spool/rejected/bad.json").read_text() == "{not json", "user input is never deleted"
    assert (root.path / "spool/rejected/bad.json.error").exists()
    assert (root.path / "spool/rejected/stray-ticket-0000").exists() and not tmp.exists()


def test_beside_running_daemon(root):
    root.start()
    p = fsck(root)
    assert p.returncode == 0, p.stdout
    rc, out = findings(root)
    assert rc == 0 and out["daemon_running"] is True
    root.stop()
