#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-calls.py BUILD OUT.json [--calls N] [--against BUILD...]: call set-up time on
loopback, hark beside baresip (issue 14, "Performance"). Needs root: it runs in a network
namespace of its own that has only lo (so the packets seen are the benchmark's) and reads
lo with a packet socket.

hark: a login server, one super node, alice-N and bob-N (`hark run` processes with the
`tone` source and the `null` sink; pairs take turns, see bench_hark). N calls (default
10, env BENCH_CALLS) alice-N -> bob-N that a thread on bob-N's ctl connection answers the
moment the `ringing` event arrives (the answer costs a script's reaction, about a
millisecond), and N more it answers after a ring of RING_S, as a person would (what the
callee makes while it rings is ready by then). Per call:
  dial->ringing   writing `call` on alice's socket to her `call` event `ringing`
  answer->media   bob's `connect_ms`: from his answer to his call turning active
  dial->media     alice's `setup_ms`: from her dial to her call turning active
  dial->audio     writing `call` to the first RTP packet (seen on lo, kernel timestamps)
                  in the later of the two directions: audio flowing both ways, the
                  figure baresip is measured by
and where the time goes, from the events and the packets: dial -> ringing, ringing ->
answer (the script), answer -> the ANSWER at alice (her `connecting`), -> the first ICE
check on the call's pair, -> the nominated pair (the first success answer to a check
with USE-CANDIDATE), -> each side's `active`, -> first RTP each way.
BENCH_CALLS_PACKETS=1 prints each call's STUN and first RTP packets.

baresip (when installed): two baresip processes on 127.0.0.1 (the callee answers
automatically, `answermode=auto`; the ALSA null device as source and player; Opus,
SDES-SRTP, no ICE); the dial is a ctrl_tcp `dial` command, and the figure is the same
dial -> first RTP both ways on lo.

