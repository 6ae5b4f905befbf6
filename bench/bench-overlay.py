#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-overlay.py BUILD OUT.json [--runs N]: how fast a node joins the overlay.

Real `hark run` processes on loopback: a login server, a super node (udp, tcp, tls443) and
a web-only super node (tls443 alone), each SN on its own 127.x.y.z address. One client
device registers and logs in once; then, N times each, it starts again and the time from
spawning the process to the log line "joined: attached" (the SN link up, JOIN answered,
the device certificate shown in the TLS handshake: logged in) is taken from the line's
own timestamp. Cases:
  warm       host cache and the remembered way (join.json) from the last run
  empty      hostcache.json and join.json deleted: only the bootstrap list
  web-cold   bootstrap = the web-only SN, nothing remembered: UDP unanswered, tcp refused,
             tls443 after join_fallback_delay_ms
  web-warm   the same with the remembered way (tls443 at once)
Bytes per join: the SN link's bytes both ways (TLS and framing included) plus the UDP
probe payloads (IP/UDP headers not counted), read from `overlay` right after the join.

Then the SN's load: bench-sn-load opens COUNT links to it (each a TLS 1.3 handshake with a
device certificate and a JOIN) and keeps them idle, each with a PING after 20 s of
silence (network.keepalive's default, which the SN hands its clients); the SN's resident memory and CPU time are read from /proc before, once all have
joined, and after an idle window of --idle seconds.
"""
import datetime
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402  (its Node and log_time serve here too)
from harklab import log_time  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node(harklab.Node):
    """A node on this machine (loopback), run from the build's `hark`."""

    def __init__(self, hark, work, name, config):
        os.environ["HARK_BIN"] = hark
        super().__init__(None, None, work, name, config)


def plugins(transports, tls_port, http_port):
    entries = []
    for name in transports:
        if name == "tls443":
            entries.append(f'{{ name = "tls443"; settings = {{ tls_port = {tls_port}; '
                           f'http_port = {http_port}; }}; }}')
        else:
            entries.append(f'{{ name = "{name}"; }}')
    entries.append('{ name = "ctl"; }')
    return "plugins: { load = ( " + ", ".join(entries) + " ); };\n"


def proc_memory_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def measure_load(build, sn_node, sn_host, config, counts, idle):
    """The SN's memory and CPU with COUNT idle clients, for each count."""
    rows = []
    for count in counts:
        # A fresh SN per count: memory freed by the last wave would otherwise be reused
        # and hide what a client costs. It serves again on its saved certificate.
        sn_node.stop()
        sn_node.start()
        sn_node.wait_log("serving as a super node")
        time.sleep(1)
        rss_before = proc_memory_kib(sn_node.proc.pid)
        gen = subprocess.Popen(
            [os.path.join(build, "bench", "bench-sn-load"), config, sn_host, "33033", str(count),
             "20", str(idle)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = json.loads(gen.stdout.readline())
        overlay = sn_node.call("overlay", clients=0)
        time.sleep(1)  # the handshakes' garbage settles
        rss_loaded = proc_memory_kib(sn_node.proc.pid)
        cpu_start = proc_cpu_seconds(sn_node.proc.pid)
        time.sleep(idle)
        cpu_idle = proc_cpu_seconds(sn_node.proc.pid) - cpu_start
        done = json.loads(gen.stdout.readline())
        gen.wait(timeout=60)
        rows.append({
            "clients": count, "joined": ready["joined"], "failed": ready["failed"],
            "served": overlay["client_count"], "still_up": done["still_up"],
            "connect_seconds": ready["connect_seconds"],
            "rss_before_kib": rss_before, "rss_loaded_kib": rss_loaded,
            "kib_per_client": (rss_loaded - rss_before) / max(ready["joined"], 1),
            "idle_seconds": idle, "pings": done["pings"], "pongs": done["pongs"],
            "cpu_percent_idle": 100.0 * cpu_idle / idle,
        })
        print("load", json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main():
    build, out = sys.argv[1], sys.argv[2]
    runs = option("--runs", 15)
    idle = option("--idle", 30)
    counts = [int(c) for c in (sys.argv[sys.argv.index("--clients") + 1].split(",")
                               if "--clients" in sys.argv else ["1000", "2000", "4000", "8000"])]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the SN and the generator
    hark = os.path.abspath(os.path.join(build, "hark"))
    work = tempfile.mkdtemp(prefix="hark-bench-overlay.")
    net = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}"
    tls_port, http_port = free_port(), free_port()
    nodes = []
    try:
        server, login = harklab.start_loopback_login_server(hark, work, Node)
        nodes.append(server)

        def sn(name, address, transports):
            node = Node(hark, work, name,
                        f'node: {{ name = "{name}"; }};\n'
                        + plugins(transports, tls_port, http_port)
                        + f'network: {{ listen = "{address}"; port = 33033; '
                          f'public_address = "{address}"; allow_loopback = true; }};\n'
                        + 'supernode: { min_uptime = 0; max_load = 10000; max_clients = 100000; };\n'
                        + login)
            nodes.append(node)
            node.start()
            node.call("register", user=name, password=name + "-password-1")
            node.call("login", user=name, password=name + "-password-1")
            node.wait_log("serving as a super node")
            return node

        main_sn = sn(f"sn-{net}", f"{net}.11", ["udp", "tcp", "tls443"])
        sn(f"web-{net}", f"{net}.12", ["tls443"])

        def client(name, bootstrap):
            node = Node(hark, work, name,
                        f'node: {{ name = "{name}"; supernode = false; }};\n'
                        + plugins(["udp", "tcp", "tls443"], tls_port, http_port)
                        + f'network: {{ allow_loopback = true; bootstrap = ( {{ host = "{bootstrap}"; port = 33033; '
                          'transports = [ "udp", "tcp", "tls443" ]; } ); };\n' + login)
            nodes.append(node)
            node.start()
            node.wait_log("joined: attached")
            node.call("register", user=name, password=name + "-password-1")
            node.call("login", user=name, password=name + "-password-1")
            node.stop()
            return node

        results = {}

        def measure(case, node, forget):
            samples = []
            for _ in range(runs):
                if forget:
                    for f in ("hostcache.json", "join.json"):
                        path = os.path.join(node.state, f)
                        if os.path.exists(path):
                            os.unlink(path)
                node.start()
                line = node.wait_log("joined: attached")
                overlay = node.call("overlay")
                node.stop()
                day = datetime.date.fromtimestamp(node.spawned)
                start_to_attached = (log_time(line, day) - node.spawned) * 1000
                join_ms = float(line.rsplit(" in ", 1)[1].split(" ms")[0])
                sn_link = overlay["sn"]
                udp = overlay["transports"].get("udp", {})
                samples.append({
                    "start_ms": start_to_attached, "join_ms": join_ms,
                    "transport": sn_link["transport"],
                    "link_bytes": sn_link["bytes_in"] + sn_link["bytes_out"],
                    "udp_bytes": udp.get("bytes_in", 0) + udp.get("bytes_out", 0),
                })
            results[case] = {
                "runs": runs,
                "transport": samples[-1]["transport"],
                "start_ms_median": statistics.median(s["start_ms"] for s in samples),
                "start_ms_min": min(s["start_ms"] for s in samples),
                "start_ms_max": max(s["start_ms"] for s in samples),
                "join_ms_median": statistics.median(s["join_ms"] for s in samples),
                "link_bytes_median": statistics.median(s["link_bytes"] for s in samples),
                "udp_bytes_median": statistics.median(s["udp_bytes"] for s in samples),
            }
            print(case, json.dumps(results[case]), file=sys.stderr)

        main_client = client("alice", f"{net}.11")
        measure("warm", main_client, False)
        measure("empty", main_client, True)
        web_client = client("webby", f"{net}.12")
        measure("web-cold", web_client, True)
        measure("web-warm", web_client, False)
        loader = client("loader", f"{net}.11")
        load_config = os.path.join(work, "load.conf")
        with open(load_config, "w") as f:
            f.write(f'node: {{ name = "load"; supernode = false; state_dir = "{loader.state}"; }};\n'
                    f'plugins: {{ path = [ "{os.path.abspath(os.path.join(build, "plugins"))}" ]; '
                    'load = ( { name = "tcp"; } ); };\n' + login)
        load = measure_load(build, main_sn, f"{net}.11", load_config, counts, idle)
        with open(out, "w") as f:
            json.dump({"runs": runs, "cases": results, "load": load,
                       "cores": os.cpu_count()}, f, indent=2)
    finally:
        for node in reversed(nodes):
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
