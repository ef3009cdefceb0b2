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
# ENOSPC: recording into a 1 MiB tmpfs while gen runs stops with exit 1 and one
#   line naming the file; info (cut short, exit 0) and stat -i read what it kept.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/record.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
GEN=$BUILD/bench/gen
EXPECTED=31
TINY=
. "$(dirname "$0")/lib.sh"
lib_cleanup() {
	[ -n "$TINY" ] && umount "$TINY" 2>/dev/null
}
lib_begin record "$KMS" "$TRIGGER" "$GEN"

# --- usage -------------------------------------------------------------------

run "$KMS" record --help
res=$(grep -q -- '--stacks' "$WORK/out" && echo ok || echo "--stacks not on stdout")
judge "kmemscope record --help"
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
SUMMARY_EVENTS=$(sed -n 's/^Recorded \([0-9]*\) events.*/\1/p' "$WORK/err")
res=$([ -n "$SUMMARY_EVENTS" ] && echo ok || echo "no summary")
judge "record -d 3: exit 0 and a summary"
mode=$(stat -c %a "$F" 2>/dev/null)
res=$([ "$mode" = 600 ] && echo ok || echo "mode $mode")
judge "record: file mode 0600"

run "$KMS" info -i "$F" --json
cp "$WORK/out" "$WORK/info.json"
jcheck "${SUMMARY_EVENTS:-0}" <<'EOF'
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
judge "info: ended cleanly, events as the summary says, stacks cached, context, settle"

run "$KMS" stat -i "$F" --json -n 0
jcheck "$WORK/info.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
i = json.load(open(sys.argv[2]))
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
    bad.append("fewer allocations than trigger's 2000 pipes")
print("; ".join(bad) or "ok")
EOF
judge "info's trace part per family and per type = stat -i"

run "$KMS" leaks -i "$F" --json
jcheck <<'EOF'
import json, sys
l = json.load(open(sys.argv[1]))
rows = l["leaks"] + l["retained"] + l["nested"]
bare = [r for r in rows if not r["stack"]]
bad = []
if l["source"] != "file" or l["stacks"] != "cached":
    bad.append("source %s, stacks %s" % (l["source"], l["stacks"]))
if not rows:
    bad.append("no outstanding rows at all")
# a row has no stack only where a capture failed (the stack map was full or busy)
if bare and not l["quality"]["stack_failures"]:
    bad.append("%d rows without a stack, no stack failure" % len(bare))
if len(bare) * 2 > len(rows):
    bad.append("%d of %d rows without a stack" % (len(bare), len(rows)))
print("; ".join(bad) or "ok")
EOF
judge "leaks -i: rows grouped by recorded stacks"

run "$KMS" misuse -i "$F" --json
jcheck <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["misuse"]
print("ok" if m["checked"] > 0 and not m["context_unknown"] and not m["no_baseline"] else
      "checked %d, context unknown %d, no baseline %d" %
      (m["checked"], m["context_unknown"], m["no_baseline"]))
EOF
judge "misuse -i: every allocation checked with its context"

run "$KMS" info -i "$F"
res=$(grep -q "ended cleanly *yes" "$WORK/out" && grep -q "^Events by family" "$WORK/out" &&
      echo ok || echo "no 'ended cleanly yes' or no events by family")
judge "info text: ended cleanly, events by family"

# info needs no root: as nobody, on a copy nobody may read
NOBODY=$(mktemp -d /tmp/kmemscope-nobody.XXXXXX)
chmod 755 "$NOBODY"
cp "$F" "$NOBODY/sys.kmt"
chmod 644 "$NOBODY/sys.kmt"
run setpriv --reuid=65534 --regid=65534 --clear-groups "$KMS" info -i "$NOBODY/sys.kmt" --json
rm -rf "$NOBODY"
jcheck "$WORK/info.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("file"), b.pop("file")
print("ok" if a == b else "differs from root's")
EOF
judge "info as nobody: the same description"

# --- -- CMD ------------------------------------------------------------------

F=$WORK/cmd.kmt
run "$KMS" record -o "$F" --settle 0 -- "$TRIGGER" pipes 500
res=ok
judge "record -- trigger: exit 0"
run "$KMS" info -i "$F" --json
jcheck <<'EOF'
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
judge "info: the command, its tree only, its allocations"
run "$KMS" stat -i "$F" --json -n 0
jcheck <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
comms = {p["comm"] for p in s["processes"] if p["allocs"]}
print("ok" if comms and comms <= {"trigger", "kmemscope"} else "allocating processes %s" % comms)
EOF
judge "stat -i after -- CMD: only the command allocates"
run "$KMS" record -o "$WORK/status.kmt" --settle 0 -- sh -c 'exit 3'
res=ok
judge "record -- CMD: exits with CMD's status" 3
run "$KMS" record -o "$WORK/status.kmt" --settle 0 -- "$WORK/no-such-command"
res=ok
judge "record -- CMD that cannot run: 127" 127

# --- SIGINT and SIGTERM end the file cleanly ----------------------------------

for sig in INT TERM; do
	F=$WORK/sig$sig.kmt
	"$KMS" record -o "$F" >"$WORK/out" 2>"$WORK/err" </dev/null &
	pid=$!
	# tracing has begun once the META block follows the header
	for i in $(seq 1 100); do
		[ "$(stat -c %s "$F" 2>/dev/null || echo 0)" -gt 96 ] && break
		sleep 0.1
	done
	sleep 2
	kill -"$sig" "$pid"
	RC=0
	wait "$pid" || RC=$?
	res=ok
	judge "record, SIG$sig mid-run: exit 0"
	run "$KMS" info -i "$F" --json
	jcheck <<'EOF'
import json, sys
i = json.load(open(sys.argv[1]))
e = i["end"]
print("ok" if e["ended"] and not e["cut_short"] and i["records"]["trace_events"] > 0
      else "end %s, %d trace events" % (e, i["records"]["trace_events"]))
EOF
	judge "SIG$sig: the file ends cleanly"
done

# --- a full disk ---------------------------------------------------------------

TINY=$WORK/tiny
mkdir -p "$TINY"
RC=0
mount -t tmpfs -o size=1m tmpfs "$TINY" || { RC=$?; TINY=; }
res=ok
judge "a tmpfs of 1 MiB mounted"
F=$WORK/tiny/full.kmt
"$GEN" -n 3000000 >/dev/null 2>&1 &
gen=$!
run timeout 60 "$KMS" record -o "$F" -d 30
kill "$gen" 2>/dev/null
wait "$gen" 2>/dev/null
lines=$(wc -l <"$WORK/err")
res=$([ "$lines" -eq 1 ] && grep -q "$F" "$WORK/err" &&
      grep -q "No space left on device" "$WORK/err" && echo ok ||
      echo "$lines lines on stderr, one naming the file and ENOSPC wanted")
judge "ENOSPC: exit 1, one line naming the file" 1
run "$KMS" info -i "$F" --json
jcheck <<'EOF'
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
judge "ENOSPC: info reads the file, cut short, exit 0"
run "$KMS" info -i "$F"
res=$(grep -q "CUT SHORT" "$WORK/out" && echo ok || echo "no CUT SHORT")
judge "ENOSPC: info text says the file was cut short"
run "$KMS" stat -i "$F" --json
jcheck <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print("ok" if s["quality"]["cut_short"] and sum(f["allocs"] for f in s["families"]) > 0
      else "cut_short %s" % s["quality"]["cut_short"])
EOF
judge "ENOSPC: stat -i reports what the file kept, cut short"
