# SPDX-License-Identifier: LGPL-2.1-or-later
# labs.sh: what the bash lab tests share (sourced, after setting $netlab). labs_begin
# NAME makes this run's prefix ($run, starting "hnl" so make check's leftover check sees
# it), a work directory ($work) and a trap that takes down every lab in $labs and removes
# $work however the test ends; `lab PREFIX CMD...` runs netlab on one lab. The rest runs
# a job per pair of NAT modes, collects its TAP lines ($work/MODE) and prints them.
labs_begin() {
    run=hnl$1$$-
    work=$(mktemp -d "/tmp/hark-$1.XXXXXX")
    labs=()
    trap labs_cleanup EXIT
    trap 'exit 1' INT TERM HUP
}

labs_cleanup() {
    local p
    for p in "${labs[@]}"; do NETLAB_PREFIX=$p "$netlab" down >/dev/null 2>&1; done
    rm -rf "$work"
}

lab() { local p=$1; shift; NETLAB_PREFIX=$p "$netlab" "$@"; }

# labs_each_pair JOB: JOB PREFIX MODE1 MODE2 for the six NAT modes but web-only, two per
# lab, the labs in parallel; returns when all are done.
labs_each_pair() {
    local pair m1 m2 pids=() pid
    for pair in "public fullcone" "restricted portrestricted" "symmetric udpblock"; do
        read -r m1 m2 <<<"$pair"
        labs+=("$run$m1-")
        "$1" "$run$m1-" "$m1" "$m2" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
}

# labs_each_mode_tap: the TAP lines each pair's job wrote to $work/MODE, in mode order.
labs_each_mode_tap() {
    local m
    for m in public fullcone restricted portrestricted symmetric udpblock; do cat "$work/$m"; done
}

# labs_none_left: the TAP line saying whether this run left a namespace behind.
labs_none_left() {
    local left
    left=$(ip netns list | awk '{ print $1 }' | grep "^$run")
    [[ -z $left ]] && echo "ok - no lab namespace is left behind" ||
        echo "not ok - no lab namespace is left behind: ${left//$'\n'/ }"
}

# tap_print FILE: FILE's TAP lines numbered in the order written, after the plan; fails
# when one is "not ok".
tap_print() {
    echo "1..$(grep -cE '^(not )?ok ' "$1")"
    awk '/^(not )?ok / { sub(/ok /, "ok " ++n " ") } { print }' "$1"
    ! grep -q '^not ok' "$1"
}
