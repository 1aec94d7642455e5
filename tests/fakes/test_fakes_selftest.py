"""Self-tests of the strict fake provider servers (tests/fakes/).

Run:  /usr/bin/python3 -m pytest -q tests/fakes/test_fakes_selftest.py

Each fake runs as its own process on port 0 in a temporary state
directory, exactly as acog-batch's black-box tests start them.
"""

import base64
import email.utils
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_openai import validate  # noqa: E402

FAKESERVER = os.path.join(HERE, "fakeserver.py")
KEY = "test-key"
KINDS = ["openai", "elevenlabs", "heygen", "runway", "webhook", "youtube"]
CHUNK = 262144


# ---------------------------------------------------------------- plumbing

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(url, method="GET", body=None, headers=None, ctx=None, timeout=10):
    headers = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=headers)
    opener = urllib.request.build_opener(
        NoRedirect(), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


class Fake:
    """One fake server process."""

    def __init__(self, kind, state_dir, *extra, tls=None):
        self.kind = kind
        self.dir = str(state_dir)
        os.makedirs(self.dir, exist_ok=True)
        argv = [sys.executable, FAKESERVER, "--kind", kind, "--port", "0",
                "--state-dir", self.dir] + list(extra)
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        port_file = os.path.join(self.dir, "port")
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("fake %s did not start: %s" % (
                    kind, open(os.path.join(self.dir, "stderr.log")).read()))
            time.sleep(0.02)
        self.port = int(open(port_file).read())
        self.base = "%s://127.0.0.1:%d" % ("https" if tls else "http",
                                           self.port)
        self.auth = {"openai": {"Authorization": "Bearer " + KEY},
                     "elevenlabs": {"xi-api-key": KEY},
                     "heygen": {"X-Api-Key": KEY},
                     "runway": {"Authorization": "Bearer " + KEY,
                                "X-Runway-Version": "2024-11-06"},
                     "webhook": {}, "youtube": {}}[kind]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def req(self, method, path, body=None, headers=None, auth=True, **kw):
        h = dict(self.auth) if auth else {}
        h.update(headers or {})
        return call(self.base + path, method, body, h, **kw)

    def faults(self, rules):
        tmp = os.path.join(self.dir, "faults.json.tmp")
        with open(tmp, "w") as f:
            json.dump(rules, f)
        os.replace(tmp, os.path.join(self.dir, "faults.json"))

    def clear(self):
        for name in ("faults.json", "responses.json"):
            try:
                os.remove(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass

    def requests(self):
        with open(os.path.join(self.dir, "requests.jsonl")) as f:
            return [json.loads(line) for line in f]

    def submissions(self):
        with open(os.path.join(self.dir, "submissions.json")) as f:
            return json.load(f)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fakes")
    extra = {"youtube": ["--upload-cap", "1000"]}
    started = {k: Fake(k, root / k, *extra.get(k, [])) for k in KINDS}
    yt_auth(started["youtube"])
    yield started
    for f in started.values():
        f.stop()


@pytest.fixture
def fk(fakes):
    """The module's fakes with faults cleared before and after each test."""
    for f in fakes.values():
        f.clear()
    yield fakes
    for f in fakes.values():
        f.clear()


def make_mp3(path, seconds=1.0):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error",
                    "-nostdin", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=300:duration=%s" % seconds, "-c:a",
                    "libmp3lame", "-b:a", "64k", str(path)], check=True)
    return open(path, "rb").read()


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "format=duration:stream=codec_type,width,height",
                          "-of", "json", str(path)], check=True,
                         capture_output=True).stdout
    return json.loads(out)


def yt_token(f):
    r = f.req("POST", "/token", "client_id=test-client-id&client_secret="
              "test-client-secret&refresh_token=test-refresh-token&"
              "grant_type=refresh_token",
              {"Content-Type": "application/x-www-form-urlencoded"},
              auth=False)
    assert r.status == 200, r.body
    return r.json()["access_token"]


def yt_auth(f):
    if not f.auth:
        f.auth = {"Authorization": "Bearer " + yt_token(f)}
    return f.auth


VIDEO_META = {"snippet": {"title": "Why is the night sky dark?",
                          "description": "Olbers' paradox.",
                          "tags": ["space", "night sky"], "categoryId": "27"},
              "status": {"privacyStatus": "private",
                         "selfDeclaredMadeForKids": False,
                         "containsSyntheticMedia": True}}


def yt_session(f, total, meta=None):
    yt_auth(f)
    r = f.req("POST", "/upload/youtube/v3/videos?uploadType=resumable&"
              "part=snippet,status", meta or VIDEO_META,
              {"X-Upload-Content-Length": str(total),
               "X-Upload-Content-Type": "video/mp4",
               "Content-Type": "application/json; charset=UTF-8"})
    assert r.status == 200, r.body
    return r.headers["Location"]


def put(url, data, crange=None):
    headers = {"Content-Type": "video/mp4"}
    if crange:
        headers["Content-Range"] = crange
    return call(url, "PUT", data, headers)


