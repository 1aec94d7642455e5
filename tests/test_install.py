"""doctor (each check fails when its problem is introduced and passes when
fixed), and `make install` with DESTDIR/PREFIX: binary, man pages that
render, a systemd unit that verifies, bash completion."""
import os
import shutil
import subprocess

import pytest

from conftest import BIN, REPO, run


def doctor(root, env=None):
    p = subprocess.run([BIN, "-C", str(root.path), "doctor"], capture_output=True, text=True,
                       env=env or os.environ, timeout=120)
    return p.returncode, p.stdout


def line(out, text):
    hits = [l for l in out.splitlines()[1:] if text in l]   # line 0 names the root
    assert hits, f"no line about {text!r} in:\n{out}"
    return hits[0]


def test_doctor_healthy_root_passes(root):
    root.drop(root.idea("Healthy"), "h.json")
    root.drain()
    rc, out = doctor(root)
    assert rc == 0 and "all good" in out, out


def test_doctor_tools(root, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ["ffmpeg", "ffprobe", "espeak-ng"]:
        os.symlink(shutil.which(tool), bindir / tool)
    env = dict(os.environ, PATH=str(bindir))
    rc, out = doctor(root, env)
    assert rc == 0, out
    os.unlink(bindir / "espeak-ng")
    rc, out = doctor(root, env)
    assert rc == 69 and line(out, "espeak-ng").startswith("FAIL") and "apt-get install espeak-ng" in out
    (bindir / "ffprobe").unlink()
    (bindir / "ffprobe").write_text("#!/bin/sh\nexit 1\n")
    (bindir / "ffprobe").chmod(0o755)
    rc, out = doctor(root, env)
    assert "ffprobe is present but does not run" in out


def test_doctor_font(root):
    rc, out = doctor(root, dict(os.environ, ACOG_FONT="/nonexistent/font.ttf"))
    assert rc == 69 and line(out, "font").startswith("FAIL") and "ACOG_FONT" in out
    rc, out = doctor(root)
    assert line(out, "font").startswith("ok")


def test_doctor_credentials(root):
    cred = root.path / "credentials"
    cred.mkdir()
    (cred / "openai.key").write_text("sk-test")
    (cred / "openai.key").chmod(0o644)
    rc, out = doctor(root)
    assert rc == 69 and "chmod 600" in out and "openai.key" in out
    (cred / "openai.key").chmod(0o600)
    rc, out = doctor(root)
    assert rc == 0, out


def test_doctor_disk_and_inotify_thresholds(root):
    (root.path / "acog.yaml").write_text("doctor: {min_free_mb: 999999999, min_inotify_watches: 999999999}\n")
    rc, out = doctor(root)
    assert rc == 69 and line(out, "free disk space").startswith("FAIL") and line(out, "inotify").startswith("FAIL")
    (root.path / "acog.yaml").write_text("")
    rc, out = doctor(root)
    assert rc == 0, out


def test_doctor_database_integrity(root):
    root.drop(root.idea("Corrupt me"), "c.json")
    root.drain()
    db = root.path / "acog.db"
    good = db.read_bytes()
    with open(db, "r+b") as f:           # trash a b-tree page in the middle
        f.seek(4096 * 3)
        f.write(b"\xff" * 4096)
    rc, out = doctor(root)
    assert rc == 69 and (line(out, "integrity").startswith("FAIL") or "database opens" in out), out
    db.write_bytes(good)
    rc, out = doctor(root)
    assert rc == 0, out


def test_doctor_spool_agreement(root):
    root.drop(root.idea("Lost ticket"), "l.json")
    root.drain()
    [ep] = root.status()
    os.unlink(root.path / "spool" / ep["location"] / ep["ticket"])
    rc, out = doctor(root)
    assert rc == 69 and line(out, "spool and database agree").startswith("FAIL") and ep["ticket"] in out
    root.drain()   # start-up reconciles
    rc, out = doctor(root)
    assert rc == 0, out


def test_doctor_broken_channel(root):
    (root.path / "channels/bad").mkdir()
    (root.path / "channels/bad/channel.yaml").write_text("id: bad\nvideo: [unclosed\n")
    rc, out = doctor(root)
    assert rc == 69 and "channel.yaml" in out and "line" in out
    (root.path / "channels/bad/channel.yaml").write_text("id: bad\n")
    rc, out = doctor(root)
    assert rc == 0, out


def test_make_install(tmp_path):
    dest = tmp_path / "x"
    p = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for f in ["usr/bin/acog-batch", "usr/share/man/man1/acog-batch.1", "usr/share/man/man5/acog-batch.5",
              "usr/lib/systemd/system/acog-batch.service", "usr/share/bash-completion/completions/acog-batch"]:
        assert (dest / f).exists(), f
    assert os.access(dest / "usr/bin/acog-batch", os.X_OK)
    for page in ["man1/acog-batch.1", "man5/acog-batch.5"]:
        r = subprocess.run(["man", "-l", str(dest / "usr/share/man" / page)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
        assert r.returncode == 0 and "acog-batch" in r.stdout and len(r.stdout) > 2000, r.stderr
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            str(dest / "usr/lib/systemd/system/acog-batch.service")], capture_output=True, text=True)
        # The binary is installed under DESTDIR, not in /usr/bin: that is the only complaint allowed.
        problems = [l for l in r.stderr.splitlines() if l.strip() and "is not executable" not in l
                    and "sysinit.target" not in l]
        assert problems == [], r.stderr
    r = subprocess.run(["bash", "-c", f"source {dest}/usr/share/bash-completion/completions/acog-batch; "
                        "COMP_WORDS=(acog-batch ap); COMP_CWORD=1; COMP_LINE='acog-batch ap'; COMP_POINT=13; "
                        "_acog_batch; echo \"${COMPREPLY[*]}\""], capture_output=True, text=True)
    assert r.stdout.split() == ["approve"], (r.stdout, r.stderr)
