-- Reminders (docs/DOMAIN.md section 13), kept by the customers projector from the Reminder
-- streams: each reminder with its next scheduled occurrence, and each occurrence with its state
-- and the history of what happened to it (fired, snoozed with a reason, woke and why, ...).
CREATE TABLE reminders (
    reminder_id        uuid        PRIMARY KEY,
    -- once, recurring, relative, rule
    kind               text        NOT NULL,
    -- The user it is for; null for a rule's firings (for the customer's CSM).
    owner_id           text,
    csm_id             uuid,
    customer_id        uuid,
    task_id            uuid,
    title              text        NOT NULL,
    note               text,
    schedule           jsonb,
    time_zone          text        NOT NULL,
    rule_id            text,
    -- active, finished (no occurrence left), cancelled
    status             text        NOT NULL,
    -- The next occurrence of a one-time or recurring reminder; a relative one's is read from
    -- the customer's date when due.
    next_due_at        timestamptz,
    created_at         timestamptz NOT NULL,
    changed_at         timestamptz NOT NULL
);
CREATE INDEX reminders_next_due ON reminders (next_due_at) WHERE status = 'active';
CREATE INDEX reminders_relative ON reminders (customer_id) WHERE kind = 'relative' AND status = 'active';

CREATE TABLE reminder_occurrences (
    reminder_id        uuid        NOT NULL,
    occurrence_key     text        NOT NULL,
    -- open, snoozed, completed, dismissed, suppressed
    state              text        NOT NULL,
    owner_id           text,
    csm_id             uuid,
    customer_id        uuid,
    title              text        NOT NULL,
    trigger            text        NOT NULL,
    rule_id            text,
    rules_version      text,
    due_at             timestamptz NOT NULL,
    fired_at           timestamptz NOT NULL,
    -- The sequence of the firing event in the reminder's stream.
    sequence           bigint      NOT NULL,
    why                text        NOT NULL,
    facts              jsonb       NOT NULL,
    snoozed_until      timestamptz,
    snooze_condition   jsonb,
    snooze_reason      text,
    snoozed_by         text,
    snoozed_at         timestamptz,
    -- Every step after the firing: {at, what, by, reason}.
    history            jsonb       NOT NULL,
    closed_at          timestamptz,
    changed_at         timestamptz NOT NULL,
    PRIMARY KEY (reminder_id, occurrence_key)
);
CREATE INDEX reminder_occurrences_owner ON reminder_occurrences (owner_id, state);
CREATE INDEX reminder_occurrences_csm ON reminder_occurrences (csm_id, state);
CREATE INDEX reminder_occurrences_customer ON reminder_occurrences (customer_id);
CREATE INDEX reminder_occurrences_snoozed ON reminder_occurrences (snoozed_until) WHERE state = 'snoozed';
