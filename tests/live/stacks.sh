#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Cached stacks against one capture per event. Page, vmalloc and dma events
# report no call site: their stacks are cached under an anchor, the first
# frame above the handler's context (bpf/stage.bpf.h, docs/detectors.md). Two
# recorders trace the same load at once, one with --stacks every, one with the
# default cache; for the load's processes, every stack must count the same
# allocations in both files. A cache that hands out a wrong id (another
# chain's) moves counts from one stack to another and fails the check.
# Prints one PASS or FAIL line per check; tests/live/run.sh counts them.
#
#   tests/live/stacks.sh BUILD_DIR
#
# The load: trigger (anonymous pages touched, forks: thread stacks from
# vmalloc, page tables; BPF maps: vmalloc) and gen's mmap loop (page faults).
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/stacks.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
GEN=$BUILD/bench/gen

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=3
. "$(dirname "$0")/lib.sh"

lib_cleanup() {
	for p in ${rec_pids:-}; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
lib_begin stacks "$KMS" "$TRIGGER" "$GEN"

# record NAME [OPTIONS]: a system-wide recording in the background, until SIGINT
rec_pids=
record() {
	name=$1
	shift
	"$KMS" record -v -o "$WORK/$name.kmt" "$@" >/dev/null 2>"$WORK/$name.err" &
	rec_pids="$rec_pids $!"
}
record every --stacks every
record cached
wait_tracing "$WORK/every.err"
wait_tracing "$WORK/cached.err"
if grep -qs '^tracing' "$WORK/every.err" && grep -qs '^tracing' "$WORK/cached.err"; then
	pass "two recorders tracing at once"
else
	fail "recorders not tracing: $(head -c 300 "$WORK/every.err" "$WORK/cached.err" | tr '\n' '|')"
fi

"$TRIGGER" pages 3000 >/dev/null 2>&1
"$TRIGGER" fork 200 >/dev/null 2>&1
"$TRIGGER" bpfmap 50 >/dev/null 2>&1
"$GEN" -n 20000 -m mmap >/dev/null 2>&1

rc=0
for p in $rec_pids; do
	kill -INT "$p"
	wait "$p" || rc=$?
done
rec_pids=

# folded stacks of the page and vmalloc allocations of trigger and gen, by count
folded() {
	for comm in trigger gen; do
		"$KMS" stat -i "$WORK/$1.kmt" -c "$comm" -F page,vmalloc --folded=alloc_count \
			2>>"$WORK/fold.err" | sed "s/^/$comm /"
	done | sort
}
folded every >"$WORK/every.folded"
folded cached >"$WORK/cached.folded"

# lost records or skipped handler runs (an interrupt's allocation inside a
# handler) would make the counts differ for another reason: the files say how many
quality() {
	"$KMS" stat -i "$WORK/$1.kmt" --json -o "$WORK/$1.json" 2>>"$WORK/fold.err"
}
quality every
quality cached
if [ "$rc" -eq 0 ] && [ -s "$WORK/every.json" ] && [ -s "$WORK/cached.json" ]; then
	pass "both recordings ended cleanly"
else
	fail "recorders exit $rc, or stat -i failed: $(head -c 200 "$WORK/fold.err")"
fi

# equal, or apart by no more allocations than page and vmalloc handler runs were
# missed or records lost in the two files; and a load big and varied enough
res=$(python3 - "$WORK/every.folded" "$WORK/cached.folded" "$WORK/every.json" \
	"$WORK/cached.json" <<'PY' 2>&1 | tail -n 1
import json, sys

def folded(path):
    out = {}
    for line in open(path):
        key, n = line.rsplit(" ", 1)
        out[key] = int(n)
    return out

every, cached = folded(sys.argv[1]), folded(sys.argv[2])
excuse = 0
for path in sys.argv[3:]:
    q = json.load(open(path))["quality"]
    excuse += q["lost"] + q["misses_by_event"]["mm_page_alloc"] + q["misses_by_event"]["vmalloc"]
apart = sum(abs(every.get(k, 0) - cached.get(k, 0)) for k in set(every) | set(cached))
allocs = sum(every.values())
if len(every) < 4 or allocs < 20000:
    print(f"too little seen: {len(every)} stacks, {allocs} allocations")
elif apart > excuse:
    worst = sorted(set(every) | set(cached), key=lambda k: -abs(every.get(k, 0) - cached.get(k, 0)))
    print(f"{apart} allocations on other stacks (lost or missed: {excuse}), e.g. "
          + "; ".join(f"{k[-80:]}: {every.get(k, 0)} vs {cached.get(k, 0)}" for k in worst[:2]))
else:
    print(f"ok {len(every)} stacks, {allocs} allocations, {apart} apart (lost or missed: {excuse})")
PY
)
case $res in
ok*) pass "cached page and vmalloc stacks count as one capture per event: ${res#ok }" ;;
*) fail "cached and every stacks: $res" ;;
esac
