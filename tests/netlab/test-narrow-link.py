#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-narrow-link.py: Opus over a link of 1.5 KB/s each way (TAP; issue 16 point 4).

Two `hark media-test` ends, one per lab host (c1 and c2 on public addresses, UDP, SRTP),
alice on c1 sending a 440 Hz tone and bob on c2 a 1000 Hz one, each writing what it hears
to a WAV. c1's uplink is shaped to 12 kbit/s each way before they start (`netlab shape c1
rate 12kbit`: tbf, burst 1600, latency 500 ms): at 20 ms packets the headers alone are
more than that, so no bitrate fits. Each sender must find the link narrow from the far
end's reports and step down on its own:
  - what each end offers the link (IP bytes, counted by nftables where they leave c1 and
    c2, before the shaper: harklab.ByteCounter) is more than 1,500 bytes/s at first and
    fits within it once settled (5 s windows, waited for within a bound);
  - each end's packet time grew to 60 ms or more and its bitrate fell (the `--json`
    statistics at the end: ptime_ms, encoder_bitrate), FEC off;
  - each end hears the other's tone at its frequency, within 20 Hz (the last second of
    its WAV).
Bytes per second before and after and the time to settle are TAP comments.

Why media-test and not a call: a call's ICE (libnice 0.1.21, Debian 12) gives up a path
whose consent checks (RFC 7675, one every 5 s) go unanswered for 10 s (libnice 0.1.22 has
the RFC's 30 s), and a link that drops 70% of each way's packets until the senders have
stepped down loses both checks of such a window more often than not: the call ends
("the media path stopped working") before its audio fits. The codecs' response is the
same in both; this measures it. Root only; its own lab prefix.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402
from calllab import dominant_frequency, remove_work, suite_start  # noqa: E402

RATE = "12kbit"  # tc's kbit is 1000 bit/s: 1,500 bytes/s
LINK = 1500
SETTLE_TIMEOUT = 90  # reports come about once a second, fewer through a full queue
ENDS = {"alice": ("c1", "198.18.0.51", 440), "bob": ("c2", "198.18.0.52", 1000)}
PORT = 41000


def start_end(lab, work, name, peer, send_key, receive_key):
    host, address, hz = ENDS[name]
    argv = [os.environ.get("HARK_BIN", "hark"), "media-test", "-q", "--json", "--seconds", "0",
            "--codec", "opus", "--local", f"{address}:{PORT}",
            "--remote", f"{ENDS[peer][1]}:{PORT}", "--send-key", send_key,
            "--receive-key", receive_key, "--source", f"tone:{hz}",
            "--sink", f"file:{os.path.join(work, name + '.wav')}"]
    out = open(os.path.join(work, name + ".json"), "w")
    err = open(os.path.join(work, name + ".log"), "w")
    return subprocess.Popen(lab.command(host, *argv), stdout=out, stderr=err)


def offered(counters, seconds):
    """IP bytes/s each end sent over the next `seconds` (a measurement, not a wait)."""
    for c in counters.values():
        c.reset()
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: c.read()["ip_out"] / elapsed for name, c in counters.items()}


def stop_end(proc, work, name):
    """Interrupts an end (it prints its statistics and completes its WAV); its stats."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    with open(os.path.join(work, name + ".json")) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1]) if lines else {}


def narrow_case(lab, work, case, comments):
    lab.netlab("shape", "c1", "rate", RATE)
    counters = {name: harklab.ByteCounter(lab, host) for name, (host, _, _) in ENDS.items()}
    ka, kb = os.urandom(30).hex(), os.urandom(30).hex()
    procs = {}
    try:
        procs["alice"] = start_end(lab, work, "alice", "bob", ka, kb)
        procs["bob"] = start_end(lab, work, "bob", "alice", kb, ka)
        started = time.monotonic()
        before = offered(counters, 2)
        comments.append("first 2 s: alice offers %.0f, bob %.0f IP bytes/s" %
                        (before["alice"], before["bob"]))
        case.check(all(v > LINK for v in before.values()),
                   "at first each end offers more than the link takes",
                   f"{before}")
        windows = []
        while True:
            now = offered(counters, 5)
            windows.append({k: round(v) for k, v in now.items()})
            if all(v <= LINK for v in now.values()):
                break
            if time.monotonic() - started > SETTLE_TIMEOUT:
                break
        settled = time.monotonic() - started
        comments.append(f"settled after {settled:.1f} s (the end of the first 5 s window that "
                        f"fits): alice offers {now['alice']:.0f}, bob {now['bob']:.0f} "
                        "IP bytes/s")
        case.check(all(v <= LINK for v in now.values()),
                   "settled, what each end offers fits 1,500 bytes/s",
                   f"5 s windows: {windows}")
        # Three seconds more audio through the settled link, for the WAVs' last second.
        offered(counters, 3)
    finally:
        stats = {}
        for name, proc in procs.items():
            try:
                stats[name] = stop_end(proc, work, name)
            except (OSError, ValueError, subprocess.TimeoutExpired) as e:
                proc.kill()
                stats[name] = {"error": str(e)}
        for c in counters.values():
            c.remove()
    for name, st in stats.items():
        comments.append(f"{name}: {st.get('ptime_ms')} ms packets at {st.get('encoder_bitrate')} "
                        f"bit/s, fec {st.get('fec')}, far end's loss "
                        f"{st.get('remote_loss_fraction')}, rtt {st.get('rtt_ms')} ms, played "
                        f"{st.get('played_samples', 0) / 48000:.1f} s, concealed "
                        f"{st.get('concealed_samples', 0) / 48000:.1f} s")
        case.check(st.get("ptime_ms", 0) >= 60 and 0 < st.get("encoder_bitrate", 0) < 20000
                   and st.get("fec") is False,
                   f"{name} lengthened its packets and lowered its bitrate, FEC off", f"{st}")
    for listener, speaker in (("bob", "alice"), ("alice", "bob")):
        path = os.path.join(work, listener + ".wav")
        want = ENDS[speaker][2]
        try:
            peak, rms = dominant_frequency(path)
        except (OSError, EOFError, harklab.LabError) as e:
            case.fail(f"{listener} heard {speaker}'s {want} Hz tone", e)
            continue
        comments.append(f"{listener} heard {peak:.1f} Hz at RMS {rms:.0f} in its last second")
        # Within 20 Hz (test-media's tolerance), not calllab's 5: SILK at 6 kbit/s in
        # narrowband codes a pure 1 kHz tone up to 2% off (heard at 1016-1017 Hz in two of
        # three runs; 440 Hz came through exact). Speech on this link: STOI 0.91
        # (docs/benchmarks.md).
        case.check(abs(peak - want) <= 20 and rms > 1000,
                   f"{listener} heard {speaker}'s {want} Hz tone",
                   f"dominant {peak:.1f} Hz at RMS {rms:.0f} in the last second of {path}")


def main():
    started = suite_start("narrow")
    if started is None:
        return 0
    run, work = started
    case = harklab.Case("1.5 KB/s each way")
    comments = []
    t0 = time.monotonic()
    lab = None
    try:
        lab = harklab.Lab(f"{run}a-", "public", "public")
        narrow_case(lab, work, case, comments)
    except Exception as e:  # the lab or an end: the case fails, the lab still goes down
        case.fail("ran to the end", e)
    finally:
        if lab is not None:
            lab.down()
        remove_work(work)
    comments.append(f"the suite took {time.monotonic() - t0:.1f} s")
    return harklab.finish_tap((case,), run, comments)


if __name__ == "__main__":
    sys.exit(main())
