#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-presence-seeds.py DIR: writes the `record` fuzzer's DIR_SUBSCRIBE ('S') and
DIR_PRESENCE ('P') seeds into DIR (tests/fuzz/corpus/record), the pushed records taken
from the committed record seeds `full` and `away-mixed-case` (signed by
fuzz-record-keys.h's devices), so it makes no keys: running it again writes the same
files. Uses the system's PyGObject (GLib.Variant)."""
import os
import sys

from gi.repository import GLib

V = GLib.Variant


def wire_bytes(variant):
    return variant.get_normal_form().get_data_as_bytes().get_data()


def signed(directory, seed):
    data = open(os.path.join(directory, seed), "rb").read()[1:]  # 'R' + (ayay)
    return V.new_from_bytes(GLib.VariantType("(ayay)"), GLib.Bytes.new(data), False).unpack()


def main(directory):
    full = signed(directory, "full")
    away = signed(directory, "away-mixed-case")
    seeds = {
        "subscribe-device": b"S" + wire_bytes(V("(sas)", ("", ["bob", "Carol"]))),
        "subscribe-peer": b"S" + wire_bytes(V("(sas)", ("bob", ["alice"]))),
        "subscribe-bad-name": b"S" + wire_bytes(V("(sas)", ("", ["bob", "9lives"]))),
        "presence-full": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [full], []))),
        "presence-two": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [full, away], []))),
        "presence-offline": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "alice", [], ["ab" * 32]))),
        "presence-other-user": b"P" + wire_bytes(V("(ssa(ayay)as)", ("bob", "carol", [full], []))),
    }
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


main(sys.argv[1])
