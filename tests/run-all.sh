#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Every test tier, in order: unit (pure logic), fuzz (the trace reader, a short
# run over the seed corpus: FUZZ_SECONDS, 25 here), gate (the CI gate's commands
# on reports the test writes), packaging (man pages, install, completion, a
# packager's build), live (this kernel, as root), qemu (Debian's 6.1, 6.12 and
# 6.1-rt in QEMU with the companion module). Each tier prints a
# line "TIER: N passed, M failed"; this script adds them up and exits non-zero
# if any tier failed or did not report. A tier that needs root or BPF and
# cannot get it fails: it never skips into a pass. The failed checks' lines are
# printed again at the end, so a log cut to its tail (CI's) still names them.
#   tests/run-all.sh BUILD_DIR [TIER...]
set -u
out=${1:?usage: run-all.sh BUILD_DIR [TIER...]}
shift
tiers=${*:-unit fuzz gate packaging live qemu}
export FUZZ_SECONDS=${FUZZ_SECONDS:-25}
total_pass=0
total_fail=0
log=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$log" "$failures"' EXIT

for t in $tiers; do
	echo "=== $t tests"
	start=$(date +%s)
	make --no-print-directory OUTPUT="$out" "$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# the tiers' own failure lines: "FAIL ...", "[6.1] name  FAIL ...", cmocka's
	grep -E '(^|[[:space:]])FAIL([[:space:]:]|$)|^\[  (FAILED|ERROR) ' "$log" |
		grep -v -E '(^|[[:space:]])PASS[[:space:]]' | head -n 50 | sed "s/^/$t: /" >>"$failures"
	line=$(grep -E "^$t: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "$t: the tier reported no result (exit status $rc): counted as 1 failure"
		total_fail=$((total_fail + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
	f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
	if [ "$f" = 0 ] && [ "$rc" != 0 ]; then
		echo "$t: tier exited with status $rc: counted as 1 failure"
		f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	echo "=== $t: $p passed, $f failed ($(( $(date +%s) - start )) s)"
done

if [ -s "$failures" ]; then
	echo "=== failed checks (their lines from above)"
	cat "$failures"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
