-- Coexistence sync, inbound: every event a side's provider delivered, stored before the answer
-- and idempotent by the provider's own identity for it (a redelivery is a duplicate, not a
-- second row).
CREATE TABLE sync_inbound (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    side         text NOT NULL CHECK (side IN ('source', 'target')),
    key          text NOT NULL,
    -- The relay protocol's event type: message.sent, group.created, ...
    kind         text NOT NULL,
    -- When it happened on the provider.
    at           timestamptz NOT NULL,
    -- The event as the provider sent it.
    data         jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, side, key)
);

-- What became of every delivery, by outcome (accepted, duplicate, bad_signature, stale,
-- malformed, too_large): refused ones leave no event, only this count.
CREATE TABLE sync_inbound_counts (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    side         text NOT NULL CHECK (side IN ('source', 'target')),
    outcome      text NOT NULL,
    n            bigint NOT NULL DEFAULT 0,
    last_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, side, outcome)
);
