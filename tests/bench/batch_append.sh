#!/usr/bin/env bash
# Where a 1,000-event append into the events table spends its time: a scratch database migrated
# as the command service migrates it, 1,000 streams, and pgbench appending one `ActivityLogged`
# to each of them per transaction (one client), first with every trigger, then with the row
# triggers off one at a time (cumulatively), then with none; and the hash chain's own
# arithmetic (the text rendered and hashed, nothing stored) beside building the rows alone.
# Ends with the plan of one append, which times each trigger.
#   bash tests/bench/batch_append.sh [seconds per run, default 8]
set -euo pipefail
seconds=${1:-8}
db=cstrack_batch_append_bench
here=$(cd "$(dirname "$0")/../.." && pwd)
psql_() { psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; psql_ -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
psql_ -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for migration in "$here"/command-service/migrations/*.sql; do
    psql_ -d "$db" -f "$migration" >/dev/null
done
psql_ -d "$db" -c "CREATE SEQUENCE batch_sequence"

rows="SELECT 'c' || c AS id, s.n AS sequence,
       jsonb_build_object('ActivityLogged', jsonb_build_object('activity_id', md5(s.n || '-' || c)::uuid,
           'kind', 'email', 'direction', 'outbound', 'occurred_at', '2026-11-01T10:00:00Z',
           'participants', '[]'::jsonb, 'subject', 'touch', 'logged_by', 'bench')) AS payload,
       '{\"actor_id\": \"bench\", \"actor_role\": \"csm\", \"source\": \"outlook\"}'::jsonb AS metadata
  FROM (SELECT nextval('batch_sequence') AS n) s, generate_series(1, 1000) c"
cat > "$work/append.sql" <<SQL
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', id, sequence, 'ActivityLogged', '1', payload, metadata FROM ($rows) r;
SQL
cat > "$work/rows.sql" <<SQL
SELECT count(payload) FROM ($rows) r;
SQL
cat > "$work/hash.sql" <<SQL
SELECT count(sha256(convert_to(concat_ws(E'\n', 'Customer', id, sequence::text, 'ActivityLogged', '1',
                                         payload::text, metadata::text), 'UTF8')))
  FROM ($rows) r;
SQL

run() {
    local tps
    tps=$(pgbench -h 127.0.0.1 -U postgres -n -c 1 -T "$seconds" -f "$work/$1.sql" "$db" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    awk -v tps="$tps" -v label="$2" 'BEGIN { printf "| %s | %.0f |\n", label, tps * 1000 }'
}

# Warm up first (caches, statistics), unmeasured.
run append "warm-up" >/dev/null
echo "| case | events/s |"
echo "|---|---|"
run append "every trigger"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_chained" \
    -c "ALTER TABLE events ALTER COLUMN hash SET DEFAULT ''::bytea"
run append "no hash chain"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_idempotency_once"
run append "no hash chain, no Idempotency-Key register"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_activity_index"
run append "no row trigger (stream heads only)"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_heads_moved"
run append "no trigger"
run rows "the rows built, nothing stored"
run hash "the rows built and hashed as the chain hashes them, nothing stored"
psql_ -d "$db" -c "ALTER TABLE events ENABLE TRIGGER ALL" -c "ALTER TABLE events ALTER COLUMN hash DROP DEFAULT"
psql_ -d "$db" -c "EXPLAIN (ANALYZE, COSTS OFF) $(cat "$work/append.sql")"
