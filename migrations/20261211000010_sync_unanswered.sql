-- Sends into a side that names the message only in its answer (NetEase answers with a msgid
-- it chose), while that answer is awaited. The side may copy imshift's message back before
-- imshift has the id the copy carries; a message from that side arriving meanwhile waits for
-- the answers (then the id map knows it for an echo) instead of being sent back.
CREATE TABLE sync_unanswered (
    migration_id uuid        NOT NULL,
    -- The side sent into.
    side         text        NOT NULL CHECK (side IN ('source', 'target')),
    -- The event sent (from the other side).
    event_key    text        NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, side, event_key)
);
CREATE INDEX sync_unanswered_since ON sync_unanswered (migration_id, side, since);

CREATE OR REPLACE FUNCTION sync_forget_migration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sync_inbound WHERE migration_id = OLD.id;
    DELETE FROM sync_ids WHERE migration_id = OLD.id;
    DELETE FROM sync_unanswered WHERE migration_id = OLD.id;
    RETURN OLD;
END $$;
