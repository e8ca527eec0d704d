#!/usr/bin/env bash
# Backs up the event store: what the read models are rebuilt from and nothing can rebuild. That
# is every table the command service writes (events, snapshots, stream heads, sealed digests,
# idempotency records, the activity index, the relay's cursor, the audit access log) and the
# alert checker's history (alerts and their conditions, which acknowledgments refer to). The
# read models are left out: deploy/restore.sh rebuilds them from the restored store.
#
# usage: deploy/backup.sh FILE
#   CSTRACK_DATABASE_URL  the database to back up (default: the local cstrack database)
#
# pg_dump reads one consistent snapshot, so the backup may be taken while the system runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

file=${1:?usage: deploy/backup.sh FILE}
url=${CSTRACK_DATABASE_URL:-postgres://postgres@$PG_HOST:$PG_PORT/cstrack}
command -v pg_dump >/dev/null 2>&1 || die "pg_dump is not installed (Debian: apt-get install postgresql-client)"

args=()
for table in "${STORE_TABLES[@]}"; do
    args+=(--table="public.$table")
done
pg_dump --format=custom --data-only --no-owner "${args[@]}" --file="$file" "$url"
say "backed up the store of $url to $file ($(du -h "$file" | cut -f1))"
