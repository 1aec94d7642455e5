"""systemd notify (issue 11 item 5): with $NOTIFY_SOCKET set the daemon sends
READY=1 once start-up is done, STATUS= when the summary changes and
STOPPING=1 on SIGTERM, as AF_UNIX datagrams (a path or an abstract name);
an idle daemon makes no system call."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, wait_for
from test_state import gated_channel


def recv_until(sock, want, timeout=30):
    got, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want(msg):
            return got
    raise AssertionError(f"no matching message in {got}")


def start(root, addr):
    env = dict(os.environ, NOTIFY_SOCKET=addr)
    log = open(root.log, "a")
    return subprocess.Popen([BIN, "-C", str(root.path), "run"], stdout=log, stderr=log, env=env)


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_status_stopping(root, tmp_path, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"acog-notify-test-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + name)
        addr = "@" + name
    else:
        addr = str(tmp_path / "notify.sock")
        sock.bind(addr)
    gated_channel(root, "n")
    root.drop(root.idea("Notified", channel="n"), "n.json")   # waiting at start-up
    d = start(root, addr)
    try:
        got = recv_until(sock, lambda m: m == "READY=1")
        assert not [m for m in got if m.startswith("STOPPING")]
        got = recv_until(sock, lambda m: m.startswith("STATUS=") and re.fullmatch(
            r"STATUS=0 running, 0 queued, 0 held", m) is not None, timeout=60)
        statuses = [m for m in got if m.startswith("STATUS=")]
        assert all(re.fullmatch(r"STATUS=\d+ running, \d+ queued, \d+ held", m) for m in statuses), statuses
        assert any(not m.startswith("STATUS=0 running") for m in statuses), "the running stage was reported"
        assert all(a != b for a, b in zip(statuses, statuses[1:])), "STATUS only when it changed"
        if shutil.which("strace") and not abstract:
            time.sleep(0.3)
            s = subprocess.run(["timeout", "-s", "INT", "2", "strace", "-p", str(d.pid)],
                               capture_output=True, text=True)
            calls = [l for l in s.stderr.splitlines() if re.search(r"\)\s+= ", l)]
            assert "attached" in s.stderr and calls == [], "idle is idle: " + s.stderr[-1500:]
        d.send_signal(signal.SIGTERM)
        recv_until(sock, lambda m: m == "STOPPING=1", timeout=10)
        assert d.wait(30) == 0
    finally:
        if d.poll() is None:
            d.kill()
        sock.close()


def test_no_socket_no_messages(root):
    """Without $NOTIFY_SOCKET nothing is sent and nothing breaks."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    gated_channel(root, "q")
    root.drop(root.idea("Quiet", channel="q"), "q.json")
    p = subprocess.run([BIN, "-C", str(root.path), "run", "--drain"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0 and "notify" not in p.stderr
    assert root.status()[0]["state"] == "awaiting-approval"
