#!/bin/bash
# up.sh - bring up the loopback HPC site the integration tests run against:
#
#   * a login node: Debian's OpenSSH sshd with private configs, host key, PAM
#     services, logs and pid files under $SITE_DIR (/etc/ssh/sshd_config and
#     /etc/pam.d/sshd are never used), one sshd per port on 127.0.0.1:
#       24201  publickey only
#       24202  publickey, then keyboard-interactive "Verification code: " (TOTP,
#              a code is accepted only once)
#       24203  publickey only, MaxSessions 1
#       24204  keyboard-interactive "Password: " then "Verification code: "
#     for the unprivileged account $SITE_USER (default hpcuser)
#   * SLURM (Debian slurm-wlm 22.05) with munge: slurmctld + one slurmd per
#     node (node1..node3, 2 CPUs and 4000 MB each) on this one machine,
#     partitions compute (default, whole nodes, 1 day), shared (shared by
#     core, 1 day), debug (whole nodes, 30 min); limits enforced at submit;
#     $SITE_DIR/scratch shared by all nodes
#   * $SITE_DIR/condor/condor-test-<version>.tar.gz: a small HTCondor tarball
#     whose condor_master is a test double (make-condor-tarball.sh)
#   * the workstation side: a key, known_hosts and an ssh_config with the
#     Host aliases hpc, hpc-2fa, hpc-one, hpc-pw
#   * $SITE_DIR/site.json: everything a test needs (test/site/site-info.ts)
#
# Usage:  sudo bash test/site/up.sh [--netns] [--node-netns] [--delay-ms N]
#                                   [--rate RATE] [--profile lan|campus|wan]
#   (default: everything on 127.0.0.1 in the root namespace; the tests use that)
#   --netns        the login node (sshd, slurmctld, slurmd) in network
#                  namespace $SITE_NS at $SITE_LOGIN_IP, reached over a veth
#                  pair, so that shape.sh can add delay and a bandwidth cap
#   --node-netns   also every compute node in its own namespace (addresses
#                  $SITE_CLUSTER_NET.1..N on a bridge in the login namespace,
#                  login node $SITE_CLUSTER_NET.254); implies --netns
#   --delay-ms N   add N ms to every workstation-login round trip (shape.sh)
#   --rate RATE    cap the bandwidth each way, tc syntax e.g. 100mbit
#   --profile P    lan (+0.2 ms), campus (+10 ms, 1gbit), wan (+100 ms,
#                  100mbit); --delay-ms/--rate after it override
#   Any of these implies --netns. site.json's host is then $SITE_LOGIN_IP.
# Idempotent: when the site is already up (and this harness has not changed
# since) it returns at once; otherwise it first cleans up what a previous or
# crashed run left behind (down.sh), then starts everything afresh.
# Stop with down.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
site_lock "$0" "$@"

