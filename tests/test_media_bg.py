"""Issue 12: assembly draws the thumbnail beside its loudness pass and its
encode (src/media_bg.c: a step in a forked copy of the stage process), not
after them, so the thumbnail's ffmpeg fills the cores the others leave.
An ffmpeg wrapper first in PATH records when each run starts and ends; the
real ffmpeg does the work.  The thumbnail's failure coming back from the
copy is tested in test_defects.py (test_ffmpeg_run_without_its_file...)."""
from test_media_once import one_short_episode_through_wrapped_ffmpeg

WRAP = """#!/bin/sh
for a; do last=$a; done
s=$(date +%s.%N)
"{real}" "$@"
st=$?
printf '%s %s %s\\n' "$s" "$(date +%s.%N)" "$last" >>"{log}"
exit $st
"""


def test_thumbnail_is_drawn_beside_the_encode(root, tmp_path, monkeypatch):
    log = one_short_episode_through_wrapped_ffmpeg(root, tmp_path, monkeypatch, WRAP, "ffmpeg.times")
    [ep] = root.status()
    assert ep["status"] == "published", root.log.read_text()[-3000:]
    runs = [line.split(" ", 2) for line in log.read_text().splitlines()]
    [final] = [(float(s), float(e)) for s, e, last in runs if ".final.mp4." in last]
    [thumb] = [(float(s), float(e)) for s, e, last in runs if ".thumbnail.png." in last]
    assert thumb[0] < final[1], f"the thumbnail ({thumb}) waited for the encode ({final})"
    d = root.episode_dir(ep["id"])
    assert (d / "thumbnail.png").stat().st_size > 0
    assets = root.q("SELECT uri FROM assets WHERE type = 'thumbnail' AND episode_id = ?", ep["id"])
    assert [a["uri"].rsplit("/", 1)[1] for a in assets] == ["thumbnail.png"], assets
    assert not list(d.glob(".*.tmp.*")), list(d.iterdir())
