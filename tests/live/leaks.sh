#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of the detectors (kmemscope leaks, kmemscope misuse) on this host's
# kernel, driven by tests/live/trigger. Prints one PASS or FAIL line per check;
# tests/live/run.sh counts them.
#
#   tests/live/leaks.sh BUILD_DIR
#
# eventfd: N eventfds held open by the trigger's worker are N outstanding
#   kmallocs at do_eventfd, in the worker; once closed, none. The worker's mm
#   (mm_struct, pgd) is retained (freed_with_mm), never a leak.
# epoll: 10000 epoll_create1()+close() in two waves 6 s apart: the kernel frees the eventpoll objects
#   after an RCU grace period without a kfree event; do_epoll_create must show
#   under frees_not_observable with 10000 allocations, not as a leak, and no
#   row there (nor after one wave of epoll-once) may be a certain leak.
# bookkeeping: five forks, a new file and a closed loopback TCP connection leave
#   no certain leak at copy_process (a thread stack's vm_struct),
#   alloc_slab_obj_exts, security_inode_alloc (the new inode's LSM blob, retained
#   with the inode) or the TIME_WAIT bind buckets (retained), nor in the caches
#   freed in bulk too (maple_node, skbuff_head_cache).
# lazy-teardown: files in unix-socket garbage cycles are freed (the settle period
#   starts the kernel's collector), a network namespace's struct net is retained
#   (lazily freed by the next teardown); no certain leak among them.
# vma-tree: a short command's VMA tree nodes (maple_node under mm code, freed in
#   bulk with its mm) are retained freed_with_mm, none a leak candidate.
# misuse: pipes judged with nothing blocking in atomic context; mmap() makes
#   GFP_NOWAIT maple-tree allocations in process context (an info finding).
# filters: -c with a comm that never runs reports nothing; -c trigger under a
#   shell only the trigger's rows; -F only the families asked for.
# stacks: probe shows leaks caching stacks per site, misuse not; the eventfd rows'
#   stacks (cached) are the eventfd2 syscall's; N pipes held: the files at
#   alloc_empty_file show under each of its two callers (alloc_file_pseudo,
#   alloc_file_clone) N times, never merged under one (the cache tells callers apart).
# Every JSON report also has quality.out_of_order == 0.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/leaks.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
N=${LEAKS_EVENTFDS:-500}
EPOLLS=10000

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=52
. "$(dirname "$0")/lib.sh"
lib_begin leaks "$KMS" "$TRIGGER"

run "$KMS" leaks --help
if [ "$RC" -eq 0 ] && grep -q -- '--min-age' "$WORK/out"; then
	pass "kmemscope leaks --help"
else
	fail "kmemscope leaks --help: exit $RC, --min-age expected on stdout"
fi
run "$KMS" misuse --help
if [ "$RC" -eq 0 ] && grep -q -- '--stack-depth' "$WORK/out"; then
	pass "kmemscope misuse --help"
else
	fail "kmemscope misuse --help: exit $RC, --stack-depth expected on stdout"
fi
bad_arg "kmemscope leaks --stack-depth 0" leaks --stack-depth 0
bad_arg "kmemscope leaks --stack-depth 33" leaks --stack-depth 33
bad_arg "kmemscope misuse --min-age 5" misuse --min-age 5
bad_arg "kmemscope leaks --settle -1" leaks --settle -1
bad_arg "kmemscope leaks --settle 0.5x" leaks --settle 0.5x
bad_arg "kmemscope leaks --stacks some" leaks --stacks some

# leaks loads the per-site stack cache, misuse one stack per allocation
for cmd_want in leaks:cached misuse:all; do
	cmd=${cmd_want%%:*}
	want=${cmd_want#*:}
	run "$KMS" probe --for "$cmd" --json
	got=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["configuration"]["stacks"])' \
		<"$WORK/out" 2>/dev/null)
	if [ "$RC" -eq 0 ] && [ "$got" = "$want" ]; then
		pass "probe --for $cmd: stacks $got"
	else
		fail "probe --for $cmd: exit $RC, stacks '$got' (want $want)"
	fi
done

