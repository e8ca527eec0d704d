-- A command's events used to be applied twice to the aggregate a snapshot was taken of: once as
-- the command was decided, once more by the snapshot step. Every aggregate's fold is the same
-- applied twice except the custom-field definitions, which list each definition: a snapshot
-- taken at a definition holds it twice, and each later snapshot carries the copy on. Their
-- snapshots are dropped; the stream is replayed from its events until the next one is taken.
DELETE FROM snapshots WHERE aggregate_type = 'CustomFields';
