-- Each user's time zone (an IANA name PostgreSQL knows): their daily digest goes at the digest
-- hour of their own day, and the web client shows dates and times in it.
ALTER TABLE notification_preferences ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
