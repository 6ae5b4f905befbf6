#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# private-netns.sh TAPFILE CMD...: run CMD (the test suites) with its own /run/netns, then
# check that its network labs left no namespace behind. TAPFILE gets one TAP line, the
# case "netlab: no namespace left behind", which scripts/test-summary.py counts.
#
# As root, CMD runs in a private mount namespace with a tmpfs on /run/netns (where `ip netns`
# keeps its names) and on /run/hark-netlab (netlab's state): this run sees only the
# namespaces it made, so what is left (names starting "hnl", the labs' prefixes) is its
# own, and removing it cannot touch a lab of a run beside it. Without root no lab can be
# made and the case is skipped.
set -u
tap=$1
shift
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1; then
  "$@"
  status=$?
  echo "ok - netlab: no namespace left behind # SKIP needs root" >"$tap"
  exit $status
fi
# Its own PID namespace too, with this script as its init: when the run is stopped
# (Ctrl-C, SIGTERM to make check), unshare dies, the kernel kills every process the
# tests started (a daemonised turnserver included), and the labs' namespaces, held only
# by those processes and by this mount namespace's /run/netns, go with them.
if [ -z "${HARK_PRIVATE_NETNS:-}" ]; then
  HARK_PRIVATE_NETNS=1 exec unshare --mount --propagation private --pid --fork \
    --kill-child --mount-proc "$0" "$tap" "$@"
fi
mkdir -p /run/netns /run/hark-netlab
mount -t tmpfs -o mode=0755 hark-netns /run/netns || exit 1
mount -t tmpfs -o mode=0755 hark-netlab /run/hark-netlab || exit 1
# As the namespace's init this script gets no signal it has no handler for; exiting on
# one ends everything inside (a foreground "$@" would hold the trap until it returned).
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
"$@" &
wait $!
status=$?
left=$(ls /run/netns | grep '^hnl' | tr '\n' ' ' | sed 's/ $//')
if [ -z "$left" ]; then
  echo "ok - netlab: no namespace left behind" >"$tap"
else
  echo "not ok - netlab: no namespace left behind (removed: $left)" >"$tap"
  for ns in $left; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns"
  done
fi
exit $status
