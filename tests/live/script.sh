#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of kmemscope script on this host's kernel: a trace recorded by
# stat --record (the whole system while tests/live/trigger makes a known number
# of pipes), printed back one record per line. Prints one PASS or FAIL line per
# check; tests/live/run.sh counts them. Needs root (the recording).
#
#   tests/live/script.sh BUILD_DIR
#
# - every --json line is JSON; its events, per type, are what stat -i counts,
#   and the text output has one line, of fixed columns, per JSON line;
# - -p, -c, -F, --from/--to print what stat -i counts with the same filter;
# - --strip-addresses leaves no kernel address, and frees still match allocations;
# - a leaks recording shows its BEGIN and SETTLE marks and, with --stack, stacks;
# - | head -1 ends quietly; bad files, usage and write errors exit as documented.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/script.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
N=2000

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=30
WORK=
. "$(dirname "$0")/lib.sh"
lib_begin script "$KMS" "$TRIGGER"

# the record python checks: PASS/FAIL lines, a Python error a FAIL line too
pycheck() {
	python3 "$WORK/check.py" "$@" >"$WORK/check" 2>"$WORK/check.err" ||
		echo "FAIL script $1: check.py: $(tail -n 1 "$WORK/check.err")" >>"$WORK/check"
	while read -r verdict rest; do
		case $verdict in
		PASS) pass "$rest" ;;
		*) fail "$rest" ;;
		esac
	done <"$WORK/check"
}

cat >"$WORK/check.py" <<'EOF'
import collections, json, re, sys

what = sys.argv[1]

def say(ok, msg):
    print(f"{'PASS' if ok else 'FAIL'} script {what}: {msg}")

def lines(path):
    return [json.loads(l) for l in open(path)]

def counted(recs):
    """events the reports count: not frees from outside the filter, not RCU completions"""
    return [r for r in recs if r["record"] == "event"
            and "outside" not in r["flags"] and "rcu_done" not in r["flags"]]

def by_type(recs):
    return dict(collections.Counter(r["event"] for r in counted(recs)))

def stat_by_type(path):
    c = collections.Counter()
    for p in json.load(open(path))["processes"]:
        c.update({k: v for k, v in p["events"].items() if v})
    return dict(c)

if what == "json":
    # script.ndjson stat.json text worker n
    try:
        recs = lines(sys.argv[2])
        say(True, f"{len(recs)} lines, every one JSON")
    except ValueError as e:
        say(False, f"a line is not JSON: {e}")
        sys.exit(0)
    mine, ref = by_type(recs), stat_by_type(sys.argv[3])
    say(mine == ref and sum(ref.values()) > 0,
        f"events per type equal stat -i's ({sum(mine.values())} counted events: {mine}; "
        f"stat: {ref})")
    kinds = collections.Counter(r["record"] for r in recs)
    say(kinds["begin"] == 1 and kinds["task"] > 0 and kinds["cache"] > 0,
        f"one begin mark, task and cache records ({dict(kinds)})")
    worker, n = int(sys.argv[5]), int(sys.argv[6])
    w = [r for r in counted(recs) if r["pid"] == worker and r["event"] == "kmem_cache_alloc"]
    named = {r["comm"] for r in recs if r["record"] == "event" and r["pid"] == worker}
    say(len(w) >= n and named == {"trigger"},
        f"the worker {worker}: {len(w)} kmem_cache_alloc (>= {n} pipes), named {named}")
    text = [l.split() for l in open(sys.argv[4])]
    ev = [t for t in text if not t[4].isupper()]
    bad = [t for t in ev if len(t) != 15]
    say(len(text) == len(recs) and len(ev) == kinds["event"] and not bad,
        f"text: {len(text)} lines ({len(recs)} in JSON), {len(ev)} events of 15 columns "
        f"({len(bad)} not: {bad[:1]})")
    tj = [(r["event"], r["pid"], r["time_ns"]) for r in recs if r["record"] == "event"]
    tt = [(t[4], int(t[3]), round(float(t[0]) * 1e9)) for t in ev]
    say(tj == tt, "text and JSON: the same events, in the same order")
elif what.startswith("filter"):
    # filtered.ndjson stat-filtered.json whole.ndjson field value
    recs, whole = lines(sys.argv[2]), lines(sys.argv[4])
    field, value = sys.argv[5], sys.argv[6]
    mine, ref = by_type(recs), stat_by_type(sys.argv[3])
    c, w = counted(recs), counted(whole)
    if field == "time":
        lo, hi = (float(x) for x in value.split(","))
        off = [r for r in c if not lo <= r["time"] <= hi]
    elif field == "pid":
        off = [r for r in c if r["pid"] != int(value)]
    else:
        off = [r for r in c if r[field] != value]
    say(mine == ref and 0 < len(c) < len(w) and not off,
        f"{len(c)} counted events of {len(w)}, none with {field} other than {value} "
        f"({len(off)}), per type equal stat -i's: {mine == ref}")
