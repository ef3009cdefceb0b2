#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live vs replay, the acceptance test of trace files (issue #8): a command run
# with --record FILE --json and the same command on -i FILE must give the same
# JSON document apart from "source" (tests/live/jsondiff.py prints where they
# differ). Then what only a file can do: filters and time windows applied
# offline, and leaks on a file that stat recorded. Prints one PASS or FAIL line
# per check; tests/live/run.sh counts them.
#
#   tests/live/equal.sh BUILD_DIR
#
# The load is tests/live/trigger (pipes: kmalloc and kmem_cache; fork: percpu,
# vmalloc, page) and whatever else the machine runs for the system-wide runs.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/equal.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
DIFF="python3 $HERE/jsondiff.py"

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=18
. "$(dirname "$0")/lib.sh"
lib_begin equal "$KMS" "$TRIGGER"

# the worker pid of the load's first trigger (pipes)
worker() { sed -n 's/^trigger mode=.* worker=\([0-9]*\) status=0$/\1/p' "$1" | head -n 1; }

# json FILE EXPR: print a Python expression over the document d (jq is not a dependency)
json() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1" "$2"
}

# replay NAME CMD [OPTIONS]: CMD -i $WORK/NAME.kmt --json, compared with $WORK/NAME.live.json.
# The live run must have seen something: an empty report equals any other empty one.
replay() {
	name=$1
	cmd=$2
	shift 2
	rc=0
	"$KMS" "$cmd" -i "$WORK/$name.kmt" -n 0 --json -o "$WORK/$name.replay.json" "$@" \
		2>"$WORK/$name.replay.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$name: $cmd -i exit $rc: $(head -c 200 "$WORK/$name.replay.err" | tr '\n' '|')"
		return
	fi
	events=$(json "$WORK/$name.live.json" 'd["quality"]["events"]')
	if $DIFF "$WORK/$name.live.json" "$WORK/$name.replay.json" >"$WORK/$name.diff" 2>&1 &&
		[ "$events" -gt 0 ]; then
		pass "$name: $cmd -i gives the live report ($events events," \
			"$(wc -c <"$WORK/$name.kmt") bytes recorded)"
	else
		fail "$name: $events events; live and replay differ at" \
			"$(wc -l <"$WORK/$name.diff") path(s): $(head -n 5 "$WORK/$name.diff" | tr '\n' '|')"
	fi
}

# cmd_run NAME CMD OPTIONS... -- PROG...: record while PROG runs under kmemscope
cmd_run() {
	name=$1
	cmd=$2
	shift 2
	rc=0
	timeout 120 "$KMS" "$cmd" --record "$WORK/$name.kmt" -n 0 --json -o "$WORK/$name.live.json" \
		"$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$name: live exit $rc: $(head -c 200 "$WORK/$name.err" | tr '\n' '|')"
		return 1
	fi
}

# wait_live NAME PID: the live kmemscope in the background ends well
wait_live() {
	rc=0
	wait "$2" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$1: live exit $rc: $(grep -v '^tracing' "$WORK/$1.err" | head -c 200 | tr '\n' '|')"
		return 1
	fi
}

# load_run NAME CMD OPTIONS...: record for -d 2 while the trigger loads the system once
# kmemscope says it is tracing (-v); the trigger's output goes to $WORK/NAME.load
load_run() {
	name=$1
	cmd=$2
	shift 2
	timeout 120 "$KMS" "$cmd" -v -d 2 --record "$WORK/$name.kmt" -n 0 --json \
		-o "$WORK/$name.live.json" "$@" >/dev/null 2>"$WORK/$name.err" </dev/null &
	kpid=$!
	wait_tracing "$WORK/$name.err"
	end=$(($(date +%s%N) + 1500000000))
	{ "$TRIGGER" pipes 20000 && "$TRIGGER" fork 30; } >"$WORK/$name.load" 2>&1 ||
		echo "trigger failed" >>"$WORK/$name.load"
	# a little load into the second half of the 2 s window, so that both halves of it
	# allocate on a quiet machine too (the time windows below split it in two). It
	# stops 0.5 s before the end: a trigger exec'd as the window closes would be named
	# "trigger" (its exec's task record) with only the allocations of its fork, made
	# under its parent's name, and -c trigger rightly leaves those out.
	while kill -0 "$kpid" 2>/dev/null && [ "$(date +%s%N)" -lt "$end" ]; do
		"$TRIGGER" pipes 100 >/dev/null 2>&1
		sleep 0.05
	done &
	lpid=$!
	wait_live "$name" "$kpid"
	wait "$lpid"
}

