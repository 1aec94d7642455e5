"""Never pay twice for a Runway task whose id was lost (issue 9.2).

Runway lists no tasks and keeps nothing of ours to find one by, so a create
that may have made a task (the stage child killed, alone or with the
daemon, while the answer was on its way; or a gateway error after the fake
made the task) is never sent again.  With `in_doubt: offline` (the default)
the segment becomes generated b-roll instead, the episode goes on, and
QA's `paid_clips_offline` check shows the reviewer which segment it was
(src/clip_jobs.c substitute(), src/prov_runway.c, src/qa.c).  With
`in_doubt: fail` the stage fails for a person, as tests/test_cloud.py checks.

The fake holds the create answer with a `stall` fault marked
`after_handler`: the task is made and counted first, then the answer waits.
"""
import json

import pytest

from cloudkit import timeline_segments
from conftest import run, wait_for
from test_recover_paid import counted, hold, kill_child, stage_done

CREATE = "/v1/text_to_video"


def configure(c, **opts):
    rw = c.fake("runway")
    c.acog_yaml()
    c.channel("c", cloud=("broll",), providers={"broll": c.provider("broll", **opts)})
    c.root.drop(c.root.idea("Why the sea is salty", channel="c"), "s.json")
    return rw


def broll_files(root, ep):
    """{segment index: "clip" | "offline" | None} for every b-roll segment."""
    d = root.episode_dir(ep) / "broll"
    out = {}
    for s in timeline_segments(root.episode_dir(ep)):
        if s["visual"] != "broll":
            continue
        n = s["index"]
        out[n] = ("clip" if (d / f"seg-{n:02d}.mp4").exists()
                  else "offline" if (d / f"seg-{n:02d}.json").exists() else None)
    return out


def check_paid_once(root, rw, ep):
    """One task per b-roll segment, none asked for twice; the one in doubt is
    the only segment rendered offline, and QA tells the reviewer so."""
    files = broll_files(root, ep)
    tasks = list(rw.state("runway_tasks.json").values())
    assert len(files) >= 2, files
    assert rw.submissions()["runway_create"] == len(tasks) == len(files), (rw.submissions(), tasks, files)
    offline = [n for n, f in files.items() if f == "offline"]
    assert len(offline) == 1 and all(f in ("clip", "offline") for f in files.values()), files
    n = offline[0]
    state = {r["key"]: r["value"] for r in root.q(
        "SELECT key, value FROM provider_state WHERE episode_id = ? AND stage = 'broll'", ep)}
    assert state.get(f"seg-{n:02d}_offline") and not state.get(f"seg-{n:02d}_sent"), state
    log = (root.episode_dir(ep) / "log.jsonl").read_text()
    assert "rendered offline instead (in_doubt: offline)" in log and "--to broll" in log
    # the recipe is reported as the segment's b-roll asset
    assets = root.q("SELECT uri FROM assets WHERE episode_id = ? AND type = 'b_roll'", ep)
    assert any(a["uri"].endswith(f"broll/seg-{n:02d}.json") for a in assets), assets
    # QA on the assembled video names the segment for the reviewer
    stage_done(root, "assembly")
    qa = json.loads((root.episode_dir(ep) / "qa.json").read_text())
    [chk] = [x for x in qa["checks"] if x["name"] == "paid_clips_offline"]
    assert chk["status"] == "warn" and chk["value"] == 1 and f"segment {n} " in chk["detail"], chk
    assert qa["verdict"] != "fail", qa


@pytest.mark.parametrize("killed", ["daemon", "stage child"])
def test_create_lost_with_a_killed_process_renders_the_segment_offline(cloud, root, killed):
    c = cloud
    rw = configure(c)
    hold(rw, CREATE)
    c.start()
    counted(rw, "runway_create")
    if killed == "daemon":
        c.kill()                  # the stage child dies with it (PR_SET_PDEATHSIG)
        c.start()
    else:
        kill_child(root)          # the daemon runs the stage again
    ep = stage_done(root, "broll")
    check_paid_once(root, rw, ep)


def test_gateway_error_after_the_create_renders_the_segment_offline(cloud, root):
    c = cloud
    rw = configure(c)
    rw.faults([{"match": CREATE, "method": "POST", "fault": "504", "after_handler": True}])
    c.start()
    ep = stage_done(root, "broll")
    assert [r["fault"] for r in rw.requests(CREATE, "POST")].count("504") == 1
    check_paid_once(root, rw, ep)


def test_misspelt_in_doubt_is_refused(cloud, root):
    c = cloud
    configure(c, in_doubt="offlne")
    p = run(["doctor"], root.path, check=False, env=c.env())
    says = 'providers.broll (runway): option "in_doubt" is "offlne"; use one of offline, fail'
    assert p.returncode != 0 and "channels/c/channel.yaml:" in p.stdout and says in p.stdout, p.stdout
