-- Who is told about what (docs/NOTIFICATIONS.md): each user's notification preferences, and
-- the webhooks subscribed to alert and event kinds. Settings, not facts: they are kept as rows,
-- and every delivery made under them is logged by the projection service.
CREATE TABLE notification_preferences (
    user_id        text        PRIMARY KEY,
    role           text        NOT NULL,
    -- The CSM whose customers' alerts the user gets (a CSM's own id).
    csm_id         uuid,
    -- A manager's team (csm_directory.team); null: every team.
    team           text,
    email          text,
    slack_user_id  text,
    -- A Slack channel to post to instead of the user's direct messages.
    slack_channel  text,
    -- Alert kinds wanted; empty: every kind.
    kinds          text[]      NOT NULL DEFAULT '{}',
    -- Of email and slack (in-app is always on).
    channels       text[]      NOT NULL DEFAULT '{}',
    -- immediate, or digest (one message a day).
    mode           text        NOT NULL DEFAULT 'immediate' CHECK (mode IN ('immediate', 'digest')),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_preferences_csm ON notification_preferences (csm_id);
CREATE UNIQUE INDEX notification_preferences_slack ON notification_preferences (slack_user_id);

CREATE TABLE webhooks (
    webhook_id  uuid        PRIMARY KEY,
    url         text        NOT NULL,
    -- alert.<kind>, alert.*, event.<EventType>, event.*
    kinds       text[]      NOT NULL,
    secret      text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);

-- Slack requests already answered (signature), so a replayed request is refused.
CREATE TABLE slack_requests_seen (
    signature text        PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
