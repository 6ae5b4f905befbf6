#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-relay.py BUILD OUT.json [--sessions N[,N...]] [--seconds S]
[--servers coturn,hark]: relay capacity, a
hark SN's TURN server beside coturn in the same run (issue 15, "Performance").

coturn's own load generator drives both servers the same way: `turnutils_uclient` opens
N sessions (one allocation each, a permission and a channel to one peer), each sending 50
packets a second of 100 bytes (`-z 20 -l 100`) that `turnutils_peer` echoes back, over
UDP and over TCP to the server (`-t`). Every packet the server handles is relayed twice
(client -> peer, peer -> client), so one session is one relayed call side: 100 relayed
datagrams a second.

Per server, transport and session count:
  relayed/s   datagrams relayed a second in the steady part of the run (from uclient's
              progress lines: packets sent and received between its first and last
              report of sending, each counted once per direction)
  loss        uclient's "Total lost packets" in percent
  cpu         the server's CPU (utime + stime of every thread, /proc) over the same
              window, in percent of one core
  calls/core  relayed/s / 100 / (cpu / 100): the relayed call sides one core sustains
  mem/alloc   the server's PSS with every session allocated, minus before, per session

coturn 4.6: `turnserver -n` with long-term credentials from the REST-API secret
(`--use-auth-secret`, as hark's SNs hand out), `--relay-threads` = the cores.
hark: a login server and one SN (`hark run`), whose TURN server takes the SN's own
REST-API secret (its state directory): uclient computes the credentials from it with -W.

Runs in a network namespace of its own with only lo, so nothing else on the machine
shares its ports (root; it re-executes itself under `unshare --net`).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402

SECRET = "bench-relay-secret"
PEER_PORT = 3480
PACKET_BYTES = 100
INTERVAL_MS = 20
PROGRESS = re.compile(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)")
LOST = re.compile(r"Total lost packets (\d+) \(([\d.]+)%\)")
TICKS = os.sysconf("SC_CLK_TCK")


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class Coturn:
    name = "coturn"

    def __init__(self, work, port):
        self.port = port
        files = os.path.join(work, "coturn")
        self.log = open(files + ".log", "w")
        self.proc = subprocess.Popen(
            ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
             "-p", str(port), "--use-auth-secret", f"--static-auth-secret={SECRET}",
             "--realm", "hark", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
             "--relay-threads", str(os.cpu_count()), "--total-quota", "0", "--user-quota", "0",
             "--pidfile", files + ".pid", "--userdb", files + ".db", "--log-file", "stdout",
             "--no-stdout-log", "--simple-log"],
            stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        self.secret = SECRET
        wait_port(port)
        self.version = subprocess.run(["turnserver", "--version"], capture_output=True,
                                      text=True).stdout.strip() or "coturn"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class HarkRelay:
    """A login server and one SN whose TURN server listens on 127.0.0.1:port."""
    name = "hark"

    def __init__(self, hark, work, port):
        self.port = port
        self.nodes = []
        server, login = harklab.start_loopback_login_server(hark, work)
        self.nodes.append(server)
        sn = harklab.LoopbackNode(
            hark, work, "sn",
            'node: { name = "sn"; supernode = true; };\n'
            'plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, { name = "ctl"; } ); };\n'
            'network: { listen = "127.0.0.1"; port = 33033; public_address = "127.0.0.1"; '
            'allow_loopback = true; bootstrap = ( ); };\n'
            f'supernode: {{ min_uptime = 0; max_load = 10000; links = 0; relay = true; '
            f'relay_port = {port}; relay_allow = [ "127.0.0.0/8" ]; '
            'relay_max_allocations = 100000; relay_max_allocations_per_user = 100000; };\n' + login)
        self.nodes.append(sn)
        try:
            sn.start()
            sn.register_and_login("sn-one")
            sn.wait_log("serving as a super node")
        except harklab.LabError:
            self.stop()  # the login server too: nothing of a failed start is left running
            raise
        self.pid = sn.proc.pid
        wait_port(port)
        with open(os.path.join(sn.state, "relay-secret")) as f:
            self.secret = f.read().strip()
        self.version = "hark " + subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short",
             "HEAD"], capture_output=True, text=True).stdout.strip()

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()


