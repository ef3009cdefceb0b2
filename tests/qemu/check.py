#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Check kmemscope's QEMU reports against the kmemscope_test module's ledger.

Usage: check.py SERIAL_LOG RESULT_DIR

The serial log carries the guest's status lines (KMS-RC NAME RC), the module's
ledger and every output file between ===KMS-FILE NAME=== / ===KMS-END NAME===.
Expected numbers come only from the ledger, which the module writes from what
it did at run time.
"""
import base64
import gzip
import json
import os
import re
import sys

MODULE = "kmemscope_test"
FAMILIES = ["kmalloc", "kmem_cache", "page", "vmalloc", "dma", "percpu"]
# 6.1 has no vmalloc:/dma: tracepoints: these must come from function probes
FUNC_METHODS = {"fentry", "fexit", "kprobe", "kretprobe"}


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
    for name in [n for n in files if n.endswith(".gz.b64")]:
        try:
            body = gzip.decompress(base64.b64decode(files.pop(name)))
            files[name[:-len(".gz.b64")]] = body.decode("utf-8", "replace")
        except (ValueError, OSError) as e:
            print("qemu: cannot decode %s: %s" % (name, e))
    fdir = os.path.join(outdir, "files")
    os.makedirs(fdir, exist_ok=True)
    for name, body in files.items():
        with open(os.path.join(fdir, os.path.basename(name)), "w") as f:
            f.write(body)
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


def check_probe(doc):
    errs = []
    if doc.get("schema") != "kmemscope.probe":
        return ["probe: schema is %r, not kmemscope.probe" % doc.get("schema")]
    fams = {f.get("family"): f for f in doc.get("families", [])}
    for fam in FAMILIES:
        if not fams.get(fam, {}).get("traced"):
            errs.append("probe: family %s not traced" % fam)
    for fam in ("vmalloc", "dma"):
        sel = [e for e in doc.get("events", []) if e.get("family") == fam and e.get("traced")]
        if not sel:
            errs.append("probe: no traced event for %s" % fam)
        for e in sel:
            if e.get("method") not in FUNC_METHODS:
                errs.append("probe: %s event %s uses %s, expected fentry or kprobe" %
                            (fam, e.get("event"), e.get("method")))
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


def check_line(doc, L):
    """Compare one ledger line with the matching site rows of one stat report."""
    errs = []
    fam, fn = L["family"], L["function"]
    sites = doc.get("sites") or []
    # the allocator's own nested allocations (a large vmalloc's page array) have
    # rows of their own: the ledger counts what the module asked for
    rows = [s for s in sites if s.get("family") == fam and s.get("module") == MODULE
            and s.get("function") == fn and not s.get("nested")]
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


EV_RE = re.compile(r":\s+(kmalloc|kfree|kmem_cache_alloc|kmem_cache_free|mm_page_alloc|mm_page_free|"
                   r"mm_page_free_batched|percpu_alloc_percpu|percpu_free_percpu): (.*)$")


def ftrace_totals(text):
    """Per (family, function) totals from a raw ftrace dump, frees matched by pointer/pfn."""
    tot, owner, pending = {}, {}, None

    def bump(key, field, n=1):
        tot.setdefault(key, {"allocs": 0, "frees": 0, "bytes_req": 0, "bytes_alloc": 0,
                             "gfp": set(), "orders": {}})[field] += n

    for line in text.splitlines():
        m = re.match(r"^\s*=> (\S+)", line)
        if m:
            fn = m.group(1).split("+")[0]
            # page events carry no call site: the first module frame on the stack
            if pending and fn.startswith("kms_"):
                pfn, order, gfp = pending
                key = ("page", fn)
                bump(key, "allocs")
                bump(key, "bytes_req", 4096 << order)
                bump(key, "bytes_alloc", 4096 << order)
                tot[key]["gfp"].add(gfp)
                tot[key]["orders"][order] = tot[key]["orders"].get(order, 0) + 1
                owner[("pfn", pfn)] = key
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
            if not site.startswith("kms_") or int(f.get("ptr", "0"), 16) == 0:
                continue
            key = (fam, site)
            bump(key, "allocs")
            bump(key, "bytes_req", int(f.get("bytes_req", f.get("size", "0"))))
            bump(key, "bytes_alloc", int(f["bytes_alloc"]))
            tot[key]["gfp"].add(f.get("gfp_flags", ""))
            owner[(fam, f["ptr"])] = key
        elif ev in ("kfree", "kmem_cache_free", "percpu_free_percpu"):
            fam = {"kfree": "kmalloc", "kmem_cache_free": "kmem_cache"}.get(ev, "percpu")
            key = owner.pop((fam, f.get("ptr")), None)
            if key:
                bump(key, "frees")
        elif ev == "mm_page_alloc":
            pending = (f.get("pfn"), int(f.get("order", "0")), f.get("gfp_flags", ""))
        elif ev in ("mm_page_free", "mm_page_free_batched"):
            key = owner.pop(("pfn", f.get("pfn")), None)
            if key:
                bump(key, "frees")
    return tot


def selftest_scenario(text, lines):
    """The ledger against the kernel's own events; vmalloc/dma have none on 6.1."""
    errs, notes = [], []
    tot = ftrace_totals(text)
    for L in lines:
        fam, fn = L["family"], L["function"]
        if fam in ("vmalloc", "dma"):
            notes.append("%s unverified (no event)" % fam)
            continue
        t = tot.get((fam, fn))
        if not t:
            errs.append("ftrace: no %s events from %s" % (fam, fn))
            continue
        for key in ("allocs", "frees", "bytes_req", "bytes_alloc"):
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


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check.py SERIAL_LOG RESULT_DIR")
    serial, outdir = sys.argv[1], sys.argv[2]
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
    results = []

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
        errs = [err] if err else check_probe(doc)
        if rcs.get("probe", (1,))[0] != 0:
            errs.insert(0, "kmemscope probe exited %d" % rcs.get("probe", (-1,))[0])
        results.append(("probe", errs, []))

    for name, cmd in scenarios(os.path.join(here, "scenarios.txt")):
        errs = []
        lines = [L for L in ledger.get(name, []) if L.get("family") != "-"]
        if name not in rcs:
            errs.append("the guest never ran it")
        elif not ledger.get(name):
            errs.append("no ledger line: the module did not run it")
        for L in ledger.get(name, []):
            if L.get("ret", "0") != "0" or L.get("fails", "0") != "0":
                errs.append("module: %s %s ret=%s fails=%s" % (L.get("family"), L.get("function"),
                                                              L.get("ret"), L.get("fails")))
        if not have_kms:
            errs.append("kmemscope-static missing: nothing to compare the ledger with")
        elif name in rcs:
            if rcs[name][0] in (124, 143):
                errs.append("kmemscope stat timed out in the guest (KMS_STEP_TIMEOUT)")
            elif rcs[name][0] != 0:
                errs.append("kmemscope stat exited %d (%s.err: %s)" %
                            (rcs[name][0], name,
                             files.get(name + ".err", "").strip().splitlines()[-1:] or "-"))
            doc, err = load_json(files, name + ".json")
            if err:
                errs.append(err)
            else:
                q = doc.get("quality") or {}
                if q.get("lost", 0) != 0:
                    errs.append("quality.lost=%s" % q.get("lost"))
                traced = {f.get("family"): f.get("traced") for f in doc.get("families") or []}
                for L in lines:
                    if not traced.get(L["family"]):
                        errs.append("family %s not traced" % L["family"])
                    errs.extend(check_line(doc, L))
        results.append((name, errs, []))
    report(results, rcs)


def report(results, rcs):
    width = max(len(r[0]) for r in results)
    passed = failed = 0
    for name, errs, notes in results:
        if errs:
            failed += 1
            print("%-*s  FAIL  %s" % (width, name, errs[0]))
            for e in errs[1:]:
                print("%-*s        %s" % (width, "", e))
        else:
            passed += 1
            secs = rcs.get(name, (0, ""))[1]
            print("%-*s  PASS  %s" % (width, name, " ".join([secs] + notes)))
    print("qemu: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
