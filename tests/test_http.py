"""Black-box tests of src/http.c (and alert.c) against the strict fakes.

tests/unit/http_probe.bin (built by `make unit`, ASan + UBSan) makes one
http_request() call the way a provider does and prints one JSON line:
{rc, status, retriable, retry_after, attempts, error, body_len, ms}.
Its per-attempt log lines (stage_log JSON) go to stderr.  The fakes record
every request in requests.jsonl with a millisecond timestamp, which is how
the waits between attempts are measured.  The whole file takes about 20 s.
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROBE = Path(os.environ.get("HTTP_PROBE", REPO / "tests" / "unit" / "http_probe.bin"))
FAKES = REPO / "tests" / "fakes"
KEY = "sk-probe-7f3a9c1e5b2d4f60"
AUTH = f"Authorization: Bearer {KEY}"
CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


class Fake:
    """One fake server process in its own state folder."""

    def __init__(self, state: Path, kind="openai", *extra):
        self.state = state
        state.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKES / "fakeserver.py"), "--kind", kind, "--port", "0",
             "--state-dir", str(state), "--api-key", KEY, *extra],
            stdout=subprocess.DEVNULL, stderr=open(state / "stderr.log", "w"))
        end = time.monotonic() + 15
        while not (state / "port").exists():
            assert self.proc.poll() is None, (state / "stderr.log").read_text()
            assert time.monotonic() < end, "the fake did not start"
            time.sleep(0.02)
        self.url = (state / "url").read_text().strip()

    def faults(self, rules):
        tmp = self.state / ".faults.json.tmp"
        tmp.write_text(json.dumps(rules))
        os.rename(tmp, self.state / "faults.json")

    def requests(self):
        p = self.state / "requests.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def times(self):
        return [datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
                for r in self.requests()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def fakes(tmp_path):
    started = []

    def start(kind="openai", *extra):
        f = Fake(tmp_path / f"fake-{len(started)}", kind, *extra)
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


@pytest.fixture
def fake(fakes):
    return fakes()


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "spool" / "tmp").mkdir(parents=True)
    return r


def probe(root, url, *args, env=None, timeout=60):
    assert PROBE.exists(), f"{PROBE} is missing: run `make unit`"
    e = dict(os.environ)
    e.pop("SSL_CERT_FILE", None)
    e.update(env or {})
    p = subprocess.run([str(PROBE), "--root", str(root), "--url", url, *args],
                       capture_output=True, text=True, timeout=timeout, env=e)
    assert p.stdout.strip(), f"no result (exit {p.returncode}):\n{p.stderr}"
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["log"] = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    out["stderr"] = p.stderr
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    assert (p.returncode == 0) == (out["rc"] == 0), p.stderr
    return out


def gaps(ts):
    return [round(b - a, 3) for a, b in zip(ts, ts[1:])]


# ---------------------------------------------------------------- retries

def test_429_retry_after_is_waited_then_success(fake, root):
    fake.faults([{"match": "/v1/chat/completions", "fault": "429", "retry_after": 1}])
    r = probe(root, fake.url + "/v1/chat/completions?api_key=QUERYSECRET", "--header", AUTH, "--body", CHAT)
    assert r["rc"] == 0 and r["status"] == 200 and r["attempts"] == 2, r
    g = gaps(fake.times())
    assert len(g) == 1 and g[0] >= 0.999, g          # ts has millisecond resolution
    assert g[0] < 1.5, g
    # one log line per attempt; never a header value, never the query string
    assert len(r["log"]) == 2, r["stderr"]
    assert "-> 429" in r["log"][0]["msg"] and "retrying in 1.00 s" in r["log"][0]["msg"], r["log"]
    assert "-> 200" in r["log"][1]["msg"]
    for text in (KEY, "Bearer", "[REDACTED]", "QUERYSECRET", "api_key="):
        assert text not in r["stderr"], text


@pytest.mark.parametrize("rule,low,high", [
    ({"retry_after": "0.4"}, 0.399, 0.9),
    ({"retry_after_ms": 300, "retry_after": 5}, 0.299, 0.8),   # retry-after-ms wins
    ({"retry_after_date": 2}, 0.9, 2.6),                       # an HTTP-date (1 s resolution)
], ids=["fractional", "retry-after-ms", "http-date"])
def test_retry_after_forms(fake, root, rule, low, high):
    fake.faults([dict({"match": "/v1/models", "fault": "429"}, **rule)])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == 0 and r["attempts"] == 2, r
    g = gaps(fake.times())
    assert low <= g[0] <= high, g


def test_503_twice_then_success_with_backoff(fake, root):
    fake.faults([{"match": "/v1/chat/completions", "fault": "503", "times": 2}])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT)
    assert r["rc"] == 0 and r["attempts"] == 3, r
    assert [q["status"] for q in fake.requests()] == [503, 503, 200]
    g = gaps(fake.times())
    # full jitter: uniform in [0, 0.5 * 2^n], capped at 8 s (acog.yaml http defaults)
    assert g[0] <= 0.5 + 0.15 and g[1] <= 1.0 + 0.15, g


def test_503_gives_up_after_max_attempts(fake, root):
    fake.faults([{"match": "/v1/models", "fault": "503", "times": -1, "message": "overloaded, come back"}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--max-attempts", "3")
    assert r["rc"] == -1 and r["attempts"] == 3 and r["retriable"] and r["status"] == 503, r
    assert r["error"].startswith("openai: HTTP 503: overloaded, come back"), r["error"]
    assert len(fake.requests()) == 3


def test_400_fails_fast_with_the_providers_message(fake, root):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 5})
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", body)
    assert r["rc"] == -1 and r["status"] == 400 and r["attempts"] == 1 and not r["retriable"], r
    assert r["error"].startswith("openai: HTTP 400: Invalid 'temperature'"), r["error"]
    assert len(fake.requests()) == 1


def test_429_insufficient_quota_is_permanent(fake, root):
    fake.faults([{"match": "/v1/models", "fault": "429", "insufficient_quota": True, "retry_after": "0.1"}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"], r
    assert "exceeded your current quota" in r["error"] and "insufficient_quota" in r["error"], r["error"]


def test_x_should_retry_is_obeyed(fake, root):
    fake.faults([{"match": "/v1/models", "fault": "503", "x_should_retry": False},
                 {"match": "/v1/models", "fault": "error_400", "x_should_retry": True}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"], r       # 503 but told not to
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == 0 and r["attempts"] == 2, r                                # 400 but told to


def test_connection_reset_is_retried(fake, root):
    fake.faults([{"match": "/v1/chat/completions", "fault": "reset"}])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT)
    assert r["rc"] == 0 and r["attempts"] == 2, r
    assert [q["status"] for q in fake.requests()] == [None, 200]


def test_not_idempotent_is_not_resent_once_sent(fake, root):
    fake.faults([{"match": "/v1/chat/completions", "fault": "reset"}])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT, "--not-idempotent")
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"], r
    assert "not resent" in r["error"], r["error"]
    assert len(fake.requests()) == 1


def test_not_idempotent_is_resent_when_nothing_was_sent(root):
    # nothing listens on port 9 of 127.0.0.1: the connection is refused before any byte goes out
    r = probe(root, "http://127.0.0.1:9/v1/chat/completions", "--body", CHAT, "--not-idempotent",
              "--max-attempts", "2")
    assert r["rc"] == -1 and r["attempts"] == 2 and r["retriable"] and r["status"] == 0, r
    assert not r["maybe_ran"], r
    assert "127.0.0.1" in r["error"], r["error"]


@pytest.mark.parametrize("rule", [
    {"fault": "500"}, {"fault": "502"}, {"fault": "504"},
    {"fault": "503"},                                   # no Retry-After: a gateway may say it too
    {"fault": "409"},
    {"fault": "502", "x_should_retry": True},           # a retry wish does not prove nothing was done
], ids=["500", "502", "504", "503-bare", "409", "502-should-retry"])
def test_not_idempotent_is_not_resent_after_an_ambiguous_answer(fake, root, rule):
    """A gateway error may come after the job was made: resending could pay twice."""
    fake.faults([dict({"match": "/v1/chat/completions", "times": -1}, **rule)])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT, "--not-idempotent")
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"] and r["maybe_ran"], r
    assert r["status"] == int(rule["fault"]) and "not resent" in r["error"], r["error"]
    assert len(fake.requests()) == 1
    assert "not resent (not idempotent)" in r["log"][0]["msg"], r["log"]
    # the same answers are resent for an ordinary request
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT, "--max-attempts", "2")
    assert r["attempts"] == 2 and not r["maybe_ran"], r


@pytest.mark.parametrize("rule", [
    {"fault": "429", "retry_after": "0.1"},
    {"fault": "503", "retry_after": "0.1"},
], ids=["429", "503-retry-after"])
def test_not_idempotent_is_resent_after_an_answer_proving_nothing_was_done(fake, root, rule):
    fake.faults([dict({"match": "/v1/chat/completions"}, **rule)])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT, "--not-idempotent")
    assert r["rc"] == 0 and r["status"] == 200 and r["attempts"] == 2, r
    assert [q["status"] for q in fake.requests()] == [int(rule["fault"]), 200]


def test_not_idempotent_refused_is_not_maybe_ran(fake, root):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 5})
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", body, "--not-idempotent")
    assert r["rc"] == -1 and r["status"] == 400 and r["attempts"] == 1 and not r["maybe_ran"], r
    assert "not resent" not in r["error"], r["error"]


def test_stall_times_out_and_is_retriable(fake, root):
    fake.faults([{"match": "/v1/models", "fault": "stall", "seconds": 4}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--timeout", "2", "--max-attempts", "1")
    assert r["rc"] == -1 and r["status"] == 0 and r["retriable"] and r["attempts"] == 1, r
    assert 1900 <= r["ms"] <= 3500, r["ms"]
    assert "timed out" in r["error"].lower(), r["error"]


def test_not_idempotent_is_not_resent_after_a_timeout(fake, root):
    fake.faults([{"match": "/v1/chat/completions", "fault": "stall", "seconds": 2, "times": -1}])
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body", CHAT, "--timeout", "1",
              "--not-idempotent")
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"], r
    assert "timed out" in r["error"].lower() and "not resent" in r["error"], r["error"]


def test_truncated_answer_is_retried(fake, root):
    fake.faults([{"match": "/v1/models", "fault": "truncate"}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == 0 and r["attempts"] == 2, r
    full = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["body_len"] == full["body_len"] > 0


def test_answer_larger_than_max_response_is_permanent(fake, root):
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--max-response", "50")
    assert r["rc"] == -1 and r["attempts"] == 1 and not r["retriable"], r
    assert "answer larger than 50 bytes" in r["error"], r["error"]


def test_max_response_from_acog_yaml(fake, root):
    (root / "acog.yaml").write_text("http: {max_response_mb: 0.00005, max_attempts: 2}\n")   # 52 bytes
    r = probe(root, fake.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == -1 and "answer larger than 52 bytes" in r["error"], r


# ---------------------------------------------------------------- downloads

def test_download_is_atomic(fake, root, tmp_path):
    out = tmp_path / "dl" / "models.json"
    out.parent.mkdir()
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--download", str(out))
    assert r["rc"] == 0 and json.loads(out.read_text())["object"] == "list", r
    assert sorted(p.name for p in out.parent.iterdir()) == ["models.json"]
    # a failed download leaves neither the file nor a temporary behind
    fake.faults([{"match": "/v1/models", "fault": "truncate", "times": -1}])
    out2 = out.parent / "again.json"
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--download", str(out2), "--max-attempts", "2")
    assert r["rc"] == -1 and r["attempts"] == 2 and r["retriable"], r
    assert sorted(p.name for p in out.parent.iterdir()) == ["models.json"]
    # an error answer goes to the error message, not into the file
    fake.faults([{"match": "/v1/models", "fault": "error_401"}])
    r = probe(root, fake.url + "/v1/models", "--header", AUTH, "--download", str(out2))
    assert r["rc"] == -1 and r["status"] == 401 and "HTTP 401" in r["error"], r
    assert not out2.exists()


# ---------------------------------------------------------------- bodies from files, answers

YT_KEY_HEADER = f"Authorization: Bearer {KEY}"
UNIT = 262144


def yt_session(fake, root, total):
    """A resumable upload session on the fake YouTube; its URI."""
    meta = json.dumps({"snippet": {"title": "probe"}, "status": {"privacyStatus": "private"}})
    r = probe(root, fake.url + "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
              "--provider", "youtube", "--header", YT_KEY_HEADER, "--body", meta,
              "--header", f"X-Upload-Content-Length: {total}", "--header", "X-Upload-Content-Type: video/mp4")
    assert r["rc"] == 0 and r["status"] == 200, r
    loc = [l.split(":", 1)[1].strip() for l in r["headers"].splitlines() if l.lower().startswith("location:")]
    assert loc and "upload_id=" in loc[0], r["headers"]
    return loc[0]


def yt_video(fake):
    lines = (fake.state / "youtube_videos.jsonl").read_text().splitlines()
    assert len(lines) == 1, lines
    return Path(json.loads(lines[0])["path"]).read_bytes()


def sparse_random(path, size):
    """A file of `size` bytes, random in 1 MiB blocks (cheap, and no two blocks alike)."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def test_body_file_range_is_streamed_with_bounded_memory(fakes, root, tmp_path):
    """64 MiB from the middle of a file arrive exactly, and the sender never holds them."""
    fake = fakes("youtube")
    src = tmp_path / "big.bin"
    offset, length = 3 * UNIT + 17, 64 << 20
    sparse_random(src, offset + length + 4099)
    base = probe(root, fake.url + "/youtube/v3/videos?part=id&id=none", "--provider", "youtube",
                 "--header", YT_KEY_HEADER)
    assert base["rc"] == 0, base
    uri = yt_session(fake, root, length)
    r = probe(root, uri, "--provider", "youtube", "--method", "PUT", "--body-file", str(src),
              "--body-offset", str(offset), "--body-length", str(length), "--timeout", "300", timeout=360)
    assert r["rc"] == 0 and r["status"] in (200, 201) and r["attempts"] == 1, r
    with open(src, "rb") as f:
        f.seek(offset)
        want = f.read(length)
    got = yt_video(fake)
    assert len(got) == length and got == want
    put = fake.requests()[-1]
    assert put["method"] == "PUT" and put["body_len"] == length
    assert put["headers"].get("Content-Type") == "application/octet-stream", put["headers"]
    # the peak resident size grew by far less than the 64 MiB sent (libcurl's buffer, not the file)
    grew = (r["maxrss_kib"] - base["maxrss_kib"]) / 1024
    assert grew < 16, f"peak RSS grew by {grew:.1f} MiB (base {base['maxrss_kib']} KiB)"


