#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The cost of --user: a malloc/free loop (bench/mloop) untraced, under
kmemscope stat --user, leaks --user (a user stack per allocation), heaptrack
(LD_PRELOAD, Debian) and bcc's memleak-bpfcc -p PID where it runs.

    bench/user.py BUILD_DIR
    USER_ITERS=N    loop iterations (default 200000: 2 calls each, malloc and free)
    USER_ROUNDS=N   rounds (default 5); the order of the configurations rotates

Figures are medians over rounds. "cpu ns/call" is the loop's own CPU time
(user + system, getrusage in mloop: a uprobe hit traps into the kernel in the
traced process, so that is where its cost lands) per malloc or free call;
"x" is that over the untraced median; "+ns/call" the difference. "seen" is
the user family's allocations over the loop's; "lost" is records lost plus
program runs skipped (quality.lost + quality.misses). See bench/README.md.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile


def die(msg):
    print("bench/user.py: " + msg, file=sys.stderr)
    sys.exit(1)


def loop_line(text, what):
    m = re.search(r"iters=(\d+) calls=(\d+) ns=(\d+) cpu_ns=(\d+)", text)
    if not m:
        die("%s: mloop printed no result" % what)
    return [int(v) for v in m.groups()]


def kms_report(path):
    """the user family's allocations (stat; None for leaks, which has no family table)
    and what was lost"""
    d = json.load(open(path))
    fam = {f["family"]: f for f in d.get("families", [])}
    q = d["quality"]
    return fam["user"]["allocs"] if fam else None, q["lost"] + q["misses"]


def main():
    if len(sys.argv) != 2:
        die("usage: bench/user.py BUILD_DIR")
    build = sys.argv[1]
    kms, mloop = os.path.join(build, "kmemscope"), os.path.join(build, "bench", "mloop")
    iters = int(os.environ.get("USER_ITERS", "200000"))
    rounds = max(int(os.environ.get("USER_ROUNDS", "5")), 1)
    if os.geteuid() != 0:
        die("must run as root (uprobes, BPF)")
    for f in (kms, mloop):
        if not os.access(f, os.X_OK):
            die("%s not built (make %s)" % (f, f))
    work = tempfile.mkdtemp(prefix="kmemscope-user-bench.")
    out = os.path.join(work, "r.json")
    configs = {
        "untraced": [mloop, str(iters)],
        "stat --user": [kms, "stat", "--user", "--json", "-o", out, "--", mloop, str(iters)],
        "leaks --user": [kms, "leaks", "--user", "--settle", "0", "--json", "-o", out, "--",
                         mloop, str(iters)],
    }
    if shutil.which("heaptrack"):
        configs["heaptrack"] = ["heaptrack", "-o", os.path.join(work, "ht"), mloop, str(iters)]
    else:
        print("heaptrack: not installed (apt-get install heaptrack): no row")
    # bcc's memleak compiles its BPF program against kernel headers at run time
    r = subprocess.run(["timeout", "60", "memleak-bpfcc", "-p", str(os.getpid()), "1", "1"],
                       capture_output=True, text=True) if shutil.which("memleak-bpfcc") else None
    if r is None:
        print("memleak-bpfcc: not installed (apt-get install bpfcc-tools): no row")
    elif r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        print("memleak-bpfcc: does not run on this machine (%s): no row" % why)
    else:
        print("memleak-bpfcc: runs here, but has no command mode to time a loop under it; "
              "not measured")
    res = {c: [] for c in configs}
    names = list(configs)
    for rnd in range(rounds):
        for c in names[rnd % len(names):] + names[:rnd % len(names)]:
            p = subprocess.run(configs[c], capture_output=True, text=True)
            if p.returncode != 0:
                print("%s: exit %d: %s" % (c, p.returncode, p.stderr.strip()[-200:]))
                continue
            _, calls, ns, cpu = loop_line(p.stdout, c)
            seen, lost = kms_report(out) if c.startswith(("stat", "leaks")) else (None, None)
            res[c].append((cpu / calls, ns / calls, seen, lost))
    if not res["untraced"]:
        die("no untraced run")
    base_cpu = statistics.median(r[0] for r in res["untraced"])
    base_wall = statistics.median(r[1] for r in res["untraced"])
    print("\n--user overhead: mloop, %d iterations (%d calls), %d rounds, medians" %
          (iters, 2 * iters, rounds))
    print("%-14s %4s %12s %7s %10s %13s %7s %14s %6s" %
          ("config", "runs", "cpu ns/call", "x", "+ns/call", "wall ns/call", "x wall",
           "seen", "lost"))
    for c in names:
        if not res[c]:
            print("%-14s %4d %12s" % (c, 0, "-"))
            continue
        cpu = statistics.median(r[0] for r in res[c])
        wall = statistics.median(r[1] for r in res[c])
        seen = [r[2] for r in res[c] if r[2] is not None]
        lost = [r[3] for r in res[c] if r[3] is not None]
        print("%-14s %4d %12.1f %7.2f %10.1f %13.1f %7.2f %14s %6s" %
              (c, len(res[c]), cpu, cpu / base_cpu, cpu - base_cpu, wall, wall / base_wall,
               "%d/%d" % (statistics.median(seen), iters) if seen else "-",
               "%d" % max(lost) if lost else "-"))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
