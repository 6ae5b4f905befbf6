#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench.sh BUILD: run the benchmarks and write their tables into docs/benchmarks.md.
# The login server (logins per second and bytes per login, SQLite and PostgreSQL),
# the overlay (join times and bytes; idle clients one super node holds), the directory
# (bench/sim-directory: gi and flood; bench/bench-opendht.py: OpenDHT), presence pushed to
# buddies (bench/bench-presence.py), a frame's cost in the Opus encoder element beside
# opusenc (bench/bench-opus-encoder), message envelopes (bench/bench-message), the paper's
# Table I, search and instant messages in the network lab (bench/bench-tablei.py,
# bench/bench-search.py, bench/bench-im.py, as root), call set-up time on loopback beside
# baresip (bench/bench-calls.py, as root) and in the network lab's setups
# (bench/bench-calls-lab.py, as root), relay capacity beside coturn (bench/bench-relay.py,
# as root), then media: mouth-to-ear latency, CPU, memory and
# bytes of hark media-test, of a call between two `hark run` nodes (direct and relayed by a
# coturn) and of baresip 1.0 (scripts/bench-media.sh; it installs what it needs:
# deps/bench-debian.txt); a conference host beside Janus's AudioBridge
# (bench/bench-conference.py); speech over shaped links (1.5 KB/s, loss, jitter) beside
# baresip (scripts/bench-media-links.sh, as root).
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
hark="$top/$build/hark"
seconds=${BENCH_SECONDS:-20}
work=$(mktemp -d /tmp/hark-bench.XXXXXX)
# PostgreSQL runs as its own user, which cannot enter $work (0700).
pgdir=$(mktemp -d /tmp/hark-bench-pg.XXXXXX)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
  "$here/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_loginsrv NAME STORE STORE_OPTIONS [SETTINGS]: a login-server node in $work/NAME,
# on $port; SETTINGS are more loginsrv settings.
start_loginsrv() {
  dir="$work/$1"
  mkdir -p "$dir"
  port=$(free_port)
  cat >"$dir/hark.conf" <<CONF
node: { name = "bench-$1"; state_dir = "$dir/state"; };
plugins: { load = (
  { name = "$2"; },
  { name = "loginsrv"; settings = { listen = "127.0.0.1"; port = $port; store = "$2";
      store_options = { $3 }; hosts = ["127.0.0.1"]; registrations_per_minute = 1000;
      ${4:-} }; }
); };
CONF
  "$hark" run -c "$dir/hark.conf" 2>"$dir/node.log" &
  node_pid=$!
  for _ in $(seq 1 200); do
    [ -f "$dir/state/ca.pem" ] && python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$dir/node.log" >&2
  echo "bench: the login server did not start" >&2
  exit 1
}

stop_node() {
  kill "$node_pid"
  wait "$node_pid" || true
  node_pid=""
}

run_login_bench() {
  start_loginsrv "$1" "$2" "$3" "${4:-}"
  "$top/$build/bench/bench-login" "https://127.0.0.1:$port" "$work/$1/state/ca.pem" \
    --users 20 --seconds "$seconds" --parallel 4 >"$work/$1.json"
  stop_node
  cat "$work/$1.json"
}

conninfo=$("$here/pg.sh" start "$pgdir")
run_login_bench sqlite sqlite 'path = "accounts.db";'
run_login_bench postgres postgres "conninfo = \"$conninfo\";"
# The same as the first, with a hash 40 times cheaper: what the hash costs.
run_login_bench sqlite-cheap-hash sqlite 'path = "accounts.db";' \
  'hash_memory_kib = 1024; hash_iterations = 1;'

python3 "$here/bench-report.py" "$top/docs/benchmarks.md" login \
  "$work/sqlite.json" "$work/postgres.json" "$work/sqlite-cheap-hash.json" "make bench (scripts/bench.sh, BENCH_SECONDS=$seconds)"

# The overlay: join times and bytes, then idle clients on one super node.
runs=${BENCH_JOIN_RUNS:-15}
clients=${BENCH_SN_CLIENTS:-1000,2000,4000}
python3 "$top/bench/bench-overlay.py" "$top/$build" "$work/overlay.json" --runs "$runs" \
  --idle "$seconds" --clients "$clients"
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" overlay "$work/overlay.json" \
  "make bench (bench/bench-overlay.py --runs $runs --idle $seconds --clients $clients)"
