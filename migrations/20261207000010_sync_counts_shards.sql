-- Every delivery at the door added to one row per (migration, side, outcome): concurrent
-- deliveries queued on that row's lock, one commit after another. Each adds to one of 16 rows
-- now, picked at random; readers sum them.
ALTER TABLE sync_inbound_counts ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE sync_inbound_counts DROP CONSTRAINT sync_inbound_counts_pkey;
ALTER TABLE sync_inbound_counts ADD PRIMARY KEY (migration_id, side, outcome, shard);
