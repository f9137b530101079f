#!/bin/bash
# baseline.sh - the "sequential" way of creating an annex, as HTCondor's own
# `htcondor annex create` does it, for comparison with hpc-annex in
# bench/create.bench.js: a plain OpenSSH ControlMaster, then one ssh per step.
#
#   bench/baseline.sh [--ssh-config FILE] [--ap STATE_JOB_SUBMIT_FILE] HOST DIR
#
# DIR holds the same files hpc-annex's bundle carries (backend.sh,
# batch.slurm, pilot.conf, pilot.sh, launcher.sh, token, password,
# condor/<sha256>) and, optionally, sif/<sha256> entries that are symlinks to
# the container images (sent with tar -h, as HTCondor's tool does).
#
# Steps, each its own ssh invocation after the master is up:
#   ssh -f -N -M            open the master (the one login)
#   ssh HOST mkdir          make the remote temporary directory
#   tar | ssh HOST tar -x   populate it with everything but the images
#   tar -h | ssh HOST tar -x  the images, when there are any
#   ssh HOST backend.sh     run the back-end; it prints =-.-= JOB_ID N
#
# With --ap FILE, the Access Point side that HTCondor's tool does too runs
# through whatever condor tools are on PATH: condor_token_fetch before the
# login, condor_submit FILE (the state job) before staging, condor_qedit of
# the batch job id at the end.
#
# Prints "JOB_ID N", "SSH_EXECS N" (ssh invocations after the master) and
# "PILOT_DIR D" on stdout; exits non-zero when any step fails.
set -euo pipefail

SSH_CONFIG=''
AP_SUBMIT=''
while [ $# -gt 2 ]; do
    case "$1" in
        --ssh-config) SSH_CONFIG=$2; shift 2 ;;
        --ap) AP_SUBMIT=$2; shift 2 ;;
        *) echo "baseline.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ $# -eq 2 ] || { echo "usage: baseline.sh [--ssh-config FILE] [--ap SUBMIT_FILE] HOST DIR" >&2; exit 2; }
HOST=$1
DIR=$2
[ -f "$DIR/backend.sh" ] || { echo "baseline.sh: $DIR has no backend.sh" >&2; exit 2; }

control_dir=$(mktemp -d)
SSH=(ssh -o BatchMode=yes -o ControlPath="$control_dir/master" -o ControlMaster=no)
if [ -n "$SSH_CONFIG" ]; then SSH+=(-F "$SSH_CONFIG"); fi
execs=0
close_master() {
    "${SSH[@]}" -O exit "$HOST" >/dev/null 2>&1 || true
    rm -rf -- "$control_dir"
}
trap close_master EXIT

state_job=''
if [ -n "$AP_SUBMIT" ]; then
    token="baseline.$$"
    condor_token_fetch -lifetime 86400 -token "$token" -key "${AP_TOKEN_KEY:-POOL}" -authz READ -authz ADVERTISE_STARTD >/dev/null
fi

# The master: the only login.
"${SSH[@]}" -o ControlMaster=yes -o ControlPersist=no -f -N -M "$HOST"

if [ -n "$AP_SUBMIT" ]; then
    state_job=$(condor_submit -terse "$AP_SUBMIT" | head -n 1 | cut -d' ' -f1)
fi

# shellcheck disable=SC2016 # expands on the login node
remote=$("${SSH[@]}" "$HOST" 'mkdir -p "$HOME/.hpc-annex/tmp" && mktemp -d "$HOME/.hpc-annex/tmp/baseline.XXXXXXXX"')
execs=$((execs + 1))
[[ $remote =~ ^/[A-Za-z0-9._/-]+$ ]] || { echo "baseline.sh: odd remote directory: $remote" >&2; exit 1; }

# Populate: everything but the images.
tar -C "$DIR" --exclude=./sif -cf - . | "${SSH[@]}" "$HOST" "tar -xf - -C '$remote'"
execs=$((execs + 1))

# The images, dereferencing the symlinks.
if [ -d "$DIR/sif" ]; then
    tar -C "$DIR" -h -cf - sif | "${SSH[@]}" "$HOST" "tar -xf - -C '$remote'"
    execs=$((execs + 1))
fi

# The back-end; the remote directory goes whatever happens.
out=$("${SSH[@]}" "$HOST" "bash '$remote/backend.sh'; rc=\$?; rm -rf -- '$remote'; exit \$rc")
execs=$((execs + 1))
job_id=$(sed -n 's/^=-\.-= JOB_ID //p' <<< "$out" | tail -n 1)
pilot_dir=$(sed -n 's/^=-\.-= PILOT_DIR //p' <<< "$out" | tail -n 1)
[ -n "$job_id" ] || { echo "baseline.sh: the back-end reported no JOB_ID" >&2; exit 1; }

if [ -n "$state_job" ]; then
    condor_qedit "$state_job" hpc_annex_JOB_ID "\"$job_id\"" >/dev/null
fi

echo "JOB_ID $job_id"
echo "PILOT_DIR $pilot_dir"
echo "SSH_EXECS $execs"
