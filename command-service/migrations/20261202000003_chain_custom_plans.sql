-- The hash-chain trigger looks up the previous event by primary key. PL/pgSQL caches a generic
-- plan per connection after a few calls; one cached while the store's statistics still described
-- an empty table can walk another index instead, which made every row of a large batch (an
-- import) cost a scan of the stream type. Planning the lookup on each call keeps it on the
-- primary key whatever the statistics said when the connection first appended.
ALTER FUNCTION cstrack_chain_event() SET plan_cache_mode = force_custom_plan;
