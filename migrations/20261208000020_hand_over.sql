-- Files built for a target's staff to import by hand (history files): one row per
-- build, its files on the disk of the node that built it (`node`), under the data directory.
CREATE TABLE hand_over_builds (
    id           uuid PRIMARY KEY,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    node         text NOT NULL,
    state        text NOT NULL DEFAULT 'building' CHECK (state IN ('building', 'ready', 'failed')),
    error        text,
    -- The provider's manifest: its `files` list what can be downloaded.
    manifest     jsonb,
    -- Records written, not carried, and kept aside (with their reasons in kept_aside.jsonl).
    written      bigint NOT NULL DEFAULT 0,
    kept_aside   bigint NOT NULL DEFAULT 0,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX hand_over_builds_migration ON hand_over_builds (migration_id, created_at DESC);
