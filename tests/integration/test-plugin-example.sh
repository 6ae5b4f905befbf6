#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-plugin-example.sh: the plugin guide's example (docs/examples/eventlog) must build
# outside the tree with its own Makefile against the uninstalled hark.pc, and work in a
# real node: listed by `hark plugins`, logging events, answering its command, refusing a
# bad setting. Prints TAP. Needs HARK_BIN, HARK_BUILD_ROOT and HARK_SOURCE_ROOT (meson
# sets them, and HARK_PLUGIN_PATH, where the ctl plugin is found).
set -u

PLAN=9
echo "1..$PLAN"

: "${HARK_BIN:?HARK_BIN is not set}"
: "${HARK_BUILD_ROOT:?HARK_BUILD_ROOT is not set}"
: "${HARK_SOURCE_ROOT:?HARK_SOURCE_ROOT is not set}"

WAIT_STEPS=50 # 50 x 0.1 s: every wait in this file gives up after about 5 s

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hark-plugin-example.XXXXXX") || exit 1
src="$tmp/eventlog"  # the example is copied here: nothing is built in the source tree
state="$tmp/state"
events="$tmp/events.jsonl"
node_pid=

# Leftovers: the node we started (politely, then not), and the temp dir.
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null
    i=0
    while kill -0 "$node_pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$node_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# not_ok DESCRIPTION [REASON...]: each reason becomes a "# " line.
not_ok() {
  n=$((n + 1)); echo "not ok $n - $1"; shift
  for line in "$@"; do echo "# $line"; done
}
# A file's lines as TAP diagnostics.
diag() { [ -s "$1" ] && sed 's/^/#   /' "$1"; return 0; }

# wait_gone PID: TRUE when PID has exited within the bounded wait.
wait_gone() {
  i=0
  while kill -0 "$1" 2>/dev/null; do
    [ $i -ge $WAIT_STEPS ] && return 1
    sleep 0.1; i=$((i + 1))
  done
  return 0
}

# ---- 1. build with the example's Makefile, warnings as errors ---------------------------

cp -R "$HARK_SOURCE_ROOT/docs/examples/eventlog" "$src"
rm -f "$src/eventlog.so"
export PKG_CONFIG_PATH="$HARK_BUILD_ROOT/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if make -C "$src" CFLAGS="-O2 -g -Wall -Wextra -Werror" >"$tmp/make.log" 2>&1 &&
   [ -f "$src/eventlog.so" ]; then
  built=yes
  ok "the example builds out of tree with make and -Wall -Wextra -Werror"
else
  built=
  not_ok "the example builds out of tree with make and -Wall -Wextra -Werror" \
    "make failed (PKG_CONFIG_PATH=$PKG_CONFIG_PATH):"
  diag "$tmp/make.log"
fi

# ---- 2. make install puts it in pkg-config's pluginsdir (under DESTDIR) ------------------

if [ -z "$built" ]; then
  skip "make install copies eventlog.so into the pluginsdir" "the example did not build"
else
  pluginsdir=$(pkg-config --variable=pluginsdir hark)
  if make -C "$src" install DESTDIR="$tmp/dest" >"$tmp/install.log" 2>&1 &&
     [ -n "$pluginsdir" ] && [ -f "$tmp/dest$pluginsdir/eventlog.so" ]; then
    ok "make install copies eventlog.so into the pluginsdir"
  else
    not_ok "make install copies eventlog.so into the pluginsdir" \
      "pluginsdir='$pluginsdir', expected $tmp/dest$pluginsdir/eventlog.so"
    diag "$tmp/install.log"
  fi
fi

# ---- 3. hark plugins lists it, with what it registered ----------------------------------

if [ -z "$built" ]; then
  skip "hark plugins lists eventlog: kind frontend, its frontend and its command" \
    "the example did not build"
else
  # The exit status also reflects the other plugins found (the tree's own); judge ours.
  "$HARK_BIN" plugins --plugin-dir "$src" --json >"$tmp/plugins.json" 2>"$tmp/plugins.err"
  if python3 - "$tmp/plugins.json" "$src/eventlog.so" >"$tmp/plugins.check" 2>&1 <<'EOF'
