-- TargetProcess work items (docs/CONNECTORS.md): which items each customer is linked to, and
-- the items' name and state as last read. A mirror of the vendor's, not facts of cstrack.
CREATE TABLE work_item_links (
    customer_id uuid        NOT NULL,
    system      text        NOT NULL,
    entity_id   bigint      NOT NULL,
    linked_by   text        NOT NULL,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, system, entity_id)
);
CREATE INDEX work_item_links_entity ON work_item_links (system, entity_id);

CREATE TABLE work_items (
    system      text        NOT NULL,
    entity_id   bigint      NOT NULL,
    name        text        NOT NULL,
    -- UserStory, Bug, Feature, Task, Request ...
    kind        text        NOT NULL,
    state       text        NOT NULL,
    modified_at timestamptz,
    synced_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, entity_id)
);
