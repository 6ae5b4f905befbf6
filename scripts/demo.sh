#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# demo.sh BUILD: start a hark node on this machine and drive it through its control
# socket, as a custom frontend would: accounts, the overlay, search, a call (synthetic
# speech from alice to bob, a codec change, a table of what happened and the WAV bob heard),
# then a conference: carol joins, alice hosts her and bob, and each says what it heard.
# Alice's node serves her phone as a page too (the web frontend): the demo prints its link,
# and with WEB=1 (make demo WEB=1) keeps alice's and bob's nodes running until Ctrl-C.
set -eu
build=${1:-build}
hark="$build/hark"
work=$(mktemp -d /tmp/hark-demo.XXXXXX)
heard=/tmp/hark-demo-bob-heard.wav # kept after the demo: what bob heard in the call
node_pid=""
server_pid=""
bob_pid=""
carol_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$bob_pid" ] && kill "$bob_pid" 2>/dev/null || true
  [ -n "$carol_pid" ] && kill "$carol_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ hark ctl $*"; "$hark" ctl -c "$work/node.conf" --state-dir "$work" "$@"; }
server_ctl() { "$hark" ctl --socket "$work/loginsrv/ctl.sock" "$@"; }
bob_ctl() { echo "\$ hark ctl (bob's node) $*"; "$hark" ctl --socket "$work/bob/ctl.sock" "$@"; }
# The same without the echo, compact JSON: for the demo's own reading.
alice_json() { "$hark" ctl -c "$work/node.conf" --state-dir "$work" --json "$@"; }
bob_json() { "$hark" ctl --socket "$work/bob/ctl.sock" --json "$@"; }
carol_ctl() { echo "\$ hark ctl (carol's node) $*"; "$hark" ctl --socket "$work/carol/ctl.sock" "$@"; }
carol_json() { "$hark" ctl --socket "$work/carol/ctl.sock" --json "$@"; }

# wait_log LOG TEXT: until LOG has a line with TEXT, at most 10 s.
wait_log() {
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" && return 0
    sleep 0.05
  done
  cat "$1"
  echo "demo: '$2' did not appear in $1" >&2
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_call CTL STATE: until CTL's `calls` shows a call in STATE ("" : no call), at most 10 s.
wait_call() {
  for _ in $(seq 1 200); do
    states=$("$1" --json calls 2>/dev/null | jq -r '[.calls[].state] | join(" ")' 2>/dev/null || true)
    if [ -z "$2" ]; then [ -z "$states" ] && return 0; else case " $states " in *" $2 "*) return 0 ;; esac; fi
    sleep 0.05
  done
  echo "demo: no call in state '$2' ($1: $states)" >&2
  exit 1
}

# wait_roster: until alice's conference shows alice, bob and carol connected, at most 10 s.
wait_roster() {
  for _ in $(seq 1 200); do
    alice_json roster 2>/dev/null | jq -e '[.conferences[0].roster[]? | select(.state == "host" or
      .state == "connected")] | length == 3' >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  alice_json roster >&2 || true
  echo "demo: the conference did not connect everyone" >&2
  exit 1
}

# wait_grown FILE BYTES: until FILE has grown by BYTES (audio written to a WAV), at most 10 s.
wait_grown() {
  from=$(stat -c %s "$1" 2>/dev/null || echo 0)
  for _ in $(seq 1 200); do
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge $((from + $2)) ] && return 0
    sleep 0.05
  done
  echo "demo: $1 did not grow by $2 bytes" >&2
  exit 1
}

# wait_for FILE LOG: until FILE exists (a socket, say), at most 5 s.
wait_for() {
  for _ in $(seq 1 100); do
    [ -e "$1" ] && return 0
    sleep 0.05
  done
  cat "$2"
  echo "demo: $1 did not appear" >&2
  exit 1
}

step "hark --version"
"$hark" --version

step "hark plugins   (every plugin of the build, checked and initialised)"
"$hark" plugins

step "hark check-config conf/demo.conf"
"$hark" check-config conf/demo.conf