def test_308_is_an_answer_and_a_resent_chunk_starts_at_its_first_byte(fakes, root, tmp_path):
    fake = fakes("youtube")
    src = tmp_path / "video.bin"
    offset, total = 1000, 3 * UNIT + 5000
    sparse_random(src, offset + total)
    uri = yt_session(fake, root, total)
    chunk1 = ["--provider", "youtube", "--method", "PUT", "--body-file", str(src), "--body-offset", str(offset),
              "--body-length", str(2 * UNIT), "--header", f"Content-Range: bytes 0-{2 * UNIT - 1}/{total}"]
    # without --answers a 308 is an error like any other 3xx (and it is not retried)
    r = probe(root, uri, *chunk1)
    assert r["rc"] == -1 and r["status"] == 308 and r["attempts"] == 1 and not r["retriable"], r
    # declared as an answer: rc 0, and the Range header says what the server holds
    r = probe(root, uri, *chunk1, "--answers", "308")
    assert r["rc"] == 0 and r["status"] == 308 and r["attempts"] == 1 and r["error"] == "", r
    assert f"Range: bytes=0-{2 * UNIT - 1}" in r["headers"], r["headers"]
    # the last chunk: a 503 first, then the same bytes again from the range's first byte
    fake.faults([{"match": "upload_id=", "fault": "503", "retry_after": "0.1"}])
    r = probe(root, uri, "--provider", "youtube", "--method", "PUT", "--body-file", str(src),
              "--body-offset", str(offset + 2 * UNIT), "--header",
              f"Content-Range: bytes {2 * UNIT}-{total - 1}/{total}", "--answers", "308")
    assert r["rc"] == 0 and r["status"] in (200, 201) and r["attempts"] == 2, r
    assert json.loads(r["body"])["status"]["uploadStatus"] == "uploaded", r["body"]
    puts = [q for q in fake.requests() if q["method"] == "PUT"]
    assert [q["body_len"] for q in puts[-2:]] == [total - 2 * UNIT] * 2, puts
    assert yt_video(fake) == src.read_bytes()[offset:offset + total]


