#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-calls-lab.py BUILD OUT.json [--calls N]: call set-up time in the network lab's
three setups of the paper (issue 14, "Performance"), dial to audio flowing both ways. Root
only (the lab's namespaces; packet sockets in them).

The labs are tests/netlab/test-calls.py's (its CallLab: coturns on the lab host `stun`
that the SNs vouch for, alice on c1 at sn1, bob on c2 at sn2, each sending a tone), the
three started side by side; then the calls take turns across the setups, so that the
machine's load falls on all three alike: one not counted per setup, then N (default 4)
that bob answers the moment his `ringing` event arrives and N after a ring of 0.5 s, as a
person would. Each call is bench-calls.py's hark_call: the same figures and the same
steps (dial -> ringing, answer -> ANSWER at the caller, -> first ICE check, -> nominated
pair, -> each side active, -> RTP both ways). Only the wire differs: here a packet socket
in c1's and in c2's namespace sees what arrives at each (after the NATs), with TURN's
framing taken off (ChannelData, Send and Data indications, over UDP or TCP), so that
"RTP both ways" is the later of the first RTP packet arriving at alice's host and at
bob's, and the ICE steps count connectivity checks (binding requests with USERNAME) that
arrive at either host, relayed or not; more steps say when checks left the hosts.
BENCH_CALLS_PACKETS=1 prints each call's STUN and first RTP packets (bench-calls.py).
"""
import ctypes
import importlib.util
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETLAB = os.path.join(HERE, "..", "tests", "netlab")
sys.path.insert(0, NETLAB)
import calllab  # noqa: E402
import harklab  # noqa: E402

CLONE_NEWNET = 0x40000000
SETUPS = (("setup 1", ("public", "public"), "host udp"),
          ("setup 2", ("portrestricted", "portrestricted"), "punched udp"),
          ("setup 3", ("udpblock", "udpblock"), "relayed tcp"))
# BENCH_CALLS_SETUPS=3 (or 1,3 ...): only those, a developer's shortcut.
SETUPS = tuple(s for s in SETUPS if s[0][-1] in os.environ.get("BENCH_CALLS_SETUPS", "123"))
AIMS_MS = {"host udp": 300, "punched udp": 300, "relayed tcp": 1000}  # direct: punched too
TURN_PORT = 3478
STEADY = 3  # an SSRC's packets that make it an RTP flow (not a stray overlay datagram)


def load(name, path):
    """A module from a file whose name is not an identifier (bench-calls.py, ...)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_calls = load("bench_calls", os.path.join(HERE, "bench-calls.py"))


def unwrap(payload):
    """(what a TURN message carries, the peer it goes to or comes from): ChannelData (the
    peer as "channel N"), a Send or Data indication (its DATA and XOR-PEER-ADDRESS); else
    (the payload itself, None)."""
    if len(payload) >= 4 and 0x40 <= payload[0] <= 0x7F:
        channel, length = struct.unpack("!HH", payload[0:4])
        return payload[4:4 + length], f"channel {channel:#x}"
    if len(payload) >= 20 and struct.unpack("!I", payload[4:8])[0] == bench_calls.STUN_COOKIE \
            and struct.unpack("!H", payload[0:2])[0] in (0x0016, 0x0017):
        data, peer, at = None, None, 20
        while at + 4 <= len(payload):
            kind, length = struct.unpack("!HH", payload[at:at + 4])
            value = payload[at + 4:at + 4 + length]
            if kind == 0x0013:
                data = value
            elif kind == 0x0012 and length == 8:
                port = struct.unpack("!H", value[2:4])[0] ^ (bench_calls.STUN_COOKIE >> 16)
                address = struct.unpack("!I", value[4:8])[0] ^ bench_calls.STUN_COOKIE
                peer = f"{socket.inet_ntoa(struct.pack('!I', address))}:{port}"
            at += 4 + (length + 3) // 4 * 4
        if data is not None:
            return data, peer or "?"
    return payload, None


