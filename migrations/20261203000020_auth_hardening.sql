-- Sign-in hardening: throttling reserved atomically, failed sign-ins audited once per window,
-- and API tokens that may or may not mint tokens.

-- One row per failure was unbounded and counted outside the password check's transaction.
DROP TABLE login_failures;

-- One bucket per email ('email:<lower email>') and per client address ('ip:<address>').
-- An attempt is reserved here (failures + 1, under the row's lock) before the password is
-- checked; a success clears the email's bucket and gives the address its attempt back.
CREATE TABLE login_throttle (
    key      text PRIMARY KEY,
    failures integer NOT NULL DEFAULT 0,
    last_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_last_at ON login_throttle (last_at);

-- Failed sign-ins not yet written to the audit log, per email and address: the audit log gets
-- at most one row per pair and window, saying how many attempts it stands for.
CREATE TABLE login_failure_reports (
    email       text NOT NULL,
    ip          text NOT NULL DEFAULT '',
    wrong       integer NOT NULL DEFAULT 0,
    throttled   integer NOT NULL DEFAULT 0,
    first_at    timestamptz,
    reported_at timestamptz,
    last_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email, ip)
);
CREATE INDEX login_failure_reports_last_at ON login_failure_reports (last_at);

-- A token made by a token may not make more unless its maker said so.
ALTER TABLE api_tokens ADD COLUMN can_mint_tokens boolean NOT NULL DEFAULT false;
