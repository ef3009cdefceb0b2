# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""PASS and FAIL lines, and the tier's last line that tests/run-all.sh counts,
for the test tiers written in Python (tests/gate, tests/packaging)."""

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def finish(tier):
    """Print 'TIER: N passed, M failed'; the exit status, 1 when a check failed."""
    print(f"{tier}: {passed} passed, {failed} failed")
    return 1 if failed else 0
