#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-turn-seeds.py DIR: writes fuzz-turn's seeds into DIR: TURN_CREDENTIALS messages a
super node could send (a good one, and each way fuzz-turn's parser refuses one), and two
minting inputs ('M' SECRET '\\n' USER). The fuzzer's time is 2026-01-01 (1767225600). Uses
the system's PyGObject (GLib.Variant), the serialiser hark uses. Run by hand; its output is
committed in corpus/turn/."""
import os
import sys

from gi.repository import GLib

NOW = 1767225600
DAY = 86400


def message(kind, body, signature="(sqssxb)"):
    value = GLib.Variant("(qqtv)", (1, kind, 7, GLib.Variant(signature, body)))
    return value.get_normal_form().get_data_as_bytes().get_data()


def credentials(host="192.0.2.5", port=3478, user=None, password="q0DCmlkXVvOeEpkC2s2ls7wzyOo=",
                expires=NOW + DAY, tcp=True):
    if user is None:
        user = "%d:alice" % expires
    return message(30, (host, port, user, password, expires, tcp))


SEEDS = {
    "good": credentials(),
    "good-ipv6-udp-only": credentials(host="2001:db8::5", tcp=False),
    "loopback": credentials(host="127.0.0.1"),
    "host-name": credentials(host="turn.example.org"),
    "unspecified": credentials(host="0.0.0.0"),
    "multicast": credentials(host="224.0.0.1"),
    "port-zero": credentials(port=0),
    "empty-password": credentials(password=""),
    "long-username": credentials(user="%d:" % (NOW + DAY) + "a" * 600),
    "control-in-username": credentials(user="%d:alice\nhark message: forged" % (NOW + DAY)),
    "expired": credentials(expires=NOW - 1),
    "far-future": credentials(expires=NOW + 400 * DAY),
    "error-404": message(1, (404, "no TURN server here"), "(us)"),
    "request": message(29, (), "()"),
}
MINT = {
    "mint-alice": b"Mturn-secret-7c1e9a55d2b0\nalice",
    "mint-control": b"Ms\nali\x1bce",
}


def main(directory):
    os.makedirs(directory, exist_ok=True)
    for name, data in list(SEEDS.items()) + list(MINT.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


main(sys.argv[1])