# The directory: gi and flood in the simulation (100, 1,000 and 10,000 SNs under churn),
# OpenDHT's nodes on loopback doing the same puts and gets (Debian's python3-opendht).
dir_sns=${BENCH_DIR_SNS:-100,1000,10000}
dir_lookups=${BENCH_DIR_LOOKUPS:-1000}
dht_nodes=${BENCH_DHT_NODES:-50,100,200,1000}
"$top/$build/bench/sim-directory" --sns "$dir_sns" --lookups "$dir_lookups" >"$work/directory.jsonl"
"$here/install-deps.sh" "$top/deps/bench-debian.txt" >&2
/usr/bin/python3 "$top/bench/bench-opendht.py" "$work/opendht.json" --nodes "$dht_nodes"
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" directory "$work/directory.jsonl" \
  "$work/opendht.json" \
  "make bench (bench/sim-directory --sns $dir_sns --lookups $dir_lookups; bench/bench-opendht.py --nodes $dht_nodes)"
# Presence pushed to buddies: status -> presence-changed, killed and frozen -> offline.
presence_changes=${BENCH_PRESENCE_CHANGES:-20}
python3 "$top/bench/bench-presence.py" "$top/$build" "$work/presence.json" \
  --changes "$presence_changes" --kills 3 --frozen 1
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" presence "$work/presence.json" \
  "make bench (bench/bench-presence.py --changes $presence_changes --kills 3 --frozen 1)"
# What a 20 ms frame costs the Opus plugin's encoder element and opusenc (CPU time).
opus_rounds=${BENCH_OPUS_ROUNDS:-9}
"$top/$build/bench/bench-opus-encoder" --rounds "$opus_rounds" >"$work/opus-encoder.json"
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" opus-encoder "$work/opus-encoder.json" \
  "make bench (bench/bench-opus-encoder --rounds $opus_rounds)"
# Message envelopes: seal, verify and open for 1, 10, 100 and 200 recipient devices.
message_rounds=${BENCH_MESSAGE_ROUNDS:-50}
"$top/$build/bench/bench-message" --rounds "$message_rounds" >"$work/message.json"
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" message "$work/message.json" \
  "make bench (bench/bench-message --rounds $message_rounds)"
# The paper's Table I in the network lab: needs root (network namespaces).
tablei_runs=${BENCH_TABLEI_RUNS:-10}
if [ "$(id -u)" = 0 ]; then
  python3 "$top/bench/bench-tablei.py" "$top/$build" "$work/tablei.json" --runs "$tablei_runs"
  python3 "$here/bench-report.py" "$top/docs/benchmarks.md" tablei "$work/tablei.json" \
    "make bench (bench/bench-tablei.py --runs $tablei_runs)"
  # Search in the same setups, for every strategy list the build has (bench/bench-search.py).
  search_n=${BENCH_SEARCHES:-50}
  python3 "$top/bench/bench-search.py" "$top/$build" "$work/search.json" --searches "$search_n"
  python3 "$here/bench-report.py" "$top/docs/benchmarks.md" search "$work/search.json" \
    "make bench (bench/bench-search.py --searches $search_n)"
  # Instant messages in the same lab: delivery both online (p50, p99) in the peers'
  # setups, delivery of a held message after the recipient starts, bytes per message; the
  # group's seal cost comes from bench-message above (bench/bench-im.py).
  im_n=${BENCH_IM_MESSAGES:-200}
  im_runs=${BENCH_IM_OFFLINE_RUNS:-5}
  python3 "$top/bench/bench-im.py" "$top/$build" "$work/im.json" --messages "$im_n" \
    --offline-runs "$im_runs"
  python3 "$here/bench-report.py" "$top/docs/benchmarks.md" im "$work/im.json" \
    "$work/message.json" \
    "make bench (bench/bench-im.py --messages $im_n --offline-runs $im_runs; bench/bench-message --rounds $message_rounds)"
  # Call set-up time on loopback, hark beside baresip (bench/bench-calls.py: a network
  # namespace of its own and a packet socket on lo, hence root).
  calls_n=${BENCH_SETUP_CALLS:-10} # BENCH_CALLS is the media benchmark's
  python3 "$top/bench/bench-calls.py" "$top/$build" "$work/calls.json" --calls "$calls_n"
  python3 "$here/bench-report.py" "$top/docs/benchmarks.md" calls "$work/calls.json" \
    "make bench (bench/bench-calls.py --calls $calls_n)"
  # The same in the network lab's three setups of the paper, coturn on the lab host `stun`
  # (bench/bench-calls-lab.py; tests/netlab/test-calls.py's labs).
  if command -v turnserver >/dev/null; then
    lab_calls=${BENCH_LAB_CALLS:-4} # 2N+1 INVITEs per pair: under 10 a minute
    /usr/bin/python3 "$top/bench/bench-calls-lab.py" "$top/$build" "$work/calls-lab.json" \
      --calls "$lab_calls"
    python3 "$here/bench-report.py" "$top/docs/benchmarks.md" calls-lab "$work/calls-lab.json" \
      "make bench (bench/bench-calls-lab.py --calls $lab_calls)"
  else
    echo "bench: call set-up in the network lab skipped (no coturn turnserver)" >&2
  fi
  # Relay capacity: an SN's TURN server beside coturn, driven by coturn's turnutils_uclient
  # (bench/bench-relay.py: a network namespace of its own).
  if command -v turnutils_uclient >/dev/null; then
    relay_sessions=${BENCH_RELAY_SESSIONS:-100,300}
    python3 "$top/bench/bench-relay.py" "$top/$build" "$work/relay.json" \
      --sessions "$relay_sessions" --seconds 10
    python3 "$here/bench-report.py" "$top/docs/benchmarks.md" relay "$work/relay.json" \
      "make bench (bench/bench-relay.py --sessions $relay_sessions --seconds 10)"
  else
    echo "bench: relay capacity skipped (no coturn turnutils_uclient)" >&2
  fi
