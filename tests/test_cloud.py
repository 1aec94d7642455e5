"""The cloud providers end to end, against the strict fakes in tests/fakes/.

Every test runs the real binary on its own temporary root, with its own fake
servers (port 0, state folders outside the root).  API keys reach the daemon
only through its environment (api_key_env) unless a test says otherwise, so
finding one anywhere under the root is a leak.  The specification is
docs/cloud-providers.md.
"""
import datetime
import json
import re
import signal
import time
from types import SimpleNamespace

import pytest

from cloudkit import (AVATAR_ID, grep_root, CLOUD_STAGES, PRICES, VOICE_ID, Cloud, episode_log, seg_name,
                      timeline_segments)
from conftest import Root, ffprobe, run, wait_for

FAST_AUDIO = ["--seconds-per-char", "0.02"]      # short narration: quick assembly


def ts(r):
    return datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()


def ok(r):
    return r["status"] is not None and 200 <= r["status"] < 300


def rformat(r):
    return ((r.get("json") or {}).get("response_format") or {}).get("type", "text")


def max_tokens(r):
    j = r.get("json") or {}
    return j.get("max_completion_tokens") or j.get("max_tokens")


def job(root, ep, stage, last=True):
    rows = root.q("SELECT * FROM jobs WHERE episode_id = ? AND stage = ? ORDER BY created_at", ep, stage)
    return rows[-1] if last else rows


def one_episode(root):
    st = root.status()
    assert len(st) == 1, explain(root)
    return st[0]


def explain(root, c=None):
    """What to print when an assertion fails: the daemon's log and the fakes' requests."""
    out = [f"--- {root.log}:", root.log.read_text()[-4000:] if root.log.exists() else "(none)"]
    for ep in root.status():
        out.append(f"--- episode {ep['ticket']}: {ep['status']} at {ep['stage']}: {ep.get('last_error', '')}")
    for p in sorted((root.path / "spool/rejected").glob("*.error")):
        out.append(f"--- rejected {p.name}: {p.read_text()[:800]}")
    if c:
        for name, f in c.fakes.items():
            out.append(f"--- {name}: " + ", ".join(f"{r['method']} {r['path'][:60]} {r['status']}"
                                                   f"{' fault=' + r['fault'] if r['fault'] else ''}"
                                                   for r in f.requests()[-12:]))
    return "\n".join(out)


def published_or_explain(root, c, state="published"):
    ep = one_episode(root)
    want = ep["status"] if state == "published" else ep["state"]
    assert want == state, explain(root, c)
    return ep




# ---------------------------------------------------------------------------
# 1. One channel on every cloud provider (over HTTPS, CA from acog.yaml
#    ca_file), published once and examined by several tests.

@pytest.fixture(scope="module")
def allcloud(tmp_path_factory):
    base = tmp_path_factory.mktemp("allcloud")
    r = Root(base / "root")
    run(["init"], r.path)
    c = Cloud(r, base / "fakes")
    try:
        c.fake("openai", tls=True)
        c.fake("elevenlabs", *FAST_AUDIO, tls=True)
        c.fake("heygen", tls=True)
        c.fake("runway", tls=True)
        c.fake("webhook")
        c.acog_yaml()
        c.channel("c")
        r.drop(r.idea("Why is the sky blue?", channel="c", key_points=["Sunlight", "Scattering"]), "sky.json")
        env = c.env()
        env.pop("SSL_CERT_FILE", None)      # the CA must come from acog.yaml ca_file
        elapsed = c.drain(env=env)
        ep = one_episode(r)
        yield SimpleNamespace(root=r, cloud=c, ep=ep, dir=r.episode_dir(ep["id"]), elapsed=elapsed)
    finally:
        if r.daemon and r.daemon.poll() is None:
            r.stop(signal.SIGKILL)
        c.stop()


