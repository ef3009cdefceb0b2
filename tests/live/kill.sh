#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# A recorder killed at any moment leaves a file that reads up to its last
# whole block. kmemscope stat --record FILE -d 20 records a loop of
# tests/live/trigger (-p: the other users of this machine do not make the
# file larger) and is killed:
# - with SIGKILL at several moments (as the file appears, before its META
#   block; as tracing begins; after one DATA block, after a few: blocks are
#   sealed every second): stat -i FILE --json and info -i FILE --json exit 0
#   and report the file cut short; stat counts as many events as the whole
#   DATA blocks hold, info as many blocks, records, events and metadata
#   records, all counted apart by tests/tracefile.py (written from the
#   layouts, not from the reader). A file without a whole META block is
#   refused by both: exit 2, one line.
# - with SIGINT and SIGTERM: the file ends with its END block, not cut short,
#   with the same counts.
# Prints PASS/FAIL lines (tests/live/run.sh counts them). Needs root.
#
#   tests/live/kill.sh BUILD_DIR
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/kill.sh BUILD_DIR" >&2; exit 2; }
KMS=$1/kmemscope
TRIGGER=$1/tests/trigger
COUNT="$(cd "$(dirname "$0")/.." && pwd)/tracefile.py"
EXPECTED=6
LOAD=
. "$(dirname "$0")/lib.sh"
lib_cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
}
lib_begin kill "$KMS" "$TRIGGER"
command -v zstd >/dev/null || { fail "kill: zstd not found (make deps)"; exit 1; }

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
# tracing begins (-v says so; the META block is written). The file is
# $WORK/t.kmt; LATE says why the moment never came.
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

# read the file back: tracefile.py's count, stat -i and info -i; res says how it went
read_back() {
	if ! python3 "$COUNT" count "$WORK/t.kmt" >"$WORK/count" 2>"$WORK/count.err"; then
		res="tracefile.py: $(tail -n 1 "$WORK/count.err")"
		return
	fi
	SRC=0
	"$KMS" stat -i "$WORK/t.kmt" --json -o "$WORK/stat.json" </dev/null >/dev/null \
		2>"$WORK/stat.err" || SRC=$?
	IRC=0
	"$KMS" info -i "$WORK/t.kmt" --json -o "$WORK/info.json" </dev/null >/dev/null \
		2>"$WORK/info.err" || IRC=$?
	res=$(python3 - "$WORK" "$SRC" "$IRC" "$1" 2>&1 <<'PY'
import json, re, sys
work, src, irc, want_cut = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "cut"
c = json.load(open(f"{work}/count"))
what = (f"{c['size']} bytes, {c['blocks']} blocks ({c['data_blocks']} DATA), "
        f"stopped at: {c['stopped']}")
if not c["meta"]:
    bad = []
    for name, rc in ("stat", src), ("info", irc):
        lines = open(f"{work}/{name}.err").read().strip().split("\n")
        if not want_cut or rc != 2 or len(lines) != 1 or not lines[0]:
            bad.append(f"{name} exit {rc}, stderr {lines}")
    print(f"{what}: no META block: " + ("; ".join(bad) or f"refused, exit 2: {lines[0]}"))
    sys.exit(0 if bad else 42)
if src or irc:
    print(f"{what}: stat -i exit {src}, info -i exit {irc}")
    sys.exit(0)
q = json.load(open(f"{work}/stat.json"))["quality"]
info = json.load(open(f"{work}/info.json"))
events = c["events"] + c["events_before_begin"]
got = {"stat cut_short": q["cut_short"], "info cut_short": info["end"]["cut_short"],
       "stat events": q["events"], "info blocks": info["blocks"]["total"],
       "info records": info["records"]["records"],
       "info trace_events": info["records"]["trace_events"],
       "info calibration_events": info["records"]["calibration_events"],
       "info metadata": info["records"]["metadata"]}
want = {"stat cut_short": want_cut, "info cut_short": want_cut, "stat events": events,
        "info blocks": c["blocks"], "info records": c["records"],
        "info trace_events": c["events"], "info calibration_events": c["events_before_begin"],
        "info metadata": c["metas"]}
bad = [f"{k} {got[k]} (want {want[k]})" for k in want if got[k] != want[k]]
if c["ended"] == want_cut:
    bad.append("the file " + ("ends" if c["ended"] else "does not end") + " with END")
# a file cut short: stat's warning says what was recovered
said = re.search(r"recovered (\d+) blocks, (\d+) records", open(f"{work}/stat.err").read())
if want_cut and (not said or [int(n) for n in said.groups()] != [c["blocks"], c["records"]]):
    bad.append(f"stat's warning: {said.group(0) if said else None}")
print(f"{what}: " + ("; ".join(bad) if bad else
      f"{events} events, {c['records']} records in both reports and in the whole blocks"))
sys.exit(0 if bad else 42)
PY
)
	# 42: the checks ran and held (a crash of the checker must not pass)
	status=$?
	res=$(printf '%s\n' "$res" | tail -n 1)
	[ "$status" -eq 42 ]
}

for at in "file 0" "tracing 0.3" "tracing 1.5" "tracing 3.5"; do
	# shellcheck disable=SC2086
	record KILL $at
	t="kill: SIGKILL ${at#* }s after the ${at% *} $([ "${at% *}" = file ] &&
		echo appears || echo begins)"
	if [ -n "$LATE" ]; then
		fail "$t: $LATE"
	elif read_back cut; then
		pass "$t: $res"
	else
		fail "$t: $res"
	fi
done
for sig in INT TERM; do
	t="kill: SIG$sig 2s after tracing begins"
	record "$sig" tracing 2
	if [ -n "$LATE" ]; then
		fail "$t: $LATE"
	elif [ "$RC" -ne 0 ]; then
		fail "$t: the recorder exited $RC: $(head -c 200 "$WORK/rec.err")"
	elif read_back whole; then
		pass "$t: the file ends cleanly: $res"
	else
		fail "$t: $res"
	fi
done