# check WHAT JSON ARGS...: the report's checks, counted through pass and fail;
# a Python error is a FAIL line too (and the checks it skipped go missing)
check() {
	python3 - "$@" >"$WORK/check" 2>"$WORK/check.err" <<'EOF'
import json, sys

what, path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
sys.excepthook = lambda t, e, tb: print(f"FAIL {what}: check raised {t.__name__}: {e}")
try:
    d = json.load(open(path))
except Exception as e:
    print(f"FAIL {what}: report is not JSON: {e}")
    sys.exit(0)

# allocated at func: the first frame shown (the caller of the allocator)
def count_at(rows, func, family, pid=None):
    n = 0
    for r in rows:
        if r["family"] == family and r["site"]["function"] == func:
            if pid is None or r["example"]["pid"] == pid:
                n += r["count"]
    return n

certain = d["verdict"]["certain"]
lost = d["verdict"]["records_lost"]
unseen, tasks = d["quality"]["softirqs_unseen"], d["quality"]["tasks_unseen"]
# what an accepted uncertain verdict rests on, for the PASS lines
why = "" if certain else (f" (uncertain: {lost} records lost, {unseen} softirqs and {tasks} "
                          f"task runs unseen)")
ooo = d["quality"]["out_of_order"]
print(f"{'PASS' if ooo == 0 else 'FAIL'} {what}: quality.out_of_order == 0 (got {ooo})")
if what.startswith("eventfd-held"):
    n, worker = int(args[0]), int(args[1])
    got = count_at(d["leaks"], "do_eventfd", "kmalloc")
    mine = count_at(d["leaks"], "do_eventfd", "kmalloc", worker)
    ok = got == n and mine == n if certain else got >= n * 9 // 10
    print(f"{'PASS' if ok else 'FAIL'} {what}: {got} outstanding kmallocs at do_eventfd "
          f"({mine} with the worker {worker} as example), {n} held{why}"
          + ("" if ok else f"; quality {d['quality']}, implicit {d['summary']['implicit_frees']}"))
    # stacks come from the per-site cache: the row's must still be the syscall's own
    stacks = [r["stack"] for r in d["leaks"] if r["site"]["function"] == "do_eventfd"]
    ok = bool(stacks) and all(any("eventfd2" in f for f in s) for s in stacks)
    print(f"{'PASS' if ok else 'FAIL'} {what}: do_eventfd rows' stacks go through eventfd2: "
          f"{stacks[:1]}")
    unobs = [u for u in d["frees_not_observable"] if u["site"]["function"] == "do_eventfd"]
    print(f"{'FAIL' if unobs else 'PASS'} {what}: do_eventfd not under frees_not_observable")
    # the worker still runs: its mm and what mm_init() made for it are retained, not leaks
    mm = [r for r in d["retained"] if r["retained"] == "freed_with_mm"]
    fams = sorted({r["family"] for r in mm})
    bad = [r["site"]["symbol"] for r in d["leaks"]
           if r["cache"] == "mm_struct" or r["site"]["function"] == "pgd_alloc"]
    ok = {"kmem_cache", "page"} <= set(fams) and not bad
    print(f"{'PASS' if ok else 'FAIL'} {what}: the live worker's mm retained as freed_with_mm "
          f"({sum(r['count'] for r in mm)} objects, families {fams}), none among the leaks"
          + (f"; leaks at {bad}" if bad else ""))
    sch = d.get("schema") == "kmemscope.leaks" and d.get("version") == 2
    print(f"{'PASS' if sch else 'FAIL'} {what}: schema kmemscope.leaks v2, quality present"
          if sch and "quality" in d else f"FAIL {what}: schema or quality missing")
elif what.startswith("pipes-held"):
    n, worker = int(args[0]), int(args[1])
    rows = [r for r in d["leaks"] if r["site"]["function"] == "alloc_empty_file"
            and r["example"]["pid"] == worker]
    by = {c: sum(r["count"] for r in rows if any(f.startswith(c + "+") for f in r["stack"]))
          for c in ("alloc_file_pseudo", "alloc_file_clone")}
    both = [r["stack"] for r in rows if all(any(f.startswith(c + "+") for f in r["stack"])
                                            for c in by)]
    ok = not both and (all(v == n for v in by.values()) if certain else
                       all(n * 9 // 10 <= v <= n for v in by.values()))
    print(f"{'PASS' if ok else 'FAIL'} {what}: files at alloc_empty_file by caller {by}, "
          f"{n} pipes held{why}"
          + (f"; a stack through both: {both[0]}" if both else ""))
elif what.startswith("eventfd-closed"):
    got = count_at(d["leaks"], "do_eventfd", "kmalloc")
    print(f"{'PASS' if got == 0 else 'FAIL'} {what}: {got} outstanding kmallocs at do_eventfd "
          f"after close (want 0)")
elif what.startswith("epoll"):
    n = int(args[0])
    leak = count_at(d["leaks"], "do_epoll_create", "kmalloc")
    print(f"{'PASS' if leak == 0 else 'FAIL'} {what}: {leak} leaks reported at "
          f"do_epoll_create (want 0)")
    un = [u for u in d["frees_not_observable"] if u["site"]["function"] == "do_epoll_create"]
    allocs = sum(u["allocs"] for u in un)
    implicit = sum(u["implicit_frees"] for u in un)
    ok = (allocs == n if certain else allocs >= n * 9 // 10) and implicit > 0
    print(f"{'PASS' if ok else 'FAIL'} {what}: do_epoll_create under frees_not_observable: "
          f"{allocs} allocs (want {n}), {implicit} implicit frees, "
          f"{sum(u['frees'] for u in un)} traced frees, "
          f"{sum(u['outstanding'] for u in un)} outstanding{why}")
elif what.startswith("never-certain"):
    # objects the kernel frees through RCU: never a certain leak, whatever the class
    func = args[0]
    rows = [r for r in d["leaks"] if r["site"]["function"] == func]
    sure = sum(r["count"] for r in rows if r["confidence"] == "certain")
    print(f"{'PASS' if sure == 0 else 'FAIL'} {what}: {sure} objects at {func} called "
          f"certain leaks (want 0; {sum(r['count'] for r in rows)} outstanding in all)")
    ok = all(r["reasons"] for r in rows if r["confidence"] != "certain")
    print(f"{'PASS' if ok else 'FAIL'} {what}: every unconfirmed row gives its reasons")
elif what.startswith("bookkeeping"):
    # the kernel's own bookkeeping is not its caller's leak (docs/detectors.md)
    funcs = ("copy_process", "alloc_slab_obj_exts", "security_inode_alloc",
             "inet_bind_bucket_create", "inet_bind2_bucket_create")
    caches = ("maple_node", "skbuff_head_cache")
    bad = [(r["site"]["symbol"], r["family"], r["count"]) for r in d["leaks"]
           if (r["site"]["function"] in funcs or r["cache"] in caches)
           and r["confidence"] == "certain"]
    print(f"{'FAIL' if bad else 'PASS'} {what}: no certain leak at {', '.join(funcs)} "
          f"or in {', '.join(caches)}" + (f": {bad}" if bad else ""))
    def retained(func):
        return sum(r["count"] for r in d["retained"] if r["site"]["function"] == func)
    blob, tw = retained("security_inode_alloc"), retained("inet_bind2_bucket_create")
    nested = sum(r["count"] for r in d["nested"] if r["family"] == "kmalloc")
    print(f"{'PASS' if blob and tw else 'FAIL'} {what}: the new file's inode blob retained "
          f"({blob} at security_inode_alloc), the TIME_WAIT connection's bind bucket ({tw} at "
          f"inet_bind2_bucket_create); {nested} allocator-bookkeeping kmallocs nested")
elif what.startswith("lazy-teardown"):
    n = int(args[0])
    lazy = ("alloc_empty_file", "security_file_alloc", "unix_prepare_fpl", "scm_fp_dup",
            "copy_net_ns", "net_alloc")
    sure = [(r["site"]["symbol"], r["count"]) for r in d["leaks"]
            if r["site"]["function"] in lazy and r["confidence"] == "certain"]
    print(f"{'FAIL' if sure else 'PASS'} {what}: no certain leak at {', '.join(lazy)}"
          + (f": {sure}" if sure else ""))
    # the cycles held 4 files each; collected, none is left (a few others may be)
    files = count_at(d["leaks"], "alloc_empty_file", "kmem_cache")
    nets = sum(r["count"] for r in d["leaks"] if r["family"] == "kmem_cache"
               and r["site"]["function"] in ("copy_net_ns", "net_alloc"))
    ok = files < n and nets == 0
    print(f"{'PASS' if ok else 'FAIL'} {what}: {files} files outstanding after {n} garbage "
          f"cycles of 4 (want < {n}), {nets} struct net among the leak candidates (want 0)")
elif what.startswith("vma-tree"):
    # a process's VMA tree nodes go with its mm: retained, never a leak candidate
    mm = ("vma_", "__vma_", "vms_", "do_vmi_", "__split_vma", "__mmap_region", "do_brk_flags",
          "insert_vm_struct", "expand_downwards", "commit_merge", "relocate_vma_down", "dup_mmap")
    def under_mm(r):
        return any(f.startswith(mm) for f in r.get("stack") or [])
    cand = [r for r in d["leaks"] if r["cache"] == "maple_node" and under_mm(r)]
    kept = sum(r["count"] for r in d["retained"]
               if r["cache"] == "maple_node" and r["retained"] == "freed_with_mm")
    print(f"{'FAIL' if cand or not kept else 'PASS'} {what}: {kept} maple_node objects "
          f"retained freed_with_mm, {sum(r['count'] for r in cand)} in leak candidate rows "
          f"under mm code (want 0)")
elif what.startswith("filter-none"):
    rows = {k: len(d[k]) for k in ("leaks", "retained", "nested", "frees_not_observable")}
    rows["bad_frees"] = len(d["bad_frees"]["findings"])
    ok = not any(rows.values())
    print(f"{'PASS' if ok else 'FAIL'} {what}: no rows for a comm that never ran: {rows}")
    m = d.get("misuse", {})
    print(f"{'PASS' if not m.get('checked') else 'FAIL'} {what}: {m.get('checked')} "
          f"allocations judged for misuse (want 0)")
elif what.startswith("filter-comm"):
    comm = args[0]
    rows = [r for k in ("leaks", "retained", "nested") for r in d[k]]
    others = sorted({r["example"]["comm"] for r in rows} - {comm})
    ok = rows and not others
    print(f"{'PASS' if ok else 'FAIL'} {what}: {len(rows)} rows, all of {comm}"
          + (f"; others: {others}" if others else ""))
elif what.startswith("filter-family"):
    fams = set(args[0].split(","))
    rows = [r for k in ("leaks", "retained", "nested") for r in d[k]]
    others = sorted({r["family"] for r in rows} - fams)
    print(f"{'PASS' if not others else 'FAIL'} {what}: families {sorted(fams)} only"
          + (f"; others: {others}" if others else ""))
elif what.startswith("misuse-none"):
    m = d.get("misuse", {})
    ok = d.get("schema") == "kmemscope.misuse" and m.get("checked") == 0 and not m.get("findings")
    print(f"{'PASS' if ok else 'FAIL'} {what}: {m.get('checked')} allocations judged, "
          f"{len(m.get('findings', []))} findings for a comm that never ran (want 0, 0)")
elif what.startswith("misuse-positive"):
    # mmap() inserts into the maple tree with GFP_NOWAIT from plain process
    # context: a real, harmless atomic_gfp_in_process finding, once per call
    n = int(args[0])
    m = d.get("misuse", {})
    hits = [f for f in m.get("findings", []) if f["kind"] == "atomic_gfp_in_process"
            and f["context"] == "process" and f["severity"] == "info"
            and "GFP_NOWAIT" in (f.get("gfp") or "")]
    most = max((f["count"] for f in hits), default=0)
    print(f"{'PASS' if most >= n else 'FAIL'} {what}: atomic_gfp_in_process (GFP_NOWAIT, "
          f"process context) found, {most} at its busiest site (want >= {n})")
elif what.startswith("misuse"):
    m = d.get("misuse", {})
    sch = d.get("schema") == "kmemscope.misuse"
    ok = sch and m.get("checked", 0) > 0 and m["contexts"]["process"] > 0 \
        and m["baseline_pc"]["kmalloc"] is not None
    print(f"{'PASS' if ok else 'FAIL'} {what}: schema {d.get('schema')}, "
          f"{m.get('checked')} allocations judged, baseline {m.get('baseline_pc')}")
    errs = [f for f in m.get("findings", []) if f["severity"] == "error"]
    print(f"{'PASS' if not errs else 'FAIL'} {what}: {len(errs)} blocking-in-atomic findings "
          f"for pipe()+close() (want 0)"
          + (f": {errs[0]['kind']} {errs[0]['context']} {errs[0]['site']['symbol']}"
             if errs else ""))
EOF
	while read -r verdict rest; do
		case $verdict in
		PASS) pass "$rest" ;;
		FAIL) fail "$rest" ;;
		esac
	done <"$WORK/check"
	[ -s "$WORK/check" ] || fail "$1: check printed nothing: $(tail -n 1 "$WORK/check.err")"
}

# --- eventfd held: N outstanding at do_eventfd -------------------------------
# The command starts the trigger in the background and exits once it holds its
# eventfds; kmemscope reports while the trigger still holds them.
held eventfd "$N" leaks --json -o "$WORK/held.json" -n 0 --stack-depth 6
if [ "$RC" -ne 0 ] || [ -z "$worker" ] || [ ! -s "$WORK/held.json" ]; then
	fail "eventfd-held $N: exit $RC, worker '$worker': $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "eventfd-held $N" "$WORK/held.json" "$N" "$worker"
fi
grep -q 'status=0$' "$WORK/trig.out" && pass "eventfd-held $N: trigger released and exited" ||
	fail "eventfd-held $N: trigger did not finish: $(tail -n 1 "$WORK/trig.out")"

# --- pipes held: one site, two callers, never merged by the stack cache -------
held pipes-held "$N" leaks --json -o "$WORK/pipes.json" -n 0 --stack-depth 6
if [ "$RC" -ne 0 ] || [ -z "$worker" ] || [ ! -s "$WORK/pipes.json" ]; then
	fail "pipes-held $N: exit $RC, worker '$worker': $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "pipes-held $N" "$WORK/pipes.json" "$N" "$worker"
fi

# --- eventfd closed before the report: none outstanding ----------------------
RC=0
echo x | timeout 120 "$KMS" leaks --json -o "$WORK/closed.json" -n 0 -- \
	"$TRIGGER" eventfd "$N" >"$WORK/out" 2>"$WORK/err" || RC=$?
if [ "$RC" -ne 0 ] || ! grep -q 'status=0$' "$WORK/out"; then
	fail "eventfd-closed $N: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "eventfd-closed $N" "$WORK/closed.json"
fi

# --- epoll: frees the kernel does not trace ----------------------------------
RC=0
timeout 120 "$KMS" leaks --json -o "$WORK/epoll.json" -n 0 -- \
	"$TRIGGER" epoll "$EPOLLS" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || ! grep -q 'status=0$' "$WORK/out"; then
	fail "epoll $EPOLLS: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "epoll $EPOLLS" "$WORK/epoll.json" "$EPOLLS"
	check "never-certain epoll $EPOLLS" "$WORK/epoll.json" do_epoll_create
fi

# --- epoll in one wave: whether addresses come back is chance; no certain leak
RC=0
timeout 120 "$KMS" leaks --json -o "$WORK/epoll1.json" -n 0 -- \
	"$TRIGGER" epoll-once 3000 >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || ! grep -q 'status=0$' "$WORK/out"; then
	fail "never-certain epoll-once: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "never-certain epoll-once 3000" "$WORK/epoll1.json" do_epoll_create
fi

# --- a short command's VMA tree: too few nodes for an address to come back (2 checks) ---
RC=0
timeout 60 "$KMS" leaks --json -o "$WORK/vma.json" -n 0 -- \
	cat /proc/meminfo /proc/vmstat /proc/zoneinfo >/dev/null 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/vma.json" ]; then
	fail "vma-tree: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "vma-tree cat of three /proc files" "$WORK/vma.json"
fi

# --- the kernel's own bookkeeping: forks, a new file, a closed TCP connection -
cat >"$WORK/tcp.py" <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
c = socket.create_connection(s.getsockname())
a, _ = s.accept()
c.close()
a.close()
s.close()
EOF
RC=0
timeout 120 "$KMS" leaks --json -o "$WORK/book.json" -n 0 -- sh -c \
	"for i in 1 2 3 4 5; do ls / >/dev/null & done; wait; echo x >'$WORK/newfile';
	 python3 '$WORK/tcp.py'" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/book.json" ]; then
	fail "bookkeeping: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "bookkeeping forks, a file, a TCP connection" "$WORK/book.json"
