#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Memory of `kmemscope leaks` per live object: the collector's peak RSS while
# P trigger processes hold H eventfds each (an eventfd_ctx kmalloc and a file
# object per eventfd, all live at the end), against a run that holds few.
# bytes/object = (RSS_big - RSS_small) / (live_big - live_small). See bench/README.md.
#
#   bench/memory.sh BUILD_DIR
#   MEM_PROCS=P (default 25)  MEM_FDS=H (default 19000; the fd hard limit here is 20000)
set -eu

die() {
	echo "bench: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: bench/memory.sh BUILD_DIR"
BUILD=$1
PROCS=${MEM_PROCS:-25}
FDS=${MEM_FDS:-19000}
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
[ "$(id -u)" -eq 0 ] || die "must run as root (BPF)"
[ -x "$KMS" ] || die "$KMS not built (make)"
[ -x "$TRIGGER" ] || die "$TRIGGER not built (make $TRIGGER)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
WORK=$(mktemp -d /tmp/kmemscope-mem.XXXXXX)
trap 'exec 3>&- 2>/dev/null; rm -rf "$WORK"' EXIT

# run P N: kmemscope leaks while P triggers each hold N eventfds; prints
# "live rss_kb lost missed": records the ring could not take, and handler runs the
# kernel skipped that no shadow recorded (quality.misses, after the rescues: an
# interrupt's free nested in the same handler, see docs/kmemscope.md)
run() {
	p=$1
	n=$2
	rm -f "$WORK"/trig.* "$WORK/fifo" "$WORK/l.json"
	mkfifo "$WORK/fifo"
	exec 3<>"$WORK/fifo"
	# the command starts the holders one after the other (a burst of all of them at
	# once overflows the ring) and returns once all of them hold their fds
	/usr/bin/time -f "%M" -o "$WORK/rss" "$KMS" leaks --settle 0 --no-misuse --json \
		-o "$WORK/l.json" -n 1 -- sh -c "
		i=0; while [ \$i -lt $p ]; do
			'$TRIGGER' eventfd $n <'$WORK/fifo' >'$WORK/trig.'\$i 2>&1 &
			i=\$((i + 1))
			t=0; while [ \$(cat '$WORK'/trig.* 2>/dev/null | grep -c '^held') -lt \$i ] &&
				[ \$t -lt 600 ]; do sleep 0.05; t=\$((t + 1)); done
		done" \
		>"$WORK/out" 2>"$WORK/err" || die "kmemscope leaks failed: $(head -n 1 "$WORK/err")"
	# release the holders: one byte each
	i=0
	while [ "$i" -lt "$p" ]; do
		echo x >&3
		i=$((i + 1))
	done
	exec 3>&-
	wait
	held=$(cat "$WORK"/trig.* | grep -c '^held' || true)
	[ "$held" -eq "$p" ] || die "only $held of $p holders got their $n eventfds"
	python3 -c "
import json, sys
d = json.load(open('$WORK/l.json'))
print(d['summary']['live_objects'], open('$WORK/rss').read().strip(), d['quality']['lost'],
      d['quality']['misses'])"
}

echo "bench: kmemscope leaks, $PROCS x $FDS eventfds held vs 1 x 100" >&2
small=$(run 1 100)
big=$(run "$PROCS" "$FDS")
set -- $small
ls=$1 rs=$2
set -- $big
lb=$1 rb=$2 lost=$3 missed=$4
echo
echo "kmemscope leaks memory: $(uname -r), $(nproc) CPUs"
echo "  small run: $ls live objects, peak RSS $rs KiB"
echo "  big run:   $lb live objects, peak RSS $rb KiB, $lost records lost, $missed handler runs missed"
[ "$lb" -gt "$ls" ] || die "the big run holds no more objects than the small one"
echo "  bytes per live object: $(( (rb - rs) * 1024 / (lb - ls) ))"
