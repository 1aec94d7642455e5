"""Schema 7 (issue 12, CPU per stage transition): episodes and jobs keep the
same enum constraints as comparison chains, which SQLite checks without
building a temporary b-tree on every write, and have no updated_at trigger:
every UPDATE of them sets updated_at itself.  An existing version 6 database
(tests/corpus/schema/v6.sql, the schema as it was) migrates with its rows."""
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from conftest import REPO, run

V6 = (Path(__file__).parent / "corpus" / "schema" / "v6.sql").read_text()
T0 = "2026-01-02T03:04:05.000Z"

# A trivial pipeline: builtin planning, scripting and metadata, then an audio
# stage that fails at once without a retry, so the episode ends in failed/.
TRIVIAL = """\
id: t
name: Trivial
niche: testing
persona: {name: Tess}
gates: {script_review: false, review: true}
retry: {max_retries: 0, base_seconds: 0.1, max_seconds: 0.1}
providers:
  planning: builtin
  scripting: builtin
  metadata: builtin
  audio: {name: command, argv: [/bin/false]}
"""

# The writes of a stage transition, each setting every enum column.
HOT_WRITES = [
    "INSERT INTO episodes (id, channel_id, status, idea_source, ticket, location, stage, content_hash,"
    " source_name, gate_pending, ingest_done, state, hold_kind) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "UPDATE episodes SET state = ?, status = ?, stage = ?, location = ?, gate_pending = ?, hold_kind = ?,"
    " idea_source = ?, updated_at = ? WHERE id = ?",
    "INSERT INTO jobs (id, episode_id, stage, status, input_params) VALUES (?,?,?,?,?)",
    "UPDATE jobs SET stage = ?, status = ?, updated_at = ? WHERE id = ?",
]


def v6_database(path, broken=False):
    """A version 6 acog.db with a channel, three episodes (one following
    another, one held), their jobs, a cost entry, provider state and an
    asset: every table that refers to episodes or jobs has a row."""
    db = sqlite3.connect(path)
    db.executescript(V6)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("INSERT INTO channels (id, name, slug) VALUES ('c1', 'T', 't')")
    eps = [("e1", "published", "published", None, None), ("e2", "held", "audio", "quota", "e1"),
           ("e3", "queued", "scripting", None, None)]
    for i, (eid, state, status, kind, follows) in enumerate(eps):
        db.execute("INSERT INTO episodes (id, channel_id, title, status, idea_source, ticket, location, stage,"
                   " content_hash, source_name, ingest_done, state, hold_kind, hold_reason, follows_id,"
                   " created_at, updated_at, series, series_number, scheduled_at)"
                   " VALUES (?,?,?,?,'manual',?,?,?,?,?,1,?,?,?,?,?,?,'s',?,?)",
                   (eid, "c1", f"Episode {i}", status, f"ticket-{eid}", status, status, f"h{i}", f"{eid}.json",
                    state, kind, "quota spent" if kind else None, follows, T0, T0, i, T0 if i == 0 else None))
    db.execute("INSERT INTO jobs (id, episode_id, stage, status, cost_usd, created_at, updated_at, provider)"
               " VALUES ('j1', 'e1', 'planning', 'completed', 0.25, ?, ?, 'builtin')", (T0, T0))
    db.execute("INSERT INTO jobs (id, episode_id, stage, status, created_at, updated_at, next_attempt_at)"
               " VALUES ('j3', 'e3', 'scripting', 'queued', ?, ?, ?)", (T0, T0, T0))
    db.execute("INSERT INTO cost_entries (id, episode_id, channel_id, provider, operation_type, cost_cents,"
               " cost_usd, job_id) VALUES ('k1', 'e1', 'c1', 'openai', 'planning', 25, 0.25, 'j1')")
    db.execute("INSERT INTO provider_state (episode_id, stage, key, value) VALUES ('e3', 'scripting', 'k', 'v')")
    db.execute("INSERT INTO assets (id, episode_id, type, uri) VALUES ('a1', 'e1', 'plan', 'plan.json')")
    db.commit()
    if broken:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("INSERT INTO jobs (id, episode_id, stage, status) VALUES ('jx', 'nowhere', 'audio', 'failed')")
        db.commit()
    db.close()


def seconds(iso):
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def rows(db, table):
    return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()


def shape(db, table):
    """Columns, indexes (name, definition) and triggers of a table."""
    cols = db.execute(f"SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')").fetchall()
    idx = [(n, re.sub(r"\s+", " ", sql or "")) for n, sql in db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name", (table,))]
    trg = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)).fetchall()
    return cols, idx, trg


def ephemeral_tables(db, sql):
    return sum(1 for r in db.execute("EXPLAIN " + sql, [None] * sql.count("?")) if r[1] == "OpenEphemeral")


def swap_in(root, make, **kw):
    """root's acog.db replaced by a version 6 one; the fresh (current version) one is returned for comparison."""
    fresh = root.path / "fresh.db"
    (root.path / "acog.db").rename(fresh)
    for suffix in ("-wal", "-shm"):
        Path(str(root.path / "acog.db") + suffix).unlink(missing_ok=True)
    make(root.path / "acog.db", **kw)
    return sqlite3.connect(fresh)