MODE=loopback DELAY_MS=0 RATE='' NODE_NETNS=0
ARGS="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --netns) MODE=netns ;;
        --node-netns) NODE_NETNS=1; MODE=netns ;;
        --delay-ms) [ $# -ge 2 ] || die "--delay-ms needs a value"; DELAY_MS=$2; MODE=netns; shift ;;
        --rate) [ $# -ge 2 ] || die "--rate needs a value"; RATE=$2; MODE=netns; shift ;;
        --profile)
            [ $# -ge 2 ] || die "--profile needs lan, campus or wan"
            profile=$(site_profile "$2") || die "unknown profile: $2 (lan, campus, wan)"
            read -r DELAY_MS RATE <<< "$profile"
            [ "$RATE" = none ] && RATE=''
            MODE=netns; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

for b in /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/oathtool \
         /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sbatch \
         /lib/x86_64-linux-gnu/security/pam_google_authenticator.so; do
    [ -e "$b" ] || die "$b missing: run test/site/install.sh first (as root)"
done

D=$SITE_DIR
# What this site was made from: a changed harness or other options restart it.
STAMP=$( (cat "$SITE_TOOLS/lib.sh" "$SITE_TOOLS/up.sh" "$SITE_TOOLS/make-condor-tarball.sh" \
    "$SITE_TOOLS/condor-double/condor_master"; echo "$ARGS") | sha256sum | cut -d' ' -f1)

site_running() {
    local inst name
    [ -n "$(site_mode)" ] && [ -s "$D/site.json" ] || return 1
    for inst in "${SITE_SSHDS[@]}"; do
        read -r name _ <<< "$inst"
        pid_alive "$D/ssh/sshd-$name.pid" "$SITE_PAM_SERVICE" || return 1
    done
    [ -e "/etc/pam.d/$SITE_PAM_SERVICE" ] && [ -e "/etc/pam.d/$SITE_PAM_SERVICE-pw" ] || return 1
    pid_alive "$D/slurm/run/slurmctld.pid" slurmctld || return 1
    for i in $(seq "$SITE_NODES"); do
        pid_alive "$D/slurm/run/slurmd-node$i.pid" slurmd || return 1
    done
    [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$D/slurm/slurm.conf" ] || return 1
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

if site_running; then
    if [ "$(cat "$D/stamp" 2>/dev/null)" = "$STAMP" ]; then
        log "site already up: ssh -F $D/client/ssh_config hpc"
        exit 0
    fi
    users=$(site_live_users | tr '\n' ' ')
    if [ -n "$users" ]; then
        log "WARNING: the harness changed since the site was started, but test runs (pids $users) use it: keeping it"
        exit 0
    fi
    log "the harness changed since the site was started: restarting it"
fi
if [ -n "$(site_mode)" ] || [ -n "$(site_leftover_pids)" ] || compgen -G "$D/ssh/*.pid" >/dev/null ||
   compgen -G "$D/slurm/run/*.pid" >/dev/null; then
    log "cleaning up a previous run first"
    bash "$SITE_TOOLS/down.sh"
fi
ports=()
for inst in "${SITE_SSHDS[@]}"; do
    read -r _ port _ <<< "$inst"
    ports+=("$port")
done
ports+=("$SITE_SLURMCTLD_PORT")
for i in $(seq "$SITE_NODES"); do ports+=("$(( SITE_SLURMD_PORT0 + i - 1 ))"); done
for port in "${ports[@]}"; do
    if [ -n "$(ss -Hltn "sport = :$port")" ]; then
        die "port $port is in use by something else: $(ss -Hltnp "sport = :$port")"
    fi
done

T_START=$(now_ms)
TIMINGS=()
step() { TIMINGS+=("$(printf '%-28s %6d ms' "$1" $(( $(now_ms) - T_STEP )))"); T_STEP=$(now_ms); }
T_STEP=$T_START

LOGIN_HOST=login1                      # hostname of the login node
if [ "$NODE_NETNS" = 1 ]; then
    CTL_ADDR=$SITE_CLUSTER_NET.254      # login node on the cluster network
    node_addr() { echo "$SITE_CLUSTER_NET.$1"; }
else
    CTL_ADDR=127.0.0.1
    node_addr() { echo 127.0.0.1; }
fi
mkdir -p "$D"/{bin,etc,client,ssh,otp,slurm/{state,spool,log,run}}
chmod 755 "$D" "$D"/{bin,etc,client,slurm}
chmod 700 "$D"/ssh "$D"/otp
chown slurm:slurm "$D"/slurm/{state,log,run}
echo "$MODE" > "$D/mode"                # from here on down.sh knows there is something to undo

# ---------------------------------------------------------------- the account
if ! id "$SITE_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$SITE_USER"
fi
echo "$SITE_USER:$SITE_PASSWORD" | chpasswd
HOME_U=$(getent passwd "$SITE_USER" | cut -d: -f6)
[ -f "$D/client/id_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "hpc-annex-site-workstation" -f "$D/client/id_ed25519"
chmod 600 "$D/client/id_ed25519"
install -d -o "$SITE_USER" -g "$SITE_USER" -m 700 "$HOME_U/.ssh"
install -o "$SITE_USER" -g "$SITE_USER" -m 600 "$D/client/id_ed25519.pub" "$HOME_U/.ssh/authorized_keys"
install -d -o "$SITE_USER" -g "$SITE_USER" -m 755 "$D/scratch"
# Each node's "node-local" directory (the sandbox machine file's node_local_dir).
for i in $(seq "$SITE_NODES"); do install -d -o "$SITE_USER" -g "$SITE_USER" -m 755 "$D/local" "$D/local/node$i"; done

# TOTP secret read by pam_google_authenticator (as root: user=root below); the
# module rewrites this file on every login. DISALLOW_REUSE: a code is accepted
# once, so a client that logs in a second time with the same code fails (tests
# that log in again answer with the code of a later 30 s window, which
# WINDOW_SIZE 17 = +-4 min accepts). RATE_LIMIT 1000 30 made every login fail
# on this machine; 100 30 works.
{
    echo "$SITE_OTP_SECRET"
    echo '" RATE_LIMIT 100 30'
    echo '" WINDOW_SIZE 17'
    echo '" DISALLOW_REUSE'
    echo '" TOTP_AUTH'
} > "$D/otp/$SITE_USER"
chmod 600 "$D/otp/$SITE_USER"
step "account + keys"

# /etc/hosts seen by the site's daemons and jobs (bind-mounted in a private
# mount namespace, so the machine's /etc/hosts is left alone).
{
    echo "127.0.0.1 localhost"
    echo "$CTL_ADDR $LOGIN_HOST"
    for i in $(seq "$SITE_NODES"); do echo "$(node_addr "$i") node$i"; done
    if [ "$MODE" = netns ]; then echo "$SITE_WS_IP workstation"; fi
} > "$D/etc/hosts"
chmod 644 "$D/etc/hosts"

# as_host NAME CMD...: run CMD where the login node lives (or, with
# IN_NS=<netns>, in that network namespace), in its own UTS and mount
# namespace with hostname NAME and the site's /etc/hosts.
as_host() {
    local name=$1; shift
    local enter=(site_exec)
    if [ -n "${IN_NS:-}" ]; then enter=(nsenter --net="/run/netns/$IN_NS"); fi
    # shellcheck disable=SC2016  # "$1"... expand in the inner sh
    "${enter[@]}" unshare --uts --mount --propagation private \
        sh -c 'hostname "$1"; mount --bind "$2" /etc/hosts; shift 2; exec "$@"' \
        as_host "$name" "$D/etc/hosts" "$@"
}

# ------------------------------------------------------------ network namespace
# nsenter --net, not "ip netns exec", to run daemons there: the latter mounts
# a fresh /sys, hiding /sys/fs/cgroup (slurmd: "Unable to initialize cgroup
# plugin"). Nothing changes in the root namespace but the veth's own /24.
if [ "$MODE" = netns ]; then
    ip netns add "$SITE_NS"
    echo "$SITE_NS" > "$D/netns.list"    # down.sh deletes what is listed here
    ip link add "$SITE_VETH_WS" type veth peer name "$SITE_VETH_NS"
    ip link set "$SITE_VETH_NS" netns "$SITE_NS"
    ip addr add "$SITE_WS_IP/24" dev "$SITE_VETH_WS"
    ip link set "$SITE_VETH_WS" up
    ip netns exec "$SITE_NS" ip addr add "$SITE_LOGIN_IP/24" dev "$SITE_VETH_NS"
    ip netns exec "$SITE_NS" ip link set "$SITE_VETH_NS" up
    ip netns exec "$SITE_NS" ip link set lo up
    if [ "$NODE_NETNS" = 1 ]; then
        # cluster network: a bridge in the login namespace, one veth per node
        ip netns exec "$SITE_NS" ip link add annexbr0 type bridge
        ip netns exec "$SITE_NS" ip addr add "$CTL_ADDR/24" dev annexbr0
        ip netns exec "$SITE_NS" ip link set annexbr0 up
        for i in $(seq "$SITE_NODES"); do
            ns=annexsite-node$i
            ip netns add "$ns"
            echo "$ns" >> "$D/netns.list"
            ip link add "annexn${i}a" type veth peer name "annexn${i}b"
            ip link set "annexn${i}a" netns "$SITE_NS"
            ip link set "annexn${i}b" netns "$ns"
            ip netns exec "$SITE_NS" ip link set "annexn${i}a" master annexbr0 up
            ip netns exec "$ns" ip addr add "$(node_addr "$i")/24" dev "annexn${i}b"
            ip netns exec "$ns" ip link set "annexn${i}b" up
            ip netns exec "$ns" ip link set lo up
        done
    fi
    step "netns + veth"
fi
ADDR=$(site_login_addr)

# ------------------------------------------------------------------------ sshd
# PAM picks its service from sshd's program name, so sshd is started through
# symlinks named after the site's two PAM services.
ln -sfn /usr/sbin/sshd "$D/bin/$SITE_PAM_SERVICE"
ln -sfn /usr/sbin/sshd "$D/bin/$SITE_PAM_SERVICE-pw"
[ -f "$D/ssh/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "hpc-annex-site-login" -f "$D/ssh/ssh_host_ed25519_key"

cat > "/etc/pam.d/$SITE_PAM_SERVICE" <<EOF
# hpc-annex test site sshd (ports $SITE_PORT_KEY-$SITE_PORT_ONE): keyboard-interactive
# asks only for the one-time code. Written by $SITE_TOOLS/up.sh, removed by down.sh.
auth     required  pam_google_authenticator.so secret=$D/otp/\${USER} user=root
account  required  pam_unix.so
session  required  pam_unix.so
EOF
cat > "/etc/pam.d/$SITE_PAM_SERVICE-pw" <<EOF
# hpc-annex test site sshd (port $SITE_PORT_PW): "Password: " then "Verification code: ".
# Written by $SITE_TOOLS/up.sh, removed by down.sh.
auth     required  pam_unix.so
auth     required  pam_google_authenticator.so secret=$D/otp/\${USER} user=root
account  required  pam_unix.so
session  required  pam_unix.so
EOF

install -d -m 755 /run/sshd            # sshd's privilege-separation directory
listening() { [ -n "$(site_exec ss -Hltn "sport = :$1")" ]; }
for inst in "${SITE_SSHDS[@]}"; do
    read -r name port prog <<< "$inst"
    case "$name" in
        key) methods=publickey; sessions=$SITE_MAX_SESSIONS ;;
        otp) methods=publickey,keyboard-interactive; sessions=$SITE_MAX_SESSIONS ;;
        one) methods=publickey; sessions=1 ;;
        pw)  methods=keyboard-interactive; sessions=$SITE_MAX_SESSIONS ;;
    esac
    cfg=$D/ssh/sshd_config-$name
    cat > "$cfg" <<EOF
# sshd "$name" of the hpc-annex test site's login node. Generated by up.sh.
ListenAddress $ADDR
Port $port
HostKey $D/ssh/ssh_host_ed25519_key
PidFile $D/ssh/sshd-$name.pid
LogLevel VERBOSE
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication yes
AuthenticationMethods $methods
PermitRootLogin no
AllowUsers $SITE_USER
AuthorizedKeysFile .ssh/authorized_keys
MaxSessions $sessions
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
EOF
    "$D/bin/$prog" -t -f "$cfg" || die "sshd rejects $cfg"
    : > "$D/ssh/sshd-$name.log"
    chmod 644 "$D/ssh/sshd-$name.log"
    as_host "$LOGIN_HOST" "$D/bin/$prog" -f "$cfg" -E "$D/ssh/sshd-$name.log" </dev/null
done
for inst in "${SITE_SSHDS[@]}"; do
    read -r name port _ <<< "$inst"
    wait_for 5 test -s "$D/ssh/sshd-$name.pid" ||
        die "sshd $name did not start: $(cat "$D/ssh/sshd-$name.log")"
    wait_for 5 listening "$port" || die "nothing listens on port $port"
done
step "sshd x${#SITE_SSHDS[@]}"

# ----------------------------------------------------------------------- munge
# Reuse a munged that already answers on the default socket; otherwise start
# one (as user munge, default key /etc/munge/munge.key made by the package).
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munge: reusing the running munged"
else
    [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged </dev/null
    wait_for 5 test -s /run/munge/munged.pid || die "munged did not start"
    cp /run/munge/munged.pid "$D/munged.pid"    # marks "started by us"
    wait_for 5 sh -c 'munge -n | unmunge' || die "munged does not answer"
fi
step "munge"

# ----------------------------------------------------------------------- slurm
# SITE_PROCTRACK=auto|cgroup|linuxproc. auto: cgroup when a cgroup v1 freezer
# hierarchy is mounted, else linuxproc. With cgroup, scancel also stops a job
# process that double-forked out of its step, as on real sites. Slurm 22.05's
# cgroup/v2 plugin wants systemd, which these machines do not run.
PROCTRACK=${SITE_PROCTRACK:-auto}
if [ "$PROCTRACK" = auto ]; then
    if grep -qE '^cgroup /sys/fs/cgroup/freezer cgroup .*freezer' /proc/mounts; then
        PROCTRACK=cgroup
    else
        PROCTRACK=linuxproc
    fi
fi
NODELIST="node[1-$SITE_NODES]"
cat > "$D/slurm/slurm.conf" <<EOF
# The hpc-annex test site's cluster, generated by $SITE_TOOLS/up.sh.
ClusterName=$SITE_CLUSTER
SlurmctldHost=$LOGIN_HOST($CTL_ADDR)
SlurmctldPort=$SITE_SLURMCTLD_PORT
SlurmdPort=$SITE_SLURMD_PORT0
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=$D/slurm/state
SlurmdSpoolDir=$D/slurm/spool/%n
SlurmctldPidFile=$D/slurm/run/slurmctld.pid
SlurmdPidFile=$D/slurm/run/slurmd-%n.pid
SlurmctldLogFile=$D/slurm/log/slurmctld.log
SlurmdLogFile=$D/slurm/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/$PROCTRACK
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct does not work; finished jobs stay in squeue -t all and
# scontrol for MinJobAge seconds, and are appended to jobcomp.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/slurm/log/jobcomp.log
MinJobAge=300
SchedulerType=sched/backfill
# batch_sched_delay=0: start a batch job as soon as it is submitted (~1 s
# instead of ~3 s)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# refuse at submit time a job that breaks a partition limit (-p debug -t 31)
EnforcePartLimits=ALL
# advertise the node sizes below whatever the hardware is
SlurmdParameters=config_overrides
MpiDefault=none
# bind slurmctld/slurmd to their own address, not 0.0.0.0
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
ReturnToService=2
SlurmdTimeout=60
KillWait=5
InactiveLimit=0
$(if [ "$NODE_NETNS" = 1 ]; then
    # one address per node, so every slurmd can use the same port
    for i in $(seq "$SITE_NODES"); do
        echo "NodeName=node$i NodeAddr=$(node_addr "$i") CPUs=$SITE_NODE_CPUS RealMemory=$SITE_NODE_MEM State=UNKNOWN"
    done
else
    echo "# all nodes on one address: one slurmd port per node"
    echo "NodeName=$NODELIST NodeAddr=$CTL_ADDR Port=[$SITE_SLURMD_PORT0-$(( SITE_SLURMD_PORT0 + SITE_NODES - 1 ))] CPUs=$SITE_NODE_CPUS RealMemory=$SITE_NODE_MEM State=UNKNOWN"
fi)
PartitionName=compute Nodes=$NODELIST Default=YES MaxTime=1-00:00:00 DefaultTime=1:00:00 OverSubscribe=EXCLUSIVE State=UP
PartitionName=shared Nodes=$NODELIST MaxTime=1-00:00:00 DefaultTime=1:00:00 State=UP
PartitionName=debug Nodes=$NODELIST MaxTime=30:00 DefaultTime=10:00 OverSubscribe=EXCLUSIVE State=UP
EOF
chmod 644 "$D/slurm/slurm.conf"
# Client commands (sbatch run by the user over ssh) and slurmstepd read
# /etc/slurm/slurm.conf: point it at ours unless something else is there.
if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" != "$D/slurm/slurm.conf" ]; then
    die "/etc/slurm/slurm.conf exists and is not this site's; move it away first"
fi
mkdir -p /etc/slurm
ln -sfn "$D/slurm/slurm.conf" /etc/slurm/slurm.conf
if [ "$PROCTRACK" = cgroup ]; then
    # cgroup v1, freezer only (nothing is constrained). Each slurmd makes
    # /sys/fs/cgroup/freezer/slurm_<node>; down.sh removes them.
    printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=no\nConstrainRAMSpace=no\nConstrainDevices=no\n' > "$D/slurm/cgroup.conf"
    if [ -e /etc/slurm/cgroup.conf ] && [ "$(readlink /etc/slurm/cgroup.conf)" != "$D/slurm/cgroup.conf" ]; then
        die "/etc/slurm/cgroup.conf exists and is not this site's"
    fi
    ln -sfn "$D/slurm/cgroup.conf" /etc/slurm/cgroup.conf
fi

# -f with the path in $SITE_DIR: down.sh finds the daemons of a crashed run by it
as_host "$LOGIN_HOST" /usr/sbin/slurmctld -f "$D/slurm/slurm.conf" -c </dev/null   # -c: empty state
wait_for 20 site_exec scontrol ping || die "slurmctld not answering: $(tail -5 "$D/slurm/log/slurmctld.log")"
step "slurmctld"
for i in $(seq "$SITE_NODES"); do
    if [ "$NODE_NETNS" = 1 ]; then
        IN_NS=annexsite-node$i as_host "node$i" /usr/sbin/slurmd -f "$D/slurm/slurm.conf" -N "node$i" </dev/null
    else
        as_host "node$i" /usr/sbin/slurmd -f "$D/slurm/slurm.conf" -N "node$i" </dev/null
    fi
done
all_idle() { [ "$(site_exec sinfo -h -p compute -t idle -o %D)" = "$SITE_NODES" ]; }
wait_for 30 all_idle || die "nodes not idle: $(site_exec sinfo -N)"
step "slurmd x$SITE_NODES -> idle"

# ------------------------------------------------------- the test HTCondor tarball
mkdir -p "$D/condor"
chmod 755 "$D/condor"
version=$(sed -n 's/^VERSION=//p' "$SITE_TOOLS/condor-double/condor_master")
TARBALL=$D/condor/condor-test-$version.tar.gz
TARBALL_SHA256=$(bash "$SITE_TOOLS/make-condor-tarball.sh" "$TARBALL")
chmod 644 "$TARBALL"
step "test HTCondor tarball"

# ------------------------------------------------------------ client side files
HOSTKEY=$(cat "$D/ssh/ssh_host_ed25519_key.pub")
for inst in "${SITE_SSHDS[@]}"; do
    read -r _ port _ <<< "$inst"
    echo "[$ADDR]:$port $HOSTKEY"
done > "$D/client/known_hosts"
chmod 644 "$D/client/known_hosts"
host_block() {  # ALIAS PORT [extra option]...
    local alias=$1 port=$2; shift 2
    printf 'Host %s\n' "$alias"
    printf '    %s\n' "HostName $ADDR" "Port $port" "User $SITE_USER" \
        "IdentityFile $D/client/id_ed25519" "IdentitiesOnly yes" \
        "UserKnownHostsFile $D/client/known_hosts" "StrictHostKeyChecking yes" "$@"
}
{
    echo "# ssh -F $D/client/ssh_config hpc|hpc-2fa|hpc-one|hpc-pw (generated by up.sh)"
    host_block hpc "$SITE_PORT_KEY"
    host_block hpc-2fa "$SITE_PORT_OTP"
    host_block hpc-one "$SITE_PORT_ONE"
    host_block hpc-pw "$SITE_PORT_PW" "PubkeyAuthentication no"
} > "$D/client/ssh_config"
chmod 644 "$D/client/ssh_config"

# SSH_ASKPASS helper: answers sshd's keyboard-interactive prompts.
cat > "$D/client/askpass.sh" <<EOF
#!/bin/sh
# Use: SSH_ASKPASS=$D/client/askpass.sh SSH_ASKPASS_REQUIRE=force ssh ...
# Answers "Verification code" with \$SITE_OTP_CODE if set (a code for a later
# 30 s window, since a code is accepted only once), else the current code;
# "Password" with the account's password. Appends each prompt to \$ASKPASS_LOG
# when set.
[ -n "\${ASKPASS_LOG:-}" ] && echo "\$1" >> "\$ASKPASS_LOG"
case "\$1" in
    *"erification code"*)
        if [ -n "\${SITE_OTP_CODE:-}" ]; then echo "\$SITE_OTP_CODE"
        else oathtool --totp -b "$SITE_OTP_SECRET"; fi ;;
    *assword*) echo "$SITE_PASSWORD" ;;
    *) echo "" ;;
