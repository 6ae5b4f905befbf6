#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-presence.py BUILD OUT.json [--changes N] [--kills K] [--frozen F]: presence pushed
to buddies, with real `hark run` processes on loopback and the default settings.

A login server, two linked super nodes (each on its own 127.x.y.z address); alice's
laptop and phone attach to the first, bob's desk and phone (each, in a second case, to
the second SN); alice and bob become buddies (a request bob accepts). Then:
  status    N times (default 20), alternately away and online on alice's laptop: the time
            from sending `status` on its ctl socket to the `presence-changed` event read
            on each of bob's devices' own ctl connection (a thread each, time taken as the
            line arrives).
  killed    K times (default 3): alice's phone is killed (SIGKILL) and the time to the
            `presence-changed` offline on each of bob's devices taken; it is started
            again (its saved login) before the next.
  frozen    F times (default 1): alice's phone is stopped (SIGSTOP: no reset, no FIN, as a
            frozen device or a pulled cable), the SN drops it for silence (network.keepalive
            + 2 × keepalive_timeout: 36 s by default, at most 44 s after its last sign of
            life); the time to offline on bob's devices.
"""
import json
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


class Node(harklab.Node):
    def __init__(self, hark, work, name, config):
        os.environ["HARK_BIN"] = hark
        super().__init__(None, None, work, name, config)


class Events(threading.Thread):
    """A second ctl connection to a node: every presence-changed, with the time it came."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.queue = queue.Queue()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(node.state, "ctl.sock"))
        self.reader = self.sock.makefile("r")
        self.reader.readline()  # the hello
        self.start()

    def run(self):
        for line in self.reader:
            now = time.monotonic()
            event = json.loads(line)
            if event.get("event") == "presence-changed":
                self.queue.put((now, event))

    def wait(self, device, status, timeout=70.0):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise harklab.LabError(f"{self.node.name}: no presence-changed {status} "
                                       f"within {timeout} s")
            try:
                at, event = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("device") == device and event.get("status") == status:
                return at


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def summary(values):
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "max_ms": max(values)}


def run_case(hark, work, net, two_sns, changes, kills, frozen):
    nodes = []
    try:
        server, login = harklab.start_loopback_login_server(hark, work, Node)
        nodes.append(server)
        plugins = 'plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, { name = "ctl"; } ); };\n'

        def sn(name, address, bootstrap):
            node = Node(hark, work, name,
                        f'node: {{ name = "{name}"; supernode = true; }};\n' + plugins
                        + f'network: {{ listen = "{address}"; port = 33033; '
                          f'public_address = "{address}"; allow_loopback = true; '
                          f'bootstrap = ( {bootstrap} ); }};\n'
                        + 'supernode: { min_uptime = 0; max_load = 10000; links = 1; };\n' + login)
            nodes.append(node)
            node.start()
            node.register_and_login(name)
            node.wait_log("serving as a super node")
            return node

        def to(address):
            return (f'{{ host = "{address}"; port = 33033; '
                    'transports = [ "udp", "tcp" ]; }')

        sn1 = sn("sn-a", f"{net}.41", "")
        bob_sn = f"{net}.41"
        if two_sns:
            sn("sn-b", f"{net}.42", to(f"{net}.41"))
            sn1.wait("linked to sn-b",
                     lambda: any(link.get("verified") for link in sn1.call("overlay")["sn_links"]),
                     30)
            bob_sn = f"{net}.42"

        def device(name, user, address, register):
            node = Node(hark, work, name,
                        f'node: {{ name = "{name}"; supernode = false; }};\n' + plugins
                        + f'network: {{ allow_loopback = true; bootstrap = ( {to(address)} ); }};\n'
                        + login)
            nodes.append(node)
            node.start()
            node.wait_log("joined: attached")
            node.register_and_login(user, register=register)
            return node

        laptop = device("alice-laptop", "alice", f"{net}.41", True)
        phone = device("alice-phone", "alice", f"{net}.41", False)
        desk = device("bob-desk", "bob", bob_sn, True)
        bob_phone = device("bob-phone", "bob", bob_sn, False)
        laptop.call("buddy-add", name="bob")
        desk.call("buddy-accept", name="alice")
        for node in (laptop, phone, desk, bob_phone):
            node.call("buddies")
        bobs = [desk, bob_phone]

        def shows(node, count):
            alice = [b for b in node.call("buddies")["buddies"] if b["name"] == "alice"]
            return alice and len(alice[0].get("devices", [])) == count

        for node in bobs:
            node.wait("showing alice's two devices", lambda n=node: shows(n, 2), 30)
        listeners = [Events(node) for node in bobs]
        laptop_id = laptop.call("whoami")["device_id"]
        phone_id = phone.call("whoami")["device_id"]

        status_ms = []
        for i in range(changes):
            status = "away" if i % 2 == 0 else "online"
            start = time.monotonic()
            laptop.call("status", status=status)
            for listener in listeners:
                status_ms.append((listener.wait(laptop_id, status, 10) - start) * 1000)

        def vanish(sig, runs, timeout):
            samples = []
            for _ in range(runs):
                start = time.monotonic()
                os.kill(phone.proc.pid, sig)
                for listener in listeners:
                    samples.append((listener.wait(phone_id, "offline", timeout) - start) * 1000)
                phone.proc.kill()
                phone.proc.wait()
                phone.ctl.close()
                phone.ctl = None
                phone.proc = None
                phone.start(log_mode="a")
                for listener in listeners:
                    listener.wait(phone_id, "online", 30)
            return samples

        killed_ms = vanish(signal.SIGKILL, kills, 60)
        frozen_ms = vanish(signal.SIGSTOP, frozen, 70)
        result = {"two_sns": two_sns, "status": summary(status_ms), "killed": summary(killed_ms)}
        if frozen_ms:
            result["frozen"] = summary(frozen_ms)
        print("presence", json.dumps(result), file=sys.stderr)
        return result
    finally:
        for node in reversed(nodes):
            if node.proc is not None:
                node.proc.kill()
                node.proc.wait()
                node.proc = None
                node.ctl = None


def main():
    build, out = sys.argv[1], sys.argv[2]
    changes, kills, frozen = option("--changes", 20), option("--kills", 3), option("--frozen", 1)
    hark = os.path.abspath(os.path.join(build, "hark"))
    work = tempfile.mkdtemp(prefix="hark-bench-presence.")
    try:
        results = []
        for two_sns in (False, True):
            net = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}"
            case_dir = os.path.join(work, "two" if two_sns else "one")
            os.makedirs(case_dir)
            results.append(run_case(hark, case_dir, net, two_sns, changes, kills, frozen))
        with open(out, "w") as f:
            json.dump({"changes": changes, "kills": kills, "frozen": frozen, "cases": results}, f)
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
