"""Offline visuals (issue 10, item 4): the thumbnail's title band, still-image
b-roll from the channel library with pan and zoom, the ducked music bed, and
the Shorts cut published by the directory provider as a second item.
One small episode (320x180, a few seconds) is rendered once and measured with
ffmpeg; nothing of acog-batch is mocked."""
import json
import re
import subprocess

import pytest

from conftest import ffprobe

LONG_TITLE = "How tardigrades survive boiling water, outer space and thirty frozen years"


def gray(path, w, h, extra=()):
    """The picture as rows of 8-bit luma, read with ffmpeg."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *extra, "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    assert len(raw) == w * h
    return [raw[y * w:(y + 1) * w] for y in range(h)]


def make_image(path, spec, size="320x180", text=None):
    vf = ["-vf", f"drawtext=text={text}:fontsize=60:fontcolor=white:x=(w-tw)/2:y=(h-th)/2"] if text else []
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"{spec}:s={size}",
                    *vf, "-frames:v", "1", str(path)], check=True)


def layout(root, ep):
    log = (root.episode_dir(ep) / "log.jsonl").read_text().splitlines()
    msgs = [json.loads(l)["msg"] for l in log if "thumbnail layout" in l]
    assert msgs, "the assembly logs the thumbnail layout"
    m = re.search(r"picture (\d+),(\d+),(\d+),(\d+); band (\d+),(\d+),(\d+),(\d+); "
                  r"title in (\d+),(\d+),(\d+),(\d+) at (\d+) px, (\d+) lines", msgs[-1])
    v = list(map(int, m.groups()))
    return {"picture": v[0:4], "band": v[4:8], "title": v[8:12], "size": v[12], "lines": v[13]}


def disjoint(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    from conftest import Root, run
    r = Root(tmp_path_factory.mktemp("visuals") / "root")
    run(["init"], r.path)
    d = r.channel("t", review="false")
    # the placeholder presenter carries its own name, like the demo's avatar
    make_image(d / "avatar.png", "color=c=0x2b4c7e", "200x200", text="NOVA")
    (d / "library").mkdir()
    make_image(d / "library" / "a-still.png", "testsrc=r=1", "480x270")
    (d / "music").mkdir()
    # a low tone: easy to tell from the voice with a low-pass filter
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=50:sample_rate=48000:duration=4", "-ac", "2", str(d / "music" / "bed.wav")],
                   check=True)
    yml = (d / "channel.yaml").read_text().replace("  broll: generated\n", "  broll: {name: library, dir: library}\n"
                                                     "  audio: {name: espeak, gap_ms: 1300, speed: 300}\n"
                                                     # a loud bed (-6 dB) over long pauses is not
                                                     # what loudness QA is for: it only warns here
                                                     "  assembly: {name: ffmpeg, qa: warn}\n")
    (d / "channel.yaml").write_text(yml + "music: {file: music/bed.wav, volume_db: -6, duck: true}\n"
                                    "shorts: {enabled: true, max_seconds: 8}\n")
    r.drop(r.idea(LONG_TITLE), "v.json")
    r.drain()
    [ep] = r.status()
    return r, ep


def test_thumbnail_title_on_band_clear_of_other_text(episode):
    root, ep = episode
    d = root.episode_dir(ep["id"])
    w, h = 320, 180
    L = layout(root, ep["id"])
    bx, by, bw, bh = L["band"]
    assert (bx, bw, by + bh) == (0, w, h), "the band spans the frame's width at the bottom"
    assert 1 <= L["lines"] <= 3 and L["size"] < h // 9, "a long title wraps to 3 lines at most, shrunk"
    assert disjoint(L["picture"], L["title"]), L
    assert disjoint(L["picture"], L["band"]), L

    px = gray(d / "thumbnail.png", w, h)
    bright = [(x, y) for y in range(h) for x in range(w) if px[y][x] > 200]
    title_px = [p for p in bright if p[1] >= by]
    name_px = [p for p in bright if p[1] < by]
    assert len(title_px) > 100, "the title is drawn in the band"
    assert len(name_px) > 50, "the avatar's own name is still visible, above the band"
    ty = L["title"][1]
    assert all(ty <= y < ty + L["title"][3] for _, y in title_px), "title pixels stay in the title box"
    # the band darkens what is under it: the margins beside the title (no text) are
    # much darker than the same columns just above the band, and nearly uniform
    margin = range(0, 6)
    above = [px[y][x] for y in range(by - 12, by - 2) for x in margin]
    band = [px[y][x] for y in range(by + 2, h - 2) for x in margin]
    mean = lambda v: sum(v) / len(v)
    assert mean(band) < 0.7 * mean(above), (mean(band), mean(above))
    var = mean([(v - mean(band)) ** 2 for v in band])
    assert var < 40, f"band luma variance {var:.1f}"


def frame_diff(path, t0, t1, w=320, h=180):
    a = b"".join(gray(path, w, h, ["-ss", str(t0)]))
    b = b"".join(gray(path, w, h, ["-ss", str(t1)]))
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def test_still_image_broll_pans_and_zooms(episode):
    root, ep = episode
    d = root.episode_dir(ep["id"])
    log = (d / "log.jsonl").read_text()
    assert "still a-still.png" in log, "the library's still was used"
    clips = sorted((d / "broll").glob("seg-*.mp4"))
    assert clips
    for c in clips:
        dur = float(ffprobe(c)["format"]["duration"])
        assert frame_diff(c, 0, dur - 0.3) > 3, f"{c.name}: the picture moves (zoompan), it is not a held still"


def rms_db(path, start, length, lowpass=None):
    # the bed is a 50 Hz sine: a narrow band around it keeps the (louder, normalised) voice out
    band = f"bandpass=f={lowpass}:width_type=q:w=8,"
    af = (band * 3 if lowpass else "") + "astats=metadata=0"
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i",
                        str(path), "-vn", "-af", af, "-f", "null", "-"], capture_output=True, text=True, check=True)
    m = re.findall(r"RMS level dB: (-?[\d.]+|-inf)", p.stderr)
    return float(m[-1]) if m and m[-1] != "-inf" else -200.0


def pauses(wav):
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", str(wav), "-af",
                        "silencedetect=noise=-45dB:d=0.9", "-f", "null", "-"], capture_output=True, text=True)
    starts = [float(x) for x in re.findall(r"silence_start: ([\d.]+)", p.stderr)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", p.stderr)]
    return list(zip(starts, ends))


def test_music_bed_ducked_under_narration(episode):
    root, ep = episode
    d = root.episode_dir(ep["id"])
    gaps = [g for g in pauses(d / "audio.wav") if g[1] - g[0] >= 1.1][:5]
    assert len(gaps) >= 2, gaps
    bed_pause, bed_voice = [], []
    for (s0, e0), (s1, _) in zip(gaps, gaps[1:]):
        bed_pause.append(rms_db(d / "final.mp4", (s0 + e0) / 2, 0.4, lowpass=50))
        mid = (e0 + s1) / 2  # the middle of the speech between two pauses
        bed_voice.append(rms_db(d / "final.mp4", mid - 0.25, 0.5, lowpass=50))
    assert min(bed_pause) > -40, f"the bed is heard in the pauses: {bed_pause}"
    assert max(v - p for v, p in zip(bed_voice, bed_pause)) < -6, \
        f"the bed is ducked while the narration speaks: voice {bed_voice} pause {bed_pause}"


def test_shorts_cut_published_as_second_item(episode):
    from test_shorts import check_cut
    root, ep = episode
    assert ep["status"] == "published", ep
    d = root.episode_dir(ep["id"])
    check_cut(d)
    out = root.path / "channels/t/outbox"
    main = json.loads((out / ep["id"] / "manifest.json").read_text())
    short = json.loads((out / (ep["id"] + "-shorts") / "manifest.json").read_text())
    assert short["cut"] == "shorts" and short["title"].endswith("#Shorts") and "cut" not in main
    assert (out / (ep["id"] + "-shorts") / "final.mp4").read_bytes() == (d / "shorts.mp4").read_bytes()
    assert (out / ep["id"] / "final.mp4").read_bytes() == (d / "final.mp4").read_bytes()


def test_bad_music_and_shorts_settings_are_refused(root):
    root.channel("t", extra="music: {file: ../../outside.mp3, volume_db: 5}\nshorts: {enabled: yes-please}\n")
    root.drop(root.idea("Anything"), "m.json")
    root.drain()
    [err] = (root.path / "spool/rejected").glob("*.error")
    text = err.read_text()
    assert "music.file" in text and "relative to the channel folder" in text, text
    assert "music.volume_db" in text and "shorts.enabled" in text, text


def test_library_outside_the_channel_folder_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    make_image(outside / "secret.png", "color=c=red", "64x64")
    d = root.channel("t", review="false")
    (d / "lib").symlink_to(outside)
    yml = (d / "channel.yaml").read_text().replace("  broll: generated\n", "  broll: {name: library, dir: lib}\n")
    (d / "channel.yaml").write_text(yml)
    root.drop(root.idea("Why do stars twinkle?"), "o.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "failed" and ep["stage"] == "broll", ep
    assert "leads outside the channel folder" in (ep.get("last_error") or root.show(ep["id"]).get("last_error", "")), ep
