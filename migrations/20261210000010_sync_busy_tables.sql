-- The two tables every sync event writes, several times, tuned for that.
--
-- Their rows no longer check their migration through a foreign key. Each check locked the
-- migration's row (FOR KEY SHARE) per statement, so concurrent deliveries of one migration
-- shared that lock through multixacts: about a third of a delivery's time in the database.
-- Nothing writes these rows without having read the migration first (the door opens its
-- connection, the sender claims from rows already there), and migrations are deleted only by
-- the benchmarks; a trigger keeps ON DELETE CASCADE's effect.
ALTER TABLE sync_inbound DROP CONSTRAINT sync_inbound_migration_id_fkey;
ALTER TABLE sync_ids DROP CONSTRAINT sync_ids_migration_id_fkey;

CREATE FUNCTION sync_forget_migration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_inbound WHERE migration_id = OLD.id;
    DELETE FROM sync_ids WHERE migration_id = OLD.id;
    RETURN OLD;
END $$;

CREATE TRIGGER sync_forget_migration AFTER DELETE ON im_migrations
    FOR EACH ROW EXECUTE FUNCTION sync_forget_migration();

-- Every event is inserted and updated two or three times: vacuum and analyze them at a few
-- per cent of change rather than autovacuum's default 20 % and 10 %, so that dead versions do
-- not pile up in the waiting index and the planner knows the table's size.
ALTER TABLE sync_inbound SET (autovacuum_vacuum_scale_factor = 0.02,
                              autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE sync_ids SET (autovacuum_analyze_scale_factor = 0.05);
