-- Deliveries the broker dead-lettered (an event that failed to apply DELIVERY_LIMIT times, or a
-- message that is not an event), moved here from the dead-letter queue so that operators see
-- them per projector (projectionStatus, metrics) and can replay them.
CREATE TABLE dead_letters (
    dead_letter_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projector       text        NOT NULL,
    queue           text        NOT NULL,
    stream_type     text,
    stream_id       text,
    sequence        bigint,
    global_position bigint,
    event_type      text,
    body            bytea       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_by_projector ON dead_letters (projector);
