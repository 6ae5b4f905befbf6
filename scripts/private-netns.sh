#!/bin/sh
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
if [ -z "${HARK_PRIVATE_NETNS:-}" ]; then
  HARK_PRIVATE_NETNS=1 exec unshare --mount --propagation private "$0" "$tap" "$@"
fi
mkdir -p /run/netns /run/hark-netlab
mount -t tmpfs -o mode=0755 hark-netns /run/netns || exit 1
mount -t tmpfs -o mode=0755 hark-netlab /run/hark-netlab || exit 1
"$@"
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
