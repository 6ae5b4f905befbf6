#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""netprobe.py: what the shaping test (test-shaping.py) measures with, in user space (ping's
RTT would miss the delay on incoming packets: the kernel timestamps them first).

  netprobe.py server PORT             UDP echo (and counter) and TCP sink on PORT, until killed
  netprobe.py rtt HOST PORT N         median UDP round trip of N probes, in ms
  netprobe.py blast HOST PORT N       N datagrams 2 ms apart, then 1 s for the echoes;
                                      prints "sent N echoed E" (E: echoes that came back)
  netprobe.py spread HOST PORT N      N probes 20 ms apart, the echoes awaited 2 s; prints
                                      "p10 p50 p90 reordered" (round trips in ms; echoes that
                                      came back behind a later probe's)
  netprobe.py count HOST PORT         how many blast datagrams the server got since the last count
  netprobe.py send HOST PORT BYTES    BYTES over TCP; prints the seconds until the server had them all
"""
import socket
import statistics
import struct
import sys
import threading
import time


def server(port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    listener = socket.create_server(("0.0.0.0", port))
    threading.Thread(target=tcp_sink, args=(listener,), daemon=True).start()
    blasts = 0
    while True:
        data, peer = udp.recvfrom(2048)
        if data == b"count":
            udp.sendto(str(blasts).encode(), peer)
            blasts = 0
            continue
        if data.startswith(b"blast"):
            blasts += 1
        udp.sendto(data, peer)


def tcp_sink(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            want = struct.unpack("!Q", conn.recv(8, socket.MSG_WAITALL))[0]
            got = 0
            while got < want:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
            conn.sendall(b"k")


def rtt(host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    samples = []
    for i in range(n):
        payload = f"rtt {i}".encode()
        start = time.monotonic()
        s.sendto(payload, (host, port))
        while True:
            data, _ = s.recvfrom(2048)
            if data == payload:
                break
        samples.append((time.monotonic() - start) * 1000)
    print(f"{statistics.median(samples):.2f}")


def spread(host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    sent, arrivals = {}, []   # arrivals: (probe, round trip ms), in the order they came

    def receive():   # beside the sender, so that each echo is timed as it comes
        s.settimeout(2)
        try:
            while len(arrivals) < n:
                i = int(s.recv(2048).decode().split()[1])
                arrivals.append((i, (time.monotonic() - sent[i]) * 1000))
        except socket.timeout:
            pass
    receiver = threading.Thread(target=receive)
    receiver.start()
    for i in range(n):
        sent[i] = time.monotonic()
        s.send(f"spread {i}".encode())
        time.sleep(0.02)
    receiver.join()
    if len(arrivals) < 2:
        sys.exit("no echoes")
    order, samples = [i for i, _ in arrivals], [ms for _, ms in arrivals]
    reordered = sum(1 for a, b in zip(order, order[1:]) if b < a)
    q = statistics.quantiles(samples, n=10)
    print(f"{q[0]:.2f} {statistics.median(samples):.2f} {q[-1]:.2f} {reordered}")


def blast(host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        try:
            s.sendto(f"blast {i}".encode(), (host, port))
        except PermissionError:
            pass  # dropped on the way out by the lab's loss rule (netfilter says EPERM)
        time.sleep(0.002)
    s.settimeout(1)
    echoed = set()
    try:
        while True:
            echoed.add(s.recvfrom(2048)[0])
    except socket.timeout:
        pass
    print(f"sent {n} echoed {len(echoed)}")


def count(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    for _ in range(5):
        s.sendto(b"count", (host, port))
        try:
            print(s.recvfrom(64)[0].decode())
            return
        except socket.timeout:
            continue
    sys.exit("no answer to count")


def send(host, port, size):
    s = socket.create_connection((host, port), timeout=60)
    start = time.monotonic()
    s.sendall(struct.pack("!Q", size) + bytes(size))
    s.recv(1)
    print(f"{time.monotonic() - start:.3f}")


def main():
    mode, *args = sys.argv[1:]
    if mode == "server":
        server(int(args[0]))
    elif mode == "rtt":
        rtt(args[0], int(args[1]), int(args[2]))
    elif mode == "blast":
        blast(args[0], int(args[1]), int(args[2]))
    elif mode == "spread":
        spread(args[0], int(args[1]), int(args[2]))
    elif mode == "count":
        count(args[0], int(args[1]))
    elif mode == "send":
        send(args[0], int(args[1]), int(args[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