import json, sys
plugins = json.load(open(sys.argv[1]))
ours = [p for p in plugins if p.get("name") == "eventlog"]
assert len(ours) == 1, "no plugin named eventlog in the list"
p = ours[0]
assert p["file"] == sys.argv[2], "loaded from %s, not %s" % (p["file"], sys.argv[2])
assert p["kinds"] == ["frontend"], "kinds are %r" % p["kinds"]
assert p["version"] and p["description"] and p["license"], "version/description/license missing"
assert any(r["kind"] == "frontend" and r["name"] == "eventlog" for r in p["registered"]), \
    "registered %r" % p["registered"]
assert p["commands"] == ["eventlog"], "commands are %r" % p["commands"]
EOF
  then
    ok "hark plugins lists eventlog: kind frontend, its frontend and its command"
  else
    not_ok "hark plugins lists eventlog: kind frontend, its frontend and its command"
    diag "$tmp/plugins.check"; diag "$tmp/plugins.err"
  fi
fi

# ---- 4-8. a node with ctl + eventlog ------------------------------------------------------

port=$((20000 + $$ % 20000))
cat >"$tmp/node.conf" <<EOF
node: { name = "eventlog-test"; supernode = false; };
plugins: {
  path = [ "$src" ];
  load = (
    { name = "ctl"; settings = { socket = "ctl.sock"; }; },
    { name = "eventlog"; settings = { path = "$events"; }; }
  );
};
network: { listen = "127.0.0.1"; port = $port; };
media: { source = "silence"; sink = "null"; };
EOF

NOTE="written by test-plugin-example"
ctl() { timeout 10 "$HARK_BIN" ctl -c "$tmp/node.conf" --state-dir "$state" "$@"; }

started=
if [ -z "$built" ]; then
  skip "a node with ctl and eventlog starts (ctl socket within 5 s)" "the example did not build"
else
  "$HARK_BIN" run -c "$tmp/node.conf" --state-dir "$state" >"$tmp/node.log" 2>&1 &
  node_pid=$!
  i=0
  while [ ! -S "$state/ctl.sock" ] && kill -0 "$node_pid" 2>/dev/null && [ $i -lt $WAIT_STEPS ]; do
    sleep 0.1; i=$((i + 1))
  done
  if [ -S "$state/ctl.sock" ]; then
    started=yes
    ok "a node with ctl and eventlog starts (ctl socket within 5 s)"
  elif kill -0 "$node_pid" 2>/dev/null; then
    not_ok "a node with ctl and eventlog starts (ctl socket within 5 s)" \
      "no $state/ctl.sock after 5 s; the node's output:"
    diag "$tmp/node.log"
  else
    wait "$node_pid"; status=$?; node_pid=
    not_ok "a node with ctl and eventlog starts (ctl socket within 5 s)" \
      "hark run exited with status $status:"
    diag "$tmp/node.log"
  fi
fi

if [ -z "$started" ]; then
  skip "hark ctl eventlog note=... answers with the path and the count" "no node"
else
  ctl eventlog "note=$NOTE" >"$tmp/answer.out" 2>"$tmp/answer.err"; status=$?
  # Whatever the shape of hark ctl's output, somewhere in it is our command's result.
  if [ $status -eq 0 ] && python3 - "$tmp/answer.out" "$events" >"$tmp/answer.check" 2>&1 <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
try:
    values = [json.loads(text)]
except ValueError:
    values = [json.loads(line) for line in text.splitlines() if line.strip()]
def results(v):
    if isinstance(v, dict):
        if "path" in v and "events" in v:
            yield v
        for x in v.values():
            yield from results(x)
    elif isinstance(v, list):
        for x in v:
            yield from results(x)
found = [r for v in values for r in results(v)]
assert found, "no object with path and events in: %r" % text
r = found[0]
assert r["path"] == sys.argv[2], "path is %r, not %r" % (r["path"], sys.argv[2])
assert isinstance(r["events"], int) and r["events"] >= 2, \
    "events is %r (node-started and the note were written before)" % r["events"]
EOF
  then
    ok "hark ctl eventlog note=... answers with the path and the count"
  else
    not_ok "hark ctl eventlog note=... answers with the path and the count" "hark ctl exited with $status"
    diag "$tmp/answer.out"; diag "$tmp/answer.err"; diag "$tmp/answer.check"
  fi
