#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers for bench/run.sh (stdlib only).

  benchlib.py perfdata FILE COMM   samples, samples of the process named COMM, lost
  benchlib.py kmsjson FILE COMM    kmemscope stat or leaks JSON: events of COMM (stat only:
                                   leaks has no per-process counts), lost, misses
  benchlib.py table RESULTS        the summary table from run.sh's results file
  benchlib.py startup KMS RUNS     kmemscope's start-up: exec to "tracing", medians

Every subcommand prints "key=value" words on one line, except table and startup.
"""
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time

PERF_RECORD_LOST = 2
PERF_RECORD_COMM = 3
PERF_RECORD_SAMPLE = 9
PERF_RECORD_LOST_SAMPLES = 13

PERF_SAMPLE_IP = 1 << 0
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_IDENTIFIER = 1 << 16


def die(msg):
    print(f"benchlib: {msg}", file=sys.stderr)
    sys.exit(1)


def perfdata(path, comm):
    """Count the samples in a perf.data file by reading its records directly.

    perf's own summary gives lost chunks; this gives lost samples and the
    samples of one process, found by its exec COMM record. The kernel reports
    ring-buffer overflow in PERF_RECORD_LOST; perf >= 6.0 also writes a
    PERF_RECORD_LOST_SAMPLES per event at the end with the kernel's per-event
    lost count (PERF_FORMAT_LOST), which covers the same samples again: take
    the larger of the two sums, never their total.
    """
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"PERFILE2":
        die(f"{path}: not a perf.data file (or written in pipe mode)")
    _, hdr_size, attr_size = struct.unpack_from("<8sQQ", buf, 0)
    attrs_off, attrs_size, data_off, data_size = struct.unpack_from("<QQQQ", buf, 24)

    # only the fields before the pid matter; they must agree across events
    prefix = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID
    sample_types = set()
    for off in range(attrs_off, attrs_off + attrs_size, attr_size):
        sample_types.add(struct.unpack_from("<Q", buf, off + 24)[0] & prefix)
    if len(sample_types) != 1:
        die(f"{path}: events with different sample layouts: {sorted(sample_types)}")
    st = sample_types.pop()
    if not st & PERF_SAMPLE_TID:
        die(f"{path}: samples carry no pid")
    pid_off = 8 + (8 if st & PERF_SAMPLE_IDENTIFIER else 0) + (8 if st & PERF_SAMPLE_IP else 0)

    samples = 0
    lost_chunks = 0
    lost_samples = 0
    by_pid = {}
    comm_pids = set()
    want = comm.encode()
    off, end = data_off, data_off + data_size
    unpack_hdr = struct.Struct("<IHH").unpack_from
    unpack_u32 = struct.Struct("<I").unpack_from
    unpack_u64 = struct.Struct("<Q").unpack_from
    while off + 8 <= end:
        rtype, _, size = unpack_hdr(buf, off)
        if size < 8:
            die(f"{path}: corrupt record at offset {off}")
        if rtype == PERF_RECORD_SAMPLE:
            samples += 1
            pid = unpack_u32(buf, off + pid_off)[0]
            by_pid[pid] = by_pid.get(pid, 0) + 1
        elif rtype == PERF_RECORD_LOST:
            lost_chunks += unpack_u64(buf, off + 16)[0]
        elif rtype == PERF_RECORD_LOST_SAMPLES:
            lost_samples += unpack_u64(buf, off + 8)[0]
        elif rtype == PERF_RECORD_COMM:
            pid = unpack_u32(buf, off + 8)[0]
            name = buf[off + 16:off + size].split(b"\0", 1)[0]
            if name == want:
                comm_pids.add(pid)
        off += size
    target = sum(by_pid.get(p, 0) for p in comm_pids)
    lost = max(lost_chunks, lost_samples)
    print(f"samples={samples} target_samples={target} lost={lost} "
          f"lost_records={lost_chunks} lost_samples={lost_samples} target_pids={len(comm_pids)}")


def kmsjson(path, comm):
    with open(path) as f:
        doc = json.load(f)
    schema = doc.get("schema")
    if schema not in ("kmemscope.stat", "kmemscope.leaks"):
        die(f"{path}: not a kmemscope stat or leaks document")
    q = doc.get("quality", {})
    if schema == "kmemscope.stat":
        procs = [p for p in doc.get("processes", []) if p.get("comm") == comm]
        target = sum(sum(p.get("events", {}).values()) for p in procs)
        npids = len(procs)
    else:
        target = npids = "-"
    print(f"events={q.get('events', 0)} target_events={target} lost={q.get('lost', 0)} "
          f"misses={q.get('misses', 0)} target_pids={npids}")


def fmt_int(v):
    return "-" if v is None else str(int(v))


def table(path):
    """RESULTS lines: config round ns iters seen lost seen_perf_kinds missed"""
    rows = {}
    order = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            cfg = w[0]
            if cfg not in rows:
                rows[cfg] = []
                order.append(cfg)
            vals = [None if x == "-" else float(x) for x in w[2:8]]
            rows[cfg].append(vals)

    def med(cfg, i):
        v = [r[i] for r in rows.get(cfg, []) if r[i] is not None]
        return statistics.median(v) if v else None

    base = None
    if "untraced" in rows:
        base = med("untraced", 0) / med("untraced", 1)
    floor_seen = med("floor", 2)
    hdr = ("config", "runs", "ns/iter", "x untraced", "seen (gen)", "lost", "missed",
           "seen/floor")
    print("%-14s %4s %9s %10s %12s %10s %8s %10s" % hdr)
    for cfg in order:
        r = rows[cfg]
        per_iter = statistics.median([x[0] / x[1] for x in r])
        ratio = "%.2f" % (per_iter / base) if base else "-"
        seen = med(cfg, 2)
        lost = med(cfg, 3)
        # seen vs what the floor counted for gen over the same event kinds:
        # perf kmem records only the slab and page kinds (column 4 of floor rows)
        ref = {"perf": med("floor", 4), "floor": None}.get(cfg, floor_seen)
        if seen is not None and ref:
            cmp = "%.4f" % (seen / ref)
        else:
            cmp = "-"
        print("%-14s %4d %9.1f %10s %12s %10s %8s %10s" %
              (cfg, len(r), per_iter, ratio, fmt_int(seen), fmt_int(lost),
               fmt_int(med(cfg, 5)), cmp))
    if floor_seen is None:
        print("(no floor runs: seen/floor unavailable)")


STARTUP_TARGET_MS = 300
TRACING = re.compile(r"^tracing, (\d+) ms after start-up began \(plan and load (\d+) ms, "
                     r"waiting for symbols (\d+) ms, attach (\d+) ms, calibration (\d+) ms\)")


def startup(kms, runs):
    """Wall time from exec to kmemscope's "tracing" line (-v), system-wide stat."""
    walls, cpus, phases = [], [], []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen([kms, "stat", "-v", "-d", "0.01", "-o", "/dev/null"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        seen = None
        for line in p.stderr:
            m = TRACING.match(line)
            if m and seen is None:
                seen = time.monotonic()
                phases.append([int(x) for x in m.groups()[1:]])
        _, status, ru = os.wait4(p.pid, 0)
        if status or seen is None:
            die(f"startup: {kms} stat exited with {status} or printed no 'tracing' line")
        walls.append((seen - t0) * 1000)
        cpus.append((ru.ru_utime + ru.ru_stime) * 1000)
    med = statistics.median(walls)
    ph = [statistics.median(x) for x in zip(*phases)]
    print(f"kmemscope start-up, exec to tracing (stat -d 0.01 system-wide, {runs} runs): "
          f"median {med:.0f} ms (min {min(walls):.0f}, max {max(walls):.0f}), "
          f"target {STARTUP_TARGET_MS} ms: {'met' if med <= STARTUP_TARGET_MS else 'NOT met'}")
    print(f"  medians: plan+load {ph[0]:.0f} ms, waiting for symbols {ph[1]:.0f} ms, attach "
          f"{ph[2]:.0f} ms, calibration {ph[3]:.0f} ms; CPU of the whole run (user+sys) "
          f"{statistics.median(cpus):.0f} ms")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "perfdata":
        perfdata(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "kmsjson":
        kmsjson(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        table(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "startup":
        startup(sys.argv[2], int(sys.argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
