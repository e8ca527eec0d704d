-- "My focus" (docs/WEB.md): the accounts each user pinned. A user's own working list, not a fact
-- about the customer: rows, kept in the backup.
CREATE TABLE focus_pins (
    user_id     text        NOT NULL,
    customer_id uuid        NOT NULL,
    pinned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, customer_id)
);
CREATE INDEX focus_pins_customer ON focus_pins (customer_id);
