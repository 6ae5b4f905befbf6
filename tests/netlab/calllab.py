# SPDX-License-Identifier: LGPL-2.1-or-later
"""calllab.py: calls in the network lab, the pieces test-calls.py and test-callmatrix.py
share (issues 14 and 15).

A CallLab is one netlab lab with the login server, two SNs each vouching for a relay, and
two clients (alice, bob) that send a tone and write what they hear to a WAV. What serves
as "the SN's relay" is decided in one place, sn_relays(): each SN's own TURN server
(core/relay), for which the SN gives its clients time-limited REST credentials (the `turn`
ctl answer); in the web-only lab, whose SNs take TLS on 443, the same relay reached over
TCP on 443 (the SN's turn_web_port), where the SN hands TURN to it.
"""
import os
import shutil
import signal
import sys
import threading
import traceback
import wave

import numpy  # python3-numpy: hence /usr/bin/python3, not the first python3 in PATH

import harklab

RATE = 48000  # played_samples count samples at 48 kHz
JOIN_TIMEOUT = 90  # web-only: the direct login attempt is given up before the tunnel
CALL_TIMEOUT = 30  # ringing, then active (ICE has 20 s after the answer)
TONES = {"alice": 440, "bob": 1000}
CODECS = ("opus", "g711")


class SnRelays:
    """Each SN's own TURN server (core/relay) on the SN's address: the SN hands out
    credentials for itself. relay_allow opens the lab's public addresses (198.18.0.0/15, a
    benchmark range the relay refuses by default); the private 10/8 stays refused, as on a
    public SN."""

    def __init__(self, port):
        self.port = port

    def sn_settings(self):
        return {sn: f'relay = true; relay_port = {self.port}; '
                    'relay_allow = [ "198.18.0.0/15" ];' for sn in harklab.SN_HOSTS}

    def address(self, sn):
        return harklab.SN_HOSTS[sn]

    def kill(self, sn):
        """Nothing more to do: the relay is the SN's, it died with it."""

    def stop(self):
        """Nothing to do: the relays stop with their SNs."""


def sn_relays(lab, work, port=3478):
    """The switch for "the SN's relay" of every lab test: started for lab's sn1 and sn2;
    an object with sn_settings() (their supernode settings by SN name, as HarkNetwork
    takes them), address(sn) (the relay's IP address), kill(sn) (called with the SN's own
    kill: the relay goes with its SN) and stop(). port: where a client reaches the relay
    over TCP (3478; 443 in the web-only lab). The SNs relay themselves (SnRelays): on 443
    the relay keeps its own port 3478, and a web-only client reaches it through the SN's
    tls443 port (its JOIN_OK's turn_web_port), where the SN hands TURN to its relay."""
    return SnRelays(3478 if port == 443 else port)


def media_section(node_dir, user):
    """The media section: the user's tone as source, a WAV in the state directory as sink."""
    wav = os.path.join(node_dir, "state", "heard.wav")
    codecs = ", ".join(f'"{c}"' for c in CODECS)
    return (f'media: {{ codecs = [ {codecs} ]; source = "tone:{TONES[user]}"; '
            f'sink = "wav:{wav}"; }};\n')


