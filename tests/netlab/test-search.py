#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-search.py: the directory's search in the network lab (TAP; issue 12).

In each of the paper's setups (the searching client's: public address, port-restricted NAT,
UDP blocked, web-only; tests/netlab/searchlab.py has the labs) a client that is logged in
and attached searches for a client of the other setup of its lab:
  - `search USER` is found, with the device's record naming the SN it is attached to;
  - `search` of a name nobody registered is unknown (the login server says so: in web-only
    through the SN's tunnel);
  - `search STEM-*` lists the user (from the SNs' records and the login server) and only
    names that start so.
For every strategy list this build can run (harklab.search_strategy_lists: the SN's store
and the login server always; gi and flood ahead of the login server when their plugins
are built); the first TAP comment says which ran. Two labs side by side; they are taken
down however the test ends. Root only.
"""
import os
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402
import searchlab  # noqa: E402

FIND_TIMEOUT = 10  # an SN strategy may take a moment to spread a new record among SNs


def search(node, name):
    return node.call("search", name=name, timeout=30)


def loginsrv_stats(node):
    for strategy in node.call("directory")["search"]:
        if strategy["name"] == "loginsrv":
            return strategy.get("stats") or {}
    return {}


def search_job(slab, client, case):
    """client's searches, checked into case."""
    node, target = client.node, client.target
    if client.error is not None or target.error is not None:
        case.fail("it and the user it searches for are logged in, attached and published",
                  client.error or target.error)
        return
    sn_host = slab.sn_address(target)
    try:
        tries = [0]

        def found():
            tries[0] += 1
            answer = search(node, target.user)
            return answer if searchlab.found_at(answer, target.user, sn_host) else None
        answer = node.wait(f"finding {target.user}", found, FIND_TIMEOUT)
        devices = [f"{d['user']} at {d['sn']}" for d in answer["devices"]]
        case.check(True, f"search {target.user} finds its device at its SN ({target.sn})",
                   f"{', '.join(devices)}; after {tries[0]} search(es)")
    except harklab.LabError as e:
        case.fail(f"search {target.user} finds its device at its SN ({target.sn})", e)
    before = loginsrv_stats(node)
    nobody = f"nobody-{client.label}"
    try:
        answer = search(node, nobody)
        case.check(answer["answer"] == "unknown" and not answer["devices"],
                   f"search {nobody} is unknown", f"answer: {answer}")
    except harklab.LabError as e:
        case.fail(f"search {nobody} is unknown", e)
    stem = target.user.split("-", 1)[0] + "-"
    try:
        answer = search(node, stem + "*")
        users = answer.get("users", [])
        case.check(answer["answer"] == "found" and target.user in users and
                   all(u.startswith(stem) for u in users),
                   f"search {stem}* lists {target.user} and only names that start so",
                   f"answer: {answer}")
    except harklab.LabError as e:
        case.fail(f"search {stem}* lists {target.user}", e)
    after = loginsrv_stats(node)
    path = node.call("state")["login"]["path"]
    # Web-only: the login server's port is blocked, so its answers came through the SN.
    want = "super node" if client.setup == "webonly" else "direct"
    case.check(after.get("asked", 0) - before.get("asked", 0) == 2 and
               after.get("failed", 0) == before.get("failed", 0) and path == want,
               f"the login server answered both ({'through the SN' if want != 'direct' else want})",
               f"loginsrv strategy before {before}, after {after}; login path: {path}")


def lab_job(prefix, work, modes, setups, strategies, cases, labs):
    slab = None
    try:
        slab = searchlab.SearchLab(prefix, work, modes, setups, strategies,
                                   sn_directory=harklab.directory_section(
                                       None, "lookups_per_minute = 6000;"))
        labs.append(slab)
        slab.join_all()
        harklab.run_together((search_job, (slab, c, cases[c.user])) for c in slab.clients)
    except Exception as e:  # the lab or its SNs: every case of this lab fails
        for case in cases.values():
            if not case.lines:
                case.fail("lab, login server and super nodes up", f"{e}\n{traceback.format_exc()}")
    finally:
        if slab is not None:
            slab.stop()


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    run = f"hnlsrch{os.getpid()}"
    work = harklab.work_dir("hark-search.")
    strategies = harklab.search_strategy_lists()
    ran = [f"{label} (directory.search = [{', '.join(search)}])"
           for label, search, _ in strategies]
    missing = [n for n in ("gi", "flood") if n not in [s[0] for s in strategies]]
    started = time.time()
    labs, jobs, ordered = [], [], []
    try:
        for key, modes, setups in searchlab.LABS:
            cases = {}
            for label, _, _ in strategies:
                for setup, _, stem in setups:
                    case = harklab.Case(f"{searchlab.SETUP_NAMES[setup]} [{label}]")
                    cases[f"{stem}-{label}"] = case
                    ordered.append(case)
            lab_work = os.path.join(work, key)
            os.makedirs(lab_work)
            jobs.append((lab_job, (f"{run}{key}-", lab_work, modes, setups, strategies, cases,
                                   labs)))
        harklab.run_together(jobs)
    finally:
        for slab in labs:
            slab.stop()
        shutil.rmtree(work, ignore_errors=True)
    comments = [f"strategy lists run: {'; '.join(ran)}"
                + (f"; not built, so not run: {', '.join(missing)}" if missing else ""),
                f"{time.time() - started:.1f} s"]
    return harklab.finish_tap(ordered, run, comments)


if __name__ == "__main__":
    sys.exit(main())
