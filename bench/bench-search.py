#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-search.py BUILD OUT.json [--searches N]: the directory's search time in the network
lab, in the paper's setups (the searching client's): 1 (public address), 2 (port-restricted
NAT), 3 (port-restricted NAT and a firewall that lets only TCP out) and web-only (only TCP
to 80 and 443 out), for every strategy list BUILD has (the SN's store and the login server;
gi and flood ahead of the login server when BUILD/plugins has gi.so and flood.so) in one run.
Needs root (tests/netlab/netlab).

The labs of tests/netlab/searchlab.py, one after the other: a login server and two SNs on
public addresses; per strategy list a client on c1 and one on c2, each searching for the
other (store: both on sn1; gi, flood: on sn1 and sn2, so the search crosses SNs). The
clients search one at a time, N times each:
  found     `search USER` of the other client (online): answered by the SNs
  unknown   `search` of a name nobody registered: the SNs have nothing, the login server
            says there is no such user (in web-only through the SN's tunnel)
Each time is from writing the `search` command to the client's ctl socket to reading its
answer (the directory reports no timing of its own; the unix socket adds well under a
millisecond). Bytes: IP bytes through the client's interface both ways during its N
searches of a kind, divided by N (harklab.ByteCounter; the host's other idle clients' keep-
alives are in it too). The SNs' and the login server's lookup limits are raised so that N
searches in a row are not refused.
"""
import json
import os
import shutil
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402
import searchlab  # noqa: E402


def timed_searches(client, name, want, n, counter):
    """n searches of name by client, each must end in want; their times (ms) and bytes."""
    node = client.node
    times = []
    counter.reset()
    for _ in range(n):
        started = time.perf_counter()
        answer = node.call("search", name=name, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        if answer["answer"] != want:
            raise harklab.LabError(f"{client.user}: search {name}: {answer['answer']}, "
                                   f"not {want}: {answer}")
    wire = counter.read()
    return {
        "n": n,
        "first_ms": times[0],
        "median_ms": statistics.median(times),
        "p95_ms": harklab.percentile(times, 95),
        "max_ms": max(times),
        "bytes_per_search": (wire["ip_in"] + wire["ip_out"]) / n,
        "times_ms": times,
    }


def measure_lab(prefix, work, modes, setups, strategies, n, results):
    slab = searchlab.SearchLab(
        prefix, work, modes, setups, strategies,
        sn_directory=harklab.directory_section(None, "lookups_per_minute = 100000;"),
        login_settings="lookups_per_minute = 1000000;")
    try:
        slab.join_all()
        for client in slab.clients:
            if client.error is not None:
                raise client.error
        for client in slab.clients:
            target = client.target
            # The target's record must be where the search looks before timing starts.
            client.node.wait(f"finding {target.user}", lambda: searchlab.found_at(
                client.node.call("search", name=target.user), target.user,
                slab.sn_address(target)), 10)
            counter = harklab.ByteCounter(slab.lab, client.host)
            found = timed_searches(client, target.user, "found", n, counter)
            unknown = timed_searches(client, f"nobody-{client.label}", "unknown", n, counter)
            counter.remove()
            overlay = client.node.call("overlay")
            case = {"found": found, "unknown": unknown, "sn": client.sn,
                    "target_sn": target.sn, "transport": overlay["sn"]["transport"],
                    "login_path": client.node.call("state")["login"]["path"]}
            results.setdefault(client.setup, {})[client.label] = case
            print(client.setup, client.label, json.dumps(
                {k: {m: v for m, v in kind.items() if m != "times_ms"}
                 if isinstance(kind, dict) else kind for k, kind in case.items()}),
                file=sys.stderr)
    finally:
        slab.stop()


def main():
    if os.geteuid() != 0:
        sys.exit("bench-search: needs root (network namespaces)")
    build, out = sys.argv[1], sys.argv[2]
    n = harklab.option("--searches", 50)
    os.environ["HARK_BIN"] = os.path.abspath(os.path.join(build, "hark"))
    os.environ["HARK_PLUGIN_PATH"] = os.path.abspath(os.path.join(build, "plugins"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    strategies = harklab.search_strategy_lists()
    work = harklab.work_dir("hark-bench-search.")
    run = f"hnlbs{os.getpid()}"
    results = {}
    started = time.time()
    load_before = os.getloadavg()[0]
    try:
        for key, modes, setups in searchlab.LABS:
            lab_work = os.path.join(work, key)
            os.makedirs(lab_work)
            measure_lab(f"{run}{key}-", lab_work, modes, setups, strategies, n, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(out, "w") as f:
        json.dump({"searches": n, "cases": results,
                   "lists": [{"label": label, "search": search}
                             for label, search, _ in strategies],
                   "seconds": time.time() - started, "cores": os.cpu_count(),
                   "load_before": load_before, "load_after": os.getloadavg()[0]}, f, indent=2)


if __name__ == "__main__":
    main()
