-- Imports (docs/IMPORTS.md): the uploaded file, its column mapping and its status. What an
-- import did is in the event store (events carry `import_id` in their metadata); this table is
-- the staging area and the history list.
CREATE TABLE imports (
    import_id    uuid        PRIMARY KEY,
    kind         text        NOT NULL,
    file_name    text        NOT NULL,
    file_format  text        NOT NULL,
    content      bytea       NOT NULL,
    headers      jsonb       NOT NULL,
    mapping      jsonb       NOT NULL,
    row_count    integer     NOT NULL,
    status       text        NOT NULL DEFAULT 'uploaded' CHECK (status IN ('uploaded', 'committed', 'undone')),
    created_by   text        NOT NULL,
    created_role text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    counts       jsonb,
    event_count  bigint,
    committed_by text,
    committed_at timestamptz,
    undone_by    text,
    undone_at    timestamptz,
    result       jsonb
);
CREATE INDEX imports_by_creator ON imports (created_by, created_at DESC);

-- An import's events (and its undo's) are found by their metadata.
CREATE INDEX events_import ON events ((metadata ->> 'import_id')) WHERE metadata ? 'import_id';
