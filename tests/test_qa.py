"""The QA report (qa.json) of the assembly stage, on real renders: a demo-like
offline episode passes and measures -14 +- 1 LUFS (measured again here with
ffmpeg's ebur128); a black b-roll clip, a frozen clip, a silent gap, a clipped
loud narration and a subtitle shifted by 500 ms are each caught with the
figure the test knows from how it made them.

Four episodes run through one daemon drain (one fixture for the module), so
the file costs about one episode's time per core."""
import json
import re
import subprocess

import pytest

from conftest import Root, run

# The audio stage as a command: espeak-ng sentence by sentence, with the
# defects asked for on the command line, and the truth written beside it.
VOICE = r'''
import array, json, re, subprocess, sys
flags = set(sys.argv[1:])
RATE = 22050
text = re.sub(r"<!--.*?-->", "", open("script.md").read(), flags=re.S)
body = " ".join(re.sub(r"\[[^\]]*\]", " ", l) for l in text.splitlines() if l.strip() and not l.startswith("#"))
sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if re.search(r"\w", s)][:6]
pcm, cues, truth = array.array("h"), [], {}
for i, s in enumerate(sentences):
    w = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", s], capture_output=True, check=True).stdout
    a = array.array("h", w[w.find(b"data") + 8:][: (len(w) - w.find(b"data") - 8) // 2 * 2])
    loud = [k for k, x in enumerate(a) if abs(x) > 200]
    a = a[loud[0]:loud[-1] + 1]
    if i == 1 and "clip" in flags:
        a = array.array("h", (max(-32767, min(32767, x * 12)) for x in a))
    gap = 3.0 if (i == 2 and "gap" in flags) else 0.3
    if i:
        if gap > 1:
            truth["gap_start"] = len(pcm) / RATE
        pcm.extend([0] * int(gap * RATE))
    start = len(pcm) / RATE
    pcm.extend(a)
    cues.append([start, len(pcm) / RATE, s])
pcm.extend([0] * int(0.3 * RATE))
truth["clipped"] = sum(1 for x in pcm if abs(x) == 32767)
total = len(pcm) / RATE
srt = []
for i, (a, b, s) in enumerate(cues):
    shift = 0.5 if (i == 3 and "shift" in flags) else 0
    f = lambda t: "%02d:%02d:%02d,%03d" % (t // 3600, t // 60 % 60, t % 60, round(t * 1000) % 1000)
    srt.append("%d\n%s --> %s\n%s\n" % (i + 1, f(a + shift), f(b + shift), s))
open("subtitles.srt", "w").write("\n".join(srt))
hdr = b"RIFF" + (36 + 2 * len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
hdr += (1).to_bytes(2, "little") * 2 + RATE.to_bytes(4, "little") + (2 * RATE).to_bytes(4, "little")
hdr += (2).to_bytes(2, "little") + (16).to_bytes(2, "little") + b"data" + (2 * len(pcm)).to_bytes(4, "little")
open("audio.wav", "wb").write(hdr + pcm.tobytes())
timeline = {"audio": "audio.wav", "duration": round(total, 3), "width": 320, "height": 180, "fps": 10,
            "segments": [{"index": 1, "visual": "avatar", "broll": None, "start": 0, "end": round(total, 3)}],
            "cues": [{"start": round(a, 3), "end": round(b, 3), "text": s} for a, b, s in cues]}
open("timeline.json", "w").write(json.dumps(timeline))
open("voice-truth.json", "w").write(json.dumps(truth))
print("{}")
'''


def clip(path, src, extra=()):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, *extra,
                    *(["-pix_fmt", "yuv420p"] if path.suffix == ".mp4" else []), str(path)], check=True)


def picture_channel(root, cid, extra=""):
    """A channel whose avatar is a real picture (a flat colour zoomed is a frozen picture)."""
    d = root.path / "channels" / cid
    d.mkdir(parents=True, exist_ok=True)
    clip(d / "avatar.png", "testsrc2=s=320x180", ["-frames:v", "1"])
    return root.channel(cid, extra=extra)


def library_channel(root, cid, name, src, extra=(), opts=""):
    d = picture_channel(root, cid, extra=f"  assembly: {{name: ffmpeg{opts}}}\n" if opts else "")
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("broll: generated", "broll: library"))
    (d / "library").mkdir()
    clip(d / "library" / f"{name}.mp4", src, extra)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    root = Root(tmp_path_factory.mktemp("qa") / "root")
    run(["init"], root.path)
    picture_channel(root, "t")
    library_channel(root, "black", "night", "color=c=black:s=160x90:r=10:d=2")
    # a real picture that does not move: one frame of testsrc, held for 2 s
    library_channel(root, "frozen", "still", "testsrc=s=160x90:r=10", ["-vf", "select=eq(n\\,0),loop=20:1:0",
                                                                       "-frames:v", "20"],
                    opts=", freeze_max_seconds: 3")
    d = root.path / "channels/voice"
    d.mkdir(parents=True)
    (d / "voice.py").write_text(VOICE)
    picture_channel(root, "voice", extra=f"  audio: {{name: command, argv: [/usr/bin/python3, {d / 'voice.py'}, gap, clip, shift]}}\n")
    for cid in ["t", "black", "frozen", "voice"]:
        root.drop(root.idea("How do tides work?", channel=cid, key_points=["The moon pulls the sea"]), f"{cid}.json")
    root.drain()
    eps = {e["channel"]: e for e in root.status()}
    return root, eps


