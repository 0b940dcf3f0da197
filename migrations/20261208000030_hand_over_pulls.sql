-- Each time the target's importer pulled increments (NetEase's history import polls an HTTP
-- interface): who, from where, how many. The newest row's `next` is where a pull that names
-- no cursor starts, so each GET answers what is new since the last one.
CREATE TABLE hand_over_pulls (
    id           bigserial PRIMARY KEY,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    cursor_from  text,
    next         text,
    lines        integer NOT NULL,
    kept_aside   integer NOT NULL,
    actor        text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hand_over_pulls_migration ON hand_over_pulls (migration_id, id DESC);
