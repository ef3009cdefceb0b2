#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Compare one kmemscope stat JSON with perf's record of the same run (stdlib only).

  check.py MODE N WORKER KMS_JSON PERF_DATA

WORKER is the pid of trigger's worker process, the one whose whole life both
tools saw. Prints one "PASS name" or "FAIL name: why" line per check; the
caller counts them. A check not reached (an exception, an early return) is
one more FAIL. Exits 0 even when checks fail (the lines say so) and 1 only
when it could not check at all.
"""
import json
import os
import subprocess
import sys

# perf tracepoint -> kmemscope JSON events key
EVENTS = {
    "kmem:kmalloc": "kmalloc",
    "kmem:kfree": "kfree",
    "kmem:kmem_cache_alloc": "kmem_cache_alloc",
    "kmem:kmem_cache_free": "kmem_cache_free",
    "kmem:mm_page_alloc": "mm_page_alloc",
    "kmem:mm_page_free": "mm_page_free",
    "kmem:mm_page_free_batched": "mm_page_free_batched",
    "percpu:percpu_alloc_percpu": "percpu_alloc",
    "percpu:percpu_free_percpu": "percpu_free",
    "vmalloc:alloc_vmap_area": "vmalloc",
    "vmalloc:free_vmap_area_noflush": "vfree",
}

# What each trigger mode must make at least N of, per operation, in the worker
# (one pipe_inode_info kmalloc per pipe, one mm percpu counter set per fork, one
# vmap area per 64 KiB map, one page per touched page, one eventfd_ctx per eventfd).
# Checked in kmemscope's counts, which must equal perf's anyway.
AT_LEAST_N = {
    "pipes": [("kmalloc",), ("kmem_cache_alloc",), ("kfree",), ("kmem_cache_free",)],
    "fork": [("percpu_alloc",), ("kmem_cache_alloc",), ("mm_page_alloc",)],
    "bpfmap": [("vmalloc",), ("kmalloc",)],
    "pages": [("mm_page_alloc",), ("mm_page_free", "mm_page_free_batched")],
    "eventfd": [("kmalloc",), ("kmem_cache_alloc",), ("kmem_cache_free",)],
    "bigalloc": [("kmalloc",)],
}
# nonzero, fewer than N (fork: kernel stacks are partly served from a cache)
NONZERO = {
    "fork": [("vmalloc",)],
}

FAMILIES = ("kmalloc", "kmem_cache", "page", "vmalloc", "percpu")

# modes that make vmalloc areas: their fields are checked for one meaning (vmalloc_fields)
VMALLOC_MODES = ("fork", "bpfmap")


# checks reported so far; main() must report every one it expects
reported = 0


def out(ok, name, why=""):
    global reported
    reported += 1
    if ok:
        print(f"PASS {name}")
    else:
        print(f"FAIL {name}: {why}")


def expected(mode):
    """mode, json schema, lost, out of order, families, worker, perf lost,
    misses_by_event, counts, kmalloc_twice, then the mode's own."""
    return 10 + len(AT_LEAST_N.get(mode, [])) + len(NONZERO.get(mode, [])) + \
        (mode in VMALLOC_MODES)


def vmalloc_fields(t, doc, fams):
    """One meaning per field: GFP "unknown" (value null) on every vmalloc allocation exactly
    where vmalloc is traced at the vmap-area tracepoint, which has none, never 0x0; bytes_alloc
    whole pages; bytes_req = bytes_alloc there (the request is not seen)."""
    fam = fams.get("vmalloc", {})
    tp = fam.get("method") in ("tp_btf", "raw_tp")
    page = os.sysconf("SC_PAGE_SIZE")
    unknown = [g for g in doc.get("gfp", []) if g.get("flags") == "unknown"]
    nunk = sum(int(g.get("allocs") or 0) for g in unknown)
    allocs, req, got = (int(fam.get(k) or 0) for k in ("allocs", "bytes_req", "bytes_alloc"))
    errs = []
    if nunk != (allocs if tp else 0):
        errs.append(f"{nunk} allocations with GFP unknown, {allocs} vmalloc ({fam.get('method')})")
    if any(g.get("value") is not None for g in unknown):
        errs.append(f"unknown GFP with a value: {unknown}")
    if got % page or (tp and req != got):
        errs.append(f"bytes_req {req}, bytes_alloc {got} (page {page})")
    out(allocs > 0 and not errs, f"{t} vmalloc fields: GFP unknown only where not carried, "
        "whole pages", "; ".join(errs) or "no vmalloc allocation")