else
  echo "bench: Table I, search, messages and call set-up skipped (they need root)" >&2
fi
# A conference host's CPU and memory for 4-32 participants beside Janus's AudioBridge in
# the same run (bench/bench-conference.py; janus from deps/bench-debian.txt).
conf_sizes=${BENCH_CONFERENCE_SIZES:-4,8,16,32}
conf_runs=${BENCH_CONFERENCE_RUNS:-3}
/usr/bin/python3 "$top/bench/bench-conference.py" "$top/$build" "$work/conference.json" \
  --sizes "$conf_sizes" --runs "$conf_runs" --seconds 10
# The same without DTX, once: what silent participants cost when they send silence.
/usr/bin/python3 "$top/bench/bench-conference.py" "$top/$build" "$work/conference-plain.json" \
  --sizes "$conf_sizes" --runs 1 --seconds 10 --janus-rates 16000 --no-dtx
"$here/bench-media.sh" "$build" "$work/media.json"
# Mouth to ear through a conference host is bench-media.sh's peer harkconf.
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" conference "$work/conference.json" \
  "$work/conference-plain.json" "$work/media.json" \
  "make bench (bench/bench-conference.py --sizes $conf_sizes --runs $conf_runs --seconds 10; the same --runs 1 --janus-rates 16000 --no-dtx; scripts/bench-media.sh's harkconf)"
python3 "$here/bench-report.py" "$top/docs/benchmarks.md" media "$work/media.json" \
  "make bench (scripts/bench-media.sh, BENCH_CALLS=${BENCH_CALLS:-3}, BENCH_CALL_SECONDS=${BENCH_CALL_SECONDS:-20})"
# Speech over shaped links (1.5 KB/s, 5-20 % loss, 0-60 ms jitter), hark beside baresip:
# two network namespaces and nfq-delay, hence root (scripts/bench-media-links.sh).
if [ "$(id -u)" = 0 ] && [ -x "$top/$build/tests/netlab/nfq-delay" ]; then
  "$here/bench-media-links.sh" "$build" "$work/media-links.json"
  python3 "$here/bench-report.py" "$top/docs/benchmarks.md" media-links "$work/media-links.json" \
    "make bench (scripts/bench-media-links.sh, BENCH_LINK_CALLS=${BENCH_LINK_CALLS:-3}, BENCH_LINK_SECONDS=${BENCH_LINK_SECONDS:-10})"
else
  echo "bench: speech over shaped links skipped (needs root and tests/netlab/nfq-delay)" >&2
fi
echo "bench: results written to docs/benchmarks.md"
