"""YouTube publishing (issue 8): the `youtube` upload provider against the
strict fake (tests/fakes/fake_youtube.py), through the real daemon, SQLite,
libcurl and ffmpeg.

Episodes are made once per test by the offline pipeline and stop at the
review gate; the test then arms the fake's faults and approves.  Small
videos are grown by appending bytes to final.mp4 before approval (the fake
stores what it receives, so "the bytes on the fake equal final.mp4" still
holds), which gives several 256 KiB chunks, or >= 50 MB for the SIGKILL
test.  The quota clock is shifted with ACOG_TEST_CLOCK_OFFSET, honoured
only by the sanitizer build (-DACOG_TEST).
"""
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from cloudkit import Fake
from conftest import BIN, wait_for

CLIENT_ID = "acog-test-client.apps.googleusercontent.com"
SECRET_ENV = "YT_CLIENT_SECRET"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def http_get(url):
    """GET without following redirects: (status, headers, body)."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        r = opener.open(url, timeout=20)
        return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class YT:
    """One fake YouTube, the channels publishing to it, and helpers."""

    def __init__(self, root, tmp, *args):
        self.root = root
        self.secret = "yt-secret-" + os.urandom(8).hex()
        self.refresh = "1//yt-refresh-" + os.urandom(8).hex()
        self.fake = Fake("youtube", tmp / "fake-yt", args=["--client-id", CLIENT_ID, "--client-secret",
                                                          self.secret, "--refresh-token", self.refresh,
                                                          "--scopes", "https://www.googleapis.com/auth/youtube.upload "
                                                          "https://www.googleapis.com/auth/youtube.readonly "
                                                          "https://www.googleapis.com/auth/youtube", *args])
        self.env = dict(os.environ, **{SECRET_ENV: self.secret})

    def options(self, **more):
        o = {"name": "youtube", "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
             "api_base": self.fake.url, "token_url": self.fake.url + "/token", "chunk_mib": 0.25,
             "auth_url": self.fake.url + "/o/oauth2/v2/auth", "device_url": self.fake.url + "/device/code"}
        o.update(more)
        return o

    def channel(self, cid, token=True, **opts):
        self.root.channel(cid, review="true", extra="  upload: %s\n" % json.dumps(self.options(**opts)))
        if token:
            self.write_token(cid, self.refresh)

    def write_token(self, cid, value):
        d = self.root.path / "channels" / cid / "secrets"
        d.mkdir(mode=0o700, exist_ok=True)
        p = d / "youtube-refresh-token"
        p.write_text(value + "\n")
        p.chmod(0o600)

    def acog_yaml(self, extra=""):
        (self.root.path / "acog.yaml").write_text(
            "retry: {max_retries: 3, base_seconds: 0.2, max_seconds: 1}\n"
            "http: {max_attempts: 3, backoff_base: 0.1, backoff_cap: 0.5}\n" + extra)

    def drain(self, env=None):
        with open(self.root.log, "a") as log:
            p = subprocess.run([BIN, "-C", str(self.root.path), "run", "--drain"], stdout=log, stderr=log,
                               timeout=600, env=env or self.env)
        assert p.returncode == 0, self.root.log.read_text()[-3000:]

    def start(self, env=None):
        r = self.root
        before = r.log.read_text().count("daemon.started") if r.log.exists() else 0
        with open(r.log, "a") as logf:
            r.daemon = subprocess.Popen([BIN, "-C", str(r.path), "run"], stdout=logf, stderr=logf,
                                        env=env or self.env)
        wait_for(lambda: r.log.read_text().count("daemon.started") > before, what="daemon start")

    def episodes(self, n, channel="t"):
        """n episodes of `channel` waiting at review, oldest first."""
        for i in range(n):
            self.root.drop(self.root.idea(f"Topic {channel} {i}", channel=channel))
        self.drain()
        st = self.root.status()
        rows = sorted((e for e in st if e["channel"] == channel and e["state"] == "awaiting-approval"),
                      key=lambda e: e["created_at"])
        assert len(rows) == n, st
        return rows

    def grow(self, ep, nbytes):
        """Append nbytes to the episode's final.mp4 (more chunks to upload)."""
        p = self.root.episode_dir(ep["id"]) / "final.mp4"
        with open(p, "ab") as f:
            left = nbytes
            while left > 0:
                f.write(os.urandom(min(left, 1 << 20)))
                left -= 1 << 20
        return p

    def approve(self, ep):
        self.root.cli("approve", ep["ticket"], "--by", "tess")

    # -- the fake's side
    def videos(self):
        p = self.fake.dir / "youtube_videos.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def ranges(self):
        p = self.fake.dir / "youtube_ranges.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def published(self, ep):
        row = self.root.q("SELECT status, published_url FROM episodes WHERE id = ?", ep["id"])[0]
        return row


