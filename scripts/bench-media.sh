#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench-media.sh BUILD OUT.json: mouth-to-ear latency, CPU, peak memory and bytes on the
# wire of a hark call and of a baresip 1.0 call (Opus, 20 ms, SRTP, 127.0.0.1), measured
# the way the paper did (../shared/PEERBENCH.md has the pitfalls): one PulseAudio daemon
# with null sinks is the sound card; speech is played into the caller's microphone and
# ONE recording of a stereo null sink takes, on one clock, that speech (left) and what
# comes out of the callee (right); the delay is the cross-correlation peak over 2 s
# windows (bench/mouth-to-ear.py), which also scores how well the speech came through
# (STOI and mel-cepstral distortion, bench/speech_quality.py), so that the peers' bytes
# are compared at a known quality. The floor of the audio path alone (PulseAudio's
# loopback from the microphone to the callee's speaker) is measured the same way, and
# before each round of calls the sound server's CPU with no call (what every peer's
# sound-server figure includes).
# Beside hark media-test and baresip, interleaved with them: a real call between two
# `hark run` nodes (bench/bench-call-nodes.py: a login server, an SN, alice calls bob, the
# sound server's devices as the nodes' media source and sink), and the same call moved to
# a relay (a coturn on 127.0.0.1 that the SN vouches for; `path relay`), and the two nodes
# talking through a third that hosts a conference of them (--conference).
# Runs in a network namespace that has only lo, so nothing leaves the machine.
set -eEu
trap 'echo "bench-media: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
calls=${BENCH_CALLS:-3}
seconds=${BENCH_CALL_SECONDS:-20}

if [ "${HARK_BENCH_NETNS:-}" != 1 ]; then
  "$here/install-deps.sh" "$top/deps/bench-debian.txt" >&2
  exec unshare --net env HARK_BENCH_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

