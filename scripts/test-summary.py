#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-summary.py [--must-run SUITE,...] BUILDDIR[@LOGBASE]|TAPFILE...: count test cases (not
suites) from meson's test logs, and from TAP files written by check.sh itself (the netlab
namespace check), so that no failure can hide behind a green count.

- A TAP test contributes each of its `ok`/`not ok` lines. Its plan (`1..N`) is compared
  with the cases seen: every planned case that never reported (the binary died half-way)
  is a failure. A test that failed with no failing line (crash, sanitizer abort,
  time-out) adds one failure. `1..0 # SKIP why` counts the whole suite as one skip.
- A non-TAP test counts as one case.
- Every test meson knows (`meson introspect --tests`) must appear in the log: one that
  did not run is a failure, and so is a missing log.
- The header compile tests (`header-*`) are build checks: reported on a line of their
  own, failing the run when one fails, never counted as test cases.
- The same case run in several builds (the unit suite in the plain and the sanitizer
  build) counts once: passed only if it passed everywhere.
- A suite named with --must-run that ran no case (skipped, or nothing) fails the run:
  on a machine that can run it, silence is not success.
The last line printed is "N passed, N failed" (with ", N skipped" when any were)."""
import json
import os
import re
import subprocess
import sys

TAP = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?\s*(?:-\s*)?(.*)$")
PLAN = re.compile(r"^1\.\.(\d+)(.*)$")
HEADER_CHECK = re.compile(r"^header-")


class Totals:
    """Case outcomes keyed by (test, case), so a case run in two builds counts once."""

    def __init__(self):
        self.cases = {}  # key -> "pass" | "fail" | "skip"
        self.reasons = []  # lines that say why the run failed
        self.ran = {}  # test name -> cases that ran (not skipped)
        self.build_checks = [0, 0]
        self.skip_why = {}  # test name -> what its `1..0 # SKIP` line said

    def add(self, key, outcome):
        old = self.cases.get(key)
        if old == "fail" or (old == "pass" and outcome == "skip"):
            return
        self.cases[key] = outcome
        if outcome != "skip":
            self.ran[key[0]] = self.ran.get(key[0], 0) + 1

    def counts(self, keys=None):
        values = [self.cases[k] for k in (keys if keys is not None else self.cases)]
        return tuple(values.count(x) for x in ("pass", "fail", "skip"))


def tap_cases(stdout):
    """(description, outcome) for each TAP line, and the plan (count, directive)."""
    cases, plan = [], None
    for raw in stdout.splitlines():
        line = raw.strip()
        m = PLAN.match(line)
        if m:
            plan = (int(m.group(1)), m.group(2))
            continue
        m = TAP.match(line)
        if not m:
            continue
        description = m.group(2)
        if "# SKIP" in description.upper():
            outcome = "skip"
        elif m.group(1) == "ok":
            outcome = "pass"
        else:
            outcome = "fail"
        description = re.sub(r"\s*#\s*(SKIP|TODO)\b.*$", "", description, flags=re.I)
        cases.append((description, outcome))
    return cases, plan


def add_tap(totals, name, stdout, ok):
    """Adds one TAP test's cases; returns the keys it added."""
    cases, plan = tap_cases(stdout)
    keys = []
    seen = {}
    for description, outcome in cases:
        n = seen.get(description, 0)
        seen[description] = n + 1
        key = (name, description if n == 0 else f"{description} #{n + 1}")
        totals.add(key, outcome)
        keys.append(key)
    if plan is not None and plan[0] == 0:
        key = (name, "(suite skipped)")
        totals.add(key, "skip" if ok else "fail")
        if plan[1]:
            totals.skip_why[name] = plan[1].strip().lstrip("#").strip()
        keys.append(key)
        if not ok:
            totals.reasons.append(f"{name}: skipped its whole plan and failed")
        return keys
    planned = plan[0] if plan is not None else None
    if planned is not None and len(cases) < planned:
        totals.reasons.append(f"{name}: planned {planned} cases, reported {len(cases)}; "
                              f"{planned - len(cases)} never ran")
        for i in range(len(cases), planned):
            key = (name, f"(planned case {i + 1} never reported)")
            totals.add(key, "fail")
            keys.append(key)
    if not ok and not any(totals.cases[k] == "fail" for k in keys):
        totals.reasons.append(f"{name}: failed (crash, abort or time-out) after its last case")
        key = (name, "(died between cases)")
        totals.add(key, "fail")
        keys.append(key)
    return keys