def video_of(yt, ep):
    """The one video on the fake made for this episode (matched by marker)."""
    mine = [v for v in yt.videos() if f"[acog:{ep['id']}]" in v["resource"]["snippet"]["description"]]
    assert len(mine) == 1, f"{len(mine)} videos on the fake for episode {ep['id']}"
    return mine[0]


def assert_published_once(yt, ep):
    v = video_of(yt, ep)
    final = yt.root.episode_dir(ep["id"]) / "final.mp4"
    assert Path(v["path"]).read_bytes() == final.read_bytes(), "the video on the fake differs from final.mp4"
    row = yt.published(ep)
    assert row["status"] == "published", row
    assert row["published_url"] == f"https://www.youtube.com/watch?v={v['id']}", row
    pub = json.loads((yt.root.episode_dir(ep["id"]) / "publish.json").read_text())
    assert pub["video_id"] == v["id"] and pub["provider"] == "youtube"
    return v


@pytest.fixture
def yt(root, tmp_path):
    y = YT(root, tmp_path)
    y.acog_yaml()
    y.channel("t")
    yield y
    y.fake.stop()


# ---------------------------------------------------------------------------
# Every fault: the upload completes with exactly one video equal to final.mp4.

FAULTS = {
    "dropped_mid_chunk": [{"match": "upload_id=", "method": "PUT", "fault": "reset", "after_bytes": 400000}],
    "308_partial": [{"match": "upload_id=", "method": "PUT", "fault": "308_partial", "keep_bytes": 0}],
    "500_and_503": [{"match": "upload_id=", "method": "PUT", "fault": "500"},
                    {"match": "upload_id=", "method": "PUT", "fault": "503"}],
    "401_expired_token": [{"match": "thumbnails/set", "fault": "error_401"}],
    "session_expired": [{"match": "upload_id=", "method": "PUT", "fault": "session_expired"}],
}


def test_each_fault_completes_with_one_video(yt):
    eps = yt.episodes(len(FAULTS))
    for (name, rules), ep in zip(FAULTS.items(), eps):
        yt.grow(ep, 3 * 262144 + 1000)
        refreshes = yt.fake.submissions().get("youtube_token_refresh", 0)
        yt.fake.faults(rules)
        yt.approve(ep)
        yt.drain()
        state = json.loads((yt.fake.dir / "faults_state.json").read_text())
        assert all(r["used"] >= 1 for r in state), (name, state)
        v = assert_published_once(yt, ep)
        mine = [r for r in yt.ranges() if r["fault"] != "dropped"]
        if name == "401_expired_token":
            assert yt.fake.submissions()["youtube_token_refresh"] >= refreshes + 2, "no refresh after the 401"
        if name == "dropped_mid_chunk":
            dropped = [r for r in yt.ranges() if r["fault"] == "dropped"]
            assert dropped and dropped[-1]["kept"] > 0
            # resumed where the server was, not from zero
            allr = yt.ranges()
            nxt = allr[allr.index(dropped[-1]) + 1]
            assert nxt["first"] == dropped[-1]["first"] + dropped[-1]["kept"], nxt
            assert not any(r["first"] == 0 and r["upload_id"] == dropped[-1]["upload_id"] for r in mine)
        assert v["resource"]["status"]["privacyStatus"] == "private"
    assert yt.fake.submissions()["youtube_uploads_completed"] == len(FAULTS)
    assert yt.fake.submissions().get("youtube_thumbnails", 0) == len(FAULTS)
    # made_for_kids / synthetic_media are always sent, defaults false / true
    inserts = yt.fake.requests(path="uploadType=resumable", method="POST", status=200)
    assert inserts and all(r["json"]["status"]["selfDeclaredMadeForKids"] is False and
                           r["json"]["status"]["containsSyntheticMedia"] is True for r in inserts)
    # no secret under the root or in the logs
    for f in yt.root.path.rglob("*"):
        if f.is_file() and "secrets" not in f.parts and f.suffix != ".db":
            data = f.read_bytes()
            assert yt.secret.encode() not in data and yt.refresh.encode() not in data, f


