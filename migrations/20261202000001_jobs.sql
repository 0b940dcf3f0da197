-- The job system: work that in-process workers claim with FOR UPDATE SKIP LOCKED and hold
-- with a lease (src/jobs/). Dump ingests, dump validation and import tasks are jobs.

CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    migration_id uuid REFERENCES im_migrations (id) ON DELETE CASCADE,
    -- Set for work only one machine can do (an upload kept on its disk); NULL = anyone.
    node         text,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Jobs that belong together (the tasks of one import run) share a scope, so they can be
    -- paused, resumed and cancelled at once.
    scope        text,
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
    -- Asked of a running job; its worker sees it at the next heartbeat (about a second).
    control      text CHECK (control IN ('pause', 'cancel')),
    priority     integer NOT NULL DEFAULT 0,
    run_after    timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 10,
    lease_owner  text,
    lease_until  timestamptz,
    -- The worker that ran it last (kept after it ends, for the dashboard).
    ran_by       text,
    -- Where a job that lost its worker resumes (the handler decides what it holds).
    checkpoint   jsonb,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX jobs_claim ON jobs (priority DESC, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_migration ON jobs (migration_id, kind, state);
CREATE INDEX jobs_scope ON jobs (scope, state) WHERE scope IS NOT NULL;

-- The console processes whose workers are alive, for the dashboard and lease owners.
CREATE TABLE workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Request pacing shared by every worker of every process: one row per (target app, API).
-- Updated many times a second: kept small so updates stay on their page.
-- `tat` is the theoretical arrival time of GCRA: the next request may start at tat.
CREATE TABLE rate_slots (
    key        text PRIMARY KEY,
    tat        timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Multiplies the quota after the provider throttled us; recovers over time.
    factor     double precision NOT NULL DEFAULT 1.0,
    slowed_at  timestamptz,
    throttles  bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

-- Takes the next `p_count` slots on `key` at `p_interval` seconds per request (1 / qps):
-- `wait` is how many seconds until the first, `spacing` how far apart they are (wider after a
-- throttle: the rate is multiplied by `factor`, which recovers by 0.02 a second).
CREATE FUNCTION rate_take(p_key text, p_interval double precision, p_count integer,
                          OUT wait double precision, OUT spacing double precision)
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    r      rate_slots;
    eff    double precision;
    slot   timestamptz;
BEGIN
    -- A lost slot after a database crash costs nothing; waiting for the disk on each one would.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO r FROM rate_slots WHERE key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_slots (key, tat) VALUES (p_key, now_ts + make_interval(secs => p_interval * p_count))
        ON CONFLICT (key) DO NOTHING;
        IF FOUND THEN
            wait := 0;
            spacing := p_interval;
            RETURN;
        END IF;
        SELECT * INTO r FROM rate_slots WHERE key = p_key FOR UPDATE;
    END IF;
    eff := CASE WHEN r.slowed_at IS NULL THEN 1.0
                ELSE least(1.0, r.factor + 0.02 * extract(epoch FROM now_ts - r.slowed_at)) END;
    spacing := p_interval / eff;
    slot := greatest(r.tat, now_ts);
    UPDATE rate_slots SET tat = slot + make_interval(secs => p_count * spacing) WHERE key = p_key;
    wait := extract(epoch FROM slot - now_ts);
END
$$;

-- The provider said "too fast": halve the current rate and hold everyone back for a second.
CREATE FUNCTION rate_throttled(p_key text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
BEGIN
    UPDATE rate_slots
       SET factor = greatest(0.05, 0.5 * CASE WHEN slowed_at IS NULL THEN 1.0
                        ELSE least(1.0, factor + 0.02 * extract(epoch FROM now_ts - slowed_at)) END),
           slowed_at = now_ts,
           throttles = throttles + 1,
           tat = greatest(tat, now_ts) + interval '1 second'
     WHERE key = p_key;
END
$$;
