"""Publishing times: an idea's publish_at, a channel cadence's next free slot
(assigned at approval), a past time publishing at once, and the outbox
manifest carrying publish_at.  Expected slots are computed here with
Python's zoneinfo, independently of the C code."""
import datetime as dt
import json
from zoneinfo import ZoneInfo

from conftest import run

BERLIN = ZoneInfo("Europe/Berlin")


def next_berlin_15(after):
    """The first 15:00 Europe/Berlin strictly after `after` (aware UTC)."""
    day = after.astimezone(BERLIN).date()
    while True:
        t = dt.datetime(day.year, day.month, day.day, 15, 0, tzinfo=BERLIN).astimezone(dt.timezone.utc)
        if t > after:
            return t
        day += dt.timedelta(days=1)


def iso(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def by_topic(root):
    return {e["title"]: e for e in root.status()}


def test_cadence_slots_explicit_time_and_past_time(root):
    root.channel("t", extra='cadence: "daily 15:00 Europe/Berlin"\n')
    explicit_local = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=5)).replace(
        hour=10, minute=0, second=0, microsecond=0).astimezone(dt.timezone(dt.timedelta(hours=2)))
    root.drop(root.idea("first on the cadence"), "a.json")
    root.drop(root.idea("asks for its own time", publish_at=explicit_local.isoformat()), "b.json")
    root.drop(root.idea("second on the cadence"), "c.json")
    root.drop(root.idea("asks for a past time", publish_at="2020-01-01T12:00:00+01:00"), "d.json")
    root.drain("-j", "2")
    eps = by_topic(root)
    assert len(eps) == 4 and all(e["state"] == "awaiting-approval" for e in eps.values()), eps
    before = dt.datetime.now(dt.timezone.utc)
    for topic in ["first on the cadence", "asks for its own time", "second on the cadence", "asks for a past time"]:
        root.cli("approve", eps[topic]["ticket"], "--by", "sam")
    eps = by_topic(root)
    slot1 = next_berlin_15(before)
    assert eps["first on the cadence"]["scheduled_at"] == iso(slot1)
    assert eps["asks for its own time"]["scheduled_at"] == iso(explicit_local), "an explicit publish_at wins"
    assert eps["second on the cadence"]["scheduled_at"] == iso(next_berlin_15(slot1)), "the next day's slot"
    assert eps["asks for a past time"]["scheduled_at"] == "2020-01-01T11:00:00Z"
    text = root.cli("status").stdout
    assert "publishes " + iso(slot1) in text
    shown = root.cli("show", eps["first on the cadence"]["id"]).stdout
    assert "publish  " + iso(slot1) in shown

    root.drain()
    eps = by_topic(root)
    assert {e["status"] for e in eps.values()} == {"published"}
    for topic, want in [("first on the cadence", iso(slot1)), ("asks for its own time", iso(explicit_local)),
                        ("asks for a past time", None)]:
        ep = eps[topic]
        d = root.episode_dir(ep["id"])
        out = root.path / "channels/t/outbox" / ep["id"]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["publish_at"] == want, (topic, manifest)
        assert json.loads((out / "settings.json").read_text())["publish_at"] == want
        if want:
            assert json.loads((d / "schedule.json").read_text())["publish_at"] == want
    past = eps["asks for a past time"]
    log = (root.episode_dir(past["id"]) / "log.jsonl").read_text()
    assert "already past; publishing at once" in log


def test_publish_at_without_zone_is_rejected(root):
    root.drop(root.idea("no zone", publish_at="2026-12-01T15:00:00"), "nozone.json")
    root.drop(root.idea("no such day", publish_at="2026-02-30T15:00:00Z"), "feb30.json")
    root.drain()
    assert root.status() == []
    for name in ["nozone.json", "feb30.json"]:
        err = (root.path / "spool/rejected" / (name + ".error")).read_text()
        assert name in err and "publish_at" in err and "offset" in err, err


def test_bad_cadence_refuses_approval_naming_the_file(root):
    root.channel("t", extra='cadence: "daily 15:00 Mars/Olympus"\n')
    root.drop(root.idea("bad cadence"), "x.json")
    root.drain()
    [ep] = root.status()
    p = root.cli("approve", ep["ticket"], "--by", "sam", check=False)
    assert p.returncode != 0
    assert "channels/t/channel.yaml" in p.stderr and "Mars/Olympus" in p.stderr, p.stderr
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval" and "scheduled_at" not in ep


def test_youtube_gets_the_cadence_slot_as_publish_at(root, tmp_path):
    from test_youtube import YT
    yt = YT(root, tmp_path)
    try:
        yt.acog_yaml()
        root.channel("t", review="true", extra="  upload: %s\ncadence: \"mon,wed,fri 09:30,18:00 America/New_York\"\n"
                     % json.dumps(yt.options(privacy="public")))
        yt.write_token("t", yt.refresh)
        root.drop(root.idea("scheduled on YouTube"), "y.json")
        yt.drain()
        [ep] = root.status()
        before = dt.datetime.now(dt.timezone.utc)
        root.cli("approve", ep["ticket"], "--by", "sam")
        [ep] = root.status()
        slot = dt.datetime.strptime(ep["scheduled_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        local = slot.astimezone(ZoneInfo("America/New_York"))
        assert slot > before and local.strftime("%a %H:%M") in {
            f"{d} {t}" for d in ("Mon", "Wed", "Fri") for t in ("09:30", "18:00")}, local
        assert slot - before < dt.timedelta(days=3), "the next slot, not a later one"
        yt.drain()
        [v] = yt.videos()
        status = v["resource"]["status"]
        assert status["publishAt"] == ep["scheduled_at"] and status["privacyStatus"] == "private", status
        assert root.status()[0]["status"] == "published"
    finally:
        yt.fake.stop()
