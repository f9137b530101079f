#!/bin/bash
# The hpc-annex pilot: makes one node an HTCondor execute node of an annex.
#   pilot.sh prepare PILOT_DIR
#       once, where the pilot directory is made: writes PILOT_DIR/condor_config
#       from PILOT_DIR/pilot.conf and the directory's own settings.
#   pilot.sh run PILOT_DIR [CUDA_VISIBLE_DEVICES [NODE_NAME]]
#       on each node: waits for the shared file system to show the pilot
#       directory, makes this node's LOCAL_DIR in it and a LOCK directory on
#       node-local storage, puts job sandboxes (EXECUTE) on the machine's
#       node-local directory when it passes the checks (PILOT_DIR/node-local.sh),
#       else on shared scratch, then runs condor_master in the foreground and
#       removes the node-local directories when it ends, however it ends.
#   pilot.sh sandbox
#       in an HTCondor job (no shared file system): unpacks condor.tar.gz from
#       the job's directory, then prepares and runs there.
# Exit codes: 30 usage, 31 unsafe path, 32 missing file, 33 shared file system
# too slow, 34 cannot make the local directory, 35 cannot make the lock
# directory, 36 cannot unpack HTCondor.
set -o pipefail

printf -v START '%(%s)T' -1
# Seconds to wait for files written on the login node to show up on this node.
FS_WAIT=${HPC_ANNEX_FS_WAIT:-120}

die() {
    local code=$1
    shift
    printf 'hpc-annex pilot on %s: %s\n' "$(hostname)" "$*" >&2
    exit "$code"
}

# A path HTCondor's configuration can carry as is.
safe_path() {
    case $1 in
        /*) ;;
        *) return 1 ;;
    esac
    case $1 in
        *[!A-Za-z0-9._/+@,:=-]*) return 1 ;;
    esac
    return 0
}

prepare() {
    local dir=$1
    safe_path "$dir" || die 31 "the pilot directory's path has characters HTCondor's configuration cannot carry: $dir"
    [ -r "$dir/pilot.conf" ] || die 32 "no pilot.conf in $dir"
    {
        echo '# Written when the pilot directory was prepared.'
        echo "PILOT_DIR = $dir"
        cat <<'CONF'

# Container jobs use the images staged in the pilot directory, not transferred ones.
JOB_EXECUTION_TRANSFORM_NAMES = $(JOB_EXECUTION_TRANSFORM_NAMES) AnnexSif
JOB_EXECUTION_TRANSFORM_AnnexSif @=end
if defined MY.ContainerImage
    EVALMACRO AnnexTransferContainer = MY.TransferContainer ?: true
    if $(AnnexTransferContainer)
CONF
        echo "        EVALSET ContainerImage strcat(\"$dir/sif/\", MY.ContainerImage)"
        cat <<'CONF'
        SET TransferContainer false
    endif
endif
@end

CONF
        cat -- "$dir/pilot.conf"
    } >"$dir/condor_config.new" || die 32 "cannot write $dir/condor_config"
    mv -f -- "$dir/condor_config.new" "$dir/condor_config" || die 32 "cannot write $dir/condor_config"
}

# pilot_log LOCAL_DIR MESSAGE: a line in this node's PilotLog, beside HTCondor's logs.
pilot_log() {
    printf '%s %s\n' "$(date '+%m/%d/%y %H:%M:%S')" "$2" >>"$1/log/PilotLog" 2>/dev/null
}

# free_space_problem DIR MIN_MB BASE: prints why DIR (made in BASE) has too
# little free space, or cannot tell; fails when it has enough.
free_space_problem() {
    local free_kb
    free_kb=$(df -Pk -- "$1" 2>/dev/null | awk 'NR == 2 { print $4 }')
    if ! [[ $free_kb =~ ^[0-9]+$ ]]; then
        printf 'cannot tell the free space of %s' "$3"
    elif [ "$free_kb" -lt $(($2 * 1024)) ]; then
        printf '%s has %s MB free, less than the %s MB needed (node_local_min_free_mb)' "$3" $((free_kb / 1024)) "$2"
    else
        return 1
    fi
}

# choose_execute PILOT_DIR LOCAL_DIR NODE: sets EXECUTE_DIR and EXECUTE_ON
# (node-local or shared). On node-local disk the pilot makes its own
# directory, NODE_LOCAL_MADE, which its EXIT trap removes. A node-local
# directory that is missing, not writable or too full means shared scratch,
# said in the log.
choose_execute() {
    local dir=$1 local_dir=$2 node=$3 base='' found
    EXECUTE_DIR="$local_dir/execute"
    EXECUTE_ON=shared
    if [ "${SANDBOX_PILOT:-0}" = 1 ]; then
        # An HTCondor job's sandbox is on its execute node's own disk.
        EXECUTE_ON='node-local'
        pilot_log "$local_dir" "job sandboxes in this pilot's job sandbox, on the execute node's disk: $EXECUTE_DIR"
        return 0
    fi
    NODE_LOCAL_CONFIGURED=0
    NODE_LOCAL_MIN_FREE_MB=4096
    if [ -r "$dir/node-local.sh" ]; then
        # shellcheck source=/dev/null # rendered from the machine file at create time
        . "$dir/node-local.sh"
        base=$(node_local_base 2>/dev/null)
    fi
    if [ "$NODE_LOCAL_CONFIGURED" != 1 ]; then
        pilot_log "$local_dir" "job sandboxes on shared scratch, $EXECUTE_DIR: the machine file names no node-local directory"
        return 0
    fi
    if [ -z "$base" ]; then
        found="the machine file's node_local_dir is empty on this node"
    elif ! safe_path "$base"; then
        found="$base is not an absolute path HTCondor's configuration can carry"
    elif [ ! -d "$base" ]; then
        found="$base does not exist"
    elif ! NODE_LOCAL_MADE=$(mktemp -d "$base/hpc-annex.${dir##*/}.$node.XXXXXX" 2>/dev/null) || [ ! -w "$NODE_LOCAL_MADE" ]; then
        found="$base is not writable"
    elif ! found=$(free_space_problem "$NODE_LOCAL_MADE" "$NODE_LOCAL_MIN_FREE_MB" "$base"); then
        EXECUTE_DIR=$NODE_LOCAL_MADE
        EXECUTE_ON='node-local'
        pilot_log "$local_dir" "job sandboxes on node-local disk: $EXECUTE_DIR"
        return 0
    fi
    if [ -n "$NODE_LOCAL_MADE" ]; then
        rm -rf -- "$NODE_LOCAL_MADE"
        NODE_LOCAL_MADE=''
    fi
    pilot_log "$local_dir" "job sandboxes on shared scratch, $EXECUTE_DIR, not node-local disk: $found"
    printf 'hpc-annex pilot on %s: job sandboxes on shared scratch, not node-local disk: %s\n' "$node" "$found" >&2
}

