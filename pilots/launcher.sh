#!/bin/bash
# The hpc-annex multi-node launcher, for machines where srun does not start
# the pilots: one pilot per node of this SLURM job over SSH, then waits for
# all of them. Exit codes: 40 usage, 41 no node list; else the first failing
# pilot's status.
#   launcher.sh PILOT_DIR
set -o pipefail

[ $# -eq 1 ] || {
    echo 'usage: launcher.sh PILOT_DIR' >&2
    exit 40
}
dir=$1

if ! nodes=$(scontrol show hostname "${SLURM_JOB_NODELIST:-${SLURM_NODELIST:-}}"); then
    echo "hpc-annex launcher: cannot list the nodes of job ${SLURM_JOB_ID:-?}" >&2
    exit 41
fi

pids=()
while read -r host; do
    [ -n "$host" ] || continue
    # The remote login shell parses the command: quote every word for it.
    # The node's SLURM name keeps its pilot's files apart from other nodes'.
    command=$(printf '%q ' "$dir/pilot.sh" run "$dir" "${CUDA_VISIBLE_DEVICES:-}" "$host")
    ssh -n -o BatchMode=yes -- "$host" "$command" &
    pids+=("$!")
done <<<"$nodes"
if [ "${#pids[@]}" -eq 0 ]; then
    echo "hpc-annex launcher: job ${SLURM_JOB_ID:-?} has no nodes" >&2
    exit 41
fi

status=0
for pid in "${pids[@]}"; do
    wait "$pid"
    code=$?
    if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$code
    fi
done
echo "hpc-annex launcher: all ${#pids[@]} pilots finished."
exit "$status"
