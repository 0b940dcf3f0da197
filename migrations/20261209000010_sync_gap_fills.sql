-- What filling a gap did for each migration and side: a migration's Sync tab shows its own
-- figures, not the sum over every migration of the console.
CREATE TABLE sync_gap_fills (
    gap_id        bigint NOT NULL REFERENCES sync_gaps (id) ON DELETE CASCADE,
    migration_id  uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    side          text NOT NULL CHECK (side IN ('source', 'target')),
    conversations bigint NOT NULL DEFAULT 0,
    recovered     bigint NOT NULL DEFAULT 0,
    problems      text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (gap_id, migration_id, side)
);
