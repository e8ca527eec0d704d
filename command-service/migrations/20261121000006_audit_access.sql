-- Who read which customer's history (the events themselves, exports, verifications, state as
-- of an instant), including the refused attempts. Written by the query API.
CREATE TABLE audit_access_log (
    access_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accessed_at timestamptz NOT NULL DEFAULT now(),
    user_id     text        NOT NULL,
    role        text        NOT NULL,
    operation   text        NOT NULL,
    customer_id uuid,
    arguments   jsonb       NOT NULL,
    allowed     boolean     NOT NULL
);
CREATE INDEX audit_access_by_customer ON audit_access_log (customer_id, accessed_at);
