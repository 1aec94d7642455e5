#!/usr/bin/env python3
"""bench.py - `make bench`: acog-batch measured against this machine's own
limits, in the same run (issue 12).

Every row is: metric, acog-batch's figure, the reference measured now, the
ratio, the target.  References are limits of the machine, not guesses: a
minimal inotify watcher (tests/bench/benchref.c), the disk's durable-rename
rate (write + fsync + rename + directory fsync, benchref.c), the sqlite3
shell running the equivalent query.  Wall times are medians of --reps runs.

Python stdlib only; the daemon under test is --bin (the optimised build, not
the sanitizer one).  Each scenario gets its own root under --work.
"""
import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The bench channel: planning is a command that never ends (nor times out,
# so no retry falls due during an idle measurement of a reused root), so
# accepted ideas wait in planning/ and the pickup and burst figures measure
# ingest alone (one slot, -j 1, holds the sleeper).
WAIT_CHANNEL = """\
id: bench
name: Bench
niche: benchmarks
persona: {name: Bea}
gates: {script_review: false, review: true}
timeouts: {planning: 864000}
providers:
  planning: {name: command, argv: [/bin/sleep, "10000000"]}
"""

# Trivial stages for the orchestration cost: builtin planning, scripting and
# metadata (in-process in the stage child, no network), then an audio stage
# that fails at once without retries, so each episode makes a fixed number of
# transitions and ends in failed/.
TRIVIAL_CHANNEL = """\
id: bench
name: Bench
niche: benchmarks
persona: {name: Bea}
gates: {script_review: false, review: true}
retry: {max_retries: 0, base_seconds: 0.1, max_seconds: 0.1}
providers:
  planning: builtin
  scripting: builtin
  metadata: builtin
  audio: {name: command, argv: [/bin/false]}
"""

# The batch: planning, scripting and metadata on a fake OpenAI server that
# answers each request after DELAY s (a `stall` fault), with a concurrency
# cap CAP on the provider (acog.yaml limits); audio then fails at once, so an
# episode's cloud work is its three calls.  {url} and {key} are filled in.
BATCH_CHANNEL = """\
id: bench
name: Bench
niche: benchmarks
persona: {{name: Bea}}
gates: {{script_review: false, review: true}}
retry: {{max_retries: 0, base_seconds: 0.1, max_seconds: 0.1}}
providers:
  planning: {prov}
  scripting: {prov}
  metadata: {prov}
  audio: {{name: command, argv: [/bin/false]}}
"""
BATCH_ACOG = "limits:\n  openai: {{rps: 1000, concurrency: {cap}}}\nhttp: {{max_attempts: 1}}\n"
FAKESERVER = REPO / "tests" / "fakes" / "fakeserver.py"


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = str(Path(a.bin).resolve())
        self.work = Path(a.work).resolve()
        self.rows = []
        self.notes = []
        self.ref = str(self.work / "benchref")
        self.procs = []
        self.failed = False

    # ---- plumbing ---------------------------------------------------------
    def log(self, msg):
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def row(self, metric, ours, ref, unit, target, ratio=True):
        r = ours / ref if ratio and ref and ours == ours and ref == ref else None
        self.rows.append((metric, ours, ref, unit, r, target))
        self.log(f"{metric}: {ours:.3f} {unit} (ref {ref if ref is None else round(ref, 3)})")

    def discard(self, path):
        """Moves an earlier run's folder aside; it is removed when the run
        ends.  On ext4 without a journal (this machine's) each new inode
        skips over the ones freed in the last minutes, so a burst measured
        right after removing the last burst's 40,000 files ran 2-3 x slower
        than one on a settled disk, and the reference would not pay it."""
        if path.exists():
            trash = self.work / "trash"
            trash.mkdir(parents=True, exist_ok=True)
            os.rename(path, trash / f"{path.name}-{time.monotonic_ns()}")

    def empty_trash(self):
        shutil.rmtree(self.work / "trash", ignore_errors=True)

    def root(self, name, channel):
        r = self.work / name
        self.discard(r)
        subprocess.run([self.bin, "-C", str(r), "init"], check=True, capture_output=True)
        d = r / "channels" / "bench"
        d.mkdir(parents=True, exist_ok=True)
        (d / "channel.yaml").write_text(channel)
        return r

    def start(self, r, *extra, wrap=(), env=None):
        logf = open(r / "daemon.log", "a")
        before = (r / "daemon.log").read_text().count("daemon.started")
        t0 = time.monotonic()
        p = subprocess.Popen([*wrap, self.bin, "-C", str(r), "run", *extra], stdout=logf, stderr=logf, env=env)
        logf.close()
        self.procs.append(p)
        while (r / "daemon.log").read_text().count("daemon.started") == before:
            if p.poll() is not None:
                raise SystemExit(f"daemon exited {p.returncode}: {(r / 'daemon.log').read_text()[-2000:]}")
            time.sleep(0.005)
        return p, time.monotonic() - t0

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # the second asks to stop at once
            p.wait(timeout=60)

    def rss_kb(self, pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_s(self, pid):
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def count(self, r, sql):
        con = sqlite3.connect(f"file:{r / 'acog.db'}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()

    def timed(self, argv, reps):
        """Median wall time and the largest peak RSS (KiB) of reps runs, each
        run's own peak: `benchref peak` forks the command from a small C
        program and reads wait4's ru_maxrss of that child (a child of Python
        would report Python's peak, see benchref.c)."""
        times, peak = [], 0
        for _ in range(reps):
            p = subprocess.run([self.ref, "peak", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise SystemExit(f"{argv} exited {p.returncode}: {p.stderr[-1000:]}")
            us, kb = p.stdout.split()
            times.append(float(us) / 1e6)
            peak = max(peak, int(kb))
        return statistics.median(times), peak

    def ideas(self, r, n, tag):
        """n idea files written aside in spool/tmp, ready to be renamed in."""
        names = []
        for i in range(n):
            name = f"{tag}-{i:06d}.json"
            (r / "spool" / "tmp" / name).write_text(json.dumps(
                {"channel": "bench", "topic": f"burst idea {tag} number {i}", "target_length_minutes": 1}))
            names.append(name)
        return names

    def rename_in(self, r, names):
        for n in names:
            os.rename(r / "spool" / "tmp" / n, r / "spool" / "incoming" / n)

    def wait_accepted(self, r, n, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(r, "SELECT COUNT(*) FROM episodes WHERE ingest_done = 1") >= n:
                return time.monotonic()
            time.sleep(0.02)
        raise SystemExit(f"{r}: not all {n} ideas accepted within {timeout} s")

    # ---- references -------------------------------------------------------
    def build_ref(self):
        self.work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", self.ref, str(REPO / "tests/bench/benchref.c")], check=True)

    def durable_rename_rate(self):
        """The disk's durable-rename rate now: the median of reps loops of
        write + fsync + rename + directory fsync, each in a new folder (no
        file freed before it, as in a burst: see discard)."""
        n = max(50, min(self.a.burst, 1000))
        rates = []
        for i in range(self.a.reps):
            d = self.work / "ref-rename"
            self.discard(d)
            d.mkdir()
            out = subprocess.run([self.ref, "rename", str(d), str(n)], check=True, capture_output=True, text=True)
            rates.append(float(out.stdout))
        return statistics.median(rates)

    def references(self):
        self.rename_rate = self.durable_rename_rate()
        d = self.work / "ref-watch"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        out = subprocess.run([self.ref, "watch", str(d), str(self.a.pickups)], check=True, capture_output=True,
                             text=True)
        lat = [float(x) / 1000 for x in out.stdout.split()]
        self.watch_p50, self.watch_p99 = pct(lat, 50), pct(lat, 99)
        self.log(f"durable renames/s {self.rename_rate:.0f}; inotify p50 {self.watch_p50:.3f} ms")

    # ---- scenarios --------------------------------------------------------
    def pickup(self, r, label):
        out = subprocess.run([self.ref, "pickup", str(r), str(self.a.pickups), "bench"], check=True,
                             capture_output=True, text=True, timeout=600)
        lat = [float(x) / 1000 for x in out.stdout.split()]
        self.row(f"pickup p50, {label}", pct(lat, 50), self.watch_p50, "ms", "")
        self.row(f"pickup p99, {label}", pct(lat, 99), self.watch_p99, "ms", "≤ 5 ms")

    def idle(self, r, p, label, rss_target):
        time.sleep(1)
        rss = self.rss_kb(p.pid) / 1024
        self.row(f"idle RSS, {label}", rss, None, "MB", rss_target, ratio=False)
        if shutil.which("strace"):
            out = self.work / "strace.txt"
            subprocess.run(["timeout", "-s", "INT", str(self.a.idle_seconds), "strace", "-c", "-f", "-o",
                            str(out), "-p", str(p.pid)], capture_output=True)
            calls = 0
            for line in out.read_text().splitlines():
                f = line.split()
                if len(f) >= 5 and f[-1] == "total":
                    calls = int(f[3])
            self.row(f"idle system calls in {self.a.idle_seconds} s, {label}", calls, None, "calls", "0",
                     ratio=False)

    def empty_root(self):
        r = self.root("empty", WAIT_CHANNEL)
        p, _ = self.start(r, "-j", "1")
        self.idle(r, p, "empty root", "≤ 8 MB")
        self.pickup(r, "empty root")
        self.stop(p)

    def burst(self):
        n = self.a.burst
        r = self.root("burst-up", WAIT_CHANNEL)
        p, _ = self.start(r, "-j", "1")
        names = self.ideas(r, n, "up")
        ref = self.durable_rename_rate()  # this disk's rate varies by 3 x within an hour: measured beside each burst
        t0 = time.monotonic()
        self.rename_in(r, names)
        t1 = self.wait_accepted(r, n, timeout=max(120, n))
        self.stop(p)
        self.row(f"burst of {n} ideas, daemon up (ideas/s)", n / (t1 - t0), ref, "/s", "≥ 0.5 ×")
        r = self.root("burst-start", WAIT_CHANNEL)
        p, _ = self.start(r, "-j", "1")
        self.stop(p)
        self.rename_in(r, self.ideas(r, n, "start"))
        ref = self.durable_rename_rate()
        t0 = time.monotonic()
        p, _ = self.start(r, "-j", "1")
        t1 = self.wait_accepted(r, n, timeout=max(120, n))
        self.stop(p)
        self.row(f"{n} ideas waiting at start-up (ideas/s)", n / (t1 - t0), ref, "/s", "≥ 0.5 ×")

    def trivial_run(self, n, wrap=(), env=None):
        """n trivial episodes through a fresh daemon: (daemon pid, CPU
        seconds and audit rows (transitions) while they ran, the root)."""
        r = self.root("transitions", TRIVIAL_CHANNEL)
        p, _ = self.start(r, "-j", "2", wrap=wrap, env=env)
        time.sleep(0.3)
        c0 = self.cpu_s(p.pid)
        a0 = self.count(r, "SELECT COUNT(*) FROM audit_logs")
        self.rename_in(r, self.ideas(r, n, "tr"))
        end = time.monotonic() + max(120, 10 * n)
        while self.count(r, "SELECT COUNT(*) FROM episodes WHERE state IN ('failed', 'published')") < n:
            if time.monotonic() > end:
                raise SystemExit(f"{r}: the {n} trivial episodes did not finish; see {r}/daemon.log")
            time.sleep(0.05)
        c1 = self.cpu_s(p.pid)
        trans = self.count(r, "SELECT COUNT(*) FROM audit_logs") - a0
        self.stop(p)
        return c1 - c0, trans, r

    def transitions(self):
        cpu, trans, r = self.trivial_run(self.a.batch)
        starts = self.count(r, "SELECT COUNT(*) FROM jobs WHERE started_at IS NOT NULL")
        self.row(f"daemon CPU per stage transition ({trans} transitions, {starts} stage runs)",
                 cpu * 1000 / max(trans, 1), 1.0, "ms", "≤ 1 ms (ref: the goal)")
        self.transition_instructions()

    def daemon_instructions(self, n):
        """Instructions the daemon executed (callgrind, stage children not
        traced) for n trivial episodes, start-up and stop included."""
        out = self.work / "transitions-cg.out"
        env = dict(os.environ, ACOG_STAGE_EXE=self.bin)  # under valgrind /proc/self/exe is valgrind
        _, trans, r = self.trivial_run(n, wrap=("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                                       env=env)
        for line in (r / "daemon.log").read_text().splitlines():
            if "Collected :" in line:
                return int(line.split("Collected :")[1].split()[0]), trans
        raise SystemExit(f"no callgrind count in {r}/daemon.log")

    def transition_instructions(self):
        """The same cost in instructions, steady where CPU time is not: a run
        with n episodes minus a run with none (start-up and stop)."""
        if not shutil.which("valgrind") or "asan" in subprocess.run(["ldd", self.bin], capture_output=True,
                                                                    text=True).stdout:
            self.notes.append("transitions: no instruction count (no valgrind, or a sanitizer build)")
            return
        n = max(1, min(self.a.batch, 10))
        base, _ = self.daemon_instructions(0)
        total, trans = self.daemon_instructions(n)
        self.row(f"daemon instructions per stage transition (callgrind, {trans} transitions)",
                 (total - base) / max(trans, 1) / 1e6, None, "M instr.", "", ratio=False)

    def fake_openai(self, d, key, delay):
        """A fake OpenAI server (tests/fakes) answering every call after delay s."""
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "faults.json").write_text(json.dumps([{"match": "", "fault": "stall", "seconds": delay, "times": -1}]))
        log = open(d / "stderr.log", "ab")
        f = subprocess.Popen(["/usr/bin/python3", str(FAKESERVER), "--kind", "openai", "--port", "0", "--state-dir",
                              str(d), "--api-key", key], stdout=log, stderr=log)
        log.close()
        self.procs.append(f)
        end = time.monotonic() + 20
        while not (d / "port").exists():
            if f.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the fake OpenAI server did not start: {(d / 'stderr.log').read_text()[-1000:]}")
            time.sleep(0.02)
        return f"http://127.0.0.1:{(d / 'port').read_text().strip()}"

    def batch(self):
        """BATCH episodes through a slow fake cloud provider with a
        concurrency cap, against the schedule's lower bound from the same
        run: the larger of one episode's provider work (its critical path)
        and all the provider work divided by the cap (capacity)."""
        n, delay, cap, jobs = self.a.batch, self.a.batch_delay, self.a.batch_cap, 2 * self.a.batch_cap
        key = "sk-bench-" + uuid.uuid4().hex
        url = self.fake_openai(self.work / "batch-fake", key, delay)
        prov = json.dumps({"name": "openai", "base_url": url + "/v1", "model": "gpt-4o-mini",
                           "api_key_env": "BENCH_OPENAI_API_KEY", "local": False, "max_tokens": 4000,
                           "json_mode": "auto", "max_fix_attempts": 0, "timeout": 60})
        r = self.root("batch", BATCH_CHANNEL.format(prov=prov))
        (r / "acog.yaml").write_text(BATCH_ACOG.format(cap=cap))
        os.environ["BENCH_OPENAI_API_KEY"] = key
        try:
            p, _ = self.start(r, "-j", str(jobs))
        finally:
            del os.environ["BENCH_OPENAI_API_KEY"]
        names = self.ideas(r, n, "batch")
        t0 = time.time()
        self.rename_in(r, names)
        end = time.monotonic() + max(120, 20 * n * delay)
        while self.count(r, "SELECT COUNT(*) FROM episodes WHERE state IN ('failed', 'published')") < n:
            if time.monotonic() > end or p.poll() is not None:
                raise SystemExit(f"{r}: the {n} batch episodes did not finish; see {r}/daemon.log")
            time.sleep(0.05)
        self.stop(p)
        done = self.count(r, "SELECT COUNT(*) FROM jobs WHERE stage = 'metadata' AND status = 'completed'")
        if done != n:
            raise SystemExit(f"{r}: only {done} of {n} episodes got through metadata; see {r}/daemon.log")
        last = self.count(r, "SELECT MAX((julianday(completed_at) - 2440587.5) * 86400) FROM jobs"
                             " WHERE stage = 'metadata'")
        reqs = [json.loads(x) for x in (self.work / "batch-fake" / "requests.jsonl").read_text().splitlines() if x]
        work = sum(q["ms"] for q in reqs) / 1000
        bound = max(work / n, work / cap)
        self.row(f"batch of {n} episodes, {len(reqs)} calls of {delay} s, cap {cap}, -j {jobs} (makespan)",
                 last - t0, bound, "s", "≤ 1.1 ×")
        self.notes.append(f"batch: lower bound = max(one episode's provider work {work / n:.2f} s, all provider work "
                          f"{work:.1f} s / cap {cap} = {work / cap:.2f} s); makespan = rename of the ideas to the "
                          "last metadata stage's end.")

    # ---- the big database -------------------------------------------------
    def forget_pickups(self, r):
        """The unfinished episodes earlier runs' pickups left in a reused root
        go (rows, tickets, folders), so every run measures the same root:
        thousands of them made `status` (which lists active episodes) and
        start-up several times slower.  Files are moved to the trash, not
        deleted: freed inodes would slow the pickups that follow (see discard)."""
        con = sqlite3.connect(r / "acog.db")
        left = con.execute("SELECT id, ticket FROM episodes WHERE state != 'published'").fetchall()
        for eid, ticket in left:
            for d in (r / "spool").iterdir():
                for name in (ticket, ticket + ".error", ticket + ".reason"):
                    if (d / name).exists():
                        self.discard(d / name)
            if (r / "channels/bench/episodes" / eid).exists():
                self.discard(r / "channels/bench/episodes" / eid)
        with con:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("DELETE FROM episodes WHERE state != 'published'")
        con.close()
        if left:
            self.notes.append(f"{len(left)} unfinished episodes earlier runs' pickups left were removed first")

    def big_db(self):
        """EPISODES finished (published) episodes with their jobs, costs and
        tickets, inserted directly into a root made by `init`, as a daemon
        that made them and stopped cleanly would leave them."""
        n = self.a.episodes
        r = self.work / "big"
        if self.a.reuse and (r / "acog.db").exists() and \
                self.count(r, "SELECT COUNT(*) FROM episodes WHERE state = 'published'") == n:
            self.big = r
            self.big_ticket = self.count(r, "SELECT MAX(ticket) FROM episodes WHERE state = 'published'")
            self.notes.append(f"the {n} finished episodes were made by an earlier run (--reuse)")
            (r / "channels" / "bench" / "channel.yaml").write_text(WAIT_CHANNEL)  # this run's settings
            self.forget_pickups(r)
            return r
        r = self.root("big", WAIT_CHANNEL)
        p, _ = self.start(r, "-j", "1")
        self.stop(p)
        con = sqlite3.connect(r / "acog.db", timeout=30)
        ch = con.execute("SELECT id FROM channels WHERE slug = 'bench'").fetchone()[0]
        stages = ["planning", "scripting", "script_review", "metadata", "audio", "avatar", "broll", "assembly",
                  "upload"]
        pub = r / "spool" / "published"
        t0 = time.monotonic()
        con.execute("BEGIN")
        ep, jobs, costs = [], [], []
        for i in range(n):
            eid = str(uuid.uuid4())
            ticket = f"bench-finished-episode-{i}-{eid[:8]}"
            at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 86400 * 30 + i * 0.01))
            ep.append((eid, ch, f"Finished episode {i}", ticket, json.dumps({"topic": f"t{i}"}), ticket,
                       f"h{i:064d}"[-64:], f"{ticket}.json", at, at))
            for s in stages:
                jobs.append((str(uuid.uuid4()), eid, s, at, at))
            costs.append((str(uuid.uuid4()), eid, ch, "openai", "chat", 1, 0.01, at))
            (pub / ticket).write_text(json.dumps({"episode_id": eid, "channel": "bench", "stage": "upload",
                                                  "status": "published"}))
            if len(ep) >= 5000 or i == n - 1:
                con.executemany(
                    "INSERT INTO episodes (id, channel_id, title, slug, idea, ticket, location, stage, status,"
                    " state, content_hash, source_name, ingest_done, created_at, updated_at, published_at)"
                    " VALUES (?,?,?,?,?,?,'published','upload','published','published',?,?,1,?,?,?10)", ep)
                con.executemany("INSERT INTO jobs (id, episode_id, stage, status, started_at, completed_at)"
                                " VALUES (?,?,?,'completed',?,?)", jobs)
                con.executemany("INSERT INTO cost_entries (id, episode_id, channel_id, provider, operation_type,"
                                " cost_cents, cost_usd, created_at) VALUES (?,?,?,?,?,?,?,?)", costs)
                ep, jobs, costs = [], [], []
        con.execute("INSERT OR REPLACE INTO daemon_marks (key, value) VALUES ('clean_stop',"
                    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds'))")
        con.execute("COMMIT")
        con.close()
        self.log(f"{n} finished episodes made in {time.monotonic() - t0:.1f} s")
        self.big = r
        self.big_ticket = ticket
        return r

    def has_marks(self, r):
        return self.count(r, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'daemon_marks'") > 0

    def with_history(self):
        n = self.a.episodes
        r = self.big_db()
        label = f"{n} episodes"
        ups = []
        for _ in range(self.a.reps):
            p, up = self.start(r, "-j", "1")
            ups.append(up)
            rss = self.rss_kb(p.pid) / 1024
            self.stop(p)
        self.row(f"daemon start-up, {label} (clean stop before)", statistics.median(ups) * 1000, None, "ms",
                 "≤ 1000 ms", ratio=False)
        p, _ = self.start(r, "-j", "1")
        self.idle(r, p, label, "≤ 16 MB")
        self.pickup(r, label)
        self.stop(p)
        reps = self.a.reps
        sq = shutil.which("sqlite3")
        db = str(r / "acog.db")
        refs = {
            "status": "SELECT state, COUNT(*) FROM episodes GROUP BY state;",
            "status --json": "SELECT id, ticket, state, stage, title, updated_at FROM episodes;",
            "show": f"SELECT * FROM episodes WHERE ticket = '{self.big_ticket}';",
            "costs": "SELECT channel_id, substr(created_at, 1, 10), provider, SUM(cost_usd) FROM cost_entries"
                     " GROUP BY 1, 2, 3;",
        }
        cmds = {"status": ["status"], "status --json": ["status", "--json"], "show": ["show", self.big_ticket],
                "costs": ["costs"]}
        targets = {"status": "≤ 200 ms", "status --json": "≤ 300 ms", "show": "", "costs": ""}
        for k, argv in cmds.items():
            t, peak = self.timed([self.bin, "-C", str(r), *argv], reps)
            rt = self.timed([sq, "-readonly", db, refs[k]], reps)[0] if sq else None
            self.row(f"`{k}`, {label}", t * 1000, rt * 1000 if rt else None, "ms", targets[k])
            self.row(f"`{k}` peak RSS, {label}", peak / 1024, None, "MB", "bounded", ratio=False)
        self.show_instructions()

    # ---- media --------------------------------------------------------------
    def assembly(self):
        """The demo channel's sample idea (1080p25, about a minute) through
        every stage up to the review gate: each stage's wall time, and
        assembly against one ffmpeg encode of equivalent content at the
        same settings (the assembly lower bound)."""
        r = self.work / "media"
        shutil.rmtree(r, ignore_errors=True)
        subprocess.run([self.bin, "-C", str(r), "init", "--demo"], check=True, capture_output=True)
        idea = json.loads((r / "channels" / "demo" / "sample-idea.json").read_text())
        (r / "spool" / "tmp" / "media.json").write_text(json.dumps(idea))
        p, _ = self.start(r, "-j", "2")
        os.rename(r / "spool" / "tmp" / "media.json", r / "spool" / "incoming" / "media.json")
        end = time.monotonic() + 1800
        while self.count(r, "SELECT COUNT(*) FROM episodes WHERE state IN ('awaiting', 'failed')") < 1:
            if time.monotonic() > end or p.poll() is not None:
                raise SystemExit(f"the demo episode did not reach review; see {r}/daemon.log")
            time.sleep(0.5)
        self.stop(p)
        con = sqlite3.connect(f"file:{r / 'acog.db'}?mode=ro", uri=True)
        rows = con.execute("SELECT stage, (julianday(completed_at) - julianday(started_at)) * 86400 FROM jobs"
                           " WHERE status = 'completed' ORDER BY started_at").fetchall()
        video = [str(v) for (v,) in con.execute("SELECT uri FROM assets WHERE type = 'assembled_video'"
                                                 " AND deleted_at IS NULL")]
        con.close()
        if not video:
            raise SystemExit("no assembled video recorded")
        path = video[0] if os.path.isabs(video[0]) else str(next((r / "channels").rglob(Path(video[0]).name)))
        pr = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                        path], check=True, capture_output=True, text=True).stdout)
        v = next(s for s in pr["streams"] if s["codec_type"] == "video")
        dur = float(pr["format"]["duration"])
        total = sum(t for _, t in rows)
        for stage, t in rows:
            self.row(f"stage {stage}: wall time ({100 * t / total:.0f} % of the episode's)", t, None, "s", "",
                     ratio=False)
        w, h, rate = int(v["width"]), int(v["height"]), v["r_frame_rate"]
        asm, ref, own = self.assembly_reps(r, path, sum(t for s, t in rows if s == "assembly"),
                                           self.floor_argv(w, h, rate, dur), w, h, rate)
        media = asm + sum(t for s, t in rows if s in ("audio", "avatar", "broll"))
        self.row(f"assembly of {dur:.0f} s {v['width']}x{v['height']}", asm, ref, "s", "≤ 1.3 ×")
        self.row("media stages (audio, avatar, b-roll, assembly)", media, ref, "s", "≤ 1.5 ×")
        if own:
            self.row("assembly, against an encode of its own frames", asm, own, "s", "≤ 1.3 ×")
            self.row("media stages, against an encode of its own frames", media, own, "s", "≤ 1.5 ×")

    def assembly_reps(self, r, video, first, floor, w, h, rate):
        """Medians of reps runs each of the assembly stage, the testsrc2
        encode and the encode of the video's own frames, taken in turn (this
        machine's speed drifts by tens of percent within minutes).  The
        assembly runs again after its output is removed (else the stage
        cache reuses it) and the episode is sent back from review."""
        asm, ref, own = [first], [], []
        with self.own_frames(video, w, h, rate) as own_argv:
            for i in range(max(1, min(self.a.reps, 3))):
                ref.append(self.encode_time(floor, 1))
                if own_argv:
                    own.append(self.encode_time(own_argv, 1))
                if i:
                    asm.append(self.rerun_assembly(r, video, i))
        self.log(f"assembly {asm}, testsrc2 {ref}, own frames {own} (s)")
        return statistics.median(asm), statistics.median(ref), statistics.median(own) if own else None

    def rerun_assembly(self, r, video, i):
        ep = self.count(r, "SELECT id FROM episodes")
        Path(video).unlink()
        subprocess.run([self.bin, "-C", str(r), "reject", ep, "--by", "bench", "--reason", f"bench run {i + 1}",
                        "--to", "assembly"], check=True, capture_output=True)
        with open(r / "daemon.log", "a") as log:
            subprocess.run([self.bin, "-C", str(r), "run", "--drain", "-j", "2"], check=True, stdout=log, stderr=log)
        con = sqlite3.connect(f"file:{r / 'acog.db'}?mode=ro", uri=True)
        [(t,)] = con.execute("SELECT (julianday(completed_at) - julianday(started_at)) * 86400 FROM jobs"
                             " WHERE stage = 'assembly' AND status = 'completed' ORDER BY completed_at DESC LIMIT 1")
        con.close()
        return t

    def floor_argv(self, w, h, rate, dur):
        """One ffmpeg command encoding equivalent content (moving picture,
        tone) at the channel's settings: H.264 veryfast, AAC, same size, rate
        and length."""
        out = self.work / "floor.mp4"
        return ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                f"testsrc2=size={w}x{h}:rate={rate}", "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000",
                "-t", f"{dur:.3f}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                "-shortest", str(out)]

    def encode_time(self, argv, runs=None):
        """The median wall time of runs (default: reps, at most 3) of one ffmpeg command."""
        times = []
        for _ in range(runs or max(1, min(self.a.reps, 3))):
            t0 = time.monotonic()
            subprocess.run(argv, check=True)
            times.append(time.monotonic() - t0)
        return statistics.median(times)

    @contextlib.contextmanager
    def own_frames(self, video, w, h, rate):
        """The same frames and sound as the assembled video, encoded at the
        same settings from memory: final.mp4 decoded once to raw YUV in
        /dev/shm (not timed); yields the encode's argv, None when /dev/shm
        cannot hold the frames."""
        shm = Path("/dev/shm")
        raw, wav, out = (shm / f"acog-bench-{os.getpid()}.{x}" for x in ("yuv", "wav", "mp4"))
        try:
            subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", video, "-map", "0:a",
                            "-c:a", "pcm_s16le", str(wav)], check=True)
            frames = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
                                     "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", video],
                                    check=True, capture_output=True, text=True).stdout.strip()
            if not shm.is_dir() or shutil.disk_usage(shm).free < 1.2 * w * h * 1.5 * int(frames):
                yield None
                return
            subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", video, "-map", "0:v",
                            "-f", "rawvideo", "-pix_fmt", "yuv420p", str(raw)], check=True)
            argv = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                    "-s", f"{w}x{h}", "-r", rate, "-i", str(raw), "-i", str(wav), "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k",
                    "-movflags", "+faststart", "-shortest", str(out)]
            yield argv
        finally:
            for f in (raw, wav, out):
                f.unlink(missing_ok=True)

    def instructions(self, argv):
        """Instructions executed (callgrind): steady where wall time is noisy."""
        out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.work}/cg.out", *argv],
                             capture_output=True, text=True)
        for line in out.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split("Collected :")[1].split()[0])
        raise SystemExit(f"no callgrind count for {argv}: {out.stderr[-500:]}")

    def show_instructions(self):
        if not shutil.which("valgrind") or not getattr(self, "big", None):
            return
        db = str(self.big / "acog.db")
        ours = self.instructions([self.bin, "-C", str(self.big), "show", self.big_ticket])
        ref = self.instructions([shutil.which("sqlite3"), "-readonly", db,
                                 f"SELECT * FROM episodes WHERE ticket = '{self.big_ticket}';"])
        self.row(f"`show` instructions (callgrind), {self.a.episodes} episodes", ours / 1e6, ref / 1e6, "M instr.",
                 "")

    def static_size(self):
        """The static binary (`make static`, never built here): its size, and
        its idle RSS on an empty root (no shared libraries to map)."""
        s = Path(self.a.static) if self.a.static else REPO / "build" / "static" / "acog-batch"
        if not s.exists():
            self.rows.append(("static binary size", None, None, "MB", None, f"not built ({s} absent)"))
            self.log(f"static binary: not built ({s})")
            return
        self.row("static binary size", s.stat().st_size / 1e6, None, "MB", "", ratio=False)
        dyn, self.bin = self.bin, str(s.resolve())
        try:
            r = self.root("static", WAIT_CHANNEL)
            p, _ = self.start(r, "-j", "1")
            time.sleep(1)
            self.row("idle RSS, empty root, static binary", self.rss_kb(p.pid) / 1024, None, "MB", "≤ 8 MB",
                     ratio=False)
            self.stop(p)
        finally:
            self.bin = dyn

    # ---- report -----------------------------------------------------------
    def table(self):
        la = os.getloadavg()
        cpu = "?"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        out = [f"Machine: {platform.node()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}; "
               f"load average at the end {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}.",
               f"Sizes: EPISODES={self.a.episodes} BURST={self.a.burst} BATCH={self.a.batch}, "
               f"{self.a.pickups} pickups, medians of {self.a.reps} runs.",
               "", "| metric | acog-batch | reference (same run) | ratio | target |", "|---|---|---|---|---|"]
        for metric, ours, ref, unit, ratio, target in self.rows:
            f = (lambda v: "—" if v is None else (f"{v:.0f} {unit}" if abs(v) >= 100 else f"{v:.3g} {unit}"))
            out.append(f"| {metric} | {f(ours)} | {f(ref)} | {'—' if ratio is None else f'{ratio:.2f} ×'} "
                       f"| {target} |")
        out.append("")
        out.append("References: pickup against a minimal inotify watcher's rename-to-event latency; bursts "
                   "against the disk's durable-rename rate (write + fsync + rename + directory fsync, measured just before each burst); CLI "
                   "commands against the sqlite3 shell running the equivalent query.")
        out += [f"Note: {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def run(self):
        self.build_ref()
        self.references()
        steps = [("empty", self.empty_root), ("burst", self.burst), ("transitions", self.transitions),
                 ("batch", self.batch),
                 ("history", self.with_history), ("assembly", self.assembly), ("static", self.static_size)]
        for name, f in steps:
            if (self.a.only and name not in self.a.only.split(",")) or name in self.a.skip.split(","):
                continue
            try:
                f()
            except (Exception, SystemExit) as e:  # one failed scenario still leaves the others' figures
                self.failed = True
                self.notes.append(f"{name}: failed: {e}")
                self.log(f"{name} failed: {e}")
            finally:
                for p in self.procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                self.procs = []
        self.empty_trash()
        text = self.table()
        print(text)
        Path(self.a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(self.a.out).write_text("# acog-batch benchmarks\n\n" + text)
        return 1 if self.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(REPO / "acog-batch"))
    ap.add_argument("--work", default=str(REPO / "build" / "bench" / "work"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results.md"))
    ap.add_argument("--episodes", type=int, default=100000)
    ap.add_argument("--burst", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--batch-delay", type=float, default=0.5, help="seconds the fake cloud provider takes per call")
    ap.add_argument("--batch-cap", type=int, default=4, help="the provider's concurrency cap (acog.yaml limits)")
    ap.add_argument("--pickups", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--idle-seconds", type=int, default=10)
    ap.add_argument("--static", default="", help="the static binary (default build/static/acog-batch)")
    ap.add_argument("--reuse", action="store_true", help="keep the big root of an earlier run of the same size")
    ap.add_argument("--only", default="", help="comma-separated: empty,burst,transitions,batch,history,assembly,static")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out")
    a = ap.parse_args()
    sys.exit(Bench(a).run())


if __name__ == "__main__":
    main()
