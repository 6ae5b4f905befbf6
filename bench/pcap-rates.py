#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""pcap-rates.py CAPTURE.pcap FROM TO [IGNORE_PORT...]: UDP packets and IP bytes per
second each way between FROM and TO (unix times), from a tcpdump capture on lo. IP bytes
are the IPv4 total length: IP and UDP headers included. RTP on an even port and RTCP on
the next one count as one direction (hark muxes both on one port anyway); packets from
or to IGNORE_PORTs (SIP) are left out. Prints JSON: {"directions": [{"ports",
"packets_per_s", "ip_bytes_per_s"}]}, the busiest first."""
import json
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        header = f.read(24)
        magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", header)
        assert magic in (0xA1B2C3D4, 0xA1B23C4D), "not a little-endian pcap"
        nano = magic == 0xA1B23C4D
        link = {1: 14, 113: 16, 276: 20}.get(linktype)   # Ethernet, Linux SLL, SLL2
        assert link is not None, f"link type {linktype}"
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            t = sec + frac / (1e9 if nano else 1e6)
            ip = data[link:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            yield t, sport, dport, total


def main():
    path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    ignore = {int(p) for p in sys.argv[4:]}
    flows = {}
    for t, sport, dport, total in packets(path):
        if start <= t <= end and sport not in ignore and dport not in ignore:
            f = flows.setdefault((sport - sport % 2, dport - dport % 2), [0, 0])
            f[0] += 1
            f[1] += total
    span = end - start
    out = [{"ports": f"{s}->{d}", "packets_per_s": n / span, "ip_bytes_per_s": b / span}
           for (s, d), (n, b) in sorted(flows.items(), key=lambda kv: -kv[1][1])]
    print(json.dumps({"directions": out}))


main()
