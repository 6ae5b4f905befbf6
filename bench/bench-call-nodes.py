#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-call-nodes.py BUILD WORK [--relay | --conference]: a real call between two `hark run` nodes on
loopback, held up for scripts/bench-media.sh to measure the way it measures `hark
media-test` (mouth to ear, CPU, memory, bytes). Runs where bench-media.sh runs: in its
network namespace with only lo, beside its PulseAudio.

The nodes are bench-calls.py's lab (hark_lab: a login server, one SN, alice-0 and bob-0,
Opus), with the sound server's devices as media: alice (the caller) speaks from
`pulse:caller_mic` and plays into `pulse:discard`; bob (the callee) sends what
`pulse:quiet.monitor` holds (silence) and plays into `pulse:from_callee`, the recording's
right channel. alice calls bob, bob answers on his ctl socket. With --relay, a coturn on
127.0.0.1 is the SN's TURN server (supernode.turn_server, credentials handed out by the
overlay) and once the call is up alice asks for `path relay` (an ICE restart limited to
relayed candidates): the call's media then go alice -> coturn -> bob and back. With
--conference, alice and bob talk through a third node instead (alice-1, its own source
silent, its speaker `null`) that hosts a conference of the two: mouth to ear through a
conference host's mixer (decode, mix-minus, encode again).

Prints one JSON line once the media flow on the path wanted: {"caller": PID, "callee":
PID, "path": "host udp" | "relayed udp", "turn_port": PORT or null, "setup_ms"}; then
waits for its standard input to close, hangs up and stops everything.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "netlab"))
import harklab  # noqa: E402

spec = importlib.util.spec_from_file_location("bench_calls", os.path.join(HERE, "bench-calls.py"))
bench_calls = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_calls)

TURN_SECRET = "bench-media-turn-secret-5c07"
MEDIA = {"alice": ("pulse:caller_mic", "pulse:discard"),
         "bob": ("pulse:quiet.monitor", "pulse:from_callee")}


def media(name):
    if name == "alice-1":  # the conference host
        return 'media: { codecs = [ "opus" ]; source = "silence"; sink = "null"; };\n'
    source, sink = MEDIA[name.split("-")[0]]
    return f'media: {{ codecs = [ "opus" ]; source = "{source}"; sink = "{sink}"; }};\n'


def start_coturn(work):
    """A coturn on 127.0.0.1 that relays between loopback peers: (process, port, the SN's
    settings that vouch for it)."""
    port = harklab.free_port()
    secret = os.path.join(work, "turn-secret")
    with open(secret, "w") as f:
        f.write(TURN_SECRET + "\n")
    os.chmod(secret, 0o600)
    log = open(os.path.join(work, "turnserver.log"), "w")
    proc = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
         "-p", str(port), "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
         "--realm", "hark", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
         "--pidfile", os.path.join(work, "turnserver.pid"),
         "--userdb", os.path.join(work, "turnserver.db"), "--log-file", "stdout"],
        stdout=log, stderr=log)
    return proc, port, (f'turn_server = "127.0.0.1:{port}"; '
                        f'turn_secret_file = "{secret}";')


def stop(nodes):
    for node in reversed(nodes):
        if node.proc is not None:
            node.proc.terminate()
            try:
                node.proc.wait(5)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


def conference(hark, work):
    """alice-0 and bob-0 in a conference alice-1 hosts, held up like the call."""
    nodes, pairs = bench_calls.hark_lab(hark, work, 2, media)
    try:
        (alice, bob), (host, _) = pairs
        answerers = [bench_calls.CallEvents(n, answer=True) for n in (alice, bob)]
        start = time.time()
        host.call("conference", users=f"{alice.name} {bob.name}")

        def connected():
            c = host.call("roster")["conferences"][0]
            return sum(m["state"] == "connected" for m in c["roster"]) == 2 and \
                all(leg.get("state") == "active" for leg in c["legs"]) and len(c["legs"]) == 2
        host.wait("both connected", connected, 30)
        setup_ms = (time.time() - start) * 1000
        print(json.dumps({"caller": alice.proc.pid, "callee": bob.proc.pid,
                          "host": host.proc.pid, "path": "through a conference host",
                          "turn_port": None, "setup_ms": setup_ms}), flush=True)
        sys.stdin.read()  # held until bench-media.sh has measured
        # The host's legs as the call ends (queue depths, underruns, jitter buffers):
        # where the delay through the host sits.
        with open(os.path.join(work, "roster.json"), "w") as f:
            json.dump({"host": host.call("roster"), alice.name: alice.call("stats"),
                       bob.name: bob.call("stats")}, f, indent=1)
        host.call("end")
        for a in answerers:
            a.sock.close()
    finally:
        stop(nodes)


def main():
    build, work = sys.argv[1], sys.argv[2]
    relay = "--relay" in sys.argv
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    hark = os.path.abspath(os.path.join(build, "hark"))
    os.environ["HARK_PLUGIN_PATH"] = os.path.abspath(os.path.join(build, "plugins"))
    coturn, turn_port, sn_settings = None, None, ""
    nodes = []
    try:
        if relay:
            if shutil.which("turnserver") is None:
                sys.exit("bench-call-nodes: --relay needs coturn's turnserver")
            coturn, turn_port, sn_settings = start_coturn(work)
        if "--conference" in sys.argv:
            conference(hark, work)
            return
        nodes, pairs = bench_calls.hark_lab(hark, work, 1, media, sn_settings)
        alice, bob = pairs[0]
        answerer = bench_calls.CallEvents(bob, answer=True)
        call_id = alice.call("call", user=bob.name)["id"]
        answerer.wait(call_id, "active")
        stats = alice.wait("active", lambda: alice.call("stats", id=call_id), 20)
        setup_ms = stats.get("setup_ms")
        if relay:
            alice.call("path", id=call_id, kind="relay")
            for node in (alice, bob):
                node.wait("a relayed path", lambda n=node: (
                    n.call("stats", id=call_id).get("path") or {}).get("kind") == "relayed",
                    30)
        stats = alice.call("stats", id=call_id)
        path = stats["path"]["kind"] + " " + stats["path"]["transport"]
        print(json.dumps({"caller": alice.proc.pid, "callee": bob.proc.pid, "path": path,
                          "turn_port": turn_port, "setup_ms": setup_ms}), flush=True)
        sys.stdin.read()  # held until bench-media.sh has measured
        alice.call("hangup", id=call_id)
        answerer.wait(call_id, "ended")
    finally:
        stop(nodes)
        if coturn is not None:
            coturn.kill()
            coturn.wait()


if __name__ == "__main__":
    main()