def test_metadata_limits_and_flags(yt):
    yt.channel("t", made_for_kids=True, synthetic_media=False, privacy="unlisted",
               playlist_id="PLfake", captions=True)
    ok, bad = yt.episodes(2)
    meta = yt.root.episode_dir(bad["id"]) / "metadata.json"
    m = json.loads(meta.read_text())
    m["final_title"] = "x" * 101
    meta.write_text(json.dumps(m))
    # the channel needs force-ssl for captions: authorise it (loopback, pasted URL)
    run_auth_paste(yt, "t")
    yt.approve(bad)
    yt.approve(ok)
    yt.drain()
    assert yt.published(bad)["status"] == "failed"
    err = yt.root.show(bad["id"])
    assert "100" in json.dumps(err) and "title" in json.dumps(err)
    v = assert_published_once(yt, ok)
    st = v["resource"]["status"]
    assert st["selfDeclaredMadeForKids"] is True and st["containsSyntheticMedia"] is False
    assert st["privacyStatus"] == "unlisted"
    subs = yt.fake.submissions()
    assert subs.get("youtube_playlist_items") == 1 and subs.get("youtube_captions") == 1
    assert subs["youtube_uploads_completed"] == 1


def test_playlist_and_captions_survive_a_lost_answer(yt):
    """The fake adds the video to the playlist (and the caption track), then
    the answer is lost: the retried stage finds them and adds neither twice."""
    yt.channel("t", playlist_id="PLfake", captions=True)
    (ep,) = yt.episodes(1)
    run_auth_paste(yt, "t")     # captions need youtube.force-ssl
    yt.fake.faults([{"match": "/youtube/v3/playlistItems?part=snippet", "method": "POST", "fault": "reset",
                     "after_handler": True},
                    {"match": "/upload/youtube/v3/captions", "method": "POST", "fault": "reset",
                     "after_handler": True}])
    yt.approve(ep)
    yt.drain()
    state = json.loads((yt.fake.dir / "faults_state.json").read_text())
    assert all(r["used"] == 1 for r in state), state
    v = assert_published_once(yt, ep)
    subs = yt.fake.submissions()
    assert subs.get("youtube_playlist_items") == 1 and subs.get("youtube_captions") == 1, subs
    listed = [r for r in yt.fake.requests(path="/youtube/v3/playlistItems", method="GET", status=200)
              if "playlistId=PLfake" in r["path"] and v["id"] in r["path"]]
    assert listed, "the playlist was not looked at before the insert"


# ---------------------------------------------------------------------------
# SIGKILL of the daemon during a >= 50 MB upload resumes at the server's offset.

def test_sigkill_resumes_from_server_offset(yt):
    yt.channel("t", chunk_mib=1)
    (ep,) = yt.episodes(1)
    yt.grow(ep, 50 * 1024 * 1024)
    # slow every chunk a little so the kill lands mid-upload
    yt.fake.faults([{"match": "upload_id=", "method": "PUT", "fault": "stall", "seconds": 0.2, "times": -1}])
    yt.start()
    yt.approve(ep)
    wait_for(lambda: len(yt.ranges()) >= 8, timeout=120, what="8 chunks on the fake")
    yt.root.daemon.send_signal(signal.SIGKILL)
    yt.root.daemon.wait(30)
    held = max(r["first"] for r in yt.ranges())
    # the cut-off upload's progress shows in `show` (text and JSON)
    shown = json.loads(yt.root.cli("show", ep["id"], "--json").stdout)["upload_progress"]
    assert int(shown.split("/")[0]) > 0 and int(shown.split("/")[1]) > 50 * 1024 * 1024, shown
    assert "uploaded %s bytes" % shown in yt.root.cli("show", ep["id"]).stdout
    time.sleep(1)   # the stage child dies with the daemon (PDEATHSIG)
    n_before = len(yt.ranges())
    yt.fake.faults([])
    yt.drain()
    after = yt.ranges()[n_before:]
    assert after and after[0]["first"] >= held, (held, after[:2])
    assert sum(1 for r in yt.ranges() if r["first"] == 0) == 1, "a range from zero was sent twice"
    assert len({r["upload_id"] for r in yt.ranges()}) == 1, "a second session was made"
    assert_published_once(yt, ep)
    prog = yt.root.q("SELECT value FROM provider_state WHERE episode_id = ? AND key = 'yt_progress'", ep["id"])
    assert prog and prog[0]["value"].split("/")[0] != "0"


