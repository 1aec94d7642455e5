"""The command line, as one table: each row is an argv form, the exit code it
must give and the effect it must have (on stdout/stderr, the database or the
spool), run against the real binary on a copy of a root where one episode
waits at the script_review gate.

Row fields: the argv after the global options (-C ROOT unless `glob` says
otherwise); the exit code; checks; `setup` (which root the row runs on),
`pre` (commands run first, which must succeed), `lock` (a python sqlite3
connection holds BEGIN EXCLUSIVE while the command runs) and `env`.
Placeholders: {ROOT} the root, {EP} the episode's ticket, {ID} its id, {ID8}
the first 8 characters of its id.  Every 64 must come with a usage message on
stderr naming the command, and nothing on stdout.
"""
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import BIN, Root, run

# ---- checks: each takes (root, completed process, placeholders) -------------


def out(s):
    return ("stdout has " + s, lambda r, p, v: s.format(**v) in p.stdout)


def err(s):
    return ("stderr has " + s, lambda r, p, v: s.format(**v) in p.stderr)


def json_out(pred):
    return ("stdout is the JSON", lambda r, p, v: pred(json.loads(p.stdout), v))


def ep(col, value):
    """A column of the episode row."""
    return (f"episode {col} = {value}",
            lambda r, p, v: r.q(f"SELECT {col} FROM episodes WHERE id = ?", v["ID"])[0][col] == value)


def audit(action, actor, notes=None):
    def f(r, p, v):
        rows = r.q("SELECT actor_id, new_values FROM audit_logs WHERE entity_id = ? AND action = ?", v["ID"], action)
        return any(a["actor_id"] == actor and (notes is None or json.loads(a["new_values"]).get("notes") == notes)
                   for a in rows)
    return (f"audit row {action} by {actor}", f)


def no_audit(action):
    return (f"no audit row {action}",
            lambda r, p, v: not r.q("SELECT 1 FROM audit_logs WHERE entity_id = ? AND action = ?", v["ID"], action))


def job(stage, status):
    return (f"a {status} job for {stage}",
            lambda r, p, v: r.q("SELECT 1 FROM jobs WHERE episode_id = ? AND stage = ? AND status = ?",
                                v["ID"], stage, status))


def ticket_in(d):
    return (f"ticket in spool/{d}", lambda r, p, v: (r.path / "spool" / d / v["EP"]).exists())


def exists(rel, yes=True):
    return (f"{rel} {'exists' if yes else 'is absent'}", lambda r, p, v: (r.path / rel).exists() == yes)


GATE = ep("gate_pending", "script_review")          # the decision was not taken


def R(argv, code, *checks, setup="gate", pre=(), lock=False, env=None, glob=("-C", "{ROOT}")):
    return dict(argv=list(argv), code=code, checks=checks, setup=setup, pre=pre, lock=lock, env=env, glob=list(glob))


