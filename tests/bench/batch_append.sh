#!/usr/bin/env bash
# Where a 1,000-event append into the events table spends its time: a scratch database migrated
# as the command service migrates it, and pgbench appending 1,000 `ActivityLogged` per
# transaction (one client) with the command service's statement (hash chain computed over the
# set), to 1,000 streams and to one; the same rows without a hash, chained by the row trigger
# other writers go through; the statement triggers off one at a time (cumulatively), then no
# trigger and no chain; and the chain's own arithmetic (the text rendered and hashed, nothing
# stored) beside building the rows alone. Ends with the plan of one append, which times each
# trigger.
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
psql_ -d "$db" -c "CREATE SEQUENCE batch_sequence" -c "CREATE SEQUENCE stream_sequence"

body="jsonb_build_object('ActivityLogged', jsonb_build_object('activity_id', gen_random_uuid(),
           'kind', 'email', 'direction', 'outbound', 'occurred_at', '2026-11-01T10:00:00Z',
           'participants', '[]'::jsonb, 'subject', 'touch', 'logged_by', 'bench')) AS payload,
       '{\"actor_id\": \"bench\", \"actor_role\": \"csm\", \"source\": \"outlook\"}'::jsonb AS metadata"
# 1,000 streams, one event each (an import's shape) and one stream, 1,000 events (a batch request).
wide="SELECT 'c' || c AS aggregate_id, s.n AS sequence, $body
  FROM (SELECT nextval('batch_sequence') AS n) s, generate_series(1, 1000) c"
long="SELECT 'l' || s.n AS aggregate_id, c::bigint AS sequence, $body
  FROM (SELECT nextval('stream_sequence') AS n) s, generate_series(1, 1000) c"
# The command service's appending statement (command-service/src/repository.rs), its rows
# generated here instead of bound as arrays.
chained() {
    cat <<SQL
WITH appending AS ($1),
previous AS (
    SELECT f.aggregate_id, e.hash
      FROM (SELECT aggregate_id, min(sequence) AS first FROM appending GROUP BY aggregate_id) f
      JOIN events e ON e.aggregate_type = 'Customer' AND e.aggregate_id = f.aggregate_id AND e.sequence = f.first - 1)
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, hash)
SELECT 'Customer', r.aggregate_id, r.sequence, 'ActivityLogged', '1', r.payload, r.metadata,
       cstrack_chain(p.hash, cstrack_event_line('Customer', r.aggregate_id, r.sequence, 'ActivityLogged', '1',
                                                r.payload, r.metadata))
           OVER (PARTITION BY r.aggregate_id ORDER BY r.sequence)
  FROM appending r LEFT JOIN previous p USING (aggregate_id);
SQL
}
chained "$wide" > "$work/wide.sql"
chained "$long" > "$work/long.sql"
cat > "$work/unchained.sql" <<SQL
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', aggregate_id, sequence, 'ActivityLogged', '1', payload, metadata FROM ($wide) r;
SQL
cat > "$work/rows.sql" <<SQL
SELECT count(payload) FROM ($wide) r;
SQL
cat > "$work/hash.sql" <<SQL
SELECT count(sha256(convert_to(cstrack_event_line('Customer', aggregate_id, sequence, 'ActivityLogged', '1',
                                                  payload, metadata), 'UTF8')))
  FROM ($wide) r;
SQL

run() {
    local tps
    tps=$(pgbench -h 127.0.0.1 -U postgres -n -c 1 -T "$seconds" -f "$work/$1.sql" "$db" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    awk -v tps="$tps" -v label="$2" 'BEGIN { printf "| %s | %.0f |\n", label, tps * 1000 }'
}

# Warm up first (caches, statistics), unmeasured.
run wide "warm-up" >/dev/null
echo "| case | events/s |"
echo "|---|---|"
run wide "as the service appends: 1,000 streams, an event each"
run long "as the service appends: one stream, 1,000 events"
run unchained "rows without a hash, chained by the row trigger: 1,000 streams"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_idempotency_once"
run wide "as the service appends, no Idempotency-Key register"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_activity_index"
run wide "as the service appends, no activity index"
psql_ -d "$db" -c "ALTER TABLE events DISABLE TRIGGER events_heads_moved"
run wide "as the service appends, no stream heads: no trigger, the chain alone"
psql_ -d "$db" -c "ALTER TABLE events ALTER COLUMN hash SET DEFAULT ''::bytea"
run unchained "no trigger, no chain"
run rows "the rows built, nothing stored"
run hash "the rows built and hashed as the chain hashes them, nothing stored"
psql_ -d "$db" -c "ALTER TABLE events ENABLE TRIGGER ALL" -c "ALTER TABLE events ALTER COLUMN hash DROP DEFAULT"
psql_ -d "$db" -c "EXPLAIN (ANALYZE, COSTS OFF) $(cat "$work/wide.sql")"
