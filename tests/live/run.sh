#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests on this host's kernel: kmemscope stat against perf's record of the
# same run, driven by tests/live/trigger. Needs root and working BPF: it fails,
# never skips, without them.
#
#   tests/live/run.sh BUILD_DIR      (make live)
#   LIVE_KEEP=1 keeps the work directory
set -eu

[ $# -eq 1 ] || { echo "usage: tests/live/run.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
ORDER=$BUILD/tests/order
PASSED=0
FAILED=0

pass() {
	echo "PASS $*"
	PASSED=$((PASSED + 1))
}

fail() {
	echo "FAIL $*"
	FAILED=$((FAILED + 1))
}

finish() {
	echo "live: $PASSED passed, $FAILED failed"
	if [ "$FAILED" -eq 0 ]; then
		exit 0
	fi
	exit 1
}

# a missing prerequisite is a failure of the whole run, not a skip
fatal() {
	fail "setup: $*"
	finish
}

[ "$(id -u)" -eq 0 ] || fatal "must run as root (BPF, perf tracepoints)"
[ -x "$KMS" ] || fatal "$KMS not built (make)"
[ -x "$TRIGGER" ] || fatal "$TRIGGER not built (make $TRIGGER)"
[ -x "$ORDER" ] || fatal "$ORDER not built (make $ORDER)"
command -v perf >/dev/null || fatal "perf not found (apt-get install linux-perf)"
command -v python3 >/dev/null || fatal "python3 not found"
[ -r /sys/kernel/btf/vmlinux ] || fatal "kernel BTF /sys/kernel/btf/vmlinux missing"
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
		fatal "tracefs not mounted and cannot mount it on /sys/kernel/tracing"
fi
# the bpf() syscall works: trigger creates one BPF map
"$TRIGGER" bpfmap 1 >/dev/null 2>&1 || fatal "bpf() unavailable: BPF_MAP_CREATE fails"

WORK=$(mktemp -d /tmp/kmemscope-live.XXXXXX)
if [ "${LIVE_KEEP:-0}" = 1 ]; then
	echo "live: work files in $WORK"
else
	trap 'rm -rf "$WORK"' EXIT
fi

# --- CLI smoke and bad arguments ---------------------------------------------

# run CMD... with stdout/stderr to $WORK/out, $WORK/err; sets RC
run() {
	RC=0
	"$@" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
}

run "$KMS" --help
if [ "$RC" -eq 0 ] && grep -q 'stat' "$WORK/out"; then
	pass "kmemscope --help"
else
	fail "kmemscope --help: exit $RC, usage naming 'stat' expected on stdout"
fi

run "$KMS" stat --help
if [ "$RC" -eq 0 ] && grep -q -- '--json' "$WORK/out"; then
	pass "kmemscope stat --help"
else
	fail "kmemscope stat --help: exit $RC, usage naming --json expected on stdout"
fi

# bad arguments: exit 2 with a one-line error on stderr, before any tracing
bad_arg() {
	name=$1
	shift
	run timeout 20 "$KMS" "$@"
	lines=$(wc -l <"$WORK/err")
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ]; then
		pass "$name"
	else
		fail "$name: exit $RC (want 2), $lines stderr lines (want 1): $(head -c 200 "$WORK/err" | tr '\n' '|')"
	fi
}
bad_arg "kmemscope stat --bogus" stat --bogus
bad_arg "kmemscope stat -d abc" stat -d abc
bad_arg "kmemscope stat -F nosuch" stat -F nosuch
bad_arg "kmemscope stat -s nosuch" stat -s nosuch
bad_arg "kmemscope stat -a (no command)" stat -a
bad_arg "kmemscope stat -o unwritable" stat -d 1 -o /nonexistent-dir/out.json
bad_arg "kmemscope nosuchcommand" nosuchcommand

# the BPF handlers run on CPU 0 and 1 into the collector: records in order
"$ORDER" >"$WORK/order" 2>&1 || true
while read -r verdict rest; do
	case $verdict in
	PASS) pass "$rest" ;;
	FAIL) fail "$rest" ;;
	esac
done <"$WORK/order"
grep -q '^\(PASS\|FAIL\) ' "$WORK/order" || fail "order: no result: $(tail -n 1 "$WORK/order")"

