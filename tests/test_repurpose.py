"""Repurposing (issue 11, item 2): an idea with idea_source repurpose and
from: EPISODE makes a new cut (here the Shorts cut) of an existing episode of
the same channel, reusing its paid work: no request reaches any paid fake."""
import json

from cloudkit import Cloud
from conftest import ffprobe

FAST_AUDIO = ["--seconds-per-char", "0.02"]


def paid_requests(c):
    return {name: len(f.requests()) for name, f in c.fakes.items()}


def test_repurpose_makes_a_shorts_cut_with_no_paid_call(root, tmp_path):
    c = Cloud(root, tmp_path / "fakes")
    try:
        c.fake("openai")
        c.fake("elevenlabs", *FAST_AUDIO)
        c.fake("heygen")
        c.fake("runway")
        c.acog_yaml()
        c.channel("c")
        root.channel("other")
        root.drop(root.idea("Why is the sky blue?", channel="c"), "sky.json")
        c.drain()
        [src] = root.status()
        assert src["status"] == "published", root.log.read_text()[-3000:]
        before = paid_requests(c)
        assert all(before.values()), before

        root.drop({"channel": "c", "topic": "Why is the sky blue? (Shorts)", "idea_source": "repurpose",
                   "from": src["ticket"], "shorts": True}, "short.json")
        root.drop({"channel": "c", "topic": "Nothing", "idea_source": "repurpose", "from": "no-such-episode"},
                  "bad.json")
        root.drop({"channel": "other", "topic": "Elsewhere", "idea_source": "repurpose", "from": src["id"][:8]},
                  "other.json")
        c.drain()
        assert paid_requests(c) == before, "a repurpose paid for work already done"

        rows = {e["id"]: e for e in root.status()}
        [new] = [e for e in rows.values() if e["id"] != src["id"]]
        assert new["status"] == "published", root.log.read_text()[-3000:]
        stages = [r["stage"] for r in root.q("SELECT stage FROM jobs WHERE episode_id = ? ORDER BY created_at",
                                             new["id"])]
        assert stages == ["assembly", "upload"], stages
        d, s = root.episode_dir(new["id"]), root.episode_dir(src["id"])
        for f in ["plan.json", "script.md", "metadata.json", "timeline.json"]:
            assert (d / f).read_bytes() == (s / f).read_bytes(), f
        v = next(x for x in ffprobe(d / "shorts.mp4")["streams"] if x["codec_type"] == "video")
        assert (v["width"], v["height"]) == (180, 320)
        assert float(ffprobe(d / "shorts.mp4")["format"]["duration"]) <= 60

        out = root.path / "channels/c/outbox"
        assert (out / (new["id"] + "-shorts") / "manifest.json").exists(), "the cut is published"
        assert not (out / new["id"]).exists(), "the source's 16:9 video is not published a second time"
        assert json.loads((d / "publish.json").read_text())["location"].endswith("-shorts")

        errors = {p.name: p.read_text() for p in (root.path / "spool/rejected").glob("*.error")}
        assert "no episode is \"no-such-episode\"" in errors["bad.json.error"], errors
        assert "belongs to channel 'c'" in errors["other.json.error"], errors
    finally:
        c.stop()
