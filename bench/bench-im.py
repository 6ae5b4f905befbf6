#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-im.py BUILD OUT.json [--messages N] [--offline-runs R] [--byte-messages K]: instant
messages in the network lab (core/message/messenger*.c). Needs root (tests/netlab/netlab).

Three labs, one after the other, in the paper's setups of the two peers: both on public
addresses (c1 and c2 public), one behind a NAT (the recipient on c2 behind the port-
restricted NAT), both behind NATs (c1 and c2 behind port-restricted NATs). Each lab has a
login server and two SNs on public addresses (tests/netlab/harklab.py), the SNs load gi
and the clients use the default strategies (gi, then the login server), as
conf/hark.conf does; alice (the sender) is on c1 and attached to sn1, bob on c2 and
attached to sn2, so every envelope crosses both SNs (MSG_SEND, MSG_FORWARD, MSG_DELIVER).

  online    N messages alice -> bob, both online, one at a time: from reading the answer
            to `msg` on alice's ctl socket to reading the `message` event on bob's (each
            line is timed as a reader thread gets it; both nodes are on this machine, one
            clock; a `message` line can be read a little before the answer when the
            threads are scheduled late, so the min may be below 0). Also from writing `msg`
            to the `message` event, the `msg` command's own time, and the time until
            alice's `message-state` delivered (bob's end-to-end receipt). Messages are
            paced to at most PACE_PER_S a second, under the SNs' and the recipient's
            per-sender rate (20 a second), so that no 429 and retry is measured; WARM_UP
            messages first (the first one asks the login server for the devices: reported).
  offline   R runs: bob stopped, alice sends (the login server holds it: alice's `messages`
            counter `held` moves), alice stopped; bob started on his state directory (his
            saved certificate logs him in): from spawning `hark run` to the `message` event
            (read on the node's first ctl connection, so nothing is missed), and the log
            times of "logged in" and "joined: attached" for what the time is made of.
  bytes     (first lab only) per text length L in BYTE_LENGTHS, K messages: the envelope
            (`msg` answers `bytes`) and the IP bytes through the sender's interface (c1)
            both ways from sending `msg` until every recipient device's receipt is back
            (harklab.ByteCounter; median of the K messages, so a lookup that falls into one
            message does not count for all). Two cases: dave on c1 writes to erin, who has
            1 device, and has no other device; frank on c1 writes to grace, who has 2
            devices, and has another device himself: 3 devices, all on SNs the directory
            lists them at (BYTE_NODES).
  other SN  (first lab only) henry on c1 (sn1) writes to erin; when does the copy reach
            henry's other device on sn2, which the directory does not list (the SN answers
            from its own store)? It is held at the login server and fetched on the
            device's 30 s beat: one message, up to 60 s.
