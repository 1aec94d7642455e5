"""The pipeline end to end on the offline providers: spool moves, media
checks with ffprobe, subtitle timing, gates, audit, versions, retries, order."""
import json
import re
import subprocess
from pathlib import Path

from conftest import ffprobe, wait_for

STAGES = ["planning", "scripting", "script_review", "metadata", "audio", "avatar", "broll", "assembly"]


def stage_events(root, ep):
    log = (root.episode_dir(ep) / "log.jsonl").read_text().splitlines()
    return [json.loads(l) for l in log]


def test_happy_path_to_published(root):
    root.drop(root.idea("How do volcanoes form?", key_points=["Plates move", "Magma rises"]), "v.json")
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval" and ep["location"] == "review"
    assert root.tickets() == {ep["ticket"]: ["review"]}, "one ticket, in spool/review only"
    events = stage_events(root, ep["id"])
    started = [e["msg"].split()[0] for e in events if e["event"] == "stage.started"]
    assert started == STAGES, started
    done = [re.search(r"next: (\w+)", e["msg"]).group(1) for e in events if e["event"] == "stage.completed"]
    assert done == STAGES[1:] + ["review"], done

    d = root.episode_dir(ep["id"])
    for f in ["idea.json", "plan.json", "script.md", "metadata.json", "audio.wav", "subtitles.srt",
              "final.mp4", "thumbnail.png", "log.jsonl"]:
        assert (d / f).stat().st_size > 0, f
    meta = json.loads((d / "metadata.json").read_text())
    assert 0 < len(meta["final_title"]) <= 100 and meta["tags"]
    script = (d / "script.md").read_text()
    assert "[AVATAR]" in script and "[VOICEOVER]" in script and "[BROLL:" in script

    root.cli("approve", ep["ticket"], "--by", "alice", "--notes", "ship it")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "published" and root.tickets() == {ep["ticket"]: ["published"]}
    out = root.path / "channels/t/outbox" / ep["id"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} >= {"final.mp4", "metadata.json", "thumbnail.png", "subtitles.srt"}
    assert (out / "final.mp4").read_bytes() == (d / "final.mp4").read_bytes()
    assert json.loads((d / "publish.json").read_text())["provider"] == "directory"
    audit = root.q("SELECT action, actor_id, new_values FROM audit_logs WHERE entity_id = ? AND action = 'approve'", ep["id"])
    assert audit and audit[0]["actor_id"] == "alice" and json.loads(audit[0]["new_values"])["notes"] == "ship it"
    jobs = root.q("SELECT stage, status FROM jobs WHERE episode_id = ? ORDER BY created_at", ep["id"])
    assert [j["stage"] for j in jobs] == STAGES + ["upload"] and {j["status"] for j in jobs} == {"completed"}
    assets = root.q("SELECT type FROM assets WHERE episode_id = ? AND deleted_at IS NULL AND is_primary = 1", ep["id"])
    assert {a["type"] for a in assets} >= {"plan", "script", "metadata", "audio", "assembled_video", "thumbnail"}


