"""Security checks (issue 9, item 7): keys in key files never reach anything
the daemon writes; key files with loose modes or that are symbolic links are
refused before any request; no child is started through a shell; spool
files are opened without following symbolic links; every path the daemon
creates from input stays inside the root; the systemd unit's hardening
score (systemd-analyze security --offline)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cloudkit import grep_root, Cloud
from conftest import BIN, REPO

FAST_AUDIO = ["--seconds-per-char", "0.02"]




def key_file_channel(c, root, el, cid="c"):
    prov = c.provider("audio")
    del prov["api_key_env"]
    prov["api_key_file"] = f"credentials/{cid}.key"
    c.channel(cid, cloud=(), providers={"audio": prov})
    d = root.path / "credentials"
    d.mkdir(exist_ok=True)
    return d / f"{cid}.key"


UNSAFE = {"missing": "cannot open the key file", "mode0640": "chmod 600", "mode0604": "chmod 600",
          "symlink": "symbolic link", "symlink-to-0600": "symbolic link"}


def test_unsafe_key_files_refused_and_never_leaked(cloud, root, tmp_path):
    """One channel per kind of unsafe key file, all in one run: each episode
    fails at audio naming its key file, no request is made, and the key is
    nowhere under the root."""
    c = cloud
    el = c.fake("elevenlabs", *FAST_AUDIO)
    c.fake("webhook")
    c.acog_yaml()
    for kind in UNSAFE:
        keyfile = key_file_channel(c, root, el, kind)
        real = tmp_path / f"{kind}.key"
        real.write_text(el.api_key + "\n")
        real.chmod(0o644 if kind == "symlink" else 0o600)
        if kind.startswith("mode"):
            keyfile.write_text(el.api_key + "\n")
            keyfile.chmod(int(kind[4:], 8))
        elif kind.startswith("symlink"):
            os.symlink(real, keyfile)
        root.drop(root.idea(f"Deserts {kind}", channel=kind), f"{kind}.json")
    c.drain()
    eps = {e["channel"]: e for e in root.status()}
    assert sorted(eps) == sorted(UNSAFE)
    for kind, want in UNSAFE.items():
        ep = eps[kind]
        assert ep["status"] == "failed" and ep["stage"] == "audio", ep
        err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
        assert want in err and f"credentials/{kind}.key" in err, err
    assert el.requests() == [], "no request may be made with a key file refused"
    assert grep_root(root, [el.api_key]) == []


# ------------------------------------------------------------ one traced run

HOSTILE_TOPIC = "../../../../etc/passwd; $(touch /tmp/pwned) `id` | /bin/sh"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """One run under strace -f: audio from the elevenlabs fake with its key in
    a 0600 key file (a 503 first, so the key travels twice), the rest local
    (builtin text, ffmpeg), a hostile topic and idempotency_key."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    from conftest import Root, run
    base = tmp_path_factory.mktemp("traced")
    r = Root(base / "root")
    run(["init"], r.path)
    c = Cloud(r, base / "fakes")
    try:
        el = c.fake("elevenlabs", *FAST_AUDIO)
        c.fake("webhook")
        c.acog_yaml()
        keyfile = key_file_channel(c, r, el)
        keyfile.write_text(el.api_key + "\n")
        keyfile.chmod(0o600)
        el.faults([{"match": "/v1/text-to-speech/", "fault": "503"}])
        r.drop(r.idea(HOSTILE_TOPIC, channel="c", idempotency_key="../../k"), "evil.json")
        trace = base / "trace"
        env = c.env(ASAN_OPTIONS="detect_leaks=0")   # LeakSanitizer cannot run under ptrace
        with open(r.log, "a") as log:
            p = subprocess.run(["strace", "-f", "-qq", "-s", "300", "-o", str(trace),
                                "-e", "trace=execve,open,openat,mkdir,mkdirat,rename,renameat,renameat2,link,"
                                      "linkat,symlink,symlinkat,unlink,unlinkat",
                                BIN, "-C", str(r.path), "run", "--drain"], stdout=log, stderr=log, timeout=600,
                               env=env)
        assert p.returncode == 0, r.log.read_text()[-3000:]
        yield r, trace.read_text().splitlines(), base, el
    finally:
        c.stop()


