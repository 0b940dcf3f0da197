-- The validation report says where it stands, so a script can wait for it: `validating`, then
-- `current`, or `failed` with why (a validate job that gives up no longer leaves it
-- `validating` forever). `pending` (nothing checked yet) and `stale` (an upload is being staged
-- since) are told when the report is read.

ALTER TABLE dump_reports DROP CONSTRAINT dump_reports_state_check;
ALTER TABLE dump_reports ADD CONSTRAINT dump_reports_state_check
    CHECK (state IN ('validating', 'current', 'failed'));

ALTER TABLE dump_reports
    -- Why the last validation failed (state `failed`).
    ADD COLUMN error text,
    -- Bumped by every change of the staged data (each queued validation): a validation that
    -- began before the last change ends `validating`, not `current`, as the next one follows.
    ADD COLUMN generation bigint NOT NULL DEFAULT 0;

-- Cross-record findings past the per-rule cap are counted too (by the validate job, per upload
-- they are about); they are rewritten with every validation, line findings never are.
ALTER TABLE dump_findings_not_kept
    ADD COLUMN scope text NOT NULL DEFAULT 'line' CHECK (scope IN ('line', 'cross'));
ALTER TABLE dump_findings_not_kept DROP CONSTRAINT dump_findings_not_kept_pkey;
ALTER TABLE dump_findings_not_kept ADD PRIMARY KEY (upload_id, scope, code);

-- An upload's records per import phase and key (owner, group, sender...), counted once by the
-- first validation that sees the upload. Each validation adds them up across uploads, less the
-- records it kept aside, and stores the phases' sizes with the report: the Import tab's
-- preflight reads those instead of counting millions of staged rows.
CREATE TABLE staged_phase_keys (
    upload_id uuid NOT NULL,
    phase     text NOT NULL,
    key       text NOT NULL,
    records   bigint NOT NULL,
    PRIMARY KEY (upload_id, phase, key)
);
ALTER TABLE dump_uploads ADD COLUMN phase_keys_counted boolean NOT NULL DEFAULT false;

-- When a validate job gives up (its attempts used up, or a failure it cannot retry), the
-- report says so and why, in the same transaction, unless another validation is on its way.
CREATE FUNCTION dump_validate_gave_up() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dump_reports
       SET state = 'failed',
           error = 'Checking the staged dumps stopped after ' || NEW.attempts || ' attempt'
                   || CASE WHEN NEW.attempts = 1 THEN '' ELSE 's' END || ': '
                   || coalesce(NEW.last_error, 'no reason was recorded')
                   || '. The numbers shown are from the last check that finished; fix the cause, then upload or discard a file to check again.',
           updated_at = now()
     WHERE migration_id = NEW.migration_id AND state = 'validating'
       AND NOT EXISTS (SELECT 1 FROM jobs j
                        WHERE j.kind = 'dump.validate' AND j.migration_id = NEW.migration_id
                          AND j.state IN ('queued', 'running') AND j.id <> NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_dump_validate_gave_up
    AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM 'failed' AND NEW.kind = 'dump.validate')
    EXECUTE FUNCTION dump_validate_gave_up();

-- Data staged by an earlier release is checked once more, which counts its uploads' keys.
UPDATE dump_reports r SET state = 'validating', generation = r.generation + 1, updated_at = now()
 WHERE EXISTS (SELECT 1 FROM dump_uploads u WHERE u.migration_id = r.migration_id AND u.state = 'staged');
INSERT INTO jobs (kind, migration_id)
SELECT 'dump.validate', r.migration_id FROM dump_reports r
 WHERE r.state = 'validating'
   AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'dump.validate'
                      AND j.migration_id = r.migration_id AND j.state = 'queued');
