#!/usr/bin/env python3
"""test-summary.py BUILDDIR|TAPFILE...: count test cases (not suites) from meson's test
logs, and from TAP files written by check.sh itself (the netlab namespace check).

A TAP test contributes each of its `ok`/`not ok` lines; a test that crashed or timed
out after its last TAP line adds one failure; a non-TAP test counts as one case.
The last line printed is "N passed, N failed" (with ", N skipped" when any were)."""
import json
import os
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
PLAN = re.compile(r"^1\.\.\d+", re.MULTILINE)


def count_tap(stdout):
    passed = failed = skipped = 0
    for line in stdout.splitlines():
        m = TAP.match(line.strip())
        if not m:
            continue
        if "# SKIP" in m.group(2).upper():
            skipped += 1
        elif m.group(1) == "ok":
            passed += 1
        else:
            failed += 1
    return passed, failed, skipped


def count_build(builddir):
    totals = [0, 0, 0]
    try:
        log = open(f"{builddir}/meson-logs/testlog.json")
    except OSError:
        return totals
    for line in log:
        test = json.loads(line)
        ok = test["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
        if PLAN.search(test.get("stdout") or ""):  # a TAP plan: count its cases
            p, f, s = count_tap(test.get("stdout") or "")
            if not ok and f == 0:
                f += 1  # died between TAP lines (crash, sanitizer abort, time-out)
        else:
            p, f, s = (1, 0, 0) if ok else (0, 1, 0)
            if test["result"] == "SKIP":
                p, s = 0, 1
        totals = [totals[0] + p, totals[1] + f, totals[2] + s]
    return totals


def main():
    grand = [0, 0, 0]
    for builddir in sys.argv[1:]:
        if builddir.endswith(".tap"):  # missing: the check itself did not run
            p, f, s = count_tap(open(builddir).read()) if os.path.isfile(builddir) else (0, 1, 0)
        else:
            p, f, s = count_build(builddir)
        print(f"{builddir}: {p} passed, {f} failed, {s} skipped")
        grand = [grand[0] + p, grand[1] + f, grand[2] + s]
    skipped = f", {grand[2]} skipped" if grand[2] else ""
    print(f"{grand[0]} passed, {grand[1]} failed{skipped}")
    return 1 if grand[1] or grand[0] == 0 else 0


sys.exit(main())
