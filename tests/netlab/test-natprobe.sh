#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-natprobe.sh: the `stun` nat-probe plugin checked against coturn in the network lab
# (TAP; issue 5's "done when"). In each lab: a login server, two hark SNs (sn1, sn2) that
# serve RFC 5780 together (each is the other's partner, STUN_RELAY), a third hark SN on
# the host "stun" with two addresses of its own (network.public_address_alt), and coturn
# on the same host. Each client host runs two hark nodes with the `stun` plugin, one
# bootstrapped with the partner SNs and one with the two-address SN; both nodes' `nat`
# verdicts must equal coturn's `turnutils_natdiscovery -m -f` verdict from that client.
# Modes public, fullcone, restricted, portrestricted, symmetric and udpblock, two per lab,
# the labs in parallel. Needs root and coturn: skipped otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
netlab=$here/netlab
hark=${HARK_BIN:-$here/../../build/hark}
NET=198.18.0
STUN=$NET.20
PORT=33033
LOGIN="https://$NET.10:8443"

if ((EUID != 0)); then echo "1..0 # SKIP needs root"; exit 0; fi
if ! command -v turnutils_natdiscovery >/dev/null || ! command -v jq >/dev/null; then
    echo "1..0 # SKIP needs coturn and jq"; exit 0
fi

source "$here/labs.sh"
labs_begin np   # every lab of this run: $run<name>-

ca=                          # the CA the nodes of a lab pin (set in each lab's job)
ctl() { local dir=$1; shift; "$hark" ctl --state-dir "$dir/state" --json --timeout 10 "$@"; }

# until_true TENTHS CMD...: CMD until it succeeds, at most TENTHS tenths of a second.
until_true() {
    local n=$1; shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    return 1
}

# start_node P HOST DIR: `hark run` on HOST of lab P with DIR/hark.conf, state in DIR/state.
start_node() {
    local p=$1 host=$2 dir=$3
    lab "$p" exec "$host" "$hark" run -c "$dir/hark.conf" --state-dir "$dir/state" \
        </dev/null >"$dir/log" 2>&1 &
    until_true 100 ctl "$dir" version >/dev/null 2>&1
}

login_conf() {
    cat <<EOF
node: { name = "login"; };
plugins: { load = (
  { name = "sqlite"; },
  { name = "loginsrv"; settings = { listen = "$NET.10"; port = 8443; hosts = [ "$NET.10" ];
      registrations_per_minute = 100000; hash_memory_kib = 64; hash_iterations = 1; }; },
  { name = "ctl"; } ); };
EOF
}

# sn_conf NAME ADDRESS BOOTSTRAP_ADDRESS|"" [ALT_ADDRESS]
sn_conf() {
    local boot=""
    [[ -n $3 ]] && boot="{ host = \"$3\"; port = $PORT; transports = [ \"udp\", \"tcp\" ]; }"
    cat <<EOF
node: { name = "$1"; supernode = true; };
plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, { name = "ctl"; } ); };
network: { port = $PORT; public_address = "$2"; ${4:+public_address_alt = \"$4\";}
  bootstrap = ( $boot ); };
supernode: { min_uptime = 0; max_load = 10000; links = 2; };
login: { url = "$LOGIN"; ca = "$ca"; };
EOF
}

# client_conf NAME SN_ADDRESS...
client_conf() {
    local name=$1 boot="" a; shift
    for a in "$@"; do
        boot+="${boot:+, }{ host = \"$a\"; port = $PORT; transports = [ \"udp\", \"tcp\" ]; }"
    done
    cat <<EOF
node: { name = "$name"; supernode = false; };
plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, { name = "stun"; }, { name = "ctl"; } ); };
network: { bootstrap = ( $boot ); };
login: { url = "$LOGIN"; ca = "$ca"; };
EOF
}

rfc5780_on() { [[ $(ctl "$1" overlay | jq -r '.stun.rfc5780') == true ]]; }
probed() { [[ $(ctl "$1" nat | jq -r '.verdict') != unknown ]]; }

# start_sn P HOST DIR NAME ADDRESS BOOTSTRAP [ALT]: an SN, registered, logged in, serving.
start_sn() {
    local p=$1 host=$2 dir=$3 name=$4
    mkdir -p "$dir"
    sn_conf "$name" "$5" "$6" "${7:-}" >"$dir/hark.conf"
    start_node "$p" "$host" "$dir" &&
        echo "$name-password-1" | ctl "$dir" register user="$name" >/dev/null &&
        echo "$name-password-1" | ctl "$dir" login user="$name" >/dev/null &&
        until_true 100 eval "[[ \$(ctl '$dir' overlay | jq -r .role) == super ]]"
}

