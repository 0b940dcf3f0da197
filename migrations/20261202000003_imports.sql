-- Imports: a run moves a migration's staged records into the target IM, phase by phase.
-- Its tasks are jobs (scope = the run id); every staged record's outcome is a result row.

CREATE TABLE import_runs (
    id           uuid PRIMARY KEY,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    state        text NOT NULL DEFAULT 'running'
                 CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
    target       text NOT NULL,
    -- The preflight the run was launched with: phases, record counts, estimate, warnings.
    plan         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Why the run paused itself (wrong keys, the target refusing us), in words.
    error        text,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- Seconds spent paused, so the duration counts only working time.
    paused_secs  double precision NOT NULL DEFAULT 0,
    paused_at    timestamptz
);
-- One run at a time per migration.
CREATE UNIQUE INDEX import_runs_active ON import_runs (migration_id) WHERE state IN ('running', 'paused');
CREATE INDEX import_runs_migration ON import_runs (migration_id, created_at DESC);

CREATE TABLE import_phases (
    run_id      uuid NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    phase       text NOT NULL,
    position    integer NOT NULL,
    depends_on  text[] NOT NULL DEFAULT '{}',
    -- The target API this phase calls, and its quota when the phase started.
    api         text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'running', 'done', 'skipped')),
    -- Why a phase does nothing on this target.
    note        text,
    total       bigint NOT NULL DEFAULT 0,
    sent        bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    requests    bigint NOT NULL DEFAULT 0,
    throttled   bigint NOT NULL DEFAULT 0,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (run_id, phase)
);

-- What happened to each staged record in each phase: what was sent (the fields imshift derived,
-- such as MsgSeq, MsgRandom and the send time), when, and the target's answer.
CREATE TABLE import_results (
    run_id    uuid NOT NULL,
    phase     text NOT NULL,
    upload_id uuid NOT NULL,
    ord       integer NOT NULL,
    state     text NOT NULL CHECK (state IN ('sent', 'failed', 'skipped')),
    sent      jsonb,
    -- The provider's error code and what it means, for a failed or skipped record.
    code      bigint,
    message   text,
    attempts  integer NOT NULL DEFAULT 1,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, phase, upload_id, ord)
);
CREATE INDEX import_results_failed ON import_results (run_id, phase, code) WHERE state = 'failed';

-- Phase counters follow the results, one statement at a time, so the dashboard never counts.
CREATE FUNCTION import_results_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE import_phases p
           SET sent = p.sent + c.sent, failed = p.failed + c.failed, skipped = p.skipped + c.skipped
          FROM (SELECT run_id, phase,
                       count(*) FILTER (WHERE state = 'sent') AS sent,
                       count(*) FILTER (WHERE state = 'failed') AS failed,
                       count(*) FILTER (WHERE state = 'skipped') AS skipped
                  FROM new_rows GROUP BY run_id, phase) c
         WHERE p.run_id = c.run_id AND p.phase = c.phase;
    ELSE
        UPDATE import_phases p
           SET sent = p.sent + c.sent, failed = p.failed + c.failed, skipped = p.skipped + c.skipped
          FROM (SELECT run_id, phase, sum(sent) AS sent, sum(failed) AS failed, sum(skipped) AS skipped
                  FROM (SELECT run_id, phase,
                               (state = 'sent')::int AS sent, (state = 'failed')::int AS failed,
                               (state = 'skipped')::int AS skipped FROM new_rows
                        UNION ALL
                        SELECT run_id, phase,
                               -(state = 'sent')::int, -(state = 'failed')::int,
                               -(state = 'skipped')::int FROM old_rows) d
                 GROUP BY run_id, phase) c
         WHERE p.run_id = c.run_id AND p.phase = c.phase;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER import_results_insert AFTER INSERT ON import_results
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION import_results_counted();
CREATE TRIGGER import_results_update AFTER UPDATE ON import_results
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION import_results_counted();
