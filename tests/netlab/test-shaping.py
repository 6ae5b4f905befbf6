#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-shaping.py: `netlab shape` does what it says, measured in a lab (TAP; issue 5 part 6).

A UDP echo and TCP sink (netprobe.py) on sn1; c1 on a public address, c2 behind a
port-restricted NAT. Each shaping is judged by what it does to traffic, within generous
bands (the machine is shared; these are not timing benchmarks):
  delay  100 ms each way on c1 raises the median UDP round trip by about 200 ms; 50 ms on c2
         (behind its NAT) by about 100 ms; `shape c1 off` stops the helper (which exits
         cleanly, letting what it held go) and the round trip falls back
  loss   50% each way: of 200 datagrams sn1 gets about half, and about half of its echoes
         come back
  jitter 0-60 ms each way on c1 (uniform, in order): the round trips of 100 probes spread
         by tens of ms (p90 - p10), with none reordered
  rate   1 Mbit/s: 250 kB over TCP take about 2 s (unshaped: a small fraction of that)
Root only; the delay cases are skipped when the nfq-delay helper was not built.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netprobe.py")
SN1, PORT = harklab.SN_HOSTS["sn1"], 7000


class Tap:
    def __init__(self):
        self.lines = []

    def check(self, ok, description, diagnostics=""):
        self.lines.append(("ok" if ok else "not ok", description, diagnostics))

    def skip(self, description, why):
        self.lines.append(("ok", f"{description} # SKIP {why}", ""))

    def emit(self):
        print(f"1..{len(self.lines)}")
        for n, (verdict, description, diagnostics) in enumerate(self.lines, 1):
            print(f"{verdict} {n} - {description}")
            for d in diagnostics.splitlines():
                print(f"# {d}")
        return 0 if all(v == "ok" for v, _, _ in self.lines) else 1


