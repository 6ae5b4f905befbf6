#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-memory.py [--runs N] [--seconds S] [--smaps DIR] BUILD [BUILD...]: the memory of one
end of a call, for builds side by side (alternating, one run of each build per round):
`hark media-test` ends, and a real call between two `hark run` nodes
(bench/bench-call-nodes.py). Each end is measured after S seconds of a 440 Hz tone played
into the caller's microphone: VmHWM (peak resident), RSS, PSS (shared pages divided among
the processes that map them) and anonymous memory, from /proc/PID/status and
smaps_rollup; the larger of the two ends, medians over the runs.

With --smaps DIR, each end's /proc/PID/smaps, smaps_rollup and status of the first round
are kept there (N-KIND-caller.smaps, ..., N the build's place in the list), and the
callee's mappings are summed by what pulled them in (a table per build and kind: the
libraries a component brings, with their own dependencies; the heap; thread stacks and
malloc arenas): resident, PSS, private dirty (relocations and .data of a library; all of
the heap).

Runs in a network namespace with only lo, beside a PulseAudio of its own with null sinks
(the devices scripts/bench-media.sh makes: caller_mic, from_callee, discard, quiet).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SOUND_CARD = os.path.join(HERE, "sound-card.pa")  # shared with scripts/bench-media-lib.sh


def in_netns():
    if os.environ.get("HARK_BENCH_NETNS") == "1":
        return
    os.execvp("unshare", ["unshare", "--net", "env", "HARK_BENCH_NETNS=1", "bash", "-c",
                          'ip link set lo up && exec "$0" "$@"', sys.executable,
                          os.path.abspath(__file__), *sys.argv[1:]])


def start_pulse(work):
    with open(os.path.join(work, "pa.pa"), "w") as f:
        f.write(open(SOUND_CARD).read().replace("@WORK@", work))
    log = open(os.path.join(work, "pulse.log"), "w")
    proc = subprocess.Popen(["pulseaudio", "-n", "-F", os.path.join(work, "pa.pa"),
                             "--daemonize=no", "--system=false", "--exit-idle-time=-1",
                             "--disallow-exit", "--realtime=no", "--high-priority=no"],
                            stdout=log, stderr=log)
    for _ in range(100):
        if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
            return proc
        time.sleep(0.1)
    sys.exit("bench-memory: PulseAudio did not start")


def play_tone(work, seconds):
    """A tone into the caller's microphone for as long as the measure waits."""
    wav = os.path.join(work, "tone.wav")
    if not os.path.exists(wav):
        subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", wav,
                        "synth", "600", "sine", "440", "vol", "0.3"], check=True)
    return subprocess.Popen(["pacat", "--latency-msec=10", "-d", "to_caller",
                             "--file-format=wav", wav])