def meson_tests(builddir):
    """Names of the tests meson would run in this build ('suite/name' not needed)."""
    try:
        out = subprocess.run(["meson", "introspect", "--tests", builddir], check=True,
                             capture_output=True, text=True).stdout
        return {t["name"] for t in json.loads(out)}
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def count_build(totals, builddir, expected, logbase="testlog"):
    keys = []
    path = f"{builddir}/meson-logs/{logbase}.json"
    if not os.path.isfile(path):
        totals.reasons.append(f"{builddir}: no test log ({path}): the tests did not run")
        totals.add((path, "(no test log)"), "fail")
        return [(path, "(no test log)")]
    logged = set()
    for number, line in enumerate(open(path), 1):
        try:
            test = json.loads(line)
        except ValueError:
            totals.reasons.append(f"{path}: line {number} is not JSON (a log cut short?)")
            totals.add((path, f"(unreadable line {number})"), "fail")
            continue
        name = test["name"].split(" / ")[-1]  # "hark:unit / wire" is test "wire"
        logged.add(name)
        ok = test["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
        stdout = test.get("stdout") or ""
        if HEADER_CHECK.match(name):
            totals.build_checks[0 if ok else 1] += 1
            if not ok:
                totals.reasons.append(f"{builddir}: build check {name} failed")
            continue
        if any(PLAN.match(l.strip()) for l in stdout.splitlines()):
            keys += add_tap(totals, name, stdout, ok)
        else:
            key = (name, "")
            outcome = "skip" if test["result"] == "SKIP" else ("pass" if ok else "fail")
            if outcome == "fail":
                totals.reasons.append(f"{name}: {test['result']}")
            totals.add(key, outcome)
            keys.append(key)
    for name in sorted((expected or set()) - logged):
        totals.reasons.append(f"{builddir}: test {name} is in the build but did not run")
        totals.add((name, "(did not run)"), "fail")
        keys.append((name, "(did not run)"))
    return keys


def main(argv):
    must_run = []
    if len(argv) > 1 and argv[0] == "--must-run":
        must_run = [s for s in argv[1].split(",") if s]
        argv = argv[2:]
    totals = Totals()
    for source in argv:
        if source.endswith(".tap"):
            text = open(source).read() if os.path.isfile(source) else ""
            if not text:
                totals.reasons.append(f"{source}: missing: that check did not run")
                text = "not ok - " + source
            keys = add_tap(totals, os.path.basename(source), text, True)
        else:
            # BUILDDIR@LOGBASE: a second meson test run in that build, which wrote
            # <LOGBASE>.json (--logbase) instead of overwriting testlog.json.
            builddir, _, logbase = source.partition("@")
            # The sanitizer build runs chosen suites only: it must not be held to all.
            expected = meson_tests(builddir) if source == argv[0] else set()
            keys = count_build(totals, builddir, expected, logbase or "testlog")
        p, f, s = totals.counts(set(keys))
        print(f"{source}: {p} passed, {f} failed, {s} skipped")
    for name in must_run:
        if totals.ran.get(name, 0) == 0:
            why = totals.skip_why.get(name)
            said = f" (it said: {why})" if why else ""
            totals.reasons.append(f"{name}: must run on this machine but ran no case{said}")
            totals.add((name, "(must run, ran no case)"), "fail")
    ok, bad = totals.build_checks
    print(f"build checks (public headers compile alone): {ok} passed, {bad} failed")
    for reason in totals.reasons:
        print(f"FAILED: {reason}")
    for (name, case), outcome in totals.cases.items():
        if outcome == "fail" and not case.startswith("("):
            print(f"FAILED: {name}: {case}")
    p, f, s = totals.counts()
    skipped = f", {s} skipped" if s else ""
    print(f"{p} passed, {f} failed{skipped}")
    return 1 if f or bad or p == 0 else 0


sys.exit(main(sys.argv[1:]))
