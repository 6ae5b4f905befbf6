#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# sanitizer-build.sh DIR: a clang build with AddressSanitizer, UndefinedBehaviorSanitizer
# and the libFuzzer targets, used by `make check` (unit tests again) and `make fuzz`.
set -eu
dir=${1:-build-san}
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dfuzzing=true \
    -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$dir" >"$dir/ninja.log" 2>&1 || { cat "$dir/ninja.log"; exit 1; }
