#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of --pprof on this host's kernel: the profiles kmemscope writes,
# read by Debian's `go tool pprof` (golang-go). Prints one PASS or FAIL line per
# check; tests/live/run.sh counts them.
#
#   tests/live/pprof.sh BUILD_DIR
#
# stat: trigger pipes N makes, per pipe, two kmallocs at alloc_pipe_info: the
#   pipe_inode_info and its 16 pipe_buffers (16 x 40 = 640 bytes, a 1 KiB
#   object). pprof -top on alloc_space must name alloc_pipe_info first, with
#   N x (1024 + one kmalloc size) bytes in 2N objects (alloc_objects, focused on
#   it: alloc_empty_file makes two files per pipe), the numbers the JSON report
#   of the same session gives; labels name the family, cache and comm.
# replay: the profile of stat -i on the session's recording is the live one
#   (pprof -raw equal but for the source comment and the start time).
# leaks: N eventfds held by the trigger's worker are N objects in use at
#   do_eventfd (pprof -focus: their N files tie with them), the leaks report's
#   count; the profile shows inuse_space first.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/pprof.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
N=20000
EVENTFDS=500

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=15
. "$(dirname "$0")/lib.sh"
lib_begin pprof "$KMS" "$TRIGGER"
go tool pprof -h >/dev/null 2>&1 || { fail "pprof: go tool pprof missing (apt-get install golang-go)"; exit 1; }
# pprof keeps nothing of ours, but would write fetched profiles under $HOME/pprof
export PPROF_TMPDIR="$WORK"

# top FILE ARGS...: "function flat" of pprof -top's first row (bytes in B)
top() {
	f=$1
	shift
	go tool pprof -top -unit=B "$@" "$f" 2>"$WORK/pprof.err" |
		awk 'hdr { sub(/B$/, "", $1); print $6, $1; exit } /^ *flat +flat%/ { hdr = 1 }'
}

# flat FILE FUNC ARGS...: "FUNC flat" from pprof -top's row of FUNC (other functions
# may tie with it, so the first row is not always FUNC's)
flat() {
	f=$1
	fn=$2
	shift 2
	go tool pprof -top -unit=B "$@" "$f" 2>"$WORK/pprof.err" |
		awk -v fn="$fn" 'hdr && $6 == fn { sub(/B$/, "", $1); print $6, $1; exit }
			/^ *flat +flat%/ { hdr = 1 }'
}

# default_type CMD FILE WANT: pprof shows WANT when not told which value
default_type() {
	typ=$(go tool pprof -top "$2" 2>/dev/null | sed -n 's/^Type: //p')
	if [ "$typ" = "$3" ]; then
		pass "the $1 profile shows $3 by default"
	else
		fail "the $1 profile shows '$typ' by default (want $3)"
	fi
}

run "$KMS" stat --help
if [ "$RC" -eq 0 ] && grep -q -- '--pprof' "$WORK/out"; then
	pass "kmemscope stat --help lists --pprof"
else
	fail "kmemscope stat --help: exit $RC, --pprof expected on stdout"
fi
bad_arg "stat --pprof into a missing directory" stat -d 1 --pprof "$WORK/no/such/dir/p.pb.gz"

# --- stat: the known top site ---------------------------------------------------
P=$WORK/stat.pb.gz
RC=0
timeout 120 "$KMS" stat --json -o "$WORK/stat.json" --pprof "$P" --record "$WORK/stat.kmt" -- \
	"$TRIGGER" pipes "$N" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -eq 0 ] && [ -s "$P" ] && gzip -t "$P" 2>/dev/null; then
	pass "stat --pprof -- trigger pipes $N: a gzip file"
else
	fail "stat --pprof -- trigger pipes $N: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
fi
# what the JSON report of the same session says of alloc_pipe_info, and its losses
read -r jbytes jallocs lost <<EOF
$(python3 - "$WORK/stat.json" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
rows = [s for s in d["sites"] if s["function"] == "alloc_pipe_info" and s["family"] == "kmalloc"]
q = d["quality"]
print(sum(s["bytes_alloc"] for s in rows), sum(s["allocs"] for s in rows), q["lost"] + q["misses"])
PY
)
EOF
read -r fn bytes <<EOF
$(top "$P" -sample_index=alloc_space)
EOF
read -r fn2 objs <<EOF
$(top "$P" -sample_index=alloc_objects -focus='^alloc_pipe_info$')
EOF
if [ "$fn" = alloc_pipe_info ] && [ "$fn2" = alloc_pipe_info ]; then
	pass "pprof -top -sample_index=alloc_space: alloc_pipe_info first"
else
	fail "pprof -top -sample_index=alloc_space: '$fn' first (want alloc_pipe_info): $(head -n 2 "$WORK/pprof.err")"
fi
if [ -n "${jbytes:-}" ] && [ "${bytes:-x}" = "$jbytes" ] && [ "${objs:-x}" = "$jallocs" ]; then
	pass "pprof alloc_pipe_info: $bytes bytes in $objs objects, as the JSON report"
else
	fail "pprof alloc_pipe_info: ${bytes:-?} bytes in ${objs:-?} objects, the JSON report ${jbytes:-?} in ${jallocs:-?}"
