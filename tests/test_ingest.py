"""Ingest: validation, rejection with reasons, duplicates, ideas dropped while
the daemon is down, symlinks, a second daemon refused."""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, wait_for

GOOD = {"channel": "t", "topic": "Tides", "target_length_minutes": 0.3}

# (file name, raw bytes or a dict, substring the .error file must contain)
BAD = [
    ("not-json.json", b"this is not json", "line 1, column 1"),
    ("truncated.json", b'{"channel": "t", "topic": "x"', "ends too early"),
    ("trailing.json", b'{"channel": "t", "topic": "x"} extra', "line 1, column"),
    ("array.json", b"[1, 2, 3]", "top level must be a JSON object"),
    ("empty.json", b"", "empty"),
    ("no-channel.json", {"topic": "x"}, "channel: required"),
    ("no-topic.json", {"channel": "t"}, "topic: required"),
    ("blank-topic.json", {"channel": "t", "topic": "   "}, "topic: must not be empty"),
    ("topic-type.json", {"channel": "t", "topic": 42}, "topic: expected a string"),
    ("channel-type.json", {"channel": ["t"], "topic": "x"}, "channel: expected a string"),
    ("unknown-channel.json", {"channel": "nope", "topic": "x"}, "unknown channel 'nope'"),
    ("escape.json", {"channel": "../../etc", "topic": "x"}, "escape"),
    ("bad-priority.json", {"channel": "t", "topic": "x", "priority": "asap"}, "priority"),
    ("frac-priority.json", {"channel": "t", "topic": "x", "priority": 2.5}, "whole number"),
    ("big-priority.json", {"channel": "t", "topic": "x", "priority": 99999}, "between -1000 and 1000"),
    ("bad-source.json", {"channel": "t", "topic": "x", "idea_source": "tv"}, "idea_source"),
    ("bad-publish.json", {"channel": "t", "topic": "x", "publish_at": "next week"}, "publish_at"),
    ("bad-points.json", {"channel": "t", "topic": "x", "key_points": "one"}, "key_points: expected an array"),
    ("bad-point.json", {"channel": "t", "topic": "x", "key_points": ["a", 3]}, "key_points[1]"),
    ("bad-length.json", {"channel": "t", "topic": "x", "target_length_minutes": 0}, "target_length_minutes"),
    ("bad-key.json", {"channel": "t", "topic": "x", "idempotency_key": ""}, "idempotency_key"),
    ("latin1.json", '{"channel": "t", "topic": "caf\xe9"}'.encode("latin-1"), "not valid UTF-8"),
    ("nul.json", b'{"channel": "t",\x00 "topic": "x"}', "NUL"),
    ("brief-type.json", {"channel": "t", "topic": "x", "brief": {"a": 1}}, "brief: expected a string"),
    ("huge.json", b'{"channel": "t", "topic": "' + b"x" * (1024 * 1024) + b'"}', "at most 1 MiB"),
]


def test_bad_ideas_rejected_with_reasons_while_daemon_runs(root):
    root.start()
    for name, content, _ in BAD:
        root.drop(content, name)
    wait_for(lambda: all((root.path / "spool/rejected" / (n + ".error")).exists() for n, _, _ in BAD),
             timeout=60, what="all bad ideas rejected")
    for name, content, expect in BAD:
        err = (root.path / "spool/rejected" / (name + ".error")).read_text()
        assert f"spool/incoming/{name}" in err, err
        assert expect in err, f"{name}: {err!r} lacks {expect!r}"
        kept = (root.path / "spool/rejected" / name).read_bytes()
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        assert kept == raw, f"{name}: the rejected file must be the user's bytes, untouched"
    assert root.spool("incoming") == []
    # The daemon kept running and still accepts a good idea.
    assert root.daemon.poll() is None
    root.drop(GOOD, "good.json")
    wait_for(lambda: root.q("SELECT id FROM episodes"), what="good idea accepted")
    assert root.stop() == 0
    assert len(BAD) >= 20


def test_directory_and_symlink_rejected(root, tmp_path):
    target = tmp_path / "real.json"
    target.write_text(json.dumps(GOOD))
    os.symlink(target, root.path / "spool/incoming/link.json")
    (root.path / "spool/incoming/adir").mkdir()
    root.drain()
    assert "symbolic link" in (root.path / "spool/rejected/link.json.error").read_text()
    assert "not a regular file" in (root.path / "spool/rejected/adir.error").read_text()
    assert target.exists()


