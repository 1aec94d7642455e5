"""Metrics (issue 11 item 4): the daemon keeps acog.yaml's metrics_file in the
Prometheus text format, written atomically when something changed; it passes
promtool's strict parser and linter, its counts equal the database's, and
`acog-batch metrics` prints the same text."""
import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from conftest import wait_for
from test_state import gated_channel

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """A strict reader of the lines we write: # HELP / # TYPE, then name{labels} value."""
    out, typed = defaultdict(dict), set()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            assert len(parts) == 4 and parts[3], line
            if parts[1] == "TYPE":
                assert parts[3] in ("gauge", "counter", "histogram"), line
                typed.add(parts[2])
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"{name} has no # TYPE before it"
        pairs, pos = {}, 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            assert lm, f"bad labels in {line!r}"
            pairs[lm.group(1)] = lm.group(2)
            pos = lm.end()
        key = tuple(sorted(pairs.items()))
        assert key not in out[name], f"duplicate series {line!r}"
        out[name][key] = float(value)
    return out


def test_metrics_file_is_valid_and_matches_the_database(root):
    (root.path / "acog.yaml").write_text((root.path / "acog.yaml").read_text() + "\nmetrics_file: metrics.prom\n"
                                         if (root.path / "acog.yaml").exists() else "metrics_file: metrics.prom\n")
    gated_channel(root, "m", extra="budget_daily_usd: 5\n")
    gated_channel(root, "bad", extra="  scripting: {name: command, argv: [/bin/sh, -c, 'exit 75']}\n")
    root.drop(root.idea("Metrics one", channel="m"), "m1.json")
    root.drop(root.idea("Metrics two", channel="m"), "m2.json")
    root.drop(root.idea("Metrics bad", channel="bad"), "b.json")
    root.drain()
    prom = root.path / "metrics.prom"
    text = prom.read_text()
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    m = parse(text)

    eps = {(("channel", r["slug"]), ("state", r["state"])): r["n"] for r in root.q(
        "SELECT c.slug, e.state, COUNT(*) AS n FROM episodes e JOIN channels c ON c.id = e.channel_id"
        " GROUP BY 1, 2")}
    assert m["acog_episodes"] == eps and eps[(("channel", "bad"), ("state", "failed"))] == 1
    runs = {(("provider", r["p"]), ("stage", r["stage"]), ("status", r["status"])): r["n"] for r in root.q(
        "SELECT stage, COALESCE(provider, '') AS p, status, COUNT(*) AS n FROM jobs GROUP BY 1, 2, 3")}
    assert m["acog_stage_jobs"] == runs
    started = {(("provider", r["p"]), ("stage", r["stage"])): r["n"] for r in root.q(
        "SELECT stage, COALESCE(provider, '') AS p, COUNT(*) AS n FROM jobs WHERE started_at IS NOT NULL"
        " GROUP BY 1, 2")}
    assert m["acog_stage_runs_total"] == started and started[(("provider", "command"), ("stage", "scripting"))] == 1
    retries = {(("provider", r["p"]), ("stage", r["stage"])): r["n"] for r in root.q(
        "SELECT stage, COALESCE(provider, '') AS p, SUM(retry_count) AS n FROM jobs GROUP BY 1, 2")}
    assert m["acog_stage_retries_total"] == retries and retries[(("provider", "command"), ("stage", "scripting"))] >= 1
    assert m["acog_stage_failures_total"] == {(("provider", "command"), ("stage", "scripting")): 1}
    done = {r["stage"]: r["n"] for r in root.q("SELECT stage, COUNT(*) AS n FROM jobs WHERE status = 'completed'"
                                               " GROUP BY 1")}
    assert {dict(k)["stage"]: v for k, v in m["acog_stage_duration_seconds_count"].items()} == done
    for stage, n in done.items():
        assert m["acog_stage_duration_seconds_bucket"][(("le", "+Inf"), ("stage", stage))] == n
    assert m["acog_cost_today_usd"][(("channel", "m"),)] == 0
    assert m["acog_budget_left_usd"] == {(("channel", "m"),): 5.0}, "only channels with a budget"

    # the command prints the same text, from the same function
    assert root.cli("metrics").stdout == text
    # a change made by another process (the CLI) while the daemon runs rewrites it
    root.start()
    root.cli("cancel", [e for e in root.status() if e["channel"] == "m"][0]["ticket"])
    wait_for(lambda: parse(prom.read_text())["acog_episodes"].get((("channel", "m"), ("state", "cancelled"))) == 1,
             timeout=10, what="the metrics file after a cancel")
    assert root.stop() == 0
    assert not [p.name for p in root.path.iterdir() if p.name.startswith(".metrics.prom")], "no temporary left"
