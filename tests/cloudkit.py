"""Helpers for the cloud-provider tests (tests/test_cloud.py).

A `Cloud` owns the fake provider servers of one test (tests/fakes/, each a
subprocess on port 0 with its own state folder OUTSIDE the acog root, since
the fakes' requests.jsonl holds the API keys on purpose) and writes the
acog.yaml / channel.yaml that point acog-batch at them.  The daemon is run
with the API keys in its environment only (api_key_env), never in a file
under the root, so a key found anywhere under the root is a leak.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import BIN, wait_for

HERE = Path(__file__).resolve().parent
FAKESERVER = HERE / "fakes" / "fakeserver.py"
MKCERT = HERE / "fakes" / "mkcert.sh"
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

CLOUD_STAGES = ("planning", "scripting", "metadata", "audio", "avatar", "broll")
STAGE_KIND = {"planning": "openai", "scripting": "openai", "metadata": "openai",
              "audio": "elevenlabs", "avatar": "heygen", "broll": "runway"}
OFFLINE = {"planning": "builtin", "scripting": "builtin", "metadata": "builtin",
           "audio": {"name": "espeak", "voice": "en-us"},
           "avatar": {"name": "still", "image": "avatar.png"}, "broll": "generated"}
AVATAR_ID = "Tess_public_20240101"
VOICE_ID = "21m00Tcm4TlvDq8ikWAM"
POLL = 0.2

# Deliberately not the built-in defaults of src/cost.c, so a test can tell
# that acog.yaml `prices:` is what was applied.
PRICES = {
    "openai": {"default": {"input_per_1k": 0.00015, "output_per_1k": 0.0006},
               "gpt-4o-mini": {"input_per_1k": 0.0002, "output_per_1k": 0.0008}},
    "elevenlabs": {"per_1k_chars": 0.25},
    "heygen": {"per_minute": 1.5},
    "runway": {"gen4.5": {"per_second": 0.10}, "gen4_turbo": {"per_second": 0.05},
               "veo3": {"per_second": 0.40}},
}


def y(v):
    """A YAML flow value: JSON is valid YAML, and quoted strings stay strings."""
    return json.dumps(v)


class Fake:
    """One fake provider server (a subprocess)."""

    def __init__(self, kind, state_dir, api_key=None, args=(), tls=None):
        self.kind = kind
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        argv = [PY, str(FAKESERVER), "--kind", kind, "--port", "0", "--state-dir", str(self.dir)]
        if api_key is not None:
            argv += ["--api-key", api_key]
        if tls:
            argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        argv += [str(a) for a in args]
        self.argv = argv
        self._log = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        end = time.monotonic() + 20
        while not (self.dir / "port").exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"fake {kind} did not start: {(self.dir / 'stderr.log').read_text()}")
            time.sleep(0.02)
        self.port = int((self.dir / "port").read_text())
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    # -- control
    def _write(self, name, obj):
        tmp = self.dir / f".{name}.tmp"
        tmp.write_text(json.dumps(obj))
        os.replace(tmp, self.dir / name)

    def faults(self, rules):
        self._write("faults.json", rules)

    def responses(self, rules):
        self._write("responses.json", rules)

    # -- accounting
    def _jsonl(self, name):
        p = self.dir / name
        if not p.exists():
            return []
        return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]

    def requests(self, path=None, method=None, status=None):
        out = []
        for r in self._jsonl("requests.jsonl"):
            if path is not None and path not in r["path"]:
                continue
            if method is not None and r["method"] != method:
                continue
            if status is not None:
                ok = (200 <= (r["status"] or 0) < 300) if status == "ok" else r["status"] == status
                if not ok:
                    continue
            out.append(r)
        return out

    def submissions(self):
        p = self.dir / "submissions.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def webhooks(self):
        return self._jsonl("webhooks.jsonl")

    def state(self, name):
        p = self.dir / name
        return json.loads(p.read_text()) if p.exists() else {}


class Cloud:
    """The fakes of one test and the configuration pointing acog-batch at them."""

    def __init__(self, root, fakes_dir):
        self.root = root
        self.dir = Path(fakes_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fakes = {}
        self.env_keys = {}          # env var name -> key
        self.tls = None
        self.webhook_url = None

    # -- fakes
    def secret(self, label):
        return f"sk-{label}-{secrets.token_hex(12)}"

    def env_var(self, name):
        return f"{name.upper().replace('-', '_')}_API_KEY"

    def fake(self, kind, *args, name=None, tls=False):
        name = name or kind
        key = None if kind == "webhook" else self.secret(name)
        t = None
        if tls:
            if self.tls is None:
                certs = self.dir / "certs"
                subprocess.run(["sh", str(MKCERT), str(certs)], check=True, capture_output=True)
                self.tls = certs
            t = (self.tls / "server.pem", self.tls / "server.key")
        f = Fake(kind, self.dir / name, api_key=key, args=args, tls=t)
        self.fakes[name] = f
        if key:
            self.env_keys[self.env_var(name)] = key
        if kind == "webhook":
            self.webhook_url = f"{f.url}/webhook/acog-{secrets.token_hex(10)}"
        return f

    def __getitem__(self, name):
        return self.fakes[name]

    def stop(self):
        for f in self.fakes.values():
            f.stop()

    def keys(self):
        """Every secret a test must never find under the root."""
        out = list(self.env_keys.values())
        if self.webhook_url:
            out.append(self.webhook_url.rsplit("/", 1)[1])
        return out

    # -- configuration
    def provider(self, stage, name=None, **opts):
        """providers.<stage> for the fake called `name` (default: the stage's kind)."""
        name = name or STAGE_KIND[stage]
        f = self.fakes[name]
        kind = f.kind
        if kind == "openai":
            p = {"name": "openai", "base_url": f.url + "/v1", "model": "gpt-4o-mini",
                 "api_key_env": self.env_var(name), "local": False, "temperature": 0.7,
                 "max_tokens": 4000, "json_mode": "auto", "max_fix_attempts": 2, "timeout": 60}
        elif kind == "elevenlabs":
            p = {"name": "elevenlabs", "base_url": f.url, "model_id": "eleven_multilingual_v2",
                 "api_key_env": self.env_var(name), "output_format": "mp3_44100_128",
                 "max_chars": 10000, "timeout": 60}
        elif kind == "heygen":
            p = {"name": "heygen", "base_url": f.url, "upload_url": f.url, "avatar_id": AVATAR_ID,
                 "api_key_env": self.env_var(name), "poll_seconds": POLL, "max_wait_seconds": 300,
                 "timeout": 60}
        elif kind == "runway":
            p = {"name": "runway", "base_url": f.url, "model": "gen4.5", "ratio": "1280:720",
                 "duration": 5, "api_key_env": self.env_var(name), "poll_seconds": POLL,
                 "max_wait_seconds": 300, "timeout": 60}
        else:
            raise ValueError(kind)
        p.update(opts)
        return p

    def acog_yaml(self, extra=""):
        lines = [
            "retry: {max_retries: 3, base_seconds: 0.2, max_seconds: 1}",
            "limits:",
            "  openai: {rps: 50, concurrency: 4}",
            "  elevenlabs: {rps: 50, concurrency: 2}",
            "  heygen: {rps: 50, concurrency: 4}",
            "  runway: {rps: 50, concurrency: 4}",
            "http: {max_attempts: 4, backoff_base: 0.2, backoff_cap: 1, max_response_mb: 16}",
            "prices:",
        ]
        lines += [f"  {k}: {y(v)}" for k, v in PRICES.items()]
        lines.append("alerts: {webhook_url_env: ACOG_WEBHOOK_URL, format: discord}")
        if self.tls:
            lines.append(f"ca_file: {y(str(self.tls / 'ca.pem'))}")
        (self.root.path / "acog.yaml").write_text("\n".join(lines) + "\n" + extra)

    def channel(self, cid="c", cloud=CLOUD_STAGES, review=False, budget=None, providers=None, extra=""):
        """A channel with the FAST_CHANNEL video settings and the given stages on the fakes.
        providers: {stage: dict} overrides a stage's provider entirely."""
        d = self.root.channel(cid)            # the folder and avatar.png
        provs = {}
        for stage in CLOUD_STAGES:
            provs[stage] = self.provider(stage) if stage in cloud else OFFLINE[stage]
        provs.update(providers or {})
        lines = [
            f"id: {cid}",
            f"name: Cloud channel {cid}",
            "niche: testing",
            'persona: {name: Tess, voice: calm}',
            'style_guide: {tone: plain}',
            "voice_profile: " + y({"voice_id": VOICE_ID, "stability": 0.5, "similarity_boost": 0.75,
                                   "style": 0, "use_speaker_boost": True, "speed": 1.0}),
            "avatar_profile: {}",
        ]
        if budget is not None:
            lines.append(f"budget_daily_usd: {budget!r}")
        lines += [
            "video: {width: 320, height: 180, fps: 10, preset: ultrafast, burn_subtitles: true}",
            f"gates: {{script_review: false, review: {'true' if review else 'false'}}}",
            "retry: {max_retries: 3, base_seconds: 0.2, max_seconds: 1}",
            "providers:",
        ]
        lines += [f"  {stage}: {y(p)}" for stage, p in provs.items()]
        (d / "channel.yaml").write_text("\n".join(lines) + "\n" + extra)
        return d

    # -- the daemon, with the keys in its environment
    def env(self, **more):
        e = dict(os.environ)
        for k in list(e):
            if k.endswith("_API_KEY"):
                del e[k]
        e.update(self.env_keys)
        if self.webhook_url:
            e["ACOG_WEBHOOK_URL"] = self.webhook_url
        e.update(more)
        return e

    def drain(self, *extra, timeout=300, env=None):
        r = self.root
        t0 = time.monotonic()
        with open(r.log, "a") as log:
            p = subprocess.run([BIN, "-C", str(r.path), "run", "--drain", *extra], stdout=log, stderr=log,
                               timeout=timeout, env=env or self.env())
        assert p.returncode == 0, f"run --drain exited {p.returncode}; see {r.log}:\n{r.log.read_text()[-3000:]}"
        return time.monotonic() - t0

    def start(self, *extra, env=None):
        """The daemon in the background (root.daemon, so the root fixture kills it)."""
        r = self.root
        before = r.log.read_text().count("daemon.started") if r.log.exists() else 0
        with open(r.log, "a") as logf:
            r.daemon = subprocess.Popen([BIN, "-C", str(r.path), "run", *extra], stdout=logf, stderr=logf,
                                        env=env or self.env())
        wait_for(lambda: r.log.read_text().count("daemon.started") > before or r.daemon.poll() is not None,
                 what="daemon start")
        assert r.daemon.poll() is None, r.log.read_text()[-3000:]
        return r.daemon

    def kill(self):
        r = self.root
        r.daemon.send_signal(signal.SIGKILL)
        r.daemon.wait(30)
        r.daemon = None


# -- small readers -----------------------------------------------------------

def grep_root(root, secrets_):
    """Where secrets_ appear: every file under the root, byte for byte (logs,
    *.error, *.reason, log.jsonl, acog.db, WAL ...; not the key files under
    credentials/), and the database dump."""
    found = []
    for dirpath, _, files in os.walk(root.path):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or "credentials" in Path(p).relative_to(root.path).parts:
                continue
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            found += [(p, s) for s in secrets_ if s.encode() in data]
    dump = subprocess.run(["sqlite3", str(root.path / "acog.db"), ".dump"], capture_output=True, text=True,
                          check=True).stdout
    return found + [("acog.db .dump", s) for s in secrets_ if s in dump]



def timeline_segments(ep_dir):
    t = json.loads((Path(ep_dir) / "timeline.json").read_text())
    return t["segments"]


def seg_name(seg):
    return f"seg-{int(seg['index']):02d}.mp4"


def episode_log(ep_dir):
    p = Path(ep_dir) / "log.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
