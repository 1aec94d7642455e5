"""The review page (issue 10 item 5) in headless Chromium from Debian: the
daemon writes it when an episode reaches the review gate, it loads from disk
with no console error, its <video> plays, it stays usable when the root is
copied elsewhere, and every figure on it equals its source: the database
(data-t/data-k/data-c, read back here with sqlite3) or a JSON file of the
episode folder (data-file/data-j)."""
import json
import shutil
import sqlite3
import uuid

import pytest

from cdp import CHROMIUM, Chromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (contrib/install-deps.sh)")

TABLES = {"episodes", "jobs", "audit_logs", "cost_entries", "episode_versions"}
REASON = 'Say <b>why</b> & "how"'

FIGURES_JS = """JSON.stringify({
  db: [...document.querySelectorAll('[data-t]')].map(e => [e.dataset.t, e.dataset.k, e.dataset.c, e.dataset.f,
                                                           e.textContent]),
  files: [...document.querySelectorAll('[data-file]')].map(e => [e.dataset.file, e.dataset.j, e.dataset.f,
                                                                e.textContent]),
  sums: [...document.querySelectorAll('[data-sum]')].map(e => [e.dataset.episode, e.textContent]),
  links: [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href')),
  scripts: document.scripts.length, bold: document.querySelectorAll('b').length,
  text: document.body.innerText})"""

PLAY_JS = """(async () => {
  const v = document.querySelector('video');
  if (!v) return null;
  await v.play();
  const t0 = v.currentTime;
  await new Promise(r => setTimeout(r, 1200));
  return {t0: t0, t1: v.currentTime, error: v.error && v.error.code, width: v.videoWidth};
})()"""


def shown(fmt, value):
    """How the page prints a value of the database or of a JSON file (report_html.c)."""
    if value is None:
        return "\u2014"
    spec = {"usd": ".4f", "secs": ".3f", "num": "g"}.get(fmt)
    return format(float(value), spec) if spec else str(value)


def json_at(doc, path):
    for part in path.split("."):
        doc = doc[int(part)] if part.isdigit() else doc.get(part)
    return doc


def check_figures(db_path, epdir, figs):
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for t, k, c, f, text in figs["db"]:
            assert t in TABLES, t
            row = con.execute(f"SELECT {c} FROM {t} WHERE id = ?", (k,)).fetchone()
            assert row is not None, (t, k)
            assert text == shown(f, row[0]), (t, k, c, text, row[0])
        for episode, text in figs["sums"]:
            (total,) = con.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM cost_entries WHERE episode_id = ?",
                                   (episode,)).fetchone()
            assert text == shown("usd", total), (episode, text, total)
    finally:
        con.close()
    for name, path, f, text in figs["files"]:
        value = json_at(json.loads((epdir / name).read_text()), path)
        assert text == shown(f, value), (name, path, text, value)
    return {t for t, *_ in figs["db"]}


def load(browser, page):
    browser.navigate(page.as_uri())
    figs = json.loads(browser.evaluate(FIGURES_JS))
    assert browser.errors() == [], browser.errors()
    assert figs["scripts"] == 0, "the page runs no script"
    for link in figs["links"]:
        assert "://" not in link and not link.startswith("/"), f"{page}: {link} is not relative"
        assert (page.parent / link.split("#")[0]).exists(), f"{page}: {link} names no file"
    return figs


def write_qa_if_absent(epdir):
    """The assembly stage writes qa.json; until it does, the page says so, and
    this file (its schema) stands in so the QA figures are checked."""
    if (epdir / "qa.json").exists():
        return False
    (epdir / "qa.json").write_text(json.dumps({
        "version": 1, "verdict": "warn", "measured": {"integrated_lufs": -14.2, "true_peak_dbtp": -1.5},
        "checks": [
            {"name": "loudness", "status": "pass", "value": -14.2, "unit": "LUFS", "threshold": -14,
             "detail": "integrated <EBU R128>"},
            {"name": "black_frames", "status": "warn", "value": 1.25, "unit": "s", "threshold": 0.5,
             "detail": "black from 3.0 s"},
            {"name": "faststart", "status": "fail", "value": "no", "unit": "", "threshold": "yes", "detail": ""}]}))
    return True


