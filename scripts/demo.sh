#!/bin/sh
# demo.sh BUILD: start a hark node on this machine and drive it through its control
# socket, as a custom frontend would. It grows with every feature (calls come later).
set -eu
build=${1:-build}
hark="$build/hark"
work=$(mktemp -d /tmp/hark-demo.XXXXXX)
node_pid=""
server_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ hark ctl $*"; "$hark" ctl -c "$work/node.conf" --state-dir "$work" "$@"; }
server_ctl() { "$hark" ctl --socket "$work/loginsrv/ctl.sock" "$@"; }

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
cp conf/demo.conf "$work/demo.conf"
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

step "A command with an argument"
ctl help state

step "Accounts: register alice and bob, log in as alice, add bob as a buddy"
ctl register alice "correct horse battery"
ctl register bob "staple battery horse"
ctl login alice "correct horse battery"
ctl buddy-add bob Bobby
ctl whoami

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
