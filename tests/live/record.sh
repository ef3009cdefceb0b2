#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of kmemscope record and kmemscope info on this host's kernel, driven
# by tests/live/trigger and bench/gen. Prints one PASS or FAIL line per check;
# tests/live/run.sh counts them.
#
#   tests/live/record.sh BUILD_DIR
#
# usage: record without -o, with -i, --record, a bad --stacks, -d with -- CMD;
#   info without -i, on a missing file, on a file that is not a trace: exit 2, one line.
# -d: record the system while trigger makes pipes: exit 0, a summary, mode 0600;
#   info --json says it ended cleanly, holds events, stacks cached with context, and
#   its trace part's allocations and failures per family and allocation events per
#   type are what stat -i reports (families; processes' events, -n 0); leaks -i
#   groups by the recorded stacks (a row lacks one only where a capture failed);
#   misuse -i checks every allocation with its context.
# info as nobody (no root) gives the same description.
# -- CMD: only the command's tree, CMD's exit status, the command in info.
# SIGINT and SIGTERM mid-run: exit 0, the file ends cleanly.
# ENOSPC: recording into a 256 KiB tmpfs while gen runs stops with exit 1 and one
#   line naming the file; info (cut short, exit 0) and stat -i read what it kept.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/record.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
GEN=$BUILD/bench/gen

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=31
REPORTED=0
FAILED=0
pass() { echo "PASS $*"; REPORTED=$((REPORTED + 1)); }
fail() { echo "FAIL $*"; REPORTED=$((REPORTED + 1)); FAILED=$((FAILED + 1)); }
WORK=
TINY=
cleanup() {
	[ -n "$TINY" ] && umount "$TINY" 2>/dev/null
	[ -n "$WORK" ] && rm -rf "$WORK"
	if [ "$REPORTED" -ne "$EXPECTED" ]; then
		echo "FAIL record: $REPORTED of $EXPECTED checks reported"
		FAILED=$((FAILED + 1))
	fi
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
trap cleanup EXIT

[ -x "$KMS" ] || { fail "record: $KMS not built"; exit 1; }
[ -x "$TRIGGER" ] || { fail "record: $TRIGGER not built"; exit 1; }
[ -x "$GEN" ] || { fail "record: $GEN not built"; exit 1; }
WORK=$(mktemp -d /tmp/kmemscope-record.XXXXXX) || exit 1

# run CMD... with stdout/stderr to $WORK/out, $WORK/err; sets RC
run() {
	RC=0
	"$@" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
}

bad_arg() {
	name=$1
	shift
	run timeout 20 "$KMS" "$@"
	lines=$(wc -l <"$WORK/err")
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ]; then
		pass "$name"
	else
		fail "$name: exit $RC (want 2), $lines stderr lines (want 1): $(head -n 2 "$WORK/err")"
	fi
}

# python3 CHECKS.py ARGS: prints "ok" or what is wrong, on one line
check() {
	python3 - "$@" 2>&1 | tail -n 1
}

# --- usage -------------------------------------------------------------------

run "$KMS" record --help
if [ "$RC" -eq 0 ] && grep -q -- '--stacks' "$WORK/out"; then
	pass "kmemscope record --help"
else
	fail "kmemscope record --help: exit $RC, --stacks expected on stdout"
fi
bad_arg "record without -o" record -d 1
bad_arg "record -i" record -o "$WORK/x.kmt" -i "$WORK/y.kmt"
bad_arg "record --record" record -o "$WORK/x.kmt" --record "$WORK/y.kmt" -d 1
bad_arg "record --stacks some" record -o "$WORK/x.kmt" --stacks some
bad_arg "record -d with -- CMD" record -o "$WORK/x.kmt" -d 1 -- true
bad_arg "info without -i" info
bad_arg "info on a missing file" info -i "$WORK/missing.kmt"
printf 'this is not a kmemscope trace, only text long enough\n' >"$WORK/text.kmt"
bad_arg "info on a file that is not a trace" info -i "$WORK/text.kmt"

