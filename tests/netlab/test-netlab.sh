#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-netlab.sh: the network lab (tests/netlab/netlab) and coturn's view of each NAT
# mode in it (TAP). coturn's turnutils_natdiscovery verdicts are the reference the
# `stun` probe plugin will be compared against (issue 5), so they are printed too.
# Needs root (namespaces, nftables): skipped otherwise. Three labs in parallel, each
# with its two clients in two modes; every lab is taken down however the test ends.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
netlab=$here/netlab
STUN=198.18.0.20

if ((EUID != 0)); then echo "1..0 # SKIP needs root"; exit 0; fi

source "$here/labs.sh"
labs_begin t    # every lab of this run: $run<name>-

now() { date +%s.%N; }

# What NETLAB.md's table says natdiscovery -m -f reports for c1 in each mode.
declare -A EXPECT=(
    [public]="mapping=none filtering=endpoint-independent"
    [fullcone]="mapping=endpoint-independent filtering=endpoint-independent"
    [restricted]="mapping=endpoint-independent filtering=address-dependent"
    [portrestricted]="mapping=endpoint-independent filtering=address-and-port-dependent"
    [symmetric]="mapping=address-and-port-dependent filtering=address-and-port-dependent"
    [udpblock]="udp-blocked"
)

# verdict RC < natdiscovery output: one line, "mapping=X filtering=Y", "udp-blocked"
# when every test timed out, or "no-verdict" (with whatever was found) otherwise.
verdict() { awk -v rc="$1" -f "$here/natdiscovery-verdict.awk"; }

# tap OUT DESC CMD...: an ok/not ok line (numbered later) for a check run as CMD.
tap() {
    local out=$1 desc=$2; shift 2
    if "$@"; then echo "ok - $desc" >>"$out"; else echo "not ok - $desc" >>"$out"; fi
}

# client_job PREFIX C MODE OUT: natdiscovery's verdict and stunclient's mapped address
# for client C (c1 or c2, behind a router in MODE) of lab PREFIX; TAP lines go to OUT.
client_job() {
    local p=$1 c=$2 mode=$3 out=$4 ip wan args rc v got
    ip=$(lab "$p" addr "$c")
    wan=$ip; [[ $mode == public ]] || wan=$(lab "$p" addr "nat${c#c}")
    # natdiscovery only says "No NAT" when it knows its own address.
    args=(-m -f); [[ $mode == public ]] && args+=(-L "$ip")
    lab "$p" exec "$c" timeout 20 turnutils_natdiscovery "${args[@]}" "$STUN" >"$out.nd" 2>&1
    rc=$?
    v=$(verdict "$rc" <"$out.nd")
    echo "# $mode: natdiscovery verdict: $v" >>"$out"
    [[ $v == "${EXPECT[$mode]}" ]] || { echo "# expected: ${EXPECT[$mode]}"; sed 's/^/#   /' "$out.nd"; } >>"$out"
    tap "$out" "$mode: natdiscovery says ${EXPECT[$mode]}" test "$v" == "${EXPECT[$mode]}"
    # stunclient keeps waiting for its RFC 5780 follow-ups: judge by what it printed.
    lab "$p" exec "$c" timeout 4 turnutils_stunclient "$STUN" >"$out.sc" 2>&1
    got=$(sed -n 's/.*UDP reflexive addr: *\([0-9.]*\):[0-9]*$/\1/p' "$out.sc" | head -1)
    echo "# $mode: stunclient mapped address: ${got:-none}" >>"$out"
    if [[ $mode == udpblock ]]; then
        tap "$out" "$mode: stunclient gets no answer" test -z "$got"
    else
        tap "$out" "$mode: stunclient maps $c to $wan" test "$got" == "$wan"
    fi
}

# lab_job PREFIX MODE1 MODE2: a lab with c1 in MODE1 and c2 in MODE2 and coturn on its
# stun host; both clients checked at once. The lab goes down however this ends.
lab_job() {
    local p=$1 m1=$2 m2=$3 out=$work/$2 m
    trap 'lab "$p" down >/dev/null 2>&1' EXIT
    trap 'exit 1' INT TERM HUP      # a subshell does not inherit the main one's
    if ! lab "$p" up "$m1" "$m2" 2>"$out.err" || ! lab "$p" stun start 2>>"$out.err"; then
        for m in "$m1" "$m2"; do
            echo "not ok - $m: lab with turnserver up" >>"$work/$m"
            sed 's/^/# /' "$out.err" >>"$work/$m"
        done
        return
    fi
    client_job "$p" c1 "$m1" "$work/$m1" &
    client_job "$p" c2 "$m2" "$work/$m2"
    wait $!
}

# 1. A bare lab up and down: timed (reported, not asserted), nothing left behind.
p=${run}ud-
labs+=("$p")
t0=$(now)
lab "$p" up portrestricted symmetric 2>"$work/ud.err"; up_rc=$?
t1=$(now)
lab "$p" down 2>>"$work/ud.err"; down_rc=$?
t2=$(now)

# 2. Two NAT modes per lab (one on each client), the labs in parallel.
labs_each_pair lab_job

{
    awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "# lab up in %.2f s, down in %.2f s\n", b - a, c - b }' 
    sed 's/^/# /' "$work/ud.err"
    if ((up_rc == 0 && down_rc == 0)); then echo "ok - a lab comes up and goes down"
    else echo "not ok - a lab comes up and goes down (up $up_rc, down $down_rc)"; fi
    labs_each_mode_tap
    labs_none_left
} >"$work/tap"
tap_print "$work/tap"