# The good request of each kind, used for the generic checks and faults.
def good(f):
    k = f.kind
    if k == "openai":
        return f.req("POST", "/v1/chat/completions", {
            "model": "gpt-4o-mini", "messages": [
                {"role": "user", "content": "Write a script about the moon"}]})
    if k == "elevenlabs":
        return f.req("POST", "/v1/text-to-speech/voice1/with-timestamps",
                     {"text": "Hello there.", "model_id":
                      "eleven_multilingual_v2"})
    if k == "heygen":
        return f.req("POST", "/v2/video/generate", {"video_inputs": [{
            "character": {"type": "avatar", "avatar_id": "a1",
                          "avatar_style": "normal"},
            "voice": {"type": "text", "input_text": "Hi.",
                      "voice_id": "v1"}}],
            "dimension": {"width": 1280, "height": 720}})
    if k == "runway":
        return f.req("POST", "/v1/text_to_video", {
            "model": "gen4.5", "promptText": "stars", "ratio": "1280:720",
            "duration": 2})
    if k == "webhook":
        return f.req("POST", "/webhook/123/tok", {"content": "hello"})
    return f.req("POST", "/upload/youtube/v3/videos?uploadType=resumable&"
                 "part=snippet,status", VIDEO_META,
                 {"X-Upload-Content-Length": "10"})


GOOD_PATH = {"openai": "/v1/chat/completions",
             "elevenlabs": "/v1/text-to-speech/voice1/with-timestamps",
             "heygen": "/v2/video/generate", "runway": "/v1/text_to_video",
             "webhook": "/webhook/123/tok",
             "youtube": "/upload/youtube/v3/videos"}


def error_shape_ok(kind, r):
    body = r.json()
    if kind == "openai":
        return set(body["error"]) >= {"message", "type", "param", "code"}
    if kind == "elevenlabs":
        d = body["detail"]
        return isinstance(d, list) or {"message", "status"} <= set(d)
    if kind == "heygen":
        return ("error" in body and body.get("data", 0) is None) or \
            isinstance(body.get("code"), int)
    if kind == "runway":
        return isinstance(body["error"], str)
    if kind == "webhook":
        return "message" in body
    return {"code", "message", "errors"} <= set(body["error"])


# ---------------------------------------------------------------- generic

@pytest.mark.parametrize("kind", KINDS)
def test_good_request_and_accounting(fk, kind):
    f = fk[kind]
    r = good(f)
    assert r.status in (200, 204), r.body
    assert open(os.path.join(f.dir, "port")).read().strip() == str(f.port)
    last = f.requests()[-1]
    assert last["method"] == "POST" and last["status"] == r.status
    assert last["path"].startswith(GOOD_PATH[kind])
    assert last["body_len"] > 0 and isinstance(last["json"], dict)
    got = {k.lower(): v for k, v in last["headers"].items()}
    for k, v in f.auth.items():
        assert got[k.lower()] == v


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "webhook"])
def test_rejects_bad_and_missing_auth(fk, kind):
    f = fk[kind]
    if kind == "youtube":
        yt_auth(f)
    name = next(iter(f.auth))
    saved = dict(f.auth)
    try:
        f.auth = dict(saved, **{name: saved[name][:-1] + "X"})
        r = good(f)
        assert r.status == 401 and error_shape_ok(kind, r), r.body
        f.auth = {k: v for k, v in saved.items() if k != name}
        r = good(f)
        assert r.status == 401 and error_shape_ok(kind, r), r.body
    finally:
        f.auth = saved


def test_runway_version_header(fk):
    f = fk["runway"]
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720"}
    r = f.req("POST", "/v1/text_to_video", body,
              {"X-Runway-Version": "2023-01-01"})
    assert r.status == 400 and "version" in r.json()["error"].lower()
    r = f.req("POST", "/v1/text_to_video", body, auth=False,
              headers={"Authorization": "Bearer " + KEY})
    assert r.status == 400 and "X-Runway-Version" in r.json()["error"]


@pytest.mark.parametrize("kind", KINDS)
def test_rejects_wrong_content_type_and_bad_json(fk, kind):
    f = fk[kind]
    if kind == "youtube":
        yt_auth(f)
    path = GOOD_PATH[kind]
    if kind == "youtube":
        path += "?uploadType=resumable&part=snippet,status"
    r = f.req("POST", path, '{"a": 1}', {"Content-Type": "text/plain"})
    assert r.status in (400, 415, 422), r.body
    r = f.req("POST", path, '{"model": ', {"Content-Type":
                                           "application/json"})
    assert r.status in (400, 422), r.body
    assert error_shape_ok(kind, r)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_path_and_method(fk, kind):
    f = fk[kind]
    r = f.req("POST", "/nope/nothing", {"a": 1})
    assert r.status == 404
    # GET of the chat path lists stored completions (openai): PUT is wrong there
    r = f.req("PUT" if kind == "openai" else "GET", GOOD_PATH[kind])
    assert r.status in (404, 405)


# ---------------------------------------------------------------- faults

def parse_fault_date(value):
    return email.utils.parsedate_to_datetime(value).timestamp()


@pytest.mark.parametrize("kind", KINDS)
def test_fault_429_retry_after_forms(fk, kind):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": "429", "retry_after": 2},
              {"match": GOOD_PATH[kind], "fault": "429",
               "retry_after": 0.25},
              {"match": GOOD_PATH[kind], "fault": "429",
               "retry_after_date": 3}])
    r = good(f)
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    assert error_shape_ok(kind, r) or kind == "webhook"
    r = good(f)
    assert r.status == 429 and r.headers["Retry-After"] == "0.25"
    r = good(f)
    assert r.status == 429
    assert 0 < parse_fault_date(r.headers["Retry-After"]) - time.time() < 5
    assert good(f).status in (200, 204)
    assert [q["fault"] for q in f.requests()[-4:]] == ["429", "429", "429",
                                                       None]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault,status", [("500", 500), ("503", 503),
                                          ("error_400", 400),
                                          ("error_401", 401)])