# --- -d: the whole system while trigger runs ---------------------------------

F=$WORK/sys.kmt
(sleep 1; "$TRIGGER" pipes 2000 >/dev/null 2>&1) &
run "$KMS" record -o "$F" -d 3
wait
if [ "$RC" -eq 0 ] && grep -q "^Recorded [0-9]* events" "$WORK/err"; then
	pass "record -d 3: exit 0 and a summary"
else
	fail "record -d 3: exit $RC, summary expected: $(head -n 3 "$WORK/err")"
fi
SUMMARY_EVENTS=$(sed -n 's/^Recorded \([0-9]*\) events.*/\1/p' "$WORK/err")
mode=$(stat -c %a "$F" 2>/dev/null)
if [ "$mode" = 600 ]; then
	pass "record: file mode 0600"
else
	fail "record: file mode $mode, 600 expected"
fi
run "$KMS" info -i "$F" --json
cp "$WORK/out" "$WORK/info.json"
run "$KMS" stat -i "$F" --json -n 0
cp "$WORK/out" "$WORK/stat.json"
res=$(check "$WORK/info.json" "${SUMMARY_EVENTS:-0}" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
bad = []
if not i["end"]["ended"] or i["end"]["cut_short"]:
    bad.append("not ended cleanly: %s" % i["end"])
if i["records"]["trace_events"] <= 0:
    bad.append("no trace events")
if i["records"]["events"] != int(sys.argv[2]):
    bad.append("info counts %d events, the summary %s" % (i["records"]["events"], sys.argv[2]))
if i["traced"]["stacks"] != "cached" or not i["traced"]["context"]:
    bad.append("stacks %s, context %s" % (i["traced"]["stacks"], i["traced"]["context"]))
if not i["time"]["settle_ns"]:
    bad.append("no settle period")
if i["blocks"]["meta"] != 1 or i["blocks"]["end"] != 1 or i["blocks"]["data"] < 1:
    bad.append("blocks %s" % i["blocks"])
print("; ".join(bad) or "ok")
EOF
)
if [ "$res" = ok ]; then
	pass "info: ended cleanly, events, stacks cached, context, settle period"
else
	fail "info: $res"
fi
res=$(check "$WORK/info.json" "$WORK/stat.json" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
bad = []
sf = {f["family"]: f for f in s["families"]}
for f in i["families"]:
    for k in ("allocs", "fails"):
        if f[k] != sf[f["family"]][k]:
            bad.append("%s %s: info %d, stat -i %d" % (f["family"], k, f[k], sf[f["family"]][k]))
# allocation events per type: stat -i's processes add up to info's trace part
alloc_types = ("kmalloc", "kmem_cache_alloc", "mm_page_alloc", "vmalloc", "dma_alloc",
               "percpu_alloc", "alloc_fail")
proc = {}
for p in s["processes"]:
    for t, n in p["events"].items():
        proc[t] = proc.get(t, 0) + n
types = {t["event"]: t["trace"] for t in i["event_types"]}
for t in alloc_types:
    if types.get(t, 0) != proc.get(t, 0):
        bad.append("%s: info %d, stat -i processes %d" % (t, types.get(t, 0), proc.get(t, 0)))
if sum(f["allocs"] for f in i["families"]) < 2000:
    bad.append("fewer than trigger's 2000 pipes")
print("; ".join(bad) or "ok")
EOF
)
if [ "$res" = ok ]; then
	pass "info's trace part per family and per type = stat -i"
else
	fail "info vs stat -i: $res"
fi
run "$KMS" leaks -i "$F" --json
res=$(check "$WORK/out" <<'EOF'
import json, sys
l = json.load(open(sys.argv[1]))
rows = l["leaks"] + l["retained"] + l["nested"]
bad = []
if l["source"] != "file" or l["stacks"] != "cached":
    bad.append("source %s, stacks %s" % (l["source"], l["stacks"]))
if not rows:
    bad.append("no outstanding rows at all")
else:
    # a row has no stack only where a capture failed (the stack map was full or busy)
    bare = [r for r in rows if not r["stack"]]
    if bare and not l["quality"]["stack_failures"]:
        bad.append("%d rows without a stack, no stack failure" % len(bare))
    if len(bare) * 2 > len(rows):
        bad.append("%d of %d rows without a stack" % (len(bare), len(rows)))
print("; ".join(bad) or "ok")
EOF
)
if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
	pass "leaks -i: rows grouped by recorded stacks"
