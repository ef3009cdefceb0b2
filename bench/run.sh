#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Overhead benchmark: bench/gen untraced, under the count-only BPF floor, under
# kmemscope stat, kmemscope leaks (stacks cached and every) and perf kmem record,
# round-robin, medians; then kmemscope's start-up time (exec to tracing). See
# bench/README.md.
#
#   bench/run.sh BUILD_DIR
#   BENCH_ITERS=N (default 100000)  BENCH_ROUNDS=N (default 5, at least 5)
#   BENCH_MODE=pipe|eventfd|open|mmap (default pipe)  BENCH_KEEP=1 keeps the work dir
set -eu

die() {
	echo "bench: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: bench/run.sh BUILD_DIR"
BUILD=$1
ITERS=${BENCH_ITERS:-100000}
ROUNDS=${BENCH_ROUNDS:-5}
MODE=${BENCH_MODE:-pipe}
HERE=$(cd "$(dirname "$0")" && pwd)
LIB="python3 $HERE/benchlib.py"
GEN=$BUILD/bench/gen
FLOOR=$BUILD/bench/floor
KMS=$BUILD/kmemscope

[ "$(id -u)" -eq 0 ] || die "must run as root (BPF and perf tracepoints)"
[ "$ROUNDS" -ge 5 ] 2>/dev/null || die "BENCH_ROUNDS must be a number >= 5, got '$ROUNDS'"
[ -x "$GEN" ] || die "$GEN not built (make $GEN)"
[ -x "$FLOOR" ] || die "$FLOOR not built (make $FLOOR)"
command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
command -v python3 >/dev/null || die "python3 not found"
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing ||
	die "cannot mount tracefs on /sys/kernel/tracing"

CONFIGS="untraced floor kmemscope leaks leaks_norescue leaks_every perf"
if [ ! -x "$KMS" ]; then
	echo "bench: $KMS not built: the kmemscope rows are left out" >&2
	CONFIGS="untraced floor perf"
fi

WORK=$(mktemp -d /tmp/kmemscope-bench.XXXXXX)
if [ "${BENCH_KEEP:-0}" = 1 ]; then
	echo "bench: work files in $WORK" >&2
else
	trap 'rm -rf "$WORK"' EXIT
fi
RESULTS=$WORK/results
echo "# config round ns iters seen lost seen_perf_kinds missed" >"$RESULTS"

# "key=value ..." line -> value of one key
field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

gen_line() {
	out=$(grep '^iters=' "$1" | tail -n 1)
	[ -n "$out" ] || die "$2: gen printed no result (see $1)"
	echo "$out"
}

run_untraced() {
	"$GEN" -n "$ITERS" -m "$MODE" >"$WORK/gen.out" || die "untraced: gen failed"
	g=$(gen_line "$WORK/gen.out" untraced)
	echo "untraced $1 $(field "$g" ns) $(field "$g" iters) - - - -" >>"$RESULTS"
}

run_floor() {
	"$FLOOR" -v -o "$WORK/floor.out" -- "$GEN" -n "$ITERS" -m "$MODE" >"$WORK/gen.out" ||
		die "floor: floor or gen failed"
	g=$(gen_line "$WORK/gen.out" floor)
	f=$(grep '^floor events=' "$WORK/floor.out")
	# the event kinds perf kmem --slab --page records
	pk=$(awk '/^floor.event (kmalloc|kfree|kmem_cache_alloc|kmem_cache_free|mm_page_alloc|mm_page_free) / {
		sub("target_events=", "", $4); s += $4 } END { print s + 0 }' "$WORK/floor.out")
	echo "floor $1 $(field "$g" ns) $(field "$g" iters) $(field "$f" target_events)" \
		"- $pk $(field "$f" misses)" >>"$RESULTS"
}

run_kmemscope() {
	rm -f "$WORK/kms.json"
	"$KMS" stat --json -o "$WORK/kms.json" -- "$GEN" -n "$ITERS" -m "$MODE" \
		>"$WORK/gen.out" 2>"$WORK/kms.err" ||
		die "kmemscope: exited with $? ($(head -n 1 "$WORK/kms.err"))"
	g=$(gen_line "$WORK/gen.out" kmemscope)
	k=$($LIB kmsjson "$WORK/kms.json" gen) || die "kmemscope: unreadable JSON"
	[ "$(field "$k" target_pids)" = 1 ] ||
		die "kmemscope: expected one process named gen in the JSON, got $(field "$k" target_pids)"
	echo "kmemscope $1 $(field "$g" ns) $(field "$g" iters) $(field "$k" target_events)" \
		"$(field "$k" lost) - $(field "$k" misses)" >>"$RESULTS"
	echo "  kmemscope round $1: $k" >&2
}

# run_leaks_as CONFIG ROUND [OPTIONS]: leaks JSON has no per-process counts, so its
# rows show lost and missed, not seen
run_leaks_as() {
	name=$1
	round=$2
	shift 2
	rm -f "$WORK/kms.json"
	"$KMS" leaks --settle 0 --json -o "$WORK/kms.json" "$@" -- "$GEN" -n "$ITERS" -m "$MODE" \
		>"$WORK/gen.out" 2>"$WORK/kms.err" ||
		die "$name: exited with $? ($(head -n 1 "$WORK/kms.err"))"
	g=$(gen_line "$WORK/gen.out" "$name")
	k=$($LIB kmsjson "$WORK/kms.json" gen) || die "$name: unreadable JSON"
	echo "$name $round $(field "$g" ns) $(field "$g" iters) - $(field "$k" lost) - $(field "$k" misses)" \
		>>"$RESULTS"
	echo "  $name round $round: $k" >&2
}

run_leaks() {
	run_leaks_as leaks "$1"
}

run_leaks_norescue() {
	run_leaks_as leaks_norescue "$1" --rescue off
}

run_leaks_every() {
	run_leaks_as leaks_every "$1" --stacks every
}

run_perf() {
	rm -f "$WORK/perf.data"
	perf kmem --slab --page record -o "$WORK/perf.data" -- "$GEN" -n "$ITERS" -m "$MODE" \
		>"$WORK/gen.out" 2>"$WORK/perf.err" || die "perf: perf kmem record failed"
	g=$(gen_line "$WORK/gen.out" perf)
	p=$($LIB perfdata "$WORK/perf.data" gen) || die "perf: unreadable perf.data"
	rm -f "$WORK/perf.data"
	echo "perf $1 $(field "$g" ns) $(field "$g" iters) $(field "$p" target_samples)" \
		"$(field "$p" lost) - -" >>"$RESULTS"
	echo "  perf round $1: $p" >&2
}

echo "bench: gen -m $MODE -n $ITERS, $ROUNDS rounds of: $CONFIGS" >&2
"$GEN" -n "$ITERS" -m "$MODE" >/dev/null	# warm-up: caches, page tables, slab
start=$(date +%s)
r=1
while [ "$r" -le "$ROUNDS" ]; do
	# rotate the order each round so no configuration always runs first
	set -- $CONFIGS
	i=1
	while [ "$i" -lt "$r" ]; do
		first=$1
		shift
		set -- "$@" "$first"
		i=$((i + 1))
		[ $i -gt 8 ] && break
	done
	for cfg in "$@"; do
		"run_$cfg" "$r"
	done
	echo "bench: round $r/$ROUNDS done ($(($(date +%s) - start)) s)" >&2
	r=$((r + 1))
done

echo
echo "kmemscope overhead: gen -m $MODE -n $ITERS, median of $ROUNDS rounds, $(uname -r), $(nproc) CPUs"
# bpf_stats times every BPF program run (two clock reads each): the floor and kmemscope pay it
[ "$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null)" = 1 ] &&
	echo "kernel.bpf_stats_enabled is 1: every BPF run below includes its two clock reads"
$LIB table "$RESULTS"
echo
echo "seen: events of the gen process (floor: all kinds; kmemscope: JSON processes[].events;"
echo "      perf: samples, slab+page kinds only). lost: kmemscope = quality.lost, perf = lost"
echo "      samples (whole system: perf kmem records -a). missed: BPF program runs skipped for"
echo "      recursion, whole system (floor: bpf_prog_info, kmemscope: quality.misses)."
echo "seen/floor: seen over the floor's median count of the same kinds for gen."
echo "leaks: kmemscope leaks --settle 0, one stack per call site and context, a shadow"
echo "      program after each hot handler (--rescue on; both the default);"
echo "      leaks_norescue: --rescue off, no shadows;"
echo "      leaks_every: --stacks every, one stack per allocation. No per-process counts."
if [ -x "$KMS" ]; then
	echo
	$LIB startup "$KMS" "$ROUNDS" || die "start-up: kmemscope failed"
fi