fi

# --- lazy teardowns: unix-socket garbage, network namespaces (3 checks) --------
# 30 pairs of unix sockets, each holding files sent over the other and never
# received: only the kernel's unix garbage collector frees them (a pipe's and
# both sockets' files); the settle period starts it. A network namespace's
# struct net is freed by the next namespace's teardown: lazily freed.
cat >"$WORK/scm.py" <<'EOF'
import array, os, socket
for i in range(30):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    r, w = os.pipe()
    fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r, w, a.fileno(), b.fileno()]))]
    a.sendmsg([b"x"], fds)
    b.sendmsg([b"y"], fds)
    for fd in (a, b):
        fd.close()
    os.close(r)
    os.close(w)
EOF
RC=0
timeout 120 "$KMS" leaks --json -o "$WORK/lazy.json" -n 0 -- sh -c \
	"python3 '$WORK/scm.py' && for i in 1 2 3 4 5 6; do unshare -n true; done" \
	>"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/lazy.json" ]; then
	fail "lazy-teardown: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "lazy-teardown unix garbage, network namespaces" "$WORK/lazy.json" 30
fi

# --- misuse, a positive case user space can produce ---------------------------
# A blocking GFP in atomic context is a kernel bug no system call can be asked
# to make: those findings are checked against the companion module in QEMU
# (tests/qemu). What user space can produce is the info finding: mmap() makes
# the kernel insert into the maple tree with GFP_NOWAIT where it could sleep.
RC=0
timeout 120 "$KMS" misuse --json -o "$WORK/misuse-pos.json" -- \
	"$TRIGGER" pages 1000 >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ]; then
	fail "misuse-positive pages: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "misuse-positive pages 1000" "$WORK/misuse-pos.json" 1000
