#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of the exports (--folded, --flamegraph) on this host's kernel,
# driven by tests/live/trigger. Prints one PASS or FAIL line per check;
# tests/live/run.sh counts them.
#
#   tests/live/flame.sh BUILD_DIR
#
# stat: pipe()+close() N times, folded allocation counts live, recorded too:
#   the folded lines parse, name the pipe syscall, sum to the report's totals
#   for each of the four values (from the file), and the replay's folded lines
#   are the live ones.
# leaks: N eventfds held while the report is made: the folded outstanding
#   counts show them under do_eventfd and sum to the report's leak totals.
# flamegraph: the SVG is well-formed (xmllint) and has one frame per node of
#   the folded tree wide enough to draw; headless Chromium runs its script
#   (the frames, a search through the URL fragment) and renders a screenshot,
#   kept as BUILD_DIR/tests/flame.png.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/flame.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
HERE=$(cd "$(dirname "$0")" && pwd)
N=2000
HELD=300
SHOT=$BUILD/tests/flame.png

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=24
. "$HERE/lib.sh"
lib_cleanup() {
	exec 3>&- 2>/dev/null
}
lib_begin flame "$KMS" "$TRIGGER"
command -v xmllint >/dev/null || { fail "flame: xmllint not found (apt-get install libxml2-utils)"; exit 1; }
command -v chromium >/dev/null || { fail "flame: chromium not found (apt-get install chromium)"; exit 1; }

# fcheck NAME [FILE...] <<'EOF' (python, folded.py imported): judge NAME on its output
fcheck() {
	name=$1
	shift
	res=$(PYTHONPATH=$HERE python3 - "$WORK/out" "$@" 2>&1 | tail -n 1)
	judge "$name"
}

# fsame NAME FILE: the folded stacks of the last run are FILE's
fsame() {
	fcheck "$1" "$2" <<'EOF'
import sys, folded
print(folded.same(sys.argv[1], sys.argv[2]))
EOF
}

# svgcheck NAME SVG FOLDED TEXT...: well-formed, one frame per drawable node of FOLDED, TEXTs in it
svgcheck() {
	name=$1
	svg=$2
	shift 2
	run xmllint --noout "$svg"
	res=ok
	judge "$name: xmllint finds the SVG well-formed"
	run cat "$svg"
	fcheck "$name: one frame per folded node wide enough, titled" "$@" <<'EOF'
import sys, folded
print(folded.svg_frames(*sys.argv[1:]))
EOF
}

# --- usage ---------------------------------------------------------------------
run "$KMS" stat --help
if [ "$RC" -eq 0 ] && grep -q -- '--folded' "$WORK/out" && grep -q -- '--flamegraph' "$WORK/out"; then
	pass "kmemscope stat --help lists the export options"
else
	fail "kmemscope stat --help: exit $RC, --folded and --flamegraph expected"
fi
bad_arg "stat --folded=bogus" stat --folded=bogus -d 1
bad_arg "stat --folded --json" stat --folded --json -d 1
bad_arg "stat --no-stacks --folded" stat --no-stacks --folded -d 1
bad_arg "stat --flamegraph-value without --flamegraph" stat --flamegraph-value inuse_count -d 1
bad_arg "leaks --flamegraph into a missing directory" leaks -d 1 --flamegraph "$WORK/no/such/x.svg"
bad_arg "misuse has no --folded" misuse --folded -d 1

# --- stat: pipes, live and recorded ----------------------------------------------
# the trigger writes to stdout too: the folded stacks go to a file
run timeout 120 "$KMS" stat --folded=alloc_count -o "$WORK/s.folded" --record "$WORK/s.kmt" \
	--flamegraph "$WORK/s.svg" -- "$TRIGGER" pipes "$N"
cp "$WORK/s.folded" "$WORK/out"
fcheck "stat --folded=alloc_count -- trigger pipes $N: parses, the pipe syscall's stacks" <<EOF
import sys, folded
lines = folded.read(sys.argv[1])
pipes = sum(v for f, v in lines if "do_pipe2" in f)
print("ok" if pipes >= $N else f"{len(lines)} lines, {pipes} allocations through do_pipe2 (want >= $N)")
EOF
for v in alloc_count alloc_bytes inuse_count inuse_bytes; do
	"$KMS" stat -i "$WORK/s.kmt" --json -o "$WORK/s.json" 2>"$WORK/err"
	run "$KMS" stat -i "$WORK/s.kmt" --folded=$v
	fcheck "stat -i --folded=$v sums to the report's totals" "$WORK/s.json" "$v" <<'EOF'
import json, sys, folded
lines = folded.read(sys.argv[1])
fams = json.load(open(sys.argv[2]))["families"]
key = {"alloc_count": "allocs", "alloc_bytes": "bytes_alloc", "inuse_count": "outstanding",
       "inuse_bytes": "outstanding_bytes"}[sys.argv[3]]
