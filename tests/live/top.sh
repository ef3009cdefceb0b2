#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kmemscope top in batch mode on this host's kernel: the shape of the text
# blocks (count, header, quality line, family table, site table), kmalloc
# activity while a loop of `ls` runs, --once, -- CMD, usage errors, and the
# replay of a recorded file (-i, paced by --speed).
# Prints PASS/FAIL lines (tests/live/run.sh counts them). Needs root.
#
#   tests/live/top.sh BUILD_DIR
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/top.sh BUILD_DIR" >&2; exit 2; }
KMS=$1/kmemscope
WORK=$(mktemp -d /tmp/kmemscope-top.XXXXXX)
LOAD=
# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=23
REPORTED=0
FAILED=0
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	rm -rf "$WORK"
	if [ "$REPORTED" -ne "$EXPECTED" ]; then
		echo "FAIL top: $REPORTED of $EXPECTED checks reported"
		FAILED=$((FAILED + 1))
	fi
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
trap cleanup EXIT

pass() { echo "PASS top: $*"; REPORTED=$((REPORTED + 1)); }
fail() { echo "FAIL top: $*"; REPORTED=$((REPORTED + 1)); FAILED=$((FAILED + 1)); }
# check NAME CONDITION...: PASS when the condition holds, else FAIL with NAME
check() {
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

[ -x "$KMS" ] || { fail "setup: $KMS not built"; exit 1; }

# something that allocates with kmalloc all the time: ls over a directory
( while :; do ls -la /usr/lib >/dev/null 2>&1; done ) &
LOAD=$!

rc=0
timeout 60 "$KMS" top -I 0.5 --count 3 >"$WORK/out" 2>"$WORK/err" </dev/null || rc=$?
check "batch -I 0.5 --count 3: exit $rc $(head -c 200 "$WORK/err" | tr "\n" "|")" [ "$rc" -eq 0 ]

blocks=$(grep -c '^kmemscope top [0-9-]* [0-9:]*  events/s [0-9.KMG]*  window ' "$WORK/out")
check "batch: 3 blocks with a timestamped header (got $blocks)" [ "$blocks" -eq 3 ]
q='^quality: \(complete\|INCOMPLETE\)[^:]*: lost [0-9]*, misses [0-9]*, out of order [0-9]*'
n=$(grep -c "$q" "$WORK/out")
check "batch: a quality line per block (got $n)" [ "$n" -eq 3 ]
n=$(grep -c '^FAMILY  *ALLOCS/s  *FREES/s  *BYTES/s  *OUTST  *OUTST_BYTES$' "$WORK/out")
check "batch: a family table per block (got $n)" [ "$n" -eq 3 ]
n=$(grep -c '^ALLOC/s BYTES/s FREES/s   OUTST WASTE/s FAMILY  CACHE  *SITE$' "$WORK/out")
check "batch: a site table per block (got $n)" [ "$n" -eq 3 ]
# every block: the kmalloc family line has a non-zero allocation rate
n=$(awk '$1 == "kmalloc" && $2 != "0" && $2 != "NOT" { n++ } END { print n + 0 }' "$WORK/out")
check "batch: kmalloc activity in every block under an ls loop (got $n of 3)" [ "$n" -eq 3 ]
# site rows: five numbers, a family, a cache, a site
n=$(awk '/^ALLOC\/s/ { t = 1; next } /^$/ { t = 0 } t && NF >= 8 { n++ } END { print n + 0 }' \
	"$WORK/out")
check "batch: site rows present (got $n)" [ "$n" -gt 0 ]

rc=0
timeout 30 "$KMS" top --once -I 0.3 -n 5 -s allocs -F kmalloc >"$WORK/out" 2>"$WORK/err" \
	</dev/null || rc=$?
blocks=$(grep -c '^kmemscope top ' "$WORK/out")
rows=$(awk '/^ALLOC\/s/ { t = 1; next } /^$/ { t = 0 } t { n++ } END { print n + 0 }' "$WORK/out")
fams=$(grep -c '^\(kmem_cache\|page\|vmalloc\|dma\|percpu\) ' "$WORK/out")
name="--once -n 5 -F kmalloc: exit $rc, $blocks block, $rows rows (<= 5), $fams other families"
if [ "$rc" -eq 0 ] && [ "$blocks" -eq 1 ] && [ "$rows" -le 5 ] && [ "$fams" -eq 0 ]; then
	pass "$name"
else
	fail "$name"
fi
check "--once -s allocs: the header names the key" grep -q '  sort allocs  ' "$WORK/out"

# a 2 s recording of the same load, for the replay checks below
rc=0
timeout 60 "$KMS" stat --record "$WORK/rec.kmt" -d 2 -o /dev/null 2>"$WORK/err" </dev/null ||
	rc=$?
check "stat --record (2 s) for the replay: exit $rc" [ "$rc" -eq 0 ]

kill "$LOAD" 2>/dev/null
LOAD=

# replay, unpaced: two blocks of the file's first two seconds, sites from the file
timeout 60 "$KMS" stat -i "$WORK/rec.kmt" -n 0 --json -o "$WORK/rec.json" </dev/null \
	2>"$WORK/err"
rc=0
timeout 60 "$KMS" top -i "$WORK/rec.kmt" --count 2 --speed 0 -n 0 >"$WORK/out" \
	2>"$WORK/err" </dev/null || rc=$?
blocks=$(grep -c '^kmemscope top [0-9-]* [0-9:]*  events/s [0-9.KMG]*  window 1.00s ' \
	"$WORK/out")
name="-i FILE --count 2 --speed 0: exit $rc, 2 blocks of 1 s (got $blocks)"
if [ "$rc" -eq 0 ] && [ "$blocks" -eq 2 ]; then pass "$name"; else fail "$name"; fi
n=$(awk '$1 == "kmalloc" && $2 != "0" && $2 != "NOT" { n++ } END { print n + 0 }' "$WORK/out")
check "-i FILE: kmalloc activity in both blocks (got $n of 2)" [ "$n" -eq 2 ]
# every site shown is one of the file's (as stat -i names it), and there are some
res=$(python3 - "$WORK/rec.json" "$WORK/out" <<'PY'
import json, sys
known = {s["symbol"] for s in json.load(open(sys.argv[1]))["sites"] if s["symbol"]}
rows, table = [], False
for line in open(sys.argv[2]):
    if line.startswith("ALLOC/s"):
        table = True
    elif not line.strip():
        table = False
    elif table:
        rows.append(line.split()[7])
strange = [r for r in rows if r not in known and r != "[unknown]"]
print("%d rows, %d not in the file %s" % (len(rows), len(strange), " ".join(strange[:3])))
sys.exit(0 if rows and not strange else 1)
PY
) && ok=y || ok=
check "-i FILE: the sites are the file's ($res)" [ "$ok" = y ]

# paced: --speed 1 shows a second of the trace per second, so two 1 s intervals take
# at least one (lower bounds only: the machine may be slower, never faster)
rc=0
t0=$(date +%s.%N)
timeout 60 "$KMS" top -i "$WORK/rec.kmt" --count 2 --speed 1 >"$WORK/out" 2>"$WORK/err" \
	</dev/null || rc=$?
took=$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
blocks=$(grep -c '^kmemscope top ' "$WORK/out")
name="-i FILE --speed 1 --count 2: exit $rc, $blocks blocks, ${took}s (>= 1)"
if [ "$rc" -eq 0 ] && [ "$blocks" -eq 2 ] && awk -v t="$took" 'BEGIN { exit !(t >= 1) }'; then
	pass "$name"
else
	fail "$name"
fi
rc=0
timeout 60 "$KMS" top -i "$WORK/rec.kmt" --speed 10 -I 0.5 >"$WORK/out" 2>"$WORK/err" \
	</dev/null || rc=$?
blocks=$(grep -c '^kmemscope top ' "$WORK/out")
name="-i FILE --speed 10 -I 0.5 to the end: exit $rc, $blocks blocks (>= 4)"
if [ "$rc" -eq 0 ] && [ "$blocks" -ge 4 ]; then pass "$name"; else fail "$name"; fi

# -- CMD: top ends with the command, with a last block for the part interval
rc=0
start=$(date +%s)
timeout 30 "$KMS" top -I 10 -- sh -c 'ls -la /usr/lib >/dev/null; sleep 0.5' >"$WORK/out" \
	2>"$WORK/err" </dev/null || rc=$?
took=$(( $(date +%s) - start ))
blocks=$(grep -c '^kmemscope top ' "$WORK/out")
name="-- CMD: exit $rc, ended after ${took}s (< 10), $blocks final block"
if [ "$rc" -eq 0 ] && [ "$took" -lt 10 ] && [ "$blocks" -eq 1 ]; then
	pass "$name"
else
	fail "$name"
fi

# usage errors: exit 2, one line on stderr, before any tracing
bad() {
	name=$1
	shift
	rc=0
	timeout 20 "$KMS" top "$@" >/dev/null 2>"$WORK/err" </dev/null || rc=$?
	lines=$(wc -l <"$WORK/err")
	if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ]; then
		pass "$name"
	else
		fail "$name: exit $rc (want 2), $lines stderr lines (want 1):" \
			"$(head -c 200 "$WORK/err" | tr '\n' '|')"
	fi
}
bad "top -s bogus" -s bogus
bad "top -I 0" -I 0
bad "top --count 0" --count 0
bad "top --bogus" --bogus
bad "top --speed 2 (no -i)" --speed 2
bad "top -i FILE --speed -1" -i "$WORK/rec.kmt" --speed -1
bad "top -i FILE --speed fast" -i "$WORK/rec.kmt" --speed fast
exit 0