elif what == "strip":
    # stripped.ndjson stripped.txt plain.ndjson n
    addr = re.compile(r"0xffff[0-9a-f]{8,}")
    plain = open(sys.argv[4]).read()
    stripped = open(sys.argv[2]).read() + open(sys.argv[3]).read()
    found = addr.findall(stripped)
    say(addr.search(plain) and not found,
        f"no kernel address left (the plain output has {len(addr.findall(plain))}; "
        f"stripped: {found[:3]})")
    live, matched = set(), 0
    for r in lines(sys.argv[2]):
        if r["record"] != "event":
            continue
        if r["event"] in ("kmalloc", "kmem_cache_alloc"):
            live.add(r["ptr"])
        elif r["event"] in ("kfree", "kmem_cache_free") and r["ptr"] in live:
            live.discard(r["ptr"])
            matched += 1
    n = int(sys.argv[5])
    say(matched >= 2 * n, f"{matched} slab frees match an allocation by number (>= {2 * n})")
elif what == "leaks":
    # leaks.ndjson leaks.json
    recs = lines(sys.argv[2])
    kinds = [r["record"] for r in recs]
    marks = [k for k in kinds if k in ("begin", "settle")]
    first_ev = kinds.index("event") if "event" in kinds else -1
    say(marks == ["begin", "settle"] and 0 <= kinds.index("begin") < first_ev,
        f"marks {marks}, begin before the first event (at {first_ev})")
    # leaks takes a stack of every allocation, but for the captures that failed
    failed = json.load(open(sys.argv[3]))["quality"]["stack_failures"]
    stacks = [r["stack"] for r in recs if r["record"] == "event" and r["stack"]]
    allocs = [r for r in recs if r["record"] == "event" and r["event"] == "kmem_cache_alloc"]
    bare = sum(1 for r in allocs if r["stack"] is None)
    sym = re.compile(r"^[\w.]+\+0x[0-9a-f]+( \[\w+\])?$")
    named = sum(1 for s in stacks for f in s if sym.match(f))
    say(allocs and bare <= failed and named > 0,
        f"--stack: {len(stacks)} stacks; of {len(allocs)} kmem_cache_alloc {bare} have none "
        f"(stack captures failed: {failed}); {named} symbolized frames")
EOF

# --- the recording: the whole system while trigger makes N pipes -------------
REC=$WORK/pipes.kmt
run timeout 120 "$KMS" stat -a --record "$REC" --json -o "$WORK/live.json" -- \
	"$TRIGGER" pipes "$N"
WORKER=$(sed -n 's/^trigger mode=.* worker=\([0-9]*\) status=0$/\1/p' "$WORK/out")
if [ "$RC" -eq 0 ] && [ -n "$WORKER" ] && [ -s "$REC" ]; then
	pass "script: stat -a --record -- trigger pipes $N: recorded $(wc -c <"$REC") bytes"
else
	fail "script: stat --record: exit $RC, trigger '$(tail -n 1 "$WORK/out")'," \
		"$(head -c 200 "$WORK/err")"
	exit 1
fi

# S NAME ARGS...: script ARGS to $WORK/NAME, exit 0 wanted
S() {
	name=$1
	shift
	run timeout 300 "$KMS" script -i "$REC" -o "$WORK/$name" "$@"
	if [ "$RC" -eq 0 ] && [ -s "$WORK/$name" ]; then
		pass "script $*: exit 0, $(wc -l <"$WORK/$name") lines"
	else
		fail "script $*: exit $RC, $(head -c 200 "$WORK/err" | tr '\n' '|')"
	fi
}
# ST NAME ARGS...: stat -i ARGS --json, every process, to $WORK/NAME
ST() {
	name=$1
	shift
	"$KMS" stat -i "$REC" --json -n 0 -o "$WORK/$name" "$@" 2>>"$WORK/stat.err" ||
		echo "stat -i $* failed" >>"$WORK/stat.err"
}

S all.ndjson --json
S all.txt
ST stat.json
pycheck json "$WORK/all.ndjson" "$WORK/stat.json" "$WORK/all.txt" "$WORKER" "$N"

