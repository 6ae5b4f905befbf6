#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-conference-lab.py: a conference in the network lab with a member behind a firewall
that lets only TCP to 80 and 443 out (TAP; issue 17).

One lab: alice hosts on c2 behind a full-cone NAT; bob on the public host `stun` and carol
on the public host `login` (UDP-capable, open) and dave on c1 behind the lab's web-only
firewall (`netlab up webonly`: port-restricted NAT, only TCP to 80/443 out). Each SN
relays (calllab.sn_relays; a web-only client reaches its SN's relay through the SN's port
443). Each node sends its own tone (alice 440 Hz, bob 660, carol 880, dave 1100) and writes
what it hears to a WAV. alice runs `conference bob carol dave`, each answers, and once
every roster shows the four connected:
  - dave's leg goes through a relay over TCP: the host's `roster` leg for dave and dave's
    own `stats` of his leg both say relayed, and dave's end says tcp (the relay's other
    side may reach alice over UDP); bob's and carol's legs are not relayed;
  - every participant, the host's own speaker included, hears the three others and not
    itself: in the last 2 s of its WAV each other's tone is above HEARD_LEVEL and its own
    under OWN_LEVEL (as tests/integration/test-conference.c, `/conference/four-tones`:
    the median over 100 ms blocks of the level at the tone, +-3 Hz).