# pid_run NAME CMD OPTIONS...: record -p PID of a trigger that starts once kmemscope traces
pid_run() {
	name=$1
	cmd=$2
	shift 2
	mkfifo "$WORK/$name.go"
	sh -c 'read x < "$1"; exec "$2" pipes 20000' sh "$WORK/$name.go" "$TRIGGER" \
		>"$WORK/$name.load" 2>&1 &
	tpid=$!
	timeout 120 "$KMS" "$cmd" -v -d 2 -p "$tpid" --record "$WORK/$name.kmt" -n 0 --json \
		-o "$WORK/$name.live.json" "$@" >/dev/null 2>"$WORK/$name.err" </dev/null &
	kpid=$!
	wait_tracing "$WORK/$name.err"
	echo go >"$WORK/$name.go"
	wait "$tpid"
	wait_live "$name" "$kpid"
}

# --- live vs replay: stat, leaks, misuse; system-wide, -- CMD, -p, -c ----------

load_run stat-system stat && replay stat-system stat
cmd_run stat-cmd stat -- "$TRIGGER" fork 50 && replay stat-cmd stat
pid_run stat-pid stat && replay stat-pid stat
load_run stat-comm stat -c trigger && replay stat-comm stat
# what the file says about the recording decides the report, not the replay's defaults
cmd_run stat-bare stat --no-context --no-stacks -- "$TRIGGER" pipes 2000 &&
	replay stat-bare stat

# leaks settles 1 s by default: the file holds its SETTLE mark and the frees after it
load_run leaks-system leaks && replay leaks-system leaks
cmd_run leaks-cmd leaks -- "$TRIGGER" pipes 2000 && replay leaks-cmd leaks
pid_run leaks-pid leaks --stacks every && replay leaks-pid leaks
load_run leaks-comm leaks -c trigger --settle 0 && replay leaks-comm leaks
# growth snapshots: the replay takes them where the recording's ticks fell
load_run leaks-interval leaks -I 0.5 && replay leaks-interval leaks -I 0.5

load_run misuse-system misuse && replay misuse-system misuse
cmd_run misuse-cmd misuse --site-only -- "$TRIGGER" fork 50 && replay misuse-cmd misuse
pid_run misuse-pid misuse && replay misuse-pid misuse

# the settle period was recorded and replayed, not skipped
if [ -f "$WORK/leaks-system.replay.json" ] &&
	[ "$(json "$WORK/leaks-system.replay.json" 'd["summary"]["settle_ms"] >= 900')" = True ]; then
	pass "leaks-system: the default settle (1 s) is in the file: settle_ms" \
		"$(json "$WORK/leaks-system.replay.json" 'd["summary"]["settle_ms"]')"
else
	fail "leaks-system: no settle period replayed"
fi

# --- offline filters on a system-wide recording ---------------------------------
# -p on a file keeps exactly the processes named: the file records no forks, so
# unlike a live -p their children are not followed. -c keeps a process from the
# task record naming it COMM: a process that execs the comm (trigger under a shell)
# counts from its exec, while its fork-to-exec allocations (named after its parent)
# are in the unfiltered row; a process forked already named COMM (trigger's worker)
# is counted whole.
F=$WORK/stat-system
# filtered NAME OPTIONS...: stat -i of that file with OPTIONS to $WORK/NAME.json
filtered() {
	out=$1
	shift
	rc=0
	"$KMS" stat -i "$F.kmt" -n 0 --json -o "$WORK/$out.json" "$@" 2>"$WORK/$out.err" || rc=$?
	[ "$rc" -eq 0 ] || fail "stat -i $*: exit $rc: $(head -c 200 "$WORK/$out.err" | tr '\n' '|')"
	return "$rc"
}
pw=$(worker "$F.load")
if [ -n "$pw" ] && [ -f "$F.replay.json" ] && filtered filt-p -p "$pw"; then
	if python3 - "$F.replay.json" "$WORK/filt-p.json" "$pw" >"$WORK/filt-p.check" 2>&1 <<'PY'; then
import json, sys
whole, part, pid = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
row = [p for p in whole["processes"] if p["pid"] == pid]
rows = part["processes"]
allocs = sum(f["allocs"] for f in part["families"])
print("worker %d: %s allocs unfiltered, %s with -p, families sum %d" %
      (pid, row and row[0]["allocs"], rows and rows[0]["allocs"], allocs))
sys.exit(0 if row and row[0]["allocs"] > 0 and rows == row and allocs == row[0]["allocs"] else 1)
PY
		pass "stat -i -p WORKER: its row of the unfiltered replay, whole: $(cat "$WORK/filt-p.check")"
	else
		fail "stat -i -p WORKER: $(tail -n 1 "$WORK/filt-p.check")"
	fi