step "A login server on 127.0.0.1 (plugins sqlite + loginsrv + ctl; see conf/loginsrv.conf)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/loginsrv"
cat >"$work/loginsrv.conf" <<CONF
node: { name = "demo-loginsrv"; state_dir = "$work/loginsrv"; };
plugins: { load = (
  { name = "ctl"; },
  { name = "sqlite"; },
  { name = "loginsrv"; settings = { listen = "127.0.0.1"; port = $port; hosts = ["127.0.0.1"]; }; }
); };
CONF
"$hark" run -c "$work/loginsrv.conf" 2>"$work/loginsrv.log" &
server_pid=$!
wait_for "$work/loginsrv/ctl.sock" "$work/loginsrv.log"
cat "$work/loginsrv.log"

step "hark run: the demo node (conf/demo.conf), pinning the login server's CA"
# Alice's voice for the call below: 8 s of synthetic speech (bench/speech_quality.py).
/usr/bin/python3 bench/speech_quality.py speech "$work/speech.wav" 8
# What she hears goes to a WAV: the conference below measures it.
sed -e "s|source = \"tone\";|source = \"wav:$work/speech.wav\";|" \
  -e "s|sink = \"null\";|sink = \"wav:$work/alice-heard.wav\";|" conf/demo.conf >"$work/demo.conf"
cat >"$work/node.conf" <<CONF
@include "demo.conf"
login: { url = "https://127.0.0.1:$port"; ca = "$work/loginsrv/ca.pem"; device = "demo laptop"; };
CONF
cat "$work/node.conf"
"$hark" run -c "$work/node.conf" --state-dir "$work" 2>"$work/node.log" &
node_pid=$!
wait_for "$work/ctl.sock" "$work/node.log"
cat "$work/node.log"

step "A frontend connects: the state snapshot"
ctl state

step "The web frontend: alice's phone in a browser (a link good once, within 60 s)"
ctl web-url
echo "(make demo WEB=1 keeps the nodes running after the conference, to open a fresh one)"

step "A command with an argument"
ctl help state

step "Accounts: register alice and bob, log in as alice, ask bob to be a buddy"
# Passwords go on standard input: a command line is visible to every local user (ps).
echo "correct horse battery" | ctl register alice
echo "staple battery horse" | ctl register bob
echo "correct horse battery" | ctl login alice
ctl buddy-add bob "it's Alice"
ctl whoami

step "Logged in, with a public address and spare capacity: the node serves as a super node"
wait_log "$work/node.log" "serving as a super node"
grep -E "serving as a super node|linked" "$work/node.log" || true

step "Bob's node joins the overlay through it (UDP probe, TLS link, JOIN) and logs in"
mkdir -p "$work/bob"
cat >"$work/bob.conf" <<CONF
node: { name = "bob-phone"; supernode = false; state_dir = "$work/bob"; };
plugins: { load = ( { name = "udp"; }, { name = "tcp"; },
                    { name = "tls443"; settings = { tls_port = 34443; http_port = 34080; }; },
                    { name = "ctl"; }, { name = "search-loginsrv"; } ); };
network: { allow_loopback = true; bootstrap = ( { host = "127.0.0.1"; port = 33033; } ); };
login: { url = "https://127.0.0.1:$port"; ca = "$work/loginsrv/ca.pem"; };
media: { codecs = [ "opus", "g711" ]; source = "tone:440"; sink = "wav:$work/bob-heard.wav"; };
CONF
sed -i -e 's|{ name = "search-loginsrv"; } ); };|{ name = "search-loginsrv"; }, { name = "opus"; }, { name = "g711"; } ); };|' "$work/bob.conf"
"$hark" run -c "$work/bob.conf" 2>"$work/bob.log" &
bob_pid=$!
wait_for "$work/bob/ctl.sock" "$work/bob.log"
wait_log "$work/bob.log" "joined: attached"
cat "$work/bob.log"
t0=$(now_ms)
echo "staple battery horse" | bob_ctl login bob
login_ms=$(( $(now_ms) - t0 ))
bob_ctl requests
bob_ctl buddy-accept alice
bob_ctl overlay

