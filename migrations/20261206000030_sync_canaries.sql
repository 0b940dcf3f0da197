-- Coexistence sync, canaries: a marked test message sent through each direction every few
-- minutes; its round trip is read from the events it became.
CREATE TABLE sync_canaries (
    id           bigserial PRIMARY KEY,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    from_side    text NOT NULL CHECK (from_side IN ('source', 'target')),
    -- The message's text: `imshift canary <token>`.
    token        text NOT NULL UNIQUE,
    sent_at      timestamptz NOT NULL DEFAULT now(),
    -- Why it could not be sent, in words.
    error        text
);
CREATE INDEX sync_canaries_latest ON sync_canaries (migration_id, from_side, sent_at DESC);
