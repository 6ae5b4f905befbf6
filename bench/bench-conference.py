#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-conference.py BUILD OUT.json [--sizes 4,8,16,32] [--seconds 10] [--runs 3]
[--janus-rates 16000,48000]: a conference host's CPU and memory beside Janus's AudioBridge,
in the same run.

hark: a login server, one SN, a host node (`conference` at 16 kHz; its own source is
silence and its speaker `null`, so it mixes like a server) and as many participant nodes as
the largest size, each a `hark run` with the cheapest media there is: Opus 20 ms, a tone
of its own from `audiotestsrc` and the sink `null` (plugins: udp, tcp, ctl,
search-loginsrv, opus). The host calls the first N participants (`conference`, adding to
the one hosted as N grows); each answers on its ctl socket.

Janus: Debian's `janus` (bench/janus_bridge.py) with a room at each rate of
--janus-rates and N plain-RTP participants, each fed an Opus 20 ms mono stream of a tone
(or of silence) by one sender thread of ours.

Two loads for each N: *tones*, everyone sending a tone (all are always mixed), and
*speech*, where 3 talk (a tone) and the others are silent (hark: those participants'
calls are muted, their encoders get silence; Janus: the same encoder's frames of
silence), the case of a real meeting. By default the participants use Opus DTX (hark:
the opus plugin's `dtx = true`, complexity 10 so that a steady tone is not taken for
noise; Janus: the stream of the same encoder without the frames DTX leaves empty), so
a silent participant sends a comfort-noise frame every 400 ms; with --no-dtx every
participant sends 50 packets a second, silence or not. The host keeps the opus
plugin's defaults (complexity 10; Janus's AudioBridge encodes at complexity 4). For each N and load the servers take turns (hark, then Janus at each
rate), --runs times; the report is the median. *CPU* is the server process's
user+system time over --seconds (every thread, /proc/PID/stat), in % of one core;
memory is the process's VmHWM, RSS and PSS (smaps_rollup) at the end of the interval.
The participants' nodes' CPU is summed too: on a small machine they compete with the
host for the cores (each is reniced to 19 once in the conference, so that the servers
measured come first), which is why the machine's load is recorded with each row.
"""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "netlab"))
sys.path.insert(0, HERE)
import harklab  # noqa: E402
import janus_bridge  # noqa: E402

TIMEOUT = 60
TALKERS = 3
HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def memory(pid):
    """VmHWM, RSS and PSS of pid in KiB."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            out["vmhwm_kib"] = int(line.split()[1])
    for line in open(f"/proc/{pid}/smaps_rollup"):
        key = line.split(":")[0]
        if key in ("Rss", "Pss"):
            out[key.lower() + "_kib"] = int(line.split()[1])
    return out


def renice(pid, nice=19):
    """Every thread of pid at nice (Linux's nice is per thread; threads made later inherit
    it from the thread that makes them)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(task), nice)
        except OSError:
            pass


def measure(pid, seconds, others=()):
    """CPU of pid (and the sum of others) in % of one core over seconds, and pid's memory."""
    t0, c0 = time.monotonic(), ticks(pid)
    o0 = sum(ticks(p) for p in others)
    time.sleep(seconds)
    c1, o1, t1 = ticks(pid), sum(ticks(p) for p in others), time.monotonic()
    span = t1 - t0
    return {"cpu_pct": 100 * (c1 - c0) / HZ / span,
            "participants_cpu_pct": 100 * (o1 - o0) / HZ / span if others else None,
            "loadavg": float(open("/proc/loadavg").read().split()[0]), **memory(pid)}


# ---- hark ------------------------------------------------------------------------------

PLUGINS = '{ name = "udp"; }, { name = "tcp"; }, { name = "ctl"; }'


