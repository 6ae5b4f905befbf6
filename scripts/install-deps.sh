#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# install-deps.sh LIST: install the Debian packages of LIST that are missing.
# As root it runs apt-get (with `apt-get update` first when the package lists are
# empty or stale); otherwise through sudo; otherwise it says what to install.
set -eu
list=${1:-deps/debian.txt}
missing=$(grep -v '^#' "$list" | grep -v '^[[:space:]]*$' | while read -r pkg; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || echo "$pkg"
done)
[ -z "$missing" ] && exit 0
missing=$(echo $missing)
echo "deps: installing: $missing"
if [ "$(id -u)" -eq 0 ]; then as_root=""
elif command -v sudo >/dev/null 2>&1; then as_root="sudo"
else
  echo "deps: these Debian packages are missing: $missing" >&2
  echo "deps: run as root: apt-get install $missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# An install from empty or outdated lists fails; update once and retry.
$as_root apt-get install -y -q $missing || { $as_root apt-get update -q && $as_root apt-get install -y -q $missing; }
