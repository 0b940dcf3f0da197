-- Dumps: uploads, the staged records they hold (one table per kind), what validation found,
-- and the records kept aside. Staged rows carry no foreign keys: they are loaded with COPY by
-- the million, and a per-row trigger would halve the rate; uploads delete their own rows.

CREATE TABLE dump_uploads (
    id            uuid PRIMARY KEY,
    migration_id  uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    -- Orders uploads: where two records collide, the later upload wins.
    seq           bigserial,
    file_name     text NOT NULL,
    -- What the uploader said (auto = tell from the content).
    format        text NOT NULL DEFAULT 'auto'
                  CHECK (format IN ('auto', 'canonical', 'netease', 'easemob', 'csv')),
    -- replace: once this upload is staged, the migration's earlier uploads are discarded.
    mode          text NOT NULL DEFAULT 'add' CHECK (mode IN ('add', 'replace')),
    size_bytes    bigint NOT NULL,
    received_bytes bigint NOT NULL DEFAULT 0,
    state         text NOT NULL DEFAULT 'uploading'
                  CHECK (state IN ('uploading', 'queued', 'ingesting', 'staged', 'failed', 'discarded')),
    -- Ingest progress: bytes of the upload read so far, and records staged.
    read_bytes    bigint NOT NULL DEFAULT 0,
    records       bigint NOT NULL DEFAULT 0,
    rejected      bigint NOT NULL DEFAULT 0,
    -- Counts by kind, conversation type and body type, kept as data arrives.
    counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
    error         text,
    -- The target whose rules the messages were checked against while staging ('' = none).
    verified_for  text,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    ingest_started_at  timestamptz,
    ingest_finished_at timestamptz
);
CREATE INDEX dump_uploads_migration ON dump_uploads (migration_id, seq);

-- The files inside an upload (one, or the entries of a zip), with the format each was read as.
CREATE TABLE dump_files (
    upload_id uuid NOT NULL REFERENCES dump_uploads (id) ON DELETE CASCADE,
    file_no   integer NOT NULL,
    name      text NOT NULL,
    format    text NOT NULL,
    PRIMARY KEY (upload_id, file_no)
);

-- Every staged row: its upload, its ordinal in the upload (`ord`, unique across kinds), and
-- the file and 1-based line it came from; then the columns plans and checks use, and the
-- canonical record itself.
CREATE TABLE staged_accounts (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    account_id text NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
CREATE TABLE staged_friends (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    owner text NOT NULL, friend text NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
-- Imports take one owner's friends in one request.
CREATE INDEX staged_friends_owner ON staged_friends (upload_id, owner);
CREATE TABLE staged_blocks (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    owner text NOT NULL, blocked text NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
CREATE INDEX staged_blocks_owner ON staged_blocks (upload_id, owner);
CREATE TABLE staged_groups (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    group_id text NOT NULL, owner text NOT NULL, group_type text NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
CREATE TABLE staged_members (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    group_id text NOT NULL, account text NOT NULL, role text NOT NULL, joined_at bigint,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
CREATE INDEX staged_members_group ON staged_members (upload_id, group_id);
CREATE TABLE staged_messages (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    msg_id text NOT NULL, conv text NOT NULL, from_id text NOT NULL, to_id text NOT NULL,
    sent_at bigint NOT NULL,
    -- 64-bit hash of the message identity (id, from, to, sent_at): duplicates are found by it.
    ident bigint NOT NULL,
    body_bytes integer NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
-- Group history is imported group by group in time order.
CREATE INDEX staged_messages_group_time ON staged_messages (upload_id, to_id, sent_at)
    WHERE conv = 'group';
CREATE TABLE staged_group_events (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    group_id text NOT NULL, actor text, target text, at bigint NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);
CREATE TABLE staged_conversations (
    upload_id uuid NOT NULL, ord integer NOT NULL, file_no integer NOT NULL, line bigint NOT NULL,
    owner text NOT NULL, conv text NOT NULL, peer text NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (upload_id, ord)
);

-- Staged records that must not be imported, and why: an error found across records, or a
-- duplicate that a later line replaced. Lines that could not be read at all are never staged;
-- their finding keeps the line itself.
CREATE TABLE staged_holds (
    upload_id uuid NOT NULL,
    ord       integer NOT NULL,
    kind      text NOT NULL,
    code      text NOT NULL,
    PRIMARY KEY (upload_id, ord)
);

-- Every staged message's identity hash and ordinal, sorted, in 256 parts by the hash's top
-- byte: duplicates across millions of messages are found by merging these few rows per part
-- instead of grouping the wide message table (12 bytes per message: ident i64, ord i32, BE).
CREATE TABLE staged_idents (
    upload_id uuid NOT NULL,
    part      smallint NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (upload_id, part)
);

-- Messages that staging could not yet vouch for (an account, group or membership they name was
-- not known when they were read, or they broke a rule): the validate job checks these again.
-- Every other message was checked while staging against facts that only grow as uploads are
-- added; a discard or a changed group or membership makes the validate job check them all.
CREATE TABLE staged_pending (
    upload_id uuid NOT NULL,
    ord       integer NOT NULL,
    PRIMARY KEY (upload_id, ord)
);

-- What validation found. `scope` line = found reading one line (belongs to its upload);
-- cross = found across the migration's staged records (recomputed after every change).
CREATE TABLE dump_findings (
    id           bigserial PRIMARY KEY,
    migration_id uuid NOT NULL REFERENCES im_migrations (id) ON DELETE CASCADE,
    upload_id    uuid NOT NULL,
    scope        text NOT NULL CHECK (scope IN ('line', 'cross')),
    -- The staged record a cross finding is about (line findings are about unstaged lines).
    kind         text,
    ord          integer,
    code         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('error', 'warning')),
    file         text NOT NULL,
    line         bigint NOT NULL,
    message      text NOT NULL,
    -- The offending text (for a line that could not be read, the whole line, up to 64 KB).
    excerpt      text NOT NULL DEFAULT ''
);
CREATE INDEX dump_findings_migration ON dump_findings (migration_id, id);
CREATE INDEX dump_findings_code ON dump_findings (migration_id, code, id);
CREATE INDEX dump_findings_upload ON dump_findings (upload_id, scope);

-- The migration's validation report, kept current by the validate job so that pages never
-- count millions of rows.
CREATE TABLE dump_reports (
    migration_id uuid PRIMARY KEY REFERENCES im_migrations (id) ON DELETE CASCADE,
    -- validating: a check is queued or running; current: the numbers below are up to date.
    state        text NOT NULL DEFAULT 'validating' CHECK (state IN ('validating', 'current')),
    -- Set when staged data went away (a discard or a replace): check every message again.
    full_recheck boolean NOT NULL DEFAULT false,
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    accepted     jsonb NOT NULL DEFAULT '{}'::jsonb,
    rejected     jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Records a later line replaced (duplicates): staged, never imported.
    superseded   jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- [{code, severity, count}] over every finding of the migration.
    rules        jsonb NOT NULL DEFAULT '[]'::jsonb,
    validated_at timestamptz,
    -- Records and keys per import phase, counted once per validation for the preflight.
    import_sizes jsonb,
    sizes_for    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
