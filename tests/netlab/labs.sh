# labs.sh: what the bash lab tests share (sourced, after setting $netlab): labs_begin
# NAME makes this run's prefix ($run, starting "hnl" so make check's leftover check sees
# it), a work directory ($work) and a trap that takes down every lab in $labs and removes
# $work however the test ends; `lab PREFIX CMD...` runs netlab on one lab.
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
