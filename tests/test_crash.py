"""Crash safety and idleness: SIGKILL at random moments during a batch,
reconciliation of a spool that disagrees with the database, and a daemon
that makes no system calls while idle."""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

from conftest import wait_for


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(root):
    # CI keeps this small: the crash matrix (test_crash_matrix.py, make test-crash) is the
    # large run; this one checks a plain offline channel under kills.
    root.channel("k", review="false")
    n = int(os.environ.get("ACOG_CRASH_IDEAS", "8"))
    names = []
    for i in range(n):
        idea = root.idea(f"Crash test {i}", channel="k", idempotency_key=f"crash-{i}")
        names.append(root.drop(idea, f"crash-{i:02d}.json"))
    rng = random.Random(int(os.environ.get("ACOG_CRASH_SEED", "1234")))
    kills = 0
    # A fixed number of kills, then a clean drain: killing until everything is
    # published never ends on a slow machine where one stage outlasts the gap.
    while kills < int(os.environ.get("ACOG_CRASH_KILLS", "6")):
        root.start("-j", "2")
        time.sleep(rng.uniform(0.05, 5.0))
        if root.daemon.poll() is not None:
            break
        root.stop(signal.SIGKILL)
        kills += 1
        # more ideas arrive while the daemon is down, now and then
        if kills == 2:
            names.append(root.drop(root.idea("Late arrival", channel="k", idempotency_key="late"), "late.json"))
    root.drain("-j", "2")
    assert kills >= 5
    eps = root.q("SELECT id, source_name, status, ticket FROM episodes")
    assert sorted(e["source_name"] for e in eps) == sorted(names), "every idea became exactly one episode"
    assert {e["status"] for e in eps} == {"published"}
    assert root.spool("incoming") == [] and root.spool("rejected") == []
    tickets = root.tickets()
    assert all(tickets.get(e["ticket"]) == ["published"] for e in eps), tickets
    assert len(tickets) == len(eps)
    outbox = root.path / "channels/k/outbox"
    published = sorted(p.name for p in outbox.iterdir() if not p.name.startswith("."))
    assert published == sorted(e["id"] for e in eps), "each video published exactly once"
    for e in eps:
        # one live asset row per file, however often a stage was re-run
        dup = root.q("SELECT uri, COUNT(*) c FROM assets WHERE episode_id = ? AND deleted_at IS NULL"
                     " GROUP BY uri HAVING c > 1", e["id"])
        assert dup == []
        done = root.q("SELECT stage, COUNT(*) c FROM jobs WHERE episode_id = ? AND status = 'completed' GROUP BY stage",
                      e["id"])
        assert all(r["c"] == 1 for r in done), done


def test_startup_reconciles_spool_to_database(root):
    root.drop(root.idea("Misplaced"), "m.json")
    root.drain()
    [ep] = root.status()
    t = ep["ticket"]
    # someone moves the ticket by hand, and deletes another one entirely
    os.rename(root.path / "spool/review" / t, root.path / "spool/planning" / t)
    (root.path / "spool/assembly/stray-ticket-00000000").write_text("{}")
    root.drain()
    assert root.tickets().get(t) == ["review"]
    err = (root.path / "spool/rejected/stray-ticket-00000000.error").read_text()
    assert "no episode in acog.db" in err
    os.unlink(root.path / "spool/review" / t)
    root.drain()
    assert root.tickets().get(t) == ["review"]


def test_a_ticket_left_empty_or_taken_is_rewritten_at_start(root):
    """The database is the record and a ticket only shows it: a ticket left
    empty or taken (a disk that lost what it had not yet written, a person's
    slip) is written again from the database at the next start."""
    root.channel("w", extra="  planning: {name: command, argv: [/bin/sleep, '60']}\n")
    root.drop(root.idea("Power cut", channel="w"), "p.json")
    root.start("-j", "1")
    wait_for(lambda: root.q("SELECT id FROM jobs WHERE status = 'running'"), timeout=60, what="planning running")
    [ep] = root.q("SELECT id, ticket FROM episodes")
    ticket = root.path / "spool/planning" / ep["ticket"]
    for damage in ("empty", "gone"):
        root.stop(signal.SIGKILL)
        if damage == "empty":
            ticket.write_bytes(b"")
        else:
            ticket.unlink()
        root.start("-j", "1")
        wait_for(lambda: ticket.exists() and ticket.stat().st_size > 0, timeout=60, what=f"{damage} ticket rewritten")
        assert json.loads(ticket.read_text())["episode_id"] == ep["id"]
        assert root.tickets().get(ep["ticket"]) == ["planning"]
    root.stop(signal.SIGKILL)