def test_fault_status(fk, kind, fault, status):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": fault}])
    r = good(f)
    assert r.status == status, r.body
    assert error_shape_ok(kind, r), r.body
    assert good(f).status in (200, 204)


@pytest.mark.parametrize("kind", KINDS)
def test_fault_stall(fk, kind):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": "stall", "seconds": 0.4}])
    t0 = time.time()
    r = good(f)
    assert r.status in (200, 204) and time.time() - t0 >= 0.4


@pytest.mark.parametrize("kind", KINDS)
def test_fault_reset(fk, kind):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": "reset"}])
    with pytest.raises((ConnectionError, http.client.HTTPException,
                        urllib.error.URLError)) as e:
        good(f)
    assert not isinstance(e.value, urllib.error.HTTPError)
    assert good(f).status in (200, 204)


@pytest.mark.parametrize("kind", KINDS)
def test_fault_truncate(fk, kind):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": "truncate"}])
    with pytest.raises(http.client.IncompleteRead):
        good(f)
    assert good(f).status in (200, 204)


@pytest.mark.parametrize("kind", KINDS)
def test_fault_malformed_json(fk, kind):
    f = fk[kind]
    f.faults([{"match": GOOD_PATH[kind], "fault": "malformed_json"}])
    r = good(f)
    assert r.status == 200
    with pytest.raises(ValueError):
        r.json()


def test_fault_rules_times_method_and_rearm(fk):
    f = fk["runway"]
    rules = [{"match": "/v1/tasks/", "fault": "500"},
             {"match": "/v1/text_to_video", "method": "GET", "fault": "503"},
             {"match": "/v1/text_to_video", "fault": "503", "times": 2}]
    f.faults(rules)
    assert [good(f).status for _ in range(3)] == [503, 503, 200]
    state = json.load(open(os.path.join(f.dir, "faults_state.json")))
    assert [s["remaining"] for s in state] == [1, 1, 0]
    f.faults(rules)                 # a rewrite re-arms every rule
    assert good(f).status == 503
    f.faults([{"match": "", "fault": "503", "times": -1}])
    assert [good(f).status for _ in range(3)] == [503] * 3


# ---------------------------------------------------------------- openai

def chat(f, content, **extra):
    body = {"model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "You write videos."},
                         {"role": "user", "content": content}]}
    body.update(extra)
    return f.req("POST", "/v1/chat/completions", body)


PLAN_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["hook", "sections", "key_facts", "minutes", "tone", "ok",
                 "meta"],
    "properties": {
        "hook": {"type": "string", "maxLength": 200},
        "sections": {"type": "array", "minItems": 3, "items": {
            "type": "object", "additionalProperties": False,
            "required": ["title", "points"],
            "properties": {"title": {"type": "string", "maxLength": 60},
                           "points": {"type": "array",
                                      "items": {"type": "string"}}}}},
        "key_facts": {"type": "array", "items": {"type": "string"}},
        "minutes": {"type": "integer", "minimum": 1, "maximum": 10},
        "tone": {"type": "string", "enum": ["calm", "excited"]},
        "ok": {"type": "boolean"},
        "meta": {"anyOf": [{"$ref": "#/$defs/meta"}, {"type": "null"}]}},
    "$defs": {"meta": {"type": "object", "additionalProperties": False,
                       "required": ["score"],
                       "properties": {"score": {"type": "number",
                                                "minimum": 0,
                                                "maximum": 1}}}}}


def test_openai_text_script_and_usage(fk):
    r = chat(fk["openai"], "Write a script about why the night sky is dark")
    assert r.status == 200
    body = r.json()
    msg = body["choices"][0]["message"]["content"]
    for marker in ("[AVATAR]", "[VOICEOVER]", "[BROLL: "):
        assert marker in msg
    assert msg.count(".") >= 5
    u = body["usage"]
    assert u["prompt_tokens"] == 3 + 10
    assert u["completion_tokens"] == len(msg.split())
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert r.headers["x-request-id"]


def test_openai_json_schema_output_validates(fk):
    rf = {"type": "json_schema", "json_schema": {
        "name": "episode_plan", "strict": True, "schema": PLAN_SCHEMA}}
    r = chat(fk["openai"], "Plan an episode about tides", response_format=rf)
    assert r.status == 200, r.body
    doc = json.loads(r.json()["choices"][0]["message"]["content"])
    assert validate(doc, PLAN_SCHEMA) == []
    assert len(doc["sections"]) == 3 and len(doc["key_facts"]) == 2


def test_openai_json_schema_rejections(fk):
    f = fk["openai"]
    bad_name = {"type": "json_schema", "json_schema": {
        "name": "has space", "schema": {"type": "object"}}}
    r = chat(f, "x", response_format=bad_name)
    assert r.status == 400 and r.json()["error"]["param"] == \
        "response_format.json_schema.name"
    loose = {"type": "json_schema", "json_schema": {
        "name": "p", "strict": True, "schema": {
            "type": "object", "properties": {"a": {"type": "string"}},
            "required": ["a"]}}}
    r = chat(f, "x", response_format=loose)
    assert r.status == 400 and "additionalProperties" in \
        r.json()["error"]["message"]
    r = chat(f, "x", response_format={"type": "yaml"})
    assert r.status == 400
    r = f.req("POST", "/v1/chat/completions", {"messages": [
        {"role": "user", "content": "hi"}]})
    assert r.status == 400 and "model" in r.json()["error"]["message"]
    r = f.req("POST", "/v1/chat/completions", {"model": "m", "messages": []})
    assert r.status == 400
    r = chat(f, "x", temperature=3)
    assert r.status == 400 and r.json()["error"]["param"] == "temperature"
    r = chat(f, "x", stream=True)
    assert r.status == 400 and r.json()["error"]["param"] == "stream"
    r = chat(f, "x", max_tokens=10, model="o3-mini")
    assert r.status == 400 and r.json()["error"]["code"] == \
        "unsupported_parameter"


