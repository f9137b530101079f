#!/bin/bash
# net.sh - an emulated network between the benchmarked workstation and the
# loopback site, without touching the site: the workstation side (hpc-annex,
# bench/baseline.sh, cat | ssh) runs in its own network namespace, reaching
# the site's sshd (127.0.0.1, ports 24201-24204) over a veth pair through a
# DNAT that matches only that veth. Everything else on the machine, the site's
# own tests included, keeps talking to the site undelayed.
#
#   sudo bench/net.sh up                  namespace, veth, DNAT (idempotent)
#   sudo bench/net.sh shape lan|campus|wan|off
#   sudo bench/net.sh exec CMD...         run CMD in the workstation namespace
#   sudo bench/net.sh down                remove all of it
#
# Profiles: lan +0.2 ms RTT, no cap; campus +10 ms RTT, 1 Gbit/s each way;
# wan +100 ms RTT, 100 Mbit/s each way.
#
# Delay: the kernel has no netem, so packets entering the workstation
# namespace go to an NFQUEUE (iptables-legacy, inside that namespace only) and
# are held there by nfq-delay (test/site/nfq-delay.c, shared with the site harness) for N ms before being
# accepted: every round trip crosses that point once, so N is the added RTT.
# Only packets coming back to the workstation are held (ACKs during an
# upload), never its own outgoing ones, which TCP Small Queues would throttle.
# --queue-bypass: if nfq-delay stops, packets pass undelayed.
# Rate: tbf on the egress of both veth ends.
set -euo pipefail

NS=${BENCH_NS:-annexbench-ws}
VETH_ROOT=${BENCH_VETH_ROOT:-annexbench0}   # in the root namespace: the site's side
VETH_WS=${BENCH_VETH_WS:-annexbench1}       # in $NS: the workstation's side
ROOT_IP=${BENCH_ROOT_IP:-10.79.0.1}         # the address the workstation dials for the site
WS_IP=${BENCH_WS_IP:-10.79.0.2}
PORTS=${BENCH_PORTS:-24201:24204}           # the site's sshd ports
QUEUE=${BENCH_NFQUEUE:-17}
STATE=${BENCH_NET_DIR:-/tmp/annexbench-net}
HERE=$(cd "$(dirname "$0")" && pwd)
NFQ_SOURCE=$HERE/../test/site/nfq-delay.c
DNAT=(PREROUTING -i "$VETH_ROOT" -d "$ROOT_IP" -p tcp -m multiport --dports "$PORTS" -j DNAT --to-destination 127.0.0.1)
DELAY_RULE=(PREROUTING -i "$VETH_WS" -j NFQUEUE --queue-num "$QUEUE" --queue-bypass)
NSX=(ip netns exec "$NS")

log() { printf '[bench net] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"

profile() {
    case "$1" in
        lan) echo "0.2 none 64kb" ;;
        campus) echo "10 1gbit 256kb" ;;
        wan) echo "100 100mbit 64kb" ;;
        *) return 1 ;;
    esac
}

stop_delay() {
    local pid
    pid=$(cat "$STATE/nfq-delay.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q nfq-delay; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -f "$STATE/nfq-delay.pid"
}

unshape() {
    stop_delay
    if ip netns list | grep -qw "$NS"; then
        while "${NSX[@]}" iptables-legacy -t mangle -C "${DELAY_RULE[@]}" 2>/dev/null; do
            "${NSX[@]}" iptables-legacy -t mangle -D "${DELAY_RULE[@]}"
        done
        "${NSX[@]}" tc qdisc del dev "$VETH_WS" root 2>/dev/null || true
    fi
    tc qdisc del dev "$VETH_ROOT" root 2>/dev/null || true
    rm -f "$STATE/shape"
}

up() {
    mkdir -p "$STATE"
    if ! ip netns list | grep -qw "$NS"; then
        ip netns add "$NS"
        ip link add "$VETH_ROOT" type veth peer name "$VETH_WS"
        ip link set "$VETH_WS" netns "$NS"
        ip addr add "$ROOT_IP/24" dev "$VETH_ROOT"
        ip link set "$VETH_ROOT" up
        "${NSX[@]}" ip addr add "$WS_IP/24" dev "$VETH_WS"
        "${NSX[@]}" ip link set "$VETH_WS" up
        "${NSX[@]}" ip link set lo up
    fi
    # No default route: all the namespace talks to is on the link (the site at
    # ROOT_IP; the pilots come from it). With one, a name lookup there waits
    # for a resolver it cannot reach (HTCondor's daemons look up their peers'
    # names: 10 s each); without, it fails at once, as a real lookup answers.
    "${NSX[@]}" ip route del default 2>/dev/null || true
    # The site listens on 127.0.0.1 only: let this veth (and nothing else) reach it.
    sysctl -qw "net.ipv4.conf.$VETH_ROOT.route_localnet=1"
    iptables -t nat -C "${DNAT[@]}" 2>/dev/null || iptables -t nat -A "${DNAT[@]}"
    bin=$STATE/nfq-delay
    if [ ! -x "$bin" ] || [ "$NFQ_SOURCE" -nt "$bin" ]; then
        if ! command -v gcc >/dev/null || [ ! -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ]; then
            log "installing gcc and libnetfilter-queue-dev to build nfq-delay"
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
                --no-install-recommends gcc libc6-dev libnetfilter-queue-dev >/dev/null
        fi
        gcc -O2 -Wall -o "$bin" "$NFQ_SOURCE" -lnetfilter_queue
    fi
    log "up: the workstation namespace $NS reaches the site at $ROOT_IP"
}

shape() {
    local delay rate burst
    read -r delay rate burst <<< "$(profile "$1")" || die "unknown profile: $1 (lan, campus, wan, off)"
    ip netns list | grep -qw "$NS" || die "not up: run net.sh up first"
    unshape
    if [ "$rate" != none ]; then
        tc qdisc add dev "$VETH_ROOT" root tbf rate "$rate" burst "$burst" latency 50ms
        "${NSX[@]}" tc qdisc add dev "$VETH_WS" root tbf rate "$rate" burst "$burst" latency 50ms
    fi
    "${NSX[@]}" iptables-legacy -t mangle -A "${DELAY_RULE[@]}"
    "${NSX[@]}" setsid nohup "$STATE/nfq-delay" "$QUEUE" "$delay" > "$STATE/nfq-delay.log" 2>&1 < /dev/null &
    echo $! > "$STATE/nfq-delay.pid"
    for _ in $(seq 50); do
        grep -q 'queue' "$STATE/nfq-delay.log" 2>/dev/null && break
        sleep 0.1
    done
    echo "$1 +${delay} ms RTT, rate ${rate}" > "$STATE/shape"
    log "shaped: $(cat "$STATE/shape")"
}

down() {
    unshape
    iptables -t nat -D "${DNAT[@]}" 2>/dev/null || true
    ip link del "$VETH_ROOT" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$STATE"
    log down
}

case "${1:-}" in
    up) up ;;
    shape)
        [ $# -eq 2 ] || die "usage: net.sh shape lan|campus|wan|off"
        if [ "$2" = off ]; then unshape; else shape "$2"; fi ;;
    exec) shift; exec nsenter --net="/run/netns/$NS" "$@" ;;
    down) down ;;
    *) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 2 ;;
esac
