"""A paid synchronous request whose answer is lost on the way back (the
client's timeout, or a 5xx after the work was done) is not sent again
blindly within the same attempt (issue 9.2): with recovery on, it is marked
not idempotent, the attempt ends for a retry, and the retry finds the
earlier result at the provider (ElevenLabs history, OpenAI stored
completions) instead of paying a second time.

The fake carries the request out and counts it, then holds the answer
longer than the provider's `timeout` (3 s), once.
"""
import pytest

from test_recover_paid import configure, costs, stage_done, _logs

TTS = "/v1/text-to-speech/"


def hold_past_timeout(fake, path):
    fake.faults([{"match": path, "method": "POST", "fault": "stall", "seconds": 6,
                  "after_handler": True, "times": 1}])


@pytest.mark.parametrize("kind", ["tts", "chat"])
def test_answer_lost_to_a_timeout_is_found_at_the_provider_not_paid_again(cloud, root, kind):
    c = cloud
    chat = kind == "chat"
    stages = ("planning", "scripting", "metadata") if chat else ("audio",)
    opts = {"timeout": 3}
    if chat:
        opts["recover"] = "stored_completions"
    configure(c, stages, **opts)
    fake, paid = (c["openai"], "openai_chat") if chat else (c["elevenlabs"], "elevenlabs_tts")
    hold_past_timeout(fake, "/chat/completions" if chat else TTS)
    c.start()
    stage_done(root, stages[-1])

    sub = fake.submissions()
    assert sub.get(paid) == len(stages), sub                  # one payment per stage, none twice
    if chat:
        assert sub.get("openai_chat_list") == 1 and sub.get("openai_chat_retrieve") == 1, sub
    else:
        assert sub.get("elevenlabs_history_audio") == 1, sub
    log = _logs(root)
    assert "looks for it at the provider before paying again" in log, log[-3000:]
    # one cost row per paid request: the recovered one is recorded once
    rows = costs(root, "openai" if chat else "elevenlabs")
    assert len(rows) == len(stages), rows