# Our verdict in natdiscovery's words (a node with no NAT has no mapping: "none").
our_verdict() {
    ctl "$1" nat | jq -r 'if .verdict == "udp-blocked" then "udp-blocked"
        elif .verdict == "open" then "mapping=none filtering=\(.filtering)"
        else "mapping=\(.mapping) filtering=\(.filtering)" end'
}

# client_job P C MODE OUT: coturn's and our two verdicts for client C of lab P.
client_job() {
    local p=$1 c=$2 mode=$3 out=$4 ip args rc v kind dir ours
    ip=$(lab "$p" addr "$c")
    for kind in partner dual; do
        dir=$work/$p/$c-$kind
        mkdir -p "$dir"
        if [[ $kind == partner ]]; then client_conf "$c-$kind" "$NET.11" "$NET.12" >"$dir/hark.conf"
        else client_conf "$c-$kind" "$NET.20" >"$dir/hark.conf"; fi
        start_node "$p" "$c" "$dir" || echo "# $mode: $c-$kind did not start" >>"$out"
    done
    # natdiscovery only says "No NAT" when it knows its own address.
    args=(-m -f); [[ $mode == public ]] && args+=(-L "$ip")
    lab "$p" exec "$c" timeout 20 turnutils_natdiscovery "${args[@]}" "$STUN" >"$out.nd" 2>&1
    rc=$?
    v=$(awk -v rc="$rc" -f "$here/natdiscovery-verdict.awk" <"$out.nd")
    echo "# $mode: natdiscovery: $v" >>"$out"
    for kind in partner dual; do
        dir=$work/$p/$c-$kind
        until_true 300 probed "$dir"
        ours=$(our_verdict "$dir")
        echo "# $mode: stun probe ($kind): $ours; $(ctl "$dir" nat | jq -c '{server, other, mapped, duration_ms}')" >>"$out"
        if [[ $ours == "$v" && $v != no-verdict* ]]; then
            echo "ok - $mode: the stun probe against $kind SNs says what natdiscovery says" >>"$out"
        else
            echo "not ok - $mode: the stun probe against $kind SNs says what natdiscovery says" >>"$out"
            tail -n 20 "$dir/log" | sed 's/^/#   /' >>"$out"
        fi
    done
}

# lab_job P MODE1 MODE2: a lab with coturn, a login server and three SNs; c1 in MODE1 and
# c2 in MODE2 checked at once. The lab goes down however this ends.
lab_job() {
    local p=$1 m1=$2 m2=$3 d=$work/$1 m
    trap 'lab "$p" down >/dev/null 2>&1' EXIT
    trap 'exit 1' INT TERM HUP
    mkdir -p "$d/login"
    login_conf >"$d/login/hark.conf"
    if ! lab "$p" up "$m1" "$m2" 2>"$d/err" || ! lab "$p" stun start 2>>"$d/err" ||
       ! start_node "$p" login "$d/login" 2>>"$d/err"; then
        for m in "$m1" "$m2"; do
            echo "not ok - $m: lab with coturn and a login server up" >>"$work/$m"
            sed 's/^/# /' "$d/err" >>"$work/$m"
        done
        return
    fi
    # Every lab's login server makes its own CA; the SNs and clients of this lab pin it.
    ca=$d/login/state/ca.pem
    local ok=1
    start_sn "$p" sn1 "$d/sn1" sn1 "$NET.11" "" || ok=0
    start_sn "$p" sn2 "$d/sn2" sn2 "$NET.12" "$NET.11" || ok=0
    start_sn "$p" stun "$d/snd" snd "$NET.20" "" "$NET.21" || ok=0
    for s in sn1 sn2 snd; do until_true 100 rfc5780_on "$d/$s" || ok=0; done
    if ((ok == 0)); then
        for m in "$m1" "$m2"; do
            echo "not ok - $m: three hark SNs serving RFC 5780" >>"$work/$m"
            for s in sn1 sn2 snd; do tail -n 5 "$d/$s/log" | sed "s/^/# $s: /" >>"$work/$m"; done
        done
        return
    fi
    client_job "$p" c1 "$m1" "$work/$m1" &
    local c1=$!                 # not $! after client_job c2: it starts nodes in the background
    client_job "$p" c2 "$m2" "$work/$m2"
    wait "$c1"
}

labs_each_pair lab_job
for p in "${labs[@]}"; do lab "$p" down >/dev/null 2>&1; done

{
    labs_each_mode_tap
    labs_none_left
} >"$work/tap"
tap_print "$work/tap"
