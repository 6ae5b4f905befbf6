#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-turn-server-seeds.py DIR: writes fuzz-turn-server's seeds into DIR. An input is
records of flags (bits 0-1: which of four clients, bit 3: bytes of a stream instead, bit 2: the harness signs it with a
good credential), a 16-bit length and the bytes (fuzz-turn-server.c). The seeds walk a
whole session (Allocate, CreatePermission, ChannelBind, ChannelData, a Send indication,
Refresh 0), the refusals (denied peers, a second Allocate, an unknown attribute, a
transport other than UDP, the quota) and garbage. Run by hand; its output is committed in
corpus/turn-server/."""
import os
import struct
import sys

COOKIE = 0x2112A442


def header(kind, txid, body):
    return struct.pack(">HHI", kind, len(body), COOKIE) + txid + body


def attribute(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack(">HH", kind, len(value)) + value + b"\0" * pad


def xor_peer(ip, port):
    a, b, c, d = (int(x) for x in ip.split("."))
    raw = struct.unpack(">I", bytes([a, b, c, d]))[0]
    return attribute(0x0012, struct.pack(">BBHI", 0, 1, port ^ (COOKIE >> 16), raw ^ COOKIE))


def record(client, signed, data):
    return struct.pack(">BH", client | (4 if signed else 0), len(data)) + data


def txid(n):
    return bytes([n] * 12)


TRANSPORT_UDP = attribute(0x0019, b"\x11\0\0\0")


def allocate(client=0, n=1, transport=TRANSPORT_UDP):
    return record(client, True, header(0x0003, txid(n), transport))


def permission(ip, n, client=0):
    return record(client, True, header(0x0008, txid(n), xor_peer(ip, 5555)))


def channel_bind(ip, n, channel=0x4001, client=0):
    body = attribute(0x000C, struct.pack(">HH", channel, 0)) + xor_peer(ip, 5555)
    return record(client, True, header(0x0009, txid(n), body))


def refresh(lifetime, n, client=0):
    return record(client, True, header(0x0004, txid(n), attribute(0x000D, struct.pack(">I", lifetime))))


def send_indication(ip, n, data, client=0):
    body = xor_peer(ip, 5555) + attribute(0x0013, data)
    return record(client, False, header(0x0016, txid(n), body))


def channel_data(channel, data, client=0):
    return record(client, False, struct.pack(">HH", channel, len(data)) + data)


SEEDS = {
    "session": allocate() + permission("127.0.0.1", 2) + channel_bind("127.0.0.1", 3)
    + channel_data(0x4001, b"hello") + send_indication("127.0.0.1", 4, b"world")
    + refresh(1200, 5) + refresh(0, 6),
    "denied": allocate() + permission("169.254.169.254", 2) + channel_bind("0.0.0.0", 3)
    + permission("10.0.0.1", 4) + send_indication("192.168.1.1", 5, b"x"),
    "mismatch": allocate() + allocate(n=9) + permission("127.0.0.1", 2, client=1)
    + channel_data(0x4002, b"unbound") + channel_data(0x5000, b"x"),
    "quota": b"".join(allocate(client=c, n=c + 1) for c in range(4)) + refresh(0, 8, client=3)
    + allocate(client=3, n=9),
    "unknown": record(0, True, header(0x0003, txid(1), TRANSPORT_UDP + attribute(0x0030, b"????")))
    + allocate(n=2, transport=attribute(0x0019, b"\x06\0\0\0"))
    + record(0, True, header(0x0003, txid(3), b"")),
    "channel-edge": allocate() + channel_bind("127.0.0.1", 2, channel=0x3FFF)
    + channel_bind("127.0.0.1", 3, channel=0x8000) + channel_bind("127.0.0.1", 4, channel=0x4001)
    + channel_bind("127.0.0.1", 5, channel=0x4002) + channel_data(0x4001, b"")
    + record(0, False, b"\x40\x01\xff\xff" + b"short"),
    "garbage": record(0, False, b"\xff" * 7) + record(1, False, b"\0\x01\0\x04\x21\x12\xa4\x42")
    + record(2, False, header(0x0001, txid(1), b"")) + record(3, False, b"")
    + record(0, True, header(0x0111, txid(1), b"")),
}

# Bytes of a stream the overlay hands over (TURN on the web port, flag bit 3), cut at
# any point: an Allocate in two pieces, a Binding and ChannelData in one, then garbage.
_ALLOCATE = header(0x0003, txid(1), TRANSPORT_UDP)
_STREAM = _ALLOCATE + header(0x0001, txid(2), b"") + b"\x40\x01\x00\x03abc\x00" + b"\xff" * 8
SEEDS["stream"] = b"".join(
    struct.pack(">BH", 8, len(piece)) + piece
    for piece in (_STREAM[:7], _STREAM[7:30], _STREAM[30:])
)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
