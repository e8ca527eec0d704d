-- A dead letter stays until it is replayed (`projection-service dlq replay`): replayed_at marks
-- one whose stream has been applied past it since, replay_error why the last replay failed.
ALTER TABLE dead_letters ADD COLUMN replayed_at timestamptz, ADD COLUMN replay_error text;
CREATE INDEX dead_letters_open ON dead_letters (projector, stream_type, stream_id) WHERE replayed_at IS NULL;
