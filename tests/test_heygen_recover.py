"""Never pay twice for a HeyGen avatar video whose video_id died with its
process (issue 9.2): POST /v2/video/generate was carried out and counted by
the fake, but the stage child was SIGKILLed, alone or with the daemon,
while the answer was on its way.  With `recover: video_list` (the default)
the generate carries a tag unique to it in its title; the next attempt (or
a person's retry) finds that title in GET /v1/video.list and adopts the
video instead of submitting again (src/clip_recover.c, src/prov_heygen.c).
With `recover: none` the submission stays in doubt and the stage fails for
a person, as before.

The fake holds the generate answer with a `stall` fault marked
`after_handler`, and pages its video list 3 videos at a time.
"""
import json
import urllib.request

from cloudkit import timeline_segments
from conftest import run, wait_for
from test_recover_paid import counted, hold, kill_child, marks, stage_done

GEN = "/v2/video/generate"
OTHERS = 4      # videos someone else makes on the account meanwhile: the list pages past them


def configure(c, **opts):
    c.fake("heygen", "--polls", "1", "--list-page-size", "3")
    c.acog_yaml()
    c.channel("c", cloud=("avatar",), providers={"avatar": c.provider("avatar", **opts)})
    c.root.drop(c.root.idea("Why the sea is salty", channel="c"), "s.json")


def others(hg, n=OTHERS):
    """Videos made on the same account by someone else (newer than ours)."""
    body = {"video_inputs": [{"character": {"type": "avatar", "avatar_id": "Other_public"},
                              "voice": {"type": "text", "input_text": "Hello there", "voice_id": "v1"}}],
            "dimension": {"width": 320, "height": 180}, "title": "acog-not-ours"}
    for _ in range(n):
        q = urllib.request.Request(hg.url + GEN, data=json.dumps(body).encode(), method="POST",
                                   headers={"X-Api-Key": hg.api_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(q, timeout=10) as r:
            assert r.status == 200


def avatar_segments(root, ep):
    return [s for s in timeline_segments(root.episode_dir(ep)) if s["visual"] == "avatar"]


def check_paid_once(root, hg, ep):
    """One generate per avatar segment, the held one adopted, every clip there.
    (The fake's jobs, not its request log: a held answer is never logged.)"""
    segs = avatar_segments(root, ep)
    jobs = sorted(hg.state("heygen_jobs.json").values(), key=lambda j: j["seq"])
    gens = [j for j in jobs if (j["title"] or "").startswith(f"acog-{ep}-")]
    assert len(gens) == len(segs) >= 1, (gens, segs)
    assert hg.submissions()["heygen_generate"] == len(segs) + OTHERS
    tags = [j["title"].split(" ")[0] for j in gens]
    assert len(set(tags)) == len(tags) and [j["callback_id"] for j in gens] == tags
    # the held one (the first) was found by paging the list: OTHERS newer videos were before it
    held = gens[0]
    lists = hg.requests("/v1/video.list", method="GET", status="ok")
    assert len(lists) >= 2 and any("token=" in r["path"] for r in lists), [r["path"] for r in lists]
    assert all(r["headers"].get("X-Api-Key") == hg.api_key for r in lists)
    mk = marks(root, "avatar", "episode:seg-")
    assert held["id"] in {m["id"] for m in mk.values() if m}, (held, mk)
    for s in segs:
        assert (root.episode_dir(ep) / "avatar" / f"seg-{s['index']:02d}.mp4").stat().st_size > 0
    assert "found as " + held["id"] in (root.episode_dir(ep) / "log.jsonl").read_text()


def test_generate_lost_with_the_daemon_is_found_in_the_video_list(cloud, root):
    c = cloud
    configure(c)
    hg = c["heygen"]
    hold(hg, GEN)
    c.start()
    counted(hg, "heygen_generate")
    others(hg)
    c.kill()                      # the stage child dies with it (PR_SET_PDEATHSIG)
    c.start()
    ep = stage_done(root, "avatar")
    check_paid_once(root, hg, ep)


def test_a_persons_retry_looks_up_before_paying(cloud, root):
    """The stage child alone is killed; the next attempt's look-up fails for
    good (a 403): the stage fails for a person, and `acog-batch retry` (a new
    job, its other provider state cleared) still has the mark, finds the
    video and pays nothing."""
    c = cloud
    configure(c)
    hg = c["heygen"]
    hg.faults([{"match": GEN, "method": "POST", "fault": "stall", "seconds": 600, "after_handler": True},
               {"match": "/v1/video.list", "fault": "error_403"}])
    c.start()
    counted(hg, "heygen_generate")
    others(hg)
    kill_child(root)
    wait_for(lambda: root.q("SELECT 1 FROM episodes WHERE status = 'failed'"), timeout=60, what="in doubt")
    [e] = root.q("SELECT id, ticket, last_error FROM episodes")
    assert "being submitted" not in e["last_error"] and "may have made the clip" in e["last_error"], e
    run(["retry", e["ticket"]], root.path, env=c.env())
    ep = stage_done(root, "avatar")
    assert len(root.q("SELECT id FROM jobs WHERE stage = 'avatar'")) >= 2
    check_paid_once(root, hg, ep)


def test_recover_none_leaves_the_submission_in_doubt(cloud, root):
    c = cloud
    configure(c, recover="none")
    hg = c["heygen"]
    hold(hg, GEN)
    c.start()
    counted(hg, "heygen_generate")
    c.kill()
    c.start()
    wait_for(lambda: root.q("SELECT 1 FROM episodes WHERE status = 'failed'"), timeout=60, what="in doubt")
    [e] = root.q("SELECT last_error FROM episodes")
    assert "was being submitted" in e["last_error"] and "acog-batch retry" in e["last_error"], e
    assert hg.submissions()["heygen_generate"] == 1
    assert hg.requests("/v1/video.list") == [] and marks(root, "avatar", "episode:") == {}
    [g] = hg.state("heygen_jobs.json").values()
    assert g["callback_id"] is None and not g["title"].startswith("acog-")


def test_misspelt_recover_is_refused(cloud, root):
    c = cloud
    configure(c, recover="videolist")
    p = run(["doctor"], root.path, check=False, env=c.env())
    says = 'providers.avatar (heygen): option "recover" is "videolist"; use one of video_list, none'
    assert p.returncode != 0 and "channels/c/channel.yaml:" in p.stdout and says in p.stdout, p.stdout
