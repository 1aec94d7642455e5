"""Burned captions drawn only where they change (issue 12, caption_band.c).

The assembly encode no longer has libass draw the captions on every frame:
a caption branch draws them only on the frames where an event starts or
ends, and overlay blends the band where they can appear into every frame.
These tests hold final.mp4 to ffmpeg's plain `subtitles=` filter, frame by
frame.

One root, two drains, three offline episodes made at once, each encoded
losslessly (video.crf 0: a decoded frame is exactly the graph's output):
  bot   320x180, captions.ass at the bottom, the voice-driven avatar and
        generated b-roll: captions over a moving picture;
  top   320x180, captions.ass at the top, a static avatar;
  tall  180x320, subtitles.srt (the tall frame's style), a static avatar.
Then the assembly stage runs again for each: bot and top without captions
(video.burn_subtitles false: the same picture, clean), and tall with a
subtitles.srt that caption_band.c refuses (a '.' where its strict reading
wants the ',' of HH:MM:SS,mmm; ffmpeg reads both alike), so the plain filter
burns it.

The reference for bot and top is ffmpeg's subtitles filter on the clean
picture, with the timestamps the filter saw in the old graph (concat's
microseconds: settb=AVTB); for tall, the plain filter's burn of the second
run.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FAST_CHANNEL, Root, run

FPS = 25
# Largest mean squared difference, per frame and plane, between final.mp4's
# caption band and the reference's.  Overlay blends what libass drew on a
# transparent canvas; the plain filter blends the same bitmaps straight into
# the frame.  They differ only at anti-aliased edges where a glyph's partly
# covered fill lies on its partly covered outline (the 1-pixel outlines of
# these small frames; at 1080p the difference is at most 1 anywhere): MSE
# <= 0.4 in luma, <= 1.2 in chroma measured.  A word highlighted one frame
# early or late (~100 pixels off by ~47 in luma, ~90 in chroma), a caption
# cut by the band, or a dark fringe around every glyph is 10 or more.
BAND_MSE_MAX = 2.0
VIDEO = "video: {width: 320, height: 180, fps: 10, preset: ultrafast, burn_subtitles: true}"
CHANNELS = {  # id: width, height, channel.yaml lines, avatar motion
    "bot": (320, 180, "", "voice"),
    "top": (320, 180, "captions: {position: top}\n", "static"),
    "tall": (180, 320, "", "static"),
}
# quick narration; lossless frames; no loudness pass (not under test here)
PROVIDERS = "  audio: {name: espeak, speed: 450}\n  assembly: {name: ffmpeg, qa: warn, normalize_loudness: false}\n"


def channel_yaml(cid, burn=True):
    w, h, extra, motion = CHANNELS[cid]
    video = (f"video: {{width: {w}, height: {h}, fps: {FPS}, preset: ultrafast, crf: 0, "
             f"burn_subtitles: {str(burn).lower()}}}")
    text = FAST_CHANNEL.format(id=cid, review="true", extra=PROVIDERS).replace(VIDEO, video)
    avatar = f"{{name: still, image: avatar.png, motion: {motion}}}"
    return text.replace("{name: still, image: avatar.png}", avatar) + extra


def captions_said(log, ep):
    """What the assembly stage logged about the captions of episode ep."""
    out = []
    for line in log.splitlines():
        if f'"episode":"{ep}"' in line and '"msg":"captions: ' in line:
            out.append(json.loads(line)["msg"])
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    base = tmp_path_factory.mktemp("capband")
    root = Root(base / "root")
    run(["init"], root.path)
    for cid in CHANNELS:
        (root.channel(cid) / "channel.yaml").write_text(channel_yaml(cid))
        root.drop(root.idea("Why do cats purr?", channel=cid, target_length_minutes=0.1), f"{cid}.json")
    root.drain("-j", "3")
    eps = {}
    for e in root.status():
        assert e["state"] == "awaiting-approval", e
        d = root.episode_dir(e["ticket"])
        cid = d.parent.parent.name
        eps[cid] = d
        for src, dst in (("final.mp4", "band.mp4"), ("captions.ass", "ass"), ("subtitles.srt", "srt")):
            shutil.copy(d / src, base / f"{cid}.{dst}")
        (root.path / "channels" / cid / "channel.yaml").write_text(channel_yaml(cid, burn=cid == "tall"))
        root.cli("reject", e["ticket"], "--by", "t", "--reason", "again", "--to", "assembly")
    srt = eps["tall"] / "subtitles.srt"
    text = srt.read_text()
    first = re.search(r"^(\d\d:\d\d:\d\d),(\d\d\d) -->", text, re.M)
    srt.write_text(f"{text[:first.start()]}{first[1]}.{first[2]} -->{text[first.end():]}")
    before = root.log.read_text()
    root.drain("-j", "3")
    for cid, d in eps.items():
        shutil.copy(d / "final.mp4", base / f"{cid}.{'plain' if cid == 'tall' else 'clean'}.mp4")
    log = root.log.read_text()
    return base, eps, log[:len(before)], log[len(before):]


def band_of(log, ep, file):
    """The band the first drain's encode logged: (drawn, frames, y, h)."""
    said = captions_said(log, ep.name)
    m = [re.fullmatch(rf"captions: {re.escape(file)} drawn on (\d+) of (\d+) frames, blended in rows (\d+)-(\d+)", s)
         for s in said]
    assert len(m) == 1 and m[0], said
    drawn, frames, y0, y1 = (int(x) for x in m[0].groups())
    return drawn, frames, y0, y1 - y0 + 1


