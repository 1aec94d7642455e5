#!/bin/sh
# The test suite: install what is needed, then
#   0. make lint        - one formatting style (.clang-format) over the C sources
#   1. make test        - warning-free build, ASan+UBSan build, unit tests, every black-box test
#   2. make test-static - the static binary (Debian sources, c-ares, OpenSSL) through the
#                         end-to-end tests, cloud providers over HTTPS with a self-signed CA
#   3. make fuzz        - every libFuzzer target for ACOG_FUZZ_SECONDS (default 60) each, two
#                         at a time; its "N passed, N failed in Ts" line counts one per target
#                         (ACOG_FUZZ_SECONDS=0 skips it)
# and a closing "N passed, N failed" line for both runs together.
set -u
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh || exit $?
log=$(mktemp)
status=0
lint_failed=0
if make -s lint >"$log" 2>&1; then
	echo "lint: the C sources match .clang-format"
else
	cat "$log"
	echo "lint: formatting differs from .clang-format; run \`make format\`"
	lint_failed=1
fi
: >"$log"
make -j2 -s test 2>&1 | tee "$log" || status=1
make -s test-clock 2>&1 | tee -a "$log" || status=1
if [ "${ACOG_SKIP_STATIC:-0}" != 1 ]; then
	make -s test-static 2>&1 | tee -a "$log" || status=1
fi
fuzz_secs=${ACOG_FUZZ_SECONDS:-60}
if [ "$fuzz_secs" -gt 0 ]; then
	make -s -j2 fuzz-build >"$log.fuzz" 2>&1 && make -s fuzz SECONDS="$fuzz_secs" >>"$log.fuzz" 2>&1
	cat "$log.fuzz" | tee -a "$log"
	grep -q '^fuzz: [0-9]* passed' "$log.fuzz" ||
		echo "fuzz: 0 passed, 1 failed in 0s (the fuzz targets did not build)" | tee -a "$log"
	rm -f "$log.fuzz"
fi
# pytest -q closes with a line like "1 failed, 12 passed in 3.20s (0:00:03)".
summary=$(grep -E '[0-9]+ (passed|failed|errors?)(,| in )' "$log" | grep -E ' in [0-9.]+s')
passed=$(printf '%s\n' "$summary" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(printf '%s\n' "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')
failed=$((failed + lint_failed))
rm -f "$log"
[ "$failed" -gt 0 ] && status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
