-- The hand-over's incremental interface pages through the old system's messages kept while
-- the direction into the target was off, in arrival order (`seq`).
CREATE INDEX sync_inbound_kept ON sync_inbound (migration_id, seq)
    WHERE side = 'source' AND state = 'off' AND kind = 'message.sent';
