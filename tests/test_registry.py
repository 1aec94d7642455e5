"""The provider registry from the outside: channel files are checked against
it when the daemon loads and reloads them and by `doctor`, and whether a call
is paid is the registry's rule (a server on this machine is free)."""
import json
import signal

import pytest

from conftest import wait_for

MISSPELT = "  audio: {name: elevenlabs, voice_idd: abc, api_key_env: ELEVENLABS_API_KEY}\n"
MISSPELT_SAYS = 'providers.audio (elevenlabs): unknown option "voice_idd"; did you mean "voice_id"?'

# (providers lines, what the report must say): a wrong type, a value out of
# range, a value not among the allowed ones, a provider another stage has.
BAD = [
    ("  audio: {name: espeak, speed: fast}\n", 'providers.audio (espeak): option "speed" must be a whole number'),
    ("  audio: {name: espeak, speed: 900}\n", 'providers.audio (espeak): option "speed" is 900; use 80 to 500'),
    ("  planning: {name: openai, json_mode: xml}\n",
     'providers.planning (openai): option "json_mode" is "xml"; use one of auto, json_schema, json_object, none'),
    ("  upload: {name: still}\n", "providers.upload: unknown provider 'still' for this stage"),
]


def log_messages(root):
    out = []
    for line in root.log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line).get("msg", ""))
    return out


def doctor_report(root):
    p = root.cli("doctor", check=False)
    return p.returncode, p.stdout


def test_doctor_names_the_file_provider_and_misspelt_key(root):
    root.channel("bad", extra=MISSPELT)
    rc, out = doctor_report(root)
    assert rc != 0, out
    assert "FAIL  channel bad loads" in out, out
    assert "channels/bad/channel.yaml:" in out and MISSPELT_SAYS in out, out
    assert "channel t loads" not in out, "the good channel must not be reported: " + out


@pytest.mark.parametrize("lines,says", BAD, ids=["type", "range", "enum", "stage"])
def test_bad_option_is_reported_by_doctor_and_at_load(root, lines, says):
    root.channel("bad", extra=lines)
    rc, out = doctor_report(root)
    assert rc != 0 and "channels/bad/channel.yaml:" in out and says in out, out

    root.drop({"channel": "bad", "topic": "x"}, "x.json")
    root.drain()
    err = (root.path / "spool/rejected/x.json.error").read_text()
    assert "failed to load" in err and "channels/bad/channel.yaml" in err and says in err, err


def test_daemon_leaves_out_the_misspelt_channel_and_runs_the_others(root):
    root.channel("bad", extra=MISSPELT)
    root.channel("good", review="false")
    root.drop({"channel": "bad", "topic": "Misspelt"}, "bad.json")
    root.drop(root.idea("Tides", channel="good"), "good.json")
    root.drain()

    left_out = [m for m in log_messages(root) if "channels left out" in m]
    assert left_out and "channels/bad/channel.yaml" in left_out[0] and MISSPELT_SAYS in left_out[0], left_out
    err = (root.path / "spool/rejected/bad.json.error").read_text()
    assert "channel 'bad' exists but failed to load" in err and MISSPELT_SAYS in err, err
    st = {e["channel"]: e for e in root.status()}
    assert set(st) == {"good"} and st["good"]["status"] == "published", st


def test_reload_checks_the_changed_file(root):
    root.start()
    root.channel("t", extra=MISSPELT)
    before = root.log.read_text().count("daemon.reloaded")
    root.daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: root.log.read_text().count("daemon.reloaded") > before, what="the reload")
    root.drop({"channel": "t", "topic": "After the reload"}, "after.json")
    err_file = root.path / "spool/rejected/after.json.error"
    wait_for(err_file.exists, what="the idea to be rejected")
    assert MISSPELT_SAYS in err_file.read_text(), err_file.read_text()
    assert root.stop() == 0


# ---------------------------------------------------------------------------
# Paid or free: planning on a paid server spends the whole (tiny) budget, so
# the next stage is held before it starts if and only if it is paid too.



def scripting_on(c, base_url):
    p = c.provider("scripting")
    del p["local"]                # the rule alone decides
    if base_url:
        p["base_url"] = base_url
    return p


def job(root, ep, stage):
    rows = root.q("SELECT * FROM jobs WHERE episode_id = ? AND stage = ? ORDER BY created_at", ep, stage)
    return rows[-1] if rows else {}


def test_a_server_on_this_machine_is_free(cloud, root):
    c = cloud
    fake = c.fake("openai")
    c.acog_yaml()
    c.channel("c", cloud=("planning",), budget=0.000001, providers={"scripting": scripting_on(c, None)})
    assert "127.0.0.1" in c.provider("scripting")["base_url"]
    root.drop(root.idea("Glaciers", channel="c"), "g.json")
    c.start()
    wait_for(lambda: root.status() and job(root, root.status()[0]["id"], "scripting").get("status") == "completed",
             timeout=180, what="scripting on the local server")
    ep = root.status()[0]
    assert root.stop() == 0
    assert len(fake.requests("/chat/completions", status="ok")) == 2, "planning and scripting both ran"
    assert not (root.path / "spool/held" / (ep["ticket"] + ".reason")).exists()
    costs = root.q("SELECT j.stage, c.cost_usd FROM cost_entries c JOIN jobs j ON j.id = c.job_id "
                   "WHERE c.episode_id = ?", ep["id"])
    assert any(r["stage"] == "planning" and r["cost_usd"] > 0 for r in costs), costs
    assert [r["cost_usd"] for r in costs if r["stage"] == "scripting"] == [0], costs


def test_a_remote_server_is_paid(cloud, root):
    c = cloud
    fake = c.fake("openai")
    c.acog_yaml()
    # .invalid never resolves: were the call made, the stage would fail, not hold.
    c.channel("c", cloud=("planning",), budget=0.000001,
              providers={"scripting": scripting_on(c, "http://api.remote.invalid/v1")})
    root.drop(root.idea("Glaciers", channel="c"), "g.json")
    c.start()
    wait_for(lambda: root.status() and root.status()[0]["state"] == "held", timeout=120, what="budget hold")
    ep = root.status()[0]
    reason = (root.path / "spool/held" / (ep["ticket"] + ".reason")).read_text()
    assert "budget" in reason, reason
    assert job(root, ep["id"], "scripting")["status"] == "queued"
    assert len(fake.requests("/chat/completions")) == 1, "only planning ran"


def test_man_page_lists_every_registry_option():
    """acog-batch(5) documents every option of every provider's table."""
    import re
    from conftest import REPO
    man = (REPO / "man/acog-batch.5").read_text()
    documented = set()
    for line in man.splitlines():
        if line.startswith(".It Ic "):
            documented.update(w for w in re.split(r"[ ,]+", line[len(".It Ic "):]) if w)
    keys = {}
    for src in (REPO / "src").glob("*.c"):
        for table, body in re.findall(r"const struct provider_opt (\w+)\[\] = \{(.*?)\n\};", src.read_text(), re.S):
            for key in re.findall(r'\{ "(\w+)", OPT_', body):
                keys.setdefault(key, []).append(table)
    assert len(keys) > 30, keys
    missing = {k: v for k, v in keys.items() if k not in documented}
    assert not missing, f"options not in man/acog-batch.5: {missing}"


def test_misspelt_stage_and_gate_names_are_reported(root):
    root.channel("bad", extra="timeouts: {planing: 5}\n")
    rc, out = doctor_report(root)
    assert rc != 0 and 'timeouts.planing: not a stage name; did you mean "planning"?' in out, out
