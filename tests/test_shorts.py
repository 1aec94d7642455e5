"""The 9:16 Shorts cut (issue 10, item 4): shorts.mp4 in the tall frame, at
most max_seconds, ending at a sentence boundary, captions inside the frame;
published as a second item by the directory provider, and as a second video
by the youtube provider, exactly once across a restart (the strict fake)."""
import json
import subprocess

from conftest import ffprobe
from test_youtube import YT
from test_visuals import gray

SHORTS = "shorts: {enabled: true, max_seconds: 8}\n"


def check_cut(d):
    info = ffprobe(d / "shorts.mp4")
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (v["width"], v["height"]) == (180, 320), "the channel's 320x180 frame, tall: 180x320 (1080x1920 scaled)"
    dur = float(info["format"]["duration"])
    cues = json.loads((d / "timeline.json").read_text())["cues"]
    ends = [c["end"] for c in cues if c["end"] + 0.3 <= 8]
    assert ends and abs(dur - (max(ends) + 0.3)) < 0.25, (dur, ends)
    assert dur <= 8.01 <= float(ffprobe(d / "final.mp4")["format"]["duration"])
    # captions: white text in the black bar under the 16:9 picture, clear of the edges
    cue = next(c for c in cues if c["end"] <= dur)
    px = gray(d / "shorts.mp4", 180, 320, ["-ss", str((cue["start"] + cue["end"]) / 2)])
    bright = [(x, y) for y in range(215, 320) for x in range(180) if px[y][x] > 160]
    assert len(bright) > 20, "captions drawn under the picture"
    xs, ys = [p[0] for p in bright], [p[1] for p in bright]
    assert min(xs) >= 2 and max(xs) <= 177 and max(ys) <= 317, "captions inside the frame"
    meta = json.loads((d / "shorts_metadata.json").read_text())
    full = json.loads((d / "metadata.json").read_text())
    assert meta["final_title"].endswith(" #Shorts") and len(meta["final_title"]) <= 100
    assert len(meta["description"]) < len(full["description"])
    return dur


def test_shorts_uploaded_once_across_a_restart(root, tmp_path):
    yt = YT(root, tmp_path)
    try:
        yt.acog_yaml()
        root.channel("t", review="true", extra="  upload: %s\n  assembly: {name: ffmpeg, qa: warn}\n%s"
                     % (json.dumps(yt.options(chunk_mib=64)), SHORTS))  # a few seconds of speech: QA only warns
        yml = root.path / "channels/t/channel.yaml"
        yml.write_text(yml.read_text().replace("max_retries: 3", "max_retries: 0"))
        yt.write_token("t", yt.refresh)
        [ep] = yt.episodes(1)
        # the video's upload goes through; the Shorts' upload is stored by the fake but it and the
        # uploader's status queries are answered 403 until the stage fails for good (no retries)
        yt.fake.faults([{"match": "upload_id=", "method": "PUT", "fault": "stall", "seconds": 0, "times": 1},
                        {"match": "upload_id=", "method": "PUT", "fault": "error_403", "after_handler": True,
                         "times": 50}])
        yt.approve(ep)
        yt.drain()
        [row] = root.status()
        assert row["state"] == "failed", row
        shorts = [v for v in yt.videos() if f"[acog:{ep['id']}-shorts]" in v["resource"]["snippet"]["description"]]
        assert len(shorts) == 1, "the Shorts video reached the fake before the failures"
        yt.fake.faults([])
        root.cli("retry", ep["ticket"])
        yt.drain()  # a new daemon: the state in the database says both exist
        mine = [v for v in yt.videos() if f"[acog:{ep['id']}" in v["resource"]["snippet"]["description"]]
        assert len(mine) == 2, [v["resource"]["snippet"]["title"] for v in mine]
        short = next(v for v in mine if "-shorts]" in v["resource"]["snippet"]["description"])
        d = root.episode_dir(ep["id"])
        assert short["resource"]["snippet"]["title"].endswith("#Shorts")
        from pathlib import Path
        assert Path(short["path"]).read_bytes() == (d / "shorts.mp4").read_bytes()
        pub = json.loads((d / "publish.json").read_text())
        assert pub["shorts_video_id"] == short["id"] and pub["video_id"] != short["id"]
        assert root.status()[0]["status"] == "published"
    finally:
        yt.fake.stop()
