"""Never pay twice for a synchronous paid request whose answer died with its
process (issue 9.2): the provider did the work (the fake counted it) but the
stage child was SIGKILLed, alone or with the daemon, while the answer was on
its way.  With recovery on, the next attempt finds the earlier result at the
provider (ElevenLabs history, OpenAI stored completions: src/recover.c and
the two providers) instead of paying again; with it off, or when the provider
has no such result, the request is sent again.

The fakes hold the answer back with a `stall` fault marked `after_handler`:
the request is carried out and counted first, then the answer waits.
"""
import json
import os
import signal

import pytest

from cloudkit import timeline_segments
from conftest import run, wait_for

TTS = "/v1/text-to-speech/"


def hold(fake, path, method="POST", after_handler=True):
    """The next request to path is held open; after_handler: once it was carried out."""
    fake.faults([{"match": path, "method": method, "fault": "stall", "seconds": 600,
                  "after_handler": after_handler}])


def counted(fake, name, n=1):
    return wait_for(lambda: fake.submissions().get(name, 0) >= n, timeout=60, what=f"{name} counted")


def stage_done(root, stage):
    """The stage's job has completed (the daemon goes on; the fixture kills it)."""
    def done():
        rows = root.q("SELECT status FROM jobs WHERE stage = ? ORDER BY created_at", stage)
        return rows and rows[-1]["status"] == "completed"
    wait_for(done, timeout=120, what=f"{stage} completed")
    [ep] = root.q("SELECT id FROM episodes")
    return ep["id"]


def kill_child(root):
    """SIGKILL the daemon's one stage child, alone."""
    d = root.daemon
    with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    assert len(kids) == 1, kids
    os.kill(kids[0], signal.SIGKILL)


def marks(root, stage, prefix):
    """The marks under prefix (not the chat tags' seed, "chat-seed")."""
    rows = root.q("SELECT key, value FROM provider_state WHERE stage = ? AND key LIKE ? AND key != 'chat-seed'",
                  stage, prefix + "%")
    return {r["key"]: json.loads(r["value"]) if r["value"] else None for r in rows}


def costs(root, provider):
    return root.q("SELECT operation_type, units_consumed FROM cost_entries WHERE provider = ?", provider)


def configure(c, stages, **opts):
    if "audio" in stages:
        c.fake("elevenlabs", "--seconds-per-char", "0.02")
    if "planning" in stages:
        c.fake("openai")
    c.acog_yaml()
    c.channel("c", cloud=stages, providers={s: c.provider(s, **opts) for s in stages})
    c.root.drop(c.root.idea("Why the sea is salty", channel="c"), "s.json")


def test_speech_lost_with_the_daemon_is_fetched_from_the_history(cloud, root):
    c = cloud
    configure(c, ("audio",))
    el = c["elevenlabs"]
    hold(el, TTS)
    c.start()
    counted(el, "elevenlabs_tts")
    c.kill()                      # the stage child dies with it (PR_SET_PDEATHSIG)
    c.start()
    ep = stage_done(root, "audio")

    sub = el.submissions()
    assert sub.get("elevenlabs_tts") == 1, sub            # paid once
    assert sub.get("elevenlabs_history_list", 0) >= 1 and sub.get("elevenlabs_history_audio") == 1, sub
    [item] = el.state("elevenlabs_history.json")
    [mark] = marks(root, "audio", "tts-").values()
    assert mark["id"] == item["history_item_id"] and mark["voice"] == item["voice_id"], (mark, item)
    assert mark["since"] <= item["date_unix"]
    got = el.requests(f"/v1/history/{item['history_item_id']}/audio", method="GET", status="ok")
    assert len(got) == 1
    lists = el.requests("/v1/history?", method="GET")
    assert lists and all(f"voice_id={item['voice_id']}" in r["path"] for r in lists)
    # the episode's narration is that generation: its length, its text, words estimated
    d = root.episode_dir(ep)
    assert (d / "audio.wav").stat().st_size > 0
    words = json.loads((d / "words.json").read_text())["words"]
    assert words and not any(w["timed"] for w in words)
    assert " ".join(w["word"] for w in words) == " ".join(item["text"].split())
    segs = timeline_segments(d)
    assert segs[-1]["end"] >= 0.02 * len(item["text"]) - 0.1
    # its cost recorded once, from the history item's characters
    rows = costs(root, "elevenlabs")
    assert [r["units_consumed"] for r in rows] == [item["character_count_change_to"] -
                                                   item["character_count_change_from"]], rows


def test_chat_answer_lost_with_a_killed_stage_child_is_fetched_from_stored_completions(cloud, root):
    c = cloud
    configure(c, ("planning", "scripting", "metadata"), recover="stored_completions")
    oa = c["openai"]
    hold(oa, "/chat/completions")
    c.start()
    counted(oa, "openai_chat")
    kill_child(root)              # the child alone: the daemon retries the job
    ep = stage_done(root, "metadata")

    sub = oa.submissions()
    assert sub.get("openai_chat") == 3, sub               # planning, scripting, metadata: once each
    assert sub.get("openai_chat_list") == 1 and sub.get("openai_chat_retrieve") == 1, sub
    stored = oa.state("openai_stored.json")
    assert len(stored) == 3
    first = stored[0]
    assert first["metadata"]["acog_stage"] == "planning" and first["metadata"]["acog_episode"] == ep
    tag = first["metadata"]["acog_request"]
    [lst] = oa.requests("/chat/completions?", method="GET")
    assert f"metadata%5Bacog_request%5D={tag}" in lst["path"], lst["path"]
    assert oa.requests(f"/chat/completions/{first['id']}", method="GET", status="ok")
    assert marks(root, "planning", "chat-")[f"chat-{tag}"]["id"] == first["id"]
    # plan.json is that answer
    plan = json.loads((root.episode_dir(ep) / "plan.json").read_text())
    answer = json.loads(first["choices"][0]["message"]["content"])
    assert plan["hook"] == answer["hook"] and plan["sections"] == answer["sections"]
    # one planning cost row: the recovered answer's usage (the killed child recorded none)
    rows = [r for r in costs(root, "openai") if r["operation_type"] == "planning"]
    assert [r["units_consumed"] for r in rows] == [first["usage"]["total_tokens"]], rows


