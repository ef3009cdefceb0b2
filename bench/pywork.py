# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The realistic workload of bench/user.py: Debian's python3 building, encoding
and decoding a JSON document of 20000 records (the same bytes every run, so the
same C library calls: lists, dicts and strings past pymalloc's 512-byte limit
go to malloc, realloc and free).

    python3 bench/pywork.py [RECORDS]

Prints the line bench/mloop prints, "iters=N calls=0 ns=N cpu_ns=N" (the
number of calls is what kmemscope counts; this script cannot know it), with
the process's own CPU time around the work, then waits MLOOP_LINGER_MS as
mloop does.
"""
import json
import os
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
t0, c0 = time.monotonic_ns(), time.process_time_ns()
doc = [{"id": i, "name": "item%d" % i, "tags": ["t%d" % (i % 7)] * (i % 40),
        "text": "x" * (i % 2000)} for i in range(n)]
text = json.dumps(doc)
assert json.loads(text) == doc
c1, t1 = time.process_time_ns(), time.monotonic_ns()
print("iters=%d calls=0 ns=%d cpu_ns=%d" % (n, t1 - t0, c1 - c0), flush=True)
time.sleep(int(os.environ.get("MLOOP_LINGER_MS", "0")) / 1000)
