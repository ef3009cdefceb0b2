#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""File-based tests of kmemscope diff, baseline and check (docs/ci.md).

The runs are JSON reports written here in the documented schemas
(docs/json-schema.md), so every case is deterministic: within budget, over
budget per metric, under the floor, new and vanished sites, new leak, misuse
and bad free, noise within tolerance, fingerprint mismatch, bad baselines and
rules files, and each output format. Traces are covered by tests/live/gate.sh.

    tests/gate/run.py BUILD_DIR        (make gate)
Last line: "gate: N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, finish  # noqa: E402

KMS = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "kmemscope")
WORK = tempfile.mkdtemp(prefix="kmemscope-gate.")


def site(sym, allocs, nbytes, out=0, out_bytes=0, module=None, orders=None, gfp=None):
    return {"addr": "0xffffffff81000000", "symbol": sym, "function": sym.split("+")[0],
            "module": module, "family": "kmalloc", "cache": None, "device": None,
            "nested": False, "allocs": allocs, "frees": allocs - out, "bytes_req": nbytes,
            "bytes_alloc": nbytes, "outstanding": out, "outstanding_bytes": out_bytes,
            "gfp": [{"flags": gfp or "GFP_KERNEL", "value": "0xcc0", "allocs": allocs}],
            "gfp_other": 0,
            "orders": [{"order": o, "allocs": n} for o, n in (orders or {}).items()]}


def finding(kind, sym, severity="error"):
    return {"kind": kind, "severity": severity, "count": 1, "family": "kmalloc",
            "gfp": "GFP_KERNEL", "site": {"symbol": sym, "function": sym, "module": None},
            "stack": [sym]}


def stat(sites, misuse=()):
    return {"schema": "kmemscope.stat", "version": 1, "kernel": "6.1.0-test",
            "source": "file", "duration_ns": 1000000000, "sites": sites,
            "families": [{"family": "kmalloc", "traced": True,
                          "allocs": sum(s["allocs"] for s in sites),
                          "bytes_alloc": sum(s["bytes_alloc"] for s in sites),
                          "outstanding": 0, "outstanding_bytes": 0}],
            "caches": [], "gfp": [], "orders": [],
            "misuse": {"findings": list(misuse)}}


def leaks(rows, bad=()):
    return {"schema": "kmemscope.leaks", "version": 2, "kernel": "6.1.0-test",
            "leaks": [{"site": {"symbol": s, "function": s, "module": None},
                       "stack": [s, "caller+0x10"], "count": 3, "bytes": 300,
                       "confidence": conf} for s, conf in rows],
            "retained": [],
            "bad_frees": {"findings": [{"kind": k, "count": 1, "suspected": False,
                                        "free_site": {"symbol": s, "module": None}}
                                       for k, s in bad]},
            "misuse": {"findings": []}}


def misuse(findings):
    return {"schema": "kmemscope.misuse", "version": 1, "kernel": "6.1.0-test",
            "misuse": {"findings": list(findings)}}


def write(name, doc):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        if isinstance(doc, str):
            f.write(doc)
        else:
            json.dump(doc, f)
    return path


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("GITHUB_ACTIONS", None)
    e.update(env or {})
    p = subprocess.run([KMS, *args], capture_output=True, text=True, env=e)
    return p.returncode, p.stdout, p.stderr


def expect(name, args, rc, out_has=(), out_lacks=(), one_line_err=False, env=None):
    got, out, err = run(*args, env=env)
    problems = []
    if got != rc:
        problems.append(f"exit {got}, want {rc}")
    for s in out_has:
        if s not in out:
            problems.append(f"output lacks {s!r}")
    for s in out_lacks:
        if s in out:
            problems.append(f"output has {s!r}")
    if one_line_err and len(err.strip().splitlines()) != 1:
        problems.append(f"stderr is not one line: {err!r}")
    check(name, not problems, "; ".join(problems) + f"\n--- stdout\n{out}--- stderr\n{err}")
    return out, err


