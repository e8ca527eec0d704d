-- The reads of the store every command makes: its load of its stream (the snapshot and the
-- events after it) and the hash of a stream's last event (the seed an append chains its new
-- events onto, and whether a stream exists at all).
--
-- A connection plans a prepared statement once for any parameters after a few runs and keeps
-- that plan until the table's statistics change. A plan made while the store held a few pages
-- reads a stream by scanning the whole table, and went on doing so as the store grew: on a new
-- store taking an import, each 1,000-event append read every stored event (100 to 400 ms a
-- statement at 250,000 events), and so did each load, until autovacuum next analyzed the table.
-- (The relay, which holds a connection of its own, plans each of its reads instead.)
--
-- Here the reads are functions the statements call. A SET clause keeps a SQL function from
-- being inlined into its caller's plan, so its body is planned when a statement calls it, for
-- the table as large as it is then: by the stream's key on any store of more than a few pages.
-- The clause's setting asks the same of PostgreSQL versions that cache function bodies' plans.
CREATE FUNCTION cstrack_stored_hash(stream_type text, stream_id text, at bigint) RETURNS bytea
LANGUAGE sql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
    SELECT hash FROM events WHERE aggregate_type = stream_type AND aggregate_id = stream_id AND sequence = at
$$;

-- The stream's snapshot (a row without an event type) and the events after it, in order.
CREATE FUNCTION cstrack_stream(stream_type text, stream_id text)
RETURNS TABLE (sequence bigint, event_type text, event_version text, snapshot_count bigint, payload text)
LANGUAGE sql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
    WITH snapshot AS (
        SELECT s.last_sequence, s.current_snapshot, s.payload FROM snapshots s
         WHERE s.aggregate_type = stream_type AND s.aggregate_id = stream_id)
    SELECT last_sequence, NULL::text, NULL::text, current_snapshot, payload::text
      FROM snapshot
    UNION ALL
    SELECT e.sequence, e.event_type, e.event_version, NULL, e.payload::text FROM events e
     WHERE e.aggregate_type = stream_type AND e.aggregate_id = stream_id
       AND e.sequence > coalesce((SELECT last_sequence FROM snapshot), 0)
    ORDER BY 1
$$;

