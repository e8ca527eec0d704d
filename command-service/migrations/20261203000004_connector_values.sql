-- The last value a connector applied per vendor record and fact (Gainsight: the overall score
-- and NPS of each Company), so a record modified for another reason does not record the same
-- score again.
CREATE TABLE connector_values (
    connector  text        NOT NULL,
    record_id  text        NOT NULL,
    fact       text        NOT NULL,
    value      jsonb       NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, record_id, fact)
);
