#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-media-test.sh: `hark media-test`, as someone debugging audio runs it (TAP).
set -u
hark=${HARK_BIN:?}
work=$(mktemp -d /tmp/hark-media-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# No sound server may be reached from a test, whatever the machine has.
export PULSE_SERVER=unix:/nonexistent/hark-test
. "$(dirname "$0")/tap-case.sh"

# check FILE: both ends' JSON lines; the receiver played most of the time and lost nothing.
check='import json,sys
ends={}
for line in open(sys.argv[1]):
    o=json.loads(line); ends[o["end"]]=o
r=ends["receiver"]; s=ends["sender"]
assert s["codec"]==sys.argv[2], s
assert r["rtp_received"]>=int(sys.argv[3]), r
assert r["played_samples"]>=48000, r
assert r["dropped_srtp"]==0 and r["lost"]==0, r
assert s["rtt_ms"]>=0, s'
export hark work check

echo "1..8"
case_ "a tone over UDP with Opus arrives at the other end" \
  '"$hark" media-test --seconds 2 --json -q >"$work/a" && python3 -c "$check" "$work/a" opus 80'
case_ "over TCP (RFC 4571) with AES-GCM and G.711" \
  '"$hark" media-test --codec pcma --transport tcp --srtp aes-gcm --seconds 2 --json -q >"$work/b" && python3 -c "$check" "$work/b" pcma 80'
case_ "a live swap to another codec ends on that codec" \
  '"$hark" media-test --codec opus --swap-to pcmu --swap-at 1 --seconds 2 --json -q >"$work/c" && python3 -c "$check" "$work/c" pcmu 80'
case_ "no sound server: a clear error naming the settings, quickly" \
  '! timeout 10 "$hark" media-test --source pulse --seconds 1 2>"$work/err" && grep -q "no sound server" "$work/err" && grep -q -- "--source" "$work/err"'
case_ "an unknown codec is an error naming it" \
  '! "$hark" media-test --codec nonesuch 2>"$work/err2" && grep -q "nonesuch" "$work/err2"'
# hark media-test starts GStreamer without its registry and loads each plugin by element
# name: G.722's elements come from another package (gst-libav) than Opus's.
case_ "G.722, its GStreamer plugin loaded by element name" \
  '"$hark" media-test --codec g722 --seconds 2 --json -q >"$work/d" && python3 -c "$check" "$work/d" g722 80'
# 10 ms Opus frames: about twice the packets of the default 20 ms in the same time.
case_ "--setting frame_size=10 sends 10 ms Opus packets" \
  '"$hark" media-test --setting frame_size=10 --seconds 2 --json -q >"$work/e" && python3 -c "$check" "$work/e" opus 160'
case_ "a --setting without a value is an error naming it" \
  '! "$hark" media-test --setting frame_size 2>"$work/err3" && grep -q "frame_size" "$work/err3"'
exit $((failed > 0))
