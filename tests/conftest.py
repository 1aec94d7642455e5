"""Shared fixtures for the black-box tests.

The tests drive the real acog-batch binary (ACOG_BIN, the ASan+UBSan build
under `make test`) on a temporary root, with real inotify, SQLite, ffmpeg and
espeak-ng.  Nothing of acog-batch is mocked.
"""
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = os.environ.get("ACOG_BIN", str(REPO / "acog-batch"))

# A small, fast channel: tiny frames, fast x264, quick retries.
FAST_CHANNEL = """\
id: {id}
name: Test channel {id}
niche: testing
persona: {{name: Tess, voice: calm}}
style_guide: {{tone: plain}}
video: {{width: 320, height: 180, fps: 10, preset: ultrafast, burn_subtitles: true}}
gates: {{script_review: false, review: {review}}}
retry: {{max_retries: 3, base_seconds: 0.2, max_seconds: 1}}
providers:
  avatar: {{name: still, image: avatar.png}}
  broll: generated
{extra}"""


def run(args, root=None, check=True, timeout=300, **kw):
    cmd = [BIN] + (["-C", str(root)] if root else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-4000:]}")
    return p


def wait_for(cond, timeout=60, step=0.05, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Root:
    def __init__(self, path: Path):
        self.path = path
        self.daemon = None
        self.log = path / "daemon.log"

    # --- setup -------------------------------------------------------------
    def channel(self, cid="t", review="true", extra=""):
        d = self.path / "channels" / cid
        d.mkdir(parents=True, exist_ok=True)
        (d / "channel.yaml").write_text(FAST_CHANNEL.format(id=cid, review=review, extra=extra))
        avatar = d / "avatar.png"
        if not avatar.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                            "color=c=red:s=64x64:d=1", "-frames:v", "1", str(avatar)], check=True)
        return d

    # --- ideas -------------------------------------------------------------
    def drop(self, idea, name=None):
        """Drop an idea the way a careful producer does: write aside, rename in."""
        data = idea if isinstance(idea, (bytes, str)) else json.dumps(idea)
        if isinstance(data, str):
            data = data.encode()
        name = name or f"idea-{time.monotonic_ns()}.json"
        tmp = self.path / "spool" / "tmp" / (name + ".part")
        tmp.write_bytes(data)
        os.rename(tmp, self.path / "spool" / "incoming" / name)
        return name

    def idea(self, topic, channel="t", **kw):
        d = {"channel": channel, "topic": topic, "target_length_minutes": 0.3}
        d.update(kw)
        return d

    def start_waiting_for_a_retry(self, cid, base_seconds, max_seconds):
        """A daemon whose one episode waits base_seconds for its planning retry
        (the planning command exits 75, a temporary failure)."""
        d = self.channel(cid, extra="  planning: {name: command, argv: [/bin/sh, -c, 'exit 75']}\n")
        y = d / "channel.yaml"
        y.write_text(y.read_text().replace("base_seconds: 0.2, max_seconds: 1",
                                           f"base_seconds: {base_seconds}, max_seconds: {max_seconds}"))
        self.drop(self.idea("Later", channel=cid), "l.json")
        self.start()
        wait_for(lambda: self.q("SELECT 1 FROM jobs WHERE next_attempt_at IS NOT NULL"), what="a retry deadline")

    # --- commands ----------------------------------------------------------
    def cli(self, *args, check=True):
        return run(args, self.path, check=check)

    def drain(self, *extra, timeout=600):
        with open(self.log, "a") as log:
            p = subprocess.run([BIN, "-C", str(self.path), "run", "--drain", *extra],
                               stdout=log, stderr=log, timeout=timeout)
        assert p.returncode == 0, f"run --drain exited {p.returncode}; see {self.log}:\n{self.log.read_text()[-3000:]}"

    def start(self, *extra):
        before = self.log.read_text().count("daemon.started") if self.log.exists() else 0
        logf = open(self.log, "a")
        self.daemon = subprocess.Popen([BIN, "-C", str(self.path), "run", *extra], stdout=logf, stderr=logf)
        logf.close()
        wait_for(lambda: self.log.read_text().count("daemon.started") > before or self.daemon.poll() is not None,
                 what="daemon start")
        assert self.daemon.poll() is None, self.log.read_text()[-3000:]
        return self.daemon

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            self.daemon.wait(timeout=timeout)
        rc = self.daemon.returncode if self.daemon else None
        self.daemon = None
        return rc

    def status(self):
        return json.loads(self.cli("status", "--json", "--all").stdout)

    def show(self, ep):
        return json.loads(self.cli("show", ep, "--json").stdout)

    def db(self):
        con = sqlite3.connect(f"file:{self.path / 'acog.db'}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def q(self, sql, *args):
        con = self.db()
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def spool(self, d):
        return sorted(p.name for p in (self.path / "spool" / d).iterdir() if not p.name.startswith("."))

    def tickets(self):
        out = {}
        for d in (self.path / "spool").iterdir():
            for p in d.iterdir():
                if not p.name.startswith(".") and "." not in p.name:
                    out.setdefault(p.name, []).append(d.name)
        return out

    def episode_dir(self, ep):
        return Path(self.show(ep)["episode_dir"])


@pytest.fixture
def root(tmp_path):
    r = Root(tmp_path / "root")
    run(["init"], r.path)
    r.channel("t")
    yield r
    if r.daemon and r.daemon.poll() is None:
        r.stop(signal.SIGKILL)


def ffprobe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


@pytest.fixture
def cloud(root, tmp_path):
    """The fake provider servers of one test (tests/cloudkit.py), stopped after it."""
    from cloudkit import Cloud  # cloudkit imports this module: import it late
    c = Cloud(root, tmp_path / "fakes")
    yield c
    if root.daemon and root.daemon.poll() is None:
        root.stop(signal.SIGKILL)
    c.stop()

