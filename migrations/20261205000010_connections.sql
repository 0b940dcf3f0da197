-- Both sides of a migration as connections: a provider (from the registry in
-- src/providers/registry.rs) with its public fields as JSON and each secret sealed on its own.
-- The registry, not the schema, decides which providers exist: a provider added in code needs
-- no schema change, so the CHECK lists on im_migrations.source/target go.

ALTER TABLE im_migrations DROP CONSTRAINT IF EXISTS im_migrations_source_check;
ALTER TABLE im_migrations DROP CONSTRAINT IF EXISTS im_migrations_target_check;

CREATE TABLE connections (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    side         text NOT NULL CHECK (side IN ('source', 'target')),
    provider     text NOT NULL,
    -- Public fields by the provider's field ids: {"sdkappid": 1400000000, "region": "china", ...}
    public       jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Every required field, secrets included, is set (decided by the provider when saved).
    complete     boolean NOT NULL DEFAULT false,
    -- Points at a sandbox this console started ("Rehearse in sandbox").
    sandbox      boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, side)
);

-- One row per secret field, sealed with XChaCha20-Poly1305 under the master key with the
-- context `im_migration:<id>:<side>:<field>` (src/secrets.rs); only the last four characters
-- are kept in clear, for the UI. `legacy_context` marks a value sealed before connections
-- existed (context `im_migration:<id>:<secret|callback>`); it is resealed on its next write.
CREATE TABLE connection_secrets (
    migration_id   uuid NOT NULL,
    side           text NOT NULL,
    field          text NOT NULL,
    sealed         bytea NOT NULL,
    last4          text NOT NULL,
    set_by         text NOT NULL DEFAULT '',
    set_at         timestamptz NOT NULL DEFAULT now(),
    legacy_context text,
    PRIMARY KEY (migration_id, side, field),
    FOREIGN KEY (migration_id, side) REFERENCES connections (migration_id, side) ON DELETE CASCADE
);

-- Today's target keys become target connections, losing nothing.
INSERT INTO connections (migration_id, side, provider, public, complete, sandbox, updated_at)
SELECT k.migration_id, 'target', m.target,
       jsonb_strip_nulls(jsonb_build_object(
           'sdkappid', k.sdkappid, 'region', k.region, 'base_url', k.base_url,
           'admin_identifier', k.admin_identifier)),
       k.sdkappid IS NOT NULL AND k.base_url IS NOT NULL AND k.admin_identifier IS NOT NULL
           AND k.secret_sealed IS NOT NULL,
       k.sandbox, k.updated_at
FROM target_keys k JOIN im_migrations m ON m.id = k.migration_id;

INSERT INTO connection_secrets (migration_id, side, field, sealed, last4, set_by, set_at, legacy_context)
SELECT migration_id, 'target', 'secret_key', secret_sealed, coalesce(secret_last4, ''),
       coalesce(secret_set_by, ''), coalesce(secret_set_at, updated_at), 'secret'
FROM target_keys WHERE secret_sealed IS NOT NULL;

INSERT INTO connection_secrets (migration_id, side, field, sealed, last4, set_by, set_at, legacy_context)
SELECT migration_id, 'target', 'callback_token', callback_sealed, coalesce(callback_last4, ''),
       coalesce(callback_set_by, ''), coalesce(callback_set_at, updated_at), 'callback'
FROM target_keys WHERE callback_sealed IS NOT NULL;

DROP TABLE target_keys;
