#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What stacks cost in the kernel: BPF run-time statistics and gen's CPU time.

  bench/stackcost.py [-n ITERS] [-r ROUNDS] [-m MODE] KMS [KMS2 ...]

Runs bench/gen (next to KMS in the build tree: KMS's dir/bench/gen) untraced and
under `stat`, `leaks` (stacks cached) and `leaks --stacks every` of each kmemscope
binary given, the configurations alternating within each round. Needs root and
kernel.bpf_stats_enabled=1 (it sets it for its runs, puts the previous value back
after, and says so if someone turned it off during a run). Per configuration,
medians and ranges over the rounds of:

  cpu_s     gen's user + system CPU time (getrusage), which the BPF handlers
            running in gen's context are charged to; x untraced next to it
  ns/alloc  run_time_ns / run_cnt of the kmalloc and kmem_cache_alloc handlers:
            gen's allocations and other processes' (filtered out early, cheap)
  ns/iter   run_time_ns of every handler, per gen iteration

The run counts include other processes' events, which the pid filter drops
early (each such run costs what the filter does): the script prints the runs
per gen iteration so that share shows. Wall time is not used.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

STATS = "/proc/sys/kernel/bpf_stats_enabled"
ALLOC_PROGS = ("tb_kmalloc", "rt_kmalloc", "rt_kmem_cache_alloc")
CONFIGS = (("stat", ["stat"]), ("leaks", ["leaks", "--settle", "0"]),
           ("leaks_every", ["leaks", "--settle", "0", "--stacks", "every"]))


def inner(gen, iters, mode, out):
    """Run gen as kmemscope's child; then read kmemscope's programs' statistics.

    The programs are still loaded here: kmemscope waits for this process.
    """
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.execv(gen, [gen, "-n", str(iters), "-m", mode])
    _, status, ru = os.wait4(pid, 0)
    if status:
        sys.exit(f"stackcost: gen failed ({status})")
    progs = {}
    kms = os.getppid()
    for fd in os.listdir(f"/proc/{kms}/fdinfo"):
        try:
            with open(f"/proc/{kms}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if "prog_id" in info and "run_cnt" in info:
            progs[int(info["prog_id"])] = (int(info["run_time_ns"]), int(info["run_cnt"]))
    names = {}
    shown = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    for p in json.loads(shown.stdout or "[]"):
        names[p["id"]] = p.get("name", "")
    with open(STATS) as f:
        stats_on = f.read().strip() == "1"
    json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "stats_on": stats_on,
               "progs": {names.get(i, str(i)): v for i, v in progs.items()}}, open(out, "w"))


def run(kms, cfg, iters, mode, work):
    gen = os.path.join(os.path.dirname(os.path.abspath(kms)), "bench", "gen")
    out = os.path.join(work, "run.json")
    if cfg is None:
        r = subprocess.run([sys.executable, __file__, "--inner", gen, str(iters), mode, out])
    else:
        r = subprocess.run([kms] + cfg + ["--json", "-o", os.path.join(work, "kms.json"), "--",
                            sys.executable, __file__, "--inner", gen, str(iters), mode, out],
                           stdout=subprocess.DEVNULL)
    if r.returncode:
        sys.exit(f"stackcost: {kms} {cfg} exited {r.returncode}")
    d = json.load(open(out))
    if cfg is not None and not d["stats_on"]:
        sys.exit("stackcost: kernel.bpf_stats_enabled was turned off during a run")
    return d


def med(vals):
    return "%.3g (%.3g-%.3g)" % (statistics.median(vals), min(vals), max(vals))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--inner":
        inner(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--iters", type=int, default=50000)
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("-m", "--mode", default="pipe")
    ap.add_argument("kms", nargs="+")
    a = ap.parse_args()
    if os.geteuid():
        sys.exit("stackcost: must run as root")
    # on only for these runs: left on, it adds two clock reads to every BPF program run
    # of whatever is measured next (make bench's figures included)
    stats_was = open(STATS).read().strip()
    res = {}
    try:
        open(STATS, "w").write("1")
        with tempfile.TemporaryDirectory(prefix="kms-stackcost.") as work:
            for rnd in range(a.rounds):
                res.setdefault("untraced", []).append(run(a.kms[0], None, a.iters, a.mode,
                                                          work))
                for i, kms in enumerate(a.kms):
                    for name, cfg in CONFIGS:
                        key = f"{name}#{i}" if len(a.kms) > 1 else name
                        res.setdefault(key, []).append(run(kms, cfg, a.iters, a.mode, work))
                print(f"round {rnd + 1}/{a.rounds} done, load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr)
    finally:
        open(STATS, "w").write(stats_was)
    base = statistics.median(d["cpu_s"] for d in res["untraced"])
    print(f"gen -m {a.mode} -n {a.iters}, {a.rounds} rounds; binaries: "
          + ", ".join(f"#{i} {k}" for i, k in enumerate(a.kms)))
    print("%-16s %-22s %-8s %-20s %-20s %s" % ("config", "cpu_s", "x", "ns/alloc", "ns/iter",
                                               "runs/iter"))
    for key, ds in res.items():
        cpu = [d["cpu_s"] for d in ds]
        row = [key, med(cpu), "%.2f" % (statistics.median(cpu) / base)]
        if key != "untraced":
            alloc = [sum(v[0] for n, v in d["progs"].items() if n in ALLOC_PROGS) /
                     max(1, sum(v[1] for n, v in d["progs"].items() if n in ALLOC_PROGS))
                     for d in ds]
            per_iter = [sum(v[0] for v in d["progs"].values()) / a.iters for d in ds]
            runs = [sum(v[1] for v in d["progs"].values()) / a.iters for d in ds]
            row += [med(alloc), med(per_iter), med(runs)]
        print("%-16s %-22s %-8s %-20s %-20s %s" % tuple(row + [""] * (6 - len(row))))


if __name__ == "__main__":
    main()