A node of the lab that dies (the login server, an SN) is reported with its log.
BENCH_IM_HARK runs another program in hark's place (a wrapper running it under gdb).
"""
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "netlab"))
import harklab  # noqa: E402

LABS = (
    ("both-public", ("public", "public")),
    ("one-nat", ("public", "portrestricted")),
    ("both-nat", ("portrestricted", "portrestricted")),
)
PACE_PER_S = 12
WARM_UP = 3
BYTE_LENGTHS = (1, 100, 1000, 8000)
TIMEOUT = 30
# (node name, host, SN): erin has one device; grace two, frank two (the sender's other
# device on the same SN; on another one: measure_other_sn), henry
# two on different SNs.
BYTE_NODES = (("dave", "c1", "sn1"), ("erin", "c2", "sn2"), ("frank-1", "c1", "sn1"),
              ("frank-2", "c2", "sn1"), ("grace-1", "c2", "sn2"), ("grace-2", "c2", "sn2"),
              ("henry-1", "c1", "sn1"), ("henry-2", "c2", "sn2"))
MESSENGER_FETCH_S = 30  # core/message/messenger-private.h: held messages fetched this often
TEXT = "a message of about the length people type"


def spread(values):
    return {"n": len(values), "p50_ms": harklab.percentile(values, 50),
            "p99_ms": harklab.percentile(values, 99), "max_ms": max(values),
            "min_ms": min(values)}


class EventTap:
    """The `message` and `message-state` events of a node, each with the time.time() at
    which its line was read, from a ctl connection of its own (or the node's first one)."""

    def __init__(self, node, sock=None, reader=None):
        self.name = node.name
        if sock is None:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(os.path.join(node.state, "ctl.sock"))
            reader = sock.makefile("r")
            reader.readline()  # the hello
        self.sock, self.reader = sock, reader
        self.messages = {}  # message_id -> (time, event)
        self.states = {}    # (message_id, device, state) -> time
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            for line in self.reader:
                now = time.time()
                event = json.loads(line)
                with self.cond:
                    if event.get("event") == "message":
                        self.messages.setdefault(event["message_id"], (now, event))
                    elif event.get("event") == "message-state":
                        self.states.setdefault(
                            (event["message_id"], event["device"], event["state"]), now)
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass

    def wait(self, what, found, timeout=TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(found, timeout):
                raise harklab.LabError(f"{self.name}: no {what} within {timeout} s")
            return found()

    def message(self, message_id, timeout=TIMEOUT):
        """When the message was shown here."""
        return self.wait(f"message {message_id}",
                         lambda: (self.messages.get(message_id) or (None,))[0], timeout)

    def state(self, message_id, device, state, timeout=TIMEOUT):
        return self.wait(f"{state} of {message_id} at {device[:12]}",
                         lambda: self.states.get((message_id, device, state)), timeout)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def start_tapped(node):
    """Starts node and keeps its first ctl connection (open before anything happens) for
    an EventTap; the node gets a new one for its commands."""
    node.start()
    tap = EventTap(node, node.ctl, node.reader)
    node.ctl = socket.socket(socket.AF_UNIX)
    node.ctl.connect(os.path.join(node.state, "ctl.sock"))
    node.reader = node.ctl.makefile("r")
    node.reader.readline()
    return tap


def device_of(node):
    """The device id: its key's fingerprint."""
    return node.call("state")["identity"]["fingerprint"]


class ImLab:
    """One lab: the network, alice on c1 (sn1), bob on c2 (sn2), and for the bytes the
    other users."""

    def __init__(self, prefix, work, modes):
        self.lab = harklab.Lab(prefix, *modes)
        self.network = None
        self.taps = []
        # The default strategies (conf/hark.conf): gi among the SNs, then the login server.
        lists = {label: (search, plugins)
                 for label, search, plugins in harklab.search_strategy_lists()}
        if "gi" not in lists:
            raise harklab.LabError(f"bench-im needs the gi plugin ({harklab.plugin_dir()})")
        self.search, self.plugins = lists["gi"]
        try:
            # The lookup limits raised, so that polling for a record is not refused.
            self.network = harklab.HarkNetwork(
                self.lab, work, sn_plugins=["gi"],
                sn_directory=harklab.directory_section(None, "lookups_per_minute = 100000;"),
                login_settings="lookups_per_minute = 1000000;")
        except Exception:
            self.stop()
            raise

    def client(self, host, name, sn=None):
        """A client on host attached to sn (default: sn1 from c1, sn2 from c2)."""
        sn = sn or ("sn1" if host == "c1" else "sn2")
        node = self.network.client(host, name, plugins=self.plugins, search=self.search,
                                   sns=[sn])
        node.sn = sn
        return node

    def join(self, node, user, register):
        node.start()
        node.wait("attached", lambda: node.call("overlay")["state"] == "attached", TIMEOUT)
        node.register_and_login(user, register=register)
        self.ready(node, user)

    def join_all(self, joins):
        """(node, user, register) each joined at once; the first error raised."""
        errors = []

        def join(node, user, register):
            try:
                self.join(node, user, register)
            except Exception as e:  # noqa: BLE001 (handed to the caller)
                errors.append(e)
        harklab.run_together((join, j) for j in joins)
        if errors:
            raise errors[0]

    def ready(self, node, user):
        node.wait("attached and logged in",
                  lambda: harklab.attached_and_logged_in(self.network, node, user), TIMEOUT)
        node.wait("published", lambda: node.call("status").get("published_at") is not None,
                  TIMEOUT)

    def found(self, searcher, user, node):
        """Until searcher's directory finds node (of user) online at its SN."""
        searcher.wait(f"finding {user}", lambda: any(
            d.get("device") == node.device and
            d.get("sn", "").rsplit(":", 1)[0] == harklab.SN_HOSTS[node.sn]
            for d in (searcher.call("search", name=user).get("devices") or [])), TIMEOUT)

    def tap(self, node):
        tap = EventTap(node)
        self.taps.append(tap)
        return tap

    def stop(self):
        for tap in self.taps:
            tap.close()
        if self.network is not None:
            # A node that died on its own is news: its log says why.
            for node in self.network.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    print(f"bench-im: {node.name} exited ({node.proc.returncode}); its log:\n"
                          f"{node.log_text()}", file=sys.stderr)
            self.network.stop()
        self.lab.down()


def paced(started):
    """Waits out the rest of the pace's interval since started (the rate, not a sync)."""
    rest = 1.0 / PACE_PER_S - (time.time() - started)
    if rest > 0:
        time.sleep(rest)


def send(sender, to, text):
    started = time.time()
    answer = sender.call("msg", to=to, text=text)
    return started, time.time(), answer


def measure_online(lab, alice, bob, n):
    a_tap, b_tap = lab.tap(alice), lab.tap(bob)
    delivery, command, receipt, whole, first = [], [], [], [], None
    for i in range(WARM_UP + n):
        started, answered, answer = send(alice, "bob", f"{TEXT} ({i})")
        shown = b_tap.message(answer["id"])
        delivered = a_tap.state(answer["id"], bob.device, "delivered")
        if i == 0:
            first = {"command_ms": (answered - started) * 1000,
                     "delivery_ms": (shown - answered) * 1000}
        if i >= WARM_UP:
            command.append((answered - started) * 1000)
            delivery.append((shown - answered) * 1000)
            whole.append((shown - started) * 1000)
            receipt.append((delivered - answered) * 1000)
        paced(started)
    counters = alice.call("messages")
    return {"delivery": spread(delivery), "command": spread(command),
            "receipt": spread(receipt), "whole": spread(whole), "first": first,
            "delivery_ms": delivery, "command_ms": command,
            "transport_alice": alice.call("overlay")["sn"]["transport"],
            "transport_bob": bob.call("overlay")["sn"]["transport"],
            "sender_counters": counters.get("device")}


def held_count(node):
    return node.call("messages")["device"]["held"]


def log_after(node, text, since):
    """The time of node's first log line with text (its log is new at each start)."""
    line = node.log_line(text)
    if line is None:
        return None
    return harklab.log_time(line, datetime.date.fromtimestamp(since)) - since


def measure_offline(lab, alice, bob, runs):
    samples = []
    for run in range(runs):
        bob.stop()
        held = held_count(alice)
        _, _, answer = send(alice, "bob", f"{TEXT} (held {run})")
        alice.wait("holding it", lambda: held_count(alice) > held, TIMEOUT)
        alice.stop()
        tap = start_tapped(bob)
        try:
            shown = tap.message(answer["id"])
        finally:
            tap.close()
        spawned = bob.spawned
        logged_in = log_after(bob, "logged in", spawned)
        attached = log_after(bob, "joined: attached", spawned)
        samples.append({"shown_ms": (shown - spawned) * 1000,
                        "logged_in_ms": logged_in * 1000 if logged_in is not None else None,
                        "attached_ms": attached * 1000 if attached is not None else None})
        print("offline", run, json.dumps(samples[-1]), file=sys.stderr)
        alice.start()
        lab.ready(alice, "alice")
    shown = [s["shown_ms"] for s in samples]
    return {"runs": runs, "median_ms": statistics.median(shown), "max_ms": max(shown),
            "min_ms": min(shown), "samples": samples}


def measure_bytes(lab, sender, recipients, user, k):
    """Per text length: envelope bytes and the sender's interface bytes per message
    (median of k), until every recipient device's receipt is back."""
    counter = harklab.ByteCounter(lab.lab, sender.host)
    counter.reset()
    s_tap = lab.tap(sender)
    taps = [(node, lab.tap(node)) for node in recipients]
    rows = []
    try:
        for length in BYTE_LENGTHS:
            out, into, envelope = [], [], None
            for i in range(k + 1):  # the first one warms up (the devices, the lookups)
                text = ("x" * length)[:length - 1] + str(i % 10) if length > 1 else str(i % 10)
                before = counter.read()
                started, _, answer = send(sender, user, text)
                for node, tap in taps:
                    tap.message(answer["id"])
                    s_tap.state(answer["id"], node.device, "delivered")
                after = counter.read()
                envelope = answer["bytes"]
                if answer["devices"] != len(taps):
                    raise harklab.LabError(f"sealed for {answer['devices']} devices, "
                                           f"not {len(taps)}")
                if i > 0:
                    out.append(after["ip_out"] - before["ip_out"])
                    into.append(after["ip_in"] - before["ip_in"])
                paced(started)
            rows.append({"text_bytes": length, "envelope_bytes": envelope,
                         "devices": len(taps), "ip_out": statistics.median(out),
                         "ip_in": statistics.median(into), "ip_out_max": max(out)})
            print("bytes", json.dumps(rows[-1]), file=sys.stderr)
    finally:
        counter.remove()
    return rows


def measure_other_sn(lab, sender, other, recipient):
    """One message from sender (on sn1) to recipient: when its copy is shown on the
    sender's other device on sn2, and whether it went through the login server."""
    s_tap, o_tap, r_tap = lab.tap(sender), lab.tap(other), lab.tap(recipient)
    held = held_count(sender)
    _, answered, answer = send(sender, recipient.name, TEXT)
    shown = r_tap.message(answer["id"])
    fetched = other.call("messages")["device"]["fetched"]
    try:
        copy_ms = (o_tap.message(answer["id"], timeout=2 * MESSENGER_FETCH_S) - answered) * 1000
    except harklab.LabError as e:  # reported as not shown within the time
        print(f"{e}; log of {other.name}:\n{other.log_text()}", file=sys.stderr)
        copy_ms = None
    return {"recipient_ms": (shown - answered) * 1000, "copy_ms": copy_ms,
            "held": held_count(sender) - held, "devices": answer["devices"],
            "other_fetched": other.call("messages")["device"]["fetched"] - fetched,
            "timeout_s": 2 * MESSENGER_FETCH_S}


def measure_lab(key, prefix, work, modes, args, results):
    lab = ImLab(prefix, work, modes)
    try:
        alice, bob = lab.client("c1", "alice"), lab.client("c2", "bob")
        pairs = [(alice, "alice", True), (bob, "bob", True)]
        byte_nodes = {}
        if args["bytes"]:
            byte_nodes = {name: lab.client(host, name, sn) for name, host, sn in BYTE_NODES}
            pairs += [(node, name.split("-")[0], True) for name, node in byte_nodes.items()
                      if not name.endswith("-2")]
        lab.join_all(pairs)
        if args["bytes"]:  # the second devices, once their users exist
            lab.join_all([(node, name.split("-")[0], False)
                          for name, node in byte_nodes.items() if name.endswith("-2")])
        for node in [alice, bob, *byte_nodes.values()]:
            node.device = device_of(node)
        lab.found(alice, "bob", bob)
        case = {"modes": list(modes)}
        case["online"] = measure_online(lab, alice, bob, args["messages"])
        print(key, "online", json.dumps({k: v for k, v in case["online"].items()
                                         if not k.endswith("_ms")}), file=sys.stderr)
        if args["bytes"]:
            nodes = byte_nodes
            lab.found(nodes["dave"], "erin", nodes["erin"])
            for n in ("grace-1", "grace-2"):
                lab.found(nodes["frank-1"], "grace", nodes[n])
            lab.found(nodes["frank-1"], "frank", nodes["frank-2"])
            case["bytes"] = {
                "one-device": measure_bytes(lab, nodes["dave"], [nodes["erin"]], "erin",
                                            args["byte_messages"]),
                "two-devices": measure_bytes(
                    lab, nodes["frank-1"], [nodes[n] for n in ("grace-1", "grace-2", "frank-2")],
                    "grace", args["byte_messages"]),
            }
            lab.found(nodes["henry-1"], "erin", nodes["erin"])
            case["own-device-other-sn"] = measure_other_sn(lab, nodes["henry-1"], nodes["henry-2"],
                                                           nodes["erin"])
            print("own device on the other SN", json.dumps(case["own-device-other-sn"]),
                  file=sys.stderr)
        case["offline"] = measure_offline(lab, alice, bob, args["offline_runs"])
        print(key, "offline", json.dumps({k: v for k, v in case["offline"].items()
                                          if k != "samples"}), file=sys.stderr)
        results[key] = case
    finally:
        lab.stop()


def main():
    if os.geteuid() != 0:
        sys.exit("bench-im: needs root (network namespaces)")
    build, out = sys.argv[1], sys.argv[2]
    args = {"messages": harklab.option("--messages", 200),
            "offline_runs": harklab.option("--offline-runs", 5),
            "byte_messages": harklab.option("--byte-messages", 5)}
    os.environ["HARK_BIN"] = (os.environ.get("BENCH_IM_HARK") or
                              os.path.abspath(os.path.join(build, "hark")))
    os.environ["HARK_PLUGIN_PATH"] = os.path.abspath(os.path.join(build, "plugins"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    # The reader threads time their lines: a thread that waits for the interpreter lock
    # would read late by up to the switch interval (5 ms by default).
    sys.setswitchinterval(0.0002)
    work = harklab.work_dir("hark-bench-im.")
    run = f"hnlbi{os.getpid()}"
    results = {}
    started = time.time()
    load_before = os.getloadavg()[0]
    try:
        for n, (key, modes) in enumerate(LABS):
            lab_work = os.path.join(work, key)
            os.makedirs(lab_work)
            measure_lab(key, f"{run}{'abc'[n]}-", lab_work, modes, dict(args, bytes=n == 0),
                        results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(out, "w") as f:
        json.dump({**args, "pace_per_s": PACE_PER_S, "cases": results,
                   "seconds": time.time() - started, "cores": os.cpu_count(),
                   "load_before": load_before, "load_after": os.getloadavg()[0]}, f, indent=2)


if __name__ == "__main__":
    main()