def region_mse(cwd, final, ref, regions, ref_filter=""):
    """For each region (rows y..y+h-1), per frame, the mean squared
    difference in Y, U and V between final and ref (ref through ref_filter
    first), from one ffmpeg run."""
    k = len(regions)
    g = [f"[0:v]settb=AVTB,split={k}" + "".join(f"[a{i}]" for i in range(k)),
         f"[1:v]settb=AVTB{ref_filter},split={k}" + "".join(f"[b{i}]" for i in range(k))]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(final), "-i", str(ref)]
    for i, (y, h) in enumerate(regions):
        g.append(f"[a{i}]crop=iw:{h}:0:{y}[ca{i}];[b{i}]crop=iw:{h}:0:{y}[cb{i}];"
                 f"[ca{i}][cb{i}]psnr=stats_file=mse{i}.log[o{i}]")
        cmd += ["-map", f"[o{i}]", "-f", "null", "-"]
    subprocess.run(cmd[:8] + ["-filter_complex", ";".join(g)] + cmd[8:], cwd=cwd, check=True)
    return [[tuple(float(v) for v in m) for m in re.findall(r"mse_y:([\d.]+) mse_u:([\d.]+) mse_v:([\d.]+)",
                                                           (Path(cwd) / f"mse{i}.log").read_text())]
            for i in range(k)]


def matches(cwd, final, ref, height, band, ref_filter=""):
    """final equals ref outside the band, and within BAND_MSE_MAX in it."""
    _, frames, y, h = band
    outside = [r for r in ((0, y), (y + h, height - y - h)) if r[1] > 0]
    inside, *rest = region_mse(cwd, final, ref, [(y, h)] + outside, ref_filter)
    assert len(inside) == frames, (len(inside), frames)
    assert max(max(t) for t in inside) <= BAND_MSE_MAX, \
        [(n, t) for n, t in enumerate(inside) if max(t) > BAND_MSE_MAX][:10]
    for r, mse in zip(outside, rest):
        assert len(mse) == frames and not any(max(t) for t in mse), (r, mse[:5])


