#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fuzz the trace reader for SECONDS, starting from the checked-in seeds
# (tests/fuzz/corpus: small recordings and damaged variants of them). A crash,
# a sanitizer report, a leak, a hang (5 s on one input) or an input using
# over 1 GB fails the run; the input that did it is left in OUT.
#
#   tests/fuzz/run.sh FUZZER SECONDS OUT      (make fuzz, FUZZ_SECONDS=60)
# Last line: "fuzz: N passed, M failed".
set -u

[ $# -eq 3 ] || { echo "usage: tests/fuzz/run.sh FUZZER SECONDS OUT" >&2; exit 2; }
FUZZER=$1
SECONDS_=$2
OUT=$3
SEEDS=$(cd "$(dirname "$0")" && pwd)/corpus

result() {
	echo "fuzz: $1 passed, $2 failed"
	exit "$2"
}

[ -x "$FUZZER" ] || { echo "FAIL $FUZZER not built"; result 0 1; }
[ -n "$(ls "$SEEDS")" ] || { echo "FAIL no seeds in $SEEDS"; result 0 1; }
# new inputs go to a corpus of this run, the seeds stay as they are
rm -rf "$OUT"
mkdir -p "$OUT/corpus" || result 0 1
RC=0
"$FUZZER" -max_total_time="$SECONDS_" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$OUT/" "$OUT/corpus" "$SEEDS" >"$OUT/log" 2>&1 || RC=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/log")
if [ "$RC" -eq 0 ] && [ -n "$runs" ]; then
	echo "PASS trace reader fuzzed for ${SECONDS_}s: $runs inputs, $(ls "$OUT/corpus" | wc -l) new in the corpus"
	result 1 0
fi
echo "FAIL trace reader fuzzing: exit $RC; the input: $(ls "$OUT"/crash-* "$OUT"/leak-* \
	"$OUT"/timeout-* "$OUT"/oom-* 2>/dev/null | head -n 1)"
grep -E -m 5 'ERROR|SUMMARY|runtime error' "$OUT/log"
result 0 1
