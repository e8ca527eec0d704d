-- Saved views (docs/WEB.md): a list screen's filters, order and columns under a name, private
-- to their owner or shared with the owner's team (staff with staff; a partner's users with the
-- same organisation's). Settings, not facts: kept in the backup.
CREATE TABLE saved_views (
    view_id          uuid        PRIMARY KEY,
    owner_id         text        NOT NULL,
    -- The owner's partner organisation; null for staff.
    owner_partner_id uuid,
    name             text        NOT NULL,
    screen           text        NOT NULL,
    -- The screen's address query, without '?'.
    params           text        NOT NULL,
    shared           boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX saved_views_name ON saved_views (owner_id, screen, lower(name));
CREATE INDEX saved_views_shared ON saved_views (owner_partner_id) WHERE shared;