def test_a_v6_database_migrates_with_its_rows_and_constraints(root):
    fresh = swap_in(root, v6_database)
    old = sqlite3.connect(root.path / "acog.db")
    before = {t: rows(old, t) for t in ("episodes", "jobs", "cost_entries", "provider_state", "assets")}
    old.close()
    root.cli("status", "--all")  # any command that opens the database migrates it
    db = sqlite3.connect(root.path / "acog.db")
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(8,)]
    for t, r in before.items():
        assert rows(db, t) == r, f"{t} changed in the migration"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    for t in ("episodes", "jobs"):  # the same table as a new database's, without the trigger
        assert shape(db, t) == shape(fresh, t)
        assert shape(db, t)[2] == []
    db.execute("PRAGMA foreign_keys = ON")
    bad = [("UPDATE episodes SET status = 'bogus' WHERE id = 'e1'", "CHECK"),
           ("UPDATE episodes SET state = 'Queued' WHERE id = 'e1'", "CHECK"),
           ("UPDATE episodes SET hold_kind = 'nap' WHERE id = 'e2'", "CHECK"),
           ("UPDATE episodes SET idea_source = 'rumour' WHERE id = 'e1'", "CHECK"),
           ("UPDATE episodes SET gate_pending = 'later' WHERE id = 'e1'", "CHECK"),
           ("UPDATE jobs SET stage = 'dance' WHERE id = 'j1'", "CHECK"),
           ("UPDATE jobs SET status = 'done' WHERE id = 'j1'", "CHECK"),
           ("INSERT INTO jobs (id, episode_id, stage) VALUES ('j9', 'nowhere', 'audio')", "FOREIGN KEY"),
           ("DELETE FROM episodes WHERE id = 'e1'", "FOREIGN KEY")]  # cost_entries and e2 refer to it
    for sql, what in bad:
        with pytest.raises(sqlite3.IntegrityError, match=what):
            db.execute(sql)
    db.execute("UPDATE episodes SET hold_kind = NULL, state = 'failed', status = 'failed' WHERE id = 'e2'")
    db.execute("DELETE FROM episodes WHERE id = 'e3'")  # its job and provider state go with it
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE episode_id = 'e3'").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM provider_state").fetchone() == (0,)
    db.rollback()
    for sql in HOT_WRITES:
        assert ephemeral_tables(db, sql) == 0, sql


def test_a_v6_database_with_broken_references_is_left_as_it_was(root):
    swap_in(root, v6_database, broken=True)
    p = run(["-C", str(root.path), "status"], check=False)
    assert p.returncode == 65, p.stderr
    assert "migrating to schema version 7 found row" in p.stderr and "of jobs refers to a missing row of episodes" \
        in p.stderr and "PRAGMA foreign_key_check" in p.stderr, p.stderr
    db = sqlite3.connect(root.path / "acog.db")
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(6,)]
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'update_episodes_updated_at'").fetchone() == (1,)
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone() == (3,)


def test_a_new_database_writes_build_no_temporary_btree(root):
    db = sqlite3.connect(root.path / "acog.db")
    for sql in HOT_WRITES:
        assert ephemeral_tables(db, sql) == 0, sql


def test_every_update_of_episodes_and_jobs_sets_updated_at(root):
    """At run time (the test build aborts on an UPDATE of episodes or jobs
    that leaves updated_at alone, db.c) and in the source (for statements
    this run does not reach)."""
    (root.path / "channels" / "t" / "channel.yaml").write_text(TRIVIAL)
    root.drop(root.idea("Updated"))
    root.drain()
    db = sqlite3.connect(root.path / "acog.db")
    ep = db.execute("SELECT id, created_at, updated_at, state FROM episodes").fetchone()
    assert ep[3] == "failed"
    last = db.execute("SELECT MAX(created_at) FROM audit_logs WHERE entity_id = ?", (ep[0],)).fetchone()[0]
    # set by the last transition's UPDATE: its audit row is written in the same transaction
    # (a statement or two later, so up to a few ms after it), long after the episode was made
    assert ep[2] > ep[1] and abs(seconds(last) - seconds(ep[2])) < 0.1, (ep, last)
    jobs = db.execute("SELECT stage, created_at, updated_at, completed_at FROM jobs").fetchall()
    assert {j[0] for j in jobs} >= {"planning", "scripting", "metadata", "audio"}, jobs
    for job in jobs:  # set when the job ended (one statement), a stage child's run after it was made
        assert job[3] and abs(seconds(job[2]) - seconds(job[3])) < 0.1 and job[2] > job[1], job
    missing = []
    for f in sorted((REPO / "src").glob("*.c")):
        text = f.read_text()
        for m in re.finditer(r'"UPDATE (episodes|jobs) SET', text):
            stmt = text[m.start():text.index(" WHERE", m.start())]
            if "DB_TOUCH" not in stmt and "updated_at" not in stmt:
                missing.append(f"{f.name}: {stmt[:80]}")
    assert not missing, missing
