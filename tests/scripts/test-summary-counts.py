#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-summary-counts.py: scripts/test-summary.py counts what really happened. Each case
feeds it a made-up meson test log (a binary that died half-way, a skipped plan, a missing
log, a suite that must run and did not, the same case in two builds, a failed header
check) and checks the closing line and the exit status. TAP output."""
import json
import os
import subprocess
import sys
import tempfile

SUMMARY = os.path.join(os.environ.get("HARK_SOURCE_ROOT", os.path.dirname(__file__) + "/../.."),
                       "scripts", "test-summary.py")
cases = []


def case(function):
    cases.append(function)
    return function


def build(root, name, tests):
    """A build directory whose testlog.json holds tests: (name, result, stdout)."""
    path = os.path.join(root, name, "meson-logs")
    os.makedirs(path)
    with open(os.path.join(path, "testlog.json"), "w") as log:
        for test, result, stdout in tests:
            log.write(json.dumps({"name": f"hark:unit / {test}", "result": result,
                                  "stdout": stdout}) + "\n")
    return os.path.join(root, name)


def summary(*args):
    run = subprocess.run([sys.executable, SUMMARY, *args], capture_output=True, text=True)
    return run.returncode, run.stdout.strip().splitlines()


@case
def died_half_way(root):
    """a binary that dies after case 1 of 15 counts 14 failures"""
    b = build(root, "b", [("link", "ERROR", "1..15\nok 1 /link/a\n")])
    status, out = summary(b)
    return status == 1 and out[-1] == "1 passed, 14 failed" and any("never ran" in l for l in out)


@case
def skipped_plan(root):
    """a plan of 1..0 with a skip directive counts as one skipped suite, not as nothing"""
    b = build(root, "b", [("netlab", "SKIP", "1..0 # SKIP needs root\n"),
                          ("wire", "OK", "1..1\nok 1 /wire\n")])
    status, out = summary(b)
    return status == 0 and out[-1] == "1 passed, 0 failed, 1 skipped"


@case
def must_run(root):
    """a suite that must run and skipped fails the run, saying why"""
    b = build(root, "b", [("netlab", "SKIP", "1..0 # SKIP needs coturn and jq\n"),
                          ("wire", "OK", "1..1\nok 1 /wire\n")])
    status, out = summary("--must-run", "netlab", b)
    return status == 1 and any("netlab: must run" in l and "needs coturn and jq" in l for l in out) and out[-1].endswith(
        "1 failed, 1 skipped")


@case
def missing_log(root):
    """a build with no test log is a failure"""
    os.makedirs(os.path.join(root, "empty", "meson-logs"))
    status, out = summary(os.path.join(root, "empty"))
    return status == 1 and any("no test log" in l for l in out)


@case
def counted_once(root):
    """the same case in the plain and the sanitizer build counts once, failed if either"""
    a = build(root, "a", [("wire", "OK", "1..2\nok 1 /wire/a\nok 2 /wire/b\n")])
    s = build(root, "s", [("wire", "FAIL", "1..2\nok 1 /wire/a\nnot ok 2 /wire/b\n")])
    status, out = summary(a, s)
    return status == 1 and out[-1] == "1 passed, 1 failed"


@case
def header_checks(root):
    """header compile tests are build checks, not cases, and a failed one fails the run"""
    b = build(root, "b", [("header-wire", "FAIL", ""), ("wire", "OK", "1..1\nok 1 /wire\n")])
    status, out = summary(b)
    return status == 1 and out[-1] == "1 passed, 0 failed" and any(
        "build checks" in l and "1 failed" in l for l in out)


@case
def crash_after_last_case(root):
    """a failure with every planned case reported still counts one failure"""
    b = build(root, "b", [("wire", "ERROR", "1..1\nok 1 /wire\n")])
    status, out = summary(b)
    return status == 1 and out[-1] == "1 passed, 1 failed"


def main():
    print(f"1..{len(cases)}")
    failed = 0
    for number, function in enumerate(cases, 1):
        with tempfile.TemporaryDirectory() as root:
            ok = function(root)
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {number} - {function.__doc__}")
    return 1 if failed else 0


sys.exit(main())