@pytest.mark.parametrize("case", ["tts_not_in_history", "tts_recover_none", "chat_recover_none"])
def test_request_sent_again_when_nothing_is_found_or_recovery_is_off(cloud, root, case):
    c = cloud
    chat = case.startswith("chat")
    stages = ("planning", "scripting", "metadata") if chat else ("audio",)
    # not in the history: looked up again once it cannot be running any more (timeout: 3 s)
    configure(c, stages, **({"recover": "none"} if case.endswith("none") else {"timeout": 3}))
    fake, paid = (c["openai"], "openai_chat") if chat else (c["elevenlabs"], "elevenlabs_tts")
    # not_in_history: killed before the provider did anything (held before the handler)
    hold(fake, "/chat/completions" if chat else TTS, after_handler=case != "tts_not_in_history")
    c.start()
    wait_for(lambda: fake.state("faults_state.json"), what="the request held")
    if case != "tts_not_in_history":
        counted(fake, paid)
    c.kill()
    c.start()
    stage_done(root, stages[-1])

    sub = fake.submissions()
    gets = fake.requests("/chat/completions" if chat else "/v1/history", method="GET")
    if case == "tts_not_in_history":
        assert sub.get(paid) == 1 and len(gets) >= 1, sub   # looked up, found nothing, sent again
        log = _logs(root)
        assert "not found yet; it may still be running there" in log, log[-3000:]
        assert "is not in the history; sending it again" in log, log[-3000:]
    else:
        assert sub.get(paid) == (4 if chat else 2), sub     # paid twice: recovery was off
        assert gets == [] and marks(root, stages[0], "chat-" if chat else "tts-") == {}


@pytest.mark.parametrize("kind", ["speech", "chat"])
def test_a_persons_retry_of_a_stage_that_died_finds_the_answer_it_paid_for(cloud, root, kind):
    """The stage child is killed while the fake holds a paid answer, and the
    channel allows no retry: the job fails.  A person's `acog-batch retry`
    makes a new job, which keeps the marks of the one that died (state.c)
    and finds the answer instead of paying for it again."""
    c = cloud
    chat = kind == "chat"
    stages = ("planning", "scripting", "metadata") if chat else ("audio",)
    configure(c, stages, **({"recover": "stored_completions"} if chat else {}))
    y = root.path / "channels/c/channel.yaml"
    y.write_text(y.read_text().replace("max_retries: 3", "max_retries: 0"))
    fake, paid = (c["openai"], "openai_chat") if chat else (c["elevenlabs"], "elevenlabs_tts")
    hold(fake, "/chat/completions" if chat else TTS)
    c.start()
    counted(fake, paid)
    kill_child(root)
    wait_for(lambda: root.q("SELECT 1 FROM episodes WHERE status = 'failed'"), timeout=60, what="the job failed")
    [e] = root.q("SELECT ticket, last_error FROM episodes")
    assert "killed by signal 9" in e["last_error"], e
    run(["retry", e["ticket"]], root.path, env=c.env())
    stage_done(root, stages[-1])
    sub = fake.submissions()
    assert len(root.q("SELECT id FROM jobs WHERE stage = ?", stages[0])) == 2
    if chat:
        assert sub.get(paid) == 3 and sub.get("openai_chat_retrieve") == 1, sub   # once per stage
    else:
        assert sub.get(paid) == 1 and sub.get("elevenlabs_history_audio") == 1, sub


def test_a_retry_after_the_provider_failed_the_stage_asks_afresh(cloud, root):
    """A provider that failed the stage itself (here: the answer stopped by
    the content filter) spent its answers: a person's retry asks the model
    again instead of fetching the same answer back."""
    c = cloud
    configure(c, ("planning",), recover="stored_completions")
    oa = c["openai"]
    oa.faults([{"match": "/chat/completions", "method": "POST", "fault": "content_filter", "times": 1}])
    c.start()
    wait_for(lambda: root.q("SELECT 1 FROM episodes WHERE status = 'failed'"), timeout=60, what="the job failed")
    [e] = root.q("SELECT ticket, last_error FROM episodes")
    assert "content filter" in e["last_error"], e
    assert marks(root, "planning", "chat-") and all(v is None for v in marks(root, "planning", "chat-").values())
    run(["retry", e["ticket"]], root.path, env=c.env())
    stage_done(root, "planning")
    sub = oa.submissions()
    assert sub.get("openai_chat") == 2 and not sub.get("openai_chat_retrieve"), sub


def _logs(root):
    [ep] = root.q("SELECT id FROM episodes")
    p = root.episode_dir(ep["id"]) / "log.jsonl"
    return p.read_text() if p.exists() else ""