case $build in /*) hark="$build/hark" ;; *) hark="$top/$build/hark" ;; esac
py=/usr/bin/python3   # Debian's, with python3-numpy and python3-scipy
work=$(mktemp -d /tmp/hark-bench-media.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# shellcheck source-path=SCRIPTDIR source=bench-media-lib.sh
. "$here/bench-media-lib.sh"

# ---- the sound server ----------------------------------------------------------------
pulse_config
start_pulse

# GStreamer's plugin registry lives under $HOME: build it now, or the first hark call
# spends its first seconds scanning plugins.
gst-inspect-1.0 opusenc >/dev/null

make_speech

# ---- measuring one call ----------------------------------------------------------------
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
# smaps KEY PID: a line of /proc/PID/smaps_rollup in KiB (Rss, Pss, Anonymous).
smaps() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/smaps_rollup"; }
# Context switches of all of a process's threads (each one a wake-up or a preemption).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'; }

# record_bus FILE: the stereo bus (the speech left, the callee right) recorded into FILE,
# in the background as $rec.
record_bus() {
  bg parecord -d bus.monitor --rate=48000 --channels=2 --format=s16le --latency-msec=10 \
    --file-format=wav "$1"
  rec=$last
}

# measure NAME CALLER_PID CALLEE_PID IGNORED_PORTS...: play the speech into the caller,
# record, and write $work/NAME.json.
measure() {
  name=$1; a=$2; b=$3; shift 3
  bg tcpdump -i lo -w "$work/$name.pcap" --immediate-mode -U -s 128 udp 2>/dev/null
  dump=$last
  record_bus "$work/$name.wav"
  sleep 1
  t0=$(date +%s.%N); ca0=$(ticks "$a"); cb0=$(ticks "$b"); cp0=$(ticks "$pulse_pid")
  sw0="$(switches "$a") $(switches "$b") $(switches "$pulse_pid")"
  pacat --latency-msec=10 -d to_caller --file-format=wav "$work/speech.wav"
  t1=$(date +%s.%N); ca1=$(ticks "$a"); cb1=$(ticks "$b"); cp1=$(ticks "$pulse_pid")
  sw1="$(switches "$a") $(switches "$b") $(switches "$pulse_pid")"
  ma=$(hwm "$a"); mb=$(hwm "$b")
  mem=$(for k in Rss Pss Anonymous; do echo "$(smaps $k "$a") $(smaps $k "$b")"; done | tr '\n' ' ')
  sleep 1
  unbg "$rec"
  unbg "$dump"
  $py "$top/bench/mouth-to-ear.py" "$work/$name.wav" >"$work/$name.m2e.json"
  # Scored again as the shaped-link bench scores: each quarter second at its own delay. An
  # adaptive jitter buffer moves its delay in the speech's pauses; one delay per 2 s window
  # counts the words after such a move as distorted, which a listener does not hear.
  $py "$top/bench/mouth-to-ear.py" "$work/$name.wav" --realign 0.25 >"$work/$name.realigned.json"
  $py "$top/bench/pcap-rates.py" "$work/$name.pcap" "$t0" "$t1" "$@" >"$work/$name.rates.json"
  hz=$(getconf CLK_TCK)
  $py - "$work/$name.m2e.json" "$work/$name.rates.json" "$t0" "$t1" "$ca0" "$ca1" "$cb0" "$cb1" \
      "$ma" "$mb" "$hz" $mem "$cp0" "$cp1" $sw0 $sw1 >"$work/$name.json" <<'PY'
import json, sys
m2e, rates = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
realigned = json.load(open(sys.argv[1].replace(".m2e.json", ".realigned.json")))
m2e.update({f"{k}_realigned": realigned.get(k) for k in ("stoi", "mcd_db")})
t0, t1, ca0, ca1, cb0, cb1, ma, mb, hz = map(float, sys.argv[3:12])
ra, rb, pa, pb, aa, ab = map(float, sys.argv[12:18])
cp0, cp1 = map(float, sys.argv[18:20])
sw = list(map(float, sys.argv[20:26]))
span = t1 - t0
m2e.pop("windows", None)
print(json.dumps({**m2e, "cpu_percent": 100 * ((ca1 - ca0) + (cb1 - cb0)) / hz / span,
                  "cpu_caller": 100 * (ca1 - ca0) / hz / span, "cpu_callee": 100 * (cb1 - cb0) / hz / span,
                  "cpu_pulse": 100 * (cp1 - cp0) / hz / span,
                  "switches_per_s": [(sw[i + 3] - sw[i]) / span for i in range(3)],
                  "vmhwm_kib": [ma, mb], "rss_kib": [ra, rb], "pss_kib": [pa, pb],
                  "anon_kib": [aa, ab], "load": open("/proc/loadavg").read().split()[:3],
                  "directions": rates["directions"][:2], "seconds": span}))
PY
  log "$name: $(cat "$work/$name.json" | cut -c1-160)"
}

# card_alone N: the sound server's CPU and wake-ups while the speech plays with no call at
# all (the benchmark's own player, its recorder and the two idle readers): what every
# peer's sound-server figure includes, measured between the calls so it shares their load.
card_alone() {
  record_bus "$work/card.wav"
  sleep 1
  t0=$(date +%s.%N); cp0=$(ticks "$pulse_pid"); sw0=$(switches "$pulse_pid")
  pacat --latency-msec=10 -d to_caller --file-format=wav "$work/speech.wav"
  t1=$(date +%s.%N); cp1=$(ticks "$pulse_pid"); sw1=$(switches "$pulse_pid")
  unbg "$rec"
  $py -c 'import json, sys
t0, t1, c0, c1, s0, s1, hz = map(float, sys.argv[1:])
print(json.dumps({"cpu_pulse": 100 * (c1 - c0) / hz / (t1 - t0), "switches_per_s": (s1 - s0) / (t1 - t0)}))' \
    "$t0" "$t1" "$cp0" "$cp1" "$sw0" "$sw1" "$(getconf CLK_TCK)" >"$results/card-$1.json"
  log "card alone $1: $(cat "$results/card-$1.json")"
}

results="$work/results"
mkdir -p "$results"

# ---- validation: a file whose right channel is the left delayed by 123 ms -------------
sox "$work/speech.wav" "$work/delayed.wav" pad 0.123 0
sox -M "$work/speech.wav" "$work/delayed.wav" -c 2 "$work/validate.wav" trim 0 "$seconds"
$py "$top/bench/mouth-to-ear.py" "$work/validate.wav" >"$results/validate.json"
# What known damage (white noise, the telephone band) does to this speech's scores.
$py "$top/bench/speech_quality.py" scale "$work/speech.wav" >"$results/scale.json"

# ---- the floor: the audio path alone ---------------------------------------------------
module=$(pactl load-module module-loopback source=caller_mic sink=from_callee latency_msec=1)
bg sleep 3600; s1=$last; bg sleep 3600; s2=$last   # stand-ins: no CPU to measure
measure floor "$s1" "$s2"
pactl unload-module "$module"
unbg "$s1"; unbg "$s2"
cp "$work/floor.json" "$results/floor.json"

# ---- hark: two processes, one per end ---------------------------------------------------
# hark_call N: one hark call, measured into $work/hark-N.json.
hark_call() {
  ensure_pulse
  ka=$(key); kb=$(key)
  # shellcheck disable=SC2086 # BENCH_HARK_ARGS are words to pass on
  bg sh -c "exec '$hark' media-test -q --json --seconds 0 --codec opus ${BENCH_HARK_ARGS:-} \
    --local 127.0.0.1:41000 --remote 127.0.0.1:42000 --send-key $kb --receive-key $ka \
    --source pulse:quiet.monitor --sink pulse:from_callee >'$work/hark-callee-$1.json'"
  callee=$last
  bg sh -c "exec '$hark' media-test -q --json --seconds 0 --codec opus ${BENCH_HARK_ARGS:-} \
    --local 127.0.0.1:42000 --remote 127.0.0.1:41000 --send-key $ka --receive-key $kb \
    --source pulse:caller_mic --sink pulse:discard >'$work/hark-caller-$1.json'"
  caller=$last
  sleep 2
  measure "hark-$1" "$caller" "$callee"
  unbg "$caller"; unbg "$callee"
  # Where the callee's adaptive jitter buffer ended (its statistics, printed on SIGTERM).
  $py - "$work/hark-$1.json" "$work/hark-callee-$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
try:
    r["callee_jitter_buffer_ms"] = json.loads(open(sys.argv[2]).readline())["jitter_buffer_ms"]
except (OSError, ValueError, KeyError):
    pass
json.dump(r, open(sys.argv[1], "w"))
PY
}

# ---- hark run: a real call between two nodes, direct or relayed ---------------------------
# call_nodes NAME N [--relay]: bench/bench-call-nodes.py holds a call up (its stdin a fifo
# this shell keeps open) while it is measured into $work/NAME-N.json.
call_nodes() {
  ensure_pulse
  d="$work/$1-$2"
  mkdir -p "$d"
  mkfifo "$d/hold"
  bg sh -c "exec $py '$top/bench/bench-call-nodes.py' '$(dirname "$hark")' '$d/nodes' ${3:-} \
    <'$d/hold' >'$d/call.json' 2>'$d/call.log'"
  nodes=$last
  exec 9>"$d/hold"
  for _ in $(seq 1 1200); do
    [ -s "$d/call.json" ] && break
    kill -0 "$nodes" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$d/call.json" ]; then
    log "$1: no call"; tail -30 "$d/call.log" >&2; exec 9>&-; unbg "$nodes"; exit 1
  fi
  pair=$($py -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["caller"], c["callee"])' "$d/call.json")
  sleep 1
  # The SN's overlay port is left out (keep-alives between the nodes and the SN).
  # shellcheck disable=SC2086 # two pids
  measure "$1-$2" $pair 33033
  exec 9>&-
  wait "$nodes" 2>/dev/null || true
  pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$nodes" | tr '\n' ' ')
  # Relayed, the media cross lo three times each way (alice -> coturn, coturn's relay port
  # for alice -> the one for bob, coturn -> bob): the bytes each way are the caller's legs,
  # what she sends to the TURN server (the busiest flow to it) and what it sends back.
  $py - "$work/$1-$2.json" "$d/call.json" "$work/$1-$2.rates.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["call"] = json.load(open(sys.argv[2]))
if r["call"].get("turn_port"):
    turn = r["call"]["turn_port"] - r["call"]["turn_port"] % 2
    flows = {f["ports"]: f for f in json.load(open(sys.argv[3]))["directions"]}
    to_turn = max((f for p, f in flows.items() if p.endswith(f"->{turn}")),
                  key=lambda f: f["ip_bytes_per_s"])
    caller = to_turn["ports"].split("->")[0]
    r["directions"] = [to_turn, flows.get(f"{turn}->{caller}",
                                          {"ports": f"{turn}->{caller}", "packets_per_s": 0,
                                           "ip_bytes_per_s": 0})]
json.dump(r, open(sys.argv[1], "w"))
PY
}
harkrun_call() { call_nodes harkrun "$1"; }
harkrelay_call() { call_nodes harkrelay "$1" --relay; }
# Two nodes talking through a third that hosts a conference of them: the host's mixer in
# the path (bench-call-nodes.py --conference; the conference section of benchmarks.md).
harkconf_call() { call_nodes harkconf "$1" --conference; }

# measured PEER N: run PEER's call N until its recording gave a usable correlation (a
# loaded machine or a sound server that restarted can leave a call without one), at most
# BENCH_ATTEMPTS times; the last attempt is kept either way.
measured() {
  for attempt in $(seq 1 "${BENCH_ATTEMPTS:-3}"); do
    "$1_call" "$2"
    grep -q '"median_ms"' "$work/$1-$2.json" && break
    log "$1 call $2: no usable correlation (attempt $attempt); calling again"
  done
  cp "$work/$1-$2.json" "$results/"
}

# ---- baresip 1.0: a direct SIP call, Opus mono 20 ms, SDES-SRTP ---------------------------
# Opus at 24 kbit/s mono: what the issue's figures (about 5,000 IP bytes/s each way) were
# measured with; baresip's own default is 2-channel at a far higher rate.
baresip_pair
# baresip_call N: one baresip call, measured into $work/baresip-N.json.
baresip_call() {
  ensure_pulse
  baresip_dial
  sleep 1
  measure "baresip-$1" "$caller" "$callee" 5060 5062
  unbg "$caller"; unbg "$callee"
}

# Interleaved, so a change in the machine's load falls on both peers alike.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# BENCH_MEDIA_PEERS: the peers to run (all by default).
peers=${BENCH_MEDIA_PEERS:-hark harkrun baresip harkrelay harkconf}
wanted() { case " $peers " in *" $1 "*) return 0 ;; esac; return 1; }
for i in $(seq 1 "$calls"); do
  ensure_pulse
  card_alone "$i"
  for peer in hark harkrun baresip; do
    if wanted "$peer"; then measured "$peer" "$i"; fi
  done
  if wanted harkrelay && command -v turnserver >/dev/null; then measured harkrelay "$i"; fi
  if wanted harkconf; then measured harkconf "$i"; fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

$py - "$results" "$calls" "$seconds" "$load_before" "$load_after" >"$out" <<'PY'
import json, os, statistics, sys
d, calls, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
loads = sys.argv[4:6]
load = lambda n: json.load(open(os.path.join(d, n + ".json")))
def peer(name):
    if not os.path.exists(os.path.join(d, f"{name}-1.json")):
        return None
    runs = [load(f"{name}-{i}") for i in range(1, calls + 1)]
    heard = [r for r in runs if "median_ms" in r] or [{"median_ms": float("nan"), "p25_ms": float("nan"), "p75_ms": float("nan")}]
    med = lambda k: statistics.median(r[k] for r in runs if k in r)
    dirs = [sorted(r["directions"], key=lambda x: -x["ip_bytes_per_s"]) for r in runs]
    each_way = [sum(x["ip_bytes_per_s"] for x in ds) / max(len(ds), 1) for ds in dirs]
    scored = lambda k: statistics.median(r[k] for r in runs if k in r) if any(k in r for r in runs) else None
    return {"calls": runs,
            "median_ms": statistics.median(r["median_ms"] for r in heard),
            "p25_ms": statistics.median(r["p25_ms"] for r in heard),
            "p75_ms": statistics.median(r["p75_ms"] for r in heard),
            "call_medians_ms": [r.get("median_ms") for r in runs],
            "cpu_percent": med("cpu_percent"),
            **{k: med(k) for k in ("cpu_caller", "cpu_callee", "cpu_pulse") if any(k in r for r in runs)},
            **({"switches_per_s": [statistics.median(r["switches_per_s"][i] for r in runs if "switches_per_s" in r)
                                   for i in range(3)]} if any("switches_per_s" in r for r in runs) else {}),
            "vmhwm_mib": statistics.median(max(r["vmhwm_kib"]) for r in runs) / 1024,
            **{f"{k}_mib": statistics.median(max(r[f"{k}_kib"]) for r in runs) / 1024
               for k in ("rss", "pss", "anon")},
            "paths": sorted({r["call"]["path"] for r in runs if "call" in r}),
            "ip_bytes_per_s_each_way": statistics.median(each_way),
            "call_ip_bytes_per_s_each_way": each_way,
            # The speech goes caller -> callee; the other way is the callee's quiet microphone.
            "ip_bytes_per_s_talking": statistics.median(ds[0]["ip_bytes_per_s"] for ds in dirs if ds),
            "ip_bytes_per_s_quiet": statistics.median(ds[-1]["ip_bytes_per_s"] for ds in dirs if ds),
            "call_ip_bytes_per_s_talking": [ds[0]["ip_bytes_per_s"] if ds else 0 for ds in dirs],
            "call_ip_bytes_per_s_quiet": [ds[-1]["ip_bytes_per_s"] if ds else 0 for ds in dirs],
            "stoi": scored("stoi"), "mcd_db": scored("mcd_db"),
            "call_stoi": [r.get("stoi") for r in runs], "call_mcd_db": [r.get("mcd_db") for r in runs],
            "stoi_realigned": scored("stoi_realigned"), "mcd_db_realigned": scored("mcd_db_realigned"),
            "call_stoi_realigned": [r.get("stoi_realigned") for r in runs],
            "call_mcd_db_realigned": [r.get("mcd_db_realigned") for r in runs],
            "packets_per_s_each_way": statistics.median(sum(x["packets_per_s"] for x in ds) / max(len(ds), 1) for ds in dirs)}
cards = [load(f"card-{i}") for i in range(1, calls + 1)]
card = {k: statistics.median(c[k] for c in cards) for k in ("cpu_pulse", "switches_per_s")}
card["call_cpu_pulse"] = [c["cpu_pulse"] for c in cards]
print(json.dumps({"validate": load("validate"), "floor": load("floor"), "card": card, "scale": load("scale"), "hark": peer("hark"),
                  "harkrun": peer("harkrun"), "harkrelay": peer("harkrelay"),
                  "harkconf": peer("harkconf"),
                  "baresip": peer("baresip"), "calls": calls, "seconds": seconds,
                  "load_before": loads[0], "load_after": loads[1]}, indent=1))
PY
log "results in $out"
