#!/bin/bash
# hpc-annex's cache on the login node (~/.hpc-annex/cache, or $HPC_ANNEX_CACHE):
# lists its objects, prunes it, and keeps it within a machine's
# cache_max_bytes. Everything it is given is an argument, never part of the
# script:
#   bash -c "$(cat cache.sh)" hpc-annex-cache list
#   bash -c "$(cat cache.sh)" hpc-annex-cache prune DRY_RUN OLDER_THAN_SECONDS KEEP_BYTES
#   bash -c "$(cat cache.sh)" hpc-annex-cache enforce MARK WARNING SYSTEM MAX_BYTES RECENT_SECONDS [SHA256 BYTES]...
# (OLDER_THAN_SECONDS and KEEP_BYTES are '' when not given.)
#
# The cache holds objects by sha256 (HTCondor tarballs, container images),
# releases unpacked (SHA256.release), url-SHA256 files (which digest an
# unpinned URL gave), temporaries (.partial.* and the like), and .uses/ENTRY:
# the back-end's notes, one line "TIME ANNEX PILOT_DIR KIND LABEL" each time a
# request's pilot directory took ENTRY. The file's time is ENTRY's last use;
# without notes, the entry's own: when a file arrived, when a release was
# renamed into place. An entry is in use while a pilot directory of its notes
# exists, or while another hard link to it (to a release's condor_master)
# exists: it is never removed then.
#
# list and prune print tab-separated records, read by hpc-annex:
#   cache DIR EXISTS NOW
#   entry NAME KIND BYTES LAST_USE DECISION REASON ANNEXES LIVE LINKS LABEL
#     (DECISION: '' when listing, else removed, would-remove, kept or failed;
#     REASON why kept; ANNEXES comma-separated, newest first; LIVE the
#     pilot directories that still exist, as ANNEX:DIR separated by spaces)
#   quota LINE       (what `quota -s` prints, where it exists)
#   df FILESYSTEM BYTES USED AVAILABLE MOUNTED_ON
# enforce removes, least recently used first, what no pilot uses, nothing
# SHA256s given (those of the request about to run) and nothing used in the
# last RECENT_SECONDS, until the cache and the given objects it lacks fit in
# MAX_BYTES; it prints a line for the user when it removed something, and a
# warning control line (MARK WARNING text) when the cache still does not fit.
set -o pipefail
umask 077
mode=$1
shift
cache=${HPC_ANNEX_CACHE:-$HOME/.hpc-annex/cache}
uses="$cache/.uses"
now=$(date +%s)
shopt -s nullglob

names=() kinds=() sizes=() last=() annexes=() live=() links=() labels=()
declare -A protected=()

size_of() {
    if [ -d "$1" ] && [ ! -L "$1" ]; then
        du -sb -- "$1" 2>/dev/null | cut -f1
    else
        stat -c %s -- "$1" 2>/dev/null
    fi
}

