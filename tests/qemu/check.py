#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Check kmemscope's QEMU reports against the kmemscope_test module's ledger.

Usage: check.py --kernel NAME SERIAL_LOG RESULT_DIR [KMEMSCOPE]

The serial log carries the guest's status lines (KMS-RC NAME RC), the module's
ledger and every output file between ===KMS-FILE NAME=== / ===KMS-END NAME===
(binary ones, the trace files each run recorded, in base64 as NAME.b64; the JSON
reports gzipped, NAME.gz.b64).
Expected numbers come only from the ledger, which the module writes from what
it did at run time.

With KMEMSCOPE (the host's build), every scenario's trace file is replayed on
the host (`kmemscope stat|leaks -i FILE --json`, no root) and the replay's
report goes through the same checks as the guest's, in a row NAME.replay; it
must also equal the guest's report apart from its "source".
"""
import argparse
import base64
import gzip
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "live"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from jsondiff import report_diff  # noqa: E402
import matrix  # noqa: E402
import tracefile  # noqa: E402

MODULE = "kmemscope_test"
FAMILIES = ["kmalloc", "kmem_cache", "page", "vmalloc", "dma", "percpu"]
FUNC_METHODS = {"fentry", "fexit", "kprobe", "kretprobe"}
TRACEPOINTS = {"raw_tp", "tp_btf"}
# Each kernel run.sh boots (tests/qemu/run.sh kernel_spec): its release, whether it
# is PREEMPT_RT, and how each family's events must attach there. 6.1 has no
# vmalloc:/dma: tracepoints: those come from function probes.
ON_61 = {"kmalloc": TRACEPOINTS, "kmem_cache": TRACEPOINTS, "page": TRACEPOINTS,
         "percpu": TRACEPOINTS, "vmalloc": FUNC_METHODS, "dma": FUNC_METHODS}
# 6.12 has dma: tracepoints, and vmalloc: ones at the vmap-area level. Which vmalloc
# attach point delivers the caller's size and GFP is the plan's choice: the vmalloc
# scenarios' exact bytes and GFP checks judge it, not this table.
ON_612 = dict(ON_61, dma=TRACEPOINTS, vmalloc=TRACEPOINTS | FUNC_METHODS)
# twice: a large kmalloc() fires kmem:kmalloc twice there (6.12's __kmalloc_large_node_noprof,
# then __do_kmalloc_node): kmemscope drops the second event and counts it (kmalloc_twice)
KERNELS = {
    "6.1": {"release": "6.1.", "rt": False, "methods": ON_61, "twice": False},
    "6.12": {"release": "6.12.", "rt": False, "methods": ON_612, "twice": True},
    "6.1-rt": {"release": "6.1.", "rt": True, "methods": ON_61, "twice": False},
}
# deferred frees have no tracepoint anywhere: function probes, on every kernel tested here
DEFERRED_EVENTS = ("kfree_rcu", "kmem_cache_free_bulk")
# scenarios whose frees are deferred: each gets a NAME.deferred row, and all must run
DEFERRED_SCENARIOS = ("kfree_rcu", "kvfree_rcu", "kfree_bulk", "kmem_cache_free_bulk",
                      "kfree_rcu_leaks", "kfree_bulk_leaks", "kmem_cache_free_bulk_leaks")




def guarded(fallback):
    """A checker that raises reports an error in its row instead of ending the run
    (and with it every row after it); fallback(msg, *args) builds that result."""
    def wrap(fn):
        def run(*args):
            try:
                return fn(*args)
            except Exception as e:
                return fallback("check.py: %s raised %s: %s" % (fn.__name__, type(e).__name__, e),
                                *args)
        return run
    return wrap


def split_serial(path, outdir):
    files, status, cur, buf = {}, [], None, []
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if cur is not None:
            m = re.match(r"^===KMS-END (\S+)===$", line)
            if m and m.group(1) == cur:
                files[cur] = "\n".join(buf) + "\n"
                cur, buf = None, []
            else:
                buf.append(line)
            continue
        m = re.match(r"^===KMS-FILE (\S+)===$", line)
        if m:
            cur, buf = m.group(1), []
            continue
        m = re.search(r"KMS-([A-Z-]+) ?(.*)$", line)
        if m:
            status.append((m.group(1), m.group(2)))
    for name in [n for n in files if n.endswith(".b64")]:
        try:
            body = base64.b64decode(files.pop(name))
            if name.endswith(".gz.b64"):
                files[name[:-len(".gz.b64")]] = gzip.decompress(body).decode("utf-8", "replace")
            else:
                files[name[:-len(".b64")]] = body
        except (ValueError, OSError) as e:
            print("qemu: cannot decode %s: %s" % (name, e))
    fdir = os.path.join(outdir, "files")
    os.makedirs(fdir, exist_ok=True)
    for name, body in files.items():
        with open(os.path.join(fdir, os.path.basename(name)), "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode("utf-8"))
    return files, status


def parse_ledger(text):
    by_tag = {}
    for line in text.splitlines():
        kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if "tag" in kv:
            by_tag.setdefault(kv["tag"], []).append(kv)
    return by_tag


def scenarios(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, cmd = line.split(None, 1)
                out.append((name, cmd))
    return out


def load_json(files, name):
    if name not in files:
        return None, "no %s in the guest output" % name
    try:
        return json.loads(files[name]), None
    except ValueError as e:
        return None, "%s is not JSON: %s" % (name, e)


@guarded(lambda m, *a: [m])
def check_kernel(spec, begin):
    """The guest booted the kernel asked for: its release, and PREEMPT_RT or not."""
    words = begin.split()
    if not words:
        return ["the guest printed no KMS-BEGIN line"]
    errs = []
    if not words[0].startswith(spec["release"]):
        errs.append("guest kernel %s, expected %s*" % (words[0], spec["release"]))
    if ("PREEMPT_RT" in words) != spec["rt"]:
        errs.append("guest kernel %s PREEMPT_RT (uname -v: %s)" %
                    ("is not" if spec["rt"] else "is", " ".join(words[1:])))
    return errs


OOPS_RE = re.compile(r"\b(Oops|BUG:|WARNING:|general protection fault|Call Trace:)")
# a family's allocation event, as bad_frees findings name it (alloc_event)
ALLOC_EVENT = {"kmalloc": "kmalloc", "kmem_cache": "kmem_cache_alloc", "page": "mm_page_alloc",
               "vmalloc": "vmalloc", "dma": "dma_alloc", "percpu": "percpu_alloc"}
# the module's bad-free scenarios make the kernel warn on purpose, between these lines
EXPECTED_WARN = ("kmemscope_test: expected warnings begin", "kmemscope_test: expected warnings end")


@guarded(lambda m, *a: [m])
def kernel_log(serial):
    """An oops, BUG or WARNING the guest survived still fails (issue #11 saw an int3 oops
    at kmem:kfree's jump label while kmemscope attached on 6.12): the lines around it.
    Not the warnings a bad-free scenario asks for (between its EXPECTED_WARN lines)."""
    with open(serial, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    hits, expected = [], False
    for i, L in enumerate(lines):
        if EXPECTED_WARN[0] in L or EXPECTED_WARN[1] in L:
            expected = EXPECTED_WARN[0] in L
        elif not expected and OOPS_RE.search(L):
            hits.append(i)
    if not hits:
        return []
    return ["the guest kernel reported %d oops/BUG/WARNING line(s), the first:" % len(hits)] + \
        [L.rstrip("\r") for L in lines[hits[0]:hits[0] + 12]]


@guarded(lambda m, *a: [m])
def probe_recorded(doc, kernel, rt, outdir):
    """The guest's attach plan, as the support matrix shows it, must be the one recorded
    in tests/qemu/probes/ (README's table is rendered from those files)."""
    got = matrix.normalize(doc, kernel, rt)
    path = os.path.join(outdir, "files", "probe.matrix.json")
    with open(path, "w") as f:
        json.dump(got, f, indent=1, sort_keys=True)
    rec = os.path.join(matrix.PROBES, kernel + ".json")
    try:
        with open(rec) as f:
            want = json.load(f)
    except (OSError, ValueError) as e:
        return ["no recorded plan for %s (%s): tests/qemu/matrix.py update BUILD_DIR" % (kernel, e)]
    diffs = report_diff(want, got)
    return ["the plan differs from %s at %s: review, then tests/qemu/matrix.py update "
            "BUILD_DIR" % (os.path.relpath(rec), "; ".join(diffs[:5]))] if diffs else []


@guarded(lambda m, *a: [m])
def check_probe(doc, spec):
    errs = []
    if doc.get("schema") != "kmemscope.probe":
        return ["probe: schema is %r, not kmemscope.probe" % doc.get("schema")]
    fams = {f.get("family"): f for f in doc.get("families", [])}
    for fam in FAMILIES:
        if not fams.get(fam, {}).get("traced"):
            errs.append("probe: family %s not traced" % fam)
    evs = {e.get("event"): e for e in doc.get("events", [])}
    for name in DEFERRED_EVENTS:
        e = evs.get(name)
        if not e:
            errs.append("probe: no %s event" % name)
        elif not e.get("traced") or e.get("method") not in FUNC_METHODS:
            errs.append("probe: %s not traced through fentry or kprobe (%s)" %
                        (name, e.get("method")))
    dfr = doc.get("deferred_frees") or {}
    if not dfr.get("traced"):
        errs.append("probe: deferred_frees.traced is false")
    # kvfree_call_rcu(head, func) up to 6.1, (head, ptr) since 6.2: read from BTF
    m = re.match(r"(\d+)\.(\d+)", str(doc.get("kernel") or ""))
    if m:
        want = "head-offset" if (int(m.group(1)), int(m.group(2))) < (6, 2) else "ptr"
        if dfr.get("rcu_object_arg") != want:
            errs.append("probe: rcu_object_arg %r on %s, expected %s" %
                        (dfr.get("rcu_object_arg"), doc.get("kernel"), want))
        # the preempt count as a plain load where bpf_rdonly_cast() exists (6.2+)
        want = ("bpf_probe_read_kernel" if (int(m.group(1)), int(m.group(2))) < (6, 2)
                else "bpf_rdonly_cast")
        ctx = doc.get("context_capture") or {}
        if not ctx.get("available") or ctx.get("read") != want:
            errs.append("probe: context_capture %r on %s, expected it read by %s" %
                        (ctx, doc.get("kernel"), want))
    for fam, methods in spec["methods"].items():
        # deferred frees (above) carry a slab family but have no tracepoint anywhere
        sel = [e for e in doc.get("events", []) if e.get("family") == fam and e.get("traced")
               and not e.get("deferred")]
        if not sel:
            errs.append("probe: no traced event for %s" % fam)
        for e in sel:
            if e.get("method") not in methods:
                errs.append("probe: %s event %s uses %s, expected one of %s" %
                            (fam, e.get("event"), e.get("method"), ", ".join(sorted(methods))))
    if doc.get("kmalloc_traced_twice") is not spec["twice"]:
        errs.append("probe: kmalloc_traced_twice %r, expected %r" %
                    (doc.get("kmalloc_traced_twice"), spec["twice"]))
    # the plan chose by what candidates deliver: vmalloc's GFP, request and only vmalloc
    vm = [e for e in doc.get("events", []) if e.get("event") == "vmalloc"]
    lacks = {"gfp", "bytes_req", "bytes_alloc", "own_only"} - set(
        (vm[0].get("delivers") or []) if vm else [])
    if lacks:
        errs.append("probe: vmalloc's attach point does not deliver %s" % ", ".join(sorted(lacks)))
    return errs


def gfp_entries(rows):
    out = []
    for r in rows:
        for g in r.get("gfp") or []:
            try:
                v = int(str(g.get("value")), 0)
            except ValueError:
                v = None
            out.append((v, str(g.get("flags") or "")))
    return out


@guarded(lambda m, *a: [m])
def check_line(doc, L, lines):
    """Compare one ledger line with the matching site rows of one stat report."""
    errs = []
    fam, fn = L["family"], L["function"]
    sites = doc.get("sites") or []
    # nested allocations (a large vmalloc's page array, a large kmalloc's or a dma
    # buffer's pages) have rows of their own: the ledger's page line of a large kmalloc
    # or dma buffer is such a row, every other line counts what the module asked for
    nested = is_nested_line(L, lines)
    rows = [s for s in sites if s.get("family") == fam and s.get("module") == MODULE
            and s.get("function") == fn and bool(s.get("nested")) == nested]
    if not rows:
        ours = sorted({"%s/%s" % (s.get("family"), s.get("function")) for s in sites
                       if s.get("module") == MODULE})
        return ["%s: no site row for function %s (module rows: %s)" %
                (fam, fn, ", ".join(ours) or "none")]

    def total(key):
        return sum(int(r.get(key) or 0) for r in rows)

    for key in ("allocs", "frees", "bytes_req", "bytes_alloc"):
        want, got = int(L[key]), total(key)
        if want != got:
            errs.append("%s %s: %s=%d, ledger %d" % (fam, fn, key, got, want))
    if "deferred" not in L:
        errs.append("ledger line without deferred=: rebuild the module")
    elif int(L["deferred"]) != total("deferred_frees"):
        errs.append("%s %s: deferred_frees=%d, ledger deferred %s" %
                    (fam, fn, total("deferred_frees"), L["deferred"]))
    if all("outstanding" in r for r in rows):
        want, got = int(L["leaked"]), total("outstanding")
        if want != got:
            errs.append("%s %s: outstanding=%d, ledger leaked %d" % (fam, fn, got, want))

    entries = gfp_entries(rows)
    if L.get("gfp", "-") != "-":
        for v in (int(x, 16) for x in L["gfp"].split(",")):
            if not any(e[0] is not None and e[0] & v == v for e in entries):
                errs.append("%s %s: no gfp value containing %#x (got %s)" %
                            (fam, fn, v, ", ".join("%s=%s" % (e[1], hex(e[0] or 0))
                                                  for e in entries) or "none"))
    if L.get("gfpname", "-") != "-":
        name = L["gfpname"]
        if not any(name in e[1].split("|") for e in entries):
            errs.append("%s %s: no gfp names with %s (got %s)" %
                        (fam, fn, name, ", ".join(e[1] for e in entries) or "none"))

    if fam == "page" and int(L.get("order", -1)) >= 0:
        order = int(L["order"])
        got = sum(int(o.get("allocs") or 0) for r in rows for o in (r.get("orders") or [])
                  if int(o.get("order", -1)) == order)
        if got != int(L["allocs"]):
            errs.append("page %s: order %d allocs=%d, ledger %s" % (fn, order, got, L["allocs"]))
    for key in ("cache", "device"):
        if L.get(key, "-") != "-":
            got = {r.get(key) for r in rows}
            if got != {L[key]}:
                errs.append("%s %s: %s %s, ledger %s" % (fam, fn, key, sorted(map(str, got)),
                                                          L[key]))
    return errs


# the functions ioremap() allocates in for its caller: kmemscope must put no site there
IOREMAP_WRAPPERS = {"ioremap", "__ioremap_caller", "memtype_reserve", "get_vm_area_caller",
                    "__get_vm_area_node", "__get_vm_area_caller", "alloc_vmap_area"}


# mempool's: the pool, its reserve array and the kernel's kmalloc elements are the ledger's
# at the pool's user (the ftrace selftest follows them by stack, as kmemscope does)
MEMPOOL_WRAPPERS = {"mempool_create", "mempool_create_node", "mempool_create_node_noprof",
                    "mempool_init_node", "mempool_init_noprof", "mempool_kmalloc",
                    "mempool_alloc", "mempool_alloc_noprof"}


@guarded(lambda m, *a: [m])
def check_mappings(doc, L):
    """A "vmap" ledger line: areas of the kernel's address space the module mapped without
    vmalloc (ioremap). No vmalloc row at its function; where vmalloc is traced at the
    vmap-area tracepoint they are left out and counted in quality.vmap_mappings (at least
    the ledger's, system-wide), where a function probe traces vmalloc they are not seen
    (vmap_mappings 0). No site row of any family at ioremap's own functions."""
    errs = []
    fn, n = L["function"], int(L["allocs"])
    sites = doc.get("sites") or []
    vm = [s for s in sites if s.get("family") == "vmalloc" and s.get("function") == fn]
    if vm:
        errs.append("vmap: %d vmalloc allocation(s) at %s: an area vmalloc did not make" %
                    (sum(int(s.get("allocs") or 0) for s in vm), fn))
    method = {f.get("family"): f.get("method") for f in doc.get("families") or []}.get("vmalloc")
    got = int((doc.get("quality") or {}).get("vmap_mappings", -1))
    if method in TRACEPOINTS:
        if got < n:
            errs.append("vmap: quality.vmap_mappings=%d, ledger %d (vmalloc at %s)" %
                        (got, n, method))
    elif got != 0:
        errs.append("vmap: quality.vmap_mappings=%d, expected 0 (vmalloc at %s sees no "
                    "other area)" % (got, method))
    at = sorted({"%s/%s" % (s.get("family"), s.get("function")) for s in sites
                 if s.get("function") in IOREMAP_WRAPPERS})
    if at:
        errs.append("sites at ioremap's own functions, not its caller's: %s" % ", ".join(at))
    return errs


# ---- detectors: misuse findings and leak rows against the ledger ----

# the ledger's context= (how the module ran the allocation) -> kmemscope's context
ATOMIC_CTX = {"spinlock": "preempt_disabled", "raw_spinlock": "preempt_disabled",
              "softirq": "softirq", "hardirq": "hardirq"}
# on PREEMPT_RT a spinlock_t is a sleeping lock and softirqs run in preemptible
# threads: allocations there run in process context, where GFP_KERNEL is legal
RT_PREEMPTIBLE = {"spinlock", "softirq"}
# scenarios the module refuses on PREEMPT_RT (why), shown as XFAIL rows there
NOT_ON_RT = {"hardirq_in_tracer_rescue": "an allocation in hardirq context is a bug on "
                                         "PREEMPT_RT, so the module makes none"}
# contexts kmemscope cannot see by design: a finding would be an XPASS
XFAIL_CTX = {"irqs_off": "IRQs disabled without preemption disabled (bare local_irq_save) do "
                         "not show in the preempt count: classified as process context "
                         "(documented limit, docs/detectors.md)"}


def blocking_list(L):
    """The kernel's gfpflags_allow_blocking() for each gfp of a ledger line, or None."""
    v = L.get("blocking", "-")
    if v == "-":
        return None
    return [x == "1" for x in v.split(",")]


def is_nested_line(L, lines):
    """A page line next to another family's line of the same function is that allocation's
    own page block (large kmalloc, dma-direct): kmemscope judges the outer allocation only."""
    return L["family"] == "page" and any(o is not L and o.get("function") == L["function"] and
                                         o.get("family") not in ("page", "-") for o in lines)


def misuse_expectations(lines, rt):
    """What the detectors must report at the module's sites, from the ledger alone and
    whether the kernel is PREEMPT_RT."""
    exp = []
    for L in lines:
        blk = blocking_list(L)
        if blk is None or is_nested_line(L, lines):
            continue
        fam, fn, ctx, n = L["family"], L["function"], L.get("context", "process"), int(L["allocs"])
        if rt and ctx in RT_PREEMPTIBLE:
            ctx = "process"
        base = {"family": fam, "function": fn, "xfail": None}
        if any(blk) and (ctx in ATOMIC_CTX or ctx in XFAIL_CTX):
            kind = "vmalloc_in_atomic" if fam == "vmalloc" else "blocking_gfp_in_atomic"
            exp.append(dict(base, kind=kind, severity="error", context=ATOMIC_CTX.get(ctx),
                            count=n if all(blk) else None, xfail=XFAIL_CTX.get(ctx)))
        if ctx in XFAIL_CTX:
            # kmemscope sees process context there: what follows would be misjudged
            continue
        mctx = "process" if ctx == "process" else ATOMIC_CTX.get(ctx)
        if ctx in ATOMIC_CTX and not all(blk):
            if rt:
                # only raw locks get here on RT (spinlock, softirq: process above): the
                # allocators take sleeping locks there, any GFP is a bug
                exp.append(dict(base, kind="alloc_in_atomic_on_rt", severity="error",
                                context=mctx, count=n if not any(blk) else None))
            else:
                # legal where the allocators spin: no finding, but the context must be seen
                exp.append(dict(base, kind=None, context=mctx, count=n, severity=None))
        if ctx == "process" and not all(blk):
            exp.append(dict(base, kind="atomic_gfp_in_process", severity="info",
                            context="process", count=n if not any(blk) else None))
        if fam == "page" and int(L.get("order", -1)) >= 3 and not all(blk):
            exp.append(dict(base, kind="high_order_atomic", severity="info", context=mctx,
                            count=n if not any(blk) else None))
    return exp


def fmt_finding(f):
    site = f.get("site") or {}
    return "%s/%s %s context=%s at %s family=%s count=%s gfp=%s" % (
        f.get("kind"), f.get("severity"), f.get("gfp_value"), f.get("context"),
        site.get("symbol") or site.get("function"), f.get("family"), f.get("count"),
        f.get("gfp"))


def check_misuse(misuse, exp):
    """Returns (errors of the real expectations, [(xfail expectation, flagged)], errors of
    unexpected findings at module sites)."""
    if not isinstance(misuse, dict):
        return (["no misuse member in the report"] if exp else []), \
               [(e, False) for e in exp if e["xfail"]], ["no misuse member in the report"]
    findings = misuse.get("findings") or []
    ours = [f for f in findings if (f.get("site") or {}).get("module") == MODULE]
    errs, xfails, extra = [], [], []
    used = set()
    for e in exp:
        if e["kind"] is None:
            # no finding expected: the system-wide count of the context holds the line's
            seen = int((misuse.get("contexts") or {}).get(e["context"]) or 0)
            if seen < e["count"]:
                errs.append("contexts.%s=%d, fewer than the %d allocations at %s" %
                            (e["context"], seen, e["count"], e["function"]))
            continue
        same = [i for i, f in enumerate(ours)
                if f.get("kind") == e["kind"] and f.get("family") == e["family"] and
                (f.get("site") or {}).get("function") == e["function"]]
        used.update(same)
        if e["xfail"]:
            xfails.append((e, bool(same)))
            continue
        want = "%s %s %s at %s" % (e["kind"], e["context"], e["family"], e["function"])
        if not same:
            others = [fmt_finding(ours[i]) for i in range(len(ours))] or ["none"]
            errs.append("no %s finding (module findings: %s)" % (want, "; ".join(others)))
            continue
        for i in same:
            f = ours[i]
            if f.get("severity") != e["severity"] or f.get("context") != e["context"]:
                errs.append("expected %s/%s, kmemscope printed %s" %
                            (want, e["severity"], fmt_finding(f)))
        got = sum(int(ours[i].get("count") or 0) for i in same
                  if ours[i].get("context") == e["context"])
        if e["count"] is not None and got != e["count"]:
            errs.append("%s: count=%d, ledger allocs %d" % (want, got, e["count"]))
    for i, f in enumerate(ours):
        if i not in used:
            extra.append("unexpected finding at a module site: %s" % fmt_finding(f))
    return errs, xfails, extra


FRAME_RE = re.compile(r"^([^+\s]+)(?:\+\S*)?(?:\s+\[(\S+)\])?$")


def frames(row):
    out = []
    for fr in row.get("stack") or []:
        m = FRAME_RE.match(str(fr).strip())
        if m:
            out.append((m.group(1), m.group(2)))
    site = row.get("site") or {}
    if site.get("function"):
        out.append((site["function"], site.get("module")))
    return out


@guarded(lambda m, *a: [m])
def check_twice(doc, lines, twice):
    """quality.kmalloc_twice: at least one per large kmalloc of the ledger (past two pages,
    KMALLOC_MAX_CACHE_SIZE; the whole system is traced, so others may add) where the kernel
    traces them twice, none anywhere else."""
    got = (doc.get("quality") or {}).get("kmalloc_twice")
    if not isinstance(got, int):
        return ["quality.kmalloc_twice is %r" % got]
    large = sum(int(L["allocs"]) for L in lines if L.get("family") == "kmalloc" and
                int(L.get("bytes_req", 0)) > 2 * 4096 * int(L.get("allocs", 0)))
    if not twice:
        return ["quality.kmalloc_twice=%d on a kernel that traces once" % got] if got else []
    return [] if got >= large else ["quality.kmalloc_twice=%d, ledger %d large kmallocs" %
                                    (got, large)]


def leaks_verdict(doc):
    """A leaks report's schema, losses and verdict: (errors, notes)."""
    errs, notes = [], []
    if doc.get("schema") != "kmemscope.leaks":
        return ["schema is %r, not kmemscope.leaks" % doc.get("schema")], notes
    v = doc.get("verdict") or {}
    q = doc.get("quality") or {}
    if q.get("lost", 0) != 0:
        errs.append("quality.lost=%s" % q["lost"])
    # The kernel skips a handler an interrupt re-enters on the same CPU (an RCU softirq
    # freeing while kmem_cache_free's program runs): under a busy host's TCG that happens
    # a few times per run. The verdict must then say so, with the count the quality block
    # gives; the counts are checked all the same.
    skipped = int(q.get("misses", 0)) + int(q.get("pending_lost", 0))
    if not v.get("certain"):
        if q.get("lost", 0) == 0 and skipped and int(v.get("records_lost") or 0) == skipped:
            notes.append("verdict unconfirmed by %d program runs the kernel skipped, as "
                         "the quality block counts" % skipped)
        else:
            errs.append("verdict not certain: %s (records_lost %s, quality misses+pending %d)"
                        % (v.get("reason"), v.get("records_lost"), skipped))
    elif skipped:
        errs.append("verdict certain although the kernel skipped %d program runs" % skipped)
    return errs, notes


@guarded(lambda m, *a: ([m], []))
def check_leaks(doc, lines):
    """kmemscope leaks against the ledger's leaked objects (any family, bytes_alloc)."""
    errs, notes = leaks_verdict(doc)
    if errs:
        return errs, notes
    leaky = [L for L in lines if int(L.get("leaked", 0)) > 0]
    bad = [L for L in lines if int(L.get("badfrees", 0)) > 0]
    if not leaky and not bad and not any(int(L.get("deferred", 0)) for L in lines):
        return errs + ["the ledger has no leaked objects or bad frees for this run"], notes
    rows = doc.get("leaks") or []
    claimed = set()
    for L in leaky:
        fn, fam = L["function"], L["family"]
        mine = [i for i, r in enumerate(rows) if (fn, MODULE) in frames(r)]
        claimed.update(mine)
        cnt = sum(int(rows[i].get("count") or 0) for i in mine)
        byt = sum(int(rows[i].get("bytes") or 0) for i in mine)
        if "leaked_bytes" not in L:
            errs.append("ledger line without leaked_bytes=: rebuild the module")
        elif cnt != int(L["leaked"]) or byt != int(L["leaked_bytes"]):
            errs.append("leak rows at %s: count=%d bytes=%d, ledger leaked=%s leaked_bytes=%s" %
                        (fn, cnt, byt, L["leaked"], L["leaked_bytes"]))
        for i in mine:
            r = rows[i]
            site = r.get("site") or {}
            if site.get("function") != fn or site.get("module") != MODULE or \
               r.get("family") != fam:
                errs.append("leak row with %s below its site: %s %s stack %s" %
                            (fn, r.get("family"), site.get("symbol"), r.get("stack")))
            # kept until release, with nothing lost: a true leak, and known for one
            if (doc.get("verdict") or {}).get("certain") and r.get("confidence") != "certain":
                errs.append("leak row at %s is %s (%s), not certain" %
                            (fn, r.get("confidence"), r.get("reasons")))
        notes.append("%s: %d objects, %d bytes in %d row(s)" % (fn, cnt, byt, len(mine)))
    for i, r in enumerate(rows):
        if i not in claimed and any(m == MODULE for _, m in frames(r)):
            errs.append("other leak row mentions %s: %s count=%s bytes=%s stack %s" %
                        (MODULE, r.get("family"), r.get("count"), r.get("bytes"), r.get("stack")))
    for r in doc.get("frees_not_observable") or []:
        if (r.get("site") or {}).get("module") == MODULE:
            errs.append("module site under frees_not_observable: %s %s" %
                        (r.get("family"), (r.get("site") or {}).get("symbol")))
    findings = (doc.get("bad_frees") or {}).get("findings") or []
    # with nothing lost or skipped, nothing makes these findings doubtful
    q = doc.get("quality") or {}
    whole = not any(int(q.get(k) or 0) for k in ("lost", "misses", "out_of_order",
                                                   "pending_lost", "bulk_lost"))
    claimed = set()
    for L in bad:
        fn = L["function"]
        mine = [i for i, b in enumerate(findings)
                if (b.get("alloc_site") or {}).get("module") == MODULE and
                (b.get("alloc_site") or {}).get("function") == fn and b.get("kind") == L["badfree"]]
        claimed.update(mine)
        cnt = sum(int(findings[i].get("count") or 0) for i in mine)
        if cnt != int(L["badfrees"]):
            errs.append("%s findings at %s: count=%d, ledger badfrees=%s" %
                        (L["badfree"], fn, cnt, L["badfrees"]))
        for i in mine:
            b = findings[i]
            if (b.get("free_site") or {}).get("function") != fn or \
               b.get("alloc_event") != ALLOC_EVENT.get(L["family"]) or \
               b.get("free_event") != L.get("badfree_by") or (whole and b.get("suspected")):
                errs.append("%s finding at %s: freed at %s by %s, allocated by %s, "
                            "suspected %s" % (L["badfree"], fn,
                                              (b.get("free_site") or {}).get("symbol"),
                                              b.get("free_event"), b.get("alloc_event"),
                                              b.get("suspected")))
        notes.append("%s: %d %s finding(s)" % (fn, cnt, L["badfree"]))
    for i, b in enumerate(findings):
        if i not in claimed and \
           any((b.get(k) or {}).get("module") == MODULE for k in ("alloc_site", "free_site")):
            errs.append("bad free at a module site: %s %s -> %s" %
                        (b.get("kind"), b.get("alloc_event"), b.get("free_event")))
    return errs, notes


ORDINARY = "ordinary_leaks"


@guarded(lambda m, *a: (ORDINARY, [m], []))
def check_ordinary(files, rcs):
    """`kmemscope leaks` of ordinary commands (guest-init.sh): no leak candidate may be
    certain. The retained and nested classes go by function and cache names (src/detect.c),
    measured on the 6.18 host: this row holds them to the guests' kernels."""
    if ORDINARY not in rcs:
        return ORDINARY, ["the guest never ran it"], []
    if rcs[ORDINARY][0]:
        return ORDINARY, ["kmemscope leaks exited %d (%s.err: %s)" %
                          (rcs[ORDINARY][0], ORDINARY,
                           files.get(ORDINARY + ".err", "").strip().splitlines()[-1:] or "-")], []
    doc, err = load_json(files, ORDINARY + ".json")
    if err:
        return ORDINARY, [err], []
    errs, notes = leaks_verdict(doc)
    s = doc.get("summary") or {}
    # nothing outstanding at all would pass for the wrong reason: the run judged nothing
    if not s.get("live_objects"):
        errs.append("no object outstanding at the end: nothing was judged")
    for r in doc.get("leaks") or []:
        if r.get("confidence") == "certain":
            errs.append("certain leak: %s %s cache %s count %s stack %s" %
                        (r.get("family"), (r.get("site") or {}).get("symbol"), r.get("cache"),
                         r.get("count"), (r.get("stack") or [])[:6]))
    notes.append("outstanding %s: leak candidates %s (certain %s), retained %s, nested %s" %
                 (s.get("live_objects"), s.get("leak_objects"), s.get("certain_leak_objects"),
                  s.get("retained_objects"), s.get("nested_objects")))
    return ORDINARY, errs, notes


@guarded(lambda m, *a: ([m], []))
def check_deferred(doc, lines, tool):
    """Deferred frees: every real free of an object handed to RCU seen and folded into the
    handoff (quality.rcu_completed), none of the module's objects left over."""
    errs, notes = [], []
    q = doc.get("quality") or {}
    if not q.get("deferred_traced"):
        errs.append("quality.deferred_traced is false")
    n = sum(int(L.get("deferred", 0)) for L in lines)
    if not n:
        return errs + ["the ledger has no deferred frees for this run"], notes
    rcu = any(L.get("scenario") in ("kfree_rcu", "kvfree_rcu") for L in lines)
    if rcu:
        # whole system (-a): other RCU frees may complete too, ours all must
        if int(q.get("rcu_completed", 0)) < n:
            errs.append("quality.rcu_completed=%s < %d: real frees of the handed-over "
                        "objects not seen (or counted twice)" % (q.get("rcu_completed"), n))
        notes.append("rcu_completed=%s" % q.get("rcu_completed"))
    if int(q.get("bulk_lost", 0)):
        errs.append("quality.bulk_lost=%s" % q.get("bulk_lost"))
    if tool == "stat":
        # the ledger's own rows: slab refill pages at the same function stay outstanding
        want = {(L["family"], L["function"]) for L in lines}
        rows = [s for s in doc.get("sites") or [] if s.get("module") == MODULE and
                (s.get("family"), s.get("function")) in want]
        got = sum(int(s.get("deferred_frees") or 0) for s in rows)
        if got != n:
            errs.append("deferred_frees at module sites %d, ledger %d" % (got, n))
        out = sum(int(s.get("outstanding") or 0) for s in rows)
        if out:
            errs.append("%d module objects outstanding after their deferred free" % out)
    notes.append("deferred=%d" % n)
    return errs, notes


EV_RE = re.compile(r":\s+(kmalloc|kfree|kmem_cache_alloc|kmem_cache_free|mm_page_alloc|mm_page_free|"
                   r"mm_page_free_batched|percpu_alloc_percpu|percpu_free_percpu): (.*)$")


def ftrace_totals(text):
    """Per (family, function) totals from a raw ftrace dump, frees matched by pointer/pfn."""
    tot, owner, pending = {}, {}, None

    def bump(key, field, n=1):
        tot.setdefault(key, {"allocs": 0, "frees": 0, "bytes_req": 0, "bytes_alloc": 0,
                             "gfp": set(), "orders": {}})[field] += n

    def slab_alloc(fam, fn, f):
        key = (fam, fn)
        bump(key, "allocs")
        bump(key, "bytes_req", int(f.get("bytes_req", f.get("size", "0"))))
        bump(key, "bytes_alloc", int(f["bytes_alloc"]))
        tot[key]["gfp"].add(f.get("gfp_flags", ""))
        owner[(fam, f["ptr"])] = key

    for line in text.splitlines():
        m = re.match(r"^\s*=> (\S+)", line)
        if m:
            fn = m.group(1).split("+")[0]
            # page events carry no call site, and ioremap's allocations are made in its
            # own functions: the first module frame on the stack
            if pending and fn.startswith("kms_") and pending[0] == "page":
                pfn, order, gfp = pending[1:]
                key = ("page", fn)
                bump(key, "allocs")
                bump(key, "bytes_req", 4096 << order)
                bump(key, "bytes_alloc", 4096 << order)
                tot[key]["gfp"].add(gfp)
                tot[key]["orders"][order] = tot[key]["orders"].get(order, 0) + 1
                owner[("pfn", pfn)] = key
                pending = None
            elif pending and fn.startswith("kms_"):
                slab_alloc(pending[0], fn, pending[1])
                pending = None
            continue
        m = EV_RE.search(line)
        if not m:
            continue
        pending = None
        ev, rest = m.group(1), m.group(2)
        f = dict(re.findall(r"(\w+)=(\S+)", rest))
        site = f.get("call_site", "").split("+")[0]
        if ev in ("kmalloc", "kmem_cache_alloc", "percpu_alloc_percpu"):
            fam = {"kmalloc": "kmalloc", "kmem_cache_alloc": "kmem_cache"}.get(ev, "percpu")
            if int(f.get("ptr", "0"), 16) == 0:
                continue
            if site.startswith("kms_"):
                slab_alloc(fam, site, f)
            elif site in IOREMAP_WRAPPERS or site in MEMPOOL_WRAPPERS:
                pending = (fam, f)
        elif ev in ("kfree", "kmem_cache_free", "percpu_free_percpu"):
            fam = {"kfree": "kmalloc", "kmem_cache_free": "kmem_cache"}.get(ev, "percpu")
            key = owner.pop((fam, f.get("ptr")), None)
            if key:
                bump(key, "frees")
        elif ev == "mm_page_alloc":
            pending = ("page", f.get("pfn"), int(f.get("order", "0")), f.get("gfp_flags", ""))
        elif ev in ("mm_page_free", "mm_page_free_batched"):
            key = owner.pop(("pfn", f.get("pfn")), None)
            if key:
                bump(key, "frees")
    return tot


@guarded(lambda m, *a: ([m], []))
def selftest_scenario(text, lines):
    """The ledger against the kernel's own events; vmalloc/dma have none on 6.1."""
    errs, notes = [], []
    tot = ftrace_totals(text)
    for L in lines:
        fam, fn = L["family"], L["function"]
        if fam in ("vmalloc", "dma", "vmap"):
            notes.append("%s unverified (no event)" % fam)
            continue
        t = tot.get((fam, fn))
        if not t:
            errs.append("ftrace: no %s events from %s" % (fam, fn))
            continue
        for key in ("allocs", "frees", "bytes_req", "bytes_alloc"):
            # deferred frees fire no per-object free event: that is the point of them
            if key == "frees" and int(L.get("deferred", 0)):
                notes.append("%s frees deferred (no event)" % fn)
                continue
            if t[key] != int(L[key]):
                errs.append("ftrace: %s %s %s=%d, ledger %s" % (fam, fn, key, t[key], L[key]))
        if L.get("gfpname", "-") != "-" and not any(L["gfpname"] in g.split("|")
                                                    for g in t["gfp"]):
            errs.append("ftrace: %s %s gfp %s lacks %s" % (fam, fn, sorted(t["gfp"]),
                                                            L["gfpname"]))
        if fam == "page" and t["orders"].get(int(L["order"]), 0) != int(L["allocs"]):
            errs.append("ftrace: page %s orders %s, ledger order %s x%s" %
                        (fn, t["orders"], L["order"], L["allocs"]))
    return errs, notes


def check_report(name, tool, doc, lines, errs, deferred_run, rt):
    """The ledger checks of one report (the guest's, or the host's replay of its trace):
    errors go to errs; returns the scenario row's notes and the extra rows."""
    notes = []
    # A stock kernel runs the handlers wherever it runs a tracepoint: a softirq or a
    # task run the witnesses count as unseen here would be a false one; the task
    # witness is off on PREEMPT_RT (docs/detectors.md)
    q = doc.get("quality") or {}
    for w, n, on in (("softirq_witness", "softirqs_unseen", True),
                     ("task_witness", "tasks_unseen", not rt)):
        if q.get(w) is not on or q.get(n) != 0:
            errs.append("%s %s, %s %s (want %s, 0)" % (w, q.get(w), n, q.get(n),
                                                       "on" if on else "off"))
    if q.get("unseen_tasks") is not None:
        errs.append("unseen_tasks %r (want none)" % q.get("unseen_tasks"))
    # the _rescue scenarios (scenarios.txt): the shadows ran, and added no event twice
    if q.get("rescue") is not ("_rescue" in name):
        errs.append("quality.rescue %r in %s" % (q.get("rescue"), name))
    if tool == "leaks":
        e, notes = check_leaks(doc, lines)
        errs.extend(e)
    else:
        q = doc.get("quality") or {}
        if q.get("lost", 0) != 0:
            errs.append("quality.lost=%s" % q.get("lost"))
        traced = {f.get("family"): f.get("traced") for f in doc.get("families") or []}
        for L in lines:
            if L["family"] == "vmap":
                errs.extend(check_mappings(doc, L))
                continue
            if not traced.get(L["family"]):
                errs.append("family %s not traced" % L["family"])
            errs.extend(check_line(doc, L, lines))
    extra_rows = misuse_rows(name, doc.get("misuse"), lines, errs, rt)
    if name.split(".")[0] in DEFERRED_SCENARIOS:
        e, n = check_deferred(doc, lines, tool)
        extra_rows.append((name + ".deferred", e, n))
        deferred_run.add(name.split(".")[0])
    return notes, extra_rows


def check_replay(kms, fdir, name, tool, live, lines, deferred_run, rt):
    """Replay the guest's trace file of name on the host and check the report like the
    guest's: rows NAME.replay (and its misuse and deferred rows)."""
    row = name + ".replay"
    trace = os.path.join(fdir, name + ".kmt")
    out = os.path.join(fdir, row + ".json")
    if not os.path.exists(trace):
        return [(row, ["no trace file %s.kmt from the guest" % name], [])]
    try:
        p = subprocess.run([kms, tool, "-i", trace, "--json", "--top", "0", "-o", out],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return [(row, ["cannot run %s %s -i: %s" % (kms, tool, e)], [])]
    if p.returncode != 0:
        return [(row, ["kmemscope %s -i %s.kmt exited %d: %s" %
                       (tool, name, p.returncode, p.stderr.strip()[-300:] or "-")], [])]
    try:
        with open(out) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return [(row, ["%s.json: %s" % (row, e)], [])]
    errs = []
    notes, extra_rows = check_report(row, tool, doc, lines, errs, deferred_run, rt)
    if live is not None:
        diffs = report_diff(live, doc)
        if diffs:
            errs.append("the replay differs from the guest's report at %d path(s): %s" %
                        (len(diffs), "; ".join(diffs[:5])))
    notes.append("%d bytes" % os.path.getsize(trace))
    return [(row, errs, notes)] + extra_rows


# scenarios whose verdict depends on the kernel being PREEMPT_RT: their trace file is also
# replayed as a kmemscope without META's kernel.preempt_rt wrote it (NAME.replay_old_meta)
RT_VERDICT_SCENARIOS = ("gfp_atomic_raw_spinlock",)


@guarded(lambda m, kms, fdir, name, *a: (name + ".replay_old_meta", [m], []))
def check_old_meta(kms, fdir, name, live, rt):
    """A file written before META had kernel.preempt_rt is judged by its recorded version
    string: its replay equals the guest's report (source aside), with the RT rules on
    exactly on the RT kernel."""
    row = name + ".replay_old_meta"
    trace = os.path.join(fdir, name + ".kmt")
    old = os.path.join(fdir, row + ".kmt")
    out = os.path.join(fdir, row + ".json")
    if not os.path.exists(trace) or live is None:
        return (row, ["no trace file or no guest report for %s" % name], [])
    tracefile.older_meta(trace, old, "preempt_rt")
    p = subprocess.run([kms, "stat", "-i", old, "--json", "--top", "0", "-o", out],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return (row, ["kmemscope stat -i %s exited %d: %s" %
                      (os.path.basename(old), p.returncode, p.stderr.strip()[-300:] or "-")], [])
    with open(out) as f:
        doc = json.load(f)
    errs = []
    got = (doc.get("misuse") or {}).get("preempt_rt")
    if got is not rt:
        errs.append("misuse.preempt_rt=%s on a %sRT kernel" % (got, "" if rt else "non-"))
    diffs = report_diff(live, doc)
    if diffs:
        errs.append("the replay differs from the guest's report at %d path(s): %s" %
                    (len(diffs), "; ".join(diffs[:5])))
    return (row, errs, ["preempt_rt from kernel.version: %s" % got])


def pprof_rows(prof, args):
    """{function: flat} of go tool pprof -top ARGS on prof, or an error string."""
    try:
        p = subprocess.run(["go", "tool", "pprof", "-top", "-unit=B", "-nodecount=0"] + args +
                           [prof], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return "cannot run go tool pprof: %s" % e
    rows, seen = {}, False
    for line in p.stdout.splitlines():
        f = line.split()
        if seen and len(f) >= 6:
            rows[f[5]] = int(f[0].rstrip("B"))
        seen = seen or f[:2] == ["flat", "flat%"]
    return rows if seen else "go tool pprof: %s" % (p.stderr.strip()[-200:] or "no table")


def pprof_mappings(prof):
    """{function: mapping file name} from go tool pprof -raw, or an error string."""
    try:
        p = subprocess.run(["go", "tool", "pprof", "-raw", prof], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return "cannot run go tool pprof: %s" % e
    locs, maps = {}, {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s+\d+: 0x[0-9a-f]+ M=(\d+) (\S+)", line)
        if m:
            locs.setdefault(m.group(2), set()).add(m.group(1))
        m = re.match(r"(\d+): 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ (\S+)", line)
        if m:
            maps[m.group(1)] = m.group(2)
    return {fn: ",".join(sorted(maps.get(i, "?") for i in ids)) for fn, ids in locs.items()}


# Open defects on one kernel, each with what is wrong: the scenario's rows (live, replay,
# pprof) are shown as XFAIL with the reason and not counted; a row that passes counts as
# a pass (XPASS). Each is a bug to fix, written here so that it cannot go unnoticed.
KNOWN_DEFECTS = {}


def mark_known(results, start, known):
    """The rows from results[start] on of a scenario with a known defect become XFAIL rows."""
    for i in range(start, len(results)):
        row = results[i]
        reason = known.get(row[0].split(".")[0])
        if reason and (len(row) == 3 or not row[3]):
            results[i] = (row[0], row[1], row[2], reason)


def check_pprof(kms, fdir, name, lines):
    """The pprof profile of the replay (stat -i NAME.kmt --pprof), read by go tool pprof:
    per ledger line, the samples of its family whose leaf is its function (pages nested
    under another allocation left out, but for the line that is that allocation's own page
    block) hold the ledger's allocs (alloc_objects) and bytes_alloc (alloc_space), and the
    function's locations are in the module's mapping."""
    row = name + ".pprof"
    trace = os.path.join(fdir, name + ".kmt")
    prof = os.path.join(fdir, row + ".pb.gz")
    if not os.path.exists(trace):
        return (row, ["no trace file %s.kmt from the guest" % name], [])
    try:
        p = subprocess.run([kms, "stat", "-i", trace, "--pprof", prof, "-o", os.devnull],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return (row, ["cannot run %s stat -i: %s" % (kms, e)], [])
    if p.returncode != 0:
        return (row, ["kmemscope stat -i %s.kmt --pprof exited %d: %s" %
                      (name, p.returncode, p.stderr.strip()[-300:] or "-")], [])
    maps = pprof_mappings(prof)
    if isinstance(maps, str):
        return (row, [maps], [])
    errs = []
    for L in lines:
        fam, fn = L["family"], L["function"]
        if fam == "vmap":
            continue    # no memory: not in the profile
        sel = ["-tagfocus=family=^%s$" % fam, "-focus=^%s$" % re.escape(fn)]
        if not is_nested_line(L, lines):
            sel.append("-tagignore=nested=.")
        for index, key in (("alloc_objects", "allocs"), ("alloc_space", "bytes_alloc")):
            rows = pprof_rows(prof, ["-sample_index=" + index] + sel)
            if isinstance(rows, str):
                errs.append(rows)
            elif rows.get(fn) != int(L[key]):
                errs.append("%s %s: %s %s, ledger %s %s" %
                            (fam, fn, index, rows.get(fn, "missing"), key, L[key]))
        if maps.get(fn) != MODULE:
            errs.append("%s: mapping %s, not %s" % (fn, maps.get(fn, "none"), MODULE))
    return (row, errs, ["%d bytes" % os.path.getsize(prof)] if os.path.exists(prof) else [])


# the gate scenario (issue #9): the guest's clean runs, and one run per regression the
# module parameter inject= makes, with the function it lands in and the rule it must break
GATE_CLEAN = ["clean%d" % i for i in range(1, 7)]
GATE_INJECT = [("allocs", "kms_gate_allocs", "allocs="), ("size", "kms_gate_size", "bytes="),
               ("order", "kms_gate_order", "new-order"), ("leak", "kms_gate_leak", "leak"),
               ("misuse", "kms_gate_misuse", "misuse")]
GATE_FAIL_ON = "leak,misuse,bad-free,new-order"
# the floor above the noise of clean runs (docs/ci.md, choosing the floor): the shell's own
# page faults (__handle_mm_fault) take 8 to 10 pages a run, 8 KB apart between clean runs;
# every injected regression moves its site by 24 KB or more, or is a verdict
GATE_MIN_DELTA = "16K"


def gate_run(kms, args):
    """(exit status, output) of one kmemscope baseline|check, or (None, why not)."""
    try:
        p = subprocess.run([kms] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "cannot run kmemscope %s: %s" % (args[0], e)
    return p.returncode, (p.stdout + p.stderr).strip()


@guarded(lambda m, *a: [("gate", [m], [])])
def gate_rows(kms, fdir, rcs):
    """Each clean run checked against a baseline of the other clean runs, and against each
    other one alone, must pass (the false alarms); each injected run against all clean runs
    must fail, every broken rule at the injected function and the expected rule among them."""
    runs = GATE_CLEAN + [k for k, _, _ in GATE_INJECT]
    trace = {r: os.path.join(fdir, "gate_%s.kmt" % r) for r in runs}
    missing = [r for r in runs if rcs.get("gate_" + r, (1,))[0] != 0 or
               not os.path.exists(trace[r])]
    if missing:
        return [("gate", ["no trace file from the guest for gate run(s) %s" %
                          ", ".join(missing)], [])]

    def check(clean, run):
        """baseline of the clean runs, then check run against it: (exit, output)"""
        base = os.path.join(fdir, "gate_base_%s.json" % run)
        rc, out = gate_run(kms, ["baseline", "-o", base] + [trace[c] for c in clean])
        if rc != 0:
            return rc, "kmemscope baseline exited %s: %s" % (rc, out)
        return gate_run(kms, ["check", "--baseline", base, "--fail-on", GATE_FAIL_ON,
                              "--min-delta", GATE_MIN_DELTA, trace[run]])

    rows = []
    for c in GATE_CLEAN:
        rc, out = check([o for o in GATE_CLEAN if o != c], c)
        rows.append(("gate." + c, [] if rc == 0 else
                     ["clean run vs the %d others: exit %s" % (len(GATE_CLEAN) - 1, rc)] +
                     out.splitlines()[:8], ["vs the %d other clean runs" % (len(GATE_CLEAN) - 1)]))
    # and every clean run against every other one alone: more clean comparisons, no more
    # guest time
    pairs = [(a, b) for a in GATE_CLEAN for b in GATE_CLEAN if a != b]
    alarms = ["%s vs %s: exit %s" % (b, a, check([a], b)[0]) for a, b in pairs]
    alarms = [x for x in alarms if not x.endswith(": exit 0")]
    rows.append(("gate.clean_pairs", alarms, ["%d checks of one clean run against another"
                                              % len(pairs)]))
    for kind, func, rule in GATE_INJECT:
        rc, out = check(GATE_CLEAN, kind)
        broke = [L.strip() for L in out.splitlines() if " broke " in L]
        errs = []
        if rc != 1:
            errs.append("inject=%s: kmemscope check exited %s, not 1" % (kind, rc))
        if not any(func in L and " broke " + rule in L for L in broke):
            errs.append("inject=%s: no result at %s breaking %s" % (kind, func, rule))
        errs += ["inject=%s: a result away from %s: %s" % (kind, func, L)
                 for L in broke if func not in L]
        rows.append(("gate." + kind, errs + (out.splitlines()[:8] if errs else []),
                     ["; ".join(broke)]))
    return rows


def main():
    ap = argparse.ArgumentParser(description="check the QEMU guest's reports against the ledger")
    ap.add_argument("--kernel", required=True, choices=sorted(KERNELS),
                    help="the kernel run.sh booted (its expectations)")
    ap.add_argument("serial")
    ap.add_argument("outdir")
    ap.add_argument("kmemscope", nargs="?")
    args = ap.parse_args()
    serial, outdir, kms = args.serial, args.outdir, args.kmemscope
    here = os.path.dirname(os.path.abspath(__file__))
    files, status = split_serial(serial, outdir)
    rcs = {}
    have_kms = False
    for kind, rest in status:
        if kind == "RC":
            parts = rest.split()
            if len(parts) >= 2:
                rcs[parts[0]] = (int(parts[1]), parts[2] if len(parts) > 2 else "")
        elif kind == "HAVE-KMEMSCOPE":
            have_kms = rest.strip() == "1"
        elif kind == "ERROR":
            print("qemu: guest error: %s" % rest)

    ledger = parse_ledger(files.get("ledger", ""))
    spec = KERNELS[args.kernel]
    begin = next((rest for kind, rest in status if kind == "BEGIN"), "")
    rt = "PREEMPT_RT" in begin.split()
    results = [("kernel", check_kernel(spec, begin), [begin]), ("kernel.log", kernel_log(serial), [])]

    if any(kind == "SELFTEST" for kind, _ in status):
        for name, cmd in scenarios(os.path.join(here, "scenarios.txt")):
            lines = [L for L in ledger.get(name, []) if L.get("family") != "-"]
            if not lines:
                results.append((name, ["no ledger line"], []))
                continue
            errs, notes = selftest_scenario(files.get(name + ".ftrace", ""), lines)
            results.append((name, errs, notes))
        report(results, rcs)

    if not have_kms:
        # still show what the module did: the ground truth is useful on its own
        print("qemu: module ledger (no kmemscope in the guest):")
        sys.stdout.write(files.get("ledger", "(none)\n"))
        results.append(("probe", ["kmemscope-static missing from the guest (make static)"], []))
    else:
        doc, err = load_json(files, "probe.json")
        errs = [err] if err else check_probe(doc, spec)
        if rcs.get("probe", (1,))[0] != 0:
            errs.insert(0, "kmemscope probe exited %d" % rcs.get("probe", (-1,))[0])
        # the plan in the test output: how each family attached on this kernel
        plan = ["%s=%s" % (f.get("family"), f.get("method") if f.get("traced") else "NOT-TRACED")
                for f in (doc or {}).get("families") or []]
        ctx = (doc or {}).get("context_capture") or {}
        plan.append("context=%s" % (ctx.get("preempt_count") or "unknown"))
        results.append(("probe", errs, plan))
        if doc is not None:
            results.append(("probe.recorded", probe_recorded(doc, args.kernel, rt, outdir), []))

    fdir = os.path.join(outdir, "files")
    deferred_run = {"": set(), ".replay": set()}
    known = KNOWN_DEFECTS.get(args.kernel, {})
    for name, cmd in scenarios(os.path.join(here, "scenarios.txt")):
        if rt and name in NOT_ON_RT:
            results.append((name, ["not run on PREEMPT_RT"], [], NOT_ON_RT[name]))
            continue
        first = len(results)
        errs, notes, extra_rows = [], [], []
        tool = "leaks" if name.endswith("_leaks") else "stat"
        lines = [L for L in ledger.get(name, []) if L.get("family") != "-"]
        if name not in rcs:
            errs.append("the guest never ran it")
        elif not ledger.get(name):
            errs.append("no ledger line: the module did not run it")
        for L in ledger.get(name, []):
            if L.get("ret", "0") != "0" or L.get("fails", "0") != "0":
                errs.append("module: %s %s ret=%s fails=%s" % (L.get("family"), L.get("function"),
                                                              L.get("ret"), L.get("fails")))
        doc = None
        if not have_kms:
            errs.append("kmemscope-static missing: nothing to compare the ledger with")
        elif name in rcs:
            if rcs[name][0] in (124, 143):
                errs.append("kmemscope %s timed out in the guest (KMS_STEP_TIMEOUT)" % tool)
            elif rcs[name][0] != 0:
                errs.append("kmemscope %s exited %d (%s.err: %s)" %
                            (tool, rcs[name][0], name,
                             files.get(name + ".err", "").strip().splitlines()[-1:] or "-"))
            doc, err = load_json(files, name + ".json")
            if err:
                errs.append(err)
            else:
                notes, extra_rows = check_report(name, tool, doc, lines, errs, deferred_run[""],
                                                 rt)
                errs.extend(check_twice(doc, lines, spec["twice"]))
        results.append((name, errs, notes))
        results.extend(extra_rows)
        if kms and have_kms and name in rcs:
            results.extend(check_replay(kms, fdir, name, tool, doc, lines,
                                        deferred_run[".replay"], rt))
            if tool == "stat":
                results.append(check_pprof(kms, fdir, name, lines))
            if name in RT_VERDICT_SCENARIOS:
                results.append(check_old_meta(kms, fdir, name, doc, rt))
        mark_known(results, first, known)
    if have_kms:
        results.append(check_ordinary(files, rcs))
    if kms and have_kms:
        results.extend(gate_rows(kms, fdir, rcs))
    # a deferred-free check that never ran is a failure, not a silent pass
    for suffix in [""] + ([".replay"] if kms and have_kms else []):
        missing = [n + suffix for n in DEFERRED_SCENARIOS if n not in deferred_run[suffix]]
        results.append(("deferred%s.coverage" % suffix,
                        ["deferred checks not run: %s" % ", ".join(missing)] if missing else [],
                        ["%d of %d" % (len(deferred_run[suffix]), len(DEFERRED_SCENARIOS))]))
    report(results, rcs)


@guarded(lambda m, name, *a: [(name + ".misuse", [m], [])])
def misuse_rows(name, misuse, lines, errs, rt):
    """Misuse findings at the module's sites: unexpected ones fail the scenario's own row;
    expected ones get a NAME.misuse row, an XFAIL row where kmemscope is blind by design."""
    stale = [L["function"] for L in lines if L.get("gfp", "-") != "-" and "blocking" not in L]
    if stale:
        errs.append("ledger lines without blocking= at %s: rebuild the module" % ", ".join(stale))
    exp = misuse_expectations(lines, rt)
    merr, xfails, extra = check_misuse(misuse, exp)
    errs.extend(extra)
    rows = []
    real = [e for e in exp if not e["xfail"]]
    if real:
        rows.append((name + ".misuse", merr,
                     ["%s %s%s" % (e["kind"] or "no finding,", e["context"],
                                   " x%d" % e["count"] if e["count"] is not None else "")
                      for e in real], None))
    for e, flagged in xfails:
        rows.append((name + ".misuse", [] if flagged else
                     ["no %s at %s: %s" % (e["kind"], e["function"], e["xfail"])],
                     ["%s flagged at %s" % (e["kind"], e["function"])], e["xfail"]))
    return rows


def report(results, rcs):
    """PASS/FAIL rows count; XFAIL rows (a known blind spot, not flagged) are printed but
    count neither way; an XPASS (flagged after all) counts as a pass."""
    width = max(len(r[0]) for r in results)
    passed = failed = xfailed = 0
    for row in results:
        name, errs, notes = row[:3]
        xfail = row[3] if len(row) > 3 else None
        if xfail:
            if errs:
                xfailed += 1
                print("%-*s  XFAIL %s" % (width, name, errs[0]))
            else:
                passed += 1
                print("%-*s  XPASS %s (expected to be missed: %s)" %
                      (width, name, " ".join(notes), xfail))
            continue
        if errs:
            failed += 1
            print("%-*s  FAIL  %s" % (width, name, errs[0]))
            for e in errs[1:]:
                print("%-*s        %s" % (width, "", e))
        else:
            passed += 1
            secs = rcs.get(name, (0, ""))[1]
            print("%-*s  PASS  %s" % (width, name, " ".join([x for x in [secs] + notes if x])))
    if xfailed:
        print("qemu: %d expected failure(s) (XFAIL, not counted)" % xfailed)
    print("qemu: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        # a crash counts as a failure: the tier line must never go missing
        print("qemu: check.py raised %s: %s" % (type(e).__name__, e))
        print("qemu: 0 passed, 1 failed")
        sys.exit(1)
