#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-corpus.sh FUZZER SEED_DIR [LIBFUZZER_FLAGS...]: the fuzz regression test.
# libFuzzer adds every new input it finds to the first corpus directory it is given, so
# it gets a throwaway copy of the seeds and the source tree stays as committed.
set -eu
fuzzer=$1
seeds=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/hark-fuzz-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cp "$seeds"/* "$work"/
# libFuzzer's own exit status for a crash or a leak is 77, which meson reads as "skipped":
# a failure must be one.
"$fuzzer" -error_exitcode=1 "$@" "$work"
