-- Where each projector is in each stream: an event at or below last_sequence is a duplicate; one
-- above last_sequence + 1 means a gap, filled from the store before it is applied.
CREATE TABLE projector_checkpoints (
    projector     text   NOT NULL,
    stream_type   text   NOT NULL,
    stream_id     text   NOT NULL,
    last_sequence bigint NOT NULL,
    PRIMARY KEY (projector, stream_type, stream_id)
);

-- Progress of each projector over the whole store.
CREATE TABLE projector_status (
    projector            text        PRIMARY KEY,
    last_global_position bigint      NOT NULL DEFAULT 0,
    events_applied       bigint      NOT NULL DEFAULT 0,
    last_recorded_at     timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Coverage read model (PRD-162). Facts only: time-relative values are computed at query time.
CREATE TABLE coverage_csms (
    csm_id uuid PRIMARY KEY,
    name   text NOT NULL,
    email  text NOT NULL,
    team   text NOT NULL
);

CREATE TABLE coverage_accounts (
    customer_id  uuid          PRIMARY KEY,
    name         text          NOT NULL,
    tier         text          NOT NULL,
    arr          numeric(16,2) NOT NULL,
    csm_id       uuid          NOT NULL,
    onboarded_on date          NOT NULL
);
CREATE INDEX coverage_accounts_csm ON coverage_accounts (csm_id);

-- CSM handoffs, for transitions.
CREATE TABLE coverage_handoffs (
    customer_id     uuid        NOT NULL,
    sequence        bigint      NOT NULL,
    csm_id          uuid        NOT NULL,
    previous_csm_id uuid,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);

-- One row per contact (notes are not contact); a retraction deletes its row.
CREATE TABLE coverage_contacts (
    customer_id  uuid        NOT NULL,
    activity_id  uuid        NOT NULL,
    kind         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    occurred_on  date        NOT NULL,
    participants uuid[]      NOT NULL,
    PRIMARY KEY (customer_id, activity_id)
);
CREATE INDEX coverage_contacts_by_day ON coverage_contacts (customer_id, occurred_on);

CREATE TABLE coverage_health_points (
    customer_id uuid             NOT NULL,
    sequence    bigint           NOT NULL,
    measured_at timestamptz      NOT NULL,
    measured_on date             NOT NULL,
    score       double precision NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);
CREATE INDEX coverage_health_by_day ON coverage_health_points (customer_id, measured_on);