def test_dot_and_tmp_names_ignored(root):
    root.start()
    (root.path / "spool/incoming/.hidden.json").write_text(json.dumps(GOOD))
    (root.path / "spool/incoming/partial.json.tmp").write_text("{half")
    time.sleep(0.5)
    assert sorted(os.listdir(root.path / "spool/incoming")) == [".hidden.json", "partial.json.tmp"]
    assert root.q("SELECT id FROM episodes") == []
    root.stop()


def test_duplicates_rejected_with_pointer(root):
    root.drop(dict(GOOD, idempotency_key="k1"), "a.json")
    root.drop(dict(GOOD, topic="Other", idempotency_key="k1"), "b.json")   # same key
    root.drop(dict(GOOD, topic="Same content"), "c.json")
    root.drain("-j", "1")
    root.drop(dict(GOOD, topic="Same content"), "d.json")                  # same content
    root.drop(dict(GOOD, topic="Same content", channel="t"), "a.json")      # same name, same content
    root.drain("-j", "1")
    eps = root.q("SELECT ticket, source_name FROM episodes ORDER BY source_name")
    assert [e["source_name"] for e in eps] == ["a.json", "c.json"]
    b = (root.path / "spool/rejected/b.json.error").read_text()
    assert "duplicate" in b and "same idempotency_key" in b and eps[0]["ticket"] in b
    d = (root.path / "spool/rejected/d.json.error").read_text()
    assert "same content" in d and eps[1]["ticket"] in d
    assert "same content" in (root.path / "spool/rejected/a.json.error").read_text()


def test_unknown_fields_kept_and_idea_preserved(root):
    idea = dict(GOOD, extra_field={"x": [1, 2]})
    raw = json.dumps(idea, indent=3).encode()
    root.drop(raw, "keep.json")
    root.drain()
    ep = root.status()[0]
    assert (root.episode_dir(ep["id"]) / "idea.json").read_bytes() == raw
    stored = json.loads(root.q("SELECT idea FROM episodes")[0]["idea"])
    assert stored["extra_field"] == {"x": [1, 2]}


def test_ideas_dropped_while_down_are_ingested_at_start(root):
    for i in range(3):
        root.drop(dict(GOOD, topic=f"While down {i}"), f"down{i}.json")
    root.start()
    wait_for(lambda: len(root.q("SELECT id FROM episodes WHERE ingest_done = 1")) == 3, what="3 episodes")
    assert root.spool("incoming") == []
    root.stop()


def test_a_group_keeps_the_dropped_file_itself_as_idea_json(root):
    """Ideas accepted together: idea.json is the dropped file under a second
    name (no inode made or freed per idea), unless another name of it
    exists, which then keeps the file and idea.json is a copy."""
    inode = {}
    for n in ("a", "b", "c"):
        root.drop(dict(GOOD, topic=f"Group {n}"), f"{n}.json")
        inode[n] = (root.path / "spool" / "incoming" / f"{n}.json").stat().st_ino
    other = root.path / "b-elsewhere.json"
    os.link(root.path / "spool" / "incoming" / "b.json", other)
    b_bytes = other.read_bytes()
    root.start()
    wait_for(lambda: len(root.q("SELECT id FROM episodes WHERE ingest_done = 1")) == 3, what="3 episodes")
    root.stop()
    assert root.spool("incoming") == []
    for row in root.q("SELECT id, source_name FROM episodes"):
        n = row["source_name"][0]
        idea = root.episode_dir(row["id"]) / "idea.json"
        assert json.loads(idea.read_bytes())["topic"] == f"Group {n}"
        assert idea.stat().st_nlink == 1, f"{idea}: a name left in incoming/"
        if n == "b":
            assert idea.stat().st_ino != inode["b"], "a file with another name was taken, not copied"
            assert other.read_bytes() == b_bytes and other.stat().st_nlink == 1
        else:
            assert idea.stat().st_ino == inode[n], f"{n}.json was copied, not kept as idea.json"
    assert "ingest.group" in root.log.read_text()


def test_second_daemon_refused(root):
    root.start()
    p = subprocess.run([BIN, "-C", str(root.path), "run"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 75
    assert "already running" in p.stderr and str(root.daemon.pid) in p.stderr
    root.stop()


def test_bad_channel_config_rejects_its_ideas_with_the_reason(root):
    d = root.path / "channels/broken"
    d.mkdir()
    (d / "channel.yaml").write_text("id: broken\nproviders:\n  audio: bogus\n")
    root.drop({"channel": "broken", "topic": "x"}, "x.json")
    root.drain()
    err = (root.path / "spool/rejected/x.json.error").read_text()
    assert "failed to load" in err and "unknown provider 'bogus'" in err