# kmemscope top in batch mode: tests/live/top.sh prints PASS/FAIL lines
"$HERE/top.sh" "$BUILD" >"$WORK/top" 2>&1 || true
while read -r verdict rest; do
	case $verdict in
	PASS) pass "$rest" ;;
	FAIL) fail "$rest" ;;
	esac
done <"$WORK/top"
grep -q '^\(PASS\|FAIL\) ' "$WORK/top" || fail "top.sh: no result: $(tail -n 1 "$WORK/top")"

# kmemscope leaks and misuse: tests/live/leaks.sh prints PASS/FAIL lines
"$HERE/leaks.sh" "$BUILD" >"$WORK/leaks" 2>&1 || true
while read -r verdict rest; do
	case $verdict in
	PASS) pass "$rest" ;;
	FAIL) fail "$rest" ;;
	esac
done <"$WORK/leaks"
grep -q '^\(PASS\|FAIL\) ' "$WORK/leaks" || fail "leaks.sh: no result: $(tail -n 1 "$WORK/leaks")"

# --- exact counts against perf -------------------------------------------------

EVENTS=kmem:kmalloc,kmem:kfree,kmem:kmem_cache_alloc,kmem:kmem_cache_free
EVENTS=$EVENTS,kmem:mm_page_alloc,kmem:mm_page_free,kmem:mm_page_free_batched
EVENTS=$EVENTS,percpu:percpu_alloc_percpu,percpu:percpu_free_percpu
EVENTS=$EVENTS,vmalloc:alloc_vmap_area,vmalloc:free_vmap_area_noflush

# The reference is perf record -a, per pid, for trigger's worker process. Not
# perf stat: it sums the whole process tree and starts counting at exec, while
# kmemscope counts each process from its fork. Not per-task perf record either:
# an inherited counter stops at perf_event_exit_task() in do_exit(), and frees
# in the rest of do_exit() (measured: ~24 kfree, ~55 kmem_cache_free for a
# pipes worker) still run with the worker current, so kmemscope sees them.
# System-wide recording attributes every event to the task current when it
# fired, which is what processes[].events counts.
live_mode() {
	live_try 1 "$@"
}

live_try() {
	attempt=$1
	mode=$2
	n=$3
	shift 3
	t="$mode $n${*:+ ($*)}"
	rm -f "$WORK/kms.json" "$WORK/perf.data"
	RC=0
	echo x | timeout 120 "$KMS" stat --json -o "$WORK/kms.json" "$@" -- \
		perf record -a -q -m 1024 -o "$WORK/perf.data" -e "$EVENTS" -- \
		"$TRIGGER" "$mode" "$n" >"$WORK/out" 2>"$WORK/err" || RC=$?
	worker=$(sed -n 's/^trigger mode=.* worker=\([0-9]*\) status=0$/\1/p' "$WORK/out")
	if [ "$RC" -ne 0 ] || [ -z "$worker" ]; then
		fail "$t: run: exit $RC, trigger: '$(tail -n 1 "$WORK/out")'," \
			"stderr: $(head -c 300 "$WORK/err" | tr '\n' '|')"
		return
	fi
	if ! python3 "$HERE/check.py" "$mode" "$n" "$worker" "$WORK/kms.json" \
		"$WORK/perf.data" >"$WORK/check" 2>"$WORK/check.err"; then
		fail "$t: check.py: $(tail -n 1 "$WORK/check.err")"
		return
	fi
	# a run that lost events to recursion misses (reported) cannot match: again
	if grep -q '^RETRY ' "$WORK/check" && [ "$attempt" -lt 3 ]; then
		echo "retry: $(grep '^RETRY ' "$WORK/check" | head -n 1)"
		live_try $((attempt + 1)) "$mode" "$n" "$@"
		return
	fi
	pass "$t: kmemscope -- perf record -- trigger ran"
	while read -r verdict rest; do
		case $verdict in
		PASS) pass "$rest" ;;
		RETRY) fail "$rest (3 runs in a row lost events)" ;;
		*) fail "$rest" ;;
		esac
	done <"$WORK/check"
	[ -s "$WORK/check" ] || fail "$t: check.py printed nothing"
}

live_mode pipes 2000
live_mode fork 100
live_mode bpfmap 50
live_mode pages 2000
live_mode eventfd 1000
# shadow programs must add the events the handlers miss, never count one twice
live_mode pipes 2000 --rescue on
# the other ordering of records across CPUs
live_mode pipes 2000 --order time

finish