--against: the same calls with other builds too (one lab each, the calls interleaved with
the first build's), reported under "against": a change measured beside what it changes.
"""
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
STUN_COOKIE = 0x2112A442
TIMEOUT = 20
CALLS_PER_PAIR = 4
RING_S = 0.5


def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


class Wire(threading.Thread):
    """Every UDP packet on lo that looks like RTP or STUN: (kernel time, kind, src, dst,
    detail), src and dst as "ip:port". kind: rtp (version 2, not RTCP; detail its SSRC),
    stun-request (a binding request; detail True when it has USE-CANDIDATE), stun-success.
    Packets sent are seen again as received on lo: only the received ones are kept."""

    OUTGOING = False

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = self.open()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.packets = []
        self.lock = threading.Lock()
        self.running = True
        self.start()

    def run(self):
        while self.running:
            try:
                data, anc, _, addr = self.sock.recvmsg(2048, 64)
            except socket.timeout:
                continue
            outgoing = addr[2] == socket.PACKET_OUTGOING
            if outgoing and not self.OUTGOING:
                continue  # lo shows each packet twice
            at = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    at = sec + nsec / 1e9
            packet = self.parse(data[14:], outgoing)
            if packet is not None:
                with self.lock:
                    self.packets.append((at,) + packet)

    def open(self):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind(("lo", 0))
        return sock

    def parse(self, ip, outgoing):
        return parse(ip)

    def more_steps(self, packets, answered):
        """Steps of the call that only this wire sees: {name: ms after the answer}."""
        return {}

    def times(self, packets, ends):
        """(audio both ways, first ICE check, pair nominated) of a call whose pair is ends
        (its two "ip:port"), from its packets: kernel times or None."""
        pair = {tuple(sorted(ends)), tuple(sorted(ends, reverse=True))}
        check = first(packets, "stun-request", pair)
        nominated = None
        for i, p in enumerate(packets):  # the first success answering a USE-CANDIDATE check
            if p[1] == "stun-request" and p[4] and (p[2], p[3]) in pair:
                nominated = first(packets[i:], "stun-success", {(p[3], p[2])})
                break
        return audio_both_ways(packets, ends), check, nominated

    def since(self, start):
        with self.lock:
            return [p for p in self.packets if p[0] >= start]

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()


def parse(ip):
    """(kind, src, dst, detail) of an IPv4 UDP packet that is RTP or STUN, else None."""
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    header = (ip[0] & 0x0F) * 4
    src = socket.inet_ntoa(ip[12:16]) + ":%d" % struct.unpack("!H", ip[header:header + 2])
    dst = socket.inet_ntoa(ip[16:20]) + ":%d" % struct.unpack("!H", ip[header + 2:header + 4])
    kind = classify(ip[header + 8:])
    return None if kind is None else (kind[0], src, dst, kind[1])


def classify(payload):
    """(kind, detail) of a UDP payload that is RTP or STUN, else None; detail: whether a
    binding request has USE-CANDIDATE, an RTP packet's SSRC."""
    if len(payload) >= 20 and struct.unpack("!I", payload[4:8])[0] == STUN_COOKIE:
        kind = struct.unpack("!H", payload[0:2])[0]
        if kind == 0x0001:
            return ("stun-request", b"\x00\x25\x00\x00" in stun_attributes(payload))
        if kind == 0x0101:
            return ("stun-success", None)
        return None
    if len(payload) >= 12 and payload[0] >> 6 == 2 and not 72 <= (payload[1] & 0x7F) <= 76:
        return ("rtp", struct.unpack("!I", payload[8:12])[0])
    return None


def stun_attributes(payload):
    """The attribute headers (type and length, 4 bytes each) of a STUN message, joined."""
    out, at = b"", 20
    while at + 4 <= len(payload):
        length = struct.unpack("!H", payload[at + 2:at + 4])[0]
        out += payload[at:at + 4]
        at += 4 + (length + 3) // 4 * 4
    return out


def first(packets, kind, pair=None, test=None):
    for p in packets:
        if p[1] == kind and (pair is None or (p[2], p[3]) in pair) and (test is None or test(p)):
            return p[0]
    return None


def audio_both_ways(packets, ends=None):
    """The time of the first RTP packet in the later of the two directions between ends
    (a set of two "ip:port"), or between the first RTP flow's two ends."""
    rtp = [p for p in packets if p[1] == "rtp"]
    if not rtp:
        return None
    if ends is None:
        ends = {rtp[0][2], rtp[0][3]}
    a, b = sorted(ends)
    one = first(rtp, "rtp", {(a, b)})
    other = first(rtp, "rtp", {(b, a)})
    return max(one, other) if one is not None and other is not None else None


# ---- hark ----------------------------------------------------------------------------

class CallEvents(threading.Thread):
    """A ctl connection of its own: every `call` event with the time.time() its line came.
    With answer set, an incoming `ringing` is answered on this connection, answer_after
    seconds later (0: at once)."""

    def __init__(self, node, answer=False):
        super().__init__(daemon=True)
        self.node, self.answer, self.answer_after = node, answer, 0.0
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(node.state, "ctl.sock"))
        self.reader = self.sock.makefile("r")
        self.reader.readline()  # the hello
        self.events = []
        self.answered = {}
        self.cond = threading.Condition()
        self.start()

    def run(self):
        for line in self.reader:
            now = time.time()
            event = json.loads(line)
            if event.get("event") != "call":
                continue
            data = event.get("data", event)
            if self.answer and data.get("direction") == "in" and data.get("state") == "ringing":
                if self.answer_after > 0:
                    threading.Timer(self.answer_after, self.send_answer, (data["call_id"],)).start()
                else:
                    self.send_answer(data["call_id"])
            with self.cond:
                self.events.append((now, data))
                self.cond.notify_all()

    def send_answer(self, call_id):
        request = {"id": "a", "command": "answer", "args": {"id": call_id}}
        self.answered[call_id] = time.time()
        self.sock.sendall((json.dumps(request) + "\n").encode())

    def wait(self, call_id, state, timeout=TIMEOUT):
        def found():
            return next(((at, d) for at, d in self.events
                         if d.get("call_id") == call_id and d.get("state") == state), None)
        with self.cond:
            hit = self.cond.wait_for(found, timeout)
        if not hit:
            raise harklab.LabError(f"{self.node.name}: no call {state} within {timeout} s; "
                                   f"log:\n{self.node.log_text()}")
        return hit


def tone_media(name):
    return 'media: { codecs = [ "opus" ]; source = "tone:440"; sink = "null"; };\n'