else
	fail "stat -i -p WORKER: no worker pid or replay (load: $(tail -n 1 "$F.load" 2>/dev/null))"
fi
if [ -n "$pw" ] && [ -f "$F.replay.json" ] && filtered filt-c -c trigger; then
	if python3 - "$F.replay.json" "$WORK/filt-c.json" "$pw" >"$WORK/filt-c.check" 2>&1 <<'PY'; then
import json, sys
whole, part, pid = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
named = {p["pid"]: p for p in whole["processes"] if p["comm"] == "trigger"}
got = {p["pid"]: p for p in part["processes"]}
bad = [p for p in got if p not in named or got[p]["allocs"] > named[p]["allocs"]]
print("%d trigger processes unfiltered, %d with -c; worker %s: %s and %s allocs" %
      (len(named), len(got), pid, named.get(pid, {}).get("allocs"), got.get(pid, {}).get("allocs")))
sys.exit(0 if pid in named and got.get(pid) == named[pid] and set(got) == set(named) and not bad
         else 1)
PY
		pass "stat -i -c trigger: the trigger processes, the worker whole, none above its" \
			"unfiltered row: $(cat "$WORK/filt-c.check")"
	else
		fail "stat -i -c trigger: $(tail -n 1 "$WORK/filt-c.check")"
	fi
else
	fail "stat -i -c trigger: no worker pid or replay"
fi

# --- time windows: [--from, --to) --------------------------------------------------
if [ -f "$F.replay.json" ]; then
	half=$(json "$F.replay.json" '"%.3f" % (d["duration_ns"] / 2e9)')
	if filtered win-1 --to "$half" && filtered win-2 --from "$half"; then
		if python3 - "$F.replay.json" "$WORK/win-1.json" "$WORK/win-2.json" \
			>"$WORK/win.check" 2>&1 <<'PY'; then
import json, sys
whole, a, b = (json.load(open(p)) for p in sys.argv[1:4])
fam = lambda d: {f["family"]: f for f in d["families"]}
W, A, B = fam(whole), fam(a), fam(b)
bad = [(k, n, W[n][k], A[n][k], B[n][k]) for n in W for k in ("allocs", "bytes_alloc", "fails")
       if A[n][k] + B[n][k] != W[n][k] or A[n][k] > W[n][k] or B[n][k] > W[n][k]]
tot = lambda d: sum(f["allocs"] for f in d["families"])
print("allocs %d + %d = %d%s" % (tot(a), tot(b), tot(whole), "; off: %s" % bad if bad else ""))
sys.exit(0 if not bad and tot(a) > 0 and tot(b) > 0 else 1)
PY
			pass "stat -i --to T, --from T: each window within the whole, their sum the" \
				"whole: $(cat "$WORK/win.check")"
		else
			fail "stat -i --to/--from: $(tail -n 1 "$WORK/win.check")"
		fi
	fi
else
	fail "stat -i --to/--from: no replay of stat-system"
fi

# --- leaks on a file stat recorded: it works, says what the file lacks, and no slab
# row is certain (no stack: stack_unknown)
rc=0
"$KMS" leaks -i "$F.kmt" -n 0 --json -o "$WORK/stat-leaks.json" 2>"$WORK/stat-leaks.err" || rc=$?
if [ "$rc" -eq 0 ] && python3 - "$WORK/stat-leaks.json" >"$WORK/stat-leaks.check" 2>&1 <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
notes = d["notes"]
say = [n.split(":")[0] for n in notes if n.startswith(("stacks ", "settle "))]
# slab rows have no stack in such a file: their callers' classes are unknown, never
# certain. A site in an allocator's wrapper (kvmalloc) has its stack taken whenever any is,
# and such a row (more than its site) is judged as usual.
slab = [r for r in d["leaks"] if r["family"] in ("kmalloc", "kmem_cache") and len(r["stack"]) <= 1]
sure = [r["site"]["symbol"] for r in slab
        if r["confidence"] == "certain" or "stack_unknown" not in r["reasons"]]
print("stacks %s, notes %s, %d leak rows, %d slab rows%s" %
      (d["stacks"], say, len(d["leaks"]), len(slab),
       "; without stack_unknown: %s" % sure[:5] if sure else ", all stack_unknown"))
sys.exit(0 if d["stacks"] == "sites" and "stacks sites" in say and "settle ms 0" in say and
         d["summary"]["live_objects"] > 0 and not sure else 1)
PY
	pass "leaks -i on a stat recording: $(cat "$WORK/stat-leaks.check")"
else
	fail "leaks -i on a stat recording: exit $rc," \
		"$(tail -n 1 "$WORK/stat-leaks.check" 2>/dev/null) $(head -c 200 "$WORK/stat-leaks.err")"
fi