class HarkConference:
    def __init__(self, hark, work, n, dtx, rate=16000):
        self.hark, self.work, self.n, self.dtx, self.rate = hark, work, n, dtx, rate
        self.nodes, self.members = [], []
        self.in_conference = 0

    def client(self, name, media, more="", opus=""):
        return harklab.LoopbackNode(
            self.hark, self.work, name,
            f'node: {{ name = "{name}"; supernode = false; }};\n'
            f'plugins: {{ load = ( {PLUGINS}, {{ name = "search-loginsrv"; }}, '
            f'{{ name = "opus"; settings = {{ {opus} }}; }} ); }};\n'
            f'network: {{ allow_loopback = true; bootstrap = ( {{ host = "{self.sn_address}"; '
            'port = 33034; transports = [ "udp", "tcp" ]; } ); };\n'
            f'media: {{ codecs = [ "opus" ]; {media} }};\n' + more + self.login)

    def up(self, node):
        node.start()
        node.wait_log("joined: attached", TIMEOUT)
        node.register_and_login(node.name)
        node.wait("published",
                  lambda: node.call("directory")["publish"].get("published_at"), TIMEOUT)

    def start(self):
        net = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}"
        # Every node here has one address, as users behind one NAT do; the login
        # server keeps its defaults, since nodes sign their look-ups and device-list
        # requests, which then count per account (120 a minute) and not against the
        # address's 60. The SN keeps its default too (30 lookups a minute a client): a
        # host looks a member up once, to call it; its rosters and mutes go to the
        # device where it is (before d3c9e34 each cost a lookup and the host's 10th-12th
        # call failed "has no device online").
        server, self.login = harklab.start_loopback_login_server(self.hark, self.work)
        self.nodes.append(server)
        self.sn_address = f"{net}.42"
        sn = harklab.LoopbackNode(
            self.hark, self.work, "sn",
            'node: { name = "sn"; supernode = true; };\n'
            f'plugins: {{ load = ( {PLUGINS}, {{ name = "gi"; }} ); }};\n'
            f'network: {{ listen = "{self.sn_address}"; port = 33034; '
            f'public_address = "{self.sn_address}"; allow_loopback = true; bootstrap = ( ); }};\n'
            'supernode: { min_uptime = 0; max_load = 10000; links = 0; };\n' + self.login)
        self.nodes.append(sn)
        sn.start()
        sn.register_and_login("sn-one")
        sn.wait_log("serving as a super node", TIMEOUT)
        self.host = self.client("host", 'source = "silence"; sink = "null";',
                                f"conference: {{ rate = {self.rate}; }};\ncalls: {{ max = 64; }};\n")
        # Complexity 10 at the participants: at 5, Opus's activity detection takes a
        # steady tone for noise and DTX drops some of its frames.
        opus = f'dtx = {"true" if self.dtx else "false"}; complexity = 10;'
        self.members = [self.client(f"p-{i}", f'source = "tone:{300 + 37 * i}"; sink = "null";',
                                    opus=opus)
                        for i in range(self.n)]
        self.nodes += [self.host] + self.members
        # A few at a time: each start registers, logs in and publishes.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(self.up, node) for node in [self.host] + self.members]:
                f.result()
        self.answerers = [Answerer(m) for m in self.members]

    def grow(self, n):
        """The first n participants in the conference, every leg connected. One at a
        time: each join sends every member the roster twice (calling, connected), as
        signals through the SN, which carries 20 a second from one device (a burst of
        50; core/message/message-route.h), and a signal it refuses is lost (an INVITE
        too: that member's call fails). So after each join the bench waits for the SN's
        budget to refill."""
        while self.in_conference < n:
            member = self.members[self.in_conference]
            self.host.call("conference", users=member.name)
            self.in_conference += 1
            for attempt in range(3):
                state = self.host.wait(f"{member.name} connected or left",
                                       lambda: self.member_state(member.name), TIMEOUT)
                if state == "connected":
                    break
                # A call that fails (on a loaded machine: no answer in time; the host's
                # lookup refused) leaves the member `left`: it asks back in, as a user
                # would.
                print(f"bench-conference: {member.name} {state}; it asks back in",
                      file=sys.stderr)
                conference = self.host.call("roster")["conferences"][0]["id"]
                member.call("join", host=self.host.name, id=conference)
                self.host.wait(f"{member.name} called again",
                               lambda: self.member_state(member.name) != "left", TIMEOUT)
            else:
                raise harklab.LabError(f"{member.name} could not join")
            time.sleep(2 * self.in_conference / 20)

    def member_state(self, user):
        """user's state at the host once it is connected or left, else None."""
        for m in self.host.call("roster")["conferences"][0]["roster"]:
            if m["user"] == user and m["state"] in ("connected", "left"):
                return m["state"]
        return None
        # The participants yield the cores to the servers measured (and the machine can
        # run 32 of them beside a host only so): what they cannot send in time shows as
        # the host's underruns, not as a starved host.
        for m in self.members[:n]:
            renice(m.proc.pid)

    def talkers(self, n, talking):
        """Of the first n participants, the first `talking` send their tone, the others
        silence (a muted call)."""
        for i, m in enumerate(self.members[:n]):
            m.call("unmute" if i < talking else "mute")

    def pids(self, n):
        return [m.proc.pid for m in self.members[:n]]

    def stop(self):
        for node in reversed(self.nodes):
            if node.proc is not None:
                node.proc.terminate()
        for node in reversed(self.nodes):
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except Exception:
                    node.proc.kill()
                    node.proc.wait()