def band_luma(path, w, y, h):
    """The band's luma plane of every frame of path (w wide), as bytes."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", f"crop=iw:{h}:0:{y}",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return [raw[i:i + w * h] for i in range(0, len(raw), w * h)]


def frame_ms(n):
    """The time the subtitles filter has libass draw frame n at: (long
    long)(pts * time_base * 1000), in double, with concat's microsecond
    pts (so frame 7 at 25 fps is drawn at 279 ms)."""
    return int((n * 1000000 + FPS // 2) // FPS * (1.0 / 1000000) * 1000)


def events(path):
    """(start, end) in ms of each Dialogue of a captions.ass or cue of a subtitles.srt."""
    ass = r"Dialogue: \d+,(\d+):(\d\d):(\d\d)\.(\d\d),(\d+):(\d\d):(\d\d)\.(\d\d),"
    t = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"
    text = Path(path).read_text()
    unit = 10 if str(path).endswith(".ass") else 1
    out = []
    for g in re.findall(ass if unit == 10 else t + " --> " + t, text):
        v = [int(x) for x in g]
        out.append((((v[0] * 60 + v[1]) * 60 + v[2]) * 1000 + v[3] * unit,
                    ((v[4] * 60 + v[5]) * 60 + v[6]) * 1000 + v[7] * unit))
    assert out, path
    return out


def changes_in_still_frames(d, band, evs):
    """Where the band changes between frames of the static avatar's
    segments (only the captions move there), and where the events say it
    must: where the set of events shown changes."""
    segs = json.loads((d / "timeline.json").read_text())["segments"]
    still = [n for s in segs if s["visual"] == "avatar"
             for n in range(round(s["start"] * FPS) + 2, round(s["end"] * FPS) - 1)]
    shown = [frozenset(i for i, (s, e) in enumerate(evs) if s <= frame_ms(n) < e) for n in range(len(band))]
    return [n for n in still if band[n] != band[n - 1]], [n for n in still if shown[n] != shown[n - 1]]


@pytest.mark.parametrize("cid", ["bot", "top"])
def test_every_frame_matches_the_plain_subtitles_filter(made, cid):
    base, eps, log, _ = made
    assert any("\\N" in line for line in (base / f"{cid}.ass").read_text().splitlines()
               if line.startswith("Dialogue:")), "no caption of two lines"
    band = drawn, frames, y, h = band_of(log, eps[cid], "captions.ass")
    assert drawn < frames, band
    assert (y + h > 180 * 3 // 4) if cid == "bot" else (y < 180 // 4), band
    matches(base, f"{cid}.band.mp4", f"{cid}.clean.mp4", 180, band, f",subtitles=filename={cid}.ass")
    # not vacuous: the captions are there, in the band
    bare, = region_mse(base, f"{cid}.band.mp4", f"{cid}.clean.mp4", [(y, h)])
    assert sum(t[0] > 20 for t in bare) > frames / 2, bare[:20]


def test_captions_change_exactly_at_their_event_times(made):
    base, eps, log, _ = made
    _, frames, y, h = band_of(log, eps["top"], "captions.ass")
    band = band_luma(base / "top.band.mp4", 320, y, h)
    assert len(band) == frames
    seen, want = changes_in_still_frames(eps["top"], band, events(base / "top.ass"))
    assert len(want) > 20 and seen == want, (seen, want)


def test_the_tall_frame_burns_subtitles_srt_in_its_band(made):
    base, eps, log, _ = made
    band = drawn, frames, y, h = band_of(log, eps["tall"], "subtitles.srt")
    assert drawn < frames / 2 and y > 320 // 2, band
    matches(base, "tall.band.mp4", "tall.plain.mp4", 320, band)
    lum = band_luma(base / "tall.band.mp4", 180, y, h)
    seen, want = changes_in_still_frames(eps["tall"], lum, events(base / "tall.srt"))
    assert len(want) > 3 and seen == want, (seen, want)


def test_a_file_it_cannot_vouch_for_is_burned_by_the_plain_filter(made):
    base, eps, log, log2 = made
    said = captions_said(log2, eps["tall"].name)
    assert said == ["captions: subtitles.srt line 2: a cue time line not in the form HH:MM:SS,mmm --> "
                    "HH:MM:SS,mmm; libass draws them on every frame instead (slower)"], said
    # the video is still right: its captions change where the cues say
    # (and it is the picture the band's is held to, in the test above)
    _, frames, y, h = band_of(log, eps["tall"], "subtitles.srt")
    lum = band_luma(base / "tall.plain.mp4", 180, y, h)
    seen, want = changes_in_still_frames(eps["tall"], lum, events(base / "tall.srt"))
    assert len(lum) == frames and len(want) > 3 and seen == want, (seen, want)