ROWS = [
    # global options: -C DIR, -CDIR, --root DIR, --root=DIR, $ACOG_ROOT; only before the command
    R(["status"], 0, out("TICKET"), out("{EP}"), glob=["-C", "{ROOT}"]),
    R(["status"], 0, out("{EP}"), glob=["-C{ROOT}"]),
    R(["status"], 0, out("{EP}"), glob=["--root", "{ROOT}"]),
    R(["status"], 0, out("{EP}"), glob=["--root={ROOT}"]),
    R(["status"], 0, out("{EP}"), glob=[], env={"ACOG_ROOT": "{ROOT}"}),
    R(["status"], 0, out("{EP}"), glob=["-C", "{ROOT}", "--"]),
    R([], 64, err("usage: acog-batch"), glob=["-C"]),
    R([], 64, err("usage: acog-batch"), glob=["-C", "{ROOT}"]),
    R(["status", "-C", "{ROOT}"], 64, err("unknown option -C"), glob=[]),
    R(["--bogus", "status"], 64, err("unknown option --bogus")),
    R(["bogus"], 64, err("unknown command 'bogus'")),
    R(["__stage", "x"], 64, err("unknown command '__stage'")),
    R(["--version"], 0, out("acog-batch 0."), glob=[]),
    R(["--help"], 0, out("show EPISODE [--json]"), out("reject EPISODE --by NAME --reason TEXT [--to STAGE]"),
      glob=[]),
    R(["-h"], 0, out("run [--drain] [-j N]"), glob=[]),

    # status
    R(["status", "--json"], 0, json_out(lambda j, v: [e["ticket"] for e in j] == [v["EP"]])),
    R(["status", "extra"], 64, err("unexpected argument 'extra'")),
    R(["status", "--json", "--", "extra"], 64, err("unexpected argument 'extra'")),
    R(["status", "--jsn"], 64, err("unknown option --jsn")),
    R(["status", "--json=yes"], 64, err("--json takes no value")),
    R(["status", "-j", "4"], 64, err("unknown option -j")),
    R(["status", "--help"], 0, out("usage: acog-batch [-C ROOT] status [--json]")),
    R(["status"], 0, out("{EP}"), lock=True),             # WAL: readers go on beside a writer
    R(["status"], 66, err("no database"), err("init"), setup="bare"),

    # show: flags before or after the episode, --, id prefix, not found, ambiguous
    R(["show", "{EP}", "--json"], 0, json_out(lambda j, v: j["id"] == v["ID"])),
    R(["show", "--json", "{EP}"], 0, json_out(lambda j, v: j["id"] == v["ID"])),
    R(["show", "--json", "--", "{EP}"], 0, json_out(lambda j, v: j["ticket"] == v["EP"])),
    R(["show", "{ID8}"], 0, out("ticket   {EP}")),
    R(["show", "{ID}", "--json"], 0, json_out(lambda j, v: j["awaiting_approval"] == "script_review")),
    R(["show", "{EP}", "--json"], 0, json_out(lambda j, v: j["id"] == v["ID"]), env={"POSIXLY_CORRECT": "1"}),
    R(["show", "-h"], 0, out("show EPISODE [--json]")),
    R(["show"], 64, err("missing EPISODE")),
    R(["show", "--json"], 64, err("missing EPISODE")),
    R(["show", "{EP}", "{EP}"], 64, err("unexpected argument")),
    R(["show", "{EP}", "--bogus"], 64, err("unknown option --bogus")),
    R(["show", "--", "--json"], 66, err("no episode matches '--json'")),
    R(["show", "no-such-episode"], 66, err("no episode matches 'no-such-episode'")),
    R(["show", "%"], 66, err("no episode matches '%'")),                   # not a LIKE pattern
    R(["show", "{ID8}"], 65, err("matches more than one episode"), setup="twin"),
    R(["show", ""], 64, err("the EPISODE is empty")),

    # approve
    R(["approve", "{EP}", "--by", "alice"], 0, out("approved"), ep("gate_pending", None),
      job("metadata", "queued"), audit("approve", "alice")),
    R(["approve", "--by=alice", "{EP}"], 0, audit("approve", "alice"), ep("stage", "metadata")),
    R(["approve", "{EP}", "--by", "alice", "--notes", "ship it"], 0, audit("approve", "alice", "ship it")),
    R(["approve", "--notes=fine", "--by", "al", "--", "{EP}"], 0, audit("approve", "al", "fine")),
    R(["approve", "{ID8}", "--by", "alice"], 0, ep("gate_pending", None)),
    R(["approve", "{EP}"], 64, err("--by NAME is required"), GATE, no_audit("approve")),
    R(["approve", "{EP}", "--by"], 64, err("--by NAME needs a value"), GATE),
    R(["approve", "{EP}", "--by="], 64, err("the value is empty"), GATE),
    R(["approve", "--by", "a"], 64, err("missing EPISODE"), GATE),
    R(["approve", "{EP}", "--by", "a", "extra"], 64, err("unexpected argument 'extra'"), GATE),
    R(["approve", "{EP}", "--by", "a", "--reason", "x"], 64, err("unknown option --reason"), GATE),
    R(["approve", "no-such-episode", "--by", "a"], 66, err("no episode matches"), GATE),
    R(["approve", "{EP}", "--by", "a"], 65, err("not waiting for approval"), pre=[["approve", "{EP}", "--by", "a"]]),
    R(["approve", "{ID8}", "--by", "a"], 65, err("more than one episode"), GATE, setup="twin"),
    R(["approve", "{EP}", "--by", "a"], 75, err("try again"), GATE, no_audit("approve"), lock=True),
    R(["approve", "{EP}", "--by", "a"], 78, err("acog.yaml"), GATE, setup="badyaml"),
    R(["approve", "{EP}", "--by", "a"], 66, err("no database"), setup="bare"),

    # reject
    R(["reject", "{EP}", "--by", "bob", "--reason", "more moons", "--to", "scripting"], 0,
      job("scripting", "queued"), ep("review_notes", "more moons"), audit("reject", "bob")),
    R(["reject", "--to=planning", "--reason=again", "--by=bob", "{EP}"], 0, job("planning", "queued")),
    R(["reject", "{EP}", "--by", "bob", "--reason", "not now"], 0, ticket_in("held"), ep("location", "held")),
    R(["reject", "{EP}", "--by", "bob"], 64, err("--reason TEXT is required"), GATE),
    R(["reject", "{EP}", "--reason", "r"], 64, err("--by NAME is required"), GATE),
    R(["reject", "{EP}", "--by", "b", "--reason", "r", "--to"], 64, err("--to STAGE needs a value"), GATE),
    R(["reject", "{EP}", "--by", "b", "--reason", "r", "--to", "nowhere"], 65, err("nowhere"), GATE),
    R(["reject", "nope", "--by", "b", "--reason", "r"], 66, err("no episode matches 'nope'")),

    # cancel and retry
    R(["cancel", "{EP}"], 0, out("cancelled"), ep("status", "cancelled"), ticket_in("held")),
    R(["cancel", "--", "{EP}"], 0, ep("status", "cancelled")),
    R(["cancel"], 64, err("missing EPISODE")),
    R(["cancel", "{EP}", "--json"], 64, err("unknown option --json"), ep("status", "script_review")),
    R(["cancel", "{EP}"], 65, err("is cancelled at"), pre=[["cancel", "{EP}"]]),
    R(["cancel", "no-such-episode"], 66, err("no episode matches")),
    R(["retry", "{EP}", "--from", "scripting"], 0, out("queued"), job("scripting", "queued"),
      pre=[["cancel", "{EP}"]]),
    R(["retry", "--from=planning", "{EP}"], 0, job("planning", "queued"), pre=[["cancel", "{EP}"]]),
    R(["retry", "{EP}", "--from"], 64, err("--from STAGE needs a value"), pre=[["cancel", "{EP}"]]),
    R(["retry", "{EP}"], 65, err("nothing to retry"), GATE),
    R(["retry", "{EP}", "--from", "scripting"], 75, err("try again"), ep("status", "cancelled"),
      pre=[["cancel", "{EP}"]], lock=True),

    # run: -j4 and -j 4, --jobs, range, extra arguments, missing database, busy database
    R(["run", "--drain", "-j2"], 0, err("up to 2 stage(s)")),
    R(["run", "-j", "3", "--drain"], 0, err("up to 3 stage(s)")),
    R(["run", "--drain", "--jobs=4"], 0, err("up to 4 stage(s)")),
    R(["run", "--drain", "-j0"], 64, err("-j N wants a number from 1 to 64, not '0'")),
    R(["run", "--drain", "-j", "65"], 64, err("not '65'")),
    R(["run", "--drain", "-jx"], 64, err("not 'x'")),
    R(["run", "--drain", "-j"], 64, err("-j N needs a value")),
    R(["run", "--drain", "now"], 64, err("unexpected argument 'now'")),
    R(["run", "--drain"], 66, err("init"), setup="bare"),
    R(["run", "--drain"], 75, err("try again"), lock=True),

    # init
    R(["init"], 0, out("initialised"), exists("acog.db"), exists("spool/incoming"), setup="bare"),
    R(["init", "--demo"], 0, exists("channels/demo/channel.yaml"), setup="bare"),
    R(["init", "extra"], 64, err("unexpected argument 'extra'"), exists("acog.db", False), setup="bare"),
    R(["init", "--json"], 64, err("unknown option --json"), exists("acog.db", False), setup="bare"),

    # costs, doctor
    R(["costs"], 0, out("total")),
    R(["costs", "--json"], 0, json_out(lambda j, v: isinstance(j, list))),
    R(["costs", "x"], 64, err("unexpected argument 'x'")),
    R(["doctor"], 0, out("all good")),
    R(["doctor", "--json"], 64, err("unknown option --json")),
    R(["doctor", "now"], 64, err("unexpected argument 'now'")),
    R(["doctor"], 78, out("acog.yaml loads"), setup="badyaml"),
]


