-- PowerPoint templates an admin uploaded (docs/EXPORTS.md, "Decks"); decks use the latest, or
-- the shipped default when there is none. Configuration, not a fact about customers: kept here
-- with who uploaded it and when, not as events.
CREATE TABLE deck_templates (
    template_id uuid        PRIMARY KEY,
    file_name   text        NOT NULL,
    content     bytea       NOT NULL,
    uploaded_by text        NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
