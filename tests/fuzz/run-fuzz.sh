#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-fuzz.sh TARGET RUNS [SECONDS]: fuzz one target for RUNS inputs, at most SECONDS
# (0 or none: no limit); `make fuzz` runs it.
# TARGET is the fuzzer's path (build-san/tests/fuzz/fuzz-wire) or its name (wire,
# fuzz-wire), looked up in BUILD_DIR (default build-san), a build configured with
# -Dfuzzing=true. The fuzzer starts from the committed seeds in corpus/NAME/ plus what
# earlier runs found, kept in <build>/fuzz-work/NAME/: the source tree changes only when
# someone copies a useful input into corpus/ by hand.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 TARGET RUNS [SECONDS]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
case $1 in
  */*) fuzzer=$1 ;;
  *) fuzzer=${BUILD_DIR:-$here/../../build-san}/tests/fuzz/fuzz-${1#fuzz-} ;;
esac
runs=$2
seconds=${3:-0}
name=$(basename "$fuzzer")
name=${name#fuzz-}
if [ ! -x "$fuzzer" ]; then
  echo "$0: $fuzzer not found: build it in a build configured with -Dfuzzing=true" >&2
  exit 1
fi

work=$(cd "$(dirname "$fuzzer")/../.." && pwd)/fuzz-work/$name
mkdir -p "$work/corpus" "$work/artifacts"
cp "$here/corpus/$name"/* "$work/corpus/"
log=$work/last-run.log
echo "fuzz-$name: fuzzing $runs inputs (time limit: ${seconds} s, 0 is none); log in $log"

status=0
"$fuzzer" -runs="$runs" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" \
  "$work/corpus" >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz-$name: FAILED (exit $status); the failing input is in $work/artifacts/" >&2
fi
grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" ||
  echo "fuzz-$name: no 'Done' line in $log"
exit "$status"