step "Search: bob finds alice's device through his super node; names no device holds go to the login server"
bob_ctl search alice
bob_ctl search "ali*"
bob_ctl search nobody-here

step "The super node's view: its client bob, over TLS, proven by his certificate"
wait_log "$work/node.log" "is user bob"
ctl overlay

step "A call: alice calls bob; his phone rings, he answers, they talk, alice changes codec, hangs up"
t0=$(now_ms)
ctl search bob
search_ms=$(( $(now_ms) - t0 ))
ctl call bob
wait_call bob_json ringing
bob_ctl calls
bob_ctl answer
wait_call alice_json active
sleep 2
ctl codec g711
sleep 4
alice_json stats >"$work/alice-stats.json"
bob_json stats >"$work/bob-stats.json"
jq . "$work/alice-stats.json"
ctl hangup
wait_call bob_json "" # ended: no call left
bob_ctl call-log

step "What happened"
cp "$work/bob-heard.wav" "$heard"
/usr/bin/python3 bench/speech_quality.py score "$work/speech.wav" "$heard" >"$work/score.json"
jq -r --argjson login "$login_ms" --argjson search "$search_ms" \
  --slurpfile bob "$work/bob-stats.json" --slurpfile score "$work/score.json" '
  def sec: (.duration_s // 1);
  "  login (bob, ctl round trip)   \($login) ms",
  "  search (alice finds bob)      \($search) ms",
  "  call set-up, dial to audio    \(.setup_ms) ms (bob answered by script), answer to audio \(.connect_ms // "?") ms",
  "  path                          \(.path.kind) \(.path.transport) \(.path.local) -> \(.path.remote)",
  "  codec (after the swap)        \(.codec)",
  "  sent by alice                 \(.bytes_sent) bytes, \((.send_bitrate // 0) / 8 | floor) bytes/s lately",
  "  lost (alice -> bob)           \($bob[0].lost) packets, \($bob[0].concealed_samples) samples concealed",
  "  bob'"'"'s jitter buffer          \($bob[0].jitter_buffer_ms) ms",
  "  speech bob heard             \($score[0].seconds) s: STOI \($score[0].stoi) (1: the speech itself), mel-cepstral distortion \($score[0].mcd_db) dB"
' "$work/alice-stats.json"
echo "  what bob heard (a WAV file)   $heard"

step "A conference: carol joins; alice hosts bob and carol and mixes, each hears the others"
# Each sends its own sound: alice her speech again, bob his 440 Hz tone, carol 660 Hz.
mkdir -p "$work/carol"
cat >"$work/carol.conf" <<CONF
node: { name = "carol-laptop"; supernode = false; state_dir = "$work/carol"; };
plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, { name = "ctl"; },
                    { name = "search-loginsrv"; }, { name = "opus"; }, { name = "g711"; } ); };
network: { allow_loopback = true; bootstrap = ( { host = "127.0.0.1"; port = 33033; } ); };
login: { url = "https://127.0.0.1:$port"; ca = "$work/loginsrv/ca.pem"; };
media: { codecs = [ "opus", "g711" ]; source = "tone:660"; sink = "wav:$work/carol-heard.wav"; };
CONF
echo "tuba lantern quartz" | ctl register carol
"$hark" run -c "$work/carol.conf" 2>"$work/carol.log" &
carol_pid=$!
wait_for "$work/carol/ctl.sock" "$work/carol.log"
wait_log "$work/carol.log" "joined: attached"
echo "tuba lantern quartz" | carol_ctl login carol
t0=$(now_ms)
ctl conference bob,carol
wait_call bob_json ringing
bob_ctl answer
wait_call carol_json ringing
carol_ctl answer
wait_roster
conference_ms=$(( $(now_ms) - t0 ))
# 2.5 s of the mix at each (48 kHz 16-bit WAVs): the last 2 s are measured, as the
# conference tests do (tests/integration/test-conference.c).
for who in alice bob carol; do wait_grown "$work/$who-heard.wav" 240000; done
carol_ctl roster
alice_json roster >"$work/roster.json"
bob_json roster >"$work/bob-roster.json"
carol_json roster >"$work/carol-roster.json"
ctl end
wait_call bob_json ""
wait_call carol_json ""
wait_call alice_json ""

