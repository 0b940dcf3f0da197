-- Findings past the per-rule cap of one upload (IMSHIFT_FINDINGS_PER_RULE, 10,000 by default):
-- counted here instead of stored one row each in dump_findings, so a small hostile file cannot
-- write millions of rows. The report adds these counts to each rule and says how many were
-- not kept. Written in the ingest's transaction; an upload's rows go when it is discarded.
CREATE TABLE dump_findings_not_kept (
    upload_id    uuid NOT NULL,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    code         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('error', 'warning')),
    count        bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (upload_id, code)
);
CREATE INDEX dump_findings_not_kept_migration ON dump_findings_not_kept (migration_id);
