#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""OpenDHT side by side with the directory simulation (docs/benchmarks.md, "Directory").

bench-opendht.py OUT.json [--nodes 50,100,200,1000] [--settle 15] [--gets 300]

N DhtRunner nodes of Debian's python3-opendht (2.4.12) on 127.0.0.1, each on a port of
its own, all bootstrapped to the first; the per-IP rate limit is off (setRateLimit(-1,-1)),
else nodes sharing an address are throttled as one peer. At most 250 runners share one
process (OpenDHT's socket thread uses select() and aborts at fd 1024), so larger N runs in
worker processes. After `settle` seconds (routing tables stop changing after about 15 s),
2 values per node are put from random nodes (the simulation's 2 users per SN), then
`gets` gets of random keys from random nodes. getNodeMessageStats() (which resets the
counters it returns) gives each node's outgoing requests: read once before the gets and
once after, summed over the nodes, per get. Runs with /usr/bin/python3 (Debian's module).
"""
import argparse
import json
import multiprocessing as mp
import random
import sys
import time

PER_PROCESS = 250
STAT_NAMES = ["ping", "find", "get", "listen", "put"]


def worker(conn, count, bootstrap_port):
    import opendht as dht
    cfg = dht.DhtConfig()
    cfg.setRateLimit(-1, -1)
    runners = []
    for _ in range(count):
        r = dht.DhtRunner()
        r.run(port=0, config=cfg)
        runners.append(r)
    if bootstrap_port is None:
        bootstrap_port = runners[0].getBound().getPort()
    for r in runners:
        if r.getBound().getPort() != bootstrap_port:
            r.bootstrap("127.0.0.1", str(bootstrap_port))
    conn.send(bootstrap_port)
    while True:
        cmd, *args = conn.recv()
        if cmd == "put":
            i, key, value = args
            runners[i].put(dht.InfoHash.get(key), dht.Value(value.encode()))
            conn.send(True)
        elif cmd == "get":
            i, key = args
            t0 = time.monotonic()
            values = runners[i].get(dht.InfoHash.get(key))
            found = any(v.data == ("value-of-" + key).encode() for v in values)
            conn.send((found, time.monotonic() - t0))
        elif cmd == "stats":
            total = [0] * len(STAT_NAMES)
            for r in runners:
                for j, n in enumerate(r.getNodeMessageStats()):
                    if j < len(total):
                        total[j] += n
            conn.send(total)
        elif cmd == "stop":
            for r in runners:
                r.join()
            conn.send(True)
            return


def run(n, settle, gets, idle):
    rng = random.Random(n)
    sizes = [min(PER_PROCESS, n - i) for i in range(0, n, PER_PROCESS)]
    workers, port = [], None
    for size in sizes:
        parent, child = mp.Pipe()
        p = mp.Process(target=worker, args=(child, size, port))
        p.start()
        port = parent.recv()
        workers.append((p, parent, size))

    def node(i):
        for p, conn, size in workers:
            if i < size:
                return conn, i
            i -= size
        raise IndexError(i)

    def stats():
        total = [0] * len(STAT_NAMES)
        for _, conn, _ in workers:
            conn.send(("stats",))
        for _, conn, _ in workers:
            for j, v in enumerate(conn.recv()):
                total[j] += v
        return total

    time.sleep(settle)
    stats()
    time.sleep(idle)
    idle_total = sum(stats())
    users = 2 * n
    for u in range(users):
        conn, i = node(rng.randrange(n))
        conn.send(("put", i, f"user{u}", f"value-of-user{u}"))
        conn.recv()
    time.sleep(5)  # let the puts finish (they are asynchronous)
    stats()
    found, times = 0, []
    for _ in range(gets):
        u = rng.randrange(users)
        conn, i = node(rng.randrange(n))
        conn.send(("get", i, f"user{u}"))
        ok, t = conn.recv()
        found += ok
        times.append(t * 1000)
    sent = stats()
    for p, conn, _ in workers:
        conn.send(("stop",))
        conn.recv()
        p.join()
    times.sort()
    return {
        "nodes": n, "users": users, "gets": gets, "found": found,
        "success": 100.0 * found / gets,
        "get_requests_per_lookup": sent[2] / gets,
        "requests_per_lookup": sum(sent) / gets,
        "requests_by_kind": dict(zip(STAT_NAMES, sent)),
        "time_median_ms": times[len(times) // 2],
        "time_p95_ms": times[int(0.95 * (len(times) - 1))],
        "idle_requests_per_node_s": idle_total / (n * idle) if idle > 0 else 0,
        "settle_s": settle,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--nodes", default="50,100,200,1000")
    ap.add_argument("--settle", type=float, default=15)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--gets", type=int, default=300)
    a = ap.parse_args()
    results = []
    for n in [int(x) for x in a.nodes.split(",")]:
        r = run(n, a.settle, a.gets, a.idle)
        print(json.dumps(r), flush=True)
        results.append(r)
    json.dump(results, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
