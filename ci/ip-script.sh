#!/usr/bin/env bash
# The lvslab reference topology built with one `ip` command per step, as a baseline for
# harness/benches/bringup.rs: switch (bridge br-lan), client, director, rs1..rs3; one veth
# pair per host with its switch end on the bridge; addresses; VIP on lo of the real servers.
#
#   ci/ip-script.sh up PREFIX      build (named namespaces PREFIX-<node>)
#   ci/ip-script.sh down PREFIX    delete exactly those namespaces
#   ci/ip-script.sh once           up + down with a unique prefix (cleans up on any exit)
set -euo pipefail

HOSTS=(client director rs1 rs2 rs3)
declare -A ADDR=([client]=10.0.0.2 [director]=10.0.0.1 [rs1]=10.0.0.11 [rs2]=10.0.0.12 [rs3]=10.0.0.13)
VIP=10.0.0.100

up() {
    local p=$1 sw=$1-switch h
    ip netns add "$sw"
    for h in "${HOSTS[@]}"; do ip netns add "$p-$h"; done
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br-lan type bridge
    ip -n "$sw" link set br-lan up
    for h in "${HOSTS[@]}"; do
        ip -n "$p-$h" link set lo up
        # Both ends born in their namespaces, as lvslab does.
        ip -n "$sw" link add "$h-eth0" type veth peer name eth0 netns "$p-$h"
        ip -n "$sw" link set "$h-eth0" master br-lan up
        ip -n "$p-$h" addr add "${ADDR[$h]}/24" dev eth0
        ip -n "$p-$h" link set eth0 up
        case $h in rs*) ip -n "$p-$h" addr add "$VIP/32" dev lo ;; esac
    done
}

down() {
    local p=$1 h
    # Only the names this script made, and only if present.
    for h in switch "${HOSTS[@]}"; do
        if [ -e "/run/netns/$p-$h" ]; then ip netns del "$p-$h"; fi
    done
}

case ${1:-} in
    up) up "${2:?prefix}" ;;
    down) down "${2:?prefix}" ;;
    once)
        prefix=ipbench-$$
        trap 'down "$prefix"' EXIT
        up "$prefix"
        ;;
    *) echo "usage: $0 up PREFIX | down PREFIX | once" >&2; exit 2 ;;
esac