else
	fail "leaks -i: exit $RC, $res"
fi
run "$KMS" misuse -i "$F" --json
res=$(check "$WORK/out" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["misuse"]
bad = []
if m["checked"] <= 0 or m["context_unknown"] or m["no_baseline"]:
    bad.append("checked %d, context unknown %d, no baseline %d" %
               (m["checked"], m["context_unknown"], m["no_baseline"]))
print("; ".join(bad) or "ok")
EOF
)
if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
	pass "misuse -i: every allocation checked with its context"
else
	fail "misuse -i: exit $RC, $res"
fi

# --- text output of info -----------------------------------------------------

run "$KMS" info -i "$F"
if [ "$RC" -eq 0 ] && grep -q "ended cleanly *yes" "$WORK/out" &&
	grep -q "^Events by family" "$WORK/out"; then
	pass "info text: ended cleanly, events by family"
else
	fail "info text: exit $RC: $(head -n 2 "$WORK/err")"
fi

# info needs no root: as nobody, on a copy nobody may read
NOBODY=$(mktemp -d /tmp/kmemscope-nobody.XXXXXX)
chmod 755 "$NOBODY"
cp "$F" "$NOBODY/sys.kmt"
chmod 644 "$NOBODY/sys.kmt"
run setpriv --reuid=65534 --regid=65534 --clear-groups "$KMS" info -i "$NOBODY/sys.kmt" --json
rm -rf "$NOBODY"
res=$(check "$WORK/out" "$WORK/info.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("file"), b.pop("file")
print("ok" if a == b else "differs from root's")
EOF
)
if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
	pass "info as nobody: the same description"
else
	fail "info as nobody: exit $RC, $res: $(head -n 2 "$WORK/err")"
fi

# --- -- CMD ------------------------------------------------------------------

F=$WORK/cmd.kmt
run "$KMS" record -o "$F" --settle 0 -- "$TRIGGER" pipes 500
if [ "$RC" -eq 0 ]; then
	pass "record -- trigger: exit 0"
else
	fail "record -- trigger: exit $RC: $(head -n 2 "$WORK/err")"
fi
run "$KMS" info -i "$F" --json
res=$(check "$WORK/out" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
bad = []
if "trigger pipes 500" not in (i["traced"]["command"] or ""):
    bad.append("command %s" % i["traced"]["command"])
if i["traced"]["whole_system"]:
    bad.append("whole system")
if i["time"]["settle_ns"] is not None:
    bad.append("a settle period with --settle 0")
k = [f for f in i["families"] if f["family"] == "kmalloc"][0]
if k["allocs"] < 500:
    bad.append("%d kmallocs for 500 pipes" % k["allocs"])
print("; ".join(bad) or "ok")
EOF
)
if [ "$res" = ok ]; then
	pass "info: the command, its tree only, its allocations"
else
	fail "info after -- CMD: $res"
fi
run "$KMS" stat -i "$F" --json -n 0
res=$(check "$WORK/out" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
comms = {p["comm"] for p in s["processes"] if p["allocs"]}
print("ok" if comms and comms <= {"trigger", "kmemscope"} else "allocating processes %s" % comms)
EOF
)
if [ "$res" = ok ]; then
	pass "stat -i after -- CMD: only the command allocates"
else
	fail "stat -i after -- CMD: $res"
fi
run "$KMS" record -o "$WORK/status.kmt" --settle 0 -- sh -c 'exit 3'
if [ "$RC" -eq 3 ]; then
	pass "record -- CMD: exits with CMD's status"