def row_id(row):
    return " ".join(row["glob"] + row["argv"]).replace("{ROOT}", "R") + (" [locked]" if row["lock"] else "") + \
        ("" if row["setup"] == "gate" else f" [{row['setup']}]") + (" [pre]" if row["pre"] else "")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One episode waiting at script_review (planning and scripting only: no ffmpeg)."""
    r = Root(tmp_path_factory.mktemp("cli") / "root")
    run(["init"], r.path)
    y = r.channel("t") / "channel.yaml"
    y.write_text(y.read_text().replace("script_review: false", "script_review: true"))
    r.drop(r.idea("Moons of Jupiter"), "m.json")
    r.drain()
    [e] = r.status()
    assert e["state"] == "awaiting-approval" and e["stage"] == "script_review", e
    return r, {"EP": e["ticket"], "ID": e["id"], "ID8": e["id"][:8]}


def make_root(base, setup, dst):
    r, v = base
    if setup == "bare":
        return Root(dst)
    shutil.copytree(r.path, dst, symlinks=True)
    new = Root(dst)
    if setup == "twin":
        # A second episode whose id shares the first one's first 8 characters.
        con = sqlite3.connect(dst / "acog.db")
        with con:
            con.execute("INSERT INTO episodes (id, channel_id, ticket, location, stage, status, content_hash,"
                        " source_name, ingest_done) SELECT ? || '-0000-4000-8000-000000000000', channel_id,"
                        " 'twin', 'held', 'planning', 'cancelled', 'twin', 'twin', 0 FROM episodes WHERE id = ?",
                        (v["ID8"], v["ID"]))
        con.close()
    elif setup == "badyaml":
        (dst / "acog.yaml").write_text("retry: [unclosed\n")
    return new


def expand(args, v):
    return [a.format(**v) for a in args]


@pytest.mark.parametrize("row", ROWS, ids=[row_id(r) for r in ROWS])
def test_cli(row, base, tmp_path):
    root = make_root(base, row["setup"], tmp_path / "root")
    v = dict(base[1], ROOT=str(root.path))
    for pre in row["pre"]:
        run(expand(pre, v), root.path)
    env = dict(os.environ, **{k: val.format(**v) for k, val in (row["env"] or {}).items()})
    if "ACOG_ROOT" not in (row["env"] or {}):
        env.pop("ACOG_ROOT", None)
    argv = [BIN] + expand(row["glob"] + row["argv"], v)
    lock = None
    if row["lock"]:
        lock = sqlite3.connect(root.path / "acog.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    finally:
        if lock:
            lock.execute("ROLLBACK")
            lock.close()
    what = f"{argv[1:]} exited {p.returncode}\nstdout:\n{p.stdout[-2000:]}\nstderr:\n{p.stderr[-2000:]}"
    assert p.returncode == row["code"], what
    if row["code"] == 64:
        named = f"acog-batch {row['argv'][0]}:" if row["argv"][:1] and row["argv"][0] in COMMANDS else "acog-batch:"
        assert "usage: acog-batch" in p.stderr and named in p.stderr and p.stdout == "", what
    for name, check in row["checks"]:
        assert check(root, p, v), f"{name}: {what}"


COMMANDS = {"init", "run", "status", "show", "approve", "reject", "retry", "cancel", "costs", "doctor"}


def test_every_command_has_help_and_rows():
    """Each command answers --help on stdout, and the table above exercises it."""
    for cmd in COMMANDS:
        p = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stdout.startswith(f"usage: acog-batch [-C ROOT] {cmd}") and not p.stderr
        assert any(r["argv"][:1] == [cmd] for r in ROWS), cmd
