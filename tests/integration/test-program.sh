#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-program.sh: the `hark` program's own commands, as a user runs them (TAP).
set -u
hark=${HARK_BIN:?}
src=${HARK_SOURCE_ROOT:?}
testplugins=${HARK_TEST_PLUGIN_DIR:?}
work=$(mktemp -d /tmp/hark-program.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/tap-case.sh"

echo "1..12"
export hark src testplugins work

case_ "--version names the version and the plugin ABI" \
  '"$hark" --version | grep -Eq "^hark [0-9]+\.[0-9]+\.[0-9]+ \(plugin ABI 1\.0, wire protocol 1\)$"'
case_ "--help lists every command" \
  'out=$("$hark" --help) && for c in run plugins check-config ctl; do echo "$out" | grep -q "^  $c " || exit 1; done'
case_ "an unknown command is an error with usage" \
  '! "$hark" frobnicate 2>"$work/err" && grep -q "unknown command .frobnicate." "$work/err"'
case_ "plugins lists the plugins of the build with their kinds" \
  'out=$("$hark" plugins) && echo "$out" | grep -Eq "^cli +[^ ]+ +1\.0 +frontend" && echo "$out" | grep -Eq "^ctl +[^ ]+ +1\.0 +frontend" && echo "$out" | grep -q "registers frontend .ctl."'
case_ "plugins --json is JSON with each plugin's registrations" \
  '"$hark" plugins --json | python3 -c "import json,sys; p={x[\"name\"]: x for x in json.load(sys.stdin)}; assert p[\"ctl\"][\"registered\"][0][\"kind\"] == \"frontend\", p"'
case_ "a plugin with the wrong ABI major is refused, naming its path" \
  'mkdir -p "$work/p" && cp "$testplugins/bad-major.so" "$testplugins/good-a.so" "$work/p/" && ! "$hark" plugins --plugin-dir "$work/p" >"$work/out" 2>"$work/err" && grep -q "$work/p/bad-major.so: plugin ABI 2.0, but this hark speaks ABI 1.x" "$work/err" && grep -q "^good-a " "$work/out"'
case_ "check-config accepts the example configurations" \
  'for f in hark supernode demo loginsrv; do "$hark" check-config "$src/conf/$f.conf" | grep -q ": ok$" || exit 1; done'
printf 'plugins: { load = ( { name = "nosuch"; } ); };\n' >"$work/missing.conf"
case_ "check-config names a plugin it cannot find, and where it looked" \
  '! "$hark" check-config "$work/missing.conf" 2>"$work/err" && grep -q "plugin .nosuch. not found: no nosuch.so in .*$HARK_PLUGIN_PATH" "$work/err"'
printf 'node: {\n  name = "x";\n  state_dir = ;\n};\n' >"$work/syntax.conf"
case_ "a syntax error is reported as file:line" \
  '! "$hark" check-config "$work/syntax.conf" 2>"$work/err" && grep -q "^$work/syntax.conf:3: " "$work/err"'
printf 'network: {\n  port = "33033";\n};\n' >"$work/type.conf"
case_ "a wrong type is reported as file:line" \
  '! "$hark" check-config "$work/type.conf" 2>"$work/err" && grep -q "^$work/type.conf:2: " "$work/err"'
printf 'node: {\n  name = "x";\n  colour = "blue";\n};\n' >"$work/unknown.conf"
case_ "an unknown key is a warning with file:line, and the file is still ok" \
  '"$hark" check-config "$work/unknown.conf" >"$work/out" 2>"$work/err" && grep -q "$work/unknown.conf:3: .*colour" "$work/err" && grep -q ": ok$" "$work/out"'
case_ "run without a configuration file says which file it wanted" \
  '! HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" "$hark" run 2>"$work/err" && grep -q "$work/home/.config/hark/hark.conf" "$work/err"'
[ $failed -eq 0 ]