def hark_lab(hark, work, pairs, media=tone_media, sn_settings=""):
    """The lab, with pairs (caller, callee) of client nodes: alice-N calls bob-N. media:
    a client's media section by its name; sn_settings: more of the SN's supernode
    section (a TURN server)."""
    net = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}"
    nodes = []
    server, login = harklab.start_loopback_login_server(hark, work)
    nodes.append(server)
    plugins = '{ name = "udp"; }, { name = "tcp"; }, { name = "ctl"; }'
    sn_address = f"{net}.41"
    sn = harklab.LoopbackNode(hark, work, "sn",
              'node: { name = "sn"; supernode = true; };\n'
              f'plugins: {{ load = ( {plugins}, {{ name = "gi"; }} ); }};\n'
              f'network: {{ listen = "{sn_address}"; port = 33033; '
              f'public_address = "{sn_address}"; allow_loopback = true; bootstrap = ( ); }};\n'
              'supernode: { min_uptime = 0; max_load = 10000; links = 0; '
              f'{sn_settings} }};\n' + login)
    nodes.append(sn)
    sn.start()
    sn.register_and_login("sn-one")
    sn.wait_log("serving as a super node")
    clients = []
    for name in [f"{who}-{i}" for i in range(pairs) for who in ("alice", "bob")]:
        node = harklab.LoopbackNode(hark, work, name,
                    f'node: {{ name = "{name}"; supernode = false; }};\n'
                    f'plugins: {{ load = ( {plugins}, {{ name = "search-loginsrv"; }}, '
                    '{ name = "opus"; } ); };\n'
                    f'network: {{ allow_loopback = true; bootstrap = ( {{ host = "{sn_address}"; '
                    'port = 33033; transports = [ "udp", "tcp" ]; } ); };\n'
                    + media(name) + login)
        nodes.append(node)
        node.start()
        node.wait_log("joined: attached")
        node.register_and_login(name)
        node.wait("published",
                  lambda n=node: n.call("directory")["publish"].get("published_at"), TIMEOUT)
        clients.append(node)
    return nodes, list(zip(clients[0::2], clients[1::2]))


def hark_call(wire, alice, bob, alice_events, bob_events, ring_s=0.0):
    bob_events.answer_after = ring_s
    start = time.time()
    call_id = alice.call("call", user=bob.name)["id"]
    ringing, _ = alice_events.wait(call_id, "ringing")
    bob_ringing, _ = bob_events.wait(call_id, "ringing")
    alice_connecting, _ = alice_events.wait(call_id, "connecting")
    alice_active, a = alice_events.wait(call_id, "active")
    bob_active, b = bob_events.wait(call_id, "active")
    stats = alice.call("stats", id=call_id)
    ends = {stats["path"]["local"], stats["path"]["remote"]}
    audio = None
    end = time.time() + 5
    while audio is None and time.time() < end:
        audio = wire.times(wire.since(start), ends)[0]
        if audio is None:
            time.sleep(0.01)
    packets = wire.since(start)
    alice.call("hangup", id=call_id)
    bob_events.wait(call_id, "ended")
    alice_events.wait(call_id, "ended")
    answered = bob_events.answered[call_id]
    _, check, nominated_at = wire.times(packets, ends)
    if os.environ.get("BENCH_CALLS_PACKETS"):  # every STUN and the first RTP packets
        shown = [p for p in packets if p[1] != "rtp"] + [p for p in packets if p[1] == "rtp"][:4]
        for p in sorted(shown):
            print(f"  {(p[0] - answered) * 1000:7.1f} ms after the answer: {p[1]} {p[2]} -> "
                  f"{p[3]}{' USE-CANDIDATE' if p[1] == 'stun-request' and p[4] else ''}", file=sys.stderr)
    ms = lambda t, t0: None if t is None or t0 is None else round((t - t0) * 1000, 1)  # noqa
    return {
        "dial_ringing_ms": ms(ringing, start),
        "connect_ms": b.get("connect_ms"),
        "setup_ms": a.get("setup_ms"),
        "dial_audio_ms": ms(audio, start),
        "answer_audio_ms": ms(audio, answered),
        "path": stats["path"]["kind"] + " " + stats["path"]["transport"],
        "ring_s": ring_s,
        "steps": {
            "dial -> ringing at the callee": ms(bob_ringing, start),
            "ringing -> answer (the script)": ms(answered, bob_ringing),
            "answer -> ANSWER at the caller": ms(alice_connecting, answered),
            "answer -> first ICE check": ms(check, answered),
            "answer -> pair nominated": ms(nominated_at, answered),
            "answer -> callee's call active (media)": ms(bob_active, answered),
            "answer -> caller's call active (media)": ms(alice_active, answered),
            "answer -> RTP both ways": ms(audio, answered),
            **wire.more_steps(packets, answered),
        },
    }


