-- An Idempotency-Key's command appends in one transaction at most. Each key (per user) is
-- registered by the first transaction that appends events carrying it; any other transaction
-- appending under the same key is refused with SQLSTATE CS409, which the command service answers
-- from the first transaction's events. A concurrent second append waits on the first one's
-- registration row and is refused once that commits (or proceeds if it rolled back).
CREATE TABLE idempotency_appends (
    user_id text NOT NULL,
    key     text NOT NULL,
    tx_id   xid8 NOT NULL,
    PRIMARY KEY (user_id, key)
);

INSERT INTO idempotency_appends (user_id, key, tx_id)
SELECT DISTINCT ON (metadata ->> 'actor_id', metadata ->> 'idempotency_key')
       COALESCE(metadata ->> 'actor_id', ''), metadata ->> 'idempotency_key', tx_id
  FROM events
 WHERE metadata ? 'idempotency_key'
 ORDER BY metadata ->> 'actor_id', metadata ->> 'idempotency_key', global_position;

CREATE FUNCTION cstrack_idempotency_once() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner xid8;
BEGIN
    IF NEW.metadata ? 'idempotency_key' THEN
        INSERT INTO idempotency_appends (user_id, key, tx_id)
        VALUES (COALESCE(NEW.metadata ->> 'actor_id', ''), NEW.metadata ->> 'idempotency_key', pg_current_xact_id())
        ON CONFLICT (user_id, key) DO NOTHING;
        IF NOT FOUND THEN
            SELECT tx_id INTO owner FROM idempotency_appends
             WHERE user_id = COALESCE(NEW.metadata ->> 'actor_id', '') AND key = NEW.metadata ->> 'idempotency_key';
            IF owner IS DISTINCT FROM pg_current_xact_id() THEN
                RAISE EXCEPTION 'Idempotency-Key % was already appended by another transaction',
                    NEW.metadata ->> 'idempotency_key' USING ERRCODE = 'CS409';
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_idempotency_once BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION cstrack_idempotency_once();