def probe(lab, host, *args):
    done = subprocess.run(lab.command(host, "python3", PROBE, *args), capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise harklab.LabError(f"netprobe {' '.join(args)} on {host}: {done.stderr.strip()}")
    return done.stdout.strip()


def rtt(lab, host):
    return float(probe(lab, host, "rtt", SN1, str(PORT), "10"))


def helper_pids(lab, host):
    """The nfq-delay processes in host's namespace."""
    pids = subprocess.run(["ip", "netns", "pids", lab.prefix + host], capture_output=True,
                          text=True).stdout.split()
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "nfq-delay":
                    found.append(pid)
        except OSError:
            pass
    return found


def check_delay(tap, lab):
    if not os.path.isfile(os.environ.get("NETLAB_NFQ_DELAY") or "/nonexistent"):
        for what in ("delay 100 ms each way", "delay behind a NAT", "delay off"):
            tap.skip(what, "nfq-delay was not built (libnetfilter-queue-dev)")
        return
    base1, base2 = rtt(lab, "c1"), rtt(lab, "c2")
    lab.netlab("shape", "c1", "delay", "100")
    lab.netlab("shape", "c2", "delay", "50")
    shaped1, shaped2 = rtt(lab, "c1"), rtt(lab, "c2")
    tap.check(190 <= shaped1 - base1 <= 700, "delay 100 ms each way adds about 200 ms to a round trip",
              f"median round trip {base1:.2f} ms unshaped, {shaped1:.2f} ms shaped")
    tap.check(95 <= shaped2 - base2 <= 500, "delay 50 ms each way behind a NAT adds about 100 ms",
              f"median round trip {base2:.2f} ms unshaped, {shaped2:.2f} ms shaped")
    running = helper_pids(lab, "c1")
    lab.netlab("shape", "c1", "off")
    after = rtt(lab, "c1")
    state = f"/run/hark-netlab/{lab.prefix}/delay.c1.out.err"
    try:
        with open(state) as f:
            exit_report = f.read().strip()
    except OSError:
        exit_report = ""
    tap.check(len(running) == 1 and not helper_pids(lab, "c1") and after - base1 < 50 and
              "packets delayed by 100 ms" in exit_report,
              "shape off stops the delay helper, which exits cleanly, and the delay goes",
              f"helper before: {running}, after: {helper_pids(lab, 'c1')}; round trip "
              f"{after:.2f} ms; its exit report: {exit_report or 'none'}")
    lab.netlab("shape", "c2", "off")


def check_jitter(tap, lab):
    if not os.path.isfile(os.environ.get("NETLAB_NFQ_DELAY") or "/nonexistent"):
        tap.skip("jitter 0-60 ms each way", "nfq-delay was not built (libnetfilter-queue-dev)")
        return
    base = probe(lab, "c1", "spread", SN1, str(PORT), "100").split()
    lab.netlab("shape", "c1", "jitter", "60")
    shaped = probe(lab, "c1", "spread", SN1, str(PORT), "100").split()
    lab.netlab("shape", "c1", "off")
    p10, p50, p90 = (float(x) for x in shaped[:3])
    spread_before = float(base[2]) - float(base[0])
    # Two draws of 0..60 ms (one each way), each never below the one ahead of it in the
    # queue: the median rises by 60 ms or so, the spread by tens of ms, never past 120.
    tap.check(p90 - p10 >= 20 and p90 - p10 > spread_before + 15 and 30 <= p50 - float(base[1]) <= 200
              and p90 <= float(base[2]) + 200 and shaped[3] == "0",
              "jitter 0-60 ms each way spreads the round trips, in order",
              f"p10/p50/p90 {base[0]}/{base[1]}/{base[2]} ms unshaped, {p10}/{p50}/{p90} ms shaped; "
              f"reordered {shaped[3]}")


def check_loss(tap, lab):
    lab.netlab("shape", "c1", "loss", "50")
    sent = probe(lab, "c1", "blast", SN1, str(PORT), "200")
    lab.netlab("shape", "c1", "off")
    arrived = int(probe(lab, "c1", "count", SN1, str(PORT)))
    echoed = int(sent.split()[-1])
    tap.check(60 <= arrived <= 140, "loss 50% drops about half of 200 datagrams on the way out",
              f"{arrived} of 200 arrived")
    tap.check(arrived > 0 and 0.25 <= echoed / arrived <= 0.75,
              "loss 50% drops about half of the echoes on the way in",
              f"{echoed} of {arrived} echoes came back")


def check_rate(tap, lab):
    size = "250000"
    free = float(probe(lab, "c1", "send", SN1, str(PORT), size))
    lab.netlab("shape", "c1", "rate", "1mbit")
    shaped = float(probe(lab, "c1", "send", SN1, str(PORT), size))
    lab.netlab("shape", "c1", "off")
    tap.check(1.5 <= shaped <= 5 and free < shaped / 4,
              "rate 1mbit: 250 kB take about 2 s",
              f"{shaped:.2f} s shaped ({2 / shaped:.2f} Mbit/s), {free:.3f} s unshaped")


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    tap = Tap()
    lab = None
    server = None
    try:
        lab = harklab.Lab(f"hnlsh{os.getpid()}-", "public", "portrestricted")
        server = subprocess.Popen(lab.command("sn1", "python3", PROBE, "server", str(PORT)))
        for _ in range(100):  # until the echo answers
            try:
                rtt(lab, "c1")
                break
            except (harklab.LabError, subprocess.TimeoutExpired):
                time.sleep(0.05)
        for check in (check_delay, check_jitter, check_loss, check_rate):
            try:
                check(tap, lab)
            except (harklab.LabError, subprocess.TimeoutExpired, ValueError) as e:
                tap.check(False, f"{check.__name__}: the measurement ran", str(e))
    except harklab.LabError as e:
        tap.check(False, "the lab comes up", str(e))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if lab is not None:
            lab.down()
    return tap.emit()


if __name__ == "__main__":
    sys.exit(main())
