-- Appending without per-row work in the database. A 1,000-event append spent most of its time in
-- row triggers: the hash chain looked up each event's predecessor (a query planned per row), and
-- the activity index and the Idempotency-Key register each ran their own statements per row.
--
-- The chain's definition is unchanged (see 20261121000005_hash_chain.sql): SHA-256 over the
-- previous hash followed by the event's stored fields, one per line. What moves is where it is
-- computed. The command service's appending statement computes it over the whole set, with the
-- running aggregate `cstrack_chain` ordered by sequence within each stream, seeded by the stored
-- hash before each stream's first appended event (one lookup per stream, not per event). The row
-- trigger now fires only for a row that arrives without a hash, so any other writer is still
-- chained exactly as before.
--
-- The activity index and the Idempotency-Key register read the statement's appended rows once,
-- as the stream heads already do.

-- The text an event's hash covers after the previous hash.
CREATE FUNCTION cstrack_event_line(aggregate_type text, aggregate_id text, sequence bigint, event_type text,
                                   event_version text, payload jsonb, metadata jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT concat_ws(E'\n', aggregate_type, aggregate_id, sequence::text, event_type, event_version,
                     payload::text, metadata::text)
$$;

CREATE OR REPLACE FUNCTION cstrack_event_hash(previous bytea, e events) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT sha256(COALESCE(previous, ''::bytea) || convert_to(cstrack_event_line(e.aggregate_type,
        e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload, e.metadata), 'UTF8'))
$$;

-- One link: the hash after `state`, the hash of the event before in this statement (NULL for a
-- stream's first event here, which chains to `previous`, the stored hash before it, or to
-- nothing for a new stream).
CREATE FUNCTION cstrack_chain_step(state bytea, previous bytea, line text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN sha256(COALESCE(state, previous, ''::bytea) || convert_to(line, 'UTF8'));
END
$$;

-- As a window aggregate ordered by sequence within a stream, each row's value is its event's
-- hash.
CREATE AGGREGATE cstrack_chain(previous bytea, line text) (SFUNC = cstrack_chain_step, STYPE = bytea);

DROP TRIGGER events_chained ON events;
CREATE TRIGGER events_chained BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION cstrack_chain_event();

-- The activity index, once per statement. A statement that logs and retracts the same activity
-- indexes it first and marks it retracted after, as the row trigger did in sequence order.
DROP TRIGGER events_activity_index ON events;
DROP FUNCTION cstrack_index_activity();
CREATE FUNCTION cstrack_index_activities() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_index (customer_id, activity_id)
    SELECT aggregate_id, payload -> 'ActivityLogged' ->> 'activity_id'
      FROM appended
     WHERE aggregate_type = 'Customer' AND event_type = 'ActivityLogged';
    UPDATE activity_index a SET retracted = true
      FROM appended e
     WHERE e.aggregate_type = 'Customer' AND e.event_type = 'ActivityRetracted'
       AND a.customer_id = e.aggregate_id
       AND a.activity_id = e.payload -> 'ActivityRetracted' ->> 'activity_id';
    RETURN NULL;
END
$$;
CREATE TRIGGER events_activity_index AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION cstrack_index_activities();

-- The Idempotency-Key register, once per statement, with the same rule: a key (per user) belongs
-- to the first transaction that appends events carrying it. Registering waits on a concurrent
-- transaction's uncommitted registration; a key another transaction holds refuses the append
-- with SQLSTATE CS409.
DROP TRIGGER events_idempotency_once ON events;
DROP FUNCTION cstrack_idempotency_once();
CREATE FUNCTION cstrack_idempotency_once() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    taken text;
BEGIN
    INSERT INTO idempotency_appends (user_id, key, tx_id)
    SELECT DISTINCT COALESCE(metadata ->> 'actor_id', ''), metadata ->> 'idempotency_key', pg_current_xact_id()
      FROM appended
     WHERE metadata ? 'idempotency_key'
    ON CONFLICT (user_id, key) DO NOTHING;
    SELECT i.key INTO taken
      FROM appended e
      JOIN idempotency_appends i
        ON i.user_id = COALESCE(e.metadata ->> 'actor_id', '') AND i.key = e.metadata ->> 'idempotency_key'
     WHERE e.metadata ? 'idempotency_key' AND i.tx_id <> pg_current_xact_id()
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Idempotency-Key % was already appended by another transaction', taken
            USING ERRCODE = 'CS409';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_idempotency_once AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION cstrack_idempotency_once();