fi

if [ -z "$started" ]; then
  skip "hark ctl shutdown stops the node (exit 0 within 5 s)" "no node"
else
  ctl shutdown >"$tmp/shutdown.out" 2>&1; ctl_status=$?
  if wait_gone "$node_pid"; then
    wait "$node_pid"; status=$?; node_pid=
    if [ $status -eq 0 ]; then
      ok "hark ctl shutdown stops the node (exit 0 within 5 s)"
    else
      not_ok "hark ctl shutdown stops the node (exit 0 within 5 s)" \
        "hark run exited with status $status:"
      diag "$tmp/node.log"
    fi
  else
    not_ok "hark ctl shutdown stops the node (exit 0 within 5 s)" \
      "still running 5 s after hark ctl shutdown (which exited with $ctl_status):"
    diag "$tmp/shutdown.out"
  fi
fi

if [ -n "$started" ] && [ -z "$node_pid" ] && [ -f "$events" ]; then
  mode=$(ls -l "$events" | cut -c1-10)
  if [ "$mode" = "-rw-------" ]; then
    ok "the event log was created 0600"
  else
    not_ok "the event log was created 0600" "$events has mode $mode"
  fi
  if python3 - "$events" "$NOTE" >"$tmp/events.check" 2>&1 <<'EOF'
import json, sys
names = []
notes = []
for number, line in enumerate(open(sys.argv[1]), 1):
    try:
        event = json.loads(line)
    except ValueError as e:
        raise SystemExit("line %d is not JSON (%s): %r" % (number, e, line))
    assert isinstance(event, dict) and isinstance(event.get("event"), str), \
        "line %d has no event name: %r" % (number, line)
    names.append(event["event"])
    if event["event"] == "eventlog-note":
        notes.append(event.get("note"))
for wanted in ("node-started", "eventlog-note", "node-stopping"):
    assert wanted in names, "no %s event among %r" % (wanted, names)
assert names.index("node-started") < names.index("eventlog-note") < names.index("node-stopping"), \
    "out of order: %r" % names
assert notes == [sys.argv[2]], "the notes are %r, not [%r]" % (notes, sys.argv[2])
EOF
  then
    ok "every line of the log is a JSON event: node-started, the note, node-stopping"
  else
    not_ok "every line of the log is a JSON event: node-started, the note, node-stopping"
    diag "$tmp/events.check"; diag "$events"
  fi
elif [ -n "$started" ] && [ -z "$node_pid" ]; then
  not_ok "the event log was created 0600" "there is no $events"
  not_ok "every line of the log is a JSON event: node-started, the note, node-stopping" \
    "there is no $events"
else
  skip "the event log was created 0600" "no node ran to its end"
  skip "every line of the log is a JSON event: node-started, the note, node-stopping" \
    "no node ran to its end"
fi

# ---- 9. a setting of the wrong type stops `hark run`, naming the file and the setting ---

if [ -z "$built" ]; then
  skip "path = 5 makes hark run fail, naming eventlog.so and the setting" \
    "the example did not build"
else
  cat >"$tmp/bad.conf" <<EOF
plugins: {
  path = [ "$src" ];
  load = ( { name = "eventlog"; settings = { path = 5; }; } );
};
EOF
  "$HARK_BIN" run -c "$tmp/bad.conf" --state-dir "$tmp/bad-state" >"$tmp/bad.log" 2>&1 &
  node_pid=$!
  if ! wait_gone "$node_pid"; then
    not_ok "path = 5 makes hark run fail, naming eventlog.so and the setting" \
      "hark run was still running after 5 s:"
    diag "$tmp/bad.log"
  else
    wait "$node_pid"; status=$?; node_pid=
    if [ $status -ne 0 ] && grep -F "$src/eventlog.so" "$tmp/bad.log" | grep -q "'path'"; then
      ok "path = 5 makes hark run fail, naming eventlog.so and the setting"
    else
      not_ok "path = 5 makes hark run fail, naming eventlog.so and the setting" \
        "exit status $status; expected non-zero and a line naming $src/eventlog.so and 'path':"
      diag "$tmp/bad.log"
    fi
  fi
fi

[ $n -eq $PLAN ] || echo "# planned $PLAN tests but ran $n"
