#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-wire-seeds.py DIR: writes one seed per overlay message type (4-23, 25-31) into DIR, as
a node would send it (GVariant normal form, little-endian), for the wire fuzzer's corpus.
Uses the system's PyGObject (GLib.Variant), the same serialiser hark uses. Run by hand
when a message type is added; its output is committed in corpus/wire/."""
import os
import sys

from gi.repository import GLib

V = GLib.Variant
SNS = V("a(sqas)", [("192.0.2.1", 33033, ["udp", "tcp"]), ("198.51.100.7", 443, ["tls443"])])
SEEDS = {
    "probe": (4, V("(a{sv})", ({"name": V("s", "alice-laptop")},))),
    "probe-reply": (5, V("(a{sv})", ({
        "name": V("s", "sn1"), "role": V("s", "super"), "accepting": V("b", True),
        "clients": V("u", 12), "transports": V("as", ["udp", "tcp"]),
        "observed": V("s", "203.0.113.9:40000")},))),
    "join-client": (6, V("(a{sv})", ({"name": V("s", "alice-laptop"), "as": V("s", "client")},))),
    "join-peer": (6, V("(a{sv})", ({
        "name": V("s", "sn2"), "as": V("s", "peer"), "host": V("s", "192.0.2.2"),
        "port": V("q", 33033), "transports": V("as", ["udp", "tcp"]),
        "stun_alt_port": V("q", 33034)},))),
    "join-ok": (7, V("(a{sv})", ({
        "name": V("s", "sn1"), "keepalive": V("u", 120), "observed": V("s", "203.0.113.9:40000"),
        "authenticated": V("b", False), "sns": SNS, "stun_alt_port": V("q", 33034)},))),
    "redirect": (8, V("(a(sqas))", (SNS.unpack(),))),
    "auth": (9, V("(ayay)", (b"\x30\x82\x01\x00" + bytes(60), bytes(64)))),
    "auth-ok": (10, V("(s)", ("alice",))),
    "sn-list": (11, V("(a(sqas))", (SNS.unpack(),))),
    "tunnel-open": (12, V("(sq)", ("login.example.org", 443))),
    "tunnel-ok": (13, V("(t)", (7,))),
    "tunnel-data": (14, V("(tay)", (7, b"\x16\x03\x01\x00\x05hello"))),
    "tunnel-close": (15, V("(ts)", (7, "the login server closed the connection"))),
    "stun-relay": (16, V("(sqqbay)", ("203.0.113.9", 40000, 0, True, bytes(range(12))))),
    "dir-publish": (17, V("((ayay)(ayay)as)", ((b"\x00" * 40, bytes(64)), (b"\x01" * 60, bytes(64)),
                                               ["bob", "carol"]))),
    "dir-publish-ok": (18, V("(tu)", (3, 600))),
    "dir-lookup": (19, V("(sbas)", ("alice", False, ["gi", "loginsrv"]))),
    "dir-lookup-prefix": (19, V("(sbas)", ("ali", True, []))),
    "dir-result": (20, V("(sasa(ayay))", ("found", ["alice"], [(b"\x00" * 40, bytes(64))]))),
    "dir-result-unknown": (20, V("(sasa(ayay))", ("unknown", [], []))),
    "dir-subscribe": (21, V("(sas)", ("", ["bob", "carol"]))),
    "dir-subscribe-peer": (21, V("(sas)", ("bob", ["alice"]))),
    "dir-presence": (22, V("(ssa(ayay)as)", ("bob", "alice", [(b"\x01" * 60, bytes(64))], []))),
    "dir-presence-offline": (22, V("(ssa(ayay)as)", ("bob", "alice", [], ["0" * 64]))),
    "dir-strategy": (23, V("(sv)", ("gi", V("(say)", ("find", bytes(32)))))),
    "msg-send": (25, V("(ssay)", ("a" * 64, "192.0.2.1:33033", b"\x00" * 48 + bytes(64)))),
    "msg-sent": (26, V("(s)", ("delivered",))),
    "msg-deliver": (27, V("(ay)", (b"\x00" * 48 + bytes(64),))),
    "msg-forward": (28, V("(say)", ("a" * 64, b"\x00" * 48 + bytes(64)))),
    "turn-request": (29, V("()", ())),
    "turn-credentials": (30, V("(sqssxb)", ("192.0.2.5", 3478, "1767312000:alice",
                                            "q0DCmlkXVvOeEpkC2s2ls7wzyOo=", 1767312000, True))),
    "turn-forward": (31, V("(s)", ("alice",))),
}


def main(directory):
    for name, (kind, body) in SEEDS.items():
        message = V("(qqtv)", (1, kind, 0x0102030405060708, body)).get_normal_form()
        data = message.get_data_as_bytes().get_data()
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


main(sys.argv[1])
