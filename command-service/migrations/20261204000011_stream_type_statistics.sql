-- The store holds a handful of stream types (customers, CSMs, partners, alert rules, custom-field
-- definitions...), however many events it holds. Without this, the first ANALYZE of a new
-- store, taken over its first few events, records every stream type as distinct, and the
-- planner then takes "every event of one stream type" for a single row: a plan cached from
-- those statistics read a whole stream type to find one stream's last hash in every append.
-- The override holds for every later ANALYZE.
ALTER TABLE events ALTER COLUMN aggregate_type SET (n_distinct = 8);
ANALYZE events;
