#!/bin/bash
# shape.sh - change the emulated network between the workstation (root
# namespace) and the login node (namespace $SITE_NS). Needs a site started
# with up.sh --netns / --node-netns / --profile. Can be called again at any
# time to change the shaping.
#
#   sudo bash test/site/shape.sh --profile wan          # 100 ms RTT, 100 Mbit/s
#   sudo bash test/site/shape.sh --delay-ms 10 --rate 1gbit
#   sudo bash test/site/shape.sh --off                  # plain veth again
#   sudo bash test/site/shape.sh --show
#
# Profiles: lan (+0.2 ms RTT, no cap), campus (+10 ms RTT, 1 Gbit/s),
# wan (+100 ms RTT, 100 Mbit/s).
#
# Delay: this kernel has no sch_netem ("tc qdisc add ... netem" fails with
# "Error: Specified qdisc kind is unknown."), so packets entering the login
# namespace are sent to an NFQUEUE (iptables-legacy, mangle/PREROUTING, inside
# the namespace only) and held there by nfq-delay (nfq-delay.c, built here on
# first use; gcc and libnetfilter-queue-dev are installed from Debian if
# missing) for N ms before being accepted. Every round trip crosses that point
# exactly once, so N is the added RTT. The rule has --queue-bypass: if
# nfq-delay dies, packets pass undelayed.
#
# Rate: a tbf qdisc on the egress of both veth ends (upload and download).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
[ "$(site_mode)" = netns ] || die "the site is not up in a network namespace (up.sh --netns, --node-netns or --profile)"

DELAY_MS=0 RATE='' OFF=0 SHOW=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profile)
            [ $# -ge 2 ] || die "--profile needs lan, campus or wan"
            profile=$(site_profile "$2") || die "unknown profile: $2 (lan, campus, wan)"
            read -r DELAY_MS RATE <<< "$profile"
            shift ;;
        --delay-ms) [ $# -ge 2 ] || die "--delay-ms needs a value"; DELAY_MS=$2; shift ;;
        --rate) [ $# -ge 2 ] || die "--rate needs a value"; RATE=$2; shift ;;
        --off) OFF=1 ;;
        --show) SHOW=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done
[ "$RATE" = none ] && RATE=''
[[ $DELAY_MS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--delay-ms: not a number of milliseconds: $DELAY_MS"
D=$SITE_DIR
NSX=(ip netns exec "$SITE_NS")
RULE=(PREROUTING -i "$SITE_VETH_NS" -j NFQUEUE --queue-num "$SITE_NFQUEUE" --queue-bypass)

if [ "$SHOW" = 1 ]; then
    cat "$D/shape" 2>/dev/null || echo "no shaping"
    tc qdisc show dev "$SITE_VETH_WS"
    "${NSX[@]}" tc qdisc show dev "$SITE_VETH_NS"
    "${NSX[@]}" iptables-legacy -t mangle -S PREROUTING
    exit 0
fi

# Always start from no shaping, then apply what was asked.
stop_pidfile "$D/nfq-delay.pid" nfq-delay
while "${NSX[@]}" iptables-legacy -t mangle -C "${RULE[@]}" 2>/dev/null; do
    "${NSX[@]}" iptables-legacy -t mangle -D "${RULE[@]}"
done
tc qdisc del dev "$SITE_VETH_WS" root 2>/dev/null || true
"${NSX[@]}" tc qdisc del dev "$SITE_VETH_NS" root 2>/dev/null || true
rm -f "$D/shape"
if [ "$OFF" = 1 ]; then
    log "shaping off"
    exit 0
fi

if [ -n "$RATE" ]; then
    burst=${SITE_TBF_BURST:-64kb}
    tc qdisc add dev "$SITE_VETH_WS" root tbf rate "$RATE" burst "$burst" latency 50ms
    "${NSX[@]}" tc qdisc add dev "$SITE_VETH_NS" root tbf rate "$RATE" burst "$burst" latency 50ms
    echo "rate $RATE each way (tbf)" >> "$D/shape"
fi

if [ "$DELAY_MS" != 0 ]; then
    bin=$D/bin/nfq-delay
    if [ ! -x "$bin" ] || [ "$SITE_TOOLS/nfq-delay.c" -nt "$bin" ]; then
        if ! command -v gcc >/dev/null || [ ! -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ]; then
            log "installing gcc and libnetfilter-queue-dev to build nfq-delay"
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
                --no-install-recommends gcc libc6-dev libnetfilter-queue-dev >/dev/null ||
                die "cannot install gcc/libnetfilter-queue-dev (apt-get update first?)"
        fi
        mkdir -p "$D/bin"
        gcc -O2 -Wall -o "$bin" "$SITE_TOOLS/nfq-delay.c" -lnetfilter_queue
    fi
    "${NSX[@]}" iptables-legacy -t mangle -A "${RULE[@]}"
    # setsid + nohup: survives the calling shell; its pid is all down.sh needs
    "${NSX[@]}" setsid nohup "$bin" "$SITE_NFQUEUE" "$DELAY_MS" \
        > "$D/nfq-delay.log" 2>&1 < /dev/null &
    echo $! > "$D/nfq-delay.pid"
    wait_for 5 grep -q 'nfq-delay: queue' "$D/nfq-delay.log" ||
        die "nfq-delay did not start: $(cat "$D/nfq-delay.log")"
    echo "delay +${DELAY_MS} ms per round trip (nfq-delay)" >> "$D/shape"
fi
log "shaping: $(tr '\n' ';' < "$D/shape" 2>/dev/null)"
