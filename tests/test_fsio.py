"""The one cleaner of temporaries (src/tmpclean.c).

A process that dies between creating ".<name>.<pid>.tmp" and committing it
leaves that name behind.  At start-up the daemon removes such names whose
process is gone, from the spool folders it writes, the channel folders
(episodes and their sub-folders, the default outbox) and configured outboxes,
logging each one, and touches nothing else: not a live process's temporary,
not a user's file, not anything in spool/incoming/ or spool/tmp/.
"""
import json
import os
import subprocess
import threading

from conftest import BIN


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant_file(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def plant_publish_folder(path):
    for name in ("final.mp4", "manifest.json"):
        plant_file(path / name)
    return path


def test_startup_removes_only_temporaries_of_dead_processes(root, tmp_path):
    elsewhere = tmp_path / "far-outbox"
    root.channel("o", extra=f"  upload: {{name: directory, outbox: {elsewhere}}}\n")
    dead, live = dead_pid(), os.getpid()
    ep = root.path / "channels/t/episodes/ep-1"
    stale = [
        plant_file(root.path / f"spool/planning/.t-ep-1.{dead}.tmp"),
        plant_file(root.path / f"spool/failed/.t-ep-2.error.{dead}.tmp"),
        plant_file(ep / f".audio.wav.{dead}.tmp"),
        plant_file(ep / f"avatar/.seg-01.mp4.{dead}.tmp"),
        plant_file(ep / f"broll/.seg-02.{dead}.tmp.mp4"),   # an extension for ffmpeg
        plant_publish_folder(root.path / f"channels/t/outbox/.ep-1.{dead}.tmp"),
        plant_publish_folder(elsewhere / f".ep-2.{dead}.tmp"),
    ]
    kept = [
        plant_file(ep / f".script.md.{live}.tmp"),          # its process is alive
        plant_file(ep / ".notes.tmp"),                      # a user's file, not our convention
        plant_file(ep / f"notes.{dead}.tmp"),               # not a dot-name
        plant_file(ep / f".notes.{dead}.tmp.bak"),          # not ending in .tmp or .tmp.<one of ours>
        plant_file(ep / "audio.wav"),
        plant_file(root.path / f"spool/incoming/.idea.json.{dead}.tmp"),   # the user's folders
        plant_file(root.path / f"spool/tmp/.idea.json.{dead}.tmp"),
        plant_file(root.path / "channels/t/outbox/ep-0/final.mp4"),
    ]

    root.drain()

    gone = [p for p in stale if p.exists()]
    assert not gone, f"stale temporaries left: {gone}"
    missing = [p for p in kept if not p.exists()]
    assert not missing, f"the cleaner removed what was not its own: {missing}"
    removed = [json.loads(line)["msg"] for line in root.log.read_text().splitlines()
               if '"tmpclean.removed"' in line]
    for p in stale:
        assert any(str(p) in m and str(dead) in m for m in removed), f"{p} removed without a log line: {removed}"
    assert len(removed) == len(stale), removed


def test_startup_waits_for_a_dying_stage_child_then_removes_its_leftover(root, tmp_path):
    """A stage child of a killed daemon can still be exiting when the next
    daemon starts, with its temporary on disk: start-up waits for such an
    owner (this same program, or one too far gone to tell) and sweeps after."""
    other = tmp_path / "other-root"
    subprocess.run([BIN, "-C", str(other), "init"], check=True, capture_output=True)
    owner = subprocess.Popen([BIN, "-C", str(other), "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        leftover = plant_file(root.path / f"channels/t/episodes/ep-1/.final.mp4.{owner.pid}.tmp.mp4")
        threading.Timer(1.0, owner.kill).start()
        root.drain()
        assert owner.poll() is not None
        assert not leftover.exists(), "the leftover of an owner that died during start-up is still there"
        assert f"removed {leftover}" in root.log.read_text()
    finally:
        owner.kill()
        owner.wait()
