#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run cmocka unit test binaries and sum their results.
# usage: tests/unit/run.sh BIN...
# Last line, always: "unit: N passed, M failed". Exit status non-zero when a
# test failed, or when a binary crashed or printed no cmocka result (each such
# binary counts as one failure).

here=$(cd "$(dirname "$0")" && pwd)
: "${KMS_UNIT_DATA:=$here/data}"
export KMS_UNIT_DATA

passed=0
failed=0
skipped=0
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT

for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "unit: $name: not an executable" >&2
		failed=$((failed + 1))
		continue
	fi
	CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$out" 2>&1
	rc=$?
	cat "$out"
	# cmocka: "[  PASSED  ] 5 test(s)." "[  FAILED  ] 1 test(s), listed below:"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	if [ -z "$p" ] && [ -z "$f" ]; then
		echo "unit: $name: no cmocka result (exit status $rc)" >&2
		failed=$((failed + 1))
		continue
	fi
	p=${p:-0}
	f=${f:-0}
	s=${s:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# a summary but a bad exit: crashed after it, or a group setup failed
		echo "unit: $name: exit status $rc with no failed test" >&2
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
done

[ "$skipped" -gt 0 ] && echo "unit: $skipped skipped"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$#" -gt 0 ]