fi
# the kernel's own numbers: per pipe 1024 bytes plus one kmalloc size for pipe_inode_info;
# records the kernel lost or skipped (quality) may only take that many away
if python3 - "${bytes:-0}" "${objs:-0}" "$N" "${lost:-0}" <<'PY'; then
import sys
b, o, n, lost = map(int, sys.argv[1:])
sizes = (96, 128, 192, 256, 512)
ok = any(o <= 2 * n and o >= 2 * n - lost and b <= n * (1024 + s) and b >= n * (1024 + s) - lost * 1024
         for s in sizes)
sys.exit(0 if ok and (lost or (o == 2 * n and b in [n * (1024 + s) for s in sizes])) else 1)
PY
	pass "pprof alloc_pipe_info: 2 x $N objects, $N x (1024 + a kmalloc size) bytes (lost: ${lost:-?})"
else
	fail "pprof alloc_pipe_info: ${objs:-?} objects, ${bytes:-?} bytes; want $((2 * N)), $N x (1024 + 96..512) (lost: ${lost:-?})"
fi
default_type "stat" "$P" alloc_space
# labels: the cache narrows to its site; every sample is the trigger's; the label keys
read -r fn cbytes <<EOF
$(top "$P" -sample_index=alloc_space -tagfocus='cache=^filp$')
EOF
go tool pprof -tags "$P" >"$WORK/tags" 2>&1
keys=$(sed -n 's/^ *\([a-z_]*\): Total.*/\1/p' "$WORK/tags" | sort | tr '\n' ' ')
want="cache comm family gfp pid"
# page allocations carry their order
grep -q ': page$' "$WORK/tags" && want="$want order"
missing=$(for k in $want; do case " $keys" in *" $k "*) ;; *) echo "$k" ;; esac; done)
if [ "$fn" = alloc_empty_file ] && grep -q '(  100%): trigger$' "$WORK/tags" && [ -z "$missing" ]; then
	pass "pprof labels: cache=filp at alloc_empty_file, comm trigger, keys $keys"
else
	fail "pprof labels: cache=filp gives '$fn', keys '$keys' (missing: $missing): $(grep -A 2 'comm:' "$WORK/tags" | tr '\n' '|')"
fi
if grep -q 'GFP_KERNEL_ACCOUNT|__GFP_ZERO' "$WORK/tags" && grep -q ': kmalloc$' "$WORK/tags"; then
	pass "pprof labels: GFP names and families decoded"
else
	fail "pprof labels: no GFP_KERNEL_ACCOUNT|__GFP_ZERO or kmalloc: $(head -c 300 "$WORK/tags")"
fi

# --- the same from the recording ----------------------------------------------
P2=$WORK/replay.pb.gz
run "$KMS" stat -i "$WORK/stat.kmt" --pprof "$P2"
if [ "$RC" -eq 0 ] && [ -s "$P2" ]; then
	pass "stat -i --pprof: written"
else
	fail "stat -i --pprof: exit $RC: $(head -n 2 "$WORK/err")"
fi
read -r fn rbytes <<EOF
$(top "$P2" -sample_index=alloc_space)
EOF
if [ "$fn" = alloc_pipe_info ] && [ "$rbytes" = "${bytes:-x}" ]; then
	pass "stat -i: pprof names alloc_pipe_info with $rbytes bytes, as live"
else
	fail "stat -i: pprof names '$fn' with '$rbytes' bytes (live: alloc_pipe_info, ${bytes:-?})"
fi
# the whole profile: the same but for the comment naming the source and the start time
go tool pprof -raw "$P" 2>&1 | grep -v -e '^Time: ' -e '^Comment: kmemscope ' >"$WORK/live.raw"
go tool pprof -raw "$P2" 2>&1 | grep -v -e '^Time: ' -e '^Comment: kmemscope ' >"$WORK/replay.raw"
if [ "$(wc -l <"$WORK/live.raw")" -gt 20 ] && cmp -s "$WORK/live.raw" "$WORK/replay.raw"; then
	pass "stat -i: pprof -raw equals the live profile's"
else
	fail "stat -i: pprof -raw differs from live: $(diff "$WORK/live.raw" "$WORK/replay.raw" | head -n 4 | tr '\n' '|')"
fi

# --- leaks: what is in use ------------------------------------------------------
L=$WORK/leaks.pb.gz
held eventfd "$EVENTFDS" leaks --json -o "$WORK/leaks.json" -n 0 --pprof "$L"
if [ "$RC" -eq 0 ] && [ -s "$L" ]; then
	pass "leaks --pprof: written"
else
	fail "leaks --pprof: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
fi
jcount=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sum(r["count"] for r in d["leaks"] if r["site"]["function"] == "do_eventfd" and r["family"] == "kmalloc"))
' "$WORK/leaks.json" 2>/dev/null)
read -r fn inuse <<EOF
$(flat "$L" do_eventfd -sample_index=inuse_objects -focus='^do_eventfd$')
EOF
if [ "$fn" = do_eventfd ] && [ "$inuse" = "${jcount:-x}" ] && [ "$inuse" -ge $((EVENTFDS * 9 / 10)) ] &&
	[ "$inuse" -le "$EVENTFDS" ]; then
	pass "leaks pprof: $inuse objects in use at do_eventfd, as the report ($EVENTFDS held)"
else
	fail "leaks pprof: '$fn' with '$inuse' in use, the report ${jcount:-?} ($EVENTFDS held)"
fi
default_type "leaks" "$L" inuse_space
