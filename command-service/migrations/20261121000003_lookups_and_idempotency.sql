-- Commands look activities up in the store instead of carrying every activity id in the
-- customer aggregate (whose snapshot would then grow with the history).
CREATE INDEX events_activity_ref ON events (
    aggregate_id,
    (COALESCE(payload -> 'ActivityLogged' ->> 'activity_id', payload -> 'ActivityRetracted' ->> 'activity_id'))
) WHERE aggregate_type = 'Customer' AND event_type IN ('ActivityLogged', 'ActivityRetracted');

-- Batches log many activities in one event each; their ids are looked up the same way.
CREATE INDEX events_stream_type ON events (aggregate_type, event_type);

-- Commands carry the client's Idempotency-Key in their metadata, written with the events, so a
-- retry after a crash can still find what the first attempt appended.
CREATE INDEX events_idempotency_key ON events ((metadata ->> 'idempotency_key'))
    WHERE metadata ? 'idempotency_key';

-- The first answer to each (user, Idempotency-Key).
CREATE TABLE idempotency_keys (
    user_id      text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('pending', 'done')),
    status       smallint,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
