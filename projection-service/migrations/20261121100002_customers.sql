-- The customers read model: everything a CS team looks at about one customer, as facts.
-- Time-relative values (engagement for a period, trends, overdue, renewal countdown) are computed
-- at query time.

CREATE TABLE customer_profiles (
    customer_id     uuid          PRIMARY KEY,
    name            text          NOT NULL,
    salesforce_id   text          NOT NULL,
    tier            text          NOT NULL,
    arr             numeric(16,2) NOT NULL,
    industry        text          NOT NULL,
    account_manager text          NOT NULL,
    csm_id          uuid          NOT NULL,
    products_owned  text[]        NOT NULL,
    contract_start  date          NOT NULL,
    renewal_date    date          NOT NULL,
    onboarded_at    timestamptz   NOT NULL,
    adoption_stage  text,
    churned_on      date,
    churn_reason    text,
    last_renewed_at timestamptz
);
CREATE INDEX customer_profiles_csm ON customer_profiles (csm_id);
CREATE INDEX customer_profiles_renewal ON customer_profiles (renewal_date);

CREATE TABLE customer_partners (
    customer_id uuid NOT NULL,
    partner_id  uuid NOT NULL,
    PRIMARY KEY (customer_id, partner_id)
);

CREATE TABLE customer_stakeholders (
    customer_id    uuid    NOT NULL,
    stakeholder_id uuid    NOT NULL,
    name           text    NOT NULL,
    role           text    NOT NULL,
    level          text    NOT NULL,
    email          text,
    removed        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, stakeholder_id)
);

-- Every activity with what engagement needs; retracted ones stay, flagged.
CREATE TABLE customer_activities (
    customer_id         uuid             NOT NULL,
    activity_id         uuid             NOT NULL,
    kind                text             NOT NULL,
    direction           text             NOT NULL,
    occurred_at         timestamptz      NOT NULL,
    occurred_on         date             NOT NULL,
    duration_minutes    integer,
    participants        uuid[]           NOT NULL,
    response_received   boolean,
    response_time_hours double precision,
    subject             text             NOT NULL,
    logged_by           text             NOT NULL,
    retracted           boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, activity_id)
);
CREATE INDEX customer_activities_by_day ON customer_activities (customer_id, occurred_on);
CREATE INDEX customer_activities_day ON customer_activities (occurred_on);

-- Health points with their lineage.
CREATE TABLE health_points (
    customer_id  uuid             NOT NULL,
    sequence     bigint           NOT NULL,
    event_id     uuid             NOT NULL,
    measured_at  timestamptz      NOT NULL,
    measured_on  date             NOT NULL,
    score        double precision NOT NULL,
    source       text             NOT NULL,
    actor_id     text             NOT NULL,
    actor_role   text             NOT NULL,
    reason       text,
    risk_factors jsonb            NOT NULL,
    recorded_at  timestamptz      NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);
CREATE INDEX health_points_by_day ON health_points (customer_id, measured_on);

CREATE TABLE tasks (
    task_id        uuid        PRIMARY KEY,
    customer_id    uuid        NOT NULL,
    title          text        NOT NULL,
    description    text        NOT NULL,
    kind           text        NOT NULL,
    priority       text        NOT NULL,
    assignee_id    text        NOT NULL,
    due_date       date        NOT NULL,
    status         text        NOT NULL,
    parent_task_id uuid,
    depends_on     uuid[]      NOT NULL,
    outcome        text,
    created_at     timestamptz NOT NULL,
    closed_at      timestamptz
);
CREATE INDEX tasks_customer ON tasks (customer_id);
CREATE INDEX tasks_assignee ON tasks (assignee_id, status);

CREATE TABLE partner_reports (
    report_id          uuid        PRIMARY KEY,
    customer_id        uuid        NOT NULL,
    partner_id         uuid        NOT NULL,
    period_start       date        NOT NULL,
    period_end         date        NOT NULL,
    overall_status     text        NOT NULL,
    summary            text        NOT NULL,
    accomplishments    text        NOT NULL,
    planned_activities text        NOT NULL,
    risks_and_issues   text        NOT NULL,
    attachments        jsonb       NOT NULL,
    status             text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    submitted_at       timestamptz
);
CREATE INDEX partner_reports_customer ON partner_reports (customer_id);

CREATE TABLE customer_use_cases (
    customer_id uuid        NOT NULL,
    use_case    text        NOT NULL,
    status      text        NOT NULL,
    notes       text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, use_case)
);

CREATE TABLE nps_responses (
    customer_id    uuid        NOT NULL,
    sequence       bigint      NOT NULL,
    score          smallint    NOT NULL,
    stakeholder_id uuid,
    comment        text,
    occurred_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);

-- One chronological feed per customer: one entry per event worth showing.
CREATE TABLE timeline_entries (
    customer_id uuid        NOT NULL,
    sequence    bigint      NOT NULL,
    event_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    actor_id    text        NOT NULL,
    summary     text        NOT NULL,
    detail      jsonb       NOT NULL,
    PRIMARY KEY (customer_id, sequence)
);
CREATE INDEX timeline_by_time ON timeline_entries (customer_id, occurred_at DESC, sequence DESC);

CREATE TABLE csm_directory (
    csm_id                 uuid    PRIMARY KEY,
    name                   text    NOT NULL,
    email                  text    NOT NULL,
    team                   text    NOT NULL,
    monthly_capacity_hours integer NOT NULL
);
