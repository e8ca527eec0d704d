-- Which transaction last moved each checkpoint. A projector writes a stream's checkpoint in the
-- transaction that changes the stream's rows, so the checkpoints marked by transactions a reader
-- could not see yet name every customer whose read-model rows changed since: the query API
-- refreshes its cached portfolio rows from them (events::service::report_cache).
ALTER TABLE projector_checkpoints ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- Set on every write, whoever makes it (projectors, the rebuild's switch, an operator's fix).
CREATE FUNCTION mark_checkpoint_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE TRIGGER projector_checkpoints_changed
    BEFORE INSERT OR UPDATE ON projector_checkpoints
    FOR EACH ROW EXECUTE FUNCTION mark_checkpoint_change();

CREATE INDEX projector_checkpoints_changed_xid ON projector_checkpoints (projector, changed_xid);