def test_body_file_range_beyond_the_file_is_refused(fake, root, tmp_path):
    src = tmp_path / "small.bin"
    src.write_bytes(b"x" * 100)
    r = probe(root, fake.url + "/v1/chat/completions", "--header", AUTH, "--body-file", str(src),
              "--body-offset", "50", "--body-length", "51")
    assert r["rc"] == -1 and r["attempts"] == 0 and not r["retriable"], r
    assert str(src) in r["error"] and "100 bytes" in r["error"], r["error"]
    assert fake.requests() == []


# ---------------------------------------------------------------- TLS

@pytest.fixture
def tls(fakes, tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(["sh", str(FAKES / "mkcert.sh"), str(certs)], check=True, capture_output=True)
    f = fakes("openai", "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"))
    return f, certs


def test_https_verifies_with_the_given_ca(tls, root):
    f, certs = tls
    assert f.url.startswith("https://")
    r = probe(root, f.url + "/v1/models", "--header", AUTH, "--ca", str(certs / "ca.pem"))
    assert r["rc"] == 0 and r["status"] == 200, r
    # SSL_CERT_FILE is the next place looked
    r = probe(root, f.url + "/v1/models", "--header", AUTH, env={"SSL_CERT_FILE": str(certs / "ca.pem")})
    assert r["rc"] == 0, r
    # acog.yaml ca_file comes before SSL_CERT_FILE
    (root / "acog.yaml").write_text(f"ca_file: {certs / 'ca.pem'}\n")
    r = probe(root, f.url + "/v1/models", "--header", AUTH, env={"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})
    assert r["rc"] == 0, r


def test_https_fails_without_the_ca(tls, root):
    f, _ = tls
    r = probe(root, f.url + "/v1/models", "--header", AUTH)     # the system bundle does not know the test CA
    assert r["rc"] == -1 and r["status"] == 0 and r["attempts"] == 1 and not r["retriable"], r
    assert "certificate" in r["error"].lower(), r["error"]
    assert f.requests() == []                                    # no request ever reached the server


def test_https_with_a_missing_ca_file_names_it(tls, root):
    f, _ = tls
    (root / "acog.yaml").write_text("ca_file: /nonexistent/ca.pem\n")
    r = probe(root, f.url + "/v1/models", "--header", AUTH)
    assert r["rc"] == -1 and r["attempts"] == 0 and not r["retriable"], r
    assert "/nonexistent/ca.pem" in r["error"], r["error"]


# ---------------------------------------------------------------- limits

def run_parallel(root, url, n):
    procs = [subprocess.Popen([str(PROBE), "--root", str(root), "--url", url, "--header", AUTH],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate(timeout=30) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err


def test_concurrency_limit_holds_across_processes(fake, root):
    (root / "acog.yaml").write_text("limits:\n  openai: {concurrency: 1}\n")
    fake.faults([{"match": "/v1/models", "fault": "stall", "seconds": 0.5, "times": -1}])
    run_parallel(root, fake.url + "/v1/models", 3)
    g = gaps(sorted(fake.times()))        # ts is taken when the answer leaves, after the stall
    assert len(g) == 2 and min(g) >= 0.45, g
    assert (root / "spool" / "tmp" / ".limit-openai-0.lock").exists()


def test_rate_limit_holds_across_processes(fake, root):
    (root / "acog.yaml").write_text("limits:\n  openai: {rps: 4, concurrency: 3}\n")
    run_parallel(root, fake.url + "/v1/models", 4)
    g = gaps(sorted(fake.times()))
    assert len(g) == 3 and min(g) >= 0.2, g                       # 1/rps = 0.25 s
    assert (root / "spool" / "tmp" / ".rate-openai.lock").exists()


# ---------------------------------------------------------------- alerts

def alert(root, kind, message, timeout=30):
    e = dict(os.environ)
    errlog = root / "alert-stderr.log"
    with open(errlog, "a") as err:   # the detached sender keeps stderr open: never a pipe here
        p = subprocess.run([str(PROBE), "--root", str(root), "--alert", kind, "--episode", "ep-1",
                            "--message", message], stdout=subprocess.PIPE, stderr=err, text=True,
                           timeout=timeout, env=e)
    assert p.returncode == 0, errlog.read_text()
    return json.loads(p.stdout)


def wait_for(cond, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_discord_alert_is_sent_without_blocking(fakes, root, monkeypatch):
    hook = fakes("webhook")
    url = hook.url + "/api/webhooks/1234/TOKENabcdefghijklmnop"
    monkeypatch.setenv("ACOG_TEST_WEBHOOK", url)
    (root / "acog.yaml").write_text("alerts: {webhook_url_env: ACOG_TEST_WEBHOOK, format: discord}\n")
    hook.faults([{"match": "/api/webhooks/", "fault": "429", "retry_after": "0.3"},
                 {"match": "/api/webhooks/", "fault": "stall", "seconds": 1.5}])
    r = alert(root, "episode_failed", "audio: HTTP 401 @everyone " + "x" * 3000)
    assert r["ms"] < 500, r                                      # the caller never waits for delivery
    lines = wait_for(lambda: (hook.state / "webhooks.jsonl").exists() and
                     (hook.state / "webhooks.jsonl").read_text().splitlines())
    msg = json.loads(lines[0])["json"]
    assert msg["username"] == "acog-batch" and msg["allowed_mentions"] == {"parse": []}
    assert msg["content"].startswith("acog-batch: episode failed - episode ep-1: audio: HTTP 401")
    assert len(msg["content"]) <= 2000 and msg["content"].endswith("...")
    assert [q["status"] for q in hook.requests()] == [429, 204]
    g = gaps(hook.times())
    assert g[0] >= 0.299 + 1.5, g                                 # Retry-After, then the stalled answer


def test_slack_alert_from_a_url_file(fakes, root):
    hook = fakes("webhook")
    f = root / "credentials" / "webhook.url"
    f.parent.mkdir()
    f.write_text(hook.url + "/services/T000/B000/SLACKTOKENxxxxxxxx\n")
    (root / "acog.yaml").write_text("alerts: {webhook_url_file: credentials/webhook.url, format: slack}\n")
    f.chmod(0o644)
    alert(root, "budget_hold", "channel t is over budget")
    err = (root / "alert-stderr.log").read_text()
    assert "chmod 600" in err and "SLACKTOKEN" not in err, err
    f.chmod(0o600)
    alert(root, "budget_hold", "channel t is over budget")
    line = wait_for(lambda: (hook.state / "webhooks.jsonl").exists() and
                    (hook.state / "webhooks.jsonl").read_text().splitlines())
    msg = json.loads(line[0])
    assert msg["shape"] == "slack" and msg["json"] == {
        "text": "acog-batch: budget hold - episode ep-1: channel t is over budget"}


def test_alerts_obey_limits_and_log_each_attempt(fakes, root, monkeypatch):
    hook = fakes("webhook")
    monkeypatch.setenv("ACOG_TEST_WEBHOOK", hook.url + "/api/webhooks/77/LIMITTOKEN0123456789")
    (root / "acog.yaml").write_text("alerts: {webhook_url_env: ACOG_TEST_WEBHOOK}\n"
                                    "limits:\n  webhook: {rps: 2, concurrency: 1}\n")
    hook.faults([{"match": "/api/webhooks/", "fault": "429", "retry_after": "0.1"}])
    for i in range(3):
        alert(root, "episode_failed", f"alert {i}")
    wait_for(lambda: len(hook.requests()) == 4)
    t = sorted(hook.times())
    # limits.webhook rps 2: sent 0.5 s apart, across processes.  Measured where
    # they arrive, so one request delayed in delivery on a busy machine shortens
    # the gap after it (0.659 then 0.343 s in one CI run): every pair of
    # requests k apart is at least k x 0.5 s apart, less 0.2 s of such delay.
    late = [(i, j, round(t[j] - t[i], 3)) for i in range(len(t)) for j in range(i + 1, len(t))
            if t[j] - t[i] < 0.5 * (j - i) - 0.2]
    assert not late and t[-1] - t[0] >= 1.45, (gaps(t), late)
    assert (root / "spool" / "tmp" / ".rate-webhook.lock").exists()
    errlog = root / "alert-stderr.log"
    wait_for(lambda: errlog.read_text().count("-> 204") == 3)
    lines = [json.loads(l) for l in errlog.read_text().splitlines() if l.startswith("{")]
    attempts = [l for l in lines if l["event"] == "http"]
    assert len(attempts) == 4 and {l.get("episode") for l in attempts} == {"ep-1"}, lines
    assert sum("-> 429" in l["msg"] and "retrying in" in l["msg"] for l in attempts) == 1, attempts
    assert "LIMITTOKEN" not in errlog.read_text()


def test_failed_alert_is_logged_without_the_url(fakes, root, monkeypatch):
    hook = fakes("webhook")
    monkeypatch.setenv("ACOG_TEST_WEBHOOK", hook.url + "/api/webhooks/99/SECRETTOKEN123456?wait=true")
    (root / "acog.yaml").write_text("alerts: {webhook_url_env: ACOG_TEST_WEBHOOK}\n")
    hook.faults([{"match": "/api/webhooks/", "fault": "error_404"}])
    alert(root, "stage_crashing", "broll crashed 3 times")
    errlog = root / "alert-stderr.log"
    wait_for(lambda: "alert.failed" in errlog.read_text())
    err = errlog.read_text()
    assert "SECRETTOKEN" not in err and "HTTP 404" in err, err
    assert len(hook.requests()) == 1                              # a 404 is never retried
