-- Notification delivery (docs/NOTIFICATIONS.md). Every alert taken from the alerts queue, and
-- every event a webhook subscribes to, is recorded once in the inbox (a redelivered message
-- finds itself there and is not delivered twice); each recipient and channel gets a delivery,
-- retried with backoff, and every attempt is logged.
CREATE TABLE notification_inbox (
    message_id  text        PRIMARY KEY,
    kind        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notification_deliveries (
    delivery_id     uuid        PRIMARY KEY,
    message_id      text        NOT NULL,
    kind            text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'slack', 'webhook')),
    -- A user id (email, slack) or a webhook id.
    recipient       text        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('immediate', 'digest')),
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (message_id, channel, recipient)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE notification_attempts (
    delivery_id uuid        NOT NULL REFERENCES notification_deliveries,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    succeeded   boolean     NOT NULL,
    status_code integer,
    error       text,
    duration_ms double precision NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
