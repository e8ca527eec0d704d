-- Tamper evidence. Each event carries the SHA-256 of the previous event's hash (empty for the
-- first event of a stream) followed by its own stored text, one field per line:
--   aggregate_type, aggregate_id, sequence, event_type, event_version, payload::text, metadata::text
-- so editing a stored payload or metadata, or deleting a row, breaks the chain at that sequence.
-- The hash is computed by a trigger, in the transaction that appends the event. stream_heads
-- remembers each stream's last sequence and hash (moved by a statement trigger), so deleting a
-- stream's last rows is caught too.
ALTER TABLE events ADD COLUMN hash bytea;

CREATE TABLE stream_heads (
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    hash           bytea  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE FUNCTION cstrack_event_hash(previous bytea, e events) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(COALESCE(previous, ''::bytea) || convert_to(concat_ws(E'\n',
        e.aggregate_type, e.aggregate_id, e.sequence::text, e.event_type, e.event_version,
        e.payload::text, e.metadata::text), 'UTF8'))
$$;

-- The previous event is found by primary key. The plan is cached per session; on a store that
-- was tiny when it was planned a scan would look cheaper, and a large batch would then scan the
-- growing table once per row, so scans are off inside this function.
CREATE FUNCTION cstrack_chain_event() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    previous bytea;
BEGIN
    SELECT hash INTO previous FROM events
     WHERE aggregate_type = NEW.aggregate_type AND aggregate_id = NEW.aggregate_id
       AND sequence = NEW.sequence - 1;
    NEW.hash := cstrack_event_hash(previous, NEW);
    RETURN NEW;
END
$$;

-- Heads move once per statement (a row per stream appended to), not once per row: a batch of
-- many events to one stream updates its head once.
CREATE FUNCTION cstrack_move_heads() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_heads (aggregate_type, aggregate_id, sequence, hash)
    SELECT DISTINCT ON (aggregate_type, aggregate_id) aggregate_type, aggregate_id, sequence, hash
      FROM appended ORDER BY aggregate_type, aggregate_id, sequence DESC
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
       SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash
     WHERE stream_heads.sequence < EXCLUDED.sequence;
    RETURN NULL;
END
$$;

-- Chain the events already stored, stream by stream in sequence order.
DO $$
DECLARE
    e events;
    previous bytea;
    stream text := NULL;
BEGIN
    FOR e IN SELECT * FROM events ORDER BY aggregate_type, aggregate_id, sequence LOOP
        IF stream IS DISTINCT FROM e.aggregate_type || '/' || e.aggregate_id THEN
            previous := NULL;
            stream := e.aggregate_type || '/' || e.aggregate_id;
        END IF;
        previous := cstrack_event_hash(previous, e);
        UPDATE events SET hash = previous
         WHERE aggregate_type = e.aggregate_type AND aggregate_id = e.aggregate_id AND sequence = e.sequence;
    END LOOP;
END
$$;
INSERT INTO stream_heads (aggregate_type, aggregate_id, sequence, hash)
SELECT DISTINCT ON (aggregate_type, aggregate_id) aggregate_type, aggregate_id, sequence, hash
  FROM events ORDER BY aggregate_type, aggregate_id, sequence DESC;

ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

CREATE TRIGGER events_chained BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION cstrack_chain_event();

CREATE TRIGGER events_heads_moved AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION cstrack_move_heads();

-- Digests of the whole store: the Merkle root of each range of global positions (each leaf the
-- hash of an event's chain hash and stored text, in position order), sealed once every event of
-- the range is committed. A digest exported elsewhere proves later that the range is unchanged.
CREATE TABLE store_digests (
    range_start bigint      PRIMARY KEY,
    range_end   bigint      NOT NULL,
    events      integer     NOT NULL,
    root        bytea       NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT now()
);