def memory(pid):
    m = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                m[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Anonymous", "Private_Dirty", "Shared_Clean", "Private_Clean"):
                m[k] = int(v.split()[0])
    return m


def keep_smaps(pid, path):
    for name in ("smaps", "smaps_rollup", "status", "maps"):
        shutil.copy(f"/proc/{pid}/{name}", f"{path}.{name}")


def measure(ends, work, seconds, smaps):
    tone = play_tone(work, seconds)
    time.sleep(seconds)
    out = {who: memory(pid) for who, pid in ends.items()}
    if smaps:
        for who, pid in ends.items():
            keep_smaps(pid, f"{smaps}-{who}")
    tone.terminate()
    tone.wait()
    return out


def key():
    return os.urandom(30).hex()


def media_test(hark, work, seconds, smaps):
    ka, kb = key(), key()
    common = [hark, "media-test", "-q", "--json", "--seconds", "0", "--codec", "opus"]
    callee = subprocess.Popen(common + ["--local", "127.0.0.1:41000", "--remote", "127.0.0.1:42000",
                                        "--send-key", kb, "--receive-key", ka,
                                        "--source", "pulse:quiet.monitor", "--sink", "pulse:from_callee"],
                              stdout=subprocess.DEVNULL)
    caller = subprocess.Popen(common + ["--local", "127.0.0.1:42000", "--remote", "127.0.0.1:41000",
                                        "--send-key", ka, "--receive-key", kb,
                                        "--source", "pulse:caller_mic", "--sink", "pulse:discard"],
                              stdout=subprocess.DEVNULL)
    try:
        return measure({"caller": caller.pid, "callee": callee.pid}, work, seconds, smaps)
    finally:
        for p in (caller, callee):
            p.send_signal(signal.SIGTERM)
            p.wait()


def call_nodes(build, work, seconds, smaps):
    d = tempfile.mkdtemp(dir=work, prefix="nodes-")
    log = open(os.path.join(d, "call.log"), "w")
    nodes = subprocess.Popen([sys.executable, os.path.join(HERE, "bench-call-nodes.py"), build,
                              os.path.join(d, "nodes")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=log, text=True,
                             start_new_session=True)
    line = nodes.stdout.readline()
    if not line:
        nodes.wait()
        try:  # nodes a failed start left behind
            os.killpg(nodes.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        with open(os.path.join(d, "call.log")) as f:
            sys.exit("bench-memory: no call:\n" + f.read()[-3000:])
    call = json.loads(line)
    try:
        return measure({"caller": call["caller"], "callee": call["callee"]}, work, seconds, smaps)
    finally:
        nodes.stdin.close()
        nodes.wait()


# What pulled each library into a node (ldd build/core/libhark.so and the plugins
# dlopened): a name prefix -> the component that brings it.
GROUPS = [
    ("OpenSSL", ["libcrypto.", "libssl."]),
    ("NSS (Debian's libsrtp2, GStreamer's srtp plugin)",
     ["libnss3", "libnssutil3", "libsoftokn3", "libfreeblpriv3", "libnspr4", "libplc4", "libplds4",
      "libsrtp2", "libgstsrtp"]),
    ("GnuTLS (GIO's TLS for libsoup; libnice)",
     ["libgnutls", "libgiognutls", "libp11-kit", "libnettle", "libhogweed", "libgmp", "libtasn1",
      "libunistring", "libidn2"]),
    ("libsoup and its HTTP deps (Kerberos, HTTP/2, brotli, psl)",
     ["libsoup", "libkrb5", "libk5crypto", "libgssapi_krb5", "libkrb5support", "libcom_err",
      "libkeyutils", "libnghttp2", "libbrotli", "libpsl", "libresolv"]),
    ("libnice and UPnP (gupnp, libxml2, ICU, libstdc++)",
     ["libnice", "libgupnp", "libgssdp", "libxml2", "libicu", "libstdc++", "libgcc_s"]),
    ("libpulse (libsndfile's codecs, X11, systemd, D-Bus)",
     ["libpulse", "memfd:pulseaudio", "libsndfile", "libFLAC", "libvorbis", "libogg",
      "libmpg123", "libmp3lame", "libX", "libxcb", "libsystemd", "libasyncns", "libdbus",
      "libgcrypt", "libgpg-error", "liblz4", "libzstd", "libcap", "libbsd", "libmd."]),
    ("GStreamer (core, plugins, Opus, orc, libdw)",
     ["libgst", "libopus.", "liborc", "orcexec", "libdw", "libelf", "libunwind", "liblzma", "libbz2"]),
    ("GLib, GIO, GObject (and libmount, selinux, pcre2, ffi, zlib)",
     ["libglib", "libgio", "libgobject", "libgmodule", "libjson-glib", "libffi", "libpcre2",
      "libmount", "libblkid", "libselinux", "libz."]),
    ("SQLite", ["libsqlite3", ".sqlite-shm"]),
    ("hark (libhark, plugins, libconfig)", ["libhark", "hark", "libconfig", ".so"]),
    ("libc, libm, ld.so, locale", ["libc.", "libm.", "ld-linux", "LC_", "SYS_LC", "gconv", "locale"]),
    ("[heap]", ["[heap]"]),
    ("thread stacks, malloc arenas, other anonymous", ["[anon]", "[stack]"]),
]


def group_of(name):
    for group, prefixes in GROUPS:
        if any(name.startswith(p) for p in prefixes):
            return group
    return "other"


def profile(path):
    """Sums of a kept smaps by GROUPS: {group: {Rss, Pss, Private_Dirty}} in KiB."""
    sums = {}
    name = None
    with open(path) as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
                name = os.path.basename(fields[5]) if len(fields) > 5 else "[anon]"
                continue
            if fields[0] in ("Rss:", "Pss:", "Private_Dirty:"):
                g = sums.setdefault(group_of(name), {"Rss": 0, "Pss": 0, "Private_Dirty": 0})
                g[fields[0][:-1]] += int(fields[1])
    return sums


def print_profiles(smaps, builds, kinds):
    for i, build in enumerate(builds):
        for kind in kinds:
            sums = profile(os.path.join(smaps, f"{i}-{kind}-callee.smaps"))
            print(f"\n{build}, {kind}, the callee's mappings by what brought them (MiB):\n")
            print("| component | resident | PSS | private dirty |")
            print("|---|---|---|---|")
            for group, g in sorted(sums.items(), key=lambda kv: -kv[1]["Rss"]):
                print(f"| {group} | {g['Rss'] / 1024:.2f} | {g['Pss'] / 1024:.2f} | "
                      f"{g['Private_Dirty'] / 1024:.2f} |")
            total = {k: sum(g[k] for g in sums.values()) for k in ("Rss", "Pss", "Private_Dirty")}
            print(f"| all | {total['Rss'] / 1024:.2f} | {total['Pss'] / 1024:.2f} | "
                  f"{total['Private_Dirty'] / 1024:.2f} |")


KEYS = ("VmHWM", "VmRSS", "Pss", "Anonymous", "Private_Dirty", "Threads")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--smaps")
    ap.add_argument("--kinds", default="media-test,call")
    ap.add_argument("builds", nargs="+")
    args = ap.parse_args()
    in_netns()
    # Stopped from outside: still stop PulseAudio and the nodes (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = tempfile.mkdtemp(prefix="hark-bench-memory.")
    os.environ.update(HOME=work, XDG_RUNTIME_DIR=work, PULSE_SERVER=f"unix:{work}/pulse.sock")
    pulse = start_pulse(work)
    if args.smaps:
        os.makedirs(args.smaps, exist_ok=True)
    results = {}  # (build, kind) -> [larger end's numbers per run]
    try:
        for run in range(args.runs):
            for i, build in enumerate(args.builds):
                build = os.path.abspath(build)
                for kind in args.kinds.split(","):
                    smaps = None
                    if args.smaps and run == 0:
                        smaps = os.path.join(args.smaps, f"{i}-{kind}")
                    if kind == "media-test":
                        ends = media_test(os.path.join(build, "hark"), work, args.seconds, smaps)
                    else:
                        ends = call_nodes(build, work, args.seconds, smaps)
                    big = {k: max(e.get(k, 0) for e in ends.values()) for k in KEYS}
                    results.setdefault((i, kind), []).append(big)
                    print(f"run {run + 1} build {i} {kind}: " +
                          " ".join(f"{k} {v / 1024:.1f}" if k != "Threads" else f"{k} {v}"
                                   for k, v in big.items()), file=sys.stderr, flush=True)
    finally:
        pulse.terminate()
        pulse.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("| build | end | VmHWM | RSS | PSS | anonymous | private dirty | threads |")
    print("|---|---|---|---|---|---|---|---|")
    for (i, kind), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in KEYS}
        cells = [f"{med[k] / 1024:.1f}" for k in KEYS[:-1]] + [f"{med['Threads']:.0f}"]
        print(f"| {args.builds[i]} | {kind} | " + " | ".join(cells) + " |")
    if args.smaps:
        print_profiles(args.smaps, args.builds, args.kinds.split(","))


if __name__ == "__main__":
    main()
