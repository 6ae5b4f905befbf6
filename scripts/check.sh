#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# check.sh BUILD SANBUILD: build, run every test suite, then the unit, fuzz-corpus,
# integration and media suites again in the sanitizer build; the last line is "N passed, N failed" (test cases),
# one of them "netlab: no namespace left behind".
set -u
build=${1:-build}
san=${2:-build-san}
here=$(cd "$(dirname "$0")" && pwd)
status=0
[ -f "$build/build.ninja" ] || meson setup "$build" || exit 1
ninja -C "$build" || exit 1
# The store tests run against a throw-away PostgreSQL too, stopped however this ends.
pgdir=$(mktemp -d /tmp/hark-pg.XXXXXX) || exit 1
trap '"$here/pg.sh" stop "$pgdir"' EXIT
trap 'exit 1' INT TERM HUP
HARK_TEST_PG_CONNINFO=$("$here/pg.sh" start "$pgdir") || exit 1
export HARK_TEST_PG_CONNINFO
# The network labs must leave no namespace behind: one more case (scripts/private-netns.sh).
netns_tap="$build/meson-logs/netns-left.tap"
rm -f "$netns_tap"
# A run that could not start (meson refuses to run a test whose binary is missing) writes
# no log: the summary must then find none, not the last run's.
rm -f "$build"/meson-logs/testlog*.json "$san"/meson-logs/testlog*.json
# In the background, so a SIGTERM to this script reaches the run: private-netns.sh is
# then unshare, whose child (the run's PID-namespace init) ends everything the tests started.
"$here/private-netns.sh" "$netns_tap" \
  meson test -C "$build" --print-errorlogs --num-processes 2 &
suites=$!
trap 'pkill -TERM -P $suites 2>/dev/null; kill -TERM $suites 2>/dev/null; exit 1' INT TERM HUP
wait $suites || status=1
trap 'exit 1' INT TERM HUP
"$here/sanitizer-build.sh" "$san" || exit 1
# GLib's type system and caches are process-lifetime allocations, not leaks.
export LSAN_OPTIONS="suppressions=$here/../tests/lsan.supp:print_suppressions=0"
# Full stacks on malloc, or the suppressions above cannot match frames inside GLib.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# GIO's libproxy resolver is C++ and throws inside itself, which ASan's __cxa_throw
# interceptor cannot follow in a C program (CHECK failed: real___cxa_throw): the tests'
# own HTTPS clients use no proxy.
export GIO_USE_PROXY_RESOLVER=dummy
# The unit cases run in the test's own process here (tests/common/test-isolate.c), so
# that LeakSanitizer checks them; instrumented code is slower, waits are scaled.
HARK_TEST_IN_PROCESS=1 HARK_TEST_TIMEOUT_SCALE=3 \
  meson test -C "$san" --suite unit --suite fuzz --print-errorlogs --num-processes 2 || status=1
# Everything that meets the network's bytes runs instrumented at least once: the SN's
# JOIN/AUTH/tunnels, the login server's HTTP and JSON, the login client, ctl, the stores
# and the media sessions. Leak detection is off here: LeakSanitizer's end-of-process scan
# fails ("fatal error") in nodes stopped while their threads run, and the unit suite
# above covers leaks. Instrumented code is slower: time limits are tripled. The chaos test
# of messages (suite 'slow': 1,000 messages whose outboxes must empty within 150 s, timed
# for uninstrumented nodes) runs in build/ only.
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
  meson test -C "$san" --suite integration --suite media --no-suite slow --print-errorlogs \
  --num-processes 2 --timeout-multiplier 3 --logbase testlog-instrumented || status=1
# As root the network-lab suites must run: one that skipped or ran nothing is a failure.
must_run=
[ "$(id -u)" = 0 ] && must_run="--must-run netlab,tablei,search,shaping,natprobe,netlab-calls,conference,callmatrix,relay-failover,conference-lab,narrow-link,web,browser"
# shellcheck disable=SC2086
python3 "$here/test-summary.py" $must_run "$build" "$san" "$san@testlog-instrumented" \
  "$netns_tap" || status=1
exit $status
