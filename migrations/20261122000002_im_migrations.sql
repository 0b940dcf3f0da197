-- The product's migrations (an app's move from one IM to another) and their target keys.
-- Named im_migrations so nobody confuses them with this schema's own migrations.

CREATE TABLE im_migrations (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    strategy   text NOT NULL CHECK (strategy IN ('forced_upgrade', 'coexistence')),
    source     text NOT NULL CHECK (source IN ('self_built', 'easemob', 'netease', 'rongcloud', 'tencent')),
    target     text NOT NULL CHECK (target IN ('tencent', 'netease', 'rongcloud')),
    state      text NOT NULL DEFAULT 'draft'
               CHECK (state IN ('draft', 'ready', 'importing', 'syncing', 'done', 'archived')),
    notes      text NOT NULL DEFAULT '',
    -- Per-API overrides of the target's default quotas and batch sizes:
    -- {"openim/importmsg": {"qps": 100, "batch": null}, ...}
    limits     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Names are unique among migrations that are not archived.
CREATE UNIQUE INDEX im_migrations_live_name ON im_migrations (lower(name)) WHERE state <> 'archived';

-- Secrets are sealed with XChaCha20-Poly1305 under the master key (see src/secrets.rs); only
-- their last four characters are kept in clear, for the UI.
CREATE TABLE target_keys (
    migration_id         uuid PRIMARY KEY REFERENCES im_migrations (id) ON DELETE CASCADE,
    sdkappid             bigint,
    region               text,
    base_url             text,
    admin_identifier     text,
    secret_sealed        bytea,
    secret_last4         text,
    secret_set_by        text,
    secret_set_at        timestamptz,
    callback_sealed      bytea,
    callback_last4       text,
    callback_set_by      text,
    callback_set_at      timestamptz,
    sandbox              boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