else
	fail "record -- sh -c 'exit 3': exit $RC, 3 expected"
fi
run "$KMS" record -o "$WORK/status.kmt" --settle 0 -- "$WORK/no-such-command"
if [ "$RC" -eq 127 ]; then
	pass "record -- CMD that cannot run: 127"
else
	fail "record -- missing command: exit $RC, 127 expected"
fi

# --- SIGINT and SIGTERM end the file cleanly ----------------------------------

for sig in INT TERM; do
	F=$WORK/sig$sig.kmt
	"$KMS" record -o "$F" >"$WORK/out" 2>"$WORK/err" </dev/null &
	pid=$!
	# started: the header and the META block are written once tracing begins
	for i in $(seq 1 100); do
		[ "$(stat -c %s "$F" 2>/dev/null || echo 0)" -gt 96 ] && break
		sleep 0.1
	done
	sleep 2
	kill -"$sig" "$pid"
	RC=0
	wait "$pid" || RC=$?
	if [ "$RC" -eq 0 ]; then
		pass "record, SIG$sig mid-run: exit 0"
	else
		fail "record, SIG$sig mid-run: exit $RC: $(head -n 2 "$WORK/err")"
	fi
	run "$KMS" info -i "$F" --json
	res=$(check "$WORK/out" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
e = i["end"]
print("ok" if e["ended"] and not e["cut_short"] and i["records"]["trace_events"] > 0
      else "end %s, %d trace events" % (e, i["records"]["trace_events"]))
EOF
)
	if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
		pass "SIG$sig: the file ends cleanly"
	else
		fail "SIG$sig: info exit $RC, $res"
	fi
done

# --- a full disk ---------------------------------------------------------------

TINY=$WORK/tiny
mkdir -p "$TINY"
if mount -t tmpfs -o size=256k tmpfs "$TINY"; then
	pass "tmpfs of 256 KiB mounted"
else
	TINY=
	fail "cannot mount a 256 KiB tmpfs"
fi
F=$TINY/full.kmt
"$GEN" -n 3000000 >/dev/null 2>&1 &
gen=$!
run timeout 60 "$KMS" record -o "$F" -d 30
kill "$gen" 2>/dev/null
wait "$gen" 2>/dev/null
lines=$(wc -l <"$WORK/err")
if [ "$RC" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q "$F" "$WORK/err" &&
	grep -q "No space left on device" "$WORK/err"; then
	pass "ENOSPC: exit 1, one line naming the file"
else
	fail "ENOSPC: exit $RC (want 1), $lines stderr lines (want 1): $(head -n 3 "$WORK/err")"
fi
run "$KMS" info -i "$F" --json
res=$(check "$WORK/out" <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
e = i["end"]
bad = []
if e["ended"] or not e["cut_short"]:
    bad.append("end %s" % e)
if e["recovered_blocks"] < 2 or i["records"]["trace_events"] <= 0:
    bad.append("%d blocks, %d trace events recovered" % (e["recovered_blocks"],
                                                         i["records"]["trace_events"]))
print("; ".join(bad) or "ok")
EOF
)
if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
	pass "ENOSPC: info reads the file, cut short, exit 0"
else
	fail "ENOSPC: info exit $RC, $res"
fi
run "$KMS" info -i "$F"
if [ "$RC" -eq 0 ] && grep -q "CUT SHORT" "$WORK/out"; then
	pass "ENOSPC: info text says the file was cut short"
else
	fail "ENOSPC: info text exit $RC, CUT SHORT expected"
fi
run "$KMS" stat -i "$F" --json
res=$(check "$WORK/out" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
q = s["quality"]
print("ok" if q["cut_short"] and sum(f["allocs"] for f in s["families"]) > 0
      else "cut_short %s" % q["cut_short"])
EOF
)
if [ "$RC" -eq 0 ] && [ "$res" = ok ]; then
	pass "ENOSPC: stat -i reports what the file kept, cut short"
else
	fail "ENOSPC: stat -i exit $RC, $res"
fi
