#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-presence-seeds.py DIR: writes the `record` fuzzer's DIR_SUBSCRIBE ('S'),
DIR_PRESENCE ('P'), DIR_WATCH ('W') and DIR_HINT ('H') seeds into DIR (tests/fuzz/corpus/record), the pushed records taken
from the committed record seeds `full` and `away-mixed-case` (signed by
fuzz-record-keys.h's devices), so it makes no keys: running it again writes the same
files. The watches carry the `full` record's certificate and the fuzzer's time but a
signature no key made (the seed keys were thrown away): they reach every check but the
signature's. Uses the system's PyGObject (GLib.Variant)."""
import os
import sys

from gi.repository import GLib

V = GLib.Variant


def wire_bytes(variant):
    return variant.get_normal_form().get_data_as_bytes().get_data()


def signed(directory, seed):
    data = open(os.path.join(directory, seed), "rb").read()[1:]  # 'R' + (ayay)
    return V.new_from_bytes(GLib.VariantType("(ayay)"), GLib.Bytes.new(data), False).unpack()


def watch(certificate, user, users, sn, time):
    payload = wire_bytes(V("(sassayx)", (user, users, sn, certificate, time)))
    return (list(payload), [7] * 64)


def main(directory):
    full = signed(directory, "full")
    payload = V.new_from_bytes(GLib.VariantType("(sssaysa(ssq)sstx)"),
                               GLib.Bytes.new(bytes(full[0])), False).unpack()
    certificate, now = list(payload[3]), 1893456000  # fuzz-record-keys.h's FUZZ_RECORD_NOW
    away = signed(directory, "away-mixed-case")
    seeds = {
        "subscribe-device": b"S" + wire_bytes(V("(sas)", ("", ["bob", "Carol"]))),
        "subscribe-peer": b"S" + wire_bytes(V("(sas)", ("bob", ["alice"]))),
        "subscribe-bad-name": b"S" + wire_bytes(V("(sas)", ("", ["bob", "9lives"]))),
        "watch-device": b"W" + wire_bytes(V("(sa(ayay))", ("", [
            watch(certificate, "bob", ["alice"], "ab", now)]))),
        "watch-peer": b"W" + wire_bytes(V("(sa(ayay))", ("bob", [
            watch(certificate, "bob", ["alice", "Carol"], "ab", now - 30),
            watch(certificate, "bob", ["alice"], "cd", now - 900)]))),
        "watch-end": b"W" + wire_bytes(V("(sa(ayay))", ("bob", []))),
        "presence-full": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [full], []))),
        "presence-two": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [full, away], []))),
        "presence-offline": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [], ["ab" * 32]))),
        "presence-other-user": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "carol", [full], []))),
        "hint-user": b"H" + wire_bytes(V("(s)", ("Bob",))),
        "hint-bad-name": b"H" + wire_bytes(V("(s)", ("bob\nSN: forged",))),
    }
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


main(sys.argv[1])
