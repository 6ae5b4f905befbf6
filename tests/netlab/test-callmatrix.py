#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-callmatrix.py: a call across every pair of NAT behaviours (TAP; issue 15).

alice on c1 calls bob on c2 behind each of six behaviours of the network lab (public,
fullcone, restricted, portrestricted, symmetric, udpblock): all 36 pairs, each in a lab
of its own with the SNs' relays (calllab.sn_relays). Each call must carry both tones
(each end's WAV has the other's as its dominant frequency) and take the path the two
behaviours call for:
  direct UDP     both public: host; else punched (host or reflexive candidates): any pair
                 with a public or full-cone side, every pair of endpoint-independent
                 mappings, a restricted cone against a symmetric NAT
  relayed UDP    a symmetric NAT against a port-restricted cone or another symmetric NAT
                 (its mapping for the peer is new, and the peer lets in only what it sent to)
  TCP            a udpblock side: directly (ICE-TCP: punched, the connection leaves through
                 the udpblock side's NAT) to a public peer, which takes the connection; else
                 through a relay reached over TCP (the routers' TCP is port-restricted, so
                 no passive TCP candidate behind a NAT can be reached)
A cell's path is the call's as its two ends report it (`stats`' path): relayed when either
end's pair has a relayed candidate, punched when either has a reflexive one, TCP when
either end's transport is TCP (the other end of a relay reached over TCP may reach the
relay over UDP). The 6 x 6 matrix of paths is printed as TAP comments, with the set-up
times (measured, not asserted: speed is the benchmarks' business, bench/bench-calls-lab.py;
docs/protocol.md, "Calls: media path (ICE)", Limits, for two UDP-blocked ends). The labs run side by side, CALLMATRIX_JOBS at a time (default 6). Root only.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402
from calllab import (call_with_audio, lab_job, median, path_words,  # noqa: E402
                     stop_labs, remove_work, suite_start)

MODES = ("public", "fullcone", "restricted", "portrestricted", "symmetric", "udpblock")


def expected(caller, callee):
    """(kind, transport) of the path a call between the two behaviours must take."""
    pair = {caller, callee}
    if "udpblock" in pair:
        other = (pair - {"udpblock"}) or {"udpblock"}
        # Behind its NAT, the udpblock side's end of the connection shows as reflexive.
        return ("punched", "tcp") if other == {"public"} else ("relayed", "tcp")
    if pair == {"public"}:
        return ("host", "udp")
    if "symmetric" in pair and (pair - {"symmetric"}) <= {"portrestricted"}:
        return ("relayed", "udp")
    return ("punched", "udp")


def cell_path(stats):
    """(kind, transport) of the call from its two ends' stats."""
    paths = [s.get("path") or {} for s in stats.values()]
    kinds = {p.get("kind") for p in paths}
    kind = next((k for k in ("relayed", "punched", "host") if k in kinds), None)
    transport = "tcp" if any(p.get("transport") == "tcp" for p in paths) else \
        "udp" if all(p.get("transport") == "udp" for p in paths) else None
    return kind, transport


def matrix_case(lab, case, caller, callee, found, timings):
    stats = call_with_audio(lab, case, timings)
    kind, transport = cell_path(stats)
    want = expected(caller, callee)
    found[(caller, callee)] = (kind, transport)
    case.check((kind, transport) == want, f"the path is {want[0]} over {want[1]}",
               "; ".join(f"{name}: {path_words(s)}" for name, s in stats.items()))


LABELS = {"host": "host", "punched": "punch", "relayed": "relay"}


def label(path):
    kind, transport = path
    return f"{LABELS.get(kind, '?')}/{transport or '?'}"


def grid(title, texts):
    """Lines of a 6 x 6 table: rows the caller's behaviour, columns the callee's."""
    width = max(len(t) for t in list(texts.values()) + list(MODES)) + 2
    lines = [title.ljust(16) + "".join(m.ljust(width) for m in MODES).rstrip()]
    for caller in MODES:
        lines.append(caller.ljust(16) + "".join(texts[(caller, callee)].ljust(width)
                                                for callee in MODES).rstrip())
    return lines


def matrix_lines(found, timings):
    """The matrix of paths (a cell's path, with what it should have been after a '!' when it
    is not that), then the matrix of set-up times (setup_ms, dial to media)."""
    paths, setups = {}, {}
    setup_of = {name: setup for name, setup, _ in timings}
    for caller in MODES:
        for callee in MODES:
            want, got = expected(caller, callee), found.get((caller, callee))
            text = "-" if got is None else label(got)
            paths[(caller, callee)] = text if got == want else f"{text}!{label(want)}"
            setup = setup_of.get(f"{caller} calls {callee}")
            setups[(caller, callee)] = "-" if setup is None else str(setup)
    return grid("caller \\ callee", paths) + grid("setup_ms", setups)


def worker(queue, lock):
    while True:
        with lock:
            if not queue:
                return
            job = queue.pop(0)
        lab_job(*job)


def main():
    started = suite_start("mx")
    if started is None:
        return 0
    run, work = started
    # Pairs named on the command line ("symmetric,portrestricted") run alone: a shortcut.
    only = {tuple(arg.split(",")) for arg in sys.argv[1:]}
    pairs = [(a, b) for a in MODES for b in MODES if not only or (a, b) in only]
    found, timings, cases, queue = {}, [], [], []
    for n, (caller, callee) in enumerate(pairs):
        case = harklab.Case(f"{caller} calls {callee}")
        cases.append(case)
        prefix = f"{run}-{n}-"
        lab_work = os.path.join(work, prefix)
        os.makedirs(lab_work)
        queue.append((prefix, lab_work, (caller, callee), 3478,
                      [(matrix_case, case, (caller, callee, found, timings))]))
    started = time.monotonic()
    lock = threading.Lock()
    try:
        jobs = int(os.environ.get("CALLMATRIX_JOBS", "6"))
        harklab.run_together([(worker, (queue, lock))] * min(jobs, len(queue)))
    finally:
        stop_labs()
        remove_work(work)
    comments = matrix_lines(found, timings)
    by_kind = {}
    for name, setup, _ in timings:
        caller, callee = name.split(" calls ")
        by_kind.setdefault(label(found.get((caller, callee), (None, None))), []).append(setup)
    for kind, values in sorted(by_kind.items()):
        comments.append(f"{kind}: setup_ms (dial to media) median {median(values)} of "
                        f"{len(values)}: {sorted(v for v in values if v is not None)}")
    comments.append(f"the suite took {time.monotonic() - started:.1f} s")
    return harklab.finish_tap(cases, run, comments)


if __name__ == "__main__":
    sys.exit(main())
