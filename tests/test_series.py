"""Series and follow-ups (issue 11, item 2): an idea naming a `series` is numbered in order and
its planning request carries the earlier episodes' titles and key facts; an idea that `follows`
an episode gets that episode's plan and metadata.  Checked in the requests the fake LLM (a real
HTTP server speaking the chat-completions protocol) received."""
import json

import pytest

from cloudkit import Cloud
from conftest import wait_for


@pytest.fixture
def llm(root, tmp_path):
    c = Cloud(root, tmp_path / "fakes")
    c.fake("openai")
    c.acog_yaml()
    d = c.channel("c", cloud=("planning", "scripting", "metadata"))
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("script_review: false", "script_review: true"))
    yield c
    if root.daemon and root.daemon.poll() is None:
        root.stop()
    c.stop()


def planning_prompts(c):
    """The user message of every planning request, in the order the fake received them."""
    out = []
    for r in c["openai"].requests("/chat/completions"):
        msgs = (r["json"] or {}).get("messages", [])
        text = "\n".join(m.get("content") or "" for m in msgs if m.get("role") == "user")
        if "Plan one video" in text:
            out.append(text)
    return out


def episode(root, topic):
    rows = root.q("SELECT * FROM episodes WHERE title = ?", topic)
    return rows[0] if rows else None


def plan_of(root, ep):
    return json.loads((root.episode_dir(ep["id"]) / "plan.json").read_text())


def test_series_hands_earlier_facts_to_planning_in_order(root, llm):
    topics = ["Mercury", "Venus", "Earth"]
    llm.start("-j", "3")
    for t in topics:
        root.drop(root.idea(t, channel="c", series="Planets"), f"{t}.json")
    wait_for(lambda: root.q("SELECT COUNT(*) AS n FROM episodes WHERE gate_pending = 'script_review'")[0]["n"] == 3,
             timeout=120, what="three episodes at the script review gate")
    eps = [episode(root, t) for t in topics]
    assert [e["series"] for e in eps] == ["Planets"] * 3
    assert [e["series_number"] for e in eps] == [1, 2, 3]

    prompts = planning_prompts(llm)
    assert len(prompts) == 3
    first, second, third = (next(p for p in prompts if f"Topic: {t}" in p) for t in topics)
    assert "episode 1 of the series" in first and "earlier episodes" in first.lower()
    facts1 = plan_of(root, eps[0])["key_facts"]
    assert facts1, "the fake's plan has key facts"
    assert "episode 2 of the series \"Planets\"" in second
    for f in facts1:
        assert f in second, f"episode 1's fact {f!r} missing from episode 2's planning request"
    for f in facts1 + plan_of(root, eps[1])["key_facts"]:
        assert f in third
    # the order the fake saw them in: each episode's planning after the earlier ones'
    assert prompts.index(first) < prompts.index(second) < prompts.index(third)
    # context.json is the planning stage's input, kept in the episode folder
    ctx = json.loads((root.episode_dir(eps[2]["id"]) / "context.json").read_text())
    assert [e["number"] for e in ctx["series"]["earlier"]] == [1, 2]


def test_follow_up_gets_the_plan_and_metadata_and_bad_follows_is_rejected(root, llm):
    llm.start("-j", "2")
    root.drop(root.idea("Tides", channel="c"), "tides.json")
    wait_for(lambda: (episode(root, "Tides") or {}).get("gate_pending") == "script_review", timeout=120,
             what="the first episode at its gate")
    first = episode(root, "Tides")
    root.drop(root.idea("Tides, part two", channel="c", follows=first["ticket"]), "two.json")
    wait_for(lambda: episode(root, "Tides, part two"), what="the follow-up accepted")
    # it waits for the followed episode's metadata: nothing planned for it yet
    assert not any("Tides, part two" in p for p in planning_prompts(llm))
    root.cli("approve", first["id"], "--by", "tester")
    wait_for(lambda: (episode(root, "Tides, part two") or {}).get("gate_pending") == "script_review", timeout=180,
             what="the follow-up planned")
    prompt = next(p for p in planning_prompts(llm) if "Topic: Tides, part two" in p)
    meta = json.loads((root.episode_dir(first["id"]) / "metadata.json").read_text())
    assert "This video follows up the episode" in prompt
    assert meta["final_title"] in prompt and json.dumps(meta["description"])[1:60] in prompt
    assert plan_of(root, first)["key_facts"][0] in prompt
    assert episode(root, "Tides, part two")["follows_id"] == first["id"]

    root.drop(root.idea("Orphan", channel="c", follows="no-such-episode"), "orphan.json")
    err = root.path / "spool/rejected/orphan.json.error"
    wait_for(err.exists, what="the bad follows rejected")
    assert "follows: no episode matches 'no-such-episode'" in err.read_text()
