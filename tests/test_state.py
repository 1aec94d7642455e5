"""The state machine seen from outside: every transition is audited, every
ticket in held/ has its reason beside it, and a stage that answers a
channel-wide hold stops that stage for the channel (not for others) until
the hold's time, when the daemon's timer releases every episode it held."""
import json
import time
from datetime import datetime, timezone

from conftest import wait_for


def gated_channel(root, cid, extra=""):
    d = root.channel(cid, extra=extra)
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("script_review: false", "script_review: true"))
    return d


def at_script_review(root, channel, topic, name):
    """One idea of a gated channel, run until it waits at the script review gate."""
    gated_channel(root, channel)
    root.drop(root.idea(topic, channel=channel), name)
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval" and ep["stage"] == "script_review", ep
    return ep


def test_reject_without_to_writes_the_reason_beside_the_held_ticket(root):
    ep = at_script_review(root, "sr", "Comets", "c.json")
    root.cli("reject", ep["ticket"], "--by", "carol", "--reason", "Not now")
    assert root.tickets() == {ep["ticket"]: ["held"]}
    note = root.path / "spool/held" / (ep["ticket"] + ".reason")
    reason = note.read_text()
    assert "Not now" in reason and "carol" in reason and f"acog-batch retry {ep['ticket']}" in reason, reason
    shown = root.show(ep["id"])
    assert shown["state"] == "cancelled" and shown["hold_kind"] == "rejected", shown
    root.cli("retry", ep["ticket"], "--from", "scripting")
    assert root.tickets() == {ep["ticket"]: ["scripting"]} and not note.exists()


def test_every_transition_is_audited_over_a_whole_run(root):
    root.drop(root.idea("Glaciers"), "g.json")
    root.drain()
    [ep] = root.status()
    root.cli("approve", ep["ticket"], "--by", "alice")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "published"
    rows = root.q("SELECT action, actor_type, actor_id, old_values, new_values FROM audit_logs"
                  " WHERE entity_id = ? ORDER BY rowid", ep["id"])
    jobs = root.q("SELECT stage, retry_count FROM jobs WHERE episode_id = ?", ep["id"])
    attempts = sum(j["retry_count"] + 1 for j in jobs)
    # created, then each attempt started and ended, and one approval
    assert len(rows) == 1 + 2 * attempts + 1, [r["action"] for r in rows]
    states = [(json.loads(r["old_values"])["state"], json.loads(r["new_values"])["state"]) for r in rows]
    assert states[0] == ("new", "queued") and states[-1] == ("running", "published"), states
    assert all(a[1] == b[0] for a, b in zip(states, states[1:])), "each row starts where the last one ended"
    approve = [r for r in rows if r["action"] == "approve"]
    assert len(approve) == 1 and approve[0]["actor_type"] == "user" and approve[0]["actor_id"] == "alice"
    assert {r["actor_type"] for r in rows if r["action"] != "approve"} == {"daemon"}
    assert [r["action"] for r in rows].count("start") == attempts


HOLD_ONCE = """#!/bin/sh
# The first call of the channel holds its scripting stage for everybody
# (a spent quota); every later call writes the script.
d=$(dirname "$0")
cat > /dev/null
echo "$(date +%s.%N) $(basename "$PWD")" >> "$d/calls"
if [ ! -e "$d/held-once" ]; then
  : > "$d/held-once"
  echo '{"error": "REASON", "hold": HOLD}'
  exit 75
fi
printf '# From a command\\n[AVATAR]\\nHello from an external program. It writes the script itself. This is a sentence.\\n[BROLL: a river]\\n[VOICEOVER]\\nRivers carry water to the sea. They shape valleys over time. We see them everywhere on Earth.\\n' > script.md
echo '{}'
"""