class HostWire(bench_calls.Wire):
    """bench-calls.py's Wire on every interface of a lab host: what arrives there and what
    leaves it, over UDP or TCP, TURN's framing taken off; each packet carries after
    bench-calls.py's fields the host's name, whether it left, whether TURN framed it."""

    def __init__(self, namespace, host):
        self.namespace, self.host = namespace, host
        super().__init__()

    def open(self):
        made = []

        def inside():  # setns moves only this thread; the socket stays in the namespace
            fd = os.open(os.path.join("/run/netns", self.namespace), os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {self.namespace}")
                made.append(socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                          socket.htons(bench_calls.ETH_P_ALL)))
            finally:
                os.close(fd)
        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if not made:
            raise harklab.LabError(f"no packet socket in {self.namespace}")
        return made[0]

    OUTGOING = True

    def parse(self, ip, outgoing):
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] not in (6, 17):
            return None
        header = (ip[0] & 0x0F) * 4
        src = socket.inet_ntoa(ip[12:16]) + ":%d" % struct.unpack("!H", ip[header:header + 2])
        dst = socket.inet_ntoa(ip[16:20]) + ":%d" % struct.unpack("!H", ip[header + 2:header + 4])
        if ip[9] == 17:
            messages = [ip[header + 8:]]
        else:
            messages = tcp_messages(ip[header + (ip[header + 12] >> 4) * 4:])
        for message in messages:  # the first that is a check, its answer or RTP
            inner, peer = unwrap(message)
            kind = bench_calls.classify(inner)
            if kind is not None and (kind[0] != "stun-request" or has_username(inner)):
                break  # a binding request without USERNAME is a STUN server's, not a check
        else:
            return None
        if peer is not None:  # shown as the relayed end: "coturn:port (peer)"
            if outgoing:
                dst += f" (to {peer})"
            else:
                src += f" (from {peer})"
        return (kind[0], src, dst, kind[1], self.host, outgoing, peer is not None)


def tcp_messages(payload):
    """The STUN and ChannelData messages a TCP segment to or from a TURN server starts with
    (one segment may carry several)."""
    out, at = [], 0
    while at + 4 <= len(payload):
        length = struct.unpack("!H", payload[at + 2:at + 4])[0]
        if 0x40 <= payload[at] <= 0x7F:
            size = 4 + (length + 3) // 4 * 4
        elif payload[at] < 0x40 and at + 8 <= len(payload) and \
                struct.unpack("!I", payload[at + 4:at + 8])[0] == bench_calls.STUN_COOKIE:
            size = 20 + length
        else:
            break
        out.append(payload[at:at + size])
        at += size
    return out


def has_username(payload):
    attributes = bench_calls.stun_attributes(payload)
    return any(attributes[i:i + 2] == b"\x00\x06" for i in range(0, len(attributes), 4))


class LabWire:
    """A HostWire on c1 and on c2 of a lab; times() is Wire's with the lab's meaning."""

    def __init__(self, prefix):
        self.wires = [HostWire(prefix + host, host) for host in ("c1", "c2")]

    def since(self, start):
        return sorted(p for w in self.wires for p in w.since(start))

    def more_steps(self, packets, answered):
        """Checks as they leave alice's and bob's hosts (most never arrive where UDP is
        blocked): the first on any pair, the first through a TURN server, the first
        success sent back through one (a relayed pair works), and its arrival."""
        def ms(kind, out, turn):
            at = bench_calls.first(packets, kind, test=lambda p: p[6] == out
                                   and (not turn or p[7]))
            return None if at is None else round((at - answered) * 1000, 1)
        return {"answer -> first check sent (any pair)": ms("stun-request", True, False),
                "answer -> first check sent through TURN": ms("stun-request", True, True),
                "answer -> first success sent through TURN": ms("stun-success", True, True),
                "answer -> first success through TURN arrives": ms("stun-success", False, True)}

    def times(self, packets, ends):
        packets = [p for p in packets if not p[6]]  # what arrives
        check = bench_calls.first(packets, "stun-request")
        nominated = None
        for i, p in enumerate(packets):
            if p[1] == "stun-request" and p[4]:  # its answer arrives at the other host
                nominated = bench_calls.first(packets[i:], "stun-success",
                                              test=lambda q, h=p[5]: q[5] != h)
                break
        arrivals = []
        for host in ("c1", "c2"):
            counts, firsts = {}, {}
            for p in packets:
                if p[1] == "rtp" and p[5] == host:
                    counts[p[4]] = counts.get(p[4], 0) + 1
                    firsts.setdefault(p[4], p[0])
            steady = [firsts[s] for s, n in counts.items() if n >= STEADY]
            arrivals.append(min(steady) if steady else None)
        audio = None if None in arrivals else max(arrivals)
        return audio, check, nominated

    def stop(self):
        for w in self.wires:
            w.stop()