def dominant_frequency(path, seconds=1.0):
    """(dominant frequency in Hz, RMS level) of the last `seconds` of a 16-bit WAV, less
    its final 0.1 s (which the hang-up may cut)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise harklab.LabError(f"{path}: {w.getsampwidth() * 8}-bit samples")
        rate, channels = w.getframerate(), w.getnchannels()
        data = numpy.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    samples = data.reshape(-1, channels)[:, 0].astype(numpy.float64)
    end = len(samples) - int(rate * 0.1)
    part = samples[max(0, end - int(rate * seconds)):end]
    if len(part) < rate * seconds / 2:
        raise harklab.LabError(f"{path}: only {len(samples) / rate:.2f} s of audio")
    spectrum = numpy.abs(numpy.fft.rfft(part * numpy.hanning(len(part))))
    spectrum[0] = 0
    peak = numpy.fft.rfftfreq(len(part), 1 / rate)[int(numpy.argmax(spectrum))]
    return float(peak), float(numpy.sqrt(numpy.mean(part ** 2)))


def call_of(node, call_id):
    for call in node.call("calls")["calls"]:
        if call["id"] == call_id:
            return call
    return None


def in_state(node, call_id, state):
    call = call_of(node, call_id)
    return call if call is not None and call["state"] == state else None


def played(node, call_id):
    return node.call("stats", id=call_id).get("played_samples", 0)


def played_at_least(node, call_id, seconds):
    stats = node.call("stats", id=call_id)
    return stats if stats.get("played_samples", 0) >= seconds * RATE else None

class CallLab:
    """One lab for one setup: the SNs' relays (sn_relays), the login server and SNs vouching
    for them, alice on c1 (at sn1) and bob on c2 (at sn2), attached, logged in and
    published."""

    def __init__(self, prefix, work, modes):
        self.lab = harklab.Lab(prefix, *modes)
        self.work = work
        self.network = None
        self.relays = None

    def up(self, turn_port=3478, sns=None):
        """The relays, the login server and SNs, then alice and bob attached, logged in and
        published. sns: the SNs each client knows ({"alice": ["sn1"], ...}; default: alice
        only sn1, bob only sn2)."""
        self.relays = sn_relays(self.lab, self.work, turn_port)
        self.network = harklab.HarkNetwork(self.lab, self.work, sn_plugins=["gi"],
                                           sn_settings=self.relays.sn_settings())
        sns = sns or {"alice": ["sn1"], "bob": ["sn2"]}
        self.alice = self.client("c1", "alice", sns["alice"])
        self.bob = self.client("c2", "bob", sns["bob"])
        harklab.run_together([(self.join, (self.alice,)), (self.join, (self.bob,))])
        # bob's record reached sn1 from sn2 (the SNs' gi index): the call finds his device.
        self.alice.wait("finding bob", self.alice_finds_bob, JOIN_TIMEOUT)

    def alice_finds_bob(self):
        return self.alice.call("search", name="bob", timeout=30).get("answer") == "found"

    def client(self, host, user, sns):
        node_dir = os.path.join(self.work, user)
        # As the Table I test: the web ports only after 5 s, so tcp wins where it works.
        return self.network.client(host, user, "join_fallback_delay_ms = 5000;",
                                   plugins=("gi", "search-loginsrv") + CODECS,
                                   search=["gi", "loginsrv"],
                                   sns=sns, more=media_section(node_dir, user))

    def join(self, node):
        node.start()
        node.register_and_login(node.name)
        node.wait("attached and logged in",
                  lambda: harklab.attached_and_logged_in(self.network, node, node.name),
                  JOIN_TIMEOUT)
        node.wait("published", lambda: node.call("status").get("published_at"), JOIN_TIMEOUT)
        # As a node that has been up a while: its NAT probed (a caller behind a restricted
        # cone or a symmetric NAT holds the peer's relayed candidates back by it).
        node.wait("NAT probed", lambda: node.call("nat").get("probed_at"), JOIN_TIMEOUT)

    def call_up(self):
        """alice calls bob, bob answers; (call id, alice's call, bob's call) once both are
        active."""
        call_id = self.alice.call("call", user="bob")["id"]
        self.bob.wait("ringing", lambda: in_state(self.bob, call_id, "ringing"), CALL_TIMEOUT)
        self.bob.call("answer", id=call_id)
        at_alice = self.alice.wait("active", lambda: in_state(self.alice, call_id, "active"),
                                   CALL_TIMEOUT)
        at_bob = self.bob.wait("active", lambda: in_state(self.bob, call_id, "active"),
                               CALL_TIMEOUT)
        return call_id, at_alice, at_bob

    def hang_up(self, call_id, both=False):
        """alice hangs up (and bob too when the signalling may not reach him); returns once
        bob's call has ended, so his WAV is complete."""
        self.alice.call("hangup", id=call_id)
        if both and call_of(self.bob, call_id) is not None:
            try:
                self.bob.call("hangup", id=call_id)
            except harklab.LabError:
                pass  # alice's hang-up came through after all (it ended meanwhile)
        for node in (self.alice, self.bob):
            node.wait("done with the call", lambda n=node: call_of(n, call_id) is None, 15)

    def stop(self):
        if self.network is not None:
            self.network.stop()
        if self.relays is not None:
            self.relays.stop()
        self.lab.down()



