-- The days (in each user's time zone) a user's digest went out, so a restart on the same day
-- does not send another.
CREATE TABLE notification_digests (
    user_id    text        NOT NULL,
    local_date date        NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, local_date)
);