def test_key_from_a_key_file_never_leaks(traced):
    """The key was used (twice: a 503, then success) and appears in no log,
    .error/.reason file, episode file or database row."""
    r, _, _, el = traced
    assert r.status()[0]["status"] == "published", r.log.read_text()[-3000:]
    assert len(el.requests("/v1/text-to-speech/")) >= 2 and el.requests("/v1/text-to-speech/", status="ok")
    assert all(q["headers"].get("xi-api-key") == el.api_key for q in el.requests())
    assert grep_root(r, [el.api_key]) == []


def test_no_child_is_started_through_a_shell(traced):
    r, lines, _, _ = traced
    execs = [l for l in lines if "execve(" in l and "= -1" not in l]
    progs = [re.search(r'execve\("([^"]+)"', l).group(1) for l in execs]
    assert any(p.endswith("/ffmpeg") for p in progs), progs
    shells = [p for p in progs if os.path.basename(p) in ("sh", "bash", "dash", "zsh", "busybox")]
    assert shells == [], f"started through a shell: {shells}"
    assert not Path("/tmp/pwned").exists()


def _opened(lines):
    for l in lines:
        m = re.search(r'open(?:at)?\((?:AT_FDCWD|\d+), "([^"]+)", ([A-Z_|]+)', l)
        if m:
            yield m.group(1), m.group(2)


def test_spool_files_are_opened_without_following_symlinks(traced):
    r, lines, _, _ = traced
    spool = str(r.path / "spool") + "/"
    bad = sorted({(p, f) for p, f in _opened(lines)
                  if p.startswith(spool) and "O_DIRECTORY" not in f and "O_NOFOLLOW" not in f
                  and "O_TMPFILE" not in f})
    checked = [p for p, f in _opened(lines) if p.startswith(spool)]
    assert checked, "the trace saw no spool file: it proved nothing"
    assert bad == [], f"spool files opened following symlinks: {bad}"


def test_every_path_built_from_input_stays_inside_the_root(traced):
    r, lines, base, _ = traced
    root = os.path.realpath(r.path)
    made = []
    for l in lines:
        if "= -1" in l:
            continue
        for m in re.finditer(r'"(/[^"]*)"', l):
            call = l.split("(", 1)[0].split()[-1]
            if call in ("execve",):
                continue
            if call.startswith("open") and "O_CREAT" not in l and "O_WRONLY" not in l and "O_RDWR" not in l:
                continue
            made.append((call, m.group(1)))
    outside = [(c, p) for c, p in made
               if not os.path.realpath(p).startswith(root + "/") and p != "/tmp" and not p.startswith(("/dev/", "/proc/"))]
    assert len(made) > 20, "the trace saw too little: it proved nothing"
    assert outside == [], f"written outside the root: {outside[:20]}"
    ep = r.q("SELECT ticket, slug FROM episodes")[0]
    assert "/" not in ep["ticket"] and ".." not in ep["ticket"], ep
    dirs = [p for p in (r.path / "channels/c/episodes").iterdir()]
    assert len(dirs) == 1 and os.path.realpath(dirs[0]).startswith(root + "/channels/c/episodes/")
    assert not (base / "etc").exists() and not Path(root).parent.joinpath("k").exists()


# ------------------------------------------------------------ systemd unit

def test_systemd_unit_hardening_score(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "acog-batch-sectest.service"
    shutil.copy(REPO / "contrib/acog-batch.service", unit)
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    if not m:
        pytest.skip(f"this systemd cannot analyse a unit file offline: {p.stderr[-300:]}")
    score = float(m.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0, p.stdout[-3000:]
