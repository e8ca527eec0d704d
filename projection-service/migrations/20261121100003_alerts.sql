-- Alerts (DOMAIN.md section 8). A condition raises one alert when it becomes true and is re-armed
-- only when it has been seen false again: edge-triggered, deduplicated.
CREATE TABLE alert_conditions (
    customer_id uuid        NOT NULL,
    kind        text        NOT NULL,
    key         text        NOT NULL,
    active      boolean     NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, kind, key)
);

CREATE TABLE alerts (
    alert_id        uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    csm_id          uuid        NOT NULL,
    kind            text        NOT NULL,
    key             text        NOT NULL,
    message         text        NOT NULL,
    detail          jsonb       NOT NULL,
    raised_at       timestamptz NOT NULL,
    as_of           date        NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    published_at    timestamptz
);
CREATE INDEX alerts_by_csm ON alerts (csm_id, raised_at DESC);
CREATE INDEX alerts_unpublished ON alerts (raised_at) WHERE published_at IS NULL;
