#!/usr/bin/python3
"""`make readme-images`: the README's pictures, made from a real run, never
drawn by hand.  Runs the demo channel to the review gate in a fresh root
(or uses --root, a root whose newest demo episode has a final.mp4), writes
the review pages with `acog-batch report`, then into doc/images/:
  review-page.png        the episode's review page, desktop width, in headless Chromium
  review-page-phone.png  the same page on a phone-sized screen
  review-index.png       the index of all episodes
  still-1.png..still-4.png  frames of the demo video (ffmpeg), at 10/35/60/85 % of its length
and rewrites the README block between the readme-images:qa markers with the
QA figures of the demo video (qa.json beside final.mp4).
"""
import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from cdp import CHROMIUM, Chromium  # noqa: E402

OUT = REPO / "doc" / "images"
QA_BEGIN, QA_END = "<!-- readme-images:qa begin -->", "<!-- readme-images:qa end -->"


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, **kw)


def demo_root(binary):
    root = REPO / "build" / "readme-root"
    shutil.rmtree(root, ignore_errors=True)
    sh(binary, "-C", root, "init", "--demo", stdout=subprocess.DEVNULL)
    shutil.copy(root / "channels/demo/sample-idea.json", root / "spool/tmp/idea.json")
    (root / "spool/tmp/idea.json").rename(root / "spool/incoming/idea.json")
    print(f"readme-images: running the demo channel to the review gate in {root} (a few minutes)")
    with open(root / "run.log", "w") as log:
        sh(binary, "-C", root, "run", "--drain", stderr=log)
    return root


def newest_episode(root):
    con = sqlite3.connect(f"file:{root / 'acog.db'}?mode=ro", uri=True)
    row = con.execute("SELECT e.id FROM episodes e JOIN channels c ON c.id = e.channel_id WHERE c.slug = 'demo'"
                      " ORDER BY e.created_at DESC LIMIT 1").fetchone()
    con.close()
    if not row:
        sys.exit(f"readme-images: no demo episode in {root}")
    return row[0]


def stills(video):
    dur = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                str(video)], capture_output=True, text=True, check=True).stdout)
    for i, frac in enumerate((0.10, 0.35, 0.60, 0.85), 1):
        sh("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{dur * frac:.2f}", "-i", video,
           "-frames:v", "1", "-vf", "scale=640:-2", OUT / f"still-{i}.png")


def screenshots(root, episode):
    with tempfile.TemporaryDirectory() as profile:
        b = Chromium(profile)
        try:
            b.open_page()
            page = root / "report" / "episodes" / f"{episode}.html"
            for name, w, h, mobile in (("review-page", 1100, 1500, False), ("review-page-phone", 390, 844, True)):
                b.navigate(page.as_uri())
                b.screenshot(OUT / f"{name}.png", w, h, mobile)
            b.navigate((root / "report" / "index.html").as_uri())
            b.screenshot(OUT / "review-index.png", 1100, 700)
        finally:
            b.close()


def qa_block(epdir):
    qa_path = epdir / "qa.json"
    if not qa_path.exists():
        return ("_QA figures of the demo video: not available yet (no qa.json beside final.mp4 in this build; "
                "`make readme-images` fills this table once the assembly stage writes it)._")
    qa = json.loads(qa_path.read_text())
    lines = [f"QA verdict of the demo video: **{qa.get('verdict', '?')}**", "",
             "| check | status | value | threshold | detail |", "|---|---|---|---|---|"]
    for c in qa.get("checks", []):
        value = f"{c.get('value', '')} {c.get('unit') or ''}".strip()
        cells = [c.get("name", ""), c.get("status", ""), value, str(c.get("threshold", "")), c.get("detail", "")]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines)


def update_readme(block):
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = text.index(QA_BEGIN) + len(QA_BEGIN), text.index(QA_END)
    readme.write_text(text[:start] + "\n" + block + "\n" + text[end:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, help="a root whose newest demo episode has its final.mp4")
    ap.add_argument("--bin", type=Path, default=REPO / "acog-batch")
    args = ap.parse_args()
    if CHROMIUM is None:
        sys.exit("readme-images: chromium is not installed (sh contrib/install-deps.sh)")
    root = args.root.resolve() if args.root else demo_root(args.bin)
    episode = newest_episode(root)
    epdir = root / "channels" / "demo" / "episodes" / episode
    if not (epdir / "final.mp4").exists():
        sys.exit(f"readme-images: {epdir}/final.mp4 is missing; see {root}/run.log")
    OUT.mkdir(parents=True, exist_ok=True)
    sh(args.bin, "-C", root, "report", stdout=subprocess.DEVNULL)
    screenshots(root, episode)
    stills(epdir / "final.mp4")
    update_readme(qa_block(epdir))
    print(f"readme-images: wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} in {OUT}")


if __name__ == "__main__":
    main()