want, got = sum(f[key] for f in fams), sum(v for _, v in lines)
print("ok" if got == want and want > 0 else f"folded sum {got}, report {key} {want}")
EOF
done
run "$KMS" stat -i "$WORK/s.kmt" --folded=alloc_count
fsame "stat: the replay's folded stacks are the live run's" "$WORK/s.folded"

# --- the flame graph of that run -------------------------------------------------
svgcheck "flamegraph" "$WORK/s.svg" "$WORK/s.folded" "kernel $(uname -r)," \
	"kmemscope stat: allocations by kernel stack"
# one page load for both (Chromium takes seconds to start): zoom to the pipe syscall, then search
run timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chrome" \
	--dump-dom "file://$WORK/s.svg#zoom=do_pipe2&search=pipe"
cp "$WORK/out" "$WORK/dom"
fcheck "flamegraph: Chromium runs the script: every frame, a search" "$WORK/s.svg" <<'EOF'
import re, sys
dom, svg = open(sys.argv[1]).read(), open(sys.argv[2]).read()
want = int(re.search(r'data-frames="(\d+)"', svg).group(1))
frames = len(re.findall(r'<g class="f[ "]', dom))
hits = len(re.findall(r'<g class="f m"', dom))
m = re.search(r'Matched: ([0-9.]+)%', dom)
ok = frames == want and hits > 0 and m and float(m.group(1)) > 0
print("ok" if ok else f"{frames} frames (want {want}), {hits} matched, {m and m.group(0)}")
EOF
fcheck "flamegraph: a zoom shows only the frame, what is under it and its callers" <<'EOF'
import re, sys
dom = open(sys.argv[1]).read()
shown = [g for g in re.findall(r'<g class="f[^"]*"[^>]*>', dom) if "display: none" not in g]
names = [re.search(r'data-n="([^"]*)"', g).group(1) for g in shown]
hidden = dom.count("display: none")
ok = "do_pipe2" in names and "all" in names and hidden > 0 and \
    re.search(r'id="unzoom"[^>]*opacity: 1', dom)
print("ok" if ok else f"{len(shown)} shown, {hidden} hidden, names {names[:5]}")
EOF
rm -f "$SHOT"
run timeout 90 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chrome" \
	--window-size=1200,700 --screenshot="$SHOT" "file://$WORK/s.svg"
fcheck "flamegraph: Chromium renders a screenshot ($SHOT)" "$SHOT" <<'EOF'
import sys, struct, zlib
png = open(sys.argv[2], "rb").read()
ok = png[:8] == b"\x89PNG\r\n\x1a\n"
# the distinct colours of the pixels: a blank page has one or two
w, h = struct.unpack(">II", png[16:24])
data, at = b"", 8
while at < len(png):
    n, kind = struct.unpack(">I4s", png[at:at + 8])
    if kind == b"IDAT":
        data += png[at + 8:at + 8 + n]
    at += 12 + n
raw = zlib.decompress(data)
colours = len(set(raw[i:i + 3] for i in range(1, min(len(raw), 400000), 4)))
print("ok" if ok and colours > 20 else f"{len(png)} bytes, {w}x{h}, {colours} colours")
EOF

# --- leaks: eventfds held while the report is made --------------------------------
held eventfd "$HELD" leaks --folded=inuse_count --record "$WORK/l.kmt" \
	--flamegraph "$WORK/l.svg"
cp "$WORK/out" "$WORK/l.folded"
fcheck "leaks --folded=inuse_count: $HELD held eventfds under eventfd2;do_eventfd" <<EOF
import sys, folded
lines = folded.read(sys.argv[1])
held = sum(v for f, v in lines if "do_eventfd" in f and any("eventfd2" in x for x in f.split(";")))
print("ok" if held >= $HELD else f"{len(lines)} lines, {held} objects at do_eventfd (want >= $HELD)")
EOF
"$KMS" leaks -i "$WORK/l.kmt" --json -o "$WORK/l.json" 2>"$WORK/err"
for v in inuse_bytes inuse_count; do
	if [ $v = inuse_bytes ]; then
		run "$KMS" leaks -i "$WORK/l.kmt" --folded
	else
		run "$KMS" leaks -i "$WORK/l.kmt" --folded=$v
	fi
	fcheck "leaks -i --folded=$v sums to the report's leak totals" "$WORK/l.json" $v <<'EOF'
import json, sys, folded
lines = folded.read(sys.argv[1])
s = json.load(open(sys.argv[2]))["summary"]
want = s["leak_bytes" if sys.argv[3] == "inuse_bytes" else "leak_objects"]
got = sum(v for _, v in lines)
print("ok" if got == want and want > 0 else f"folded sum {got}, report {want}")
EOF
done
run "$KMS" leaks -i "$WORK/l.kmt" --folded=inuse_count
fsame "leaks: the replay's folded stacks are the live run's" "$WORK/l.folded"
svgcheck "leaks flamegraph" "$WORK/l.svg" "$WORK/l.folded" \
	"kmemscope leaks: objects outstanding by kernel stack"
