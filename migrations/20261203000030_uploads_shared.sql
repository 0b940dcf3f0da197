-- Uploads in the shared store: an upload's bytes wait in PostgreSQL, in the pieces they
-- arrived in (at most 8 MB each), so any console process may receive any piece and any
-- process may stage the upload. Staging deletes the pieces in its own transaction.

CREATE TABLE dump_upload_pieces (
    upload_id   uuid NOT NULL REFERENCES dump_uploads (id) ON DELETE CASCADE,
    -- Where the piece starts in the file; pieces are contiguous from 0 to received_bytes.
    byte_offset bigint NOT NULL CHECK (byte_offset >= 0),
    data        bytea NOT NULL,
    PRIMARY KEY (upload_id, byte_offset)
);
-- Dumps are mostly gzip or zip: trying to compress them again costs CPU for nothing.
ALTER TABLE dump_upload_pieces ALTER COLUMN data SET STORAGE EXTERNAL;

-- An upload that stops receiving bytes is discarded when this passes (the list shows it);
-- each piece moves it forward.
ALTER TABLE dump_uploads ADD COLUMN expires_at timestamptz;
UPDATE dump_uploads SET expires_at = updated_at + interval '7 days' WHERE state = 'uploading';
CREATE INDEX dump_uploads_expiry ON dump_uploads (expires_at) WHERE state = 'uploading';

-- When an ingest job gives up (its attempts are used up: a handler that keeps failing or
-- panicking, or a worker that keeps dying, e.g. killed for memory), its upload says so in the
-- same transaction, whichever process or path recorded the end, and its pieces go.
CREATE FUNCTION dump_ingest_gave_up() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    upload uuid := (NEW.payload->>'upload_id')::uuid;
    n      integer;
BEGIN
    UPDATE dump_uploads
       SET state = 'failed',
           error = 'Staging stopped after ' || NEW.attempts || ' attempt'
                   || CASE WHEN NEW.attempts = 1 THEN '' ELSE 's' END || ': '
                   || coalesce(NEW.last_error, 'no reason was recorded')
                   || '. Nothing of this upload was staged; fix the cause (or raise the limit) and upload the file again.',
           ingest_finished_at = now(), updated_at = now()
     WHERE id = upload AND state IN ('queued', 'ingesting');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        DELETE FROM dump_upload_pieces WHERE upload_id = upload;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_dump_ingest_gave_up
    AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM 'failed' AND NEW.kind = 'dump.ingest')
    EXECUTE FUNCTION dump_ingest_gave_up();
