"""A clock set while the daemon waits (issue 9, environment faults): retry
deadlines and hold releases are times of day, so a clock jumped forward
releases what is now due at once, and one set back neither loses the retry
nor makes the daemon spin.  Setting the clock disturbs every process on the
machine, so these tests run only from `make test-clock` (nothing else
running, as root); the ordinary suite skips them."""
import os
import signal
import time

import pytest

from conftest import wait_for

pytestmark = pytest.mark.skipif(os.environ.get("ACOG_CLOCK_TESTS") != "1",
                                reason="sets the system clock: run by `make test-clock` alone")

JUMP = 120.0  # seconds: past the 60 s retry deadline below


def set_clock(delta):
    time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_REALTIME) + delta)


@pytest.fixture
def retrying(root):
    """A daemon whose only episode waits 60 s for its planning retry."""
    root.start_waiting_for_a_retry("c", 60, 60)
    yield root
    root.stop(signal.SIGKILL)


def attempts(root):
    return root.q("SELECT retry_count FROM jobs")[0]["retry_count"]


def test_clock_jumped_forward_runs_the_due_retry_at_once(retrying):
    r = retrying
    before = attempts(r)
    set_clock(+JUMP)
    try:
        # Without a wall-clock timer the retry would wait its 60 s of monotonic time.
        wait_for(lambda: attempts(r) > before, timeout=5, what="the retry the jump made due")
    finally:
        set_clock(-JUMP)
    assert "clock.set" in r.log.read_text()


def test_clock_set_back_keeps_the_retry_and_does_not_spin(retrying):
    r = retrying
    before = attempts(r)
    at = r.q("SELECT next_attempt_at FROM jobs")[0]["next_attempt_at"]
    cpu0 = cpu_seconds(r.daemon.pid)
    set_clock(-JUMP)
    try:
        time.sleep(2)
        assert attempts(r) == before, "a clock set back runs nothing early"
        assert cpu_seconds(r.daemon.pid) - cpu0 < 0.2, "the daemon must not spin after the clock is set back"
        assert r.q("SELECT status FROM jobs")[0]["status"] == "queued"
    finally:
        set_clock(+JUMP)
    # Back at the true time the deadline is where it was.
    assert r.q("SELECT next_attempt_at FROM jobs")[0]["next_attempt_at"] == at
    assert "clock.set" in r.log.read_text()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
