-- The timeline is read from the store (a customer's stream ordered by when each event happened,
-- events_customer_chronology), up to the customers projector's checkpoint of that stream, so
-- its copy in the read model goes. The customer 360's adoption history, which read that copy,
-- gets a table of its own: a row per adoption stage change.
CREATE TABLE adoption_changes (
    customer_id uuid        NOT NULL,
    sequence    bigint      NOT NULL,
    summary     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_id    text        NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);

INSERT INTO adoption_changes (customer_id, sequence, summary, occurred_at, actor_id)
SELECT customer_id, sequence, summary, occurred_at, actor_id FROM timeline_entries WHERE kind = 'adoption';

DROP TABLE timeline_entries;
