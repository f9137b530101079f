#!/bin/bash
# down.sh - stop everything up.sh started and undo its changes outside
# $SITE_DIR. Every daemon is stopped by the pid its own pid file records;
# daemons of a crashed run whose pid files are gone are found by the
# $SITE_DIR paths on their command lines.
#
#   sudo bash test/site/down.sh           # stop; keep $SITE_DIR (keys, logs) and the user
#   sudo bash test/site/down.sh --purge   # also delete $SITE_DIR and the $SITE_USER account
#
# Safe to run when the site is partly up or already down.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root
site_lock "$0" "$@"
PURGE=0
[ "${1:-}" = --purge ] && PURGE=1
D=$SITE_DIR
MODE=$(site_mode)
T0=$(now_ms)

user_procs() { ps -o pid= -u "$SITE_USER" 2>/dev/null; }
# Anything still running as the site's account was started through this site
# (ssh sessions, job processes that escaped process tracking). Stop those pid
# by pid.
stop_user_procs() {
    local pid
    for pid in $(user_procs); do
        log "stopping leftover $SITE_USER process $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in $(user_procs); do kill -9 "$pid" 2>/dev/null || true; done
}

# 1. Jobs first: while slurmctld still runs, cancel every job and wait for
#    them to end (slurmstepd and job processes outlive a stopped slurmd).
jobs_gone() { [ -z "$(site_exec squeue -h -o %i 2>/dev/null)" ]; }
if [ -n "$MODE" ] && pid_alive "$D/slurm/run/slurmctld.pid" slurmctld; then
    if ! jobs_gone; then
        log "cancelling jobs"
        site_exec scancel --full --user="$SITE_USER" 2>/dev/null || true
        if ! wait_for 10 jobs_gone; then
            id "$SITE_USER" >/dev/null 2>&1 && stop_user_procs
            wait_for 10 jobs_gone || log "jobs still listed; stopping daemons anyway"
        fi
    fi
fi

# 2. Daemons, each by its pid file.
shopt -s nullglob
stop_pidfiles slurmd "$D"/slurm/run/slurmd-*.pid
stop_pidfile "$D/slurm/run/slurmctld.pid" slurmctld
stop_pidfiles "$SITE_PAM_SERVICE" "$D"/ssh/sshd-*.pid
shopt -u nullglob
stop_pidfile "$D/nfq-delay.pid" nfq-delay
# munged only if up.sh started it (not one that was already running)
if [ -e "$D/munged.pid" ]; then
    stop_pidfile "$D/munged.pid" munged
    rm -f /run/munge/munged.pid
fi

# 3. Daemons of a crashed run whose pid files were lost.
leftovers=()
for pid in $(site_leftover_pids); do
    log "stopping leftover $(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") (pid $pid)"
    leftovers+=("$pid")
done
stop_pids "${leftovers[@]}"

# cgroup directories made by slurmd with proctrack/cgroup (empty by now)
for cg in /sys/fs/cgroup/freezer/slurm_node*; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done

# 4. Whatever is left running as the site's account.
id "$SITE_USER" >/dev/null 2>&1 && [ -n "$(user_procs)" ] && stop_user_procs

# 5. Network namespaces up.sh made (a veth end disappears with its peer).
for ns in $(cat "$D/netns.list" 2>/dev/null) "$SITE_NS"; do
    if ip netns list 2>/dev/null | grep -qw -- "$ns"; then
        ip netns del "$ns" && log "deleted netns $ns"
    fi
done
rm -f "$D/netns.list"
ip link del "$SITE_VETH_WS" 2>/dev/null || true

# 6. Files outside $SITE_DIR.
[ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$D/slurm/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
[ "$(readlink /etc/slurm/cgroup.conf 2>/dev/null)" = "$D/slurm/cgroup.conf" ] && rm -f /etc/slurm/cgroup.conf
for f in "/etc/pam.d/$SITE_PAM_SERVICE" "/etc/pam.d/$SITE_PAM_SERVICE-pw"; do
    # only this site's (they name its secret directory)
    if [ -e "$f" ] && grep -qF "secret=$D/otp/" "$f"; then rm -f "$f"; fi
done

# 7. Fresh Slurm state for the next up.sh; forget the mode and site.json.
rm -rf "$D"/slurm/state/* "$D"/slurm/spool/* "$D/mode" "$D/shape" "$D/stamp" "$D/site.json"

if [ "$PURGE" = 1 ]; then
    id "$SITE_USER" >/dev/null 2>&1 && userdel -r "$SITE_USER" 2>/dev/null && log "removed user $SITE_USER"
    rm -rf "$D" && log "removed $D"
fi
log "site down ($(( $(now_ms) - T0 )) ms)"
exit 0