# The notes of ENTRY: sets U_TIME (the last use, '' without notes), U_ANNEXES,
# U_LIVE, U_KIND and U_LABEL (of the newest note).
read_uses() {
    local log="$uses/$1" t a d k l
    U_TIME='' U_ANNEXES='' U_LIVE='' U_KIND='' U_LABEL=''
    [ -f "$log" ] || return 0
    U_TIME=$(stat -c %Y -- "$log" 2>/dev/null)
    while read -r t a d k l; do
        [[ $t =~ ^[0-9]+$ ]] || continue
        a=${a//[!A-Za-z0-9._-]/_}
        if [ -z "$U_KIND" ]; then U_KIND=${k//[!a-z]/} U_LABEL=${l//[[:cntrl:]]/}; fi
        case ",$U_ANNEXES," in
            *",$a,"*) ;;
            *) U_ANNEXES=$U_ANNEXES${U_ANNEXES:+,}$a ;;
        esac
        if [[ $d == /* && $d != *[[:space:]]* ]] && [ -d "$d" ]; then
            case " $U_LIVE " in
                *" $a:$d "*) ;;
                *) U_LIVE=$U_LIVE${U_LIVE:+ }$a:$d ;;
            esac
        fi
    done < <(tac -- "$log" 2>/dev/null)
}

# add NAME KIND PATH: one entry, with its size, last use and users.
add() {
    local name=$1 kind=$2 path=$3 time links_now=1
    read_uses "$name"
    time=$U_TIME
    # Without notes: when a file arrived; when a release was renamed into place.
    if [ -z "$time" ] && [ "$kind" = release ]; then
        time=$(stat -c %Z -- "$path" 2>/dev/null)
    elif [ -z "$time" ]; then
        time=$(stat -c %Y -- "$path" 2>/dev/null)
    fi
    case $kind in
        object)
            case $U_KIND in tarball | image) kind=$U_KIND ;; esac
            links_now=$(stat -c %h -- "$path" 2>/dev/null)
            ;;
        release)
            [ -f "$path/sbin/condor_master" ] && links_now=$(stat -c %h -- "$path/sbin/condor_master" 2>/dev/null)
            ;;
    esac
    names+=("$name") kinds+=("$kind") sizes+=("$(size_of "$path")") last+=("${time:-0}")
    annexes+=("$U_ANNEXES") live+=("$U_LIVE") links+=("${links_now:-1}") labels+=("$U_LABEL")
}

collect() {
    local path name
    [ -d "$cache" ] || return 0
    for path in "$cache"/*; do
        name=${path##*/}
        if [[ $name =~ ^[0-9a-f]{64}$ ]] && [ -f "$path" ] && [ ! -L "$path" ]; then
            add "$name" object "$path"
        elif [[ $name =~ ^[0-9a-f]{64}\.release$ ]] && [ -d "$path" ] && [ ! -L "$path" ]; then
            add "$name" release "$path"
        elif [[ $name =~ ^url-[0-9a-f]{64}$ ]]; then
            continue
        else
            add "$name" other "$path"
        fi
    done
    for path in "$cache"/.partial.* "$cache"/.download.* "$cache"/.download-tree.* "$cache"/.unpack.* "$cache"/.sums.* "$cache"/.remove.*; do
        add "${path##*/}" temporary "$path"
    done
}

# Indexes of the entries, least recently used first.
lru_order() {
    local i
    for i in "${!names[@]}"; do printf '%s %s\n' "${last[$i]}" "$i"; done | sort -n -k1,1 -k2,2 | cut -d' ' -f2
}

in_use() {
    [ -n "${live[$1]}" ] || [ "${links[$1]}" -gt 1 ] 2>/dev/null
}

# Removes entry I: a release is renamed away first, so that a back-end sees it whole or not at all.
remove() {
    local name=${names[$1]} path gone
    path="$cache/$name"
    if [ "${kinds[$1]}" = release ]; then
        gone="$cache/.remove.$name.$$"
        mv -T -- "$path" "$gone" 2>/dev/null || return 1
        rm -rf -- "$gone" 2>/dev/null
    else
        rm -rf -- "$path" 2>/dev/null || return 1
    fi
    [ ! -e "$path" ] || return 1
    rm -f -- "$uses/$name"
}

# After removing: notes of entries that are gone, url- files whose object is
# gone, and the back-end's leftovers of trimming notes.
tidy() {
    local path name target
    for path in "$uses"/*; do
        name=${path##*/}
        [ -e "$cache/$name" ] || rm -f -- "$path"
    done
    find "$uses" -maxdepth 1 -name '.trim.*' -mmin +1440 -exec rm -f -- {} + 2>/dev/null
    for path in "$cache"/url-*; do
        target=$(head -c 64 -- "$path" 2>/dev/null)
        [ -f "$cache/$target" ] || rm -f -- "$path"
    done
    return 0
}

record() {
    local i=$1
    printf 'entry\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${names[$i]}" "${kinds[$i]}" "${sizes[$i]:-0}" "${last[$i]}" "$2" "$3" \
        "${annexes[$i]}" "${live[$i]}" "${links[$i]}" "${labels[$i]}"
}

report_space() {
    local dir=$cache line fs bytes used avail cap mount
    [ -d "$dir" ] || dir=$HOME
    local limit=()
    command -v timeout >/dev/null 2>&1 && limit=(timeout 10)
    if command -v quota >/dev/null 2>&1; then
        "${limit[@]}" quota -s 2>/dev/null | while IFS= read -r line; do
            printf 'quota\t%s\n' "${line//[[:cntrl:]]/ }"
        done
    fi
    line=$("${limit[@]}" df -P -B1 -- "$dir" 2>/dev/null | tail -n 1)
    read -r fs bytes used avail cap mount <<<"$line"
    if [[ $bytes =~ ^[0-9]+$ && $used =~ ^[0-9]+$ && $avail =~ ^[0-9]+$ ]]; then
        printf 'df\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$bytes" "$used" "$avail" "$mount"
    fi
    : "$cap"
}

total_bytes() {
    local i sum=0
    for i in "${!sizes[@]}"; do sum=$((sum + ${sizes[$i]:-0})); done
    printf '%s' "$sum"
}

