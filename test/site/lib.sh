# shellcheck shell=bash disable=SC2034  # settings are used by the scripts that source this
# lib.sh - settings and helpers shared by up.sh, down.sh, shape.sh and
# make-condor-tarball.sh. Source it; do not run it.
#
# Every setting can be overridden from the environment, e.g.
#   SITE_DIR=/var/tmp/site bash test/site/up.sh
# but the tests expect the defaults (test/site/site-info.ts reads SITE_DIR).

# --- where things live ------------------------------------------------------
SITE_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SITE_DIR=${SITE_DIR:-/tmp/hpc-annex-site}   # all state, keys, configs, logs
SITE_USER=${SITE_USER:-hpcuser}             # the unprivileged HPC account
SITE_PASSWORD=${SITE_PASSWORD:-hpcpass}     # its Unix password (password port only)
# base32 TOTP secret for the one-time-code prompt (RFC 6238, SHA1, 30 s, 6 digits)
SITE_OTP_SECRET=${SITE_OTP_SECRET:-JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP}

# --- ssh: one sshd per port, each with its own log --------------------------
SITE_HOST=127.0.0.1
SITE_PORT_KEY=${SITE_PORT_KEY:-24201}       # publickey only
SITE_PORT_OTP=${SITE_PORT_OTP:-24202}       # publickey, then "Verification code:" (TOTP)
SITE_PORT_ONE=${SITE_PORT_ONE:-24203}       # publickey only, MaxSessions 1
SITE_PORT_PW=${SITE_PORT_PW:-24204}         # "Password:" then "Verification code:"
SITE_MAX_SESSIONS=${SITE_MAX_SESSIONS:-10}  # sshd's MaxSessions (10 = OpenSSH's default)
# PAM picks its service from sshd's program name: /etc/pam.d/<this> (and <this>-pw)
SITE_PAM_SERVICE=sshd-annexsite
# instance name, port, PAM service (program name), kind
SITE_SSHDS=(
    "key $SITE_PORT_KEY $SITE_PAM_SERVICE"
    "otp $SITE_PORT_OTP $SITE_PAM_SERVICE"
    "one $SITE_PORT_ONE $SITE_PAM_SERVICE"
    "pw $SITE_PORT_PW $SITE_PAM_SERVICE-pw"
)

# --- slurm ------------------------------------------------------------------
SITE_NODES=${SITE_NODES:-3}                 # node1..nodeN, one slurmd each
SITE_NODE_CPUS=${SITE_NODE_CPUS:-2}         # CPUs advertised per node
SITE_NODE_MEM=${SITE_NODE_MEM:-4000}        # MB advertised per node
SITE_SLURMCTLD_PORT=${SITE_SLURMCTLD_PORT:-24210}
SITE_SLURMD_PORT0=${SITE_SLURMD_PORT0:-24211}  # node k listens on PORT0+k-1
SITE_CLUSTER=${SITE_CLUSTER:-annexsite}

# --- network namespace mode (up.sh --node-netns) -----------------------------
SITE_NS=${SITE_NS:-annexsite-login}         # the login node's namespace
SITE_VETH_WS=${SITE_VETH_WS:-annexsite0}    # veth end in the root namespace
SITE_VETH_NS=${SITE_VETH_NS:-annexsite1}    # veth end inside $SITE_NS
SITE_WS_IP=${SITE_WS_IP:-10.77.0.1}         # workstation side address
SITE_LOGIN_IP=${SITE_LOGIN_IP:-10.77.0.2}   # login node address
SITE_NFQUEUE=${SITE_NFQUEUE:-7}             # NFQUEUE number used by nfq-delay
SITE_CLUSTER_NET=${SITE_CLUSTER_NET:-10.78.0}  # node k = .k, login = .254

# --- helpers ----------------------------------------------------------------
log() { printf '[site %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# site_lock SCRIPT ARGS...: run the calling script again under an exclusive
# lock on $SITE_DIR.lock, so that two up.sh/down.sh never run at once (down.sh
# called by up.sh runs inside the same lock). flock -o: the daemons the script
# starts do not inherit the lock.
site_lock() {
    if [ -z "${SITE_LOCK_HELD:-}" ]; then
        export SITE_LOCK_HELD=1
        exec flock -o -w 600 "$SITE_DIR.lock" bash "$@"
    fi
}

# site_proc_start PID: when the process PID started (field 22 of
# /proc/PID/stat), which tells it from a later process given the same pid;
# fails once it has ended (a zombie included).
site_proc_start() {
    local stat fields
    { stat=$(< "/proc/$1/stat"); } 2>/dev/null || return 1
    # Fields 3.. follow the command name, which is in parentheses and may hold spaces.
    read -r -a fields <<< "${stat##*) }"
    [ "${fields[0]}" != Z ] || return 1
    echo "${fields[19]}"
}

# site_live_users: pids of the runs using the site that are still running:
# each registered as $SITE_DIR/users/<pid>, holding its start time
# (test/site/users.sh add).
site_live_users() {
    local f pid start
    for f in "$SITE_DIR"/users/*; do
        pid=${f##*/}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        start=$(site_proc_start "$pid") || continue
        [ "$(head -n 1 -- "$f" 2>/dev/null)" = "$start" ] && echo "$pid"
    done
    return 0
}

