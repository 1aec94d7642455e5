"""Crash points of a group commit: ideas waiting at start-up are accepted
together (one database commit, one syncfs), and idea.json is each dropped
file under a second name.  The daemon is aborted right after each durable
point of that group (ACOG_CRASH_AFTER, test builds only) and started again:
every idea must end as exactly one episode whose idea.json holds the bytes
that were dropped, with nothing left in incoming/ or rejected/ and fsck
content."""
import json
import shutil

from conftest import BIN, Root, run, wait_for

IDEAS = 3


def accepted(root):
    return len(root.q("SELECT id FROM episodes WHERE ingest_done = 1"))


def start(root, env=None):
    """The daemon on root, with env (which may make it abort); returns it."""
    import os
    import subprocess
    log = open(root.log, "a")
    p = subprocess.Popen([BIN, "-C", str(root.path), "run", "-j", "1"], stdout=log, stderr=log,
                         env=dict(os.environ, **(env or {})))
    log.close()
    return p


def group_points(count_log):
    """The durable points from the group's first commit to its last (the
    ingest_done commit after the last incoming file went)."""
    rows = [line.split(" ", 2) for line in count_log.read_text().splitlines()]
    whats = [w for _, _, w in rows]
    last_unlink = max(i for i, w in enumerate(whats) if "/spool/incoming/" in w)
    first = min(i for i, w in enumerate(whats) if "/spool/planning/" in w) - 1  # the admit commit
    end = next(i for i in range(last_unlink + 1, len(whats)) if whats[i] == "sqlite commit")
    assert whats[first] == "sqlite commit", whats[: end + 1]
    return [int(rows[i][0]) for i in range(first, end + 1)]


def test_every_crash_point_of_a_group_commit(tmp_path):
    pristine = Root(tmp_path / "pristine")
    run(["init"], pristine.path)
    d = pristine.channel("t", extra="  planning: {name: command, argv: [/bin/sh, -c, 'exit 75']}\n")
    y = d / "channel.yaml"
    y.write_text(y.read_text().replace("base_seconds: 0.2, max_seconds: 1", "base_seconds: 600, max_seconds: 600"))
    dropped = {}
    for i in range(IDEAS):
        raw = json.dumps(pristine.idea(f"Group crash {i}"), indent=i).encode()
        dropped[pristine.drop(raw, f"g{i}.json")] = raw

    probe = Root(tmp_path / "probe")
    shutil.copytree(pristine.path, probe.path, symlinks=True)
    p = start(probe, {"ACOG_CRASH_COUNT": str(tmp_path / "count")})
    wait_for(lambda: accepted(probe) == IDEAS, what="the group accepted")
    p.terminate()
    p.wait(timeout=60)
    assert "ingest.group" in probe.log.read_text()
    points = group_points(tmp_path / "count.log")
    assert len(points) >= 3 * IDEAS, f"only {len(points)} durable points in a group of {IDEAS}?"

    for n in points:
        r = Root(tmp_path / f"point-{n}")
        shutil.copytree(pristine.path, r.path, symlinks=True)
        p = start(r, {"ACOG_CRASH_COUNT": str(tmp_path / f"count-{n}"), "ACOG_CRASH_AFTER": str(n)})
        assert p.wait(timeout=60) != 0, f"crash point {n} was not reached"
        p = start(r)
        wait_for(lambda: accepted(r) == IDEAS, what=f"crash point {n}: the ideas accepted after restart")
        p.terminate()
        p.wait(timeout=60)
        rows = r.q("SELECT id, source_name FROM episodes")
        assert sorted(x["source_name"] for x in rows) == sorted(dropped), f"crash point {n}: {rows}"
        for x in rows:
            got = (r.episode_dir(x["id"]) / "idea.json").read_bytes()
            assert got == dropped[x["source_name"]], f"crash point {n}: idea.json of {x['source_name']}"
        assert r.spool("incoming") == [] and r.spool("rejected") == [], f"crash point {n}"
        f = run(["fsck"], r.path, check=False)
        assert f.returncode == 0, f"crash point {n}: {f.stdout}"
        shutil.rmtree(r.path)
