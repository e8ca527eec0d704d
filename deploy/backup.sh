#!/usr/bin/env bash
# Backs up what nothing can rebuild. That is every table the command service writes for the
# store (events, snapshots, stream heads, sealed digests, idempotency records, the activity index,
# the relay's cursor, the audit access log), the alert checker's history (alerts and their
# conditions, which acknowledgments refer to), and the state that is not an event: imports and
# their files, deck templates, notification preferences, webhooks and their secrets, deliveries
# and the in-app inbox, the connectors' cursors, runs, pushed values, rotated tokens and
# work-item links, and scheduled touches (deploy/lib.sh lists them). The read models are left
# out: deploy/restore.sh rebuilds them from the restored store.
#
# usage: deploy/backup.sh FILE
#        deploy/backup.sh --dir DIR [--keep N]
#   --dir DIR   write DIR/cstrack-<UTC time>.dump, then keep only the N newest such files
#               (default 14: two weeks of daily backups; the schedules in deploy/k8s and
#               deploy/docker run it daily)
#   CSTRACK_DATABASE_URL  the database to back up (default: the local cstrack database)
#
# pg_dump reads one consistent snapshot, so the backup may be taken while the system runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage="usage: deploy/backup.sh FILE | deploy/backup.sh --dir DIR [--keep N]"
dir="" keep=14 file=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=${2:?$usage}; shift 2 ;;
        --keep) keep=${2:?$usage}; shift 2 ;;
        -*) die "$usage" ;;
        *) file=$1; shift ;;
    esac
done
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die "--keep takes a whole number of backups, 1 or more"
if [ -n "$dir" ]; then
    [ -z "$file" ] || die "$usage"
    mkdir -p "$dir"
    file="$dir/cstrack-$(date -u +%Y%m%dT%H%M%SZ).dump"
fi
[ -n "$file" ] || die "$usage"
url=${CSTRACK_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/cstrack}
command -v pg_dump >/dev/null 2>&1 || die "pg_dump is not installed (Debian: apt-get install postgresql-client)"

args=()
for table in "${STORE_TABLES[@]}" "${SETTINGS_TABLES[@]}"; do
    args+=(--table="public.$table")
done
# Written beside, then renamed: a file with the final name is always a whole backup.
pg_dump --format=custom --data-only --no-owner "${args[@]}" --file="$file.partial" "$url"
mv "$file.partial" "$file"
say "backed up $url to $file ($(du -h "$file" | cut -f1))"

if [ -n "$dir" ]; then
    # The names sort by time: everything before the newest N goes.
    mapfile -t old < <(find "$dir" -maxdepth 1 -name 'cstrack-*.dump' -printf '%f\n' | sort -r | tail -n +"$((keep + 1))")
    for name in "${old[@]}"; do
        rm -f "$dir/$name"
        say "removed $dir/$name (keeping the $keep newest)"
    done
fi