# site_profile lan|campus|wan: "DELAY_MS RATE" of a network profile (RATE
# "none": no cap). lan: a machine-room link; campus: 10 ms RTT, 1 Gbit/s;
# wan: 100 ms RTT, 100 Mbit/s.
site_profile() {
    case "$1" in
        lan) echo "0.2 none" ;;
        campus) echo "10 1gbit" ;;
        wan) echo "100 100mbit" ;;
        *) return 1 ;;
    esac
}

# Mode chosen by up.sh: "loopback" or "netns" (empty if the site is down).
site_mode() { cat "$SITE_DIR/mode" 2>/dev/null || true; }

# Prefix that runs a command where the login node lives. nsenter, not
# "ip netns exec": the latter mounts a fresh /sys, which hides
# /sys/fs/cgroup, and slurmd then fails ("Unable to initialize cgroup plugin").
site_exec() {
    if [ "$(site_mode)" = netns ]; then
        nsenter --net="/run/netns/$SITE_NS" "$@"
    else
        "$@"
    fi
}

# Address the workstation uses to reach the login node.
site_login_addr() {
    if [ "$(site_mode)" = netns ]; then echo "$SITE_LOGIN_IP"; else echo "$SITE_HOST"; fi
}

# pid_alive PIDFILE NAME: true if the pid in PIDFILE runs a program whose
# command line mentions NAME (guards against a recycled pid).
pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$2"
}

# stop_pid PID NAME: SIGTERM the process, wait up to 10 s, then SIGKILL it.
stop_pid() {
    local pid=$1 name=$2 i
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        [ -d "/proc/$pid" ] || return 0
        # a zombie whose parent has gone counts as stopped
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
        sleep 0.1
    done
    log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
}

# stop_pids PID...: SIGTERM them all at once, wait up to 10 s for all, then
# SIGKILL what is left.
stop_pids() {
    local pid left i
    [ $# -gt 0 ] || return 0
    kill "$@" 2>/dev/null || true
    for i in $(seq 100); do
        left=()
        for pid in "$@"; do
            [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && left+=("$pid")
        done
        [ "${#left[@]}" -eq 0 ] && return 0
        sleep 0.1
    done
    log "pids ${left[*]} ignored SIGTERM; sending SIGKILL"
    kill -9 "${left[@]}" 2>/dev/null || true
}

# stop_pidfiles NAME PIDFILE...: stop the pids recorded in the files (those
# still running NAME) together, then remove the files.
stop_pidfiles() {
    local name=$1 f pids=()
    shift
    for f in "$@"; do
        if pid_alive "$f" "$name"; then
            pids+=("$(cat "$f")")
            log "stopping $name (pid $(cat "$f"))"
        fi
    done
    stop_pids "${pids[@]}"
    rm -f "$@"
}

# stop_pidfile PIDFILE NAME: stop the one pid recorded in PIDFILE (if it still
# runs NAME), then remove the file.
stop_pidfile() {
    local f=$1 name=$2
    if pid_alive "$f" "$name"; then
        stop_pid "$(cat "$f")" "$name"
    fi
    rm -f "$f"
}

# site_leftover_pids: daemons of this site whose pid files are gone (a crashed
# run, a deleted $SITE_DIR): every one was started with a path inside
# $SITE_DIR on its command line (sshd through $SITE_DIR/bin, slurmctld and
# slurmd with -f $SITE_DIR/slurm/slurm.conf), so nothing else matches.
site_leftover_pids() {
    local f cmd
    # one grep for the candidates, then the exact patterns
    # shellcheck disable=SC2013  # /proc paths: one word each
    for f in $(grep -lsaF -e "$SITE_DIR/" /proc/[0-9]*/cmdline); do
        cmd=$(tr '\0' ' ' 2>/dev/null < "$f") || continue
        case "$cmd" in
            *"$SITE_DIR/bin/$SITE_PAM_SERVICE"*|*"slurmctld -f $SITE_DIR/"*|*"slurmd -f $SITE_DIR/"*|"$SITE_DIR/bin/nfq-delay "*)
                f=${f#/proc/}
                echo "${f%/cmdline}" ;;
        esac
    done
}

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
    local deadline=$(( $(now_ms) + $1 * 1000 ))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# json_str STRING: STRING as a JSON string literal.
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}
