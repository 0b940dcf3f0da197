-- Coexistence sync, gaps: Tencent does not retry a callback, so what a side sent while every
-- console process was down is lost to the callback path. Each process running the sync
-- sender beats here; the first to start after a silence longer than the gap threshold records
-- the gap, and the gap is backfilled by reading the sides' history back.
CREATE TABLE sync_heartbeats (
    process    uuid PRIMARY KEY,
    node       text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    beat_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_gaps (
    id          bigserial PRIMARY KEY,
    -- The last beat before the silence, and the first process back.
    from_at     timestamptz NOT NULL UNIQUE,
    to_at       timestamptz NOT NULL,
    detected_by text NOT NULL,
    state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'filling', 'filled')),
    claimed_at  timestamptz,
    -- Events read back that had not arrived (the rest had, or were imshift's own).
    recovered   bigint NOT NULL DEFAULT 0,
    -- Conversations read back, and what could not be read, in words.
    conversations bigint NOT NULL DEFAULT 0,
    problems    text[] NOT NULL DEFAULT '{}',
    filled_at   timestamptz
);
