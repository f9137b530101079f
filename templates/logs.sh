#!/bin/bash
# hpc-annex logs, on the login node: prints (and with FOLLOW=1 keeps printing)
# the batch job's output and error files and each node's HTCondor logs of the
# pilot directories it is given, with a header whenever the file changes
# ("==> node2: StartLog <=="). Everything it is given is an argument, never
# part of the script:
#   bash -c "$(cat logs.sh)" hpc-annex-logs LINES FOLLOW NODE [PREFIX DIR]...
# LINES 0 prints whole files; NODE '' means every node. Each line travels as
# "label<TAB>text" to one awk that prints the headers, so concurrent tails
# never put a line under the wrong header. While it follows, EOF on stdin
# (the connection went away) ends everything. Exits 3 when none of the
# directories (nor their kept logs) is there.
lines=$1 follow=$2 node=$3
shift 3
labels=() paths=() prefixes=() dirs=() state=()
declare -A seen
add() {
    [ -n "${seen[$2]}" ] && return
    seen[$2]=1
    labels+=("${1//[[:cntrl:]]/_}")
    paths+=("$2")
}
discover() {
    local prefix=$1 base=$2 kept=$3 f d n
    for f in "$base"/slurm-*.out "$base"/slurm-*.err "$base"/pilot.*.out "$base"/pilot.*.err "$base"/pilot.*.log; do
        [ -f "$f" ] && add "$prefix${f##*/}" "$f"
    done
    if [ "$kept" = 1 ]; then set -- "$base"/*/; else set -- "$base"/hosts/*/log/; fi
    for d; do
        d=${d%/}
        [ -d "$d" ] || continue
        if [ "$kept" = 1 ]; then n=${d##*/}; else n=${d%/log}; n=${n##*/}; fi
        [ -z "$node" ] || [ "$n" = "$node" ] || continue
        for f in "$d"/PilotLog "$d"/MasterLog "$d"/StartLog "$d"/StarterLog*; do
            [ -f "$f" ] && add "$prefix$n: ${f##*/}" "$f"
        done
    done
}
# mawk reads a pipe in blocks unless told to read it line by line.
awk=(awk)
if awk -W version 2>&1 | grep -q mawk; then awk=(awk -W interactive); fi
note() { printf '\t%s%s\n' "$1" "$2"; }
# shellcheck disable=SC2016 # awk's $0, not the shell's
label() { L=$1 "${awk[@]}" '{ print ENVIRON["L"] "\t" $0; fflush() }'; }
sizes=()
dump() {
    local i=$1 size
    size=$(stat -c %s -- "${paths[$i]}" 2>/dev/null) || size=0
    sizes[i]=$size
    # An empty file still shows its header (a line with no tab).
    if [ "$size" = 0 ]; then printf '%s\n' "${labels[$i]}"; return; fi
    if [ "$lines" = 0 ]; then head -c "$size" -- "${paths[$i]}"; else head -c "$size" -- "${paths[$i]}" | tail -n "$lines"; fi | label "${labels[$i]}"
}
produce() {
    local me=$BASHPID i j live shown=0 any=0
    while [ $# -ge 2 ]; do
        prefixes+=("$1") dirs+=("$2")
        if [ -d "$2" ]; then
            state+=(live) any=1
            discover "$1" "$2" 0
            [ ${#paths[@]} -gt "$shown" ] || note "$1" "no logs yet in $2 (the batch job has not started)"
        elif [ -d "$2.logs" ]; then
            state+=(kept) any=1
            note "$1" "the batch job has ended; its logs were kept in $2.logs"
            discover "$1" "$2.logs" 1
        else
            state+=(gone)
            note "$1" "the pilot directory $2 is gone, and no logs were kept beside it"
        fi
        for ((i = shown; i < ${#paths[@]}; i++)); do dump "$i"; done
        shown=${#paths[@]}
        shift 2
    done
    [ "$any" = 1 ] || return 3
    [ "$follow" = 1 ] || return 0
    for ((i = 0; i < shown; i++)); do
        tail --pid="$me" -c +$((sizes[i] + 1)) -F -- "${paths[$i]}" 2>/dev/null | label "${labels[$i]}" &
    done
    while sleep 2; do
        live=0
        for j in "${!dirs[@]}"; do
            [ "${state[$j]}" = live ] || continue
            if [ ! -d "${dirs[$j]}" ]; then
                state[j]=ended
                note "${prefixes[$j]}" "the batch job has ended: its pilot directory is gone"
                continue
            fi
            live=1
            discover "${prefixes[$j]}" "${dirs[$j]}" 0
        done
        for ((i = shown; i < ${#paths[@]}; i++)); do
            tail --pid="$me" -n +1 -F -- "${paths[$i]}" 2>/dev/null | label "${labels[$i]}" &
        done
        shown=${#paths[@]}
        [ "$live" = 1 ] || break
    done
    return 0
}
watchdog=''
if [ "$follow" = 1 ]; then
    exec 3<&0
    (cat <&3 >/dev/null 2>&1; kill 0) 2>/dev/null &
    watchdog=$!
    exec 3<&-
fi
# shellcheck disable=SC2016 # awk's $0, not the shell's
produce "$@" | "${awk[@]}" '
    index($0, "\t") == 0 { if ($0 != last) { if (body) print ""; print "==> " $0 " <=="; last = $0; body = 1 } fflush(); next }
    { tab = index($0, "\t"); l = substr($0, 1, tab - 1); t = substr($0, tab + 1) }
    l == "" { print t; last = ""; body = 0; fflush(); next }
    l != last { if (body) print ""; print "==> " l " <=="; last = l }
    { print t; body = 1; fflush() }'
status=${PIPESTATUS[0]}
[ -z "$watchdog" ] || kill "$watchdog" 2>/dev/null
exit "$status"
