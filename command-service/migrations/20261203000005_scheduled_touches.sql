-- Upcoming meetings read from calendars: not activities (they have not happened), but each
-- customer's next scheduled touch. A meeting becomes an activity once it has ended.
CREATE TABLE scheduled_touches (
    connector    text        NOT NULL,
    source_id    text        NOT NULL,
    customer_id  uuid        NOT NULL,
    subject      text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    -- inbound or outbound (organised by the mailbox's owner).
    direction    text        NOT NULL,
    participants text[]      NOT NULL DEFAULT '{}',
    mailbox      text        NOT NULL,
    PRIMARY KEY (connector, source_id)
);
CREATE INDEX scheduled_touches_customer ON scheduled_touches (customer_id, starts_at);
ALTER TABLE connector_runs ADD COLUMN ignored integer NOT NULL DEFAULT 0;
