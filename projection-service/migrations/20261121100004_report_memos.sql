-- Report memos: the per-customer window facts a portfolio report needs, computed once per
-- (day, customer) and reused while the customer's stream has not moved. Each row remembers the
-- projector's checkpoint of the customer's stream it was computed at; a row whose version differs
-- from the checkpoint is stale and recomputed by the next report that reads it. Nothing here is a
-- source of truth: the table can be emptied at any time.
CREATE TABLE coverage_facts_memo (
    as_of        date             NOT NULL,
    customer_id  uuid             NOT NULL,
    version      bigint           NOT NULL,
    last_contact date,
    touches      integer          NOT NULL,
    meetings     integer          NOT NULL,
    stakeholders integer          NOT NULL,
    health       double precision,
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (as_of, customer_id)
);

-- Engagement metrics of the activities from period_start to cut (DOMAIN.md section 5). The metrics
-- depend only on those two days, so a month and the quarter that starts with it share rows.
CREATE TABLE engagement_metrics_memo (
    period_start date        NOT NULL,
    cut          date        NOT NULL,
    customer_id  uuid        NOT NULL,
    version      bigint      NOT NULL,
    metrics      jsonb       NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_start, cut, customer_id)
);