def bench_hark(harks, work, wire, calls):
    """calls with each build's `hark` (a lab each, the calls interleaved so that a change
    in the machine's load falls on all alike), each answered at once and again after a
    ring of RING_S (as a person would: what is made while it rings is ready by then),
    spread over pairs that each make one not counted and at most CALLS_PER_PAIR: a callee
    takes 10 INVITEs a minute from one user, and an SN hands a client TURN credentials (or
    its answer that it has none) 6 times a minute; over those the call would be refused,
    or timed with a refusal in it. [(at once, after a ring)] per build."""
    nodes, labs = [], []
    try:
        for i, hark in enumerate(harks):
            lab_dir = os.path.join(work, f"hark-{i}")
            os.makedirs(lab_dir)
            lab_nodes, pairs = hark_lab(hark, lab_dir, max(1, -(-2 * calls // CALLS_PER_PAIR)))
            nodes += lab_nodes
            labs.append([(alice, bob, CallEvents(alice), CallEvents(bob, answer=True))
                         for alice, bob in pairs])
        for pairs in labs:
            for pair in pairs:
                hark_call(wire, *pair)  # warm-up: not counted
        runs = [([], []) for _ in harks]
        for i in range(2 * calls):
            for lab, pairs in enumerate(labs):
                ring_s = RING_S if i % 2 else 0.0
                runs[lab][i % 2].append(hark_call(wire, *pairs[i % len(pairs)], ring_s))
                print(f"bench-calls: {harks[lab]} ring {ring_s} s",
                      json.dumps(runs[lab][i % 2][-1]), file=sys.stderr)
        return runs
    finally:
        for node in reversed(nodes):
            if node.proc is not None:
                node.proc.kill()
                node.proc.wait()


# ---- baresip ---------------------------------------------------------------------------

def baresip_config(directory, port, ctrl_port, answer):
    os.makedirs(directory)
    with open(os.path.join(directory, "config"), "w") as f:
        f.write(f"poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:{port}\n"
                "audio_player\t\talsa,null\naudio_source\t\talsa,null\n"
                "audio_alert\t\talsa,null\n"
                "module_path\t\t/usr/lib/baresip/modules\n"
                "module\t\t\topus.so\nmodule\t\t\talsa.so\n"
                "module\t\t\tsrtp.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\n"
                "module_app\t\tctrl_tcp.so\n"
                f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n"
                "opus_bitrate\t\t24000\nopus_stereo\t\tno\nopus_sprop_stereo\tno\n")
    user = "callee" if answer else "caller"
    with open(os.path.join(directory, "accounts"), "w") as f:
        f.write(f"<sip:{user}@127.0.0.1:{port}>;regint=0;mediaenc=srtp"
                + (";answermode=auto" if answer else "") + "\n")


def free_udp_tcp_port():
    """A port free for both TCP and UDP on 127.0.0.1 (SIP listens on both)."""
    while True:
        port = harklab.free_port()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()


def netstring(text):
    data = text.encode()
    return str(len(data)).encode() + b":" + data + b","


def connect(port, log):
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port), 1)
        except OSError:
            time.sleep(0.02)
    raise harklab.LabError(f"baresip: no ctrl_tcp on {port}; log:\n{open(log).read()[-3000:]}")


def bench_baresip(work, wire, calls):
    baresip = shutil.which("baresip")
    if baresip is None:
        return None
    runs = []
    for i in range(calls + 1):
        d = os.path.join(work, f"baresip-{i}")
        ports = [free_udp_tcp_port() for _ in range(4)]
        baresip_config(os.path.join(d, "callee"), ports[0], ports[1], True)
        baresip_config(os.path.join(d, "caller"), ports[2], ports[3], False)
        procs = []
        try:
            for who, ctrl in (("callee", ports[1]), ("caller", ports[3])):
                log = os.path.join(d, who + ".log")
                procs.append(subprocess.Popen([baresip, "-f", os.path.join(d, who), "-n",
                                               "127.0.0.1"], stdin=subprocess.DEVNULL,
                                              stdout=open(log, "w"), stderr=subprocess.STDOUT))
                ctl = connect(ctrl, log)
            start = time.time()
            ctl.sendall(netstring(json.dumps({"command": "dial", "params":
                                              f"sip:callee@127.0.0.1:{ports[0]}",
                                              "token": "1"})))
            audio, end = None, time.time() + 10
            while audio is None and time.time() < end:
                audio = audio_both_ways(wire.since(start))
                time.sleep(0.01)
            ctl.close()
            if audio is None:
                raise harklab.LabError("baresip: no RTP both ways; log:\n"
                                       + open(os.path.join(d, "caller.log")).read()[-3000:])
            if i > 0:  # the first one warms up: not counted
                runs.append({"dial_audio_ms": round((audio - start) * 1000, 1)})
                print("bench-calls: baresip", json.dumps(runs[-1]), file=sys.stderr)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return runs


def spread(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return {"n": len(values), "p50_ms": round(statistics.median(values), 1),
            "min_ms": values[0], "max_ms": values[-1],
            "p25_ms": harklab.percentile(values, 25), "p75_ms": harklab.percentile(values, 75)}


def summary(both):
    runs, rung = both
    hark = {key: spread([r[key] for r in runs]) for key in
            ("dial_ringing_ms", "connect_ms", "setup_ms", "dial_audio_ms", "answer_audio_ms")}
    hark["rung_connect_ms"] = spread([r["connect_ms"] for r in rung])
    hark["rung_answer_audio_ms"] = spread([r["answer_audio_ms"] for r in rung])
    return {"hark": hark, "paths": sorted({r["path"] for r in runs + rung}),
            "steps": {step: spread([r["steps"][step] for r in runs]) for step in runs[0]["steps"]},
            "rung_steps": {step: spread([r["steps"][step] for r in rung])
                           for step in rung[0]["steps"]},
            "ring_s": RING_S}


def main():
    if os.geteuid() != 0:
        sys.exit("bench-calls: needs root (a network namespace, a packet socket on lo)")
    if os.environ.get("HARK_BENCH_NETNS") != "1":
        os.execvp("unshare", ["unshare", "--net", "env", "HARK_BENCH_NETNS=1", "sh", "-c",
                              'ip link set lo up && exec "$0" "$@"', sys.executable,
                              *sys.argv])
    build, out = sys.argv[1], sys.argv[2]
    calls = option("--calls", int(os.environ.get("BENCH_CALLS", "10")))
    if "--calls" in sys.argv:
        del sys.argv[sys.argv.index("--calls"):sys.argv.index("--calls") + 2]
    hark = os.path.abspath(os.path.join(build, "hark"))
    work = tempfile.mkdtemp(prefix="hark-bench-calls.")
    os.chmod(work, 0o755)
    wire = Wire()
    try:
        against = [os.path.abspath(os.path.join(b, "hark"))
                   for b in sys.argv[sys.argv.index("--against") + 1:]] \
            if "--against" in sys.argv else []
        load_before = open("/proc/loadavg").read().split()[:3]
        every = bench_hark([hark] + against, work, wire, calls)
        baresip = bench_baresip(work, wire, calls)
        result = summary(every[0])
        result["calls"] = calls
        result["load_before"] = load_before
        result["load_after"] = open("/proc/loadavg").read().split()[:3]
        result["runs"], result["rung_runs"] = every[0]
        result["against"] = [dict(summary(runs), build=os.path.dirname(h))
                             for h, runs in zip(against, every[1:])]
        result["baresip"] = (None if baresip is None else
                             {"dial_audio_ms": spread([r["dial_audio_ms"] for r in baresip]),
                              "version": subprocess.run(["baresip", "-h"], capture_output=True,
                                                        text=True).stdout.split("\n")[0]})
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
        for r in [result] + result["against"]:
            print(r.get("build", build), json.dumps({k: v["p50_ms"] for k, v in r["hark"].items()}),
                  json.dumps({k: v["p50_ms"] for k, v in r["steps"].items()}),
                  json.dumps({k: v["p50_ms"] for k, v in r["rung_steps"].items()}), file=sys.stderr)
        if result["baresip"]:
            print("baresip", json.dumps(result["baresip"]["dial_audio_ms"]), file=sys.stderr)
    finally:
        wire.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
