#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench-media-threads.sh BUILD ROUNDS VARIANT...: where a call's CPU goes, thread by thread,
# for before/after comparisons of the media engine beside baresip 1.0 in one run. Each
# round plays the media benchmark's speech (bench-media-lib.sh: one PulseAudio with null
# sinks as the sound card) through one `hark media-test` call per VARIANT and then one
# baresip call, so the machine's load falls on all alike; each call prints the CPU of
# caller, callee and sound server (% of one core while the speech played) and, per thread,
# context switches a second / CPU, from /proc. The last lines give each variant's medians.
# A VARIANT is words for media-test at both ends; a word E:NAME=VALUE is put in both ends'
# environment, C:WORD goes to the callee only. Examples:
#   scripts/bench-media-threads.sh build 3 "-P /tmp/old-plugins" ""   (an old plugin vs now)
#   scripts/bench-media-threads.sh build 3 "" "C:--setting=complexity=0"
# Runs in a network namespace that has only lo; needs what bench-media.sh needs.
set -eEu
if [ "${HARK_BENCH_NETNS:-}" != 1 ]; then
  exec unshare --net env HARK_BENCH_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=$1; rounds=$2; shift 2
case $build in /*) hark="$build/hark" ;; *) hark="$top/$build/hark" ;; esac
# shellcheck disable=SC2034 # bench-media-lib.sh reads both
bench_name=bench-media-threads
work=$(mktemp -d /tmp/hark-bench-threads.XXXXXX)
seconds=${BENCH_CALL_SECONDS:-20}
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# shellcheck source-path=SCRIPTDIR source=bench-media-lib.sh
. "$here/bench-media-lib.sh"
pulse_config
start_pulse
gst-inspect-1.0 opusenc >/dev/null
make_speech
baresip_pair

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# threads PID: a line per thread: name, context switches, CPU ticks.
threads() {
  for t in /proc/"$1"/task/*; do
    echo "$(tr ' ' _ <"$t/comm") $(awk '/ctxt_switches/ { s += $2 } END { print s }' "$t/status") $(awk '{ print $14 + $15 }' "$t/stat")"
  done
}
# measure NAME CALLER CALLEE: play the speech into the caller; one RESULT line and three
# thread lines on stdout, the numbers in $work/NAME.results.
measure() {
  sleep 1
  threads "$2" >"$work/a0"; threads "$3" >"$work/b0"; threads "$pulse_pid" >"$work/p0"
  t0=$(date +%s.%N); a0=$(ticks "$2"); b0=$(ticks "$3"); p0=$(ticks "$pulse_pid")
  pacat --latency-msec=10 -d to_caller --file-format=wav "$work/speech.wav"
  t1=$(date +%s.%N); a1=$(ticks "$2"); b1=$(ticks "$3"); p1=$(ticks "$pulse_pid")
  threads "$2" >"$work/a1"; threads "$3" >"$work/b1"; threads "$pulse_pid" >"$work/p1"
  /usr/bin/python3 - "$1" "$work" "$(getconf CLK_TCK)" "$t0" "$t1" "$a0" "$a1" "$b0" "$b1" "$p0" "$p1" <<'PY'
import sys
name, w, hz = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0, t1, a0, a1, b0, b1, p0, p1 = map(float, sys.argv[4:12])
span = t1 - t0
cpu = [100 * (a1 - a0) / hz / span, 100 * (b1 - b0) / hz / span, 100 * (p1 - p0) / hz / span]
print(f"RESULT {name} caller {cpu[0]:.1f} callee {cpu[1]:.1f} sound-server {cpu[2]:.1f} "
      f"all {sum(cpu):.1f}")
for who, f in (("caller", "a"), ("callee", "b"), ("sound server", "p")):
    before = [l.split() for l in open(f"{w}/{f}0")]
    after = [l.split() for l in open(f"{w}/{f}1")]
    print(f"  {who}:", " ".join(f"{n}:{(int(s1) - int(s0)) / span:.0f}/{100 * (int(k1) - int(k0)) / hz / span:.1f}"
                               for (_, s0, k0), (n, s1, k1) in zip(before, after)))
with open(f"{w}/{name}.results", "a") as out:
    print(*cpu, file=out)
PY
}
hark_call() {
  name=$1; shift
  envs=""; args=""; callee_args=""
  for w in "$@"; do
    case $w in E:*) envs="$envs ${w#E:}" ;; C:*) callee_args="$callee_args ${w#C:}" ;; *) args="$args $w" ;; esac
  done
  ka=$(key); kb=$(key)
  bg sh -c "exec env $envs '$hark' media-test -q --seconds 0 --codec opus $args $callee_args \
    --local 127.0.0.1:41000 --remote 127.0.0.1:42000 --send-key $kb --receive-key $ka \
    --source pulse:quiet.monitor --sink pulse:from_callee >/dev/null"
  callee=$last
  bg sh -c "exec env $envs '$hark' media-test -q --seconds 0 --codec opus $args \
    --local 127.0.0.1:42000 --remote 127.0.0.1:41000 --send-key $ka --receive-key $kb \
    --source pulse:caller_mic --sink pulse:discard >/dev/null"
  caller=$last
  sleep 2
  measure "$name" "$caller" "$callee"
  unbg "$caller"; unbg "$callee"
}
baresip_call() {
  baresip_dial
  measure baresip "$caller" "$callee"
  unbg "$caller"; unbg "$callee"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$rounds"); do
  i=0
  for variant in "$@"; do
    i=$((i + 1))
    ensure_pulse
    echo "variant $i: ${variant:-(defaults)}"
    # shellcheck disable=SC2086 # a variant is words
    hark_call "hark$i" $variant
  done
  ensure_pulse
  baresip_call
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$work" "$@" <<'PY'
import statistics, sys
w, variants = sys.argv[1], sys.argv[2:]
def rows(name):
    return [list(map(float, l.split())) for l in open(f"{w}/{name}.results")]
bs = rows("baresip")
names = [(f"hark{i + 1}", f"hark {v or '(defaults)'}") for i, v in enumerate(variants)]
for name, label in names + [("baresip", "baresip 1.0")]:
    r = rows(name)
    med = [statistics.median(x[k] for x in r) for k in range(3)]
    ratio = statistics.median(sum(x) / sum(b) for x, b in zip(r, bs))
    print(f"MEDIAN {label}: caller {med[0]:.1f} callee {med[1]:.1f} sound server {med[2]:.1f} "
          f"all {statistics.median(sum(x) for x in r):.1f}; against baresip's call of the same "
          f"round, median {ratio:.2f}x")
PY
