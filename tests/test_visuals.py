"""Offline visuals (issue 10, item 4): the thumbnail's title band, still-image
b-roll from the channel library with pan and zoom, and the ducked music bed.
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
