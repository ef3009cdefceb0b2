#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of the feedback on long work: a command that waits for Ctrl-C
# (no -d, no -- CMD) says once on stderr what it traces and how to end it,
# whatever its output format, and nothing more; -d, -- CMD and -i print no
# such line; progress (record's line, a replay's share read) goes to a
# terminal only: piped runs print none. Prints one PASS or FAIL line per check;
# tests/live/run.sh counts them. Needs root.
#
#   tests/live/feedback.sh BUILD_DIR
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/feedback.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope

EXPECTED=10
WORK=
. "$(dirname "$0")/lib.sh"
lib_begin feedback "$KMS"
command -v script >/dev/null || { fail "feedback: script(1) not found (bsdutils)"; exit 1; }

ANNOUNCE='^Tracing kernel allocations .*\.\.\. Hit Ctrl-C to end\.$'

# waits NAME WANT ARGS...: kmemscope ARGS runs until it has announced itself,
# then gets SIGINT: it must exit 0, and its stderr hold the announcement once,
# matching WANT (a regex), and no other line but what record sums up at the end
waits() {
	name=$1
	want=$2
	shift 2
	"$KMS" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null &
	kpid=$!
	i=0
	while ! grep -q 'Hit Ctrl-C' "$WORK/err" && kill -0 "$kpid" 2>/dev/null &&
	      [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.5
	kill -INT "$kpid" 2>/dev/null
	RC=0
	wait "$kpid" || RC=$?
	n=$(grep -c "$ANNOUNCE" "$WORK/err")
	other=$(grep -v -e "$ANNOUNCE" -e '^Recorded [0-9]* events' "$WORK/err" | head -n 2)
	if [ "$RC" -eq 0 ] && [ "$n" -eq 1 ] && grep -q "$want" "$WORK/err" && [ -z "$other" ] &&
	   ! grep -q "$(printf '\r')" "$WORK/err"; then
		pass "$name"
	else
		fail "$name: exit $RC, $n announcements (want 1, as '$want'), other: $other"
	fi
}

waits "stat --json: one line, system-wide" \
	'system-wide (\(6 families\|[a-z_, ]*\))\.\.\.' stat --json -o "$WORK/stat.json"
waits "leaks (text): one line" 'system-wide' leaks --settle 0 -o "$WORK/leaks.txt"
waits "misuse --json: one line" 'system-wide' misuse --json
waits "stat -p -c -F: names what it traces" \
	"of pid $$ and its children, processes named sh (kmalloc, kmem_cache)\.\.\." \
	stat -p $$ -c sh -F slab -o /dev/null
waits "record, piped: one line naming the file, no progress" \
	"recording to $WORK/r.kmt\.\.\." record -o "$WORK/r.kmt" --settle 0

# quiet: nothing on stderr at all
quiet() {
	name=$1
	shift
	run timeout 60 "$KMS" "$@"
	if [ "$RC" -eq 0 ] && [ ! -s "$WORK/err" ]; then
		pass "$name"
	else
		fail "$name: exit $RC, stderr: $(head -c 300 "$WORK/err")"
	fi
}

quiet "stat -d: no announcement" stat -d 1 --json -o /dev/null
quiet "leaks -- CMD: no announcement" leaks --settle 0 -o /dev/null -- true
quiet "stat -i, piped: no progress" stat -i "$WORK/r.kmt" -o /dev/null

# on a terminal (script(1) gives it one): record's progress line
script -qec "$KMS record -o $WORK/t.kmt -d 2.5 --settle 0" "$WORK/tty" >/dev/null 2>&1
RC=$?
if [ "$RC" -eq 0 ] && grep -q "$(printf '\r').*s  [0-9]* events" "$WORK/tty" &&
   ! grep -q 'Hit Ctrl-C' "$WORK/tty"; then
	pass "record -d on a terminal: progress, no announcement"
else
	fail "record -d on a terminal: exit $RC: $(tr '\r' '\n' <"$WORK/tty" | head -n 3)"
fi
# the same recording, piped: the summary only
run "$KMS" record -o "$WORK/p.kmt" -d 1 --settle 0
if [ "$RC" -eq 0 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q '^Recorded' "$WORK/err" &&
   ! grep -q "$(printf '\r')" "$WORK/err"; then
	pass "record -d, piped: the summary, no progress"
else
	fail "record -d, piped: exit $RC: $(head -c 300 "$WORK/err")"
fi
