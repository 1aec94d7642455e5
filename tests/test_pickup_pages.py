"""Pages per idea (issue 12): an idea's ingest writes few WAL frames (every
page written is copied again by a checkpoint and fsynced), job and audit
ids are time-ordered so their index entries share the last commit's page,
and migration 8 replaces the per-transition updated_at index."""
import signal
import sqlite3
import time

from conftest import run, wait_for

WAIT = "  planning: {name: command, argv: [/bin/sleep, '60']}\n"
FRAME = 4096 + 24  # page size + WAL frame header


def wal_bytes(root):
    p = root.path / "acog.db-wal"
    return p.stat().st_size if p.exists() else 0


def accepted(root, n):
    return len(root.q("SELECT id FROM episodes WHERE ingest_done = 1")) >= n


def stop_now(root):
    root.daemon.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    root.daemon.send_signal(signal.SIGTERM)  # the second stops without waiting for the stage
    root.daemon.wait(timeout=60)
    root.daemon = None


def test_an_idea_writes_few_wal_frames_and_ordered_ids(root):
    root.channel("w", extra=WAIT)
    root.start("-j", "1")
    root.drop(root.idea("first, which runs", channel="w"))
    wait_for(lambda: root.q("SELECT 1 FROM jobs WHERE status = 'running'") and accepted(root, 1),
             what="the first idea running")
    time.sleep(0.3)
    before, n = wal_bytes(root), 8
    for i in range(n):  # one at a time, as ideas trickle in
        root.drop(root.idea(f"queued idea {i}", channel="w"))
        wait_for(lambda: accepted(root, i + 2), what=f"idea {i} accepted")
    frames = (wal_bytes(root) - before) / FRAME / n
    stop_now(root)
    # 26 per idea here, 30 before migration 8 (an updated_at index written
    # in both of an ingest's commits, two indexes that repeated another's
    # prefix); 1000 frames start a checkpoint, so none ran meanwhile.
    assert 0 < frames <= 28, f"{frames:.1f} WAL frames per idea"
    for table in ("jobs", "audit_logs"):
        ids = [r["id"] for r in root.q(f"SELECT id FROM {table} ORDER BY rowid")]
        assert len(ids) >= n and all(i[14] == "7" for i in ids), ids[:3]
        assert ids == sorted(ids), f"{table} ids are not in creation order"
    ep = [r["id"] for r in root.q("SELECT id FROM episodes")]
    assert all(i[14] == "4" for i in ep), "episode ids (people type prefixes of them) stay random"


def test_migration_8_replaces_the_updated_at_index(root):
    con = sqlite3.connect(root.path / "acog.db")
    con.executescript("DROP INDEX idx_episodes_finished_updated;"
                      " CREATE INDEX idx_episodes_updated_at ON episodes(updated_at);"
                      " CREATE INDEX idx_jobs_episode_id ON jobs(episode_id);"
                      " CREATE INDEX idx_episodes_channel_id ON episodes(channel_id) WHERE deleted_at IS NULL;"
                      " UPDATE schema_version SET version = 7;")
    con.close()
    run(["status"], root.path)
    names = {r["name"] for r in root.q("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "idx_episodes_finished_updated" in names
    assert not names & {"idx_episodes_updated_at", "idx_jobs_episode_id", "idx_episodes_channel_id"}
    assert root.q("SELECT version FROM schema_version") == [{"version": 8}]
