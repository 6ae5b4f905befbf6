#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-relay-failover.py: a relayed call survives the death of the SN whose relay carries
it (TAP; issue 15).

alice on c1 and bob on c2 are both behind symmetric NATs, so their call goes through a
relay; each knows both SNs (alice attaches to sn1, bob to sn2) and each SN vouches for its
own relay (calllab.sn_relays). Once the call is active and audio plays both ways, the SN
whose relay carries the call is killed with its relay (kill -9). The node that was attached
to it must attach to the other SN, get TURN credentials there and restart ICE on that
SN's relay, so that the audio comes back at both ends within 3 s of the kill: the gap at
each end is the time from the kill until its received RTP packet count grows again,
polled every 20 ms, and is printed. After 2 s more, each end's WAV must hold the other's
tone in its last second, and the call's path must go through the other SN's relay. Root
only.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402
from calllab import (RATE, check_heard, lab_job, path_words,  # noqa: E402
                     played_at_least, stop_labs, remove_work, suite_start)

GAP_LIMIT_S = 3.0
RESUME_TIMEOUT_S = 15.0


def received(node, call_id):
    return node.call("stats", id=call_id).get("rtp_received", 0)


def own_relay_carries(lab, node, call_id):
    """node's stats once the call's media goes through the relay of node's SN (node's
    local candidate is on it), else None."""
    stats = node.call("stats", id=call_id)
    sn = node.call("overlay")["sn"]["name"]
    local = (stats.get("path") or {}).get("local") or ""
    return stats if local.startswith(lab.relays.address(sn) + ":") else None


def failover_case(lab, case, side, gaps):
    """side's SN (alice's or bob's) dies with its relay, which carries the call."""
    call_id, _, _ = lab.call_up()
    stats = lab.alice.call("stats", id=call_id)
    case.check((stats.get("path") or {}).get("kind") == "relayed",
               "the call is active on a relayed path", path_words(stats))
    node = getattr(lab, side)
    if own_relay_carries(lab, node, call_id) is None:
        # ICE took the other side's relay: relays at both ends, so that this side's does.
        lab.alice.call("path", id=call_id, kind="relay")
    stats = node.wait(f"the call on {side}'s relay",
                      lambda: own_relay_carries(lab, node, call_id), 20)
    for n in (lab.alice, lab.bob):
        n.wait("1 s of audio played", lambda n=n: played_at_least(n, call_id, 1.0), 15)
    sn = node.call("overlay")["sn"]["name"]
    case.check(True, f"the call goes through {side}'s relay, at {sn}", path_words(stats))
    before = {n.name: received(n, call_id) for n in (lab.alice, lab.bob)}
    lab.network.sns[sn].proc.kill()
    lab.relays.kill(sn)
    killed = time.monotonic()
    lab.network.sns[sn].proc.wait()
    case.check(True, f"{sn} killed with its relay")
    # Packets still in flight when the relay died may arrive in the first few ms: the gap
    # starts once a 100 ms poll shows nothing new.
    stalled = {n.name: None for n in (lab.alice, lab.bob)}
    resumed = {}
    last = dict(before)
    while len(resumed) < 2 and time.monotonic() - killed < RESUME_TIMEOUT_S:
        for node in (lab.alice, lab.bob):
            if node.name in resumed:
                continue
            count = received(node, call_id)
            now = time.monotonic()
            if count == last[node.name] and stalled[node.name] is None:
                stalled[node.name] = now
            elif count > last[node.name] and stalled[node.name] is not None:
                resumed[node.name] = now
            last[node.name] = count
        time.sleep(0.02)
    for node in (lab.alice, lab.bob):
        gap = resumed.get(node.name)
        gaps.append((f"{side}'s SN killed: {node.name}", None if gap is None else gap - killed))
        case.check(gap is not None and gap - killed <= GAP_LIMIT_S,
                   f"{node.name} hears the other again within {GAP_LIMIT_S:.0f} s of the kill",
                   "never within 15 s" if gap is None else
                   f"audio back {gap - killed:.2f} s after the kill")
    after = {n.name: n.call("stats", id=call_id)["played_samples"] for n in (lab.alice, lab.bob)}
    for node in (lab.alice, lab.bob):
        node.wait("2 s more of audio", lambda n=node: n.call("stats", id=call_id)
                  ["played_samples"] >= after[n.name] + 2 * RATE, 15)
    other = next(name for name in lab.network.sns if name != sn)
    stats = node.call("stats", id=call_id)
    ends = ((stats.get("path") or {}).get("local") or "",
            (stats.get("path") or {}).get("remote") or "")
    case.check(node.call("overlay")["sn"]["name"] == other and
               any(end.startswith(lab.relays.address(other) + ":") for end in ends),
               f"{side} is at {other} and the call goes on through {other}'s relay",
               path_words(stats))
    lab.hang_up(call_id, both=True)
    check_heard(case, lab)


def main():
    started = suite_start("fo")
    if started is None:
        return 0
    run, work = started
    cases = {side: harklab.Case(f"the relay of {side}'s SN dies mid-call")
             for side in ("alice", "bob")}
    gaps = []
    started = time.monotonic()
    try:
        jobs = []
        for n, (side, case) in enumerate(cases.items()):
            prefix = f"{run}-{n}-"
            lab_work = os.path.join(work, prefix)
            os.makedirs(lab_work)
            jobs.append((lab_job, (prefix, lab_work, ("symmetric", "symmetric"), 3478,
                                   [(failover_case, case, (side, gaps))])))
        harklab.run_together(jobs)
    finally:
        stop_labs()
        remove_work(work)
    comments = [f"{name}: audio back {gap:.2f} s after the kill" if gap is not None else
                f"{name}: no audio back" for name, gap in sorted(gaps)]
    comments.append(f"the suite took {time.monotonic() - started:.1f} s")
    return harklab.finish_tap(cases.values(), run, comments)


if __name__ == "__main__":
    sys.exit(main())