def test_openai_json_object(fk):
    f = fk["openai"]
    r = chat(f, "Give me a plan", response_format={"type": "json_object"})
    assert r.status == 400 and "json" in r.json()["error"]["message"]
    prompt = ("Answer in JSON following this schema:\n" +
              json.dumps(PLAN_SCHEMA) + "\nTopic: tides")
    r = chat(f, prompt, response_format={"type": "json_object"})
    doc = json.loads(r.json()["choices"][0]["message"]["content"])
    assert validate(doc, PLAN_SCHEMA) == []
    r = chat(f, 'Reply as JSON like {"title": "...", "tags": ["a"]}',
             response_format={"type": "json_object"})
    doc = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(doc) == {"title", "tags"}
    with open(os.path.join(f.dir, "responses.json"), "w") as fh:
        json.dump([{"match": "metadata", "content": {"final_title": "T"}}],
                  fh)
    r = chat(f, "Write the metadata as json",
             response_format={"type": "json_object"})
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {
        "final_title": "T"}


def test_openai_length_refusal_and_cap(fk):
    f = fk["openai"]
    rf = {"type": "json_schema", "json_schema": {"name": "plan",
                                                 "schema": PLAN_SCHEMA}}
    f.faults([{"match": "/chat/", "fault": "length"},
              {"match": "/chat/", "fault": "refusal"},
              {"match": "/chat/", "fault": "content_filter"}])
    c = chat(f, "plan", response_format=rf).json()["choices"][0]
    assert c["finish_reason"] == "length"
    with pytest.raises(ValueError):
        json.loads(c["message"]["content"])
    c = chat(f, "plan", response_format=rf).json()["choices"][0]
    assert c["message"]["refusal"] and c["message"]["content"] is None
    c = chat(f, "plan").json()["choices"][0]
    assert c["finish_reason"] == "content_filter"
    c = chat(f, "script", max_completion_tokens=5).json()["choices"][0]
    assert c["finish_reason"] == "length"
    assert len(c["message"]["content"].split()) == 5


def test_openai_insufficient_quota(fk):
    f = fk["openai"]
    f.faults([{"match": "", "fault": "429", "insufficient_quota": True}])
    r = chat(f, "x")
    assert r.status == 429 and r.json()["error"]["code"] == \
        "insufficient_quota"


def test_openai_local_server_mode(tmp_path):
    f = Fake("openai", tmp_path / "llama", "--no-json-schema", "--no-auth",
             "--flavor", "llamacpp")
    try:
        f.auth = {}
        rf = {"type": "json_schema", "json_schema": {"name": "plan",
                                                     "schema": PLAN_SCHEMA}}
        r = chat(f, "plan as json", response_format=rf)
        assert r.status == 400 and r.json()["error"]["code"] == 400
        r = chat(f, "plan as json", response_format={"type": "json_object"})
        assert r.status == 200
        f.faults([{"match": "", "fault": "503"}])
        r = chat(f, "x")
        assert r.status == 503 and r.json()["error"]["type"] == \
            "unavailable_error"
        assert "x-ratelimit-limit-requests" not in r.headers
    finally:
        f.stop()


def test_openai_tls(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run([os.path.join(HERE, "mkcert.sh"), str(certs)], check=True,
                   capture_output=True)
    assert oct(os.stat(certs / "server.key").st_mode & 0o777) == "0o600"
    f = Fake("openai", tmp_path / "tls", tls=(str(certs / "server.pem"),
                                               str(certs / "server.key")))
    try:
        ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        r = f.req("POST", "/v1/chat/completions", {
            "model": "m", "messages": [{"role": "user", "content": "hi"}]},
            ctx=ctx)
        assert r.status == 200 and f.base.startswith("https://")
        with pytest.raises(urllib.error.URLError):
            f.req("GET", "/v1/models", ctx=ssl.create_default_context())
    finally:
        f.stop()


# ---------------------------------------------------------------- elevenlabs

def test_elevenlabs_with_timestamps(fk, tmp_path):
    f = fk["elevenlabs"]
    text = "The night sky is dark because the universe is young."
    r = f.req("POST", "/v1/text-to-speech/v1x/with-timestamps?output_format="
              "mp3_44100_128", {"text": text, "model_id": "eleven_turbo_v2_5",
                                "voice_settings": {"stability": 0.5,
                                                   "similarity_boost": 0.75,
                                                   "style": 0,
                                                   "use_speaker_boost": True,
                                                   "speed": 1.0}})
    assert r.status == 200, r.body
    assert r.headers["request-id"]
    assert r.headers["character-cost"] == str((len(text) + 1) // 2)
    body = r.json()
    audio = base64.b64decode(body["audio_base64"])
    (tmp_path / "a.mp3").write_bytes(audio)
    info = probe(tmp_path / "a.mp3")
    duration = float(info["format"]["duration"])
    assert abs(duration - 0.06 * len(text)) < 0.2
    al = body["alignment"]
    assert "".join(al["characters"]) == text
    starts, ends = al["character_start_times_seconds"], \
        al["character_end_times_seconds"]
    assert len(starts) == len(ends) == len(text)
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts,
                                                                   ends))
    assert ends[-1] <= duration + 0.05


