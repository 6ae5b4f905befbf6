#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-tablei.py: the paper's Table I setups in the network lab (TAP; issue 5 part 5).

A client node joins the overlay and logs in, through the lab's super nodes, in
  setup 1   the client on a public address
  setup 2   behind a port-restricted NAT
  setup 3   behind a port-restricted NAT and a firewall that lets only TCP out (udpblock)
  web-only  behind a NAT that lets only TCP to 80 and 443 out (webonly)
and in setup 3 once more right after, restarted on the same state directory: that join
must take the way the node remembers (join.json: tcp, UDP unanswered) at once, which its
log says. Each must end attached to an SN, logged in, and known to that SN as its user;
the transport (tcp, or tls443 for web-only) and the login path (direct, or through the SN
for web-only, whose firewall hides the login server's port 8443) are checked too.
Two labs run side by side (setups 1 and 2 in one, setup 3 and web-only in the other), each
with its own login server and SNs; they are taken down however the test ends. Root only.
"""
import json
import os
import shutil
import signal
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402

JOIN_TIMEOUT = 90  # web-only: the direct login attempt times out (15 s) before the tunnel


def read_way(node):
    try:
        with open(os.path.join(node.state, "join.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def join_and_login(network, node, user, register):
    node.start()
    node.register_and_login(user, register)
    return node.wait("attached and logged in",
                     lambda: harklab.attached_and_logged_in(network, node, user), JOIN_TIMEOUT)


def check_joined(case, joined, transport, login_path):
    overlay, state, _ = joined
    sn = overlay["sn"]
    case.check(True, "attached and logged in, and its SN knows it as its user")
    case.check(sn["transport"] == transport and sn["host"] in harklab.SN_HOSTS.values(),
               f"attached to an SN over {transport}",
               f"SN {sn['name']} at {sn['host']} over {sn['transport']}")
    how = "directly" if login_path == "direct" else f"through the {login_path}"
    case.check(state["login"]["path"] == login_path, f"logged in {how}",
               f"login path: {state['login']['path']}")
    return sn


def nat_words(nat):
    """The NAT probe's verdict in a few words: open, udp-blocked, or nat with its behaviour."""
    if nat["verdict"] != "nat":
        return nat["verdict"]
    return f"nat mapping={nat['mapping']} filtering={nat['filtering']}"


def probed(node):
    nat = node.call("nat")
    return nat if nat["verdict"] != "unknown" and not nat["probing"] else None


def client_job(network, host, user, case, transport, login_path, udp_answers, nat, again):
    """One setup: a fresh client on host joins and logs in; with again, setup 3's second
    login follows."""
    # The web ports only after 5 s (default 1 s): on a loaded machine a tcp handshake can
    # outlast 1 s, and tls443 would win where tcp works. Web-only waits for it (its tcp SYNs
    # are dropped, not refused).
    node = network.client(host, user, "join_fallback_delay_ms = 5000;")
    try:
        joined = join_and_login(network, node, user, register=True)
    except harklab.LabError as e:
        case.fail("attached and logged in, and its SN knows it as its user", e)
        return
    sn = check_joined(case, joined, transport, login_path)
    way = read_way(node)
    case.check(way.get("transport") == transport and way.get("udp_answered") == udp_answers,
               f"remembers {transport}, UDP {'answered' if udp_answers else 'unanswered'}",
               f"join.json: {way}")
    if login_path == "super node":
        # The direct request's SYNs are dropped: it is given up when no connection came up,
        # not after the whole request timeout.
        gave_up = node.log_line("cannot be reached directly (no connection within")
        case.check(gave_up is not None,
                   "the direct login is given up for the SN's way once no connection came up",
                   f"log: {node.log_line('cannot be reached directly')}")
    try:
        verdict = nat_words(node.wait("probed", lambda: probed(node), 30))
        case.check(verdict == nat, f"the NAT probe finds {nat}", f"nat: {verdict}")
    except harklab.LabError as e:
        case.fail(f"the NAT probe finds {nat}", e)
    if again is None:
        return
    # The first join had nothing to remember: it waited for UDP before its tcp race.
    again.check(node.log_line("join: no UDP answer last time") is None,
                "the first join had no remembered way to take")
    node.stop()
    try:
        joined = join_and_login(network, node, user, register=False)
    except harklab.LabError as e:
        again.fail("attached and logged in, and its SN knows it as its user", e)
        return
    check_joined(again, joined, transport, login_path)
    started = node.log_line("join: ") or ""
    # The remembered transport to the remembered SN first, and (the probe found UDP blocked)
    # no UDP probes and no waiting for them.
    again.check("first the way that worked: tcp" in started and
                node.log_line("join: the NAT probe found UDP blocked") is not None,
                "the join starts with the remembered way and sends no UDP (the NAT probe's "
                "verdict is kept in nat.json)", f"log: {started.strip()}")


def lab_job(prefix, work, modes, jobs, cases):
    """A lab with c1 and c2 in modes, its SNs, and one client job per (host, args)."""
    lab = None
    network = None
    try:
        lab = harklab.Lab(prefix, *modes)
        labs.append(lab)
        network = harklab.HarkNetwork(lab, work)
        harklab.run_together((client_job, (network, host, *args)) for host, args in jobs)
    except Exception as e:  # the lab or its SNs: every case of this lab fails
        for case in cases:
            if not case.lines:
                case.fail("lab, login server and super nodes up", f"{e}\n{traceback.format_exc()}")
    finally:
        if network is not None:
            network.stop()
        if lab is not None:
            lab.down()


labs = []


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    run = f"hnltab{os.getpid()}"
    work = harklab.work_dir("hark-tablei.")
    s1, s2, s3 = harklab.Case("setup 1 (public)"), harklab.Case("setup 2 (port-restricted NAT)"), \
        harklab.Case("setup 3 (port-restricted NAT, UDP blocked)")
    s3b, web = harklab.Case("setup 3, second login"), harklab.Case("web-only (TCP 80/443 only)")
    plan = [
        (f"{run}a-", ("public", "portrestricted"),
         [("c1", ("alice", s1, "tcp", "direct", True, "open", None)),
          ("c2", ("bob", s2, "tcp", "direct", True,
                  "nat mapping=endpoint-independent filtering=address-and-port-dependent",
                  None))], [s1, s2]),
        (f"{run}b-", ("udpblock", "webonly"),
         [("c1", ("carol", s3, "tcp", "direct", False, "udp-blocked", s3b)),
          ("c2", ("dave", web, "tls443", "super node", False, "udp-blocked", None))],
         [s3, s3b, web]),
    ]
    lab_jobs = []
    try:
        for prefix, modes, jobs, cases in plan:
            lab_work = os.path.join(work, prefix)
            os.makedirs(lab_work)
            lab_jobs.append((lab_job, (prefix, lab_work, modes, jobs, cases)))
        harklab.run_together(lab_jobs)
    finally:
        for lab in labs:
            lab.down()
        shutil.rmtree(work, ignore_errors=True)
    return harklab.finish_tap((s1, s2, s3, s3b, web), run)


if __name__ == "__main__":
    sys.exit(main())