def test_video_matches_narration(root):
    root.drop(root.idea("Why do cats purr?"), "c.json")
    root.drain()
    [ep] = root.status()
    d = root.episode_dir(ep["id"])
    info = ffprobe(d / "final.mp4")
    codecs = {s["codec_type"]: s for s in info["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["audio"]["codec_name"] == "aac"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (320, 180)
    narration = float(ffprobe(d / "audio.wav")["format"]["duration"])
    video = float(info["format"]["duration"])
    assert narration >= 20, f"narration only {narration:.1f}s"
    assert abs(video - narration) < 0.5, (video, narration)
    # faststart: the moov atom comes before mdat
    head = (d / "final.mp4").read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def srt_starts(text):
    out = []
    for m in re.finditer(r"(\d\d):(\d\d):(\d\d),(\d\d\d) -->", text):
        h, mi, s, ms = map(int, m.groups())
        out.append(h * 3600 + mi * 60 + s + ms / 1000)
    return out


def speech_onsets(wav):
    p = subprocess.run(["ffmpeg", "-nostdin", "-i", str(wav), "-af", "silencedetect=n=-45dB:d=0.12",
                        "-f", "null", "-"], capture_output=True, text=True, check=True)
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", p.stderr)]
    starts = [float(x) for x in re.findall(r"silence_start: ([\d.]+)", p.stderr)]
    onsets = ends[:]
    if not starts or starts[0] > 0.05:
        onsets.insert(0, 0.0)
    return onsets


def test_subtitle_cues_match_the_audio(root):
    root.drop(root.idea("The water cycle", key_points=["Evaporation", "Condensation", "Rain"]), "w.json")
    root.drain()
    [ep] = root.status()
    d = root.episode_dir(ep["id"])
    cues = srt_starts((d / "subtitles.srt").read_text())
    onsets = speech_onsets(d / "audio.wav")
    assert len(cues) >= 5
    for c in cues:
        nearest = min(onsets, key=lambda o: abs(o - c))
        assert abs(nearest - c) <= 0.1, f"cue at {c:.3f}s, nearest speech onset {nearest:.3f}s"


def test_vertical_channel(root):
    root.channel("v", extra="")
    y = root.path / "channels/v/channel.yaml"
    y.write_text(y.read_text().replace("width: 320, height: 180,", "vertical: true, width: 180, height: 320,"))
    root.drop(root.idea("Tall videos", channel="v"), "v.json")
    root.drain()
    [ep] = root.status()
    v = [s for s in ffprobe(root.episode_dir(ep["id"]) / "final.mp4")["streams"] if s["codec_type"] == "video"][0]
    assert (v["width"], v["height"]) == (180, 320)


def test_reject_to_scripting_reruns_with_notes_and_keeps_versions(root):
    root.drop(root.idea("Black holes"), "b.json")
    root.drain()
    [ep] = root.status()
    d = root.episode_dir(ep["id"])
    old_script = (d / "script.md").read_text()
    root.cli("reject", ep["ticket"], "--by", "bob", "--reason", "Mention event horizons", "--to", "scripting")
    assert root.tickets() == {ep["ticket"]: ["scripting"]}
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval"
    new_script = (d / "script.md").read_text()
    assert new_script != old_script and "Mention event horizons" in new_script
    versions = root.q("SELECT version_number, content FROM episode_versions WHERE episode_id = ? AND version_type = 'script'"
                      " ORDER BY version_number", ep["id"])
    assert [v["version_number"] for v in versions] == [1, 2]
    assert json.loads(versions[0]["content"])["text"] == old_script
    audit = root.q("SELECT actor_id, new_values FROM audit_logs WHERE entity_id = ? AND action = 'reject'", ep["id"])
    nv = json.loads(audit[0]["new_values"])
    assert audit[0]["actor_id"] == "bob" and nv["reason"] == "Mention event horizons" and nv["rerun_from"] == "scripting"
    # The plan stage was not re-run.
    assert len(root.q("SELECT id FROM jobs WHERE episode_id = ? AND stage = 'planning'", ep["id"])) == 1


def test_reject_without_to_holds_and_retry_resumes(root):
    root.drop(root.idea("Comets"), "c.json")
    root.drain()
    [ep] = root.status()
    root.cli("reject", ep["ticket"], "--by", "carol", "--reason", "Not now")
    assert root.tickets() == {ep["ticket"]: ["held"]}
    assert root.status()[0]["status"] == "cancelled"
    root.cli("retry", ep["ticket"], "--from", "metadata")
    root.drain()
    assert root.status()[0]["state"] == "awaiting-approval"


def test_decision_files_are_audited_like_the_command(root):
    root.drop(root.idea("Rainbows"), "r.json")
    root.start()
    wait_for(lambda: root.status() and root.status()[0]["state"] == "awaiting-approval", timeout=180, what="review gate")
    ep = root.status()[0]
    tmp = root.path / "spool/tmp/x"
    tmp.write_text("dana\nLooks great")
    tmp.rename(root.path / "spool/review" / (ep["ticket"] + ".approve"))
    wait_for(lambda: root.status()[0]["status"] == "published", timeout=120, what="published")
    root.stop()
    audit = root.q("SELECT actor_id, new_values FROM audit_logs WHERE entity_id = ? AND action = 'approve'", ep["id"])
    assert audit[0]["actor_id"] == "dana" and json.loads(audit[0]["new_values"])["notes"] == "Looks great"
    kept = list((root.episode_dir(ep["id"]) / "reviews").iterdir())
    assert len(kept) == 1 and kept[0].read_text() == "dana\nLooks great"


def test_approve_refused_when_not_at_a_gate(root):
    root.drop(root.idea("Moons"), "m.json")
    root.drain()
    [ep] = root.status()
    root.cli("approve", ep["ticket"], "--by", "x")
    p = root.cli("approve", ep["ticket"], "--by", "x", check=False)
    assert p.returncode == 65 and "not waiting for approval" in p.stderr
    p = root.cli("approve", "does-not-exist", "--by", "x", check=False)
    assert p.returncode == 66
    p = root.cli("approve", ep["ticket"], check=False)
    assert p.returncode != 0 and "--by" in p.stderr


COUNTING = """#!/bin/sh
# Fails with EX_TEMPFAIL twice, then writes the script.
n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
date +%s.%N >> attempts
if [ "$n" -le 2 ]; then echo "busy, try later (attempt $n)" >&2; exit 75; fi
cat > /dev/null
printf '# From a command\\n[AVATAR]\\nHello from an external program. It writes the script itself. This is a sentence.\\n[BROLL: a river]\\n[VOICEOVER]\\nRivers carry water to the sea. They shape valleys over time. We see them everywhere on Earth.\\n' > script.md
echo '{"outputs":[{"type":"script","path":"script.md","mime":"text/markdown"}]}'
"""


def test_command_provider_retried_on_75_then_succeeds(root):
    d = root.channel("cmd", review="false", extra="  scripting: {name: command, argv: [./fake-writer.sh], timeout: 20}\n")
    (d / "fake-writer.sh").write_text(COUNTING)
    (d / "fake-writer.sh").chmod(0o755)
    root.drop(root.idea("Rivers", channel="cmd"), "r.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "published"
    job = root.q("SELECT retry_count, status, provider FROM jobs WHERE episode_id = ? AND stage = 'scripting'", ep["id"])[0]
    assert job == {"retry_count": 2, "status": "completed", "provider": "command"}
    ed = root.episode_dir(ep["id"])
    times = [float(t) for t in (ed / "attempts").read_text().split()]
    assert len(times) == 3
    # backoff with base 0.2 s: at least 0.1 s, then at least 0.2 s apart
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2, times
    assert "busy, try later" in (ed / "log.jsonl").read_text()
    assert (ed / "script.md").read_text().startswith("# From a command")


def test_command_provider_permanent_failure_and_retry(root):
    d = root.channel("bad", extra="  metadata: {name: command, argv: [/bin/sh, -c, 'echo nope >&2; exit 3']}\n")
    root.drop(root.idea("Failing", channel="bad"), "f.json")
    root.drain()
    [ep] = root.status()
    assert ep["status"] == "failed" and root.tickets() == {ep["ticket"]: ["failed"]}
    err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
    assert "metadata" in err and "nope" in err and "acog-batch retry" in err
    assert root.q("SELECT retry_count FROM jobs WHERE stage = 'metadata'")[0]["retry_count"] == 0
    (d / "channel.yaml").write_text((d / "channel.yaml").read_text().replace(
        "  metadata: {name: command, argv: [/bin/sh, -c, 'echo nope >&2; exit 3']}\n", ""))
    root.cli("retry", ep["ticket"])
    assert root.tickets() == {ep["ticket"]: ["metadata"]}
    assert not (root.path / "spool/failed" / (ep["ticket"] + ".error")).exists()
    root.drain()
    assert root.status()[0]["state"] == "awaiting-approval"


def test_hanging_stage_times_out_without_hurting_the_daemon(root):
    root.channel("slow", extra="  planning: {name: command, argv: [/bin/sleep, '1000']}\ntimeouts: {planning: 1}\n")
    y = root.path / "channels/slow/channel.yaml"
    y.write_text(y.read_text().replace("retry: {max_retries: 3", "retry: {max_retries: 1"))
    root.drop(root.idea("Slow", channel="slow"), "s.json")
    root.drop(root.idea("Fast"), "f.json")
    root.drain()
    st = {e["channel"]: e for e in root.status()}
    assert st["slow"]["status"] == "failed" and "timed out" in st["slow"]["last_error"]
    assert st["t"]["state"] == "awaiting-approval"
    # no sleep process left behind
    assert subprocess.run(["pgrep", "-x", "-f", "/bin/sleep 1000"], capture_output=True).returncode == 1


def test_priority_order(root):
    for name, prio in [("low", "low"), ("normal", "normal"), ("urgent", "urgent"), ("num", 15)]:
        root.drop(root.idea(f"Priority {name}", priority=prio), f"{name}.json")
    root.drain("-j", "1")
    rows = root.q("SELECT e.title FROM jobs j JOIN episodes e ON e.id = j.episode_id WHERE j.stage = 'planning'"
                  " ORDER BY j.started_at")
    assert [r["title"] for r in rows] == ["Priority urgent", "Priority num", "Priority normal", "Priority low"]


def test_no_channel_starves(root):
    root.channel("other")
    for i in range(4):
        root.drop(root.idea(f"Busy {i}", priority="urgent"), f"busy{i}.json")
    root.drop(root.idea("Quiet", channel="other", priority="low"), "quiet.json")
    root.drain("-j", "1")
    rows = root.q("SELECT e.title FROM jobs j JOIN episodes e ON e.id = j.episode_id ORDER BY j.started_at")
    first_quiet = [r["title"] for r in rows].index("Quiet")
    # strict priority would run all 4 x 8 busy stages first
    assert first_quiet <= 3, [r["title"] for r in rows][:6]


def test_script_review_gate_waits_for_a_human(root):
    d = root.channel("sr")
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("script_review: false", "script_review: true"))
    root.drop(root.idea("Gated script", channel="sr"), "g.json")
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval" and ep["stage"] == "script_review"
    assert root.tickets() == {ep["ticket"]: ["script_review"]}
    assert not (root.episode_dir(ep["id"]) / "audio.wav").exists()
    root.cli("approve", ep["ticket"], "--by", "erin")
    root.drain()
    [ep] = root.status()
    assert ep["stage"] == "review" and ep["state"] == "awaiting-approval"


def test_library_broll_picks_matching_clips(root):
    d = root.channel("lib", extra="")
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("broll: generated", "broll: library"))
    lib = d / "library"
    lib.mkdir()
    for name, color in [("volcano-eruption-lava", "red"), ("ocean-waves-beach", "blue")]:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"color=c={color}:s=160x90:d=2", "-pix_fmt", "yuv420p", str(lib / f"{name}.mp4")], check=True)
    root.drop(root.idea("Volcano eruption", key_points=["Lava flows from a volcano eruption"], channel="lib"), "l.json")
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval", ep
    ed = root.episode_dir(ep["id"])
    assert list((ed / "broll").glob("seg-*.mp4"))
    assert "volcano-eruption-lava" in (ed / "log.jsonl").read_text()
