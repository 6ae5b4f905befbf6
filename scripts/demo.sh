#!/bin/sh
# demo.sh BUILD: start a hark node on this machine and drive it through its control
# socket, as a custom frontend would. It grows with every feature (calls come later).
set -eu
build=${1:-build}
hark="$build/hark"
work=$(mktemp -d /tmp/hark-demo.XXXXXX)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { echo "\$ hark ctl $*"; "$hark" ctl -c conf/demo.conf --state-dir "$work" "$@"; }

step "hark --version"
"$hark" --version

step "hark plugins   (every plugin of the build, checked and initialised)"
"$hark" plugins

step "hark check-config conf/demo.conf"
"$hark" check-config conf/demo.conf

step "hark run -c conf/demo.conf   (in the background; its log follows)"
"$hark" run -c conf/demo.conf --state-dir "$work" 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 1 100); do
  [ -S "$work/ctl.sock" ] && break
  sleep 0.05
done
[ -S "$work/ctl.sock" ] || { cat "$work/node.log"; echo "demo: the node did not start" >&2; exit 1; }
cat "$work/node.log"

step "A frontend connects: the state snapshot"
ctl state

step "A command with an argument"
ctl help state

step "Events: a second client watches while the first one stops the node"
"$hark" ctl -c conf/demo.conf --state-dir "$work" --watch &
watch_pid=$!
sleep 0.3
ctl shutdown
wait "$node_pid" && echo "node exited with status 0"
node_pid=""
wait "$watch_pid" || true

step "The identity stays private"
ls -l "$work/identity.pem"
echo "The demo state directory is removed at exit."
