#!/bin/bash
# The hpc-annex pilot: makes one node an HTCondor execute node of an annex.
#   pilot.sh prepare PILOT_DIR
#       once, where the pilot directory is made: writes PILOT_DIR/condor_config
#       from PILOT_DIR/pilot.conf and the directory's own settings.
#   pilot.sh run PILOT_DIR [CUDA_VISIBLE_DEVICES [NODE_NAME]]
#       on each node: waits for the shared file system to show the pilot
#       directory, makes this node's LOCAL_DIR in it and a LOCK directory on
#       node-local storage, then becomes condor_master (in the foreground).
#   pilot.sh sandbox
#       in an HTCondor job (no shared file system): unpacks condor.tar.gz from
#       the job's directory, then prepares and runs there.
# Exit codes: 30 usage, 31 unsafe path, 32 missing file, 33 shared file system
# too slow, 34 cannot make the local directory, 35 cannot make the lock
# directory, 36 cannot unpack HTCondor.
set -o pipefail

START=$(date +%s)
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

run() {
    local dir=$1 node=${3:-} local_dir lock waited=0
    if [ -n "${2:-}" ]; then
        export CUDA_VISIBLE_DEVICES=$2
    fi
    safe_path "$dir" || die 31 "the pilot directory's path has characters HTCondor's configuration cannot carry: $dir"
    until [ -r "$dir/condor_config" ] && [ -x "$dir/condor/sbin/condor_master" ]; do
        if [ "$waited" -ge "$FS_WAIT" ]; then
            die 33 "$dir/condor_config did not appear on this node within $FS_WAIT seconds"
        fi
        sleep 2
        waited=$((waited + 2))
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
    lock=$(mktemp -d "${TMPDIR:-/tmp}/hpc-annex-lock.XXXXXXXX" 2>/dev/null)
    if [ -z "$lock" ] || ! safe_path "$lock"; then
        lock=$(mktemp -d /tmp/hpc-annex-lock.XXXXXXXX) || die 35 'cannot make a lock directory in /tmp'
    fi

    export CONDOR_CONFIG="$dir/condor_config"
    export _CONDOR_LOCAL_DIR="$local_dir"
    export _CONDOR_LOCK="$lock"
    export _CONDOR_MASTER_NAME="${dir##*/}.$node"
    export _CONDOR_STARTD_NAME="${dir##*/}.$node"
    export _CONDOR_ANNEX_SETUP_SECONDS=$(($(date +%s) - START))
    export PATH="$dir/condor/bin:$dir/condor/sbin:$PATH"
    # In the foreground: the batch system's task ends when HTCondor does.
    exec "$dir/condor/sbin/condor_master" -f
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
    run "$dir"
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