run() {
    local dir=$1 node=${3:-} local_dir waiting deadline arriving touched master status
    # What the pilot makes on node-local storage (the lock directory, its
    # sandboxes' directory) goes however it ends: a TERM (scancel, the job's
    # end) before HTCondor runs ends it at once, one after is passed on.
    LOCK_DIR='' NODE_LOCAL_MADE=''
    trap 'rm -rf -- ${LOCK_DIR:+"$LOCK_DIR"} ${NODE_LOCAL_MADE:+"$NODE_LOCAL_MADE"}' EXIT
    trap 'exit 143' TERM INT HUP
    if [ -n "${2:-}" ]; then
        export CUDA_VISIBLE_DEVICES=$2
    fi
    safe_path "$dir" || die 31 "the pilot directory's path has characters HTCondor's configuration cannot carry: $dir"
    # The release may still be arriving or unpacking on the login node (the
    # job is submitted meanwhile), and the shared file system may show the
    # login node's files late: looked for every 0.2 s for 10 s, then every 2 s
    # (kinder to a parallel file system), for FS_WAIT seconds in all, or for
    # as long as the back-end, completing the directory, keeps touching
    # .arriving (compared with itself: the clocks may differ).
    waiting=$SECONDS
    deadline=$((waiting + FS_WAIT))
    arriving=''
    until [ -r "$dir/condor_config" ] && [ -x "$dir/condor/sbin/condor_master" ]; do
        if touched=$(stat -c %Y -- "$dir/.arriving" 2>/dev/null) && [ "$touched" != "$arriving" ]; then
            arriving=$touched
            deadline=$((SECONDS + FS_WAIT))
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            [ -r "$dir/condor_config" ] || die 33 "$dir/condor_config did not appear on this node within $FS_WAIT seconds"
            die 33 "HTCondor ($dir/condor) did not appear on this node within $FS_WAIT seconds"
        fi
        if [ $((SECONDS - waiting)) -lt 10 ]; then sleep 0.2; else sleep 2; fi
    done

    # Several nodes of a job may share a host name (and two requests a node):
    # the SLURM node name and the pilot directory tell them apart.
    node=${node:-${SLURMD_NODENAME:-$(hostname)}}
    node=${node//[!A-Za-z0-9._-]/_}
    local_dir="$dir/hosts/$node"
    mkdir -p -- "$local_dir/log" "$local_dir/spool" "$local_dir/execute" || die 34 "cannot make $local_dir"
    mkdir -p -- "$local_dir/tokens.d" "$local_dir/passwords.d" || die 34 "cannot make $local_dir"
    chmod 0700 -- "$local_dir/tokens.d" "$local_dir/passwords.d" || die 34 "cannot protect $local_dir"
    install -m 0600 -- "$dir/secrets/token" "$local_dir/tokens.d/annex" || die 32 'cannot install the token'
    install -m 0600 -- "$dir/secrets/password" "$local_dir/passwords.d/POOL" || die 32 'cannot install the password file'

    # The lock directory must be node-local: a shared one stops a second master.
    LOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hpc-annex-lock.XXXXXXXX" 2>/dev/null)
    if [ -z "$LOCK_DIR" ] || ! safe_path "$LOCK_DIR"; then
        [ -z "$LOCK_DIR" ] || rm -rf -- "$LOCK_DIR"
        LOCK_DIR=$(mktemp -d /tmp/hpc-annex-lock.XXXXXXXX) || die 35 'cannot make a lock directory in /tmp'
    fi

    choose_execute "$dir" "$local_dir" "$node"

    export CONDOR_CONFIG="$dir/condor_config"
    export _CONDOR_LOCAL_DIR="$local_dir"
    export _CONDOR_LOCK="$LOCK_DIR"
    export _CONDOR_EXECUTE="$EXECUTE_DIR"
    # Which one this node uses, in its startd's ad (see pilot.conf).
    export _CONDOR_hpc_annex_execute_on="\"$EXECUTE_ON\""
    export _CONDOR_hpc_annex_execute_dir="\"$EXECUTE_DIR\""
    export _CONDOR_MASTER_NAME="${dir##*/}.$node"
    export _CONDOR_STARTD_NAME="${dir##*/}.$node"
    export _CONDOR_ANNEX_SETUP_SECONDS=$(($(date +%s) - START))
    export PATH="$dir/condor/bin:$dir/condor/sbin:$PATH"
    # In the foreground: the batch system's task ends when HTCondor does. Not
    # exec'd: once the master has ended (shutdown, idle, lifetime, the job's
    # end, scancel's TERM passed on) the EXIT trap removes the node-local directories.
    "$dir/condor/sbin/condor_master" -f &
    master=$!
    trap 'kill -TERM "$master" 2>/dev/null' TERM INT HUP
    wait "$master"
    status=$?
    while kill -0 "$master" 2>/dev/null; do
        wait "$master"
        status=$?
    done
    trap - TERM INT HUP
    exit "$status"
}

sandbox() {
    local dir top
    dir=$(pwd -P)
    safe_path "$dir" || die 31 "the job's directory has characters HTCondor's configuration cannot carry: $dir"
    for file in condor.tar.gz pilot.conf token password; do
        [ -f "$dir/$file" ] || die 32 "no $file in the job's directory"
    done
    mkdir -p -- "$dir/unpack" || die 36 'cannot make the unpack directory'
    tar -xzf "$dir/condor.tar.gz" -C "$dir/unpack" || die 36 'cannot unpack condor.tar.gz'
    top=("$dir"/unpack/*/)
    if [ "${#top[@]}" -ne 1 ] || [ ! -x "${top[0]}sbin/condor_master" ]; then
        die 36 'condor.tar.gz does not hold one release directory with sbin/condor_master'
    fi
    mv -- "${top[0]%/}" "$dir/condor" || die 36 'cannot move the release into place'
    rm -rf -- "$dir/unpack" "$dir/condor.tar.gz"
    mkdir -m 0700 -- "$dir/secrets" || die 34 'cannot make the secrets directory'
    mv -- "$dir/token" "$dir/secrets/token" || die 32 'cannot move the token'
    mv -- "$dir/password" "$dir/secrets/password" || die 32 'cannot move the password file'
    mkdir -p -- "$dir/sif" || die 34 'cannot make the container image directory'
    prepare "$dir"
    SANDBOX_PILOT=1 run "$dir"
}

case ${1:-} in
    prepare)
        [ $# -eq 2 ] || die 30 'usage: pilot.sh prepare PILOT_DIR'
        prepare "$2"
        ;;
    run)
        if [ $# -lt 2 ] || [ $# -gt 4 ]; then
            die 30 'usage: pilot.sh run PILOT_DIR [CUDA_VISIBLE_DEVICES [NODE_NAME]]'
        fi
        run "$2" "${3:-}" "${4:-}"
        ;;
    sandbox)
        sandbox
        ;;
    *)
        die 30 'usage: pilot.sh prepare PILOT_DIR | run PILOT_DIR [CUDA_VISIBLE_DEVICES [NODE_NAME]] | sandbox'
        ;;
esac