class Answerer:
    """Answers every call that rings at node (a ctl connection of its own)."""

    def __init__(self, node):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(node.state, "ctl.sock"))
        self.reader = self.sock.makefile("r")
        self.reader.readline()  # the hello
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        for line in self.reader:
            event = json.loads(line)
            data = event.get("data", event)
            if event.get("event") == "call" and data.get("direction") == "in" and \
                    data.get("state") == "ringing":
                request = {"id": "a", "command": "answer", "args": {"id": data["call_id"]}}
                self.sock.sendall((json.dumps(request) + "\n").encode())


# ---- the run ----------------------------------------------------------------------------

def janus_measure(janus, rate, n, talking, tone, silence, seconds):
    room = janus.room(rate)
    for i in range(n):
        janus.join(room, tone if i < talking else silence)
    time.sleep(1)  # its jitter buffers fill, the mixer mixes everyone
    result = measure(janus.proc.pid, seconds)
    janus.leave_all()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("out")
    ap.add_argument("--sizes", default="4,8,16,32")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--janus-rates", default="16000,48000")
    ap.add_argument("--no-dtx", dest="dtx", action="store_false",
                    help="silent participants send Opus frames of silence (no DTX)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rates = [int(x) for x in args.janus_rates.split(",") if x]
    hark = os.path.abspath(os.path.join(args.build, "hark"))
    os.environ["HARK_PLUGIN_PATH"] = os.path.abspath(os.path.join(args.build, "plugins"))
    if shutil.which("janus") is None:
        sys.exit("bench-conference: no janus (apt-get install janus; deps/bench-debian.txt)")
    work = tempfile.mkdtemp(prefix="hark-bench-conference-")
    os.chmod(work, 0o755)
    lab = HarkConference(hark, work, max(sizes), args.dtx)
    janus = janus_bridge.Janus(work)
    samples = {}  # (server, rate, n, load) -> [measurement]
    started = time.time()
    try:
        tone = janus_bridge.opus_payloads(440, dtx=args.dtx)
        silence = janus_bridge.opus_payloads(0, dtx=args.dtx)
        lab.start()
        print(f"bench-conference: {len(lab.nodes)} hark nodes up in "
              f"{time.time() - started:.0f} s", file=sys.stderr)
        janus.start()
        janus_idle = measure(janus.proc.pid, 2)
        for n in sizes:
            lab.grow(n)
            for run in range(args.runs):
                for load, talking in (("tones", n), ("speech", min(TALKERS, n))):
                    lab.talkers(n, talking)
                    time.sleep(1)
                    got = measure(lab.host.proc.pid, args.seconds, lab.pids(n))
                    # The legs on the shared encoding of the whole mix (none before it existed).
                    shared = lab.host.call("roster")["conferences"][0].get("shared") or {}
                    got["shared_encoders"] = shared.get("encoders")
                    got["shared_followers"] = shared.get("followers")
                    samples.setdefault(("hark", lab.rate, n, load), []).append(got)
                    print(f"bench-conference: hark n={n} {load} run {run + 1}: "
                          f"{got['cpu_pct']:.1f} % (participants {got['participants_cpu_pct']:.0f} %, "
                          f"load {got['loadavg']}, shared: {shared or 'none'})", file=sys.stderr)
                    for rate in rates:
                        got = janus_measure(janus, rate, n, talking, tone, silence, args.seconds)
                        samples.setdefault(("janus", rate, n, load), []).append(got)
                        print(f"bench-conference: janus {rate} n={n} {load} run {run + 1}: "
                              f"{got['cpu_pct']:.1f} %", file=sys.stderr)
        host_roster = lab.host.call("roster")["conferences"][0]
        late = host_roster.get("late_ticks")
        janus_version = janus_bridge.version()
    finally:
        janus.stop()
        lab.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for (server, rate, n, load), got in sorted(samples.items()):
        med = {k: statistics.median(g[k] for g in got) for k in got[0] if got[0][k] is not None}
        rows.append({"server": server, "rate": rate, "participants": n, "load": load,
                     "runs": len(got), **med, "cpu_pct_runs": [g["cpu_pct"] for g in got]})
    json.dump({"rows": rows, "dtx": args.dtx, "seconds": args.seconds, "runs": args.runs, "talkers": TALKERS,
               "janus_idle": janus_idle, "janus_version": janus_version,
               "host_late_ticks": late, "cores": os.cpu_count(),
               "minutes": (time.time() - started) / 60}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