def test_elevenlabs_history(fk):
    f = fk["elevenlabs"]
    ids = []
    for text in ("First words for the history.", "Second words."):
        r = f.req("POST", "/v1/text-to-speech/histvoice1/with-timestamps",
                  {"text": text, "model_id": "eleven_multilingual_v2"})
        assert r.status == 200, r.body
        ids.append(r.headers["history-item-id"])
    r = f.req("GET", "/v1/history?voice_id=histvoice1&page_size=1")
    assert r.status == 200, r.body
    page = r.json()
    assert [i["history_item_id"] for i in page["history"]] == [ids[1]]
    assert page["has_more"] and page["last_history_item_id"] == ids[1]
    r = f.req("GET", "/v1/history?voice_id=histvoice1&page_size=1"
              "&start_after_history_item_id=" + ids[1])
    [item] = r.json()["history"]
    assert item["history_item_id"] == ids[0] and not r.json()["has_more"]
    assert item["text"] == "First words for the history."
    assert item["character_count_change_to"] - \
        item["character_count_change_from"] == len(item["text"])
    r = f.req("GET", "/v1/history?voice_id=histvoice1&date_after_unix=%d"
              % (item["date_unix"] + 3600))
    assert r.json()["history"] == []
    r = f.req("GET", "/v1/history/%s/audio" % ids[0])
    assert r.status == 200 and r.headers["Content-Type"] == "audio/mpeg"
    assert len(r.body) > 100
    assert f.req("GET", "/v1/history/nope/audio").status == 404
    for bad in ("page_size=0", "page_size=1001", "bogus=1",
                "date_after_unix=soon", "sort_direction=up"):
        r = f.req("GET", "/v1/history?" + bad)
        assert r.status == 422, (bad, r.body)
    assert f.req("GET", "/v1/history", auth=False).status == 401


def test_openai_stored_completions(fk):
    f = fk["openai"]
    msgs = [{"role": "user", "content": "Say something stored."}]
    r = f.req("POST", "/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": msgs, "store": True,
        "metadata": {"acog_request": "tag-selftest"}})
    assert r.status == 200, r.body
    cid = r.json()["id"]
    r = f.req("POST", "/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": msgs,
        "metadata": {"acog_request": "tag-selftest"}})   # not stored
    assert r.status == 200
    r = f.req("GET", "/v1/chat/completions?metadata%5Bacog_request%5D="
              "tag-selftest&limit=10")
    assert r.status == 200, r.body
    body = r.json()
    assert [c["id"] for c in body["data"]] == [cid] and not body["has_more"]
    assert body["data"][0]["metadata"] == {"acog_request": "tag-selftest"}
    r = f.req("GET", "/v1/chat/completions/" + cid)
    assert r.status == 200 and r.json()["choices"][0]["message"]["content"]
    assert f.req("GET", "/v1/chat/completions/chatcmpl-nope").status == 404
    for bad in ("limit=0", "limit=101", "order=up", "bogus=1"):
        r = f.req("GET", "/v1/chat/completions?" + bad)
        assert r.status == 400 and error_shape_ok("openai", r), (bad, r.body)
    for extra in ({"store": "yes"}, {"metadata": {"k%d" % i: "v"
                                                  for i in range(17)}},
                  {"metadata": {"k": 1}}):
        r = f.req("POST", "/v1/chat/completions",
                  dict({"model": "gpt-4o-mini", "messages": msgs}, **extra))
        assert r.status == 400, (extra, r.body)
    assert f.req("GET", "/v1/chat/completions", auth=False).status == 401


def test_elevenlabs_plain_and_formats(fk):
    f = fk["elevenlabs"]
    r = f.req("POST", "/v1/text-to-speech/v1x", {"text": "Hi there."})
    assert r.status == 200 and r.headers["Content-Type"] == "audio/mpeg"
    assert r.body[:3] == b"ID3" or r.body[0] == 0xFF
    r = f.req("POST", "/v1/text-to-speech/v1x?output_format=pcm_16000",
              {"text": "Hi there."})
    assert r.status == 200 and len(r.body) > 16000
    r = f.req("POST", "/v1/text-to-speech/v1x?output_format=mp3_1_1",
              {"text": "Hi"})
    assert r.status == 422


def test_elevenlabs_validation(fk):
    f = fk["elevenlabs"]
    p = "/v1/text-to-speech/v1x/with-timestamps"
    r = f.req("POST", p, {"text": "x" * 10001})
    assert r.status == 400
    assert r.json()["detail"]["status"] == "max_character_limit_exceeded"
    r = f.req("POST", p, {"text": "x" * 5001, "model_id": "eleven_v3"})
    assert r.status == 400 and r.json()["detail"]["code"] == \
        "max_character_limit_exceeded"
    r = f.req("POST", p, {"model_id": "eleven_v3"})
    assert r.status == 422 and r.json()["detail"][0]["loc"] == ["body",
                                                                "text"]
    r = f.req("POST", p, {"text": "hi", "voice_settings": {"stability": 2}})
    assert r.status == 422
    r = f.req("POST", p, {"text": "hi", "model_id": "eleven_v9"})
    assert r.status == 400
    r = f.req("POST", p, {"text": "hi", "previous_request_ids": ["a"] * 4})
    assert r.status == 400