def wait_port(port):
    deadline = time.time() + 20
    while time.time() < deadline:
        if subprocess.run(["ss", "-Hlnu", f"sport = :{port}"], capture_output=True,
                          text=True).stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on UDP port {port}")


def run_sessions(server, sessions, seconds, tcp):
    """One uclient run; the figures of its steady part."""
    packets = int(seconds * 1000 / INTERVAL_MS)
    pss_before = pss_kib(server.pid)
    argv = ["turnutils_uclient", "-p", str(server.port), "-e", "127.0.0.1", "-r",
            str(PEER_PORT), "-W", server.secret, "-u", "bench", "-m", str(sessions),
            "-n", str(packets), "-l", str(PACKET_BYTES), "-z", str(INTERVAL_MS), "-c"]
    if tcp:
        argv.append("-t")
    proc = subprocess.Popen(argv + ["127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    progress = []  # (time, server cpu s, sent, received, pss)
    lost = None
    for line in proc.stdout:
        match = PROGRESS.search(line)
        if match and "msz=" in line:
            progress.append((time.time(), cpu_seconds(server.pid), int(match[1]),
                             int(match[2]), pss_kib(server.pid)))
        match = LOST.search(line)
        if match:
            lost = float(match[2])
    proc.wait()
    sending = [p for p in progress if p[2] > 0]
    total = packets * sessions
    steady = [p for p in sending if p[2] < total] or sending
    if len(steady) < 2 or lost is None:
        raise RuntimeError(f"uclient ({'tcp' if tcp else 'udp'}, {sessions} sessions) "
                           f"reported too little: {progress} lost={lost}")
    first, last = steady[0], steady[-1]
    wall = last[0] - first[0]
    relayed = ((last[2] - first[2]) + (last[3] - first[3])) / wall
    cpu = 100 * (last[1] - first[1]) / wall
    return {"sessions": sessions, "transport": "tcp" if tcp else "udp",
            "relayed_per_s": round(relayed), "loss_pct": lost, "cpu_pct": round(cpu, 1),
            "calls_per_core": round(relayed / 100 / (cpu / 100)) if cpu > 0 else None,
            "mem_per_alloc_kib": round((max(p[4] for p in sending) - pss_before) / sessions, 1),
            "window_s": round(wall, 1)}


def main():
    if os.geteuid() != 0:
        sys.exit("bench-relay: needs root (a network namespace of its own)")
    if os.environ.get("HARK_BENCH_NETNS") != "1":
        os.execvp("unshare", ["unshare", "--net", "env", "HARK_BENCH_NETNS=1", "sh", "-c",
                              'ip link set lo up && exec "$0" "$@"', sys.executable,
                              *sys.argv])
    build, out = sys.argv[1], sys.argv[2]
    counts = [int(n) for n in option("--sessions", "100,300").split(",")]
    seconds = float(option("--seconds", "10"))
    hark = os.path.abspath(os.path.join(build, "hark"))
    work = tempfile.mkdtemp(prefix="hark-bench-relay.")
    os.chmod(work, 0o755)
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(PEER_PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = []
    try:
        kinds = option("--servers", "coturn,hark").split(",")
        servers = [Coturn(work, 3478) if kind == "coturn" else HarkRelay(hark, work, 3479)
                   for kind in kinds]
        rows = []
        # Side by side: each (transport, count) runs on every server before the next.
        for tcp in (False, True):
            for sessions in counts:
                for server in servers:
                    row = run_sessions(server, sessions, seconds, tcp)
                    row["server"] = server.name
                    row["load"] = os.getloadavg()[0]
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
        result = {"rows": rows, "seconds": seconds, "cores": os.cpu_count(),
                  "versions": {s.name: s.version for s in servers},
                  "packet_bytes": PACKET_BYTES, "packets_per_s": 1000 // INTERVAL_MS}
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    finally:
        for server in servers:
            server.stop()
        peer.kill()
        peer.wait()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


main()
