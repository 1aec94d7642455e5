"""Defects of issue 7 found against another strict set of fake providers.

1. Clips shorter (or longer) than their segments: assembly must fill or cut
   them as the channel says (video.short_clip: hold, loop, still), take the
   thumbnail from a frame that exists, and check every ffmpeg run for the
   file it was meant to write.
2. A model that ignores the script format: scripting asks for JSON with a
   schema and builds script.md from it; prose still makes a valid script.
Everything runs the real binary, real ffmpeg and the fakes of tests/fakes/.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from cloudkit import Cloud, timeline_segments
from conftest import ffprobe, run

# An external avatar/b-roll program: one clip per segment of its kind, of a
# fixed length whatever the segment's, red for the first half, blue after.
CLIPPER = """#!/usr/bin/python3
import json, os, subprocess, sys
kind, seconds = sys.argv[1], float(sys.argv[2])
sys.stdin.read()
os.makedirs(kind, exist_ok=True)
outs = []
for s in json.load(open("timeline.json"))["segments"]:
    if s["visual"] != kind:
        continue
    out = "%s/seg-%02d.mp4" % (kind, s["index"])
    half = "color=c=%s:s=160x90:r=10:d=" + str(seconds / 2)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", half % "red",
                    "-f", "lavfi", "-i", half % "blue", "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
                    "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", out],
                   check=True)
    outs.append({"type": "avatar_video" if kind == "avatar" else "b_roll", "path": out, "mime": "video/mp4"})