# ---------------------------------------------------------------- heygen

def test_heygen_asset_generate_poll_download(fk, tmp_path):
    f = fk["heygen"]
    mp3 = make_mp3(tmp_path / "n.mp3", 1.5)
    r = f.req("POST", "/v1/asset", mp3, {"Content-Type": "audio/mpeg"})
    assert r.status == 200 and r.json()["code"] == 100
    asset = r.json()["data"]
    assert asset["file_type"] == "audio"
    r = f.req("POST", "/v1/asset", b"not an mp3 at all",
              {"Content-Type": "audio/mpeg"})
    assert r.status == 400 and r.json()["code"] == 400543
    before = f.submissions().get("heygen_generate", 0)
    r = f.req("POST", "/v2/video/generate", {"video_inputs": [{
        "character": {"type": "talking_photo", "talking_photo_id": "tp1"},
        "voice": {"type": "audio", "audio_asset_id": asset["id"]},
        "background": {"type": "color", "value": "#112233"}}],
        "dimension": {"width": 720, "height": 1280}, "title": "t"})
    assert r.status == 200 and r.json()["error"] is None
    vid = r.json()["data"]["video_id"]
    assert f.submissions()["heygen_generate"] == before + 1
    seen = []
    for _ in range(3):
        d = f.req("GET", "/v1/video_status.get?video_id=" + vid).json()
        seen.append(d["data"]["status"])
    assert seen == ["pending", "processing", "completed"]
    assert abs(d["data"]["duration"] - 1.5) < 0.2
    r = call(d["data"]["video_url"])
    assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(r.body)
    info = probe(tmp_path / "v.mp4")
    sizes = [(s.get("width"), s.get("height")) for s in info["streams"]
             if s["codec_type"] == "video"]
    assert sizes == [(180, 320)]
    assert call(d["data"]["thumbnail_url"]).body[:3] == b"\xff\xd8\xff"


def test_heygen_validation(fk):
    f = fk["heygen"]
    scene = {"character": {"type": "avatar", "avatar_id": "a"},
             "voice": {"type": "text", "input_text": "hi", "voice_id": "v"}}
    cases = [{"video_inputs": []},
             {"video_inputs": [scene] * 51},
             {},
             {"video_inputs": [dict(scene, voice={
                 "type": "audio", "audio_asset_id": "x",
                 "audio_url": "https://e/x.mp3"})]},
             {"video_inputs": [dict(scene, voice={"type": "audio"})]},
             {"video_inputs": [dict(scene, voice={
                 "type": "audio", "audio_asset_id": "unknown"})]},
             {"video_inputs": [scene], "dimension": {"width": 1281,
                                                     "height": 720}},
             {"video_inputs": [scene], "dimension": {"width": 64,
                                                     "height": 64}},
             {"video_inputs": [dict(scene, character={"type": "robot"})]}]
    for body in cases:
        r = f.req("POST", "/v2/video/generate", body)
        assert r.status == 400, body
        assert r.json()["data"] is None and r.json()["error"]
    r = f.req("GET", "/v1/video_status.get?video_id=nope")
    assert r.status == 404


def test_heygen_status_failed(fk):
    f = fk["heygen"]
    f.faults([{"match": "/v2/video/generate", "fault": "status_failed",
               "message": "avatar error"}])
    vid = good(f).json()["data"]["video_id"]
    seen = [f.req("GET", "/v1/video_status.get?video_id=" + vid).json()
            for _ in range(3)]
    assert [d["data"]["status"] for d in seen] == ["pending", "processing",
                                                   "failed"]
    assert seen[-1]["data"]["error"]["message"] == "avatar error"
    vid = good(f).json()["data"]["video_id"]
    f.faults([{"match": "video_status", "fault": "status_failed"}])
    d = f.req("GET", "/v1/video_status.get?video_id=" + vid).json()
    assert d["data"]["status"] == "failed"


# ---------------------------------------------------------------- runway

def test_runway_lifecycle_and_download(fk, tmp_path):
    f = fk["runway"]
    before = f.submissions().get("runway_create", 0)
    r = f.req("POST", "/v1/image_to_video", {
        "model": "gen4_turbo", "promptImage": [
            {"uri": "data:image/png;base64,iVBORw0KGgo=",
             "position": "first"}],
        "promptText": "a calm sea", "ratio": "720:1280", "duration": 2})
    assert r.status == 200, r.body
    tid = r.json()["id"]
    assert f.submissions()["runway_create"] == before + 1
    states = [f.req("GET", "/v1/tasks/" + tid).json() for _ in range(4)]
    assert [s["status"] for s in states] == ["PENDING", "THROTTLED",
                                             "RUNNING", "SUCCEEDED"]
    r = call(states[-1]["output"][0])
    assert r.status == 200
    (tmp_path / "r.mp4").write_bytes(r.body)
    assert abs(float(probe(tmp_path / "r.mp4")["format"]["duration"]) -
               2) < 0.3
    assert f.req("DELETE", "/v1/tasks/" + tid).status == 204
    assert f.req("GET", "/v1/tasks/" + tid).status == 404


