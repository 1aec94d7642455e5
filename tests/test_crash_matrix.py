"""The crash matrix (issue 9.2): many ideas over three channels on the fake
cloud providers (OpenAI, ElevenLabs, HeyGen, Runway) and the fake YouTube,
while the daemon is SIGKILLed at random instants, stage children are
SIGKILLed alone, and ideas arrive while the daemon is down; then the
crash-point sweep, which aborts the daemon (or a stage child) right after
its Nth durable point (ACOG_CRASH_AFTER, test builds only: fsio_durable in
src/fsio.c, the WAL hook in src/db.c) for N over one episode's life.  After
each: `acog-batch fsck` passes, every episode reaches published after
approval, and the fakes saw no duplicate paid submission and no duplicate
upload: asynchronous jobs (HeyGen, Runway) by their persisted ids, HeyGen's
generate whose answer was lost by its tag in the video list
(src/clip_recover.c), a Runway create whose answer was lost never sent again
(its segment rendered offline instead: in_doubt, src/clip_jobs.c), the
synchronous calls (OpenAI chat, ElevenLabs speech)
by the recovery of src/recover.c (a request whose answer died with its
process is found among the stored completions or in the history, not paid
again).

Sizes come from the environment so CI runs a bounded matrix and
`make test-crash N=200 KILLS=30` / `make test-crash-points` the full one:
  ACOG_MATRIX_IDEAS (6), ACOG_MATRIX_KILLS (3), ACOG_MATRIX_CHILD_KILLS (2),
  ACOG_MATRIX_SEED, ACOG_MATRIX_POINT_STEP (sweep every Nth point; 0 = only
  the middle one), ACOG_MATRIX_FIGURES (a JSON file the
  figures are appended to).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from cloudkit import Cloud, timeline_segments
from conftest import BIN, Root, run, wait_for
from test_youtube import SECRET_ENV, YT, assert_published_once

IDEAS = int(os.environ.get("ACOG_MATRIX_IDEAS", "3"))
KILLS = int(os.environ.get("ACOG_MATRIX_KILLS", "2"))
CHILD_KILLS = int(os.environ.get("ACOG_MATRIX_CHILD_KILLS", "1"))
SEED = int(os.environ.get("ACOG_MATRIX_SEED", "9"))
POINT_STEP = int(os.environ.get("ACOG_MATRIX_POINT_STEP", "0"))
CHANNELS = ("c0", "c1", "c2")
QUOTA = "youtube_quota: {uploads_per_day: 100000, units_per_day: 100000000}\n"
CHAT_STAGES = ("planning", "scripting", "metadata")


def figures(**kw):
    p = os.environ.get("ACOG_MATRIX_FIGURES")
    if p:
        with open(p, "a") as f:
            f.write(json.dumps(kw) + "\n")


class Matrix:
    """A root with three channels on every fake cloud provider and YouTube."""

    def __init__(self, root, tmp):
        self.root = root
        self.cloud = Cloud(root, tmp / "fakes")
        c = self.cloud
        c.fake("openai")
        c.fake("elevenlabs", "--seconds-per-char", "0.02")
        c.fake("heygen")
        c.fake("runway")
        self.yt = YT(root, tmp, "--quota-limit", "100000000", "--upload-cap", "100000")
        c.acog_yaml(QUOTA)
        # the fake is not api.openai.com: stored-completion recovery is asked for
        chat = {s: c.provider(s, recover="stored_completions") for s in CHAT_STAGES}
        for cid in CHANNELS:
            c.channel(cid, review=True, providers=chat, extra="  upload: %s\n" % json.dumps(self.yt.options()))
            self.yt.write_token(cid, self.yt.refresh)
        self.env = c.env(**{SECRET_ENV: self.yt.secret})
        self.names = []
        self.retried = Counter()

    def stop(self):
        self.cloud.stop()
        self.yt.fake.stop()

    def drop(self, i):
        r = self.root
        idea = r.idea(f"Crash matrix topic {i}", channel=CHANNELS[i % 3], idempotency_key=f"m-{i}")
        self.names.append(r.drop(idea, f"m-{i:04d}.json"))

    def start(self, env=None):
        return self.cloud.start("-j", "2", env=env or self.env)

    def approve_waiting(self, env=None):
        """Approve every episode waiting at review (a person would)."""
        n = 0
        for e in self.root.q("SELECT ticket FROM episodes WHERE gate_pending = 'review'"):
            p = run(["approve", e["ticket"], "--by", "tess"], self.root.path, check=False,
                    env=env or self.env)
            n += p.returncode == 0
        return n

    def retry_failed(self):
        """A person retries what failed because of the faults we injected: a
        stage killed more often than its retries allow, or a paid submission
        the stage was killed in the middle of (the daemon cannot know whether
        the provider got it, so it fails and says so rather than pay twice).
        Any other failure is a finding."""
        n = 0
        for e in self.root.q("SELECT ticket, stage, last_error FROM episodes WHERE status = 'failed'"):
            err = e["last_error"] or ""
            kind = ("crashed:" + e["stage"] if "killed by signal 9" in err or "killed by signal 6" in err
                    else "in_doubt:" + e["stage"] if "being submitted" in err else None)
            assert kind, f"{e['ticket']} failed at {e['stage']} for a reason no fault explains: {err}"
            self.retried[kind] += 1
            run(["retry", e["ticket"]], self.root.path, env=self.env)
            n += 1
        return n

    def finish(self, timeout=3600):
        """Drain, approve, retry ... until every episode is published."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.cloud.drain(timeout=timeout, env=self.env)
            if self.approve_waiting() + self.retry_failed() == 0:
                break
        self.cloud.drain(timeout=timeout, env=self.env)

    def children(self):
        """Pids of the daemon's stage children."""
        d = self.root.daemon
        try:
            with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except (OSError, AttributeError):
            return []

    # -- the checks ---------------------------------------------------------
    def check(self, n_ideas):
        r = self.root
        p = run(["fsck"], r.path, check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        eps = r.q("SELECT id, ticket, source_name, status, channel_id FROM episodes")
        assert sorted(e["source_name"] for e in eps) == sorted(self.names), "every idea is exactly one episode"
        assert len(eps) == n_ideas
        assert {e["status"] for e in eps} == {"published"}, Counter(e["status"] for e in eps)
        assert r.spool("incoming") == [] and r.spool("rejected") == []
        for e in eps:
            assert_published_once(self.yt, e)
        return self.no_duplicates(eps)

    def no_duplicates(self, eps):
        """The paid asynchronous submissions and the uploads, each once."""
        n_avatar = n_broll = n_offline = 0
        for e in eps:
            segs = timeline_segments(self.root.episode_dir(e["id"]))
            n_avatar += sum(s["visual"] == "avatar" for s in segs)
            n_broll += sum(s["visual"] == "broll" for s in segs)
            n_offline += broll_offline(self.root, e["id"])
        c = self.cloud
        sub = {k: f.submissions() for k, f in c.fakes.items()}
        # HeyGen: a generate whose answer was lost is found in the video list
        # (src/clip_recover.c), also by a person's retry: each segment paid once.
        # Runway cannot find a task by what was sent: a submission in doubt is
        # never sent again, its segment rendered offline instead (in_doubt:
        # offline), with or without a task made for it at the fake.
        heygen, runway = sub["heygen"].get("heygen_generate", 0), sub["runway"].get("runway_create", 0)
        assert heygen == n_avatar, (sub["heygen"], n_avatar, dict(self.retried))
        assert n_broll - n_offline <= runway <= n_broll, (sub["runway"], n_broll, n_offline)
        assert self.retried["in_doubt:broll"] == 0, dict(self.retried)
        yts = self.yt.fake.submissions()
        assert yts.get("youtube_uploads_completed") == len(eps), yts
        # The synchronous calls, each paid once: a request whose answer died
        # with its process is recovered (src/recover.c), also by a person's
        # retry of a stage killed more often than its retries allow (the new
        # job keeps the marks of the one that died, src/state.c).
        chat, chat_need = paid_and_needed(c["openai"], "/chat/completions", "openai_chat")
        tts, tts_need = paid_and_needed(c["elevenlabs"], "/v1/text-to-speech/", "elevenlabs_tts")
        assert chat_need >= len(CHAT_STAGES) * len(eps) and tts_need >= len(eps), (chat_need, tts_need)
        assert chat == chat_need, (chat, chat_need, dict(self.retried))
        assert tts == tts_need, (tts, tts_need, dict(self.retried))
        return {"openai_chat": chat, "openai_chat_needed": chat_need, "elevenlabs_tts": tts,
                "elevenlabs_tts_needed": tts_need, "avatar_segments": n_avatar, "heygen_generate": heygen,
                "broll_segments": n_broll, "runway_create": runway, "broll_rendered_offline": n_offline,
                "youtube_uploads": len(eps),
                "lookups": {k: v for k, v in {**sub["openai"], **sub["elevenlabs"], **sub["heygen"]}.items()
                            if k.startswith(("openai_chat_", "elevenlabs_history", "heygen_video_list"))},
                "retried_by_person": dict(self.retried)}


def broll_offline(root, ep_id):
    """B-roll segments rendered offline because their Runway task was in doubt."""
    d = root.episode_dir(ep_id) / "broll"
    return sum(s["visual"] == "broll" and not (d / f"seg-{s['index']:02d}.mp4").exists()
               and (d / f"seg-{s['index']:02d}.json").exists()
               for s in timeline_segments(root.episode_dir(ep_id)))


def paid_and_needed(fake, path, counter):
    """Paid calls (the fake's counter, checked against its request log) and
    the calls needed: the distinct requests among them.  Each stage's request
    is a function of its inputs (a fix sent back to the model is a new one),
    and no two episodes share one, so a request paid twice is a duplicate.
    OpenAI's store/metadata, which only tag a request, are left out."""
    done = fake.requests(path, method="POST", status="ok")
    paid = fake.submissions().get(counter, 0)
    assert paid == len(done), (paid, len(done))
    seen = {json.dumps([r["path"].split("?")[0], {k: v for k, v in (r["json"] or {}).items()
                                                   if k not in ("store", "metadata")}], sort_keys=True)
            for r in done}
    return paid, len(seen)


@pytest.fixture
def matrix(root, tmp_path):
    m = Matrix(root, tmp_path)
    yield m
    if root.daemon and root.daemon.poll() is None:
        root.stop(signal.SIGKILL)
    m.stop()


def test_random_sigkills_lose_and_duplicate_nothing(matrix):
    m, r = matrix, matrix.root
    rng = random.Random(SEED)
    t0 = time.monotonic()
    first = max(1, IDEAS // 2)
    for i in range(first):
        m.drop(i)
    kills = child_kills = live_checks = 0
    dropped = first
    while kills < KILLS:
        m.start()
        time.sleep(rng.uniform(0.2, max(3.0, 2.0 * IDEAS / max(1, KILLS))))
        # always in the first round (ideas are queued, so a stage child comes), then half the time
        first_round = kills == 0
        if child_kills < CHILD_KILLS and (rng.random() < 0.5 or first_round):
            kids = wait_for(m.children, timeout=60, what="a stage child") if first_round else m.children()
            if kids:
                os.kill(rng.choice(kids), signal.SIGKILL)   # a stage child alone
                child_kills += 1
                time.sleep(rng.uniform(0.1, 1.0))
        if r.daemon.poll() is not None:
            raise AssertionError(r.log.read_text()[-3000:])
        # fsck beside the working daemon: nothing it reports may be a false alarm
        p = run(["fsck", "--json"], r.path, check=False)
        assert p.returncode == 0, p.stdout
        live_checks += 1
        m.cloud.kill()
        kills += 1
        # while it is down: more ideas arrive, a person approves
        for _ in range(rng.randint(0, max(1, (IDEAS - first) // max(1, KILLS // 2)))):
            if dropped < IDEAS:
                m.drop(dropped)
                dropped += 1
        m.approve_waiting()
    while dropped < IDEAS:
        m.drop(dropped)
        dropped += 1
    m.finish()
    counts = m.check(IDEAS)
    elapsed = time.monotonic() - t0
    figures(mode="random", ideas=IDEAS, channels=3, kills=kills, child_kills=child_kills, live_fscks=live_checks,
            seconds=round(elapsed, 1), lost=0, **counts)
    assert kills >= KILLS and (child_kills >= 1 or CHILD_KILLS == 0 or KILLS < 2)


# ---------------------------------------------------------------------------
# Crash points: abort right after the Nth durable point of one episode's life.

def life(m, env):
    """One episode from incoming to published, approving at review; any step
    may abort (ACOG_CRASH_AFTER); the count file keeps counting past N, so
    later steps do not abort again."""
    for step in ("drain", "approve", "drain"):
        if step == "approve":
            m.approve_waiting(env=env)
            continue
        with open(m.root.log, "a") as log:
            subprocess.run([BIN, "-C", str(m.root.path), "run", "--drain", "-j", "1"], stdout=log,
                           stderr=log, timeout=600, env=env)


def fresh(m, pristine, n):
    """A copy of the pristine root (one idea in incoming) for crash point n."""
    dst = m.root.path.parent / f"point-{n}"
    shutil.copytree(pristine, dst, symlinks=True)
    return dst


def paid(m):
    """What the fakes count as paid or published, so far."""
    h, w, y = m.cloud["heygen"].submissions(), m.cloud["runway"].submissions(), m.yt.fake.submissions()
    return (h.get("heygen_generate", 0), w.get("runway_create", 0), y.get("youtube_uploads_completed", 0))


def segments(m, ep_id):
    segs = timeline_segments(m.root.episode_dir(ep_id))
    return (sum(s["visual"] == "avatar" for s in segs), sum(s["visual"] == "broll" for s in segs), 1)


def test_crash_points_of_one_episode(matrix, tmp_path):
    m = matrix
    m.drop(0)
    pristine = tmp_path / "pristine"
    shutil.copytree(m.root.path, pristine, symlinks=True)
    count = tmp_path / "count"
    t0 = time.monotonic()
    life(m, dict(m.env, ACOG_CRASH_COUNT=str(count)))
    total = int(count.read_text())
    m.check(1)
    assert total >= 20, f"only {total} durable points in an episode's life?"
    kinds = Counter(l.split(" ", 2)[2].rsplit("/", 1)[-1] for l in (tmp_path / "count.log").read_text().splitlines())
    points = list(range(1, total + 1, POINT_STEP)) if POINT_STEP else [total // 2]
    reached = extra = offline = 0
    for n in points:
        m.root = m.yt.root = m.cloud.root = Root(fresh(m, pristine, n))
        before = paid(m)
        cnt = tmp_path / f"count-{n}"
        life(m, dict(m.env, ACOG_CRASH_COUNT=str(cnt), ACOG_CRASH_AFTER=str(n)))
        reached += int(cnt.read_text()) >= n
        m.finish()
        [ep] = m.root.q("SELECT id, ticket, status FROM episodes")
        assert ep["status"] == "published", f"crash point {n}: " + m.root.log.read_text()[-3000:]
        p = run(["fsck"], m.root.path, check=False)
        assert p.returncode == 0, f"crash point {n}: {p.stdout}"
        assert_published_once(m.yt, ep)
        got, want = tuple(a - b for a, b in zip(paid(m), before)), segments(m, ep["id"])
        off = broll_offline(m.root, ep["id"])  # runway in doubt: rendered offline, never sent again
        offline += off
        assert got[0] == want[0] and want[1] - off <= got[1] <= want[1] and got[2] == want[2], \
            f"crash point {n}: (heygen, runway, uploads) = {got}, want {want}, {off} b-roll rendered offline"
        extra += sum(max(0, g - w) for g, w in zip(got, want))
        shutil.rmtree(m.root.path)
    figures(mode="points", durable_points=total, swept=len(points), reached=reached, paid_twice=extra,
            broll_rendered_offline=offline,
            retried_by_person=dict(m.retried),
            seconds=round(time.monotonic() - t0, 1), top_points=kinds.most_common(8))
    assert reached == len(points), f"only {reached} of {len(points)} runs reached their crash point"
