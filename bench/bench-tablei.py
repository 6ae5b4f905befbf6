#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-tablei.py BUILD OUT.json [--runs N]: the paper's Table I in the network lab.

How long a client takes to join the overlay and log in, and how many bytes it exchanges,
in the paper's setups: 1 (public address), 2 (port-restricted NAT), 3 (port-restricted NAT
and a firewall that lets only TCP out), plus web-only (only TCP to 80 and 443 out), and
setup 3's second login right after. Needs root (tests/netlab/netlab).

Two labs, one after the other: setups 1 and 2 (c1 public, c2 behind the NAT), then setup 3
and web-only (c1 udpblock, c2 webonly); each with a login server (argon2id at its default
cost) and two super nodes on public addresses. The clients are measured one at a time.
Each run of a case is a first login: a new device (empty state directory: new identity,
nothing remembered, only the bootstrap list of the two SNs) starts and is asked to `login`
with the user's password as soon as its ctl socket answers; in setup 3 the same node is
then, once its NAT probe has a verdict (UDP blocked, kept in nat.json), stopped and started
again on its state directory and logs in again (`login` with the
password once more, so both logins ask the login server). Measured per run:
  total ms   from spawning `hark run` to the later of its log lines "joined: attached"
             and "logged in to" (each line carries its own time)
  join ms    the overlay's own measure in that "joined" line: start of the join to JOIN_OK
  bytes      IP bytes (IP, UDP, TCP headers; no Ethernet) through the client's interface,
             both ways, from the spawn until the SN has seen the device's certificate
             (nftables counters in the client's namespace; see harklab.ByteCounter)
The account was registered beforehand (through an SN's node) and is not measured.
"""
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402

TIMEOUT = 120


def line_time(node, text, skip=None):
    """The time of node's last log line with text (and without skip), and the line."""
    found = None
    with open(node.log) as f:
        for line in f:
            if text in line and (skip is None or skip not in line):
                found = line
    if found is None:
        raise harklab.LabError(f"{node.name}: no '{text}' in the log:\n{node.log_text()}")
    return harklab.log_time(found, datetime.date.fromtimestamp(node.spawned)), found


def one_login(network, node, counter, user, settle=False):
    """One start and login of node: its figures. With settle, the node runs on until its NAT
    probe has a verdict (kept in nat.json) before it stops, as a device in use would."""
    counter.reset()
    node.start()
    node.register_and_login(user, register=False)
    overlay, state, _ = node.wait(
        "attached and logged in",
        lambda: harklab.attached_and_logged_in(network, node, user), TIMEOUT)
    wire = counter.read()
    attached_at, line = line_time(node, "joined: attached")
    # A restarted node first logs in with its saved certificate; the password's login is later.
    logged_in_at, _ = line_time(node, "logged in to", skip="saved certificate")
    no_udp_wait = (node.log_line("join: no UDP answer last time") is not None or
                   node.log_line("join: the NAT probe found UDP blocked") is not None)
    if settle:
        node.wait("probed", lambda: node.call("nat")["verdict"] != "unknown", TIMEOUT)
    node.stop()
    return {
        "total_ms": (max(attached_at, logged_in_at) - node.spawned) * 1000,
        "join_ms": float(line.rsplit(" in ", 1)[1].split(" ms")[0]),
        "transport": overlay["sn"]["transport"],
        "login_path": state["login"]["path"],
        "no_udp_wait": no_udp_wait,
        **wire,
    }


def summary(samples):
    def med(key):
        return statistics.median(s[key] for s in samples)
    return {
        "runs": len(samples),
        "total_ms_median": med("total_ms"),
        "total_ms_min": min(s["total_ms"] for s in samples),
        "total_ms_max": max(s["total_ms"] for s in samples),
        "join_ms_median": med("join_ms"),
        "bytes_median": statistics.median(s["ip_in"] + s["ip_out"] for s in samples),
        "bytes_out_median": med("ip_out"),
        "bytes_in_median": med("ip_in"),
        "udp_bytes_median": statistics.median(s["udp_in"] + s["udp_out"] for s in samples),
        "tcp_bytes_median": statistics.median(s["tcp_in"] + s["tcp_out"] for s in samples),
        "transports": sorted({s["transport"] for s in samples}),
        "login_paths": sorted({s["login_path"] for s in samples}),
        "no_udp_wait": sorted({s["no_udp_wait"] for s in samples}),
        "samples": samples,
    }


def measure_lab(prefix, work, modes, cases, runs, results):
    """cases: (case key, client host, user, second-login case key or None)."""
    lab = harklab.Lab(prefix, *modes)
    network = None
    try:
        network = harklab.HarkNetwork(lab, work, cheap_hash=False)
        registrar = network.sns["sn1"]
        for key, host, user, again in cases:
            registrar.call("register", user=user, password=user + harklab.PASSWORD_SUFFIX)
            node = network.client(host, user)
            counter = harklab.ByteCounter(lab, host)
            first, second = [], []
            for _ in range(runs):
                shutil.rmtree(node.state)
                os.makedirs(node.state, mode=0o700)
                first.append(one_login(network, node, counter, user, settle=again is not None))
                if again is not None:
                    second.append(one_login(network, node, counter, user))
            results[key] = summary(first)
            print(key, json.dumps({k: v for k, v in results[key].items() if k != "samples"}),
                  file=sys.stderr)
            if again is not None:
                results[again] = summary(second)
                print(again, json.dumps({k: v for k, v in results[again].items()
                                         if k != "samples"}), file=sys.stderr)
            counter.remove()
    finally:
        if network is not None:
            network.stop()
        lab.down()


def main():
    if os.geteuid() != 0:
        sys.exit("bench-tablei: needs root (network namespaces)")
    build, out = sys.argv[1], sys.argv[2]
    runs = harklab.option("--runs", 5)
    os.environ["HARK_BIN"] = os.path.abspath(os.path.join(build, "hark"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = harklab.work_dir("hark-bench-tablei.")
    run = f"hnlbt{os.getpid()}"
    results = {}
    started = time.time()
    load_before = os.getloadavg()[0]
    try:
        for prefix, modes, cases in (
                (f"{run}a-", ("public", "portrestricted"),
                 [("setup1", "c1", "alice", None), ("setup2", "c2", "bob", None)]),
                (f"{run}b-", ("udpblock", "webonly"),
                 [("setup3", "c1", "carol", "setup3-second"), ("web", "c2", "dave", None)])):
            lab_work = os.path.join(work, prefix)
            os.makedirs(lab_work)
            measure_lab(prefix, lab_work, modes, cases, runs, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(out, "w") as f:
        json.dump({"runs": runs, "cases": results, "seconds": time.time() - started,
                   "cores": os.cpu_count(), "load_before": load_before,
                   "load_after": os.getloadavg()[0]}, f, indent=2)


if __name__ == "__main__":
    main()