def test_retry_deadline_survives_restart(root):
    root.start_waiting_for_a_retry("r", 30, 60)
    at = root.q("SELECT next_attempt_at FROM jobs")[0]["next_attempt_at"]
    root.stop(signal.SIGKILL)
    root.start()
    time.sleep(1)
    root.stop()
    job = root.q("SELECT retry_count, next_attempt_at, status FROM jobs")[0]
    assert job["retry_count"] == 1 and job["next_attempt_at"] == at and job["status"] == "queued"
    [ep] = root.status()
    mtime = os.stat(root.path / "spool/planning" / ep["ticket"]).st_mtime
    assert mtime > time.time() + 5, "the ticket's mtime shows the next attempt"
    assert ep["state"].startswith("retry-at-")


def test_sigterm_lets_running_stage_finish(root):
    root.drop(root.idea("Graceful"), "g.json")
    root.start("-j", "1")
    wait_for(lambda: root.q("SELECT id FROM jobs WHERE stage = 'audio' AND status = 'running'"), timeout=120,
             step=0.01, what="audio running")
    assert root.stop(signal.SIGTERM) == 0
    assert root.q("SELECT status FROM jobs WHERE stage = 'audio'")[0]["status"] == "completed"
    assert root.q("SELECT COUNT(*) n FROM jobs WHERE status = 'running'")[0]["n"] == 0


def test_second_sigterm_requeues_the_running_stage_without_using_an_attempt(root):
    """A stage killed because the operator asked twice to stop is not a crash:
    it runs again at the next start, at once, with its attempts untouched."""
    root.channel("w", extra="  planning: {name: command, argv: [/bin/sleep, '60']}\n")
    root.drop(root.idea("Interrupted", channel="w"), "i.json")
    root.start("-j", "1")
    wait_for(lambda: root.q("SELECT id FROM jobs WHERE status = 'running'"), timeout=60, what="planning running")
    root.daemon.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert root.stop(signal.SIGTERM) == 0           # the second: stop at once
    [job] = root.q("SELECT retry_count, status, next_attempt_at FROM jobs")
    assert job["status"] == "queued" and job["retry_count"] == 0, job
    assert job["next_attempt_at"] is None or job["next_attempt_at"] <= time.strftime("%Y-%m-%dT%H:%M:%S.999Z",
                                                                                      time.gmtime()), job
    log = (root.path / "daemon.log").read_text()
    assert "stage.interrupted" in log and "stage.crashed" not in log, log[-2000:]
    root.start("-j", "1")                            # runs again at once
    wait_for(lambda: root.q("SELECT id FROM jobs WHERE status = 'running'"), timeout=30, what="planning again")
    assert root.q("SELECT retry_count FROM jobs")[0]["retry_count"] == 0


@pytest.mark.skipif(subprocess.run(["which", "strace"], capture_output=True).returncode != 0, reason="no strace")
def test_idle_daemon_makes_no_system_calls(root):
    root.start()
    time.sleep(1.0)   # let start-up finish
    out = root.path / "strace.txt"
    tracer = subprocess.Popen(["strace", "-f", "-p", str(root.daemon.pid), "-o", str(out)],
                              stderr=subprocess.DEVNULL)
    time.sleep(4)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=10)
    lines = [l for l in out.read_text().splitlines() if l.strip()]
    # Only the calls the daemon was already blocked in may show up (resumed or detached): the
    # main thread's epoll_wait, and the checkpoint thread's futex wait, which the attach
    # interrupts and the kernel restarts, so strace shows it once as a fresh call.
    calls = [l for l in lines if not re.search(r"epoll_wait|restart_syscall|<detached|\+\+\+|resumed>", l)]
    waits = [l for l in calls if re.match(r"\d+\s+futex\(.*FUTEX_WAIT", l)]
    assert len({l.split()[0] for l in waits}) == len(waits), f"a thread waited more than once: {lines}"
    assert [l for l in calls if l not in waits] == [], lines
    assert any("epoll_wait" in l or "restart_syscall" in l for l in lines) or lines == []
    # and it is still alive and reacts at once
    t0 = time.monotonic()
    root.drop(root.idea("Wake up"), "w.json")
    wait_for(lambda: root.q("SELECT id FROM episodes"), what="ingest after idle")
    assert time.monotonic() - t0 < 5
    root.stop()
