-- Columns postgres-es does not name in its INSERT, so they fill themselves on every append:
--   global_position  position in the whole store (identity; gaps where a transaction rolled back)
--   tx_id            the appending transaction; the relay reads in (tx_id, global_position) order and
--                    only below pg_snapshot_xmin, so a transaction that commits late is never skipped
--   recorded_at      server time of the append
--   event_id         UUID v7 of this event (one command may append several events, which share the
--                    command's metadata but each need their own id)

-- RFC 9562 UUID v7: 48 bits of Unix milliseconds, then random bits with version 7 and variant 10.
CREATE FUNCTION cstrack_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

ALTER TABLE events
    ADD COLUMN global_position bigint      GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN recorded_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN event_id        uuid        NOT NULL DEFAULT cstrack_uuid_v7();

CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_commit_order ON events (tx_id, global_position);

-- Wakes the relay as soon as an appending transaction commits (notifications are delivered at
-- commit); the relay also polls, so a lost notification only delays.
CREATE FUNCTION cstrack_notify_append() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cstrack_events_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION cstrack_notify_append();

-- Where the relay has published up to; moved only after the broker confirmed.
CREATE TABLE relay_cursor (
    relay           text        PRIMARY KEY,
    tx_id           xid8        NOT NULL,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