def test_review_page_in_chromium(root, tmp_path):
    root.drop(root.idea("How do volcanoes form?", key_points=["Plates move", "Magma rises"]), "v.json")
    root.drain()
    [ep] = root.status()
    page = root.path / "report" / "episodes" / f"{ep['id']}.html"
    assert page.exists(), "the daemon writes the page when the episode reaches the review gate"
    first = page.read_text()
    assert "First version" in first and ep["ticket"] in first

    root.cli("reject", ep["ticket"], "--by", "rev", "--reason", REASON, "--to", "scripting")
    root.drain()
    [ep] = root.status()
    assert ep["state"] == "awaiting-approval"
    epdir = root.episode_dir(ep["id"])
    html = page.read_text()
    assert "script: version 1 against 2" in html, "the daemon refreshed the page after the re-run"
    assert "<b>" not in html and "Say &lt;b&gt;why&lt;/b&gt; &amp; &quot;how&quot;" in html

    browser = Chromium(tmp_path / "profile")
    try:
        browser.open_page()
        figs = load(browser, page)
        assert "no QA report" in figs["text"] or (epdir / "qa.json").exists()
        wrote_qa = write_qa_if_absent(epdir)
        # a paid call, as a cloud provider records it, so the cost figures are not all zero
        con = sqlite3.connect(root.path / "acog.db")
        with con:
            job = con.execute("SELECT id FROM jobs WHERE episode_id = ? AND stage = 'audio' ORDER BY created_at"
                              " DESC", (ep["id"],)).fetchone()[0]
            con.execute("INSERT INTO cost_entries (id, episode_id, provider, operation_type, cost_cents, cost_usd,"
                        " units_consumed, unit_type, job_id) VALUES (?, ?, 'elevenlabs', 'tts', 1, 0.01234, 1234,"
                        " 'characters', ?)", (str(uuid.uuid4()), ep["id"], job))
        con.close()
        root.cli("report")

        figs = load(browser, page)
        tables = check_figures(root.path / "acog.db", epdir, figs)
        assert tables == TABLES, tables
        assert len(figs["db"]) > 60 and len(figs["files"]) >= 10 and len(figs["sums"]) == 1
        assert "0.0123" in figs["text"] and "no QA report" not in figs["text"]
        if wrote_qa:
            assert "integrated <EBU R128>" in figs["text"] and figs["bold"] == 0
        assert f"spool/review/{ep['ticket']}.approve" in figs["text"]
        assert f"approve {ep['ticket']} --by" in figs["text"] and f"reject {ep['ticket']} --by" in figs["text"]
        assert REASON in figs["text"], "the reject reason shows as text"
        played = browser.evaluate(PLAY_JS)
        assert played and played["error"] is None and played["width"] > 0, played
        assert played["t1"] > played["t0"] + 0.3, f"the video plays: {played}"
        assert browser.errors() == [], browser.errors()

        index = load(browser, root.path / "report" / "index.html")
        check_figures(root.path / "acog.db", epdir, index)
        assert f"episodes/{ep['id']}.html" in index["links"]
        assert "channel t" in index["text"] and "Awaiting a decision" in index["text"]

        # the report folder copied with the root still plays its video
        copy = tmp_path / "copied root"
        shutil.copytree(root.path, copy, ignore=shutil.ignore_patterns("acog.db-*", "*.wav", "avatar", "broll"))
        load(browser, copy / "report" / "episodes" / f"{ep['id']}.html")
        played = browser.evaluate(PLAY_JS)
        assert played and played["t1"] > played["t0"], played
    finally:
        browser.close()


def test_report_out_dir_and_errors(root, tmp_path):
    out = tmp_path / "out dir #1"
    p = root.cli("report", "--out", str(out))
    assert (out / "index.html").exists() and "0 episode page(s)" in p.stdout
    assert "Nothing waits" in (out / "index.html").read_text()
    (tmp_path / "file").write_text("x")
    p = root.cli("report", "--out", str(tmp_path / "file"), check=False)
    assert p.returncode == 73 and "report folder" in p.stderr and "--out" in p.stderr
