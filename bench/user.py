#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The cost of --user, in measures a loaded machine moves little.

    bench/user.py BUILD_DIR
    USER_ITERS=N    mloop iterations (default 50000: 2 calls each, malloc and free)
    USER_SPIN=N     arithmetic rounds per iteration of the slower mloop (default 2000)
    USER_RECORDS=N  records of the python3 workload (default 10000)
    USER_ROUNDS=N   rounds (default 3); the order of the configurations rotates

Workloads: bench/mloop (a malloc/free loop), the same loop with USER_SPIN rounds
of arithmetic per iteration (a lower call rate), and bench/pywork.py (Debian's
python3 building and round-tripping a JSON document: deterministic). Each runs
untraced, under bench/floor -u (count-only uprobe/uretprobe programs on the
same C library functions: the price of the traps alone), kmemscope stat --user,
kmemscope leaks --user (a user stack per allocation) and heaptrack (LD_PRELOAD).

Per configuration, medians over rounds with the range:
- "cpu ns/call": the workload's own CPU time (user + system, measured inside
  it) per traced call: a uprobe hit traps in the traced process, so that is
  where it is paid, and unlike wall time it does not count waiting for a CPU.
  "calls" are the entry hits floor counted (the C library's own nested calls
  trap too); without a floor run, the workload's count (mloop) or kmemscope's.
- "bpf ns/call", "runs/call": the BPF programs' own run time and run count
  from bpf_stats (kernel.bpf_stats_enabled, switched on for the run if off):
  floor's from its programs, kmemscope's read from bpftool while the workload
  lingers after its result line. BPF run time is on-CPU time in the program.
