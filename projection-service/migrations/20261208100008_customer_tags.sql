-- Tags on customers (docs/DOMAIN.md section 16), in the order they were put on; the customer
-- list filters by them.
ALTER TABLE customer_profiles ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX customer_profiles_tags ON customer_profiles USING gin (tags);