# ---------------------------------------------------------------------------
# Holds: quota until Pacific midnight, uploadLimitExceeded per channel, auth.

def pacific_midnight_offset(seconds_before):
    """ACOG_TEST_CLOCK_OFFSET putting 'now' seconds_before a Pacific midnight."""
    now = time.time()
    # PST/PDT by the US rule, like src/quota.c; a few seconds either side of a
    # DST change do not matter here.
    t = datetime.datetime.utcfromtimestamp(now)
    off = -7 if 3 < t.month < 11 else -8
    local = now + off * 3600
    nxt = (local // 86400 + 1) * 86400 - off * 3600
    return nxt - seconds_before - now


def test_quota_hold_and_release_at_reset(yt):
    yt.acog_yaml("youtube_quota: {uploads_per_day: 1}\n")
    a, b = yt.episodes(2)
    env = dict(yt.env, ACOG_TEST_CLOCK_OFFSET=str(pacific_midnight_offset(20)))
    yt.start(env=env)
    yt.approve(a)
    wait_for(lambda: yt.published(a)["status"] == "published", timeout=120, what="first upload")
    t0 = time.monotonic()
    yt.approve(b)
    wait_for(lambda: yt.root.q("SELECT hold_kind FROM episodes WHERE id = ?", b["id"])[0]["hold_kind"] == "quota",
             timeout=60, what="quota hold")
    wait_for(lambda: yt.published(b)["status"] == "published", timeout=90, what="release at the reset")
    assert time.monotonic() - t0 >= 5
    assert yt.fake.submissions()["youtube_uploads_completed"] == 2
    days = yt.root.q("SELECT date, units_used FROM youtube_quota_usage WHERE bucket = 'upload' ORDER BY date")
    assert len(days) == 2 and all(d["units_used"] == 1 for d in days), days


def test_upload_limit_holds_one_channel(yt):
    yt.channel("u")
    (a,) = yt.episodes(1, "t")
    (b,) = yt.episodes(1, "u")
    yt.fake.faults([{"match": "uploadType=resumable", "method": "POST", "fault": "upload_limit"}])
    yt.approve(a)
    yt.drain()
    row = yt.root.q("SELECT hold_kind, hold_until FROM episodes WHERE id = ?", a["id"])[0]
    assert row["hold_kind"] == "upload_limit"
    yt.approve(b)
    yt.drain()
    assert_published_once(yt, b)
    assert yt.published(a)["status"] != "published"


def test_invalid_grant_holds_until_auth(yt):
    yt.write_token("t", "1//revoked-token")
    (ep,) = yt.episodes(1)
    yt.approve(ep)
    yt.drain()
    row = yt.root.q("SELECT hold_kind FROM episodes WHERE id = ?", ep["id"])[0]
    assert row["hold_kind"] == "auth"
    assert "acog-batch auth youtube t" in json.dumps(yt.root.show(ep["id"]))
    run_auth_loopback(yt, "t")
    yt.drain()
    assert_published_once(yt, ep)


# ---------------------------------------------------------------------------
# `auth youtube`: loopback (browser redirect, or pasted URL) and device flows.

def start_auth(yt, channel, *extra):
    return subprocess.Popen([BIN, "-C", str(yt.root.path), "auth", "youtube", channel, *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=yt.env)


def consent_url(p):
    for line in p.stdout:
        m = re.search(r"(http://127\.0\.0\.1:\d+/o/oauth2/v2/auth\?\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(p.stderr.read())


def check_token(yt, channel):
    tok = yt.root.path / "channels" / channel / "secrets" / "youtube-refresh-token"
    assert oct(tok.stat().st_mode & 0o777) == "0o600"
    assert tok.read_text().startswith("1//fake-refresh-") and tok.read_text().count("\n") == 1
    assert (tok.parent / "youtube-refresh-token.issued").exists()


def run_auth_loopback(yt, channel):
    p = start_auth(yt, channel)
    url = consent_url(p)
    assert "code_challenge_method=S256" in url and "state=" in url
    status, headers, _ = http_get(url)
    assert status == 302, status
    status, _, body = http_get(headers["Location"])      # the browser follows to our listener
    assert status == 200 and b"acog-batch" in body
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    check_token(yt, channel)


def run_auth_paste(yt, channel):
    p = start_auth(yt, channel)
    url = consent_url(p)
    _, headers, _ = http_get(url)
    loc = headers["Location"]
    forged = re.sub(r"state=[^&]+", "state=forged", loc)
    p.stdin.write(forged + "\n" + loc + "\n")
    p.stdin.flush()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "state does not match" in err
    check_token(yt, channel)


def test_auth_loopback_and_paste(yt):
    run_auth_loopback(yt, "t")
    assert yt.fake.submissions()["youtube_code_exchanges"] == 1
    run_auth_paste(yt, "t")
    assert yt.fake.submissions()["youtube_code_exchanges"] == 2
    # the refresh token is never printed
    tok = (yt.root.path / "channels/t/secrets/youtube-refresh-token").read_text().strip()
    assert tok not in yt.root.log.read_text() if yt.root.log.exists() else True


def test_auth_device_flow(yt):
    p = start_auth(yt, "t", "--device")
    code = None
    for line in p.stdout:
        m = re.search(r"open (\S+) and enter the code (\S+)", line)
        if m:
            code = m.group(2)
            status, _, _ = http_get(f"{m.group(1)}?user_code={code}")
            assert status == 200
            break
    assert code, p.stderr.read()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    check_token(yt, "t")
    assert yt.fake.submissions()["youtube_device_grants"] == 1
    scope = [r for r in yt.fake.requests(path="/device/code")][0]
    assert scope["status"] == 200      # the fake refuses youtube.upload in the device flow


def test_status_shows_quota_left_and_token_age(yt, tmp_path):
    """status: the quota left today per youtube channel, and an old token
    warned about in status and, once a day, by a webhook alert."""
    hook = Fake("webhook", tmp_path / "fake-hook")
    env = dict(yt.env, ACOG_WEBHOOK_URL=f"{hook.url}/webhook/acog-{os.urandom(8).hex()}")
    yt.acog_yaml("alerts: {webhook_url_env: ACOG_WEBHOOK_URL, format: discord}\n")
    issued = yt.root.path / "channels/t/secrets/youtube-refresh-token.issued"
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=6)
    issued.write_text(old.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    a, b = yt.episodes(2)
    yt.approve(a)
    yt.approve(b)
    yt.drain(env=env)
    assert_published_once(yt, a) and assert_published_once(yt, b)
    used = {r["bucket"]: r["units_used"] for r in yt.root.q("SELECT bucket, units_used FROM youtube_quota_usage")}
    assert used["upload"] == 2 and used["default"] > 0, used
    out = yt.root.cli("status").stdout
    m = re.search(r"channel t: YouTube quota left today \(Pacific [0-9-]+\): ([0-9,]+) of 10,000 units, "
                  r"98 of 100 uploads\n", out)
    assert m and int(m.group(1).replace(",", "")) == 10000 - used["default"], out
    assert "channel t: YouTube refresh token is 6 days old" in out and "acog-batch auth youtube t" in out, out
    msgs = wait_for(hook.webhooks, timeout=30, what="the token-age alert")
    time.sleep(1.0)
    msgs = [m for m in hook.webhooks() if "6 days old" in json.dumps(m["json"])]
    assert len(msgs) == 1, hook.webhooks()     # two upload stages, one alert a day
    hook.stop()


def test_doctor_warns_about_token_age(yt):
    issued = yt.root.path / "channels/t/secrets/youtube-refresh-token.issued"
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=6)
    issued.write_text(old.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    out = yt.root.cli("doctor", check=False).stdout
    assert "channel t is 6 days old" in out and "acog-batch auth youtube t" in out, out
    issued.unlink()
    (yt.root.path / "channels/t/secrets/youtube-refresh-token").unlink()
    out = yt.root.cli("doctor", check=False).stdout
    assert "channel t has no YouTube refresh token" in out, out
    run_auth_loopback(yt, "t")
    out = yt.root.cli("doctor", check=False).stdout
    assert re.search(r"ok\s+YouTube refresh token of channel t\n", out), out
