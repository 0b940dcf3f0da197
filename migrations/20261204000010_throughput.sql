-- What an import run did, second by second, and what a relaunch chose to send again.

-- Requests (and throttle answers, and records recorded as failed) per API and per second of a
-- run, summed by the runner at each flush of its results (one upsert per flush), for the
-- Import tab's throughput chart.
CREATE TABLE import_throughput (
    run_id    uuid NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    api       text NOT NULL,
    -- Unix second the requests were answered in.
    sec       bigint NOT NULL,
    requests  integer NOT NULL DEFAULT 0,
    throttled integer NOT NULL DEFAULT 0,
    failed    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, api, sec)
);

-- The paused seconds of the run when a phase started and when it ended, so a phase's working
-- time (and the rate measured over it) leaves the run's pauses out.
ALTER TABLE import_phases ADD COLUMN paused_start double precision;
ALTER TABLE import_phases ADD COLUMN paused_end double precision;

CREATE FUNCTION import_phases_paused() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.started_at IS NOT NULL AND OLD.started_at IS NULL THEN
        NEW.paused_start := (SELECT paused_secs FROM import_runs WHERE id = NEW.run_id);
    END IF;
    IF NEW.finished_at IS NOT NULL AND OLD.finished_at IS NULL THEN
        NEW.paused_end := (SELECT paused_secs FROM import_runs WHERE id = NEW.run_id);
    ELSIF NEW.finished_at IS NULL THEN
        NEW.paused_end := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER import_phases_paused BEFORE UPDATE OF started_at, finished_at ON import_phases
    FOR EACH ROW EXECUTE FUNCTION import_phases_paused();

-- A launch under a finished run: send everything again (`all`) or only what failed or is new
-- (`failed_or_new`). NULL for a first run.
ALTER TABLE import_runs ADD COLUMN resend text CHECK (resend IN ('all', 'failed_or_new'));

-- Records an earlier run of the migration sent, left out of a `failed_or_new` run: its phases'
-- rows skip them (Phase::from_where) while the run is running or paused, and each has a
-- `skipped` result in the run saying which run sent it.
CREATE TABLE import_sent_before (
    run_id    uuid NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    phase     text NOT NULL,
    upload_id uuid NOT NULL,
    ord       integer NOT NULL,
    PRIMARY KEY (upload_id, ord, phase, run_id)
);
CREATE INDEX import_sent_before_run ON import_sent_before (run_id);

-- Skipped records of a run by phase and why, for the reasons shown beside every skipped count.
CREATE INDEX import_results_skipped ON import_results (run_id, phase, message) WHERE state = 'skipped';