# --- filters: as the reports apply them -------------------------------------
S p.ndjson --json -p "$WORKER"
ST stat-p.json -p "$WORKER"
pycheck "filter -p" "$WORK/p.ndjson" "$WORK/stat-p.json" "$WORK/all.ndjson" pid "$WORKER"
S c.ndjson --json -c trigger
ST stat-c.json -c trigger
pycheck "filter -c" "$WORK/c.ndjson" "$WORK/stat-c.json" "$WORK/all.ndjson" comm trigger
S f.ndjson --json -F kmalloc
ST stat-f.json -F kmalloc
pycheck "filter -F" "$WORK/f.ndjson" "$WORK/stat-f.json" "$WORK/all.ndjson" family kmalloc
# the middle half of the trace's events, in time
WINDOW=$(python3 -c '
import json, sys
t = sorted(r["time"] for r in map(json.loads, open(sys.argv[1]))
           if r["record"] == "event" and r["time"] > 0)
print(f"{t[len(t) // 4]:.9f} {t[3 * len(t) // 4]:.9f}")' "$WORK/all.ndjson")
FROM=${WINDOW% *}
TO=${WINDOW#* }
S w.ndjson --json --from "$FROM" --to "$TO"
ST stat-w.json --from "$FROM" --to "$TO"
pycheck "filter --from --to" "$WORK/w.ndjson" "$WORK/stat-w.json" "$WORK/all.ndjson" time \
	"$FROM,$TO"
[ -s "$WORK/stat.err" ] && fail "script: stat -i: $(head -c 300 "$WORK/stat.err" | tr '\n' '|')"

# --- addresses ----------------------------------------------------------------
S strip.ndjson --json --strip-addresses --stack
S strip.txt --strip-addresses --stack
pycheck strip "$WORK/strip.ndjson" "$WORK/strip.txt" "$WORK/all.ndjson" "$N"

# --- marks and stacks: a leaks recording settles after its window -----------
LREC=$WORK/leaks.kmt
run timeout 120 "$KMS" leaks --settle 0.3 --record "$LREC" -o /dev/null -- "$TRIGGER" pipes 200
RC2=$RC
"$KMS" leaks -i "$LREC" --json -o "$WORK/leaks.json" 2>/dev/null || RC2=$?
run timeout 120 "$KMS" script -i "$LREC" --json --stack -o "$WORK/leaks.ndjson"
if [ "$RC2" -eq 0 ] && [ "$RC" -eq 0 ]; then
	pycheck leaks "$WORK/leaks.ndjson" "$WORK/leaks.json"
else
	fail "script: leaks --record, script --stack: exit $RC2, $RC: $(head -c 200 "$WORK/err")"
fi

# --- a reader that goes away, files that are not whole ------------------------
for fmt in text json; do
	RC=0
	OUT=$( { "$KMS" script -i "$REC" $([ $fmt = json ] && echo --json) 2>"$WORK/err" ||
		echo "exit $?" >"$WORK/rc"; } | head -n 1)
	if [ ! -e "$WORK/rc" ] && [ -n "$OUT" ] && [ ! -s "$WORK/err" ]; then
		pass "script ($fmt) | head -1: exit 0, nothing on stderr"
	else
		fail "script ($fmt) | head -1: $(cat "$WORK/rc" 2>/dev/null), stderr:" \
			"$(head -c 200 "$WORK/err" | tr '\n' '|')"
	fi
	rm -f "$WORK/rc"
done

# a recording of two seconds (a block each, at least), cut inside its last
# data block: what script prints is what it prints of the whole file, up to there
CREC=$WORK/two.kmt
run timeout 60 "$KMS" stat --record "$CREC" -o /dev/null -- sh -c \
	"'$TRIGGER' pipes 200 && sleep 1.2 && '$TRIGGER' pipes 200"
RC2=$RC
CUT=$(python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
at, last = 32, None
while at + 64 <= len(data):
    # struct kms_block_header: type at 4, stored_len at 40, 64 bytes
    btype, = struct.unpack_from("<H", data, at + 4)
    stored, = struct.unpack_from("<I", data, at + 40)
    if btype == 4:    # KMS_BLK_DATA
        last = at
    at += 64 + stored
print(last + 64 + 10 if last else 0)' "$CREC")
head -c "$CUT" "$CREC" >"$WORK/cut.kmt"
"$KMS" script -i "$CREC" -o "$WORK/two.txt" 2>/dev/null
run timeout 60 "$KMS" script -i "$WORK/cut.kmt"
got=$(wc -l <"$WORK/out")
all=$(wc -l <"$WORK/two.txt")
if [ "$RC2" -eq 0 ] && [ "$RC" -eq 0 ] && [ "$got" -gt 0 ] && [ "$got" -lt "$all" ] &&
	head -n "$got" "$WORK/two.txt" | cmp -s - "$WORK/out" &&
	grep -q 'warning: .*cut.kmt: .*recovered' "$WORK/err"; then
	pass "script: a file cut in its last data block: exit 0, the first $got of $all lines," \
		"a warning"
else
	fail "script: a file cut at $CUT: exit $RC2, $RC, $got of $all lines (a prefix?), stderr:" \
		"$(head -c 200 "$WORK/err")"
fi
printf 'not a trace' >"$WORK/bad.kmt"
bad_arg "script -i a file that is not a trace: exit 2, one line" script -i "$WORK/bad.kmt"
bad_arg "script without -i: exit 2, one line" script --json
bad_arg "script -i FILE -d 1 (not a replay option): exit 2, one line" script -i "$REC" -d 1
run "$KMS" script -i "$REC" -o /dev/full
if [ "$RC" -eq 1 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ]; then
	pass "script -o /dev/full (a write error): exit 1, one line"
else
	fail "script -o /dev/full: exit $RC (want 1): $(head -n 2 "$WORK/err")"
fi
exit 0