def test_all_cloud_channel_publishes(allcloud):
    r, c, ep, d = allcloud.root, allcloud.cloud, allcloud.ep, allcloud.dir
    assert ep["status"] == "published", explain(r, c)
    assert r.tickets() == {ep["ticket"]: ["published"]}
    info = ffprobe(d / "final.mp4")
    codecs = {s["codec_type"]: s for s in info["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["audio"]["codec_name"] == "aac"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (320, 180)
    assert (r.path / "channels/c/outbox" / ep["id"] / "final.mp4").exists()

    # The contracts between stages hold for cloud output too.
    plan = json.loads((d / "plan.json").read_text())
    assert plan["sections"] and plan.get("model") == "gpt-4o-mini", plan
    meta = json.loads((d / "metadata.json").read_text())
    assert 0 < len(meta["final_title"]) <= 100 and meta["tags"] and "thumbnail_prompt" in meta
    for f in ("audio.wav", "subtitles.srt", "timeline.json"):
        assert (d / f).stat().st_size > 0, f
    segs = timeline_segments(d)
    avatar = [s for s in segs if s["visual"] == "avatar"]
    broll = [s for s in segs if s["visual"] == "broll"]
    assert avatar and broll, segs
    for s in avatar:
        assert (d / "avatar" / seg_name(s)).stat().st_size > 0, s
    for s in broll:
        assert (d / "broll" / seg_name(s)).stat().st_size > 0, s

    # openai: one chat per text stage, all answered 200.
    chats = c["openai"].requests("/chat/completions", "POST")
    assert len(chats) == 3 and all(ok(x) for x in chats), [(x["status"], x["fault"]) for x in chats]
    # elevenlabs: at least one synthesis, with the channel's voice.
    tts = c["elevenlabs"].requests("/v1/text-to-speech/", "POST", status="ok")
    assert tts and all(f"/v1/text-to-speech/{VOICE_ID}" in x["path"] for x in tts)
    # heygen: one audio upload and one generate per avatar segment, with our avatar.
    hs = c["heygen"].submissions()
    assert hs.get("heygen_asset") == len(avatar) and hs.get("heygen_generate") == len(avatar), (hs, len(avatar))
    for g in c["heygen"].requests("/v2/video/generate", "POST", status="ok"):
        chars = [v["character"] for v in g["json"]["video_inputs"]]
        assert all(ch.get("avatar_id") == AVATAR_ID for ch in chars), chars
    assert {j["status"] for j in c["heygen"].state("heygen_jobs.json").values()} == {"completed"}
    # runway: one task per b-roll segment, prompted with that segment's description.
    rs = c["runway"].submissions()
    assert rs.get("runway_create") == len(broll) and not rs.get("runway_cancel"), rs
    prompts = [x["json"]["promptText"] for x in c["runway"].requests("/v1/text_to_video", "POST", status="ok")]
    for s in broll:
        assert any(s["broll"] in p for p in prompts), (s["broll"], prompts)
    assert {t["status"] for t in c["runway"].state("runway_tasks.json").values()} == {"SUCCEEDED"}
    # Signed download links never get the API key.
    files = c["heygen"].requests("/files/") + c["runway"].requests("/files/")
    assert len(files) >= len(avatar) + len(broll), files
    for x in files:
        h = {k.lower() for k in x["headers"]}
        assert not h & {"x-api-key", "authorization", "xi-api-key"}, (x["path"], x["headers"])
    # The narration is the provider's audio, and the video follows it.
    tl = json.loads((d / "timeline.json").read_text())
    narration = float(ffprobe(d / "audio.wav")["format"]["duration"])
    assert abs(narration - tl["duration"]) < 0.1, (narration, tl["duration"])
    assert abs(float(info["format"]["duration"]) - narration) < 0.5, (info["format"]["duration"], narration)
    assert tl["cues"] and "-->" in (d / "subtitles.srt").read_text()
    # A clean run raises no alert.
    assert c["webhook"].webhooks() == []


def test_costs_one_row_per_paid_call(allcloud):
    r, c, ep = allcloud.root, allcloud.cloud, allcloud.ep
    rows = r.q("SELECT * FROM cost_entries")
    by = {}
    for row in rows:
        by.setdefault(row["provider"], []).append(row)
    paid_calls = {
        "openai": len(c["openai"].requests("/chat/completions", "POST", status="ok")),
        "elevenlabs": len(c["elevenlabs"].requests("/v1/text-to-speech/", "POST", status="ok")),
        "heygen": len(c["heygen"].requests("/v2/video/generate", "POST", status="ok")),
        "runway": len(c["runway"].requests("/v1/text_to_video", "POST", status="ok")),
    }
    assert {p: len(v) for p, v in by.items()} == paid_calls, rows
    for row in rows:
        assert row["cost_usd"] > 0 and row["episode_id"] == ep["id"] and row["job_id"], row

    total = sum(row["cost_usd"] for row in rows)
    costs = json.loads(r.cli("costs", "--json").stdout)
    assert sum(x["cost_usd"] for x in costs) == pytest.approx(total, rel=1e-9, abs=1e-12)
    assert {x["provider"]: x["calls"] for x in costs} == paid_calls, costs
    assert all(x["channel"] == "c" for x in costs), costs
    assert r.status()[0]["cost_usd"] == pytest.approx(total, rel=1e-9)

    # show --json: every job carries what it paid.
    shown = r.show(ep["id"])
    assert sum(x["cost_usd"] for x in shown["costs"]) == pytest.approx(total, rel=1e-9)
    for j in shown["jobs"]:
        mine = sum(row["cost_usd"] for row in rows if row["job_id"] == j["id"])
        if j["stage"] in CLOUD_STAGES:
            assert j.get("cost_usd", 0) > 0, j
        assert j.get("cost_usd", 0) == pytest.approx(mine, rel=1e-9, abs=1e-12), (j["stage"], j.get("cost_usd"), mine)


def test_prices_come_from_acog_yaml(allcloud):
    """acog.yaml `prices:` (deliberately not the built-in defaults) is what is charged."""
    r, c = allcloud.root, allcloud.cloud
    rows = r.q("SELECT * FROM cost_entries")
    rw = [x for x in rows if x["provider"] == "runway"]
    per_s = PRICES["runway"]["gen4.5"]["per_second"]
    assert rw and all(x["cost_usd"] == pytest.approx(5 * per_s, rel=1e-6) for x in rw), \
        [(x["units_consumed"], x["unit_type"], x["cost_usd"]) for x in rw]
    durations = [j["duration"] for j in c["heygen"].state("heygen_jobs.json").values()]
    hg = sum(x["cost_usd"] for x in rows if x["provider"] == "heygen")
    assert hg == pytest.approx(sum(durations) / 60 * PRICES["heygen"]["per_minute"], rel=1e-3), (hg, durations)
    chars = c["elevenlabs"].submissions()["elevenlabs_characters"]
    el = sum(x["cost_usd"] for x in rows if x["provider"] == "elevenlabs")
    assert el == pytest.approx(chars / 1000 * PRICES["elevenlabs"]["per_1k_chars"], rel=1e-6), (el, chars)
    # openai: prompt tokens (the fake counts the words of the messages) at the model's input
    # price, the rest of units_consumed (total tokens) at its output price.
    price = PRICES["openai"]["gpt-4o-mini"]
    chats = c["openai"].requests("/chat/completions", "POST", status="ok")
    oa = sorted((x for x in rows if x["provider"] == "openai"), key=lambda x: x["created_at"])
    assert [x["operation_type"] for x in oa] == ["planning", "scripting", "metadata"], oa
    for row, req in zip(oa, chats):
        prompt = sum(len(m["content"].split()) for m in req["json"]["messages"] if isinstance(m["content"], str))
        want = prompt / 1000 * price["input_per_1k"] + (row["units_consumed"] - prompt) / 1000 * price["output_per_1k"]
        assert row["unit_type"] == "tokens" and row["units_consumed"] > prompt, row
        assert row["cost_usd"] == pytest.approx(want, rel=1e-6), (row, prompt)


# ---------------------------------------------------------------------------
# 2. Retries and their spacing.

def test_rate_limit_and_server_errors_are_retried(cloud, root):
    c = cloud
    c.fake("openai").faults([{"match": "/chat/completions", "fault": "429", "retry_after": 1}])
    c.fake("elevenlabs", *FAST_AUDIO).faults([{"match": "/text-to-speech/", "fault": "503", "times": 2}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning", "scripting", "metadata", "audio"))
    root.drop(root.idea("Tides", channel="c"), "t.json")
    c.drain()
    ep = published_or_explain(root, c)

    chats = c["openai"].requests("/chat/completions")
    assert [x["status"] for x in chats[:2]] == [429, 200], explain(root, c)
    assert ts(chats[1]) - ts(chats[0]) >= 1.0, "Retry-After: 1 was not honoured"
    assert len(chats) == 4, "one retried call plus the other two stages"
    assert job(root, ep["id"], "planning")["status"] == "completed"

    tts = c["elevenlabs"].requests("/v1/text-to-speech/")
    assert [x["status"] for x in tts[:3]] == [503, 503, 200], explain(root, c)
    assert all(ok(x) for x in tts[3:])
    assert job(root, ep["id"], "audio")["status"] == "completed"
    # one log line per attempt, with the status
    msgs = " ".join(e["msg"] for e in episode_log(root.episode_dir(ep["id"])))
    assert "429" in msgs and "503" in msgs, msgs[-2000:]


# ---------------------------------------------------------------------------
# 3. Permanent errors fail at once, with the provider's own message.

def test_permanent_error_fails_fast_with_providers_message(cloud, root):
    c = cloud
    c.fake("openai").faults([{"match": "/chat/completions", "fault": "error_401", "times": -1}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning",))
    root.drop(root.idea("Volcanoes", channel="c"), "v.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "planning", explain(root, c)
    assert root.tickets() == {ep["ticket"]: ["failed"]}
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert "Incorrect API key provided" in err, err
    assert "401" in err, err
    assert len(c["openai"].requests()) == 1, "a 401 must not be retried"
    assert job(root, ep["id"], "planning")["retry_count"] == 0


# ---------------------------------------------------------------------------
# 4. SIGKILL while polling an asynchronous job: the restart polls the same
#    ids and never submits again.

def _all_submitted(root, stage):
    """The provider job ids of the running `stage` job, once every segment has one."""
    try:
        st = root.status()
        if not st:
            return None
        d = root.episode_dir(st[0]["id"])
        want = [s for s in timeline_segments(d) if s["visual"] == ("avatar" if stage == "avatar" else "broll")]
        rows = root.q("SELECT json_group_object(key, value) AS state FROM provider_state"
                      " WHERE episode_id = ? AND stage = ? HAVING count(*) > 0", st[0]["id"], stage)
    except (FileNotFoundError, json.JSONDecodeError, AssertionError):
        return None
    if not rows:
        return None
    ids = {k: v for k, v in json.loads(rows[-1]["state"]).items() if re.fullmatch(r"seg-\d+", k)}
    return ids if len(ids) == len(want) else None


def test_no_second_submission_after_sigkill_while_polling(cloud, root):
    c = cloud
    c.fake("heygen", "--polls", "15")
    c.fake("runway", "--polls", "15")
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("avatar", "broll"))
    root.drop(root.idea("Glaciers", channel="c"), "g.json")

    c.start()
    heygen_ids = wait_for(lambda: _all_submitted(root, "avatar"), timeout=120, what="heygen jobs submitted")
    c.kill()
    jobs = c["heygen"].state("heygen_jobs.json")
    assert any(j["status"] != "completed" for j in jobs.values()), "killed too late: nothing was still polling"

    c.start()
    runway_ids = wait_for(lambda: _all_submitted(root, "broll"), timeout=120, what="runway tasks submitted")
    c.kill()
    tasks = c["runway"].state("runway_tasks.json")
    assert any(t["status"] != "SUCCEEDED" for t in tasks.values()), "killed too late: nothing was still polling"

    c.drain()
    ep = published_or_explain(root, c)
    d = root.episode_dir(ep["id"])
    segs = timeline_segments(d)
    n_avatar = sum(s["visual"] == "avatar" for s in segs)
    n_broll = sum(s["visual"] == "broll" for s in segs)
    assert c["heygen"].submissions().get("heygen_generate") == n_avatar, c["heygen"].submissions()
    assert c["heygen"].submissions().get("heygen_asset") == n_avatar, c["heygen"].submissions()
    assert c["runway"].submissions().get("runway_create") == n_broll, c["runway"].submissions()
    assert set(heygen_ids.values()) == set(c["heygen"].state("heygen_jobs.json"))
    assert set(runway_ids.values()) == set(c["runway"].state("runway_tasks.json"))
    # the same ids were polled to completion after the restarts
    assert {j["status"] for j in c["heygen"].state("heygen_jobs.json").values()} == {"completed"}
    assert {t["status"] for t in c["runway"].state("runway_tasks.json").values()} == {"SUCCEEDED"}
    stored = {r["key"]: r["value"] for r in root.q(
        "SELECT key, value FROM provider_state WHERE episode_id = ? AND stage = 'avatar'", ep["id"])}
    assert {k: v for k, v in stored.items() if k in heygen_ids} == heygen_ids
    # each clip paid for once
    assert len(root.q("SELECT id FROM cost_entries WHERE provider = 'heygen'")) == n_avatar
    assert len(root.q("SELECT id FROM cost_entries WHERE provider = 'runway'")) == n_broll
    for s in segs:
        assert (d / ("avatar" if s["visual"] == "avatar" else "broll") / seg_name(s)).stat().st_size > 0


# ---------------------------------------------------------------------------
# 5. Never pay twice: a re-run whose inputs did not change reuses the result.

def test_rerun_with_unchanged_inputs_pays_nothing(cloud, root):
    c = cloud
    c.fake("openai")
    c.fake("elevenlabs", *FAST_AUDIO)
    c.fake("heygen")
    c.fake("runway")
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", review=True)
    root.drop(root.idea("Auroras", channel="c"), "a.json")
    c.drain()
    ep = published_or_explain(root, c, state="awaiting-approval")
    paid = ("openai", "elevenlabs", "heygen", "runway")
    before = {k: len(c[k].requests()) for k in paid}
    costs_before = root.q("SELECT id FROM cost_entries")
    d = root.episode_dir(ep["id"])
    audio_before = (d / "audio.wav").read_bytes()

    root.cli("reject", ep["ticket"], "--by", "rita", "--reason", "Re-check the sound", "--to", "audio")
    c.drain()
    ep = published_or_explain(root, c, state="awaiting-approval")
    after = {k: len(c[k].requests()) for k in paid}
    assert after == before, "a re-run with unchanged inputs called a paid API again"
    assert root.q("SELECT id FROM cost_entries") == costs_before
    assert (d / "audio.wav").read_bytes() == audio_before
    jobs = root.show(ep["id"])["jobs"]
    audio_jobs = [j for j in jobs if j["stage"] == "audio"]
    assert len(audio_jobs) == 2 and audio_jobs[-1]["cached"] == 1 and audio_jobs[-1]["status"] == "completed", audio_jobs
    assert not audio_jobs[-1].get("cost_usd"), audio_jobs[-1]
    for stage in ("avatar", "broll"):
        rerun = [j for j in jobs if j["stage"] == stage][-1]
        assert rerun["cached"] == 1, rerun

    root.cli("approve", ep["ticket"], "--by", "rita")
    c.drain()
    published_or_explain(root, c)
    assert {k: len(c[k].requests()) for k in paid} == before


# ---------------------------------------------------------------------------
# 6. Daily budget: hold paid work, alert, release on a raised budget + SIGHUP.

def test_budget_hold_and_release(cloud, root):
    c = cloud
    c.fake("openai")
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning", "scripting", "metadata"), budget=0.000001)
    root.drop(root.idea("Comets", channel="c"), "c.json")
    c.start()
    wait_for(lambda: root.status() and root.status()[0]["state"] == "held", timeout=120, what="budget hold")
    ep = root.status()[0]
    assert root.tickets() == {ep["ticket"]: ["held"]}, root.tickets()
    reason = (root.path / "spool/held" / (ep["ticket"] + ".reason")).read_text()
    assert "budget" in reason, reason
    assert "budget" in root.show(ep["id"]).get("hold_reason", "")
    assert len(c["openai"].requests("/chat/completions")) == 1, "only planning ran before the hold"
    assert job(root, ep["id"], "scripting")["status"] == "queued"
    hooks = wait_for(lambda: [w for w in c["webhook"].webhooks() if "budget" in json.dumps(w["json"]).lower()],
                     timeout=30, what="a budget alert")
    assert hooks[0]["shape"] == "discord", hooks

    c.channel("c", cloud=("planning", "scripting", "metadata"), budget=100.0)
    root.daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: root.status()[0]["status"] == "published", timeout=180, what="published after the raise")
    assert root.stop() == 0
    assert len(c["openai"].requests("/chat/completions", status="ok")) == 3
    assert root.tickets() == {ep["ticket"]: ["published"]}
    assert not (root.path / "spool/held" / (ep["ticket"] + ".reason")).exists(), "stale hold reason left behind"


# ---------------------------------------------------------------------------
# 7. Secrets never leak into anything under the root.

def test_secrets_never_leak(cloud, root):
    c = cloud
    c.fake("openai").faults([{"match": "/chat/completions", "fault": "429", "retry_after": "0.3"}])
    c.fake("elevenlabs", *FAST_AUDIO).faults([{"match": "/text-to-speech/", "fault": "503"}])
    # a 503 with Retry-After proves the job was not made: the create is resent
    c.fake("heygen").faults([{"match": "/v2/video/generate", "fault": "503", "retry_after": "0.2"}])
    c.fake("runway").faults([{"match": "/v1/tasks/", "method": "GET", "fault": "502"}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c")
    # a second channel whose key is wrong: a 401, a failed episode, an alert
    wrong = c.secret("wrong")
    c.channel("bad", cloud=(), providers={"planning": c.provider("planning", api_key_env="WRONG_API_KEY")})
    root.drop(root.idea("Lightning", channel="c"), "l.json")
    root.drop(root.idea("Thunder", channel="bad"), "t.json")
    c.drain(env=c.env(WRONG_API_KEY=wrong))
    st = {e["channel"]: e for e in root.status()}
    assert st["c"]["status"] == "published", explain(root, c)
    assert st["bad"]["status"] == "failed", explain(root, c)
    assert (root.path / "spool/failed" / (st["bad"]["ticket"] + ".error")).exists()
    assert root.log.stat().st_size > 0

    secrets_ = c.keys() + [wrong]
    found = grep_root(root, secrets_)
    for cmd in (["status", "--json"], ["costs", "--json"], ["show", st["c"]["id"], "--json"],
                ["show", st["bad"]["id"], "--json"]):
        out = root.cli(*cmd).stdout
        found += [(" ".join(cmd), s) for s in secrets_ if s in out]
    assert not found, f"secrets found: {found}"
    # and the fakes really saw the keys (so the search above meant something)
    # (both channels call the fake at once: the first request may be either's)
    sent = {r["headers"]["Authorization"] for r in c["openai"].requests()}
    assert "Bearer " + c.env_keys["OPENAI_API_KEY"] in sent and "Bearer " + wrong in sent, sent


# ---------------------------------------------------------------------------
# 8. A key file must be mode 0600.

def test_api_key_file_must_be_mode_0600(cloud, root):
    c = cloud
    el = c.fake("elevenlabs", *FAST_AUDIO)
    c.fake("webhook")
    c.acog_yaml()
    prov = c.provider("audio")
    del prov["api_key_env"]
    prov["api_key_file"] = "credentials/elevenlabs.key"
    c.channel("c", cloud=(), providers={"audio": prov})
    keyfile = root.path / "credentials/elevenlabs.key"
    keyfile.parent.mkdir(exist_ok=True)
    keyfile.write_text(el.api_key + "\n")
    keyfile.chmod(0o644)
    root.drop(root.idea("Deserts", channel="c"), "d.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "audio", explain(root, c)
    assert "chmod 600" in ep.get("last_error", ""), ep
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert "chmod 600" in err and "credentials/elevenlabs.key" in err, err
    assert el.requests() == [], "no request may be made with a key others can read"

    keyfile.chmod(0o600)
    root.cli("retry", ep["ticket"])
    c.drain()
    published_or_explain(root, c)
    assert el.requests("/v1/text-to-speech/", status="ok")
    assert all(r["headers"].get("xi-api-key") == el.api_key for r in el.requests())


# ---------------------------------------------------------------------------
# 9. Alerts: one Discord message per failed episode; a broken webhook never
#    holds the pipeline up.

def test_failed_episode_alerts_once_and_webhook_errors_do_not_block(cloud, root):
    c = cloud
    c.fake("openai").faults([{"match": "/chat/completions", "fault": "error_401", "times": -1}])
    hook = c.fake("webhook")
    c.acog_yaml()
    c.channel("bad", cloud=("planning",))
    c.channel("good", cloud=())
    root.drop(root.idea("Earthquakes", channel="bad"), "e.json")
    c.drain()
    [ep] = [e for e in root.status() if e["channel"] == "bad"]
    assert ep["status"] == "failed", explain(root, c)
    msgs = wait_for(hook.webhooks, timeout=30, what="the failure alert")
    time.sleep(1.0)
    msgs = hook.webhooks()
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["shape"] == "discord" and (m["json"].get("content") or m["json"].get("embeds")), m
    text = json.dumps(m["json"])
    assert ep["ticket"] in text or ep["id"] in text, text
    assert "planning" in text, text

    # The webhook now answers 500 to everything: the pipeline does not care.
    hook.faults([{"match": "", "fault": "500", "times": -1}])
    root.drop(root.idea("Tsunamis", channel="bad"), "t.json")
    root.drop(root.idea("Rainbows", channel="good"), "r.json")
    elapsed = c.drain()
    by_channel = {}
    for e in root.status():
        by_channel.setdefault(e["channel"], []).append(e["status"])
    assert by_channel == {"bad": ["failed", "failed"], "good": ["published"]}, (by_channel, explain(root, c))
    wait_for(lambda: hook.requests(status=500), timeout=30, what="the alert attempt against the broken webhook")
    assert len(hook.webhooks()) == 1
    assert elapsed < 60, f"drain took {elapsed:.1f}s with a failing webhook"


# ---------------------------------------------------------------------------
# 10. A server without json_schema: fall back to json_object.

def test_json_schema_fallback_to_json_object(cloud, root):
    c = cloud
    oa = c.fake("openai", "--no-json-schema")
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning", "scripting", "metadata"))
    root.drop(root.idea("Fossils", channel="c"), "f.json")
    c.drain()
    ep = published_or_explain(root, c)
    d = root.episode_dir(ep["id"])
    plan = json.loads((d / "plan.json").read_text())
    assert plan["sections"] and all("title" in s for s in plan["sections"]), plan
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["final_title"] and isinstance(meta["tags"], list), meta
    reqs = oa.requests("/chat/completions")
    kinds = [(rformat(x), x["status"]) for x in reqs]
    assert kinds[0] == ("json_schema", 400) and kinds[1] == ("json_object", 200), kinds
    assert all(s == 400 for k, s in kinds if k == "json_schema"), kinds
    assert sum(1 for k, s in kinds if k == "json_object" and s == 200) == 3, kinds   # plan, script, metadata
    # every json_object request asks for JSON and carries the schema in the prompt
    for x in reqs:
        if rformat(x) == "json_object":
            text = " ".join(m["content"] for m in x["json"]["messages"] if isinstance(m.get("content"), str))
            assert "json" in text.lower() and '"properties"' in text


# ---------------------------------------------------------------------------
# 11. finish_reason "length": retry with a larger budget.

def test_finish_reason_length_retried_with_more_tokens(cloud, root):
    c = cloud
    c.fake("openai")
    meta = c.fake("openai", name="openai_meta")
    meta.faults([{"match": "/chat/completions", "fault": "length"}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning", "scripting"),
              providers={"metadata": c.provider("metadata", name="openai_meta", max_tokens=1000)})
    root.drop(root.idea("Geysers", channel="c"), "g.json")
    c.drain()
    ep = published_or_explain(root, c)
    reqs = meta.requests("/chat/completions")
    assert len(reqs) == 2 and reqs[0]["fault"] == "length" and ok(reqs[1]), [(x["status"], x["fault"]) for x in reqs]
    assert max_tokens(reqs[0]) == 1000, reqs[0]["json"]
    assert max_tokens(reqs[1]) > max_tokens(reqs[0]), (max_tokens(reqs[0]), max_tokens(reqs[1]))
    m = json.loads((root.episode_dir(ep["id"]) / "metadata.json").read_text())
    assert m["final_title"]
    assert job(root, ep["id"], "metadata")["status"] == "completed"


# ---------------------------------------------------------------------------
# Extras: TLS verification, and an asynchronous job that fails for good.

def test_tls_certificate_is_verified(cloud, root):
    """A fake whose CA is not in acog.yaml ca_file must not be trusted."""
    c = cloud
    oa = c.fake("openai", tls=True)
    c.fake("webhook")
    c.acog_yaml()
    (root.path / "acog.yaml").write_text(re.sub(r"(?m)^ca_file:.*\n", "", (root.path / "acog.yaml").read_text()))
    c.channel("c", cloud=("planning",))
    root.drop(root.idea("Quasars", channel="c"), "q.json")
    env = c.env()
    env.pop("SSL_CERT_FILE", None)
    c.drain(env=env)
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "planning", explain(root, c)
    assert re.search(r"certificate|SSL|TLS", ep.get("last_error", ""), re.I), ep
    assert oa.requests() == [], "no request may get through an unverified TLS connection"


def test_runway_safety_failure_is_permanent(cloud, root):
    c = cloud
    rw = c.fake("runway", "--polls", "1")
    rw.faults([{"match": "/v1/text_to_video", "fault": "status_failed", "code": "SAFETY.INPUT.TEXT",
                "message": "The prompt was flagged by our safety system", "times": -1}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("broll",))
    root.drop(root.idea("Sharks", channel="c"), "s.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "broll", explain(root, c)
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert "flagged by our safety system" in err, err
    # no task is submitted twice: SAFETY.* is never retried
    n_broll = sum(s["visual"] == "broll" for s in timeline_segments(root.episode_dir(ep["id"])))
    assert rw.submissions().get("runway_create", 0) <= n_broll, rw.submissions()
    assert root.q("SELECT id FROM cost_entries WHERE provider = 'runway'") == []


def test_quota_exhausted_is_not_retried(cloud, root):
    """429 insufficient_quota is billing, not a rate limit: fail at once, say so."""
    c = cloud
    c.fake("openai").faults([{"match": "/chat/completions", "fault": "429", "insufficient_quota": True,
                              "retry_after": "0.2", "times": -1}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("planning",))
    root.drop(root.idea("Meteors", channel="c"), "m.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "planning", explain(root, c)
    assert "exceeded your current quota" in ep.get("last_error", ""), ep
    assert len(c["openai"].requests()) == 1, [(x["status"], x["fault"]) for x in c["openai"].requests()]


def test_async_job_abandoned_after_max_wait_is_cancelled(cloud, root):
    c = cloud
    rw = c.fake("runway")
    rw.faults([{"match": "/v1/text_to_video", "fault": "status_stuck", "times": -1}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=(), providers={"broll": c.provider("broll", max_wait_seconds=1)})
    root.drop(root.idea("Nebulae", channel="c"), "n.json")
    t0 = time.monotonic()
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "broll", explain(root, c)
    assert "max_wait_seconds" in ep.get("last_error", ""), ep
    assert time.monotonic() - t0 < 60
    n_broll = sum(s["visual"] == "broll" for s in timeline_segments(root.episode_dir(ep["id"])))
    sub = rw.submissions()
    assert sub.get("runway_create") == n_broll, sub
    assert sub.get("runway_cancel", 0) >= 1, "the abandoned task was not cancelled"
    # The stage failed for good, so every task it leaves behind is given up: none may keep running.
    left = {k: t["status"] for k, t in rw.state("runway_tasks.json").items() if t["status"] != "CANCELLED"}
    assert not left, f"tasks abandoned but not cancelled: {left}"


def test_lost_answer_to_a_paid_create_is_never_resent(cloud, root):
    """A create whose answer is lost (timeout after sending) may have made the job: never resend it
    (in_doubt: fail; the default renders the segment offline: tests/test_runway_in_doubt.py)."""
    c = cloud
    rw = c.fake("runway")
    rw.faults([{"match": "/v1/text_to_video", "fault": "stall", "seconds": 3}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=(), providers={"broll": c.provider("broll", timeout=1, in_doubt="fail")})
    root.drop(root.idea("Corals", channel="c"), "k.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == "broll", explain(root, c)
    wait_for(lambda: rw.requests("/v1/text_to_video"), timeout=10, what="the stalled create to be answered")
    time.sleep(0.5)
    creates = rw.requests("/v1/text_to_video")
    assert len(creates) == 1, [(x["status"], x["fault"]) for x in creates]
    assert root.q("SELECT id FROM cost_entries WHERE provider = 'runway'") == []


@pytest.mark.parametrize("kind,stage,create,fault", [
    ("heygen", "avatar", "/v2/video/generate", "502"),
    ("runway", "broll", "/v1/text_to_video", "504"),
    ("runway", "broll", "/v1/text_to_video", "reset"),
], ids=["heygen-502-recover-none", "runway-504", "runway-dropped"])
def test_gateway_error_after_a_paid_create_is_never_resent(cloud, root, kind, stage, create, fault):
    """The provider made the job, then a gateway answered 502/504 (or the connection
    dropped): resending would pay twice.  Without a look-up (Runway has none; HeyGen
    with recover: none) the stage fails, says what to look for, and keeps
    seg-NN_sent; exactly one job exists at the provider."""
    c = cloud
    f = c.fake(kind)
    f.faults([{"match": create, "method": "POST", "fault": fault, "after_handler": True}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=(stage,), providers={stage: c.provider(stage, recover="none") if kind == "heygen"
                                              else c.provider(stage, in_doubt="fail")})
    root.drop(root.idea("Auroras", channel="c"), "a.json")
    c.drain()
    ep = one_episode(root)
    assert ep["status"] == "failed" and ep["stage"] == stage, explain(root, c)
    # one create request reached the provider, and it made exactly one job
    creates = f.requests(create, "POST")
    assert len(creates) == 1 and creates[0]["fault"] == fault, [(x["status"], x["fault"]) for x in creates]
    jobs = f.state("heygen_jobs.json" if kind == "heygen" else "runway_tasks.json")
    assert len(jobs) == 1, jobs
    counter = "heygen_generate" if kind == "heygen" else "runway_create"
    assert f.submissions().get(counter) == 1, f.submissions()
    # the operator is told what to check and how to go on
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert f"{kind} may have made the clip of segment" in err and "dashboard" in err, err
    assert "acog-batch retry" in err and "not resent" in err, err
    # the creating request is still marked in the provider-state store, with no job id beside it
    state = {r["key"]: r["value"] for r in root.q(
        "SELECT key, value FROM provider_state WHERE episode_id = ? AND stage = ?", ep["id"], stage)}
    sent = [k for k, v in state.items() if k.endswith("_sent") and v]
    assert len(sent) == 1 and sent[0][:-len("_sent")] not in state, state
    assert root.q("SELECT id FROM cost_entries WHERE provider = ?", kind) == []
    # nothing goes on by itself: a second run of the daemon pays nothing more
    c.drain()
    assert f.submissions().get(counter) == 1 and len(f.requests(create, "POST")) == 1, f.submissions()


def test_gateway_error_after_a_heygen_generate_is_found_in_the_video_list(cloud, root):
    """The same lost answer with HeyGen's recover: video_list (the default): the
    attempt ends for a retry, and the retry finds the video by its tag and keeps it."""
    c = cloud
    f = c.fake("heygen")
    f.faults([{"match": "/v2/video/generate", "method": "POST", "fault": "502", "after_handler": True}])
    c.fake("webhook")
    c.acog_yaml()
    c.channel("c", cloud=("avatar",))
    root.drop(root.idea("Auroras", channel="c"), "a.json")
    c.drain()
    ep = one_episode(root)
    assert ep["stage"] != "avatar" and ep["status"] != "failed", explain(root, c)
    sub = f.submissions()
    assert sub.get("heygen_generate") == len(f.state("heygen_jobs.json")), sub   # one per segment
    assert sub.get("heygen_video_list", 0) >= 1, sub
    assert len(f.requests("/v2/video/generate", "POST")) == sub["heygen_generate"], sub
