"""Flat cost as history grows (issue 12): the statements the daemon runs per
event use indexes, ideas that arrive together are accepted as one group
commit, and start-up after a clean stop reconciles only unfinished work.

The plans come from the daemon itself: the test build writes the query plan
of every cached (per-event) statement to ACOG_TEST_PLANS (db.c)."""
import json
import os
import re
import signal
import time

from conftest import wait_for

# Trivial stages: builtin planning/scripting/metadata, then an audio stage
# that fails at once, so each episode ends in failed/ after a few transitions.
TRIVIAL = "  planning: builtin\n  scripting: builtin\n  metadata: builtin\n  audio: {name: command, argv: [/bin/false]}\n"

# Tables that stay small whatever the history: a scan of these is fine.
SMALL = {"channels", "channel_holds", "daemon_marks", "schema_version", "c", "h", "CONSTANT"}


def trivial_root(root):
    d = root.path / "channels" / "t" / "channel.yaml"
    d.write_text(d.read_text().replace("retry: {max_retries: 3", "retry: {max_retries: 0")
                 .replace("providers:\n", "providers:\n" + TRIVIAL, 1)
                 .replace("  avatar: {name: still, image: avatar.png}\n  broll: generated\n", ""))


def drop_together(root, n, tag):
    names = []
    for i in range(n):
        name = f"{tag}-{i}.json"
        (root.path / "spool" / "tmp" / name).write_text(json.dumps(root.idea(f"group idea {tag} {i}")))
        names.append(name)
    for name in names:
        os.rename(root.path / "spool" / "tmp" / name, root.path / "spool" / "incoming" / name)
    return names


def finished(root, n):
    return len(root.q("SELECT id FROM episodes WHERE state = 'failed'")) >= n


def test_per_event_statements_use_indexes_and_groups_commit(root, tmp_path, monkeypatch):
    plans = tmp_path / "plans.txt"
    monkeypatch.setenv("ACOG_TEST_PLANS", str(plans))
    trivial_root(root)
    root.start("-j", "2")
    names = drop_together(root, 12, "g")
    root.drop(root.idea("a single idea"))
    wait_for(lambda: finished(root, 13), timeout=240, what="13 trivial episodes to fail at audio")
    assert root.stop() == 0
    root.start()  # start-up statements: reconciliation after a clean stop
    assert root.stop() == 0

    # Every idea became exactly one episode, with the user's bytes as idea.json.
    eps = root.q("SELECT id, source_name, ingest_done FROM episodes")
    assert sorted(e["source_name"] for e in eps if e["source_name"] in names) == sorted(names)
    assert all(e["ingest_done"] == 1 for e in eps) and len(eps) == 13
    assert root.spool("incoming") == []
    log = root.log.read_text()
    groups = [int(m) for m in re.findall(r"(\d+) ideas accepted together", log)]
    assert groups and max(groups) > 1, "ideas renamed in together were not accepted as a group"

    scans = set()
    text = plans.read_text()
    for line in text.splitlines():
        sql, _, plan = line.partition("\t")
        m = re.match(r"SCAN (\w+)", plan)
        # The channel upsert's plan includes the foreign-key check of episodes
        # for a changed channel id; the upsert never changes it, so it never runs.
        if sql.startswith("INSERT INTO channels") and plan == "SCAN episodes":
            continue
        if m and m.group(1) not in SMALL:
            scans.add(f"{plan}  <-  {sql}")
    assert "idx_episodes_queue" in text and "idx_episodes_ingest_pending" in text
    assert not scans, "per-event statements scanning a table that grows:\n" + "\n".join(sorted(scans))


def test_startup_reconciles_only_what_changed_since_a_clean_stop(root):
    trivial_root(root)
    root.start()
    root.drop(root.idea("fails at audio"))
    wait_for(lambda: finished(root, 1), timeout=120, what="the episode to fail")
    time.sleep(3)  # finished before the clean-stop mark's 2 s margin
    assert root.stop() == 0
    ticket = root.spool("failed")[0] if root.spool("failed")[0].count(".") == 0 else root.spool("failed")[1]
    # A finished episode untouched since the clean stop is not looked at again.
    (root.path / "spool" / "failed" / ticket).unlink()
    root.start()
    assert root.stop() == 0
    assert ticket not in root.spool("failed")
    # After a crash (no clean-stop mark) every episode is reconciled.
    root.start()
    root.stop(signal.SIGKILL)
    root.start()
    wait_for(lambda: ticket in root.spool("failed"), timeout=30, what="the ticket back after a crash")
    assert root.stop() == 0