- "seen": the user family's allocations (stat), or the allocations heaptrack
  says it saw, over the loop's; "lost": records lost plus program runs skipped
  (quality.lost + quality.misses; floor's own misses).
"floor -u -e" has no return probes: what a mode reading only the entries
(sizes and sites, no pointers) would trap.
Instruction counts (perf stat -e instructions) are printed where the machine
has a PMU; when it has none, the script says so in one line.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

STATS = "/proc/sys/kernel/bpf_stats_enabled"
LINGER_MS = "400"


def die(msg):
    print("bench/user.py: " + msg, file=sys.stderr)
    sys.exit(1)


def first_line(text, fallback):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else fallback


def prog_ids(pid):
    """the ids of the BPF programs process pid holds (its fds' fdinfo)"""
    ids = set()
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds) if os.path.isdir(fds) else []:
        try:
            if os.readlink(os.path.join(fds, fd)) != "anon_inode:bpf-prog":
                continue
            m = re.search(r"^prog_id:\s*(\d+)", open("/proc/%d/fdinfo/%s" % (pid, fd)).read(),
                          re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def bpf_runs(owner):
    """run count and ns of the uprobe programs (u_*, not u_sys_*) kmemscope process owner holds"""
    ids = prog_ids(owner)
    p = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
    try:
        progs = json.loads(p.stdout or "[]")
    except json.JSONDecodeError:
        return None
    runs = ns = 0
    for g in progs:
        name = g.get("name", "")
        if g.get("id") not in ids or not name.startswith("u_") or name.startswith("u_sys_"):
            continue
        runs += g.get("run_cnt", 0)
        ns += g.get("run_time_ns", 0)
    return (runs, ns) if ids else None


def run_one(argv, kms_out, floor_out):
    """one run: the workload's line, and what the tracer says (None where it says nothing)"""
    env = dict(os.environ, MLOOP_LINGER_MS=LINGER_MS)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    line, bpf, seen_lines, heap_seen = None, None, [], None
    for l in p.stdout:
        seen_lines.append(l)
        m = re.search(r"iters=(\d+) calls=(\d+) ns=(\d+) cpu_ns=(\d+)", l)
        if m and line is None:
            line = [int(v) for v in m.groups()]
            # the workload lingers: kmemscope's programs are still loaded
            if os.path.basename(argv[0]) == "kmemscope":
                bpf = bpf_runs(p.pid)
    err = p.stderr.read()
    if os.path.basename(argv[0]) == "heaptrack":
        # heaptrack says how many allocations its hooks saw
        m = re.search(r"^\s*allocations:\s*(\d+)", "".join(seen_lines) + err, re.M)
        heap_seen = int(m.group(1)) if m else None
    if p.wait() != 0 or line is None:
        return None, "exit %d: %s" % (p.returncode, first_line(err, "no result line"))
    r = {"cpu": line[3], "calls": line[1], "seen": heap_seen, "lost": None, "bpf": bpf,
         "entries": None}
    if os.path.basename(argv[0]) == "kmemscope":
        d = json.load(open(kms_out))
        fam = {f["family"]: f for f in d.get("families", [])}
        r["seen"] = fam["user"]["allocs"] if fam else None
        r["recorded"] = fam["user"]["allocs"] + fam["user"]["frees"] if fam else None
        r["lost"] = d["quality"]["lost"] + d["quality"]["misses"]
    elif os.path.basename(argv[0]) == "floor":
        text = open(floor_out).read()
        f = dict(kv.split("=", 1) for kv in text.splitlines()[0].split()[1:])
        r["bpf"] = (int(f["runs"]), int(f["run_ns"]))
        r["lost"] = int(f["misses"])
        # the -v lines: entry hits of the target
        m = re.search(r"floor\.event uprobe events=\d+ target_events=(\d+)", text)
        r["entries"] = int(m.group(1)) if m else None
    return r, None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def span(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return (fmt % statistics.median(vals)) + (" [%s-%s]" % (fmt % min(vals), fmt % max(vals))
                                              if len(vals) > 1 else "")


def report(wname, names, res, loop_allocs):
    # the full floor's entry hits: floor -u -e counts the same entries
    calls = med(r["entries"] for r in res.get("floor -u", []))
    how = "floor's entry hits"
    if calls is None:
        calls = med(r["calls"] or r.get("recorded") for c in names for r in res[c])
        how = "the workload's or kmemscope's count"
    if not calls or not res["untraced"]:
        print("\n%s: no untraced run or no call count: no table" % wname)
        return
    base = med(r["cpu"] / calls for r in res["untraced"])
    print("\n%s: %d calls per run (%s), medians [min-max] over rounds" % (wname, calls, how))
    print("%-13s %4s %26s %9s %10s %10s %9s %12s %6s" %
          ("config", "runs", "cpu ns/call", "x", "+ns/call", "bpf ns/call", "runs/call",
           "seen", "lost"))
    for c in names:
        rs = res[c]
        if not rs:
            print("%-13s %4d %26s" % (c, 0, "-"))
            continue
        cpu = [r["cpu"] / calls for r in rs]
        bpf = [r["bpf"][1] / calls if r["bpf"] else None for r in rs]
        runs = [r["bpf"][0] / calls if r["bpf"] else None for r in rs]
        seen = med(r["seen"] for r in rs)
        lost = [r["lost"] for r in rs if r["lost"] is not None]
        print("%-13s %4d %26s %9.2f %10.1f %10s %9s %12s %6s" %
              (c, len(rs), span(cpu, "%.1f"), med(cpu) / base, med(cpu) - base,
               span(bpf, "%.0f"), span(runs, "%.2f"),
               "%d/%d" % (seen, loop_allocs) if seen is not None and loop_allocs else
               ("%d" % seen if seen is not None else "-"),
               "%d" % max(lost) if lost else "-"))


def peers():
    """one line each on the peers that cannot run, and on instruction counts"""
    if not shutil.which("heaptrack"):
        print("heaptrack: not installed (apt-get install heaptrack): no row")
    if shutil.which("memleak-bpfcc"):
        r = subprocess.run(["timeout", "60", "memleak-bpfcc", "-p", str(os.getpid()), "1", "1"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("memleak-bpfcc: does not run on this machine (%s): no row" %
                  first_line(r.stderr, "exit %d" % r.returncode))
        else:
            print("memleak-bpfcc: runs here, but has no command mode to time a loop under "
                  "it; not measured")
    else:
        print("memleak-bpfcc: not installed (apt-get install bpfcc-tools): no row")
    p = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--", "true"],
                       capture_output=True, text=True) if shutil.which("perf") else None
    if p is None or "<not supported>" in p.stderr or p.returncode != 0:
        print("perf stat -e instructions: %s: no instruction counts, CPU time and bpf_stats "
              "only" % ("not supported on this machine (no hardware counters in the VM)"
                        if p is not None and "<not supported>" in p.stderr
                        else "perf not usable here"))
        return False
    return True


def main():
    if len(sys.argv) != 2:
        die("usage: bench/user.py BUILD_DIR")
    build = sys.argv[1]
    kms = os.path.join(build, "kmemscope")
    mloop, floor = os.path.join(build, "bench", "mloop"), os.path.join(build, "bench", "floor")
    pywork = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pywork.py")
    env = {k: int(os.environ.get("USER_" + k, d)) for k, d in
           (("ITERS", "50000"), ("SPIN", "2000"), ("RECORDS", "10000"), ("ROUNDS", "3"))}
    if os.geteuid() != 0:
        die("must run as root (uprobes, BPF)")
    for f in (kms, mloop, floor):
        if not os.access(f, os.X_OK):
            die("%s not built (make %s)" % (f, f))
    if min(env.values()) < 0 or env["ITERS"] == 0 or env["ROUNDS"] == 0:
        die("USER_ITERS, USER_ROUNDS must be positive, USER_SPIN, USER_RECORDS not negative")
    stats_was = open(STATS).read().strip()
    if stats_was != "1":
        open(STATS, "w").write("1")
    try:
        run_all(kms, mloop, floor, pywork, env)
    finally:
        if stats_was != "1":
            open(STATS, "w").write(stats_was)


def run_all(kms, mloop, floor, pywork, env):
    work = tempfile.mkdtemp(prefix="kmemscope-user-bench.")
    out, fout = os.path.join(work, "r.json"), os.path.join(work, "floor.txt")
    peers()
    print("load average before: %.1f %.1f %.1f" % os.getloadavg())
    workloads = {
        "mloop": ([mloop, str(env["ITERS"])], env["ITERS"]),
        "mloop spin=%d" % env["SPIN"]: ([mloop, str(env["ITERS"]), str(env["SPIN"])],
                                        env["ITERS"]),
        "python3 json": (["python3", pywork, str(env["RECORDS"])], None),
    }
    tracers = {
        "untraced": [],
        "floor -u": [floor, "-u", "-v", "-o", fout, "--"],
        "floor -u -e": [floor, "-u", "-e", "-v", "-o", fout, "--"],
        "stat --user": [kms, "stat", "--user", "--json", "-o", out, "--"],
        "leaks --user": [kms, "leaks", "--user", "--settle", "0", "--json", "-o", out, "--"],
    }
    if shutil.which("heaptrack"):
        tracers["heaptrack"] = ["heaptrack", "-o", os.path.join(work, "ht")]
    names = list(tracers)
    for wname, (argv, loop_allocs) in workloads.items():
        res = {c: [] for c in names}
        for rnd in range(env["ROUNDS"]):
            for c in names[rnd % len(names):] + names[:rnd % len(names)]:
                r, why = run_one(tracers[c] + argv, out, fout)
                if r is None:
                    print("%s, %s: %s" % (wname, c, why))
                else:
                    res[c].append(r)
        report(wname, names, res, loop_allocs)
    print("load average after: %.1f %.1f %.1f" % os.getloadavg())
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