step "What the conference did"
for who in alice bob carol; do
  /usr/bin/python3 bench/speech_quality.py tones "$work/$who-heard.wav" 2 440 660 >"$work/$who-tones.json"
done
jq -r --argjson setup "$conference_ms" --slurpfile bob "$work/bob-roster.json" \
  --slurpfile carol "$work/carol-roster.json" '
  .conferences[0] as $c |
  "  host                          \($c.host) (bob'"'"'s node says \($bob[0].conferences[0].host), carol'"'"'s \($carol[0].conferences[0].host)); mixing at \($c.rate) Hz",
  "  roster                        \([$c.roster[] | "\(.user) (\(.state))"] | join(", "))",
  "  set-up, dial to all connected \($setup) ms (bob and carol answered by script)",
  "  legs (at the host)            \([$c.legs[] | "\(.user) \(.codec)"] | join(", ")); \($c.ticks) mixer ticks, \($c.late_ticks) late"
' "$work/roster.json"
echo "  what each heard in its last 2 s (a tone's amplitude: full scale 32767, sent at about 9800):"
jq -r -n --slurpfile a "$work/alice-tones.json" --slurpfile b "$work/bob-tones.json" \
  --slurpfile c "$work/carol-tones.json" '
  "    alice (sends speech)        bob'"'"'s 440 Hz \($a[0].levels."440"), carol'"'"'s 660 Hz \($a[0].levels."660"); the rest RMS \($a[0].rest_rms) (her own speech is not sent back)",
  "    bob (sends 440 Hz)          carol'"'"'s 660 Hz \($b[0].levels."660"), alice'"'"'s speech RMS \($b[0].rest_rms); his own 440 Hz \($b[0].levels."440")",
  "    carol (sends 660 Hz)        bob'"'"'s 440 Hz \($c[0].levels."440"), alice'"'"'s speech RMS \($c[0].rest_rms); her own 660 Hz \($c[0].levels."660")"'
carol_ctl shutdown >/dev/null
wait "$carol_pid" && echo "carol's node exited with status 0"
carol_pid=""

if [ "${WEB:-}" = 1 ]; then
  step "WEB=1: alice's and bob's nodes keep running until you press Ctrl-C"
  echo "Open this link in a browser on this machine (it works once, within 60 s):"
  echo
  echo "  $(alice_json web-url | jq -r .url)"
  echo
  echo "Another link:   $hark ctl -c $work/node.conf --state-dir $work web-url"
  echo "Drive bob:      $hark ctl --socket $work/bob/ctl.sock help   (call alice, msg alice hi, ...)"
  # Ctrl-C ends the wait; the EXIT trap stops the nodes.
  sleeper=""
  trap 'echo; echo "demo: stopping the nodes"; [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; exit 0' INT TERM
  while :; do
    sleep 3600 &
    sleeper=$!
    wait "$sleeper" || true
  done
fi

step "Bob's link moves to the web-port transport (TLS on 34443) without logging out"
bob_ctl transport tls443
bob_ctl whoami
bob_ctl shutdown >/dev/null
wait "$bob_pid" && echo "bob's node exited with status 0"
bob_pid=""

step "Events: a second client watches while the first one stops the node"
"$hark" ctl -c "$work/node.conf" --state-dir "$work" --watch &
watch_pid=$!
sleep 0.3
ctl shutdown
wait "$node_pid" && echo "node exited with status 0"
node_pid=""
wait "$watch_pid" || true
server_ctl shutdown >/dev/null
wait "$server_pid" && echo "login server exited with status 0"
server_pid=""

step "The identity and the device certificate stay private"
ls -l "$work/identity.pem" "$work/certificate.pem"
echo "The demo state directory is removed at exit."
