-- Rebuilds of a projection from the store, for projectionStatus and the metrics.
CREATE TABLE projection_rebuilds (
    rebuild_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projector   text        NOT NULL,
    target      text        NOT NULL,
    known_at    timestamptz,
    state       text        NOT NULL CHECK (state IN ('running', 'switched', 'snapshot', 'failed')),
    events_done bigint      NOT NULL DEFAULT 0,
    events_total bigint     NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX projection_rebuilds_latest ON projection_rebuilds (projector, started_at DESC);
