#!/bin/sh
# Media cost of one demo episode (issues 10/12): the CPU seconds of every
# ffmpeg the avatar, broll and assembly stages run (a wrapper first in PATH
# times each one and files it under the stage whose output it writes),
# against one ffmpeg command encoding equivalent content: the finished
# video's own pictures and sound, decoded and encoded once more at the
# channel's frame, rate, preset and crf (the decode makes the reference a
# little dearer than a bare encode, so the ratios are slightly flattering).
# CPU time, not wall time, so a busy machine changes the ratio little.
# Generated b-roll is a recipe rendered inside the assembly's encode and the
# picture's QA is measured there too (issue 12), so the broll stage runs no
# ffmpeg and its figure is 0: that work is in assembly_encode.  Run it 3
# times and take the medians (the machine is shared).
# Usage: sh contrib/media-bench.sh [acog-batch binary]  (from the checkout)
set -eu
BIN=$(realpath "${1:-./acog-batch}")
ROOT=$(mktemp -d /tmp/acog-media-bench.XXXXXX)
REAL=$(command -v ffmpeg)
mkdir "$ROOT/bin"
cat >"$ROOT/bin/ffmpeg" <<WRAP
#!/bin/sh
for last; do :; done
/usr/bin/time -a -o "$ROOT/times" -f "%U %S \$last" "$REAL" "\$@"
WRAP
chmod +x "$ROOT/bin/ffmpeg"
"$BIN" -C "$ROOT" init --demo >/dev/null
sed -i 's/review: true /review: false/' "$ROOT/channels/demo/channel.yaml"
cp "$ROOT/channels/demo/sample-idea.json" "$ROOT/spool/incoming/a.json"
PATH="$ROOT/bin:$PATH" "$BIN" -C "$ROOT" run --drain 2>"$ROOT/run.log"
ep=$(ls -d "$ROOT"/channels/demo/episodes/*/ | head -n 1)
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$ep/final.mp4")
/usr/bin/time -a -o "$ROOT/times" -f "%U %S reference" "$REAL" -nostdin -loglevel error -y \
	-i "$ep/final.mp4" -vf "format=yuv420p" -c:v libx264 -preset veryfast -crf 23 -r 25 \
	-c:a aac -b:a 128k -ar 48000 -movflags +faststart -f mp4 "$ROOT/ref.mp4"
awk -v dur="$dur" '
	{ s = $1 + $2; k = "other" }
	$3 ~ /avatar\//      { k = "avatar" }
	$3 ~ /broll\//       { k = "broll" }
	$3 ~ /final/         { k = "assembly_encode" }
	$3 ~ /thumbnail/     { k = "assembly_thumbnail" }
	$3 == "-"            { k = "assembly_measure" }
	$3 == "reference"    { k = "reference" }
	{ cpu[k] += s; n[k]++ }
	END {
		media = cpu["avatar"] + cpu["broll"] + cpu["assembly_encode"] + cpu["assembly_thumbnail"] + cpu["assembly_measure"]
		asm = cpu["assembly_encode"] + cpu["assembly_thumbnail"] + cpu["assembly_measure"]
		printf "episode %.1f s of 1080p25; ffmpeg CPU seconds (runs):\n", dur
		for (k in cpu) printf "  %-20s %7.1f (%d)\n", k, cpu[k], n[k]
		printf "assembly / reference:     %.2f (encode alone %.2f)\n", asm / cpu["reference"], cpu["assembly_encode"] / cpu["reference"]
		printf "media stages / reference: %.2f\n", media / cpu["reference"]
	}' "$ROOT/times"
echo "(root: $ROOT)"