esac
EOF
chmod 755 "$D/client/askpass.sh"

{
    printf '{\n'
    printf '  "dir": %s,\n' "$(json_str "$D")"
    printf '  "host": %s,\n' "$(json_str "$ADDR")"
    printf '  "user": %s,\n' "$(json_str "$SITE_USER")"
    printf '  "ports": {"key": %d, "otp": %d, "one": %d, "password": %d},\n' \
        "$SITE_PORT_KEY" "$SITE_PORT_OTP" "$SITE_PORT_ONE" "$SITE_PORT_PW"
    printf '  "maxSessions": %d,\n' "$SITE_MAX_SESSIONS"
    printf '  "keyFile": %s,\n' "$(json_str "$D/client/id_ed25519")"
    printf '  "knownHosts": %s,\n' "$(json_str "$D/client/known_hosts")"
    printf '  "sshConfig": %s,\n' "$(json_str "$D/client/ssh_config")"
    printf '  "otpSecret": %s,\n' "$(json_str "$SITE_OTP_SECRET")"
    printf '  "password": %s,\n' "$(json_str "$SITE_PASSWORD")"
    printf '  "sshdLogs": [%s, %s, %s, %s],\n' \
        "$(json_str "$D/ssh/sshd-key.log")" "$(json_str "$D/ssh/sshd-otp.log")" \
        "$(json_str "$D/ssh/sshd-one.log")" "$(json_str "$D/ssh/sshd-pw.log")"
    printf '  "sshdLog": {"key": %s, "otp": %s, "one": %s, "password": %s},\n' \
        "$(json_str "$D/ssh/sshd-key.log")" "$(json_str "$D/ssh/sshd-otp.log")" \
        "$(json_str "$D/ssh/sshd-one.log")" "$(json_str "$D/ssh/sshd-pw.log")"
    printf '  "askpass": %s,\n' "$(json_str "$D/client/askpass.sh")"
    printf '  "loginHostname": %s,\n' "$(json_str "$LOGIN_HOST")"
    printf '  "mode": %s,\n' "$(json_str "$MODE")"
    printf '  "nodeNetns": %s,\n' "$([ "$NODE_NETNS" = 1 ] && echo true || echo false)"
    printf '  "shaping": {"delayMs": %s, "rate": %s},\n' "$DELAY_MS" "$(json_str "$RATE")"
    printf '  "scratch": %s,\n' "$(json_str "$D/scratch")"
    printf '  "nodes": [%s],\n' "$(for i in $(seq "$SITE_NODES"); do json_str "node$i"; [ "$i" = "$SITE_NODES" ] || printf ', '; done)"
    printf '  "partitions": ["compute", "shared", "debug"],\n'
    printf '  "proctrack": %s,\n' "$(json_str "$PROCTRACK")"
    printf '  "slurmLogs": %s,\n' "$(json_str "$D/slurm/log")"
    printf '  "condorTarball": %s,\n' "$(json_str "$TARBALL")"
    printf '  "condorTarballSha256": %s\n' "$(json_str "$TARBALL_SHA256")"
    printf '}\n'
} > "$D/site.json.tmp"
chmod 644 "$D/site.json.tmp"
mv "$D/site.json.tmp" "$D/site.json"
echo "$STAMP" > "$D/stamp"
step "client files + site.json"

if [ "$DELAY_MS" != 0 ] || [ -n "$RATE" ]; then
    shape_args=(--delay-ms "$DELAY_MS")
    if [ -n "$RATE" ]; then shape_args+=(--rate "$RATE"); fi
    bash "$SITE_TOOLS/shape.sh" "${shape_args[@]}"
    step "shaping"
fi

{
    printf '%s\n' "${TIMINGS[@]}"
    printf '%-28s %6d ms\n' "total up.sh" $(( $(now_ms) - T_START ))
} | tee "$D/timings.txt" >&2
log "site up ($MODE): ssh -F $D/client/ssh_config hpc   (login node $ADDR)"
