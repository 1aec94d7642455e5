"""Issue 12: each frame of an episode is encoded once.  Generated b-roll and
the offline presenter (the still avatar) are recipes (broll/seg-NN.json,
avatar/seg-NN.json with the picture fitted once in avatar/still.png) that
assembly renders straight into the final encode, never clips encoded and
decoded again.  An ffmpeg wrapper first in PATH records every argument vector
the stages run; the real ffmpeg does the work."""
import json
import os
import shutil
import subprocess

WRAP = """#!/bin/sh
# one line per run: the arguments, each ended by a unit separator
for a; do printf '%s\\037' "$a"; done >>"{log}"
echo >>"{log}"
exec "{real}" "$@"
"""
SOURCES = ("gradients=", "mandelbrot=", "life=", "cellauto=")


def one_short_episode_through_wrapped_ffmpeg(root, tmp_path, monkeypatch, wrap, logname):
    """One short offline episode, with every ffmpeg run through the shell script wrap
    (formatted with {log} and {real}); returns the log file it wrote."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / logname
    (bindir / "ffmpeg").write_text(wrap.format(log=log, real=shutil.which("ffmpeg")))
    (bindir / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    root.channel("m", review="false")
    root.drop(root.idea("Why do cats purr?", channel="m", target_length_minutes=0.1))
    root.drain()
    return log


def ffmpeg_runs(root, tmp_path, monkeypatch):
    log = one_short_episode_through_wrapped_ffmpeg(root, tmp_path, monkeypatch, WRAP, "ffmpeg.argv")
    return [line.split("\x1f")[:-1] for line in log.read_text().splitlines()]


def rgb_at(video, t):
    p = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "%.3f" % t, "-i", str(video),
                        "-frames:v", "1", "-vf", "crop=8:8:4:4,scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-"], capture_output=True, check=True)
    return tuple(p.stdout[:3])


def test_generated_broll_is_encoded_once_in_the_final_encode(root, tmp_path, monkeypatch):
    runs = ffmpeg_runs(root, tmp_path, monkeypatch)
    [ep] = root.status()
    assert ep["status"] == "published", root.log.read_text()[-3000:]
    d = root.episode_dir(ep["id"])
    segs = json.loads((d / "timeline.json").read_text())["segments"]
    broll = [s for s in segs if s["visual"] == "broll" and round(s["end"] * 10) > round(s["start"] * 10)]
    assert broll, segs

    # a recipe per b-roll segment, recorded as its asset; no clip, and no ffmpeg run wrote into broll/
    for s in broll:
        assert (d / "broll" / ("seg-%02d.json" % s["index"])).is_file()
    assert not list((d / "broll").glob("*.mp4"))
    assert not [r for r in runs if r[-1].startswith("broll/")], "b-roll was encoded before assembly"
    assets = root.q("SELECT uri, mime_type FROM assets WHERE type = 'b_roll' AND episode_id = ?", ep["id"])
    assert sorted(a["uri"].rsplit("/", 1)[1] for a in assets) == sorted("seg-%02d.json" % s["index"]
                                                                       for s in broll), assets

    # the still avatar: a recipe per avatar segment, recorded as its asset, and one fitted picture
    avatar = [s for s in segs if s["visual"] == "avatar" and round(s["end"] * 10) > round(s["start"] * 10)]
    assert avatar, segs
    assert not list((d / "avatar").glob("*.mp4"))
    assert (d / "avatar" / "still.png").stat().st_size > 0
    assets = root.q("SELECT uri FROM assets WHERE type = 'avatar_video' AND episode_id = ?", ep["id"])
    assert sorted(a["uri"].rsplit("/", 1)[1] for a in assets) == sorted("seg-%02d.json" % s["index"]
                                                                       for s in avatar), assets

    # one x264 encode in the whole episode: final.mp4
    encodes = [r for r in runs if "libx264" in r]
    finals = [r for r in encodes if ".final.mp4." in r[-1]]
    assert len(finals) == 1 and len(encodes) == 1, [r[-1] for r in encodes]

    # the final encode renders each recipe from its lavfi source, and the picture is there, not the title card
    [final] = finals
    lavfi = [final[i + 1] for i, a in enumerate(final[:-1]) if a == "-i" and final[i - 1] == "lavfi"]
    assert sum(src.startswith(SOURCES) for src in lavfi) == len(broll), lavfi
    assert final.count("avatar/still.png") == len(avatar), final
    for s in broll + avatar:
        r, g, b = rgb_at(d / "final.mp4", (s["start"] + s["end"]) / 2)
        card = r < 60 and g < 70 and 40 < b < 100 and abs(r - 0x14) < 12 and abs(g - 0x21) < 12
        assert not card, f"segment {s['index']} shows the title card ({r},{g},{b}), not its picture"

