-- Coexistence sync, delivery: every stored event travels to the other side of its migration,
-- in order within its conversation, one in flight per conversation, until it is applied
-- there or kept aside (dead) with the reason.

ALTER TABLE sync_inbound
    -- Tie-break for events of one conversation that carry the same time.
    ADD COLUMN seq         bigserial,
    -- `c2c:<a>:<b>` (accounts sorted), `group:<id>`, `account:<id>`: the unit of ordering.
    ADD COLUMN conv        text NOT NULL DEFAULT '',
    -- Who made it on its side, as the event says (relay `origin`, a Tencent message's tag).
    ADD COLUMN origin      text,
    ADD COLUMN state       text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sending', 'sent', 'dead', 'echo', 'off')),
    -- Failed deliveries so far (the retry policy's count).
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN next_at     timestamptz NOT NULL DEFAULT now(),
    -- While `sending`: the sender's hold; past it, another process may take the event again.
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN sent_at     timestamptz,
    -- Its identity on the other side, when the provider answered one (the id map).
    ADD COLUMN made        text,
    -- The last failure: the provider's code and what it means.
    ADD COLUMN error_code  text,
    ADD COLUMN error       text;

-- Events received before delivery existed were never meant to be delivered.
UPDATE sync_inbound SET state = 'off';

-- The heads of the conversations waiting: what the senders claim from.
CREATE INDEX sync_inbound_waiting ON sync_inbound (migration_id, side, conv, at, seq)
    WHERE state IN ('queued', 'sending');
-- Health over recent minutes and the event log, newest first.
CREATE INDEX sync_inbound_received ON sync_inbound (migration_id, side, received_at);
CREATE INDEX sync_inbound_dead ON sync_inbound (migration_id, side) WHERE state = 'dead';

-- Each direction is named by the side its events come from; off until someone turns it on.
CREATE TABLE sync_directions (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    from_side    text NOT NULL CHECK (from_side IN ('source', 'target')),
    enabled      boolean NOT NULL DEFAULT false,
    changed_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, from_side)
);

-- The id map: what imshift made on a side, so that the side telling imshift about it again is
-- recognised as an echo and not sent back.
CREATE TABLE sync_ids (
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    side         text NOT NULL CHECK (side IN ('source', 'target')),
    id           text NOT NULL,
    -- The event (from the other side) it was made for.
    event_key    text NOT NULL,
    made_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_id, side, id)
);
