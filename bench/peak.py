#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Peak rate, system-wide: can kmemscope keep up, and what does its collector cost?

    bench/peak.py BUILD_DIR
    PEAK_SECONDS=N      traced window per run (default 10)
    PEAK_RSS_SECONDS=N  length of the memory-growth runs (default 60, 0: none)

For each mode (stat, stat --no-context, leaks, top) kmemscope traces the whole
system for PEAK_SECONDS three times: with no generator (its fixed cost: start-up,
a quiet machine), with bench/gen flat out on every CPU but one (the collector's),
and with one generator per CPU (the collector competes). Generators start a
second before tracing and stop after it, so the window sees the steady state.

Per run: events delivered, records lost and program runs the kernel skipped
(quality.lost, quality.misses), the collector's CPU time (user+sys, getrusage of
the child) and peak RSS, and the generators' own ns per iteration against an
untraced run. "ns/event" is the collector's marginal cost: CPU time over the
no-generator run's, divided by the extra events. "% CPU" is its CPU time over
the window. Then stat and leaks run PEAK_RSS_SECONDS with one generator and
their RSS is sampled: stat must not grow with time. See bench/README.md.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import die  # noqa: E402  (the bench scripts' one way to fail)


def env_int(name, default, low):
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < low:
        die("%s must be a whole number >= %d, got '%s'" % (name, low, raw))
    return int(raw)


MODES = [
    ("stat", ["stat", "--json"]),
    ("stat --no-context", ["stat", "--no-context", "--json"]),
    ("leaks", ["leaks", "--json"]),
    ("top", ["top", "--batch", "--count", "1"]),
]


def start_gens(gen, n, seconds):
    return [subprocess.Popen([gen, "-t", str(seconds)], stdout=subprocess.PIPE, text=True)
            for _ in range(n)]


