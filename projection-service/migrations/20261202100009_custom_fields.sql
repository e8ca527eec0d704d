-- Custom-field values of each customer (docs/DOMAIN.md section 9), key -> value; cleared fields
-- are absent. Filters and sorts of the customers list read them.
ALTER TABLE customer_profiles ADD COLUMN custom_fields jsonb NOT NULL DEFAULT '{}';
CREATE INDEX customer_profiles_custom_fields ON customer_profiles USING gin (custom_fields jsonb_path_ops);
