-- Connectors (docs/CONNECTORS.md): where each one's last sync stopped, and a record of every
-- sync run with what it read, applied and skipped (and why).
CREATE TABLE connector_cursors (
    connector  text        NOT NULL,
    stream     text        NOT NULL,
    cursor     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, stream)
);

CREATE TABLE connector_runs (
    run_id       uuid        PRIMARY KEY,
    connector    text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    records_read integer     NOT NULL DEFAULT 0,
    applied      integer     NOT NULL DEFAULT 0,
    unchanged    integer     NOT NULL DEFAULT 0,
    skipped      integer     NOT NULL DEFAULT 0,
    events       integer     NOT NULL DEFAULT 0,
    waited_ms    bigint      NOT NULL DEFAULT 0,
    -- [{object, record_id, code, field, message}], at most 500 kept per run.
    skips        jsonb       NOT NULL DEFAULT '[]',
    error        text
);
CREATE INDEX connector_runs_latest ON connector_runs (connector, started_at DESC);