print(json.dumps({"outputs": outs}))
"""


def seconds(path):
    return float(ffprobe(path)["format"]["duration"])


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    [s] = [s for s in ffprobe(path)["streams"] if s["codec_type"] == "video"]
    return s["codec_name"], s["width"], s["height"]


def color_at(video, t):
    """'red', 'blue', 'card' or 'other': the top-left corner of the frame at t seconds."""
    p = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "%.3f" % t, "-i", str(video),
                        "-frames:v", "1", "-vf", "crop=8:8:4:4,scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-"], capture_output=True, check=True)
    r, g, b = p.stdout[:3]
    if r > 150 and g < 90 and b < 90:
        return "red"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    if r < 60 and g < 70 and 40 < b < 100:
        return "card"             # the title card's 0x14213d
    return f"other {r},{g},{b}"


def clipper_channel(root, cid, avatar_s, broll_s, mode=None):
    video = "" if mode is None else f"video: {{width: 320, height: 180, fps: 10, preset: ultrafast, " \
                                    f"burn_subtitles: true, short_clip: {mode}}}\n"
    d = root.channel(cid, review="false",
                     extra=f"  avatar: {{name: command, argv: [./clipper.py, avatar, '{avatar_s}']}}\n"
                           f"  broll: {{name: command, argv: [./clipper.py, broll, '{broll_s}']}}\n")
    if video:
        y = d / "channel.yaml"
        y.write_text("\n".join(video.rstrip("\n") if l.startswith("video:") else l
                               for l in y.read_text().splitlines()) + "\n")
    (d / "clipper.py").write_text(CLIPPER)
    (d / "clipper.py").chmod(0o755)
    return d


def by_channel(root):
    return {e["channel"]: e for e in root.status()}


def assert_assembled(root, ep):
    """Published, final.mp4 as long as the narration, a real PNG thumbnail of the frame size."""
    assert ep["status"] == "published", (ep, root.log.read_text()[-3000:])
    d = root.episode_dir(ep["id"])
    assert abs(seconds(d / "final.mp4") - seconds(d / "audio.wav")) < 0.3
    assert png_size(d / "thumbnail.png") == ("png", 320, 180)
    jobs = root.q("SELECT retry_count, status FROM jobs WHERE episode_id = ? AND stage = 'assembly'", ep["id"])
    assert jobs == [{"retry_count": 0, "status": "completed"}], jobs
    return d


# ---------------------------------------------------------------------------
# 1. Short clips

def test_short_clips_from_cloud_providers_publish(root, tmp_path):
    """HeyGen and Runway fakes serving 1-second clips for longer segments."""
    c = Cloud(root, tmp_path / "fakes")
    try:
        c.fake("heygen", "--clip-seconds", "1")
        c.fake("runway", "--clip-seconds", "1")
        c.acog_yaml()
        c.channel("c", cloud=("avatar", "broll"))
        root.drop(root.idea("Why do leaves change colour?", channel="c"), "l.json")
        c.drain()
    finally:
        c.stop()
    [ep] = root.status()
    d = assert_assembled(root, ep)
    segs = timeline_segments(d)
    assert {s["visual"] for s in segs} == {"avatar", "broll"}, segs
    for s in segs:
        clip = d / s["visual"] / ("seg-%02d.mp4" % s["index"])
        assert seconds(clip) < 1.2, clip
    assert max(s["end"] - s["start"] for s in segs if s["visual"] == "avatar") > 2.5, segs


@pytest.mark.parametrize("mode", ["hold", "loop", "still"])
def test_short_clip_modes(root, mode):
    """A 1 s clip (red, then blue) in a longer avatar segment: held, looped or
    replaced by the title card; 30 s b-roll clips are cut to their segments."""
    clipper_channel(root, "m", 1.0, 30.0, None if mode == "hold" else mode)
    root.drop(root.idea("How do bees make honey?", channel="m"), "b.json")
    root.drain()
    [ep] = root.status()
    d = assert_assembled(root, ep)
    segs = [s for s in timeline_segments(d) if s["visual"] == "avatar" and s["end"] - s["start"] > 1.6]
    assert segs, timeline_segments(d)
    t0 = round(segs[0]["start"] * 10) / 10          # first frame of the segment at 10 fps
    seen = [color_at(d / "final.mp4", t0 + dt) for dt in (0.25, 0.75, 1.25)]
    want = {"hold": ["red", "blue", "blue"], "loop": ["red", "blue", "red"],
            "still": ["card", "card", "card"]}[mode]
    assert seen == want, (mode, seen)
    log = (d / "log.jsonl").read_text()
    assert f"short_clip: {mode}" in log


def test_bad_short_clip_setting_is_refused(root):
    clipper_channel(root, "m", 1.0, 1.0, "stretch")
    root.drop(root.idea("Tides", channel="m"), "t.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "failed"
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert "video.short_clip" in err and "stretch" in err and "hold" in err, err


FAKE_FFMPEG = r"""#!/bin/sh
# ffmpeg that exits 0 but writes nothing (or garbage) for the thumbnail.
for a; do last=$a; done
case "$last" in
*thumbnail*) [ "$MODE" = garbage ] && printf '\211PNG\r\n\032\nbroken' > "$last"; exit 0;;
esac
exec {real} "$@"
"""


@pytest.mark.parametrize("how", ["nothing", "garbage"])
def test_ffmpeg_run_without_its_file_fails_at_once(root, tmp_path, monkeypatch, how):
    """ffmpeg exiting 0 without a readable output: the stage fails at once,
    naming the file, and is not retried (a retry re-encodes final.mp4)."""
    real = subprocess.run(["sh", "-c", "command -v ffmpeg"], capture_output=True, text=True).stdout.strip()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ffmpeg").write_text(FAKE_FFMPEG.replace("{real}", real).replace("$MODE", how))
    (bindir / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    root.channel("t", review="false")
    root.drop(root.idea("Comets"), "c.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "failed", ep
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert re.search(r"\.thumbnail\.png\.\d+\.tmp\.png", err) and "thumbnail.png" in err, err
    assert ("was not written" if how == "nothing" else "ffprobe") in err, err
    job = root.q("SELECT retry_count FROM jobs WHERE episode_id = ? AND stage = 'assembly'", ep["id"])
    assert job == [{"retry_count": 0}], job


# ---------------------------------------------------------------------------
# 2. A model that ignores the script format

def heard(d):
    """[(visual, b-roll description, narration)] as the audio stage timed script.md (timeline.json)."""
    t = json.loads((d / "timeline.json").read_text())
    out = []
    for s in t["segments"]:
        words = " ".join(c["text"] for c in t["cues"] if s["start"] <= c["start"] < s["end"])
        out.append((s["visual"], s.get("broll"), words))
    return out


def words(text):
    return re.findall(r"[A-Za-z']+", text.lower())


def script_with_openai(root, tmp_path, *fake_args, responses=None):
    """One episode whose scripting runs on a fake OpenAI server (the other stages offline)."""
    c = Cloud(root, tmp_path / "fakes")
    try:
        oa = c.fake("openai", *fake_args)
        if responses:
            oa.responses(responses)
        c.acog_yaml()
        c.channel("c", cloud=("scripting",))
        root.drop(root.idea("Why is the sea salty?", channel="c"), "s.json")
        c.drain()
    finally:
        c.stop()
    return oa


def published(root):
    [ep] = root.status()
    assert ep["status"] == "published", (ep, root.log.read_text()[-3000:])
    jobs = root.q("SELECT retry_count, status FROM jobs WHERE episode_id = ? AND stage = 'scripting'", ep["id"])
    assert jobs == [{"retry_count": 0, "status": "completed"}], jobs
    return root.episode_dir(ep["id"])


def chat_formats(oa):
    return [(((r.get("json") or {}).get("response_format") or {}).get("type"), r["status"])
            for r in oa.requests("/chat/completions")]


@pytest.mark.parametrize("args", [("--prose",), ("--prose", "--no-json-schema")])
def test_model_answering_in_prose_still_scripts(root, tmp_path, args):
    """Prose instead of JSON: accepted at once, one b-roll segment per plan
    section with the plan's b-roll suggestions, the prose's words narrated."""
    oa = script_with_openai(root, tmp_path, *args)
    d = published(root)
    want = [("json_schema", 200)] if len(args) == 1 else [("json_schema", 400), ("json_object", 200)]
    assert chat_formats(oa) == want
    plan = json.loads((d / "plan.json").read_text())
    segs = heard(d)
    assert [v for v, _, _ in segs] == ["broll"] * len(plan["sections"]), segs
    assert [b for _, b, _ in segs] == plan["broll_suggestions"][:len(segs)], (segs, plan["broll_suggestions"])
    prose = "Have you ever wondered about why is the sea salty? Most people never stop to think"
    assert words(" ".join(n for _, _, n in segs))[:len(words(prose))] == words(prose)
    assert all(len(words(n)) >= 5 for _, _, n in segs), segs
    script = (d / "script.md").read_text()
    assert "answered in prose" in script
    log = (d / "log.jsonl").read_text()
    assert "answered in prose" in log and "one voice-over segment per plan section" in log


SCRIPT_JSON = {
    "title": "Salt in the Sea",
    "segments": [
        {"visual": "avatar", "broll_description": "",
         "narration": "Hello! Today we find out why the sea tastes of salt. It is an old question."},
        {"visual": "broll", "broll_description": "rivers [carrying] minerals]",
         "narration": "Rain wears down rocks.\nRivers carry the minerals to the sea, year after year."},
        {"visual": "broll", "broll_description": "sun over the ocean",
         "narration": "#1 reason: the sun lifts the water away and leaves the salt behind."},
        {"visual": "avatar", "broll_description": "", "narration": "   "},
        {"visual": "avatar", "broll_description": "",
         "narration": "So now you know. Subscribe for more questions like this one."},
    ],
}


def test_schema_model_json_becomes_script_md(root, tmp_path):
    oa = script_with_openai(root, tmp_path,
                            responses=[{"match": "Write the script for this video", "content": SCRIPT_JSON}])
    d = published(root)
    [req] = oa.requests("/chat/completions")
    rf = req["json"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True, rf
    seg_schema = rf["json_schema"]["schema"]["properties"]["segments"]["items"]
    assert seg_schema["properties"]["visual"]["enum"] == ["avatar", "broll"], seg_schema
    script = (d / "script.md").read_text()
    assert script.startswith("# Salt in the Sea\n"), script
    spoken = [s for s in SCRIPT_JSON["segments"] if s["narration"].strip()]
    got = heard(d)
    assert [(v, b) for v, b, _ in got] == [("avatar", None), ("broll", "rivers carrying minerals"),
                                           ("broll", "sun over the ocean"), ("avatar", None)], got
    assert [words(n) for _, _, n in got] == [words(s["narration"]) for s in spoken], got


def test_schema_answer_generated_by_the_fake(root, tmp_path):
    """No scripted answer: the fake fills the schema; its segments reach the timeline."""
    oa = script_with_openai(root, tmp_path)
    d = published(root)
    assert chat_formats(oa) == [("json_schema", 200)]
    got = heard(d)
    assert [v for v, _, _ in got] == ["avatar", "broll"], got
    assert all(n.startswith(f"Part {i + 1} of the story") for i, (_, _, n) in enumerate(got)), got
