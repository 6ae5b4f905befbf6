#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-liveness.py BUILD OUT.json [--runs N] [--idle S]: the SN link's liveness in the
network lab (tests/netlab/netlab, root), with the default keep-alive settings.

A lab with public hosts (c1 and c2 "public"), a login server and the two SNs of
harklab.HarkNetwork; one client on c1 logs in and attaches. Then:
  idle       IP bytes (IP and TCP/UDP headers, no Ethernet) through c1's interface, both
             ways, over S idle seconds (default 120), and the PINGs the client sent
             meanwhile; scaled to an hour. That is everything an idle attached client
             exchanges: the keep-alive and the SN's SN_LIST every 60 s.
  failover   N times (default 3): every packet to and from the client's SN is dropped
             with nftables in the SN's namespace (input and output hooks, policy drop: no
             reset, no FIN, as a crashed host or a cut cable); measured from then until
             the client's `overlay` shows it attached to the other SN (polled every
             20 ms), and until its log says it gave the SN up. The drop is lifted before
             the next run, which then silences the SN the client moved to. From the
             second run on, the drop comes right after the JOIN_OK of the previous move
             (the SN link's last message), so those runs show the worst case:
             keepalive + keepalive_timeout after the SN's last message, plus the join.
Before this scheme (a PING every 120 s, 10 s for its PONG) the same drop took 127 s.
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402

USER = "liveness"
GAVE_UP = "nothing arrived within"


def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def silence(lab, host, on):
    """Drops (on) or lets through again (off) every packet of host."""
    argv = lab.command(host, "nft", "-f", "-")
    if on:
        rules = """table inet hark_silence {
    chain in { type filter hook input priority -300; policy drop; }
    chain out { type filter hook output priority -300; policy drop; }
}
"""
    else:
        rules = "delete table inet hark_silence\n"
    subprocess.run(argv, input=rules, text=True, check=True, capture_output=True)


def attached_sn(node):
    overlay = node.call("overlay")
    return overlay["sn"]["name"] if overlay["state"] == "attached" else None


def measure_idle(lab, client, seconds):
    counter = harklab.ByteCounter(lab, "c1")
    before = client.call("overlay")["sn"]
    counter.reset()
    started = time.time()
    time.sleep(seconds)  # the idle window itself is what is measured
    counted = counter.read()
    took = time.time() - started
    after = client.call("overlay")["sn"]
    counter.remove()
    if after is None or before is None or after["name"] != before["name"]:
        raise harklab.LabError("the client changed its SN while idle")
    ip = counted["ip_in"] + counted["ip_out"]
    return {"seconds": round(took, 1), "ip_bytes": ip, "tcp_bytes": counted["tcp_in"] +
            counted["tcp_out"], "udp_bytes": counted["udp_in"] + counted["udp_out"],
            "pings": after["pings_sent"] - before["pings_sent"],
            "ip_bytes_per_hour": round(ip * 3600 / took),
            "keepalive_s": after["keepalive_s"], "keepalive_timeout_s": after["keepalive_timeout_s"]}


def measure_failover(lab, client):
    sn = client.wait("attached", lambda: attached_sn(client), 30)
    log_start = os.path.getsize(client.log)
    silence(lab, sn, True)
    started = time.time()
    try:
        other = client.wait("attached elsewhere",
                            lambda: (lambda now: now if now not in (None, sn) else None)(
                                attached_sn(client)), 240)
        took = time.time() - started
    finally:
        silence(lab, sn, False)
    with open(client.log) as f:
        f.seek(log_start)
        gave_up = next((line for line in f if GAVE_UP in line), None)
    noticed = harklab.log_time(gave_up, datetime.date.today()) - started if gave_up else None
    return {"silenced": sn, "moved_to": other, "reattached_s": round(took, 2),
            "noticed_s": round(noticed, 2) if noticed is not None else None}


def main():
    if os.geteuid() != 0:
        sys.exit("bench-liveness: needs root (network namespaces)")
    build, out = sys.argv[1], sys.argv[2]
    runs, idle = option("--runs", 3), option("--idle", 120)
    os.environ["HARK_BIN"] = os.path.abspath(os.path.join(build, "hark"))
    os.environ.setdefault("HARK_PLUGIN_PATH", os.path.abspath(os.path.join(build, "plugins")))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = harklab.work_dir("hark-bench-liveness.")
    lab = harklab.Lab(f"hnlbl{os.getpid()}-", "public", "public")
    network = None
    results = {"runs": runs}
    try:
        network = harklab.HarkNetwork(lab, work)
        client = network.client("c1", "liveness-client")
        client.start()
        client.register_and_login(USER)
        client.wait("attached and known", lambda: harklab.attached_and_logged_in(
            network, client, USER), 60)
        # The NAT probe (UDP, once after the start) is not idle traffic.
        client.wait_log("NAT probe:", 60)
        results["idle"] = measure_idle(lab, client, idle)
        print("idle", json.dumps(results["idle"]), file=sys.stderr)
        results["failover"] = []
        for _ in range(runs):
            one = measure_failover(lab, client)
            results["failover"].append(one)
            print("failover", json.dumps(one), file=sys.stderr)
    finally:
        if network is not None:
            network.stop()
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