def gen_ns(procs):
    """median ns per iteration of the generators (they print iters=N ns=N ...)"""
    vals = []
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"ns_per_iter=([0-9.]+)", out or "")
        if p.returncode or not m:
            die("bench/gen failed (exit %d): %r" % (p.returncode, out))
        vals.append(float(m.group(1)))
    vals.sort()
    return vals[len(vals) // 2] if vals else None


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def top_number(text, pattern):
    m = re.search(pattern, text)
    if not m:
        die("top printed no '%s': %r" % (pattern, text[:300]))
    num = m.group(1).replace(",", "")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(num[-1], 1)
    return int(float(num.rstrip("KMG")) * scale)


def quality(mode, out_path, text, seconds):
    """(events, lost, misses) from a run's JSON, or from top's header and quality line"""
    if mode == "top":
        return (top_number(text, r"events/s ([0-9.,]+[KMG]?)") * seconds,
                top_number(text, r"lost ([0-9,]+)"), top_number(text, r"misses ([0-9,]+)"))
    try:
        with open(out_path) as f:
            q = json.load(f)["quality"]
    except (OSError, ValueError, KeyError) as e:
        die("%s: unreadable JSON %s: %s" % (mode, out_path, e))
    return q["events"], q["lost"], q["misses"]


def run(kms, mode, args, seconds, work, gen=None, ngen=0, sample_every=0):
    """one traced window; returns a dict of the figures"""
    out = os.path.join(work, "out.json")
    if os.path.exists(out):
        os.unlink(out)
    # long enough to cover start-up, the window and leaks' settle time
    gens = start_gens(gen, ngen, seconds + 4) if ngen else []
    if gens:
        time.sleep(1)
    cmd = [kms] + args
    cmd += ["-i", str(seconds)] if mode == "top" else ["-d", str(seconds), "-o", out]
    errf = open(os.path.join(work, "stderr"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True)
    samples = []
    ru = None
    next_t = t0 + sample_every
    # stat and leaks write to a file: their stdout cannot fill while this waits
    while sample_every:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        ru = None
        time.sleep(0.2)
        if time.monotonic() >= next_t:
            samples.append((round(time.monotonic() - t0), rss_kb(p.pid)))
            next_t += sample_every
    text = p.stdout.read()
    # this child's own rusage: the generators are children too
    if ru is None:
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    errf.seek(0)
    err = errf.read()
    errf.close()
    if p.returncode:
        die("%s exited %d: %s" % (" ".join(cmd), p.returncode, err.strip()[:300]))
    gns = gen_ns(gens) if gens else None
    events, lost, misses = quality(mode, out, text, seconds)
    return {
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_kb": ru.ru_maxrss,
        "wall": wall,
        "events": events,
        "lost": lost,
        "misses": misses,
        "gen_ns": gns,
        "samples": samples,
    }


def main():
    if len(sys.argv) != 2:
        die("usage: bench/peak.py BUILD_DIR")
    build = sys.argv[1]
    kms = os.path.join(build, "kmemscope")
    gen = os.path.join(build, "bench", "gen")
    for path in (kms, gen):
        if not os.access(path, os.X_OK):
            die("%s not built (make all %s)" % (path, gen))
    if os.geteuid():
        die("must run as root (BPF)")
    seconds = env_int("PEAK_SECONDS", 10, 2)
    rss_seconds = env_int("PEAK_RSS_SECONDS", 60, 0)
    ncpu = os.cpu_count() or 1
    loads = [("none", 0), ("%d gen" % max(ncpu - 1, 1), max(ncpu - 1, 1))]
    if ncpu > 1:
        loads.append(("%d gen (all CPUs)" % ncpu, ncpu))

    work = tempfile.mkdtemp(prefix="kmemscope-peak.")
    untraced = gen_ns(start_gens(gen, max(ncpu - 1, 1), seconds))
    print("peak rate, system-wide, %d s windows, %d CPUs; untraced gen: %.1f ns/iter"
          % (seconds, ncpu, untraced))
    print("%-18s %-18s %12s %10s %9s %9s %8s %9s %9s %7s %8s %9s"
          % ("mode", "load", "events", "events/s", "lost", "missed", "cpu s",
             "ns/event", "ns/ev all", "% CPU", "RSS MB", "gen x"))
    for name, args in MODES:
        base = None
        for load, ngen in loads:
            r = run(kms, name, args, seconds, work, gen, ngen)
            if base is None:
                base = r
            ev = r["events"]
            nsev = "-"
            if ngen and ev > base["events"] and r["cpu"] > base["cpu"]:
                nsev = "%.1f" % ((r["cpu"] - base["cpu"]) * 1e9 / (ev - base["events"]))
            nsall = "%.1f" % (r["cpu"] * 1e9 / ev) if ev else "-"
            rate = "%.2fM" % (ev / seconds / 1e6)
            gx = "%.2f" % (r["gen_ns"] / untraced) if r["gen_ns"] and ngen < ncpu else \
                ("%.2f*" % (r["gen_ns"] / untraced) if r["gen_ns"] else "-")
            print("%-18s %-18s %12s %10s %9s %9s %8.2f %9s %9s %6.1f%% %8.1f %9s"
                  % (name, load, ev, rate, r["lost"], r["misses"], r["cpu"], nsev, nsall,
                     100.0 * r["cpu"] / seconds, r["rss_kb"] / 1024.0, gx))
    print("(gen x: generator ns/iter over untraced; * = generators on every CPU, the "
          "collector competes with them, so that ratio includes the time it takes)")
    if rss_seconds:
        every = max(rss_seconds // 6, 1)
        for name, args in (MODES[0], MODES[2]):
            r = run(kms, name, args, rss_seconds, work, gen, max(ncpu - 1, 1), every)
            print("RSS of %s over %d s at the peak rate (MB at s): %s; lost %s"
                  % (name, rss_seconds,
                     ", ".join("%.0f@%d" % (kb / 1024.0, t) for t, kb in r["samples"] if kb),
                     r["lost"]))


if __name__ == "__main__":
    main()
