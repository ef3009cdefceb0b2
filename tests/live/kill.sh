#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# A recorder killed at any moment leaves a file that reads up to its last
# whole block. kmemscope stat --record FILE -d 20 records a loop of
# tests/live/trigger (-p: the other users of this machine do not make the
# file larger) and is killed:
# - with SIGKILL at several moments (as the file appears, before its META
#   block; as tracing begins; after one DATA block, after a few: blocks are
#   sealed every second): stat -i FILE --json exits 0, reports
#   cut_short, and counts as many events as the whole DATA blocks hold,
#   counted apart by tests/tracefile.py (written from the layouts, not from
#   the reader). A file without a whole META block is refused: exit 2, one line.
# - with SIGINT and SIGTERM: the file ends with its END block, not cut short.
# Prints PASS/FAIL lines (tests/live/run.sh counts them). Needs root.
#
#   tests/live/kill.sh BUILD_DIR
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/kill.sh BUILD_DIR" >&2; exit 2; }
KMS=$1/kmemscope
TRIGGER=$1/tests/trigger
COUNT="$(cd "$(dirname "$0")/.." && pwd)/tracefile.py"
WORK=$(mktemp -d /tmp/kmemscope-kill.XXXXXX)
LOAD=
EXPECTED=6
REPORTED=0
FAILED=0
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	rm -rf "$WORK"
	if [ "$REPORTED" -ne "$EXPECTED" ]; then
		echo "FAIL kill: $REPORTED of $EXPECTED checks reported"
		FAILED=$((FAILED + 1))
	fi
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
trap cleanup EXIT

pass() { echo "PASS kill: $*"; REPORTED=$((REPORTED + 1)); }
fail() { echo "FAIL kill: $*"; REPORTED=$((REPORTED + 1)); FAILED=$((FAILED + 1)); }

[ -x "$KMS" ] || { fail "setup: $KMS not built"; exit 1; }
[ -x "$TRIGGER" ] || { fail "setup: $TRIGGER not built"; exit 1; }
command -v zstd >/dev/null || { fail "setup: zstd not found (make deps)"; exit 1; }

# kmalloc and kmem_cache all the time, some 10^5 events a second: enough for
# a DATA block every second, few enough for tracefile.py to count them quickly
( while :; do "$TRIGGER" pipes 1000 >/dev/null 2>&1; sleep 0.1; done ) &
LOAD=$!

# begun WHEN: the moment record() waits for has come
begun() {
	if [ "$1" = file ]; then
		[ -e "$WORK/t.kmt" ]
	else
		grep -q '^tracing' "$WORK/rec.err"
	fi
}

# record SIGNAL WHEN SECONDS: record, send SIGNAL SECONDS after WHEN: the file
# appears (before its META block, as kmemscope attaches and calibrates) or
# tracing begins (-v says so; the META block is written). The file is $WORK/t.kmt.
record() {
	rm -f "$WORK/t.kmt"
	"$KMS" stat -v --record "$WORK/t.kmt" -d 20 -p "$LOAD" -o /dev/null </dev/null \
		>/dev/null 2>"$WORK/rec.err" &
	kpid=$!
	# start-up takes ~1 s here, much more on a loaded machine: up to 2 min
	deadline=$(($(date +%s) + 120))
	LATE=
	while ! begun "$2"; do
		if ! kill -0 "$kpid" 2>/dev/null; then
			LATE="the recorder ended first: $(head -c 200 "$WORK/rec.err" | tr '\n' '|')"
			break
		fi
		if [ "$(date +%s)" -gt "$deadline" ]; then
			LATE="no sign that the $2 began after 120 s"
			break
		fi
		sleep 0.01
	done
	sleep "$3"
	kill -s "$1" "$kpid" 2>/dev/null
	wait "$kpid"
	RC=$?
}

# replay the file; $WORK/count: what its whole blocks hold
replay() {
	if ! python3 "$COUNT" count "$WORK/t.kmt" >"$WORK/count" 2>"$WORK/count.err"; then
		echo "tracefile.py: $(tail -n 1 "$WORK/count.err")" >"$WORK/count"
		return 1
	fi
	RC=0
	"$KMS" stat -i "$WORK/t.kmt" --json -o "$WORK/r.json" </dev/null >/dev/null \
		2>"$WORK/r.err" || RC=$?
}

# the replayed report against the count: exit status and a line saying why
verdict() {
	python3 - "$WORK/count" "$WORK/r.json" "$RC" "$WORK/r.err" "$1" <<'PY'
import json, re, sys
c = json.load(open(sys.argv[1]))
rc, err, want_cut = int(sys.argv[3]), open(sys.argv[4]).read(), sys.argv[5] == "cut"
what = (f"{c['size']} bytes, {c['blocks']} blocks ({c['data_blocks']} DATA), "
        f"stopped at: {c['stopped']}")
if not c["meta"]:
    lines = err.strip().split("\n")
    ok = want_cut and rc == 2 and len(lines) == 1 and lines[0]
    print(f"{what}: no META block, exit {rc}, stderr {lines}")
    sys.exit(not ok)
q = json.load(open(sys.argv[2]))["quality"]
events = c["events"] + c["events_before_begin"]
ok = rc == 0 and q["cut_short"] == want_cut and c["ended"] != want_cut and q["events"] == events
# a file cut short: the warning says what was recovered
said = re.search(r"recovered (\d+) blocks, (\d+) records", err)
if want_cut:
    ok = ok and said and [int(n) for n in said.groups()] == [c["blocks"], c["records"]]
print(f"{what}: exit {rc}, cut_short {q['cut_short']}, {q['events']} events read, "
      f"{events} in the whole blocks" + (f"; '{said.group(0)}' of {c['records']} records"
                                         if said else ""))
sys.exit(not ok)
PY
}

for at in "file 0" "tracing 0.3" "tracing 1.5" "tracing 3.5"; do
	# shellcheck disable=SC2086
	record KILL $at
	t="SIGKILL ${at#* }s after the ${at% *} $([ "${at% *}" = file ] && echo appears || echo begins)"
	if [ -n "$LATE" ]; then
		fail "$t: $LATE"
	elif replay && verdict cut >"$WORK/why"; then
		pass "$t: $(cat "$WORK/why")"
	else
		fail "$t: $(cat "$WORK/why" "$WORK/count" 2>/dev/null | head -c 400)"
	fi
done
for sig in INT TERM; do
	record "$sig" tracing 2
	if [ -n "$LATE" ]; then
		fail "SIG$sig 2s after tracing begins: $LATE"
	elif [ "$RC" -ne 0 ]; then
		fail "SIG$sig 2s after tracing begins: the recorder exited $RC: $(head -c 200 "$WORK/rec.err")"
	elif replay && verdict whole >"$WORK/why"; then
		pass "SIG$sig 2s after tracing begins: the file ends cleanly: $(cat "$WORK/why")"
	else
		fail "SIG$sig 2s after tracing begins: $(cat "$WORK/why" "$WORK/count" 2>/dev/null | head -c 400)"
	fi
done