def test_runway_validation_and_cancel(fk):
    f = fk["runway"]
    base = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720",
            "duration": 5}
    bad = [dict(base, model="gen4_turbo"),
           dict(base, model="veo3", duration=5),
           dict(base, ratio="1920:1080"),
           dict(base, duration=11),
           dict(base, promptText="y" * 1001),
           dict(base, promptText="\U0001F600" * 501),
           {k: v for k, v in base.items() if k != "promptText"},
           dict(base, model="nope")]
    for body in bad:
        r = f.req("POST", "/v1/text_to_video", body)
        assert r.status == 400, body
        assert r.json()["error"]
    r = f.req("POST", "/v1/image_to_video", dict(base, promptImage=
                                                  "http://insecure/x.png"))
    assert r.status == 400
    ok = f.req("POST", "/v1/text_to_video", dict(base, model="veo3.1",
                                                 duration=8,
                                                 ratio="1080:1920"))
    assert ok.status == 200
    tid = ok.json()["id"]
    assert f.req("DELETE", "/v1/tasks/" + tid).status == 204
    assert f.req("GET", "/v1/tasks/" + tid).json()["status"] == "CANCELLED"


def test_runway_status_failed(fk):
    f = fk["runway"]
    f.faults([{"match": "/v1/text_to_video", "fault": "status_failed",
               "code": "SAFETY.INPUT.TEXT", "after_polls": 1}])
    tid = good(f).json()["id"]
    s = [f.req("GET", "/v1/tasks/" + tid).json() for _ in range(2)]
    assert [x["status"] for x in s] == ["PENDING", "FAILED"]
    assert s[1]["failureCode"] == "SAFETY.INPUT.TEXT" and s[1]["failure"]


# ---------------------------------------------------------------- webhook

def test_webhook_shapes_and_records(fk):
    f = fk["webhook"]
    r = f.req("POST", "/webhook/1/t?wait=true", {
        "content": "alert", "username": "acog",
        "embeds": [{"title": "t", "description": "d", "color": 255,
                    "fields": [{"name": "n", "value": "v"}]}],
        "allowed_mentions": {"parse": []}})
    assert r.status == 200 and r.json()["content"] == "alert"
    assert f.req("POST", "/webhook/1/t", {"content": "x" * 2001}).status \
        == 400
    r = f.req("POST", "/webhook/1/t", {"embeds": [{"title": "t"}] * 11})
    assert r.status == 400 and r.json()["code"] == 50035
    assert f.req("POST", "/webhook/1/t", {"content": ""}).status == 400
    r = f.req("POST", "/webhook/slack/T0/B0/x", {"text": "hello"})
    assert r.status == 200 and r.body == b"ok"
    assert f.req("POST", "/webhook/slack/T0/B0/x", {"nope": 1}).status == 400
    lines = [json.loads(x) for x in open(os.path.join(f.dir,
                                                      "webhooks.jsonl"))]
    assert lines[-1]["shape"] == "slack" and lines[-1]["json"]["text"] == \
        "hello"
    assert any(x["shape"] == "discord" and x["json"].get("content") ==
               "alert" for x in lines)


def test_webhook_429_body(fk):
    f = fk["webhook"]
    f.faults([{"match": "/webhook/", "fault": "429", "retry_after": 0.5}])
    r = good(f)
    assert r.status == 429
    assert r.json()["retry_after"] == 0.5 and r.json()["global"] is False
    assert r.headers["X-RateLimit-Remaining"] == "0"


# ---------------------------------------------------------------- youtube

