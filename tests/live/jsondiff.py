#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Where two kmemscope JSON reports differ: the live report of a run and the report
of its trace file (-i) must be identical apart from the members that describe the
source (SOURCE_PATHS).

Usage: jsondiff.py LIVE.json REPLAY.json
Prints one line per differing path (/a/0/b: live value != replay value, or a
member or element only one side has) and exits 1 when there is any, 2 when a file
cannot be read.
"""
import json
import sys

# "source": "live" or "file"; nothing else in a report says where its records came from
SOURCE_PATHS = ("/source",)


def report_diff(a, b, ignore=SOURCE_PATHS, path=""):
    """The differing paths of a and b, as printable lines, outside the paths in ignore."""
    if path in ignore:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            p = "%s/%s" % (path, k)
            if k not in b or k not in a:
                if p not in ignore:
                    out.append("%s: only in the %s report" % (p, "live" if k in a else "replay"))
                continue
            out.extend(report_diff(a[k], b[k], ignore, p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(report_diff(x, y, ignore, "%s/%d" % (path, i)))
        if len(a) != len(b):
            out.append("%s: %d elements live, %d replayed" % (path or "/", len(a), len(b)))
        return out
    # 1 and 1.0, True and 1 are not the same member value
    if type(a) is not type(b) or a != b:
        return ["%s: %s != %s" % (path or "/", json.dumps(a)[:120], json.dumps(b)[:120])]
    return []


def main():
    if len(sys.argv) != 3:
        print("usage: jsondiff.py LIVE.json REPLAY.json", file=sys.stderr)
        sys.exit(2)
    docs = []
    for name in sys.argv[1:]:
        try:
            with open(name) as f:
                docs.append(json.load(f))
        except (OSError, ValueError) as e:
            print("jsondiff: %s: %s" % (name, e), file=sys.stderr)
            sys.exit(2)
    diffs = report_diff(*docs)
    for d in diffs:
        print(d)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
