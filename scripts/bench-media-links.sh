#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench-media-links.sh BUILD OUT.json: speech quality of a hark call and of a baresip 1.0
# call over shaped links (issue 16, points 4-6): a link limited to 1.5 KB/s each way,
# 5/10/20 % random loss, 0-20/40/60 ms of jitter, and a clean baseline. The caller and the
# callee each live in a network namespace of their own, joined by one veth pair; once a
# call is up, each side shapes its own egress, so every condition holds each way:
#   rate    tbf (burst 1600 bytes: a full-sized packet must fit, as tbf drops anything
#           larger than its bucket; latency 100 ms: a queue of about 1.2 s at this rate
#           once the sender overruns it, then tail drops)
#   loss    nftables `numgen random` drops in postrouting (the kernel has no sch_netem)
#   jitter  NFQUEUE and tests/netlab/nfq-delay 0 J: each packet held a uniform 0..J ms,
#           never overtaking the one ahead (no reordering; see nfq-delay.c)
# The sound card is bench-media.sh's (scripts/bench-media-lib.sh): one PulseAudio with
# null sinks, whose unix socket serves both namespaces; the speech is played into the
# caller's microphone and one stereo recording holds it (left) and what the callee plays
# (right), scored by bench/mouth-to-ear.py (delay, STOI, mel-cepstral distortion; --realign:
# each quarter second at its own delay, as the receivers here move theirs). The
# media's packets and IP bytes each way are counted twice by nftables: offered (as the
# sender's packets leave, before the rate limit) and delivered (as they arrive, after it
# and after the loss).
# hark: `hark media-test` with the codec's defaults (its RTCP reports drive the Opus
# adaptation, as in a call). baresip: bench-media.sh's configuration (Opus 24 kbit/s mono).
# hark and baresip calls alternate within each condition. Needs root and nfq-delay.
set -eEu
trap 'echo "bench-media-links: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
calls=${BENCH_LINK_CALLS:-3}
seconds=${BENCH_LINK_SECONDS:-10}
# BENCH_LINK_CONDITIONS: clean, rateN (bytes/s each way), lossP (%), jitterJ (ms).
conditions=${BENCH_LINK_CONDITIONS:-clean rate1500 loss5 loss10 loss20 jitter20 jitter40 jitter60}
peers=${BENCH_LINK_PEERS:-hark baresip}
bench_name=bench-media-links
# Each call is set up on a plain link, then shaped this long before the speech: time for
# a few RTCP reports and the adaptation they drive. (SIP over a link that drops 70 % of
# its packets failed one baresip call in three; the set-up is not what is measured.)
settle=${BENCH_LINK_SETTLE:-3}
# A narrow link: longer, as a call on one would be: hark's Opus steps down to packets that
# fit within 10-25 s (a full queue lets few RTCP reports through). Both peers wait alike.
rate_settle=${BENCH_LINK_RATE_SETTLE:-30}
settle_for() { case $1 in rate*) echo "$rate_settle" ;; *) echo "$settle" ;; esac; }
case $build in /*) ;; *) build="$top/$build" ;; esac
hark="$build/hark"
nfq=${NETLAB_NFQ_DELAY:-$build/tests/netlab/nfq-delay}
py=/usr/bin/python3   # Debian's, with python3-numpy and python3-scipy
[ "$(id -u)" = 0 ] || { echo "$bench_name: needs root (network namespaces)" >&2; exit 1; }
[ -x "$nfq" ] || { echo "$bench_name: no nfq-delay at $nfq (libnetfilter-queue-dev)" >&2; exit 1; }
"$here/install-deps.sh" "$top/deps/bench-debian.txt" >&2

work=$(mktemp -d /tmp/hark-bench-links.XXXXXX)
pids=""
ns_a=hark-links-$$-a   # the caller: 10.99.0.1 on veth va
ns_b=hark-links-$$-b   # the callee: 10.99.0.2 on veth vb
addr_a=10.99.0.1
addr_b=10.99.0.2
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# shellcheck source-path=SCRIPTDIR source=bench-media-lib.sh
. "$here/bench-media-lib.sh"
started=$(date +%s)

pulse_config
start_pulse
gst-inspect-1.0 opusenc >/dev/null   # the plugin registry, before the first call
make_speech

# ---- the link ----------------------------------------------------------------------------
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add va netns "$ns_a" type veth peer name vb netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev va
ip -n "$ns_b" addr add "$addr_b/24" dev vb
for n in "$ns_a" "$ns_b"; do ip -n "$n" link set lo up; done
ip -n "$ns_a" link set va up
ip -n "$ns_b" link set vb up
NFQ_QUEUE=7
delay_pids=""

# shape_side NS DEV CONDITION: the link from NS through DEV under CONDITION: rate and
# jitter on NS's egress, loss as the far side's packets come in (a drop on the way out
# would fail the sender's send with EPERM, which no real link does). Always two nftables counters of the media (every
# UDP packet but SIP's): what NS offers (after the jitter, before the rate limit) and what
# reaches NS (after the loss).
shape_side() {
  local ns=$1 dev=$2 what=${3%%[0-9]*} value=${3##*[a-z]} loss=""
  case $what in
    clean) ;;
    rate) ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$((value * 8))bit" \
            burst 1600 latency 100ms ;;
    loss) loss="iifname \"$dev\" udp sport != 5060-5062 udp dport != 5060-5062 numgen random mod 10000 < $((value * 100)) drop" ;;
    jitter)
      ip netns exec "$ns" "$nfq" "$NFQ_QUEUE" 0 "$value" >"$work/nfq-$ns.out" 2>>"$work/nfq.log" &
      delay_pids="$delay_pids $!"; pids="$pids $!"
      for _ in $(seq 1 100); do grep -q '^ready' "$work/nfq-$ns.out" && break; sleep 0.05; done
      grep -q '^ready' "$work/nfq-$ns.out" || { log "nfq-delay did not start"; exit 1; }
      ip netns exec "$ns" iptables -t mangle -A POSTROUTING -o "$dev" -j NFQUEUE \
        --queue-num "$NFQ_QUEUE" --queue-bypass ;;
    *) log "unknown condition '$3' (clean, rateN, lossP, jitterJ)"; exit 1 ;;
  esac
  ip netns exec "$ns" nft -f - <<RULES
table ip linkbench {
  chain out { type filter hook postrouting priority 300; policy accept;
    oifname "$dev" udp sport != 5060-5062 udp dport != 5060-5062 counter
  }
  chain in { type filter hook prerouting priority raw; policy accept;
    $loss
    iifname "$dev" udp sport != 5060-5062 udp dport != 5060-5062 counter
  }
}
RULES
}

# unshape: both sides back to a plain link (the delay helpers let what they hold go).
unshape() {
  local p ns
  for p in $delay_pids; do unbg "$p"; done
  delay_pids=""
  for ns in "$ns_a" "$ns_b"; do
    ip netns exec "$ns" tc qdisc del dev "$([ "$ns" = "$ns_a" ] && echo va || echo vb)" root 2>/dev/null || true
    ip netns exec "$ns" nft delete table ip linkbench 2>/dev/null || true
    ip netns exec "$ns" iptables -t mangle -F POSTROUTING 2>/dev/null || true
  done
}

shape() {
  unshape
  shape_side "$ns_a" va "$1"
  shape_side "$ns_b" vb "$1"
}

# counted NS CHAIN: "packets bytes" NS's counter in CHAIN (out: offered, in: delivered).
counted() {
  ip netns exec "$1" nft list chain ip linkbench "$2" |
    awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") p = $(i + 1); else if ($i == "bytes") b = $(i + 1) }
         END { print p + 0, b + 0 }'
}
# counters: the four, caller's out, callee's in, callee's out, caller's in.
counters() {
  echo "$(counted "$ns_a" out) $(counted "$ns_b" in) $(counted "$ns_b" out) $(counted "$ns_a" in)"
}

# ---- measuring one call ------------------------------------------------------------------
# measure NAME: play the speech into the caller and score what came out; $work/NAME.json.
measure() {
  local name=$1
  bg parecord -d bus.monitor --rate=48000 --channels=2 --format=s16le --latency-msec=10 \
    --file-format=wav "$work/$name.wav"
  local rec=$last
  sleep 1
  local load t0 t1 c0 c1
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s.%N); c0=$(counters)
  pacat --latency-msec=10 -d to_caller --file-format=wav "$work/speech.wav"
  t1=$(date +%s.%N); c1=$(counters)
  sleep 2.5   # what the link still holds (a full rate-limited queue: about 1.2 s)
  unbg "$rec"
  $py "$top/bench/mouth-to-ear.py" "$work/$name.wav" --max-delay 2 --realign 0.25 >"$work/$name.m2e.json"
  $py - "$work/$name" "$t0" "$t1" "$c0" "$c1" "$load" >"$work/$name.json" <<'PY'
import json, sys
base = sys.argv[1]
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
c0, c1 = (list(map(float, x.split())) for x in sys.argv[4:6])
span = t1 - t0
rate = [(b - a) / span for a, b in zip(c0, c1)]
m2e = json.load(open(base + ".m2e.json"))
m2e.pop("windows", None)
way = lambda i: {"packets_per_s": rate[i], "ip_bytes_per_s": rate[i + 1]}
print(json.dumps({**m2e, "seconds": span, "load": sys.argv[6].split(),
                  "offered": [way(0), way(4)], "delivered": [way(2), way(6)]}))
PY
  log "$name: $(cut -c1-200 "$work/$name.json")"
}

# ---- the peers ---------------------------------------------------------------------------
# hark_call NAME CONDITION: hark media-test at each end, its statistics (printed on SIGTERM)
# kept; each end's log in NAME.caller.log / NAME.callee.log (BENCH_KEEP keeps them; with
# G_MESSAGES_DEBUG=hark-opus they hold every RTCP report the Opus adaptation read).
hark_call() {
  ensure_pulse
  local ka kb callee caller
  ka=$(key); kb=$(key)
  # shellcheck disable=SC2086 # BENCH_HARK_ARGS are words to pass on
  bg ip netns exec "$ns_b" sh -c "exec '$hark' media-test -q --json --seconds 0 --codec opus ${BENCH_HARK_ARGS:-} \
    --local $addr_b:41000 --remote $addr_a:42000 --send-key $kb --receive-key $ka \
    --source pulse:quiet.monitor --sink pulse:from_callee >'$work/$1.callee.stats' 2>'$work/$1.callee.log'"
  callee=$last
  bg ip netns exec "$ns_a" sh -c "exec '$hark' media-test -q --json --seconds 0 --codec opus ${BENCH_HARK_ARGS:-} \
    --local $addr_a:42000 --remote $addr_b:41000 --send-key $ka --receive-key $kb \
    --source pulse:caller_mic --sink pulse:discard >'$work/$1.caller.stats' 2>'$work/$1.caller.log'"
  caller=$last
  sleep 1   # the pipelines up
  shape "$2"
  sleep "$(settle_for "$2")"
  measure "$1"
  unbg "$caller"; unbg "$callee"
  unshape
  $py - "$work/$1.json" "$work/$1.caller.stats" "$work/$1.callee.stats" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
keep = ("encoder_bitrate", "fec", "send_bitrate", "lost", "late_packets", "concealed_samples",
        "played_samples", "jitter_buffer_ms", "jitter_buffer_grown", "jitter_buffer_shrunk",
        "jitter_ms", "rtt_ms", "remote_loss_fraction")
for end, path in (("caller", sys.argv[2]), ("callee", sys.argv[3])):
    try:
        st = json.loads(open(path).readline())
        r[f"{end}_stats"] = {k: st[k] for k in keep if k in st}
    except (OSError, ValueError):
        pass
json.dump(r, open(sys.argv[1], "w"))
PY
}

baresip_pair "$addr_a" "$addr_b"
# baresip_call NAME CONDITION: one baresip call.
baresip_call() {
  ensure_pulse
  local callee caller
  bg ip netns exec "$ns_b" sh -c "exec baresip -f '$work/bs-callee' -n $addr_b >'$work/$1.callee.log' 2>&1"
  callee=$last
  sleep 1
  bg ip netns exec "$ns_a" sh -c "exec baresip -f '$work/bs-caller' -n $addr_a -e '/dial sip:callee@$addr_b:5062' >'$work/$1.caller.log' 2>&1"
  caller=$last
  for _ in $(seq 1 100); do grep -qs "Call established" "$work/$1.caller.log" && break; sleep 0.1; done
  grep -q "Call established" "$work/$1.caller.log" || { log "$1: no call"; tail -5 "$work/$1.caller.log" >&2; exit 1; }
  shape "$2"
  sleep "$(settle_for "$2")"
  measure "$1"
  unbg "$caller"; unbg "$callee"
  unshape
}

# ---- the run: per condition, hark and baresip alternating -------------------------------
results="$work/results"
mkdir -p "$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for condition in $conditions; do
  for i in $(seq 1 "$calls"); do
    for peer in $peers; do
      "${peer}_call" "$peer-$condition-$i" "$condition"
      cp "$work/$peer-$condition-$i.json" "$results/"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

$py - "$results" "$calls" "$seconds" "$load_before" "$load_after" "$(( $(date +%s) - started ))" \
    "$conditions" "$peers" "$settle" "$rate_settle" >"$out" <<'PY'
import json, os, statistics, sys
d, calls, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load_before, load_after, total_s = sys.argv[4], sys.argv[5], int(sys.argv[6])
conditions, peers = sys.argv[7].split(), sys.argv[8].split()
settle, rate_settle = float(sys.argv[9]), float(sys.argv[10])

def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}

def peer(name, condition):
    runs = [json.load(open(os.path.join(d, f"{name}-{condition}-{i}.json"))) for i in range(1, calls + 1)]
    way = lambda key, i, field: spread([r[key][i][field] for r in runs])
    out = {"calls": len(runs),
           "stoi": spread([r.get("stoi") for r in runs]), "mcd_db": spread([r.get("mcd_db") for r in runs]),
           "m2e_ms": spread([r.get("median_ms") for r in runs]),
           "delivered_bytes": [way("delivered", i, "ip_bytes_per_s") for i in (0, 1)],
           "delivered_packets": [way("delivered", i, "packets_per_s") for i in (0, 1)],
           "offered_bytes": [way("offered", i, "ip_bytes_per_s") for i in (0, 1)],
           "offered_packets": [way("offered", i, "packets_per_s") for i in (0, 1)],
           "loads": [r["load"][0] for r in runs]}
    for end in ("caller", "callee"):
        stats = [r[f"{end}_stats"] for r in runs if f"{end}_stats" in r]
        if stats:
            out[f"{end}_stats"] = stats
    return out

print(json.dumps({"conditions": [{"name": c, **{p: peer(p, c) for p in peers}} for c in conditions],
                  "calls": calls, "seconds": seconds, "load_before": load_before,
                  "load_after": load_after, "total_s": total_s, "settle_s": settle,
                  "rate_settle_s": rate_settle}, indent=1))
PY
log "results in $out"