def test_youtube_token_errors(fk):
    f = fk["youtube"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    base = ("client_id=test-client-id&client_secret=test-client-secret&"
            "grant_type=refresh_token&refresh_token=")
    r = f.req("POST", "/token", base + "wrong", form, auth=False)
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    r = f.req("POST", "/token", base.replace("test-client-secret", "no") +
              "test-refresh-token", form, auth=False)
    assert r.status == 401 and r.json()["error"] == "invalid_client"
    r = f.req("POST", "/token", "grant_type=password", form, auth=False)
    assert r.json()["error"] == "unsupported_grant_type"
    r = f.req("POST", "/token", {"grant_type": "refresh_token"}, auth=False)
    assert r.status == 400 and r.json()["error"] == "invalid_request"
    f.faults([{"match": "/token", "fault": "invalid_grant"}])
    r = f.req("POST", "/token", base + "test-refresh-token", form,
              auth=False)
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    tok = yt_token(f)
    r = call(f.base + "/youtube/v3/videos?part=status&id=x",
             headers={"Authorization": "Bearer " + tok})
    assert r.status == 200 and r.json()["items"] == []


def test_youtube_chunked_upload_with_resume(fk, tmp_path):
    f = fk["youtube"]
    data = os.urandom(3 * CHUNK + 1000)
    total = len(data)
    url = yt_session(f, total)
    assert "upload_id=" in url
    r = put(url, data[:CHUNK], "bytes 0-%d/%d" % (CHUNK - 1, total))
    assert r.status == 308 and r.headers["Range"] == "bytes=0-%d" % (
        CHUNK - 1)
    r = put(url, data[CHUNK:CHUNK + 1000], "bytes %d-%d/%d" % (
        CHUNK, CHUNK + 999, total))
    assert r.status == 400     # not a multiple of 256 KiB
    # connection drops after 1.5 chunks: the fake keeps one whole chunk
    f.faults([{"match": "upload_id=", "fault": "reset",
               "after_bytes": CHUNK + CHUNK // 2}])
    with pytest.raises((ConnectionError, http.client.HTTPException,
                        urllib.error.URLError)):
        put(url, data[CHUNK:3 * CHUNK], "bytes %d-%d/%d" % (
            CHUNK, 3 * CHUNK - 1, total))
    r = put(url, b"", "bytes */%d" % total)
    assert r.status == 308 and r.headers["Range"] == "bytes=0-%d" % (
        2 * CHUNK - 1)
    r = put(url, data[2 * CHUNK:], "bytes %d-%d/%d" % (2 * CHUNK, total - 1,
                                                       total))
    assert r.status in (200, 201), r.body
    video = r.json()
    assert video["status"]["uploadStatus"] == "uploaded"
    stored = os.path.join(f.dir, "uploads", "youtube", video["id"] + ".mp4")
    assert open(stored, "rb").read() == data
    r = put(url, b"", "bytes */%d" % total)
    assert r.status == 200 and r.json()["id"] == video["id"]
    assert f.submissions()["youtube_uploads_completed"] >= 1

    # thumbnails.set and playlistItems.insert on the new video
    jpg = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error",
                          "-f", "lavfi", "-i", "color=c=red:s=64x36:d=1",
                          "-frames:v", "1", "-c:v", "mjpeg", "-f", "image2",
                          "pipe:1"], check=True, capture_output=True).stdout
    r = f.req("POST", "/upload/youtube/v3/thumbnails/set?videoId=" +
              video["id"], jpg, {"Content-Type": "image/jpeg"})
    assert r.status == 200 and r.json()["items"]
    r = f.req("POST", "/upload/youtube/v3/thumbnails/set?videoId=" +
              video["id"], b"GIF89a", {"Content-Type": "image/jpeg"})
    assert r.status == 400
    r = f.req("POST", "/upload/youtube/v3/thumbnails/set?videoId=nope",
              jpg, {"Content-Type": "image/jpeg"})
    assert r.status == 404
    r = f.req("POST", "/youtube/v3/playlistItems?part=snippet", {
        "snippet": {"playlistId": "PL1", "resourceId": {
            "kind": "youtube#video", "videoId": video["id"]}}})
    assert r.status == 200 and r.json()["snippet"]["position"] == 0
    quota = json.load(open(os.path.join(f.dir, "quota.json")))
    assert quota["units"] >= 100 + 50 + 50


def test_youtube_308_faults_and_expiry(fk):
    f = fk["youtube"]
    data = os.urandom(2 * CHUNK)
    url = yt_session(f, len(data))
    f.faults([{"match": "upload_id=", "fault": "308_no_range"}])
    r = put(url, data[:CHUNK], "bytes 0-%d/%d" % (CHUNK - 1, len(data)))
    assert r.status == 308 and "Range" not in r.headers
    f.faults([{"match": "upload_id=", "fault": "308_partial",
               "keep_bytes": CHUNK}])
    r = put(url, data, "bytes 0-%d/%d" % (len(data) - 1, len(data)))
    assert r.status == 308 and r.headers["Range"] == "bytes=0-%d" % (
        CHUNK - 1)
    f.faults([{"match": "upload_id=", "fault": "session_expired"}])
    r = put(url, data[CHUNK:], "bytes %d-%d/%d" % (CHUNK, len(data) - 1,
                                                   len(data)))
    assert r.status == 404
    r = put(url, b"", "bytes */%d" % len(data))
    assert r.status == 404


def test_youtube_metadata_validation_and_quota_faults(fk):
    f = fk["youtube"]
    yt_auth(f)
    path = "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status"

    def reason(meta, p=path):
        r = f.req("POST", p, meta)
        return r.status, r.json()["error"]["errors"][0]["reason"]

    def with_snippet(**kw):
        return {"snippet": dict(VIDEO_META["snippet"], **kw),
                "status": VIDEO_META["status"]}
    assert reason(with_snippet(title="x" * 101)) == (400, "invalidTitle")
    assert reason(with_snippet(title="a <b>")) == (400, "invalidTitle")
    assert reason(with_snippet(description="é" * 2501)) == (
        400, "invalidDescription")
    assert reason(with_snippet(tags=["t" * 100] * 5)) == (400, "invalidTags")
    assert reason(with_snippet(categoryId=22)) == (400, "invalidCategoryId")
    assert reason({"snippet": VIDEO_META["snippet"]})[0] == 400
    assert reason({"snippet": VIDEO_META["snippet"], "status": {
        "privacyStatus": "public",
        "publishAt": "2099-01-01T00:00:00Z"}}) == (400, "invalidPublishAt")
    assert reason(VIDEO_META, path.replace(",status", ""))[0] == 400
    f.faults([{"match": "/upload/youtube/v3/videos",
               "fault": "quota_exceeded"},
              {"match": "/upload/youtube/v3/videos", "fault": "upload_limit"},
              {"match": "/upload/youtube/v3/videos", "fault": "error_403",
               "reason": "rateLimitExceeded"}])
    assert reason(VIDEO_META) == (403, "quotaExceeded")
    assert reason(VIDEO_META) == (400, "uploadLimitExceeded")
    assert reason(VIDEO_META) == (403, "rateLimitExceeded")
    r = call(f.base + path, "POST", VIDEO_META,
             {"Authorization": "Bearer ya29.not-issued"})
    assert r.status == 401
    assert r.json()["error"]["errors"][0]["reason"] == "authError"
