-- Honest run states: a run whose records vanished ends `failed` with its reason; a cancelled
-- run ends every phase it had not finished (`cancelled`), so nothing stays `running`; and a
-- migration shows a paused import as such.

ALTER TABLE import_runs DROP CONSTRAINT import_runs_state_check;
ALTER TABLE import_runs ADD CONSTRAINT import_runs_state_check
    CHECK (state IN ('running', 'paused', 'cancelled', 'done', 'failed'));

ALTER TABLE import_phases DROP CONSTRAINT import_phases_state_check;
ALTER TABLE import_phases ADD CONSTRAINT import_phases_state_check
    CHECK (state IN ('waiting', 'running', 'done', 'skipped', 'cancelled', 'failed'));

ALTER TABLE im_migrations DROP CONSTRAINT im_migrations_state_check;
ALTER TABLE im_migrations ADD CONSTRAINT im_migrations_state_check
    CHECK (state IN ('draft', 'ready', 'importing', 'paused', 'syncing', 'done', 'archived'));

-- A cancelled run's phases that were left `running` or `waiting` by earlier releases.
UPDATE import_phases p SET state = 'cancelled', finished_at = coalesce(p.finished_at, r.finished_at, now())
  FROM import_runs r
 WHERE r.id = p.run_id AND r.state = 'cancelled' AND p.state IN ('running', 'waiting');

-- A record that needs an account or a group is checked against what the run imported of it
-- before it is sent (members of a group that was not imported fail here, not at the target).
CREATE INDEX staged_accounts_id ON staged_accounts (upload_id, account_id);
CREATE INDEX staged_groups_id ON staged_groups (upload_id, group_id);