def main():
    base = write("base.json", stat([site("alloc_pipe_info+0xd7", 1000, 100000),
                                    site("do_thing+0x10", 10, 1000),
                                    site("mod_alloc+0x4", 50, 50000, module="mymod")]))

    # within budget: +5 % bytes and allocs
    cur = write("within.json", stat([site("alloc_pipe_info+0xd7", 1050, 105000),
                                     site("do_thing+0x10", 10, 1000),
                                     site("mod_alloc+0x4", 50, 50000, module="mymod")]))
    expect("within budget passes", ["check", "-b", base, cur], 0, ["PASS"])

    # over budget, per metric: bytes, allocs, outstanding
    cur = write("bytes.json", stat([site("alloc_pipe_info+0xd7", 1000, 150000),
                                    site("do_thing+0x10", 10, 1000),
                                    site("mod_alloc+0x4", 50, 50000, module="mymod")]))
    expect("bytes over budget fails naming the site and rule", ["check", "-b", base, cur], 1,
           ["FAIL", "site alloc_pipe_info: bytes 100000 -> 150000 (+50000, +50.0%) broke "
            "bytes=10% (--max-increase)"], ["allocs=10%"])
    cur = write("allocs.json", stat([site("alloc_pipe_info+0xd7", 1000, 100000),
                                     site("do_thing+0x10", 10, 1000),
                                     site("mod_alloc+0x4", 80, 56000, module="mymod")]))
    expect("allocs over budget fails naming the module's site",
           ["check", "-b", base, cur, "--max-increase", "allocs=5%"], 1,
           ["site mod_alloc [mymod]: allocs 50 -> 80", "broke allocs=5%"])
    cur = write("outstanding.json", stat([site("alloc_pipe_info+0xd7", 1000, 100000, 40, 8192),
                                          site("do_thing+0x10", 10, 1000),
                                          site("mod_alloc+0x4", 50, 50000, module="mymod")]))
    expect("outstanding over budget fails",
           ["check", "-b", base, cur, "--max-increase", "outstanding=+10"], 1,
           ["site alloc_pipe_info: outstanding 0 -> 40", "broke outstanding=+10"])

    # under the absolute floor: +100 % of 1000 bytes
    cur = write("floor.json", stat([site("alloc_pipe_info+0xd7", 1000, 100000),
                                    site("do_thing+0x10", 20, 2000),
                                    site("mod_alloc+0x4", 50, 50000, module="mymod")]))
    expect("under --min-delta passes", ["check", "-b", base, cur], 0)
    expect("over a lower --min-delta fails", ["check", "-b", base, cur, "--min-delta", "512"],
           1, ["site do_thing: allocs 10 -> 20"])

    # an offset that moved inside the function is the same site
    cur = write("moved.json", stat([site("alloc_pipe_info+0xe3", 1000, 100000),
                                    site("do_thing+0x10", 10, 1000),
                                    site("mod_alloc+0x4", 50, 50000, module="mymod")]))
    expect("a moved offset is the same site", ["check", "-b", base, cur, "--fail-on",
                                               "new-site"], 0)
    expect("--exact-offsets tells moved offsets apart",
           ["check", "-b", base, cur, "--fail-on", "new-site", "--exact-offsets"], 1,
           ["site alloc_pipe_info+0xe3: bytes 0 -> 100000 (+100000) broke new-site"])

    # new and vanished sites
    cur = write("newsite.json", stat([site("alloc_pipe_info+0xd7", 1000, 100000),
                                      site("do_thing+0x10", 10, 1000),
                                      site("fresh_alloc+0x8", 100, 80000)]))
    expect("new site fails with --fail-on new-site",
           ["check", "-b", base, cur, "--fail-on", "new-site"], 1,
           ["site fresh_alloc: bytes 0 -> 80000 (+80000) broke new-site (--fail-on)"],
           ["mod_alloc"])
    expect("new site passes without new-site in --fail-on", ["check", "-b", base, cur], 0)
    expect("diff names new and vanished sites", ["diff", base, cur], 0,
           ["new      fresh_alloc", "vanished mod_alloc [mymod]"])

    # page order new at a site
    b2 = write("order-base.json", stat([site("get_pages+0x1", 10, 40960, orders={0: 10})]))
    c2 = write("order-cur.json", stat([site("get_pages+0x1", 10, 40960 + 28672,
                                             orders={0: 9, 3: 1})]))
    expect("new page order fails with --fail-on new-order",
           ["check", "-b", b2, c2, "--fail-on", "new-order", "--max-increase", "bytes=100%"],
           1, ["site get_pages: page order 3 allocs 0 -> 1 (+1) broke new-order"])

    # verdicts
    lb = write("leaks-base.json", leaks([("old_leak", "certain")]))
    lc = write("leaks-cur.json", leaks([("old_leak", "certain"), ("new_leak", "certain")]))
    expect("new certain leak fails", ["check", "-b", lb, lc], 1,
           ["leak new_leak: in 0 base run(s) -> 1 current run(s) broke leak (--fail-on)"],
           ["old_leak"])
    lu = write("leaks-unconf.json", leaks([("old_leak", "certain"), ("new_leak", "unconfirmed")]))
    expect("new unconfirmed leak warns, passes", ["check", "-b", lb, lu], 0,
           ["warning: leak new_leak"])
    expect("a leak in 1 of 2 runs passes", ["check", "-b", lb, lc, lb], 0)
    ld = write("leaks-df.json", leaks([("old_leak", "certain")], bad=[("double_free", "f2")]))
    expect("new bad free fails", ["check", "-b", lb, ld], 1,
           ["bad_free double_free at f2: in 0 base run(s) -> 1 current run(s) broke bad-free"])
    mb = write("misuse-base.json", misuse([finding("atomic_gfp_in_process", "g", "info")]))
    mc = write("misuse-cur.json", misuse([finding("atomic_gfp_in_process", "g", "info"),
                                          finding("blocking_gfp_in_atomic", "spin_fn")]))
    expect("new misuse fails", ["check", "-b", mb, mc], 1,
           ["misuse blocking_gfp_in_atomic at spin_fn: in 0 base run(s) -> 1 current run(s) "
            "broke misuse"])
    expect("--fail-on none passes the misuse", ["check", "-b", mb, mc, "--fail-on", "none"], 0)

    # noise: 5 runs a side, medians +11 % but overlapping; then a clear shift
    noise_b = [1000, 1300, 900, 1200, 1100]
    noise_c = [1250, 950, 1350, 1150, 1220]
    shift_c = [1500, 1520, 1480, 1510, 1490]
    bs = [write(f"nb{i}.json", stat([site("noisy+0x1", v, v * 100)])) for i, v in
          enumerate(noise_b)]
    cs = [write(f"nc{i}.json", stat([site("noisy+0x1", v, v * 100)])) for i, v in
          enumerate(noise_c)]
    ss = [write(f"ns{i}.json", stat([site("noisy+0x1", v, v * 100)])) for i, v in
          enumerate(shift_c)]
    bl = os.path.join(WORK, "noise-baseline.json")
    expect("baseline of 5 runs", ["baseline", "-o", bl, *bs], 0)
    with open(bl) as f:
        doc = json.load(f)
    check("baseline file: schema, version, 5 runs, fingerprint",
          doc.get("schema") == "kmemscope.baseline" and doc.get("version") == 1 and
          len(doc.get("runs", [])) == 5 and
          doc["fingerprint"].get("format") == "report kmemscope.stat/1", str(doc)[:300])
    expect("noise within tolerance passes (U test)", ["check", "-b", bl, *cs], 0,
           ["PASS", "mann-whitney"])
    out, _ = expect("a clear shift fails (U test)", ["check", "-b", bl, *ss, "--json"], 1)
    try:
        res = json.loads(out)
        bad = [r for r in res["results"] if r["verdict"] == "fail"]
        check("JSON result names key, rule and p-value",
              res["test"] == "mann-whitney" and res["exit"] == 1 and
              {(r["key"], r["rule"]) for r in bad} == {("noisy", "bytes=10%"),
                                                       ("noisy", "allocs=10%")} and
              all(r["p"] < 0.05 for r in bad), out[:500])
    except (ValueError, KeyError) as e:
        check("JSON result names key, rule and p-value", False, repr(e))

    # fingerprints
    fp = dict(doc)
    fp["runs"] = [dict(r, fingerprint=dict(r["fingerprint"], format="trace/1"))
                  for r in doc["runs"]]
    fpb = write("fp-baseline.json", fp)
    expect("fingerprint mismatch gives 3", ["check", "-b", fpb, *cs], 3, [],
           one_line_err=True)
    expect("--ignore-fingerprint compares anyway",
           ["check", "-b", fpb, *cs, "--ignore-fingerprint"], 0)
    expect("runs of different kinds are not comparable", ["baseline", bs[0], lb], 3,
           one_line_err=True)

    # bad baselines, rules, usage: 2 and one line
    expect("missing baseline gives 2", ["check", "-b", os.path.join(WORK, "nope.json"),
                                        cs[0]], 2, one_line_err=True)
    expect("garbage baseline gives 2", ["check", "-b", write("garbage.json", "{not json"),
                                        cs[0]], 2, one_line_err=True)
    expect("baseline of a future version gives 2",
           ["check", "-b", write("v9.json", dict(doc, version=9)), cs[0]], 2,
           one_line_err=True)
    expect("baseline without runs gives 2",
           ["check", "-b", write("empty.json", dict(doc, runs=[])), cs[0]], 2,
           one_line_err=True)
    expect("a JSON file of another schema gives 2",
           ["check", "-b", write("other.json", {"schema": "kmemscope.probe"}), cs[0]], 2,
           one_line_err=True)
    _, err = expect("bad rules file gives 2 naming the line",
                    ["check", "-b", bl, cs[0], "--rules",
                     write("bad.rules", "# budgets\nsite noisy bytes=10%\ncahce x bytes=1%\n")],
                    2, one_line_err=True)
    check("the rules error names line 3", "line 3: unknown key kind 'cahce'" in err, err)
    expect("unknown metric gives 2", ["check", "-b", bl, cs[0], "--max-increase", "size=1%"],
           2, one_line_err=True)
    expect("check without --baseline gives 2", ["check", cs[0]], 2, one_line_err=True)
    expect("RUN files and -- CMD together give 2", ["check", "-b", bl, cs[0], "--", "true"], 2,
           one_line_err=True)
    expect("--key stack on stat reports gives 2", ["check", "-b", bl, cs[0], "--key", "stack"],
           2, one_line_err=True)
    expect("default site keys on leaks reports: verdicts only, said",
           ["check", "-b", lb, lb], 0, ["not compared: site keys"])
    expect("--runs without -- CMD gives 2", ["check", "-b", bl, "--runs", "3", cs[0]], 2,
           one_line_err=True)

    # rules file budgets
    rules = write("good.rules", "# budgets\nsite noisy bytes=60% allocs=60%\n")
    expect("a rules file loosens one site", ["check", "-b", bl, *ss, "--rules", rules], 0)
    rules = write("cap.rules", "site noisy bytes=140K\n")
    expect("a rules file ceiling fails naming its line",
           ["check", "-b", bl, *ss, "--rules", rules, "--max-increase", "allocs=100%"], 1,
           ["broke bytes=143360 (rules line 1"])
    rules = write("cache.rules", "site noisy bytes=60% allocs=60%\ncache kmalloc-64 bytes=1%\n")
    _, err = expect("a budget for keys not compared passes, with a warning",
                    ["check", "-b", bl, *ss, "--rules", rules], 0)
    check("the warning names the line and the --key to add",
          "line 2: cache keys are not compared (add --key cache)" in err, err)

    # outputs: JUnit, KTAP, GitHub Actions
    cur = os.path.join(WORK, "bytes.json")
    junit = os.path.join(WORK, "junit.xml")
    expect("--junit", ["check", "-b", base, cur, "--junit", junit], 1)
    try:
        root = ET.parse(junit).getroot()
        cases = root.findall(".//testcase")
        failed_cases = [c.get("name") for c in cases if c.find("failure") is not None]
        check("JUnit: one test case per key and rule, the failure named",
              len(cases) >= 6 and failed_cases == ["alloc_pipe_info bytes=10%"],
              str(failed_cases))
    except (ET.ParseError, OSError) as e:
        check("JUnit: one test case per key and rule, the failure named", False, repr(e))
    out, _ = expect("--ktap", ["check", "-b", base, cur, "--ktap"], 1,
                    ["KTAP version 1\n1..", "not ok ", "# kmemscope check: FAIL"])
    lines = out.splitlines()
    plan = int(lines[1][3:]) if len(lines) > 1 and lines[1].startswith("1..") else -1
    results = [l for l in lines if l.startswith(("ok ", "not ok "))]
    check("KTAP: as many results as planned, numbered in order",
          plan == len(results) and all(r.split()[1 if r.startswith("ok") else 2] == str(i + 1)
                                       for i, r in enumerate(results)), out[:400])
    summary = os.path.join(WORK, "summary.md")
    expect("GitHub Actions: ::error annotations",
           ["check", "-b", base, cur], 1, ["::error title=kmemscope check::site alloc_pipe_info"],
           env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": summary})
    md = open(summary).read() if os.path.exists(summary) else ""
    check("GitHub Actions: step summary in Markdown",
          md.startswith("### kmemscope check: FAIL") and "**regression**" in md, md)

    # diff --json: every key, before/after, absolute and relative change, verdicts
    out, _ = expect("diff --json", ["diff", "--json", base, os.path.join(WORK, "newsite.json")],
                    0)
    try:
        d = json.loads(out)
        rows = {r["key"]: r for r in d["rows"]}
        check("diff --json: complete rows",
              d["schema"] == "kmemscope.diff" and set(rows) ==
              {"alloc_pipe_info", "do_thing", "mod_alloc [mymod]", "fresh_alloc"} and
              rows["fresh_alloc"]["status"] == "new" and
              rows["mod_alloc [mymod]"]["status"] == "vanished" and
              rows["mod_alloc [mymod]"]["metrics"]["bytes"]["delta"] == -50000 and
              rows["mod_alloc [mymod]"]["metrics"]["bytes"]["relative"] == -1.0, out[:600])
    except (ValueError, KeyError) as e:
        check("diff --json: complete rows", False, repr(e))
    out, _ = expect("diff of verdicts", ["diff", lb, lc], 0,
                    ["leak new: new_leak (in 0 of the base runs, 1 of the current"])
    expect("diff --key cache of leaks reports says why nothing is compared",
           ["diff", "--key", "cache", lb, lc], 0, ["not compared: both sides need stat"])

    return finish("gate")


if __name__ == "__main__":
    sys.exit(main())
