-- The partner organisations and their portal users, from the Partner streams (kept by the
-- customers projector, rebuilt with it): what Settings lists, and what refuses a deactivated
-- partner user's requests.
CREATE TABLE partner_directory (
    partner_id    uuid        PRIMARY KEY,
    name          text        NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE partner_users (
    partner_id uuid        NOT NULL,
    user_id    text        NOT NULL,
    name       text        NOT NULL,
    email      text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('invited', 'active', 'deactivated')),
    -- Why the user was deactivated.
    reason     text,
    invited_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (partner_id, user_id)
);