def check_heard(case, lab):
    """Each side's WAV has the other's tone (within 5 Hz of it, clearly above silence)."""
    for listener, speaker in ((lab.bob, "alice"), (lab.alice, "bob")):
        path = os.path.join(listener.state, "heard.wav")
        try:
            peak, rms = dominant_frequency(path)
        except (OSError, EOFError, wave.Error, harklab.LabError) as e:
            case.fail(f"{listener.name} heard {speaker}'s {TONES[speaker]} Hz tone", e)
            continue
        case.check(abs(peak - TONES[speaker]) <= 5 and rms > 1000,
                   f"{listener.name} heard {speaker}'s {TONES[speaker]} Hz tone",
                   f"dominant {peak:.1f} Hz at RMS {rms:.0f} in the last second of {path}")


def path_words(stats):
    path = stats.get("path") or {}
    return f"{path.get('kind')} over {path.get('transport')} ({path.get('local')} -> " \
           f"{path.get('remote')})"


def call_with_audio(lab, case, timings):
    """One call: alice calls, bob answers, 2 s of audio played at each end, alice hangs up
    and each end's WAV must hold the other's tone. {node name: its stats while the call was
    active}; (case name, setup_ms, connect_ms) appended to timings."""
    call_id, at_alice, at_bob = lab.call_up()
    case.check(True, "bob answered and the call became active at both ends")
    timings.append((case.name, at_alice.get("setup_ms"), at_alice.get("connect_ms")))
    stats = {node.name: node.call("stats", id=call_id) for node in (lab.alice, lab.bob)}
    for node in (lab.alice, lab.bob):
        node.wait("2 s of audio played", lambda n=node: played_at_least(n, call_id, 2.0), 15)
    lab.hang_up(call_id)
    check_heard(case, lab)
    return stats


def lab_job(prefix, work, modes, turn_port, jobs, up_args=None):
    """A lab with c1 and c2 in modes; each job (function, case, args) runs in turn. up_args:
    more keyword arguments of CallLab.up."""
    lab = None
    try:
        lab = CallLab(prefix, work, modes)
        with labs_lock:
            labs.append(lab)
        lab.up(turn_port, **(up_args or {}))
        for function, case, args in jobs:
            try:
                function(lab, case, *args)
            except Exception as e:
                case.fail("ran to the end", f"{e}\n{traceback.format_exc()}")
    except Exception as e:  # the lab, its SNs or a client: every case of this lab fails
        for _, case, _ in jobs:
            if not case.lines:
                case.fail("lab up, alice and bob attached and logged in",
                          f"{e}\n{traceback.format_exc()}")
    finally:
        if lab is not None:
            lab.stop()


# Every lab started, so that main() can take them down however the test ends.
labs = []
labs_lock = threading.Lock()


def stop_labs():
    with labs_lock:
        started = list(labs)
    for lab in started:
        lab.stop()


def suite_start(tag):
    """(run, work) of a call lab suite: its namespaces' prefix ("hnl<tag><pid>") and a new
    work directory; None, with the TAP plan that skips it printed, when this machine cannot
    run it (not root). SIGTERM (meson's timeout) exits, so the labs go down."""
    skip = None
    if os.geteuid() != 0:
        skip = "1..0 # SKIP needs root"
    if skip:
        print(skip)
        return None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    return f"hnl{tag}{os.getpid()}", harklab.work_dir(f"hark-netlab-{tag}.")


def remove_work(work):
    """The labs' files go, unless CALLLAB_KEEP is set (then their path is printed, for the
    nodes' logs: run with G_MESSAGES_DEBUG=all for libnice's checks)."""
    if os.environ.get("CALLLAB_KEEP"):
        print(f"# kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None
