-- A customer's timeline is its stream read by when each event happened in the world. Instead of
-- copying every shown event into a read-model table (a second, wider row per event, written by
-- the projector live and by every rebuild), the store keeps that instant beside each customer
-- event and one index orders a customer's stream by it; the query API reads a page of it and
-- renders each entry as it reads (events::timeline).
--
-- The instant is the body's `occurred_at` (`measured_at` for a health score), as stored: an
-- upcaster must not move it. The text is always an RFC 3339 instant with its offset (as the
-- event types serialize it), so reading it does not depend on the session's time zone and the
-- function may be declared immutable, which a generated column requires.
CREATE FUNCTION cstrack_occurred_at(event_type text, payload jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (payload -> event_type ->> CASE event_type WHEN 'HealthScoreRecorded' THEN 'measured_at'
                                                       ELSE 'occurred_at' END)::timestamptz
$$;

ALTER TABLE events ADD COLUMN occurred_at timestamptz
    GENERATED ALWAYS AS (CASE WHEN aggregate_type = 'Customer' THEN cstrack_occurred_at(event_type, payload) END) STORED;

CREATE INDEX events_customer_chronology ON events (aggregate_id, occurred_at DESC, sequence DESC)
    WHERE aggregate_type = 'Customer';