fi

# --- filters: what a filter leaves out appears nowhere ------------------------
# a comm that never runs, system-wide, while allocations happen
RC=0
timeout 60 "$KMS" leaks --json -o "$WORK/nomatch.json" -n 0 -c kms-no-such -d 2 \
	>"$WORK/out" 2>"$WORK/err" </dev/null &
kpid=$!
sleep 0.5
"$TRIGGER" pipes 2000 >/dev/null 2>&1
"$TRIGGER" epoll-once 200 >/dev/null 2>&1
wait $kpid || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/nomatch.json" ]; then
	fail "filter-none leaks -c: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "filter-none leaks -c kms-no-such" "$WORK/nomatch.json"
fi
RC=0
timeout 60 "$KMS" misuse --json -o "$WORK/nomatch-m.json" -c kms-no-such -d 2 \
	>"$WORK/out" 2>"$WORK/err" </dev/null &
kpid=$!
sleep 0.5
"$TRIGGER" pipes 2000 >/dev/null 2>&1
wait $kpid || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/nomatch-m.json" ]; then
	fail "misuse-none misuse -c: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "misuse-none misuse -c kms-no-such" "$WORK/nomatch-m.json"
fi
# the command's tree holds a shell and the trigger: only the trigger's rows stay
RC=0
echo x | timeout 120 "$KMS" leaks --json -o "$WORK/comm.json" -n 0 -c trigger -- \
	sh -c "'$TRIGGER' eventfd 100 & wait" >"$WORK/out" 2>"$WORK/err" || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/comm.json" ]; then
	fail "filter-comm leaks -c trigger: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "filter-comm leaks -c trigger" "$WORK/comm.json" trigger
fi
RC=0
timeout 120 "$KMS" leaks --json -o "$WORK/fam.json" -n 0 -F page,vmalloc -- \
	"$TRIGGER" bpfmap 20 >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ] || [ ! -s "$WORK/fam.json" ]; then
	fail "filter-family leaks -F: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "filter-family leaks -F page,vmalloc" "$WORK/fam.json" page,vmalloc
fi

# --- misuse: a process-context workload judged, nothing blocking in atomic ---
RC=0
timeout 120 "$KMS" misuse --json -o "$WORK/misuse.json" -- \
	"$TRIGGER" pipes 500 >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
if [ "$RC" -ne 0 ]; then
	fail "misuse pipes: exit $RC: $(head -c 300 "$WORK/err" | tr '\n' '|')"
else
	check "misuse pipes" "$WORK/misuse.json"
fi
