#!/bin/sh
# The demo: install what is needed, build, make a demo root, drop the sample
# idea, run the pipeline to the review gate, approve, publish, and print
# where the video is.  Run from the checkout: sh contrib/demo.sh
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
make -s
ROOT=${DEMO_ROOT:-$PWD/demo}
./acog-batch -C "$ROOT" init --demo
# A fresh idempotency key, so running the demo again makes a new episode.
key="demo-$(date +%s)"
sed "s/\"idea_source\": \"manual\"/\"idea_source\": \"manual\", \"idempotency_key\": \"$key\"/" \
	"$ROOT/channels/demo/sample-idea.json" > "$ROOT/spool/tmp/$key.json"
mv "$ROOT/spool/tmp/$key.json" "$ROOT/spool/incoming/$key.json"
echo "== dropped spool/incoming/$key.json; running the pipeline (logs: $ROOT/demo.log)"
./acog-batch -C "$ROOT" run --drain 2>>"$ROOT/demo.log"
echo "== spool after the run:"
( cd "$ROOT/spool" && ls -1 review failed rejected | sed 's/^/   /' )
ticket=$(ls "$ROOT/spool/review" | grep -v '\.' | tail -n 1 || true)
if [ -z "$ticket" ]; then
	echo "demo: no episode reached the review gate; see $ROOT/demo.log and spool/failed/*.error" >&2
	exit 1
fi
./acog-batch -C "$ROOT" status
echo "== approving at the review gate:"
echo "   ./acog-batch -C $ROOT approve $ticket --by demo --notes 'looks good'"
./acog-batch -C "$ROOT" approve "$ticket" --by demo --notes "looks good"
./acog-batch -C "$ROOT" run --drain 2>>"$ROOT/demo.log"
./acog-batch -C "$ROOT" status
id=$(./acog-batch -C "$ROOT" show "$ticket" --json | sed -n 's/^[[:space:]]*"id":[[:space:]]*"\([0-9a-f-]*\)".*/\1/p' | head -n 1)
video="$ROOT/channels/demo/episodes/$id/final.mp4"
echo "== published to $ROOT/channels/demo/outbox/$id/"
ffprobe -v error -show_entries stream=codec_name,width,height:format=duration -of compact "$video"
echo "== subtitles (also burned in): ${video%final.mp4}subtitles.srt"
echo "$video"