def bench(work, calls):
    """{setup: [(at once, after a ring)]}: the labs up side by side, the calls in turns."""
    labs, run = [], f"hnlbc{os.getpid() % 10000}"
    try:
        for i, (name, modes, _) in enumerate(SETUPS):
            lab_work = os.path.join(work, f"setup{i + 1}")
            os.makedirs(lab_work)
            labs.append(calllab.CallLab(f"{run}{'abc'[i]}-", lab_work, modes))
        errors = []

        def up(lab):
            try:
                lab.up(TURN_PORT)
            except Exception as e:  # reported below, with the lab's name
                errors.append(f"{lab.lab.prefix}: {e}")
        harklab.run_together([(up, (lab,)) for lab in labs])
        if errors:
            raise harklab.LabError("; ".join(errors))
        sides = []
        for lab in labs:
            wire = LabWire(lab.lab.prefix)
            sides.append((wire, lab.alice, lab.bob, bench_calls.CallEvents(lab.alice),
                          bench_calls.CallEvents(lab.bob, answer=True)))
        runs = {name: ([], []) for name, _, _ in SETUPS}
        for i in range(2 * calls + 1):
            for (name, _, _), side in zip(SETUPS, sides):
                ring_s = bench_calls.RING_S if i % 2 == 0 else 0.0
                result = bench_calls.hark_call(*side, ring_s)
                print(f"bench-calls-lab: {name} ring {ring_s} s", json.dumps(result),
                      file=sys.stderr)
                if i > 0:  # the first call of each setup warms up: not counted
                    runs[name][0 if ring_s == 0 else 1].append(result)
        for side in sides:
            side[0].stop()
        return runs
    finally:
        for lab in labs:
            lab.stop()


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def main():
    if os.geteuid() != 0:
        sys.exit("bench-calls-lab: needs root (the network lab)")
    if shutil.which("turnserver") is None:
        sys.exit("bench-calls-lab: needs coturn's turnserver")
    build, out = sys.argv[1], sys.argv[2]
    calls = harklab.option("--calls", 4)  # 2N+1 INVITEs: a callee takes 10 a minute
    os.environ["HARK_BIN"] = os.path.abspath(os.path.join(build, "hark"))
    os.environ["HARK_PLUGIN_PATH"] = os.path.abspath(os.path.join(build, "plugins"))
    work = tempfile.mkdtemp(prefix="hark-bench-calls-lab.")
    os.chmod(work, 0o755)
    load_before = load_average()
    started = time.time()
    try:
        runs = bench(work, calls)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    result = {"calls": calls, "ring_s": bench_calls.RING_S, "load_before": load_before,
              "load_after": load_average(), "seconds": round(time.time() - started),
              "setups": []}
    for name, modes, expected in SETUPS:
        now, rung = runs[name]
        summary = bench_calls.summary((now, rung))
        summary.update(name=name, modes=list(modes), expected_path=expected,
                       aim_ms=AIMS_MS[expected], runs=now, rung_runs=rung)
        result["setups"].append(summary)
        print(name, json.dumps({k: v and v["p50_ms"] for k, v in summary["hark"].items()}),
              json.dumps({k: v and v["p50_ms"] for k, v in summary["steps"].items()}),
              file=sys.stderr)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
