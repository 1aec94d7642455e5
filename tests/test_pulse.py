"""Trend intake (issue 11, item 1): JSON trend events dropped into spool/pulse/ become
pulse_events rows, and each channel's `pulse:` rules turn the matching ones into ideas that
take the usual path.  Real daemon, real inotify, real SQLite."""
import hashlib
import json
import os

from conftest import wait_for

RULES = "pulse: {min_relevance: 0.5, tags: [space, astronomy], exclude_tags: [crypto], max_ideas_per_day: %d}\n"

EVENTS = [
    {"source": "rss", "source_id": "a1", "title": "A comet brightens", "summary": "Visible at dusk.",
     "url": "https://example.org/comet", "topic_tags": ["space"], "relevance_score": 0.9,
     "published_at": "2026-11-29T06:00:00Z"},
    {"source": "rss", "source_id": "a2", "title": "A faint asteroid", "topic_tags": ["space"],
     "relevance_score": 0.3},
    {"source": "rss", "source_id": "a3", "title": "Space coin", "topic_tags": ["space", "crypto"],
     "relevance_score": 0.95},
    {"source": "reddit", "title": "Sourdough tips", "topic_tags": ["cooking"], "relevance_score": 0.99},
    {"source": "reddit", "title": "Saturn's rings tilt", "topic_tags": ["Astronomy"], "relevance_score": 0.7},
]


def drop_pulse(root, events, name):
    tmp = root.path / "spool/tmp" / (name + ".part")
    tmp.write_text(json.dumps(events))
    os.rename(tmp, root.path / "spool/pulse" / name)


def pulse_episodes(root):
    return root.q("SELECT e.id, e.title, e.idea_source, e.pulse_event_id, c.slug AS channel FROM episodes e"
                  " JOIN channels c ON c.id = e.channel_id WHERE e.idea_source = 'pulse' ORDER BY e.title")


def test_five_events_two_matching_make_two_ideas_once(root):
    root.channel("t", extra=RULES % 10)
    root.channel("u")                                   # no pulse: block, takes no pulse ideas
    root.start("-j", "1")
    drop_pulse(root, EVENTS, "trends.json")
    wait_for(lambda: len(pulse_episodes(root)) == 2, what="two pulse episodes")
    wait_for(lambda: root.spool("pulse-done") == ["trends.json"], what="the file kept in pulse-done")

    eps = pulse_episodes(root)
    assert [e["title"] for e in eps] == ["A comet brightens", "Saturn's rings tilt"]
    assert {e["channel"] for e in eps} == {"t"}
    rows = {r["source_id"]: r for r in root.q("SELECT * FROM pulse_events")}
    assert len(rows) == 5 and all(r["is_processed"] == 1 for r in rows.values())
    assert {e["pulse_event_id"] for e in eps} == {rows["a1"]["id"], next(
        r["id"] for r in rows.values() if json.loads(r["payload"])["title"] == "Saturn's rings tilt")}
    assert "relevance 0.30 < 0.50" in rows["a2"]["outcome"]
    assert "tag 'crypto' is excluded" in rows["a3"]["outcome"]
    # the kept file is the user's bytes
    assert json.loads((root.path / "spool/pulse-done/trends.json").read_text()) == EVENTS

    listing = json.loads(root.cli("pulse", "--json").stdout)
    assert len(listing) == 5
    by_title = {e["title"]: e for e in listing}
    assert by_title["A comet brightens"]["matched_channels"] == ["t"]
    assert by_title["A comet brightens"]["episodes"][0]["id"] in {e["id"] for e in eps}
    assert by_title["Sourdough tips"]["episodes"] == [] and "no wanted tag" in by_title["Sourdough tips"]["outcome"]
    assert "A comet brightens" in root.cli("pulse").stdout

    # the same events again, under another name: a duplicate, kept in rejected/, nothing new
    drop_pulse(root, EVENTS, "again.json")
    wait_for(lambda: (root.path / "spool/rejected/again.json.error").exists(), what="the duplicate rejected")
    assert "every event in it is known already" in (root.path / "spool/rejected/again.json.error").read_text()
    assert json.loads((root.path / "spool/rejected/again.json").read_text()) == EVENTS
    # one new event among known ones: only it is decided, and it makes its own idea
    drop_pulse(root, EVENTS[:2] + [{"source": "rss", "source_id": "a9", "title": "A nova", "topic_tags": ["space"],
                                    "relevance_score": 0.8}], "more.json")
    wait_for(lambda: len(pulse_episodes(root)) == 3, what="the new event's idea")
    assert len(root.q("SELECT * FROM pulse_events")) == 6
    root.stop()
    assert len(pulse_episodes(root)) == 3


def test_daily_limit_and_restart_finishes_an_unprocessed_file(root):
    root.channel("t", extra=RULES % 1)
    # dropped while the daemon is down: the start-up scan takes it
    drop_pulse(root, [EVENTS[0], EVENTS[4]], "two.json")
    root.start("-j", "1")
    wait_for(lambda: root.spool("pulse-done") == ["two.json"], what="the file taken at start-up")
    wait_for(lambda: len(pulse_episodes(root)) == 1, what="one idea within the daily limit")
    outcomes = [r["outcome"] for r in root.q("SELECT outcome FROM pulse_events ORDER BY outcome")]
    assert any("daily limit of 1 pulse ideas reached" in o for o in outcomes), outcomes
    root.stop()


def test_a_bad_event_rejects_the_file_with_its_index(root):
    root.channel("t", extra=RULES % 10)
    bad = [EVENTS[0], {"source": "rss", "title": "x", "relevance_score": 1.7}, EVENTS[4]]
    root.start("-j", "1")
    drop_pulse(root, bad, "bad.json")
    err = root.path / "spool/rejected/bad.json.error"
    wait_for(err.exists, what="the rejection")
    assert "spool/pulse/bad.json: event 2 of 3: relevance_score: expected a number from 0 to 1" in err.read_text()
    raw = json.dumps(bad).encode()
    assert hashlib.sha256((root.path / "spool/rejected/bad.json").read_bytes()).digest() == \
        hashlib.sha256(raw).digest()
    (root.path / "spool/pulse/notjson.json").write_text("{ nope")
    wait_for((root.path / "spool/rejected/notjson.json.error").exists, what="the JSON error")
    assert "line 1, column" in (root.path / "spool/rejected/notjson.json.error").read_text()
    root.stop()
    assert root.q("SELECT COUNT(*) AS n FROM pulse_events")[0]["n"] == 0


def test_a_misspelt_pulse_rule_leaves_the_channel_out(root):
    root.channel("t", extra="pulse: {min_relevence: 0.5}\n")
    p = root.cli("doctor", check=False)
    assert "pulse.min_relevence" in p.stdout + p.stderr
