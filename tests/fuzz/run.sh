#!/bin/sh
# run.sh SECONDS TARGET... - runs each libFuzzer target (build/fuzz/fuzz_NAME)
# for SECONDS, two at a time (ACOG_FUZZ_JOBS), from its seeds
# (tests/fuzz/seeds/NAME) and a working corpus kept in build/fuzz/corpus/NAME.
# Prints the executions of each target; a crash, leak or timeout found is
# copied to tests/fuzz/regress/NAME/ (fix it in src/, keep the input: make
# test replays it) and fails the run.  Closes with "N passed, N failed in Ts"
# for contrib/test.sh's count.
set -u
secs=$1
shift
jobs=${ACOG_FUZZ_JOBS:-2}
out=build/fuzz/out
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
here=$(pwd)

one() {
	t=$1
	rm -rf "build/fuzz/crash/$t"
	mkdir -p "build/fuzz/corpus/$t" "build/fuzz/crash/$t"
	# absolute paths: some targets chdir into a scratch folder
	nice -n 10 "$here/build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 -artifact_prefix="$here/build/fuzz/crash/$t/" \
		"$here/build/fuzz/corpus/$t" "$here/tests/fuzz/seeds/$t" >"$out/$t.log" 2>&1
	echo $? >"$out/$t.rc"
}

# two at a time: start one per free slot, wait for the oldest batch
set -- "$@"
while [ $# -gt 0 ]; do
	n=0
	while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
		one "$1" &
		shift
		n=$((n + 1))
	done
	wait
done

passed=0
failed=0
for f in "$out"/*.rc; do
	t=$(basename "$f" .rc)
	rc=$(cat "$f")
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -oE '[0-9]+$')
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "fuzz_$t: ${execs:-0} executions in ${secs}s, no crash"
	else
		failed=$((failed + 1))
		for c in "build/fuzz/crash/$t"/*; do
			[ -f "$c" ] || continue
			mkdir -p "tests/fuzz/regress/$t"
			cp "$c" "tests/fuzz/regress/$t/" && echo "fuzz_$t: kept $c in tests/fuzz/regress/$t/"
		done
		grep -E 'ERROR|SUMMARY|runtime error' "$out/$t.log" | head -5
		echo "fuzz_$t: FAILED after ${execs:-?} executions (exit $rc); log: $out/$t.log"
	fi
done
echo "fuzz: $passed passed, $failed failed in $(($(date +%s) - start)).0s"
[ "$failed" = 0 ]