def qa_of(root, ep):
    d = root.episode_dir(ep["id"])
    qa = json.loads((d / "qa.json").read_text())
    assert qa["version"] == 1 and qa["verdict"] in ("pass", "warn", "fail")
    for c in qa["checks"]:
        assert set(c) == {"name", "status", "value", "unit", "threshold", "detail"}, c
    return d, qa, {c["name"]: c for c in qa["checks"]}


def broll_run(d):
    """The longest stretch of consecutive b-roll segments, in seconds."""
    longest, start, prev = 0.0, None, None
    for s in json.loads((d / "timeline.json").read_text())["segments"]:
        if s["visual"] == "broll":
            start = s["start"] if start is None or prev != "broll" else start
            longest = max(longest, s["end"] - start)
        prev = s["visual"]
    return longest


def ebur128(path):
    p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-af",
                        "ebur128=peak=true:framelog=verbose", "-f", "null", "-"], capture_output=True, text=True)
    summary = p.stderr[p.stderr.rfind("Summary:"):]
    return float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)), \
        float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))


def test_demo_like_episode_passes_qa_at_minus_14_lufs(episodes):
    root, eps = episodes
    ep = eps["t"]
    assert ep["state"] == "awaiting-approval", ep
    d, qa, c = qa_of(root, ep)
    assert not [x for x in qa["checks"] if x["status"] == "fail"], qa["checks"]
    lufs, peak = ebur128(d / "final.mp4")
    assert abs(lufs + 14) <= 1, lufs
    assert peak <= -1, peak
    assert abs(c["loudness_integrated"]["value"] - lufs) <= 0.2
    assert c["faststart"]["value"] == "yes" and c["resolution"]["value"] == "320x180"
    assert c["script_match"]["value"] >= 90 and c["subtitle_offset"]["status"] == "pass"
    shown = root.cli("show", ep["ticket"]).stdout
    assert re.search(r"^qa +%s " % qa["verdict"], shown, re.M), shown
    assert root.show(ep["ticket"])["qa"]["verdict"] == qa["verdict"]


def test_black_broll_fails_the_stage_with_its_length(episodes):
    root, eps = episodes
    ep = eps["black"]
    assert ep["state"] == "failed" and ep["stage"] == "assembly", ep
    d, qa, c = qa_of(root, ep)
    want = broll_run(d)
    assert want > 1
    assert qa["verdict"] == "fail" and c["black_video"]["status"] == "fail"
    assert abs(c["black_video"]["value"] - want) <= 0.25, (c["black_video"], want)
    err = root.show(ep["ticket"])["jobs"][-1]["error_message"]
    assert "black_video %.2f s" % c["black_video"]["value"] in err and "threshold" in err, err
    shown = root.cli("show", ep["ticket"]).stdout
    assert re.search(r"^  fail +black_video", shown, re.M), shown


def test_frozen_clip_warns_with_its_length(episodes):
    root, eps = episodes
    ep = eps["frozen"]
    assert ep["state"] == "awaiting-approval", ep  # frozen_video only warns by default
    d, qa, c = qa_of(root, ep)
    want = broll_run(d)
    assert qa["verdict"] == "warn" and c["frozen_video"]["status"] == "warn", c["frozen_video"]
    assert abs(c["frozen_video"]["value"] - want) <= 0.5, (c["frozen_video"], want)
    assert c["black_video"]["status"] == "pass"


def test_gap_clipping_and_shifted_subtitle_are_caught(episodes):
    root, eps = episodes
    ep = eps["voice"]
    assert ep["state"] == "failed" and ep["stage"] == "assembly", ep
    d, qa, c = qa_of(root, ep)
    truth = json.loads((d / "voice-truth.json").read_text())
    # the 3 s gap: the longest silence, where it was put
    assert c["silence"]["status"] == "fail" and abs(c["silence"]["value"] - 3.0) <= 0.3, c["silence"]
    assert any(abs(a - truth["gap_start"]) <= 0.3 for a, b in qa["measured"]["silences"]), qa["measured"]
    # the clipped sentence: every sample at full scale counted
    assert c["narration_clipping"]["status"] == "fail"
    assert truth["clipped"] > 100 and qa["measured"]["narration_clipped_samples"] == truth["clipped"]
    # the shifted cue: +500 ms from its narration and from the speech heard
    assert c["subtitle_offset"]["status"] == "warn" and c["subtitle_offset"]["value"] == 500, c["subtitle_offset"]
    assert qa["measured"]["subtitle_offsets_ms"][3] == 500
    assert abs(c["subtitle_onset"]["value"] - 500) <= 60, c["subtitle_onset"]
    err = root.show(ep["ticket"])["jobs"][-1]["error_message"]
    assert "silence" in err and "narration_clipping" in err and "subtitle_offset" not in err, err
    # the loudness is still normalised: clipping is reported, not passed on
    assert abs(c["loudness_integrated"]["value"] + 14) <= 1
