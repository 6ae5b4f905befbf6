# SPDX-License-Identifier: LGPL-2.1-or-later
# tap-case.sh: sourced by the shell integration tests; case_ prints one TAP line per case.
n=0
failed=0

# case_ NAME SNIPPET: run SNIPPET (a shell snippet); ok when it exits 0, else its output
# follows as TAP comments.
case_() {
  name=$1; shift
  n=$((n + 1))
  if out=$(sh -c "$1" 2>&1); then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "$out" | sed 's/^/# /'
    failed=$((failed + 1))
  fi
}
