-- The user's own line beside the canonical record it became. For a vendor format (Easemob,
-- NetEase, CSV) a staged record keeps the line it was converted from (cut to 4 KB), so a
-- finding about the record shows the line as it is in the user's file; canonical lines are
-- their record already and keep nothing more (raw is NULL).
ALTER TABLE staged_accounts ADD COLUMN raw text;
ALTER TABLE staged_friends ADD COLUMN raw text;
ALTER TABLE staged_blocks ADD COLUMN raw text;
ALTER TABLE staged_groups ADD COLUMN raw text;
ALTER TABLE staged_members ADD COLUMN raw text;
ALTER TABLE staged_messages ADD COLUMN raw text;
ALTER TABLE staged_group_events ADD COLUMN raw text;
ALTER TABLE staged_conversations ADD COLUMN raw text;

-- A finding's `excerpt` is the user's line; `converted` the canonical record it was read as,
-- when the line was converted (NULL for canonical lines and for findings about a whole file).
ALTER TABLE dump_findings ADD COLUMN converted text;
