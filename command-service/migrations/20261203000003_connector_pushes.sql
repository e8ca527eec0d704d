-- What a connector last wrote back to the vendor per record (Salesforce: health colour and
-- coverage status on the Account), so that only changes are written; and each run's count.
CREATE TABLE connector_pushes (
    connector text        NOT NULL,
    record_id text        NOT NULL,
    pushed    jsonb       NOT NULL,
    pushed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, record_id)
);
ALTER TABLE connector_runs ADD COLUMN pushed integer NOT NULL DEFAULT 0;