def kernel_pair(prev, line):
    """prev and line (perf script lines, pid cpu time event trace...) are the kernel's two
    kmem:kmalloc events of one large kmalloc() (6.10+): back to back on one CPU, one thread,
    every field equal but call_site (the first is inside the allocator)."""
    if not prev:
        return False
    a, b = prev.split(), line.split()
    if a[3] != "kmem:kmalloc:" or b[3] != "kmem:kmalloc:" or a[:2] != b[:2]:
        return False
    fa = dict(f.split("=", 1) for f in a[4:] if "=" in f)
    fb = dict(f.split("=", 1) for f in b[4:] if "=" in f)
    return fa.pop("call_site", None) != fb.pop("call_site", None) and fa == fb


def perf_counts(data, worker):
    """Per-event samples of one pid, with the kernel's second event of each large kmalloc
    traced twice left out as kmemscope leaves it out (the pairs), its kfree(NULL) count,
    the number of pairs, and what perf lost."""
    # Measured here: perf record -a now and then writes a run of samples twice
    # (same CPU, same nanosecond, same fields). Two real events cannot share
    # all of those, so exact duplicates are dropped from the reference.
    r = subprocess.run(["perf", "script", "--ns", "-i", data, "-F", "pid,cpu,time,event,trace"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check: perf script failed: {r.stderr.strip().splitlines()[-1:]}")
    counts = {k: 0 for k in EVENTS.values()}
    kfree_null = pairs = 0
    seen = set()
    last = {}   # cpu -> the last event recorded there, any pid
    for line in r.stdout.splitlines():
        w = line.split()
        if len(w) < 4 or line in seen:
            continue
        seen.add(line)
        prev, last[w[1]] = last.get(w[1]), line
        if w[0] != str(worker):
            continue
        if kernel_pair(prev, line):
            pairs += 1
            continue
        key = EVENTS.get(w[3].rstrip(":"))
        if key:
            counts[key] += 1
        # kmem:kfree fires before kfree() returns early on NULL
        if key == "kfree" and "ptr=(nil)" in line:
            kfree_null += 1
    r = subprocess.run(["perf", "report", "-i", data, "--stats"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("check: perf report --stats failed")
    lost = 0
    for line in r.stdout.splitlines():
        w = line.split()
        # "LOST events: N" and "LOST_SAMPLES events: N" in the aggregated part
        if len(w) >= 3 and w[0] in ("LOST", "LOST_SAMPLES") and w[1] == "events:":
            lost += int(w[2])
    return counts, kfree_null, pairs, lost


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    mode, n, worker, kms_json, data = sys.argv[1:]
    n, worker = int(n), int(worker)
    t = f"{mode}:"
    out(mode in AT_LEAST_N, f"{t} known mode", f"no checks for mode {mode!r} in check.py")
    try:
        with open(kms_json) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        out(False, f"{t} json", f"cannot read {kms_json}: {e}")
        return
    out(doc.get("schema") == "kmemscope.stat", f"{t} json schema",
        f"schema is {doc.get('schema')!r}")

    q = doc.get("quality", {})
    out(q.get("lost") == 0, f"{t} quality.lost == 0", f"quality.lost = {q.get('lost')}")
    # records reach the consumers in order: a free before its allocation is a false leak
    out(q.get("out_of_order") == 0, f"{t} quality.out_of_order == 0",
        f"quality.out_of_order = {q.get('out_of_order')}")

    fams = {f.get("family"): f for f in doc.get("families", [])}
    bad = [fam for fam in FAMILIES if not fams.get(fam, {}).get("traced")]
    out(not bad, f"{t} families traced",
        "not traced: " + ",".join(bad) + f" (families: {sorted(fams)})")

    procs = [p for p in doc.get("processes", []) if p.get("pid") == worker]
    if len(procs) != 1 or procs[0].get("comm") != "trigger":
        out(False, f"{t} worker in processes[]",
            f"{len(procs)} entries for pid {worker}"
            + (f", comm {procs[0].get('comm')!r}" if procs else "")
            + "; trigger entries: "
            + str([p.get("pid") for p in doc.get("processes", [])
                   if p.get("comm") == "trigger"][:10]))
        return
    out(True, f"{t} worker in processes[]")
    kms = procs[0].get("events", {})

    perf, kfree_null, pairs, perf_lost = perf_counts(data, worker)
    out(perf_lost == 0, f"{t} perf lost nothing (reference valid)",
        f"perf reported {perf_lost} lost records/samples: the reference is incomplete")
    # system-wide: other processes' large kmallocs add to it
    twice = q.get("kmalloc_twice")
    out(isinstance(twice, int) and twice >= pairs,
        f"{t} quality.kmalloc_twice >= the worker's {pairs} kernel pairs in perf's record",
        f"quality.kmalloc_twice = {twice!r}")

    # every key perf counts must be there; keys the schema adds later are ignored
    missing = [k for k in EVENTS.values() if k not in kms]
    # The kernel skips a handler that an interrupt re-enters (a recursion
    # miss). kmemscope reports those per event in quality.misses_by_event;
    # such a run cannot match exactly, and says so itself. Only when every
    # difference is a shortfall that the misses of that same event's programs
    # cover is the run inconclusive: the caller runs it again (RETRY); a
    # shortfall in kfree is never excused by misses in kmem_cache_free, and
    # anything else fails.
    by_event = q.get("misses_by_event")
    out(isinstance(by_event, dict) and all(k in by_event for k in EVENTS.values()),
        f"{t} quality.misses_by_event names every event",
        f"misses_by_event = {by_event!r}")
    by_event = by_event if isinstance(by_event, dict) else {}
    short = {k: perf[k] - kms.get(k, 0) for k in EVENTS.values() if kms.get(k, 0) < perf[k]}
    over = any(kms.get(k, 0) > perf[k] for k in EVENTS.values())
    if (not missing and not over and short and
            all(n <= int(by_event.get(k) or 0) for k, n in short.items())):
        print(f"RETRY {t} counts short by "
              + ", ".join(f"{k} {n} (misses {by_event.get(k)})" for k, n in short.items())
              + ": each within its own event's misses")
        return True
    diffs = [f"{k} kmemscope={kms.get(k)} perf={perf[k]}"
             for k in EVENTS.values() if kms.get(k, 0) != perf[k]]
    out(not missing and not diffs, f"{t} counts equal perf for worker {worker}",
        ("missing keys: " + ",".join(missing) + "; " if missing else "")
        + "; ".join(diffs)
        + (f" (perf: {kfree_null} of the kfree events are kfree(NULL))"
           if kms.get("kfree", 0) != perf["kfree"] else "")
        + f" (quality.misses={q.get('misses')}, misses_by_event="
        + str({k: v for k, v in by_event.items() if v})
        + f", out_of_order={q.get('out_of_order')})")

    for keys in AT_LEAST_N.get(mode, []):
        v = sum(kms.get(k, 0) for k in keys)
        name = "+".join(keys)
        out(v >= n, f"{t} {name} >= {n}", f"{name} = {v}")
    for keys in NONZERO.get(mode, []):
        v = sum(kms.get(k, 0) for k in keys)
        name = "+".join(keys)
        out(v > 0, f"{t} {name} > 0", f"{name} = {v}")
    if mode in VMALLOC_MODES:
        vmalloc_fields(t, doc, fams)


if __name__ == "__main__":
    # an exception or an early return must not make checks disappear
    retry = False
    try:
        retry = main()
    except Exception as e:
        out(False, f"{sys.argv[1]}: check.py", f"raised {type(e).__name__}: {e}")
    if not retry and reported < expected(sys.argv[1]):
        out(False, f"{sys.argv[1]}: check.py",
            f"{reported} of {expected(sys.argv[1])} checks reported")
