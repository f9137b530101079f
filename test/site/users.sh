#!/bin/bash
# users.sh - the runs (test runs, benchmarks) using the loopback site, so that
# the last one to finish takes it down and none restarts it under another.
#   users.sh add PID LABEL   registers PID, with its start time: a later
#                            process given the same pid is not taken for it
#   users.sh remove PID
#   users.sh live            the registered pids still running, one per line
set -euo pipefail
# shellcheck source=test/site/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    add)
        [ $# -eq 3 ] || die 'usage: users.sh add PID LABEL'
        start=$(site_proc_start "$2") || die "no process $2"
        mkdir -p -- "$SITE_DIR/users"
        # Written whole, then renamed: a reader never sees it half-written.
        printf '%s\n%s\n' "$start" "$3" > "$SITE_DIR/users/.$2.new"
        mv -f -- "$SITE_DIR/users/.$2.new" "$SITE_DIR/users/$2"
        ;;
    remove)
        [ $# -eq 2 ] || die 'usage: users.sh remove PID'
        rm -f -- "$SITE_DIR/users/$2"
        ;;
    live)
        site_live_users
        ;;
    *) die 'usage: users.sh add PID LABEL | remove PID | live' ;;
esac
