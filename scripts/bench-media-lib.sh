# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2154 # $work, $seconds: the sourcing script's
# bench-media-lib.sh: what the media benchmarks share (sourced by scripts/bench-media.sh on
# loopback and scripts/bench-media-links.sh on shaped links): background processes, the
# sound server (one PulseAudio with null sinks as the sound card), the test speech and
# baresip's configuration. Expects $work (a private directory), $seconds (the speech's
# length) and, for log, $bench_name.
log() { echo "${bench_name:-bench-media}: $*" >&2; }
bg() { "$@" & pids="$pids $!"; last=$!; }
unbg() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' '); }
# key: an SRTP master key and salt (30 bytes, hex) for hark media-test.
key() { od -An -tx1 -N30 /dev/urandom | tr -d ' \n'; }

# ---- the sound server ----------------------------------------------------------------
# pulse_config: the daemon's script in $work and the environment its clients need (its
# unix socket also serves processes in other network namespaces).
pulse_config() {
  export HOME="$work" XDG_RUNTIME_DIR="$work" PULSE_SERVER="unix:$work/pulse.sock"
  sed "s|@WORK@|$work|g" "$top/bench/sound-card.pa" >"$work/pa.pa"
}
# No real-time scheduling: as root PulseAudio would take it, and the kernel's RLIMIT_RTTIME
# then kills it (SIGKILL) in the middle of a long run with a 1 ms loopback.
start_pulse() {
  bg pulseaudio -n -F "$work/pa.pa" --daemonize=no --system=false --exit-idle-time=-1 \
    --disallow-exit --realtime=no --high-priority=no --log-target=file:"$work/pulse.log"
  # shellcheck disable=SC2034 # the sourcing script measures it
  pulse_pid=$last
  for _ in $(seq 1 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  pactl info >/dev/null || { log "PulseAudio did not start"; cat "$work/pulse.log" >&2; exit 1; }
  # An idle null sink sleeps in 2 s blocks and delays the first capture: keep 10 ms readers.
  bg sh -c 'exec pacat -r --latency-msec=10 -d bus.monitor >/dev/null 2>&1'
  bg sh -c 'exec pacat -r --latency-msec=10 -d quiet.monitor >/dev/null 2>&1'
}
# PulseAudio 16 has crashed (SIGSEGV) here once between two calls, as clients came and
# went: a call starts only with a sound server that answers.
ensure_pulse() {
  pactl info >/dev/null 2>&1 && return 0
  log "PulseAudio is gone (see $work/pulse.log); starting it again"
  start_pulse
}

# ---- the test speech: espeak-ng, deterministic, 48 kHz mono ----------------------------
# make_speech: $seconds of it in $work/speech.wav.
make_speech() {
  local text="The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.
It is easy to tell the depth of a well. These days a chicken leg is a rare dish.
Rice is often served in round bowls. The juice of lemons makes fine punch."
  espeak-ng -w "$work/one.wav" "$text"
  sox "$work/one.wav" -r 48000 -c 1 -b 16 "$work/once.wav"
  reps=$(awk -v d="$(soxi -D "$work/once.wav")" -v s="$seconds" 'BEGIN { print int(s / d) + 1 }')
  sox "$work/once.wav" "$work/speech-long.wav" repeat "$reps"
  sox "$work/speech-long.wav" "$work/speech.wav" trim 0 "$seconds"
}

# baresip_config DIR PORT SOURCE PLAYER [ADDRESS]: a baresip 1.0 configuration (Opus, pulse,
# SRTP) listening for SIP on ADDRESS (127.0.0.1):PORT.
baresip_config() {
  mkdir -p "$1"
  cat >"$1/config" <<CONF
poll_method		epoll
sip_listen		${5:-127.0.0.1}:$2
audio_player		pulse,$4
audio_source		pulse,$3
audio_alert		pulse,discard
audio_path		/usr/share/baresip
module_path		/usr/lib/baresip/modules
module			opus.so
module			pulse.so
module			srtp.so
module_app		account.so
module_app		menu.so
opus_bitrate		24000
opus_stereo		no
opus_sprop_stereo	no
CONF
}

# baresip_pair [CALLER_ADDRESS CALLEE_ADDRESS]: the two baresip ends every media benchmark
# calls with (both on 127.0.0.1 by default): $work/bs-caller records the caller's microphone
# and plays to the discard sink, $work/bs-callee records the quiet microphone, plays to
# from_callee and answers by itself.
baresip_pair() {
  local a=${1:-127.0.0.1} b=${2:-127.0.0.1}
  baresip_config "$work/bs-caller" 5060 caller_mic discard "$a"
  baresip_config "$work/bs-callee" 5062 quiet.monitor from_callee "$b"
  echo "<sip:caller@$a:5060>;regint=0;mediaenc=srtp;audio_codecs=opus/48000/2" >"$work/bs-caller/accounts"
  echo "<sip:callee@$b:5062>;regint=0;mediaenc=srtp;audio_codecs=opus/48000/2;answermode=auto" >"$work/bs-callee/accounts"
}

# baresip_dial: the pair's callee started, then its caller dialling it, on 127.0.0.1; returns
# once the call is established (exits if it is not within 10 s), with $caller and $callee
# their pids.
# shellcheck disable=SC2034 # caller and callee are the sourcing script's
baresip_dial() {
  bg sh -c "exec baresip -f '$work/bs-callee' -n 127.0.0.1 >'$work/bs-callee.log' 2>&1"
  callee=$last
  sleep 1
  bg sh -c "exec baresip -f '$work/bs-caller' -n 127.0.0.1 -e '/dial sip:callee@127.0.0.1:5062' >'$work/bs-caller.log' 2>&1"
  caller=$last
  for _ in $(seq 1 100); do grep -q "Call established" "$work/bs-caller.log" && break; sleep 0.1; done
  grep -q "Call established" "$work/bs-caller.log" || { log "baresip: no call"; tail "$work/bs-caller.log" >&2; exit 1; }
}
