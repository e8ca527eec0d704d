-- The activities of each customer, for commands that must know whether an activity exists or
-- was retracted. Kept by a trigger in the appending transaction, so it always agrees with the
-- store; looked up by primary key, so the cost does not depend on the stream's length or on the
-- planner's statistics (an expression index over the events was skipped until ANALYZE ran).
CREATE TABLE activity_index (
    customer_id text    NOT NULL,
    activity_id text    NOT NULL,
    retracted   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, activity_id)
);

CREATE FUNCTION cstrack_index_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_type = 'ActivityLogged' THEN
        INSERT INTO activity_index (customer_id, activity_id)
        VALUES (NEW.aggregate_id, NEW.payload -> 'ActivityLogged' ->> 'activity_id');
    ELSE
        UPDATE activity_index SET retracted = true
         WHERE customer_id = NEW.aggregate_id AND activity_id = NEW.payload -> 'ActivityRetracted' ->> 'activity_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_activity_index AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'Customer' AND NEW.event_type IN ('ActivityLogged', 'ActivityRetracted'))
    EXECUTE FUNCTION cstrack_index_activity();

INSERT INTO activity_index (customer_id, activity_id)
SELECT aggregate_id, payload -> 'ActivityLogged' ->> 'activity_id'
  FROM events WHERE aggregate_type = 'Customer' AND event_type = 'ActivityLogged'
ON CONFLICT DO NOTHING;
UPDATE activity_index a SET retracted = true
  FROM events e
 WHERE e.aggregate_type = 'Customer' AND e.event_type = 'ActivityRetracted'
   AND e.aggregate_id = a.customer_id AND e.payload -> 'ActivityRetracted' ->> 'activity_id' = a.activity_id;

DROP INDEX events_activity_ref;