human() {
    local bytes=$1 shift=30 unit=GiB
    if [ "$bytes" -lt 1024 ]; then
        printf '%d B' "$bytes"
        return
    fi
    if [ "$bytes" -lt $((1 << 20)) ]; then
        shift=10 unit=KiB
    elif [ "$bytes" -lt $((1 << 30)) ]; then
        shift=20 unit=MiB
    fi
    printf '%d.%d %s' $((bytes >> shift)) $(((bytes % (1 << shift)) * 10 >> shift)) "$unit"
}

case $mode in
    list)
        collect
        printf 'cache\t%s\t%s\t%s\n' "$cache" "$([ -d "$cache" ] && echo 1 || echo 0)" "$now"
        for i in $(lru_order); do record "$i" '' ''; done
        report_space
        ;;
    prune)
        dry=$1 older=$2 keep=$3
        collect
        printf 'cache\t%s\t%s\t%s\n' "$cache" "$([ -d "$cache" ] && echo 1 || echo 0)" "$now"
        total=$(total_bytes)
        for i in $(lru_order); do
            kind=${kinds[$i]}
            if [ "$kind" = other ]; then
                record "$i" kept other
            elif [ "$kind" = temporary ]; then
                # A create may be writing it; the back-end removes those left for a day.
                if [ $((now - last[i])) -lt 86400 ] && [[ ${names[$i]} != .remove.* ]]; then
                    record "$i" kept temporary
                elif [ "$dry" = 1 ]; then
                    record "$i" would-remove ''
                elif remove "$i"; then
                    record "$i" removed ''
                else
                    record "$i" failed ''
                fi
            elif in_use "$i"; then
                record "$i" kept "$([ -n "${live[$i]}" ] && echo in-use || echo linked)"
            elif [ -n "$older" ] && [ $((now - last[i])) -lt "$older" ]; then
                record "$i" kept recent
            elif [ -n "$keep" ] && [ "$total" -le "$keep" ]; then
                record "$i" kept within-limit
            elif [ "$dry" = 1 ]; then
                total=$((total - ${sizes[$i]:-0}))
                record "$i" would-remove ''
            elif remove "$i"; then
                total=$((total - ${sizes[$i]:-0}))
                record "$i" removed ''
            else
                record "$i" failed ''
            fi
        done
        [ "$dry" = 1 ] || [ ! -d "$cache" ] || tidy
        report_space
        ;;
    enforce)
        mark=$1 warning=$2 system=$3 max=$4 recent=$5
        shift 5
        [[ $max =~ ^[0-9]+$ && $recent =~ ^[0-9]+$ ]] || exit 0
        incoming=0
        while [ $# -ge 2 ]; do
            if [[ $1 =~ ^[0-9a-f]{64}$ && $2 =~ ^[0-9]+$ ]]; then
                protected[$1]=1 protected[$1.release]=1
                [ -f "$cache/$1" ] || incoming=$((incoming + $2))
            fi
            shift 2
        done
        collect
        total=$(total_bytes)
        [ $((total + incoming)) -gt "$max" ] || exit 0
        removed=0 freed=0
        for i in $(lru_order); do
            [ $((total + incoming)) -gt "$max" ] || break
            case ${kinds[$i]} in other | temporary) continue ;; esac
            [ -z "${protected[${names[$i]}]}" ] || continue
            in_use "$i" && continue
            [ $((now - last[i])) -ge "$recent" ] || continue
            remove "$i" || continue
            total=$((total - ${sizes[$i]:-0}))
            removed=$((removed + 1)) freed=$((freed + ${sizes[$i]:-0}))
        done
        [ "$removed" = 0 ] || tidy
        if [ "$removed" -gt 0 ]; then
            echo "Removed $removed object(s) ($(human "$freed")) from the login node's cache, least recently used first, to keep it within cache_max_bytes ($(human "$max"))."
        fi
        if [ $((total + incoming)) -gt "$max" ]; then
            printf '%s %s %s\n' "$mark" "$warning" "the login node's cache ($cache) holds $(human "$total")$([ "$incoming" -gt 0 ] && printf ' and this request adds %s' "$(human "$incoming")"), more than cache_max_bytes ($(human "$max")): the rest is used by running pilots or was used in the last $((recent / 60)) minutes (hpc-annex cache $system lists it)"
        fi
        ;;
    *)
        echo "hpc-annex-cache: unknown mode '$mode'" >&2
        exit 2
        ;;
esac
exit 0
