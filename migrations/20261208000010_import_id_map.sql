-- What a target made of an old id when it chooses its own (a team id the target assigns, an
-- account id it stores in lower case): later phases and later runs look it up here, and the
-- Import tab shows, searches and exports it. One row per old id; the newest run's answer wins.
CREATE TABLE import_id_map (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    old_id       text NOT NULL,
    new_id       text NOT NULL,
    run_id       uuid NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, kind, old_id)
);
CREATE INDEX import_id_map_new ON import_id_map (migration_id, kind, new_id);