The levels, the legs' paths and the time the suite took are TAP comments. Root only.
"""
import os
import sys
import time
import traceback

import numpy  # python3-numpy: hence /usr/bin/python3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harklab  # noqa: E402
from calllab import (CODECS, JOIN_TIMEOUT, CallLab, labs, labs_lock,  # noqa: E402
                     path_words, remove_work, sn_relays, stop_labs, suite_start)

CALL_TIMEOUT = 60  # the four legs ring, are answered and come up (dave's over TCP)
HEARD_S = 2.0
HEARD_LEVEL = 3000  # a tone of 0.3 of full scale is about 9800 (test-conference.c)
OWN_LEVEL = 1000  # what is left of one's own tone: codec noise
TONES = {"alice": 440, "bob": 660, "carol": 880, "dave": 1100}
HOSTS = {"alice": "c2", "bob": "stun", "carol": "login", "dave": "c1"}
MEMBERS = ("bob", "carol", "dave")


def tone_level(samples, rate, hz):
    """The level of the tone hz in samples (amplitude, full scale 32767): the median over
    100 ms blocks of the Hann-windowed DFT magnitude at hz +-3 Hz, as
    hark_test_wav_tone_level (tests/common/test-wav.c), so that a jitter buffer's phase jump
    in one block does not lower it."""
    block = rate // 10
    window = numpy.hanning(block)
    t = numpy.arange(block) / rate
    levels = []
    for b in range(len(samples) // block):
        x = samples[b * block:(b + 1) * block] * window
        best = max(abs(numpy.dot(x, numpy.exp(-2j * numpy.pi * f * t)))
                   for f in numpy.arange(hz - 3, hz + 4))
        levels.append(2 * best / window.sum())
    return float(numpy.median(levels)) if levels else 0.0


def wav_samples(path):
    """(samples as float64, rate) of a 16-bit PCM WAV's first channel, read while it is
    still written: a data size of 0 (or past the end) takes what is there, as
    hark_test_wav_read does (Python's wave module trusts the header)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise harklab.LabError(f"{path}: no RIFF WAVE header")
    channels = rate = 0
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        body, left = at + 8, len(data) - at - 8
        if kind == b"fmt " and size >= 16:
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            if int.from_bytes(data[body + 14:body + 16], "little") != 16:
                raise harklab.LabError(f"{path}: not 16-bit PCM")
        if kind == b"data":
            if not channels or not rate:
                raise harklab.LabError(f"{path}: data before the format")
            size = left if size == 0 or size > left else size
            size -= size % (2 * channels)
            samples = numpy.frombuffer(data[body:body + size], dtype="<i2")
            return samples.reshape(-1, channels)[:, 0].astype(numpy.float64), rate
        at = body + size + (size & 1)
    raise harklab.LabError(f"{path}: no data chunk")


def heard_seconds(node):
    """How many seconds node's WAV holds now (0 before its header is written)."""
    try:
        samples, rate = wav_samples(os.path.join(node.state, "heard.wav"))
    except (OSError, harklab.LabError):
        return 0.0
    return len(samples) / rate


class ConferenceLab(CallLab):
    """A CallLab with four clients on the hosts of HOSTS, each knowing both SNs."""

    def up(self, turn_port=443, sns=None):
        self.relays = sn_relays(self.lab, self.work, turn_port)
        self.network = harklab.HarkNetwork(self.lab, self.work, sn_plugins=["gi"],
                                           sn_settings=self.relays.sn_settings())
        self.nodes = {user: self.client(HOSTS[user], user, list(harklab.SN_HOSTS))
                      for user in TONES}
        harklab.run_together([(self.join, (node,)) for node in self.nodes.values()])
        alice = self.nodes["alice"]
        for user in MEMBERS:
            alice.wait(f"finding {user}", lambda u=user: alice.call(
                "search", name=u, timeout=30).get("answer") == "found", JOIN_TIMEOUT)

    def client(self, host, user, sns):
        node_dir = os.path.join(self.work, user)
        wav = os.path.join(node_dir, "state", "heard.wav")
        codecs = ", ".join(f'"{c}"' for c in CODECS)
        media = (f'media: {{ codecs = [ {codecs} ]; source = "tone:{TONES[user]}"; '
                 f'sink = "wav:{wav}"; }};\n')
        # As the Table I test: the web ports only after 5 s, so tcp wins where it works.
        return self.network.client(host, user, "join_fallback_delay_ms = 5000;",
                                   plugins=("gi", "search-loginsrv") + CODECS,
                                   search=["gi", "loginsrv"], sns=sns, more=media)


def roster_of(node):
    conferences = node.call("roster").get("conferences") or []
    return conferences[0] if conferences else None


def all_connected(node):
    """node's conference once its roster shows alice hosting and the three connected."""
    conference = roster_of(node)
    if conference is None:
        return None
    states = {entry["user"]: entry["state"] for entry in conference.get("roster", [])}
    want = {"alice": "host", **{user: "connected" for user in MEMBERS}}
    return conference if states == want else None


def ringing_call(node):
    for call in node.call("calls")["calls"]:
        if call["state"] == "ringing":
            return call
    return None


def conference_case(lab, case, comments):
    alice = lab.nodes["alice"]
    made = alice.call("conference", users=" ".join(MEMBERS))
    conference_id = made["conferences"][0]["id"]
    for user in MEMBERS:
        node = lab.nodes[user]
        call = node.wait("ringing", lambda n=node: ringing_call(n), CALL_TIMEOUT)
        node.call("answer", id=call["id"])
    for user, node in lab.nodes.items():
        conference = node.wait("seeing everyone connected", lambda n=node: all_connected(n),
                               CALL_TIMEOUT)
        case.check(conference.get("id") == conference_id,
                   f"{user} sees alice host and bob, carol and dave connected",
                   f"conference {conference.get('id')}, alice's {conference_id}")

    # The legs' paths, as the host sees them and as each member does.
    legs = {leg["user"]: leg for leg in roster_of(alice).get("legs", [])}
    member_stats = {}
    for user in MEMBERS:
        node = lab.nodes[user]
        member_stats[user] = node.call("stats", id=roster_of(node)["call_id"])
        comments.append(f"{user}'s leg: at alice {path_words(legs.get(user, {}))}; "
                        f"at {user} {path_words(member_stats[user])}")
    at_host = (legs.get("dave", {}).get("path") or {})
    at_dave = member_stats["dave"].get("path") or {}
    case.check(at_host.get("kind") == "relayed",
               "the host's roster shows dave's leg relayed", path_words(legs.get("dave", {})))
    case.check(at_dave.get("kind") == "relayed" and at_dave.get("transport") == "tcp",
               "dave's leg is relayed over TCP at his end", path_words(member_stats["dave"]))
    for user in ("bob", "carol"):
        path = member_stats[user].get("path") or {}
        case.check(path.get("kind") not in (None, "relayed") and path.get("transport") == "udp",
                   f"{user}'s leg is direct over UDP", path_words(member_stats[user]))

    # What each hears from now on: HEARD_S seconds and half a second for the jitter
    # buffers to settle, then the last HEARD_S seconds of each WAV.
    start = {user: heard_seconds(node) for user, node in lab.nodes.items()}
    for user, node in lab.nodes.items():
        node.wait(f"{HEARD_S + 0.5:.1f} s more heard",
                  lambda n=node, u=user: heard_seconds(n) >= start[u] + HEARD_S + 0.5, 30)
    for user, node in lab.nodes.items():
        check_hears_others(case, node, user, comments)
    alice.call("end")


def check_hears_others(case, node, user, comments):
    samples, rate = wav_samples(os.path.join(node.state, "heard.wav"))
    part = samples[-int(HEARD_S * rate):]
    levels = {other: tone_level(part, rate, hz) for other, hz in TONES.items()}
    shown = ", ".join(f"{other} {TONES[other]} Hz {level:.0f}" for other, level in levels.items())
    comments.append(f"{user} heard: {shown}")
    for other in TONES:
        if other == user:
            case.check(levels[other] < OWN_LEVEL, f"{user} does not hear itself",
                       f"its own {TONES[other]} Hz at {levels[other]:.0f}")
        else:
            case.check(levels[other] > HEARD_LEVEL, f"{user} hears {other}",
                       f"{other}'s {TONES[other]} Hz at {levels[other]:.0f}")


def main():
    started = suite_start("conf")
    if started is None:
        return 0
    run, work = started
    case = harklab.Case("a web-only member in a four-party conference")
    comments = []
    started = time.monotonic()
    lab = None
    try:
        lab = ConferenceLab(f"{run}-", work, ("webonly", "fullcone"))
        with labs_lock:
            labs.append(lab)
        lab.up()
        conference_case(lab, case, comments)
    except Exception as e:
        case.fail("ran to the end", f"{e}\n{traceback.format_exc()}")
    finally:
        stop_labs()
        remove_work(work)
    comments.append(f"the suite took {time.monotonic() - started:.1f} s")
    return harklab.finish_tap([case], run, comments)


if __name__ == "__main__":
    sys.exit(main())
