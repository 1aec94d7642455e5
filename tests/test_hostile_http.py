"""Hostile answers from providers (issue 9, item 4): huge bodies (with and
without Content-Length), a slow drip, redirects to other hosts, HTML where
JSON was promised, broken JSON.  src/http.c must stay bounded in memory
(max_response) and time (timeout, low-speed limit) and the stage must fail
naming the problem.  The fault modes are in tests/fakes/fakecore.py."""
import json
import os
import subprocess
import time

import pytest

from test_http import AUTH, PROBE, Fake

MB = 1 << 20


@pytest.fixture
def fake(tmp_path):
    f = Fake(tmp_path / "fake", "openai")
    yield f
    f.stop()


@pytest.fixture
def proot(tmp_path):
    r = tmp_path / "proot"
    (r / "spool" / "tmp").mkdir(parents=True)
    return r


def peak_rss_mb(cmd, env):
    """Runs cmd and returns (stdout, peak RSS in MiB) from wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return out, ru.ru_maxrss / 1024


def run_probe(root, url, *args):
    env = dict(os.environ)
    env.pop("SSL_CERT_FILE", None)
    t0 = time.monotonic()
    out, rss = peak_rss_mb([str(PROBE), "--root", str(root), "--url", url, "--header", AUTH, *args], env)
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["rss"], res["wall"] = rss, time.monotonic() - t0
    return res


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_body_is_cut_at_max_response_with_bounded_memory(fake, proot, chunked):
    base = run_probe(proot, fake.url + "/v1/models", "--max-response", str(MB))
    assert base["rc"] == 0, base
    fake.faults([{"match": "/v1/models", "fault": "huge_body", "bytes": 256 * MB, "chunked": chunked,
                  "times": -1}])
    r = run_probe(proot, fake.url + "/v1/models", "--max-response", str(MB), "--max-attempts", "2")
    assert r["rc"] == -1 and not r["retriable"] and r["attempts"] == 1, r
    assert f"larger than {MB} bytes" in r["error"], r["error"]
    assert r["rss"] < base["rss"] + 24, f"peak RSS {r['rss']:.0f} MiB vs {base['rss']:.0f} MiB for a small answer"
    assert r["wall"] < 20, r


def test_slow_drip_is_cut_by_the_timeout(fake, proot):
    fake.faults([{"match": "/v1/models", "fault": "drip", "interval": 0.2, "times": -1}])
    r = run_probe(proot, fake.url + "/v1/models", "--timeout", "3", "--max-attempts", "1")
    assert r["rc"] == -1 and r["attempts"] == 1, r
    assert "timed out" in r["error"].lower(), r["error"]
    assert 2.5 <= r["wall"] <= 10, r


@pytest.mark.parametrize("status", [301, 307])
def test_redirect_to_another_host_is_not_followed(fake, proot, tmp_path, status):
    other = Fake(tmp_path / "other", "openai")
    try:
        fake.faults([{"match": "/v1/models", "fault": "redirect", "status": status,
                      "location": other.url + "/v1/models", "times": -1}])
        r = run_probe(proot, fake.url + "/v1/models", "--max-attempts", "2")
        assert r["rc"] == -1 and r["status"] == status, r
        assert other.requests() == [], "the redirect was followed: the key went to another host"
        assert str(status) in r["error"], r["error"]
    finally:
        other.stop()


# ------------------------------------------------------------ through a stage



HOSTILE = {
    "html": ({"fault": "wrong_content_type"}, ["text/html"]),
    "broken": ({"fault": "malformed_json"}, ["JSON"]),
    "redirect": ({"fault": "redirect", "location": "http://169.254.169.254/latest/meta-data/?token=s3cr3t"},
                 ["302", "redirect to http://169.254.169.254, not followed"]),
    "huge": ({"fault": "huge_body", "bytes": 64 * MB}, ["larger than"]),
}


def test_hostile_answer_fails_the_stage_with_a_clear_reason(cloud, root):
    """One channel per hostile answer, each on its own fake, in one run."""
    c = cloud
    c.fake("webhook")
    for cid, (rule, _) in HOSTILE.items():
        c.fake("openai", name=f"oa-{cid}").faults([dict(rule, match="/chat/completions", times=-1)])
    c.acog_yaml()
    for cid in HOSTILE:
        c.channel(cid, cloud=(), providers={"planning": c.provider("planning", name=f"oa-{cid}")})
        root.drop(root.idea(f"Volcanoes {cid}", channel=cid), f"{cid}.json")
    t0 = time.monotonic()
    c.drain(timeout=120)
    assert time.monotonic() - t0 < 60
    eps = {e["channel"]: e for e in root.status()}
    for cid, (_, want) in HOSTILE.items():
        ep = eps[cid]
        assert ep["status"] == "failed" and ep["stage"] == "planning", ep
        err = (root.path / "spool/failed" / (ep["ticket"] + ".error")).read_text()
        missing = [w for w in want if w not in err]
        assert not missing, f"{cid}: {err!r} lacks {missing}"
    assert "s3cr3t" not in root.log.read_text()
