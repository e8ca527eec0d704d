#!/usr/bin/env bash
# The projector checkpoint statements of one delivery, in their per-stream form (before
# fed1fc9) and their array form (after), run by pgbench side by side on a scratch database:
# 10,000 checkpoints with the change-marking trigger, 4 clients, prepared, alternating runs.
#   bash tests/bench/checkpoint_statements.sh [seconds per run, default 8]
set -euo pipefail
seconds=${1:-8}
db=cstrack_checkpoint_bench
psql_() { psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; psql_ -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
psql_ -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_ -d "$db" <<'SQL'
CREATE TABLE projector_checkpoints (
    projector text, stream_type text, stream_id text, last_sequence bigint NOT NULL,
    changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (projector, stream_type, stream_id));
CREATE FUNCTION mark_checkpoint_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.changed_xid := pg_current_xact_id(); RETURN NEW; END $$;
CREATE TRIGGER projector_checkpoints_changed BEFORE INSERT OR UPDATE ON projector_checkpoints
    FOR EACH ROW EXECUTE FUNCTION mark_checkpoint_change();
CREATE INDEX ON projector_checkpoints (projector, changed_xid);
INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
SELECT 'customers', 'Customer', 's' || g, 0 FROM generate_series(1, 10000) g;
ANALYZE projector_checkpoints;
SQL
cat > "$work/per-stream.sql" <<'SQL'
\set s random(1, 10000)
BEGIN;
INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence) VALUES ('customers', 'Customer', 's' || :s, 0) ON CONFLICT (projector, stream_type, stream_id) DO UPDATE SET last_sequence = projector_checkpoints.last_sequence RETURNING last_sequence;
UPDATE projector_checkpoints SET last_sequence = last_sequence + 1 WHERE projector = 'customers' AND stream_type = 'Customer' AND stream_id = 's' || :s;
SELECT pg_notify('bench', 'payload');
COMMIT;
SQL
cat > "$work/array.sql" <<'SQL'
\set s random(1, 10000)
BEGIN;
INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence) SELECT 'customers', t, i, 0 FROM UNNEST(ARRAY['Customer'], ARRAY['s' || :s]) AS s(t, i) ON CONFLICT (projector, stream_type, stream_id) DO UPDATE SET last_sequence = projector_checkpoints.last_sequence RETURNING stream_type, stream_id, last_sequence;
INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence) SELECT 'customers', t, i, q FROM UNNEST(ARRAY['Customer'], ARRAY['s' || :s], ARRAY[5::bigint]) AS m(t, i, q) ON CONFLICT (projector, stream_type, stream_id) DO UPDATE SET last_sequence = EXCLUDED.last_sequence;
SELECT pg_notify('bench', payload) FROM UNNEST(ARRAY['payload']) WITH ORDINALITY AS c(payload, n) ORDER BY n;
COMMIT;
SQL
for form in per-stream array per-stream array; do
    tps=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 4 -T "$seconds" -f "$work/$form.sql" "$db" 2>&1 |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    printf '%-10s %s transactions/s\n' "$form" "$tps"
done