def test_channel_hold_stops_one_channel_and_is_released_at_its_time(root):
    until_s = 20
    d = gated_channel(root, "h", extra="  scripting: {name: command, argv: [./hold.sh]}\n")
    hold = f'{{"kind": "quota", "until": {until_s}, "channel": true}}'
    (d / "hold.sh").write_text(HOLD_ONCE.replace("HOLD", hold)
                               .replace("REASON", "quota spent for today; it resumes by itself"))
    (d / "hold.sh").chmod(0o755)
    gated_channel(root, "o")
    for name in ("one", "two"):
        root.drop(root.idea(f"Held {name}", channel="h"), f"{name}.json")
    root.drop(root.idea("Goes on", channel="o"), "other.json")
    root.start("-j", "1")
    by_title = lambda: {e["title"]: e for e in root.status()}
    wait_for(lambda: len(root.status()) == 3 and all(
        e["state"] == ("awaiting-approval" if e["channel"] == "o" else "held") for e in root.status()),
        timeout=120, what="channel h held at scripting while channel o goes on")
    eps = by_title()
    calls = (d / "calls").read_text().split()
    first = calls[1]
    assert len(calls) == 2, "only one episode of channel h ran scripting before the hold"
    until = root.show(first)["hold_until"]
    held_at = datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()
    assert time.time() < held_at, "channel o reached its gate before the hold ended"
    for ep in (eps["Held one"], eps["Held two"]):
        shown = root.show(ep["id"])
        assert shown["hold_kind"] == "quota" and "quota spent for today" in shown["hold_reason"], shown
        assert shown["hold_until"] == until and shown["stage"] == "scripting"
        assert (root.path / "spool/held" / (ep["ticket"] + ".reason")).exists()
        assert root.tickets()[ep["ticket"]] == ["held"]
    assert "channel h: scripting held (quota)" in root.cli("status").stdout

    wait_for(lambda: all(e["state"] == "awaiting-approval" for e in root.status()), timeout=until_s + 120,
             what="both episodes of channel h released and on to their gate")
    root.stop()
    calls = (d / "calls").read_text().split("\n")
    later = [float(c.split()[0]) for c in calls[1:] if c]
    assert len(later) == 2 and min(later) >= held_at, (calls, until)
    for ep in (eps["Held one"], eps["Held two"]):
        jobs = root.q("SELECT retry_count, status FROM jobs WHERE episode_id = ? AND stage = 'scripting'", ep["id"])
        assert jobs == [{"retry_count": 0, "status": "completed"}], "the held job was queued again, not re-created"
        rel = root.q("SELECT actor_type, created_at FROM audit_logs WHERE entity_id = ? AND action = 'release'", ep["id"])
        assert len(rel) == 1 and rel[0]["actor_type"] == "daemon" and rel[0]["created_at"] >= until, rel
        assert not (root.path / "spool/held" / (ep["ticket"] + ".reason")).exists()
    assert root.q("SELECT COUNT(*) n FROM channel_holds")[0]["n"] == 0


def test_hold_without_a_time_waits_for_retry_which_lifts_it_for_the_channel(root):
    d = gated_channel(root, "h", extra="  scripting: {name: command, argv: [./hold.sh]}\n")
    (d / "hold.sh").write_text(HOLD_ONCE.replace("HOLD", '{"kind": "auth", "channel": true}')
                               .replace("REASON", "re-authorise with the provider"))
    (d / "hold.sh").chmod(0o755)
    for name in ("one", "two"):
        root.drop(root.idea(f"Auth {name}", channel="h"), f"{name}.json")
    root.start("-j", "1")
    wait_for(lambda: len(root.status()) == 2 and all(e["state"] == "held" for e in root.status()),
             timeout=120, what="both episodes held for re-authorisation")
    eps = root.status()
    assert all(root.show(e["id"]).get("hold_until") is None for e in eps), "no time: it waits for a person"
    assert root.q("SELECT kind, until FROM channel_holds") == [{"kind": "auth", "until": None}]
    root.cli("retry", eps[0]["ticket"])
    wait_for(lambda: all(e["state"] == "awaiting-approval" for e in root.status()), timeout=120,
             what="both released by one retry")
    root.stop()
    assert root.q("SELECT COUNT(*) n FROM channel_holds")[0]["n"] == 0
    for ep in eps:
        rel = root.q("SELECT actor_type FROM audit_logs WHERE entity_id = ? AND action = 'release'", ep["id"])
        assert rel == [{"actor_type": "user"}], rel
