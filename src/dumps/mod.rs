//! Dumps: the old system's exports, read into canonical records and validated line by line.
//!
//! The contract is `canonical-dump-v1` (README, "Dump format"). Every finding points back into
//! the upload by file and 1-based line, with a stable code from [`RULES`].
//!
//! The flow: `uploads` (bytes to disk) → `jobs::Ingest` (`read` each line, `stage` it into the
//! `staged_*` tables with COPY) → `jobs::Validate` (`check`: the cross-record rules of
//! `validate` over the staged data). `imshift validate` runs `read` and `validate` on files.

pub mod bench;
pub mod canonical;
pub mod check;
pub mod container;
pub mod counts;
pub mod fixtures;
pub mod formats;
pub mod jobs;
pub mod read;
pub mod report;
pub mod stage;
pub mod uploads;
pub mod validate;

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the record: it is kept aside, never imported.
    Error,
    /// Reported; the record is still imported.
    Warning,
}

/// One problem, where it is, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the finding is about the whole file.
    pub line: u64,
    pub message: String,
    /// The offending text: the line as it is in the file (cut if very long). `imshift
    /// validate` prints it (as `line_text`) only for lines it converted, with `converted`.
    #[serde(rename = "line_text", skip_serializing_if = "String::is_empty")]
    pub excerpt: String,
    /// For a line of a vendor format: the canonical record(s) it was converted to, which the
    /// message's field names refer to. Boxed: findings travel in `Result`s and stay small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted: Option<Box<str>>,
}

/// The validation report: `imshift validate` prints it as JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub counts: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    pub accepted: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    /// Findings found but not listed, by rule: beyond [`Limits::findings_per_rule`] a rule's
    /// findings are only counted, so a hostile file cannot make the report huge.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_listed: BTreeMap<String, u64>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
            || self
                .not_listed
                .keys()
                .any(|c| severity_of(c) == Severity::Error)
    }
}

/// 1 MiB: far above any real record, far below what would hurt.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// 64 GiB of text out of one compressed upload.
pub const DEFAULT_MAX_EXPANDED_BYTES: u64 = 64 << 30;
/// JSON Lines compress 5–20 times; 200 is no export, only a bomb.
pub const DEFAULT_MAX_EXPANSION_RATIO: u64 = 200;
/// The ratio is judged only once this much has been expanded (small files compress oddly).
pub const RATIO_AFTER_BYTES: u64 = 64 << 20;
pub const DEFAULT_FINDINGS_PER_RULE: u64 = 10_000;

/// What reading one upload (or one `imshift validate` run) may cost, whatever its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A longer line (or CSV record) is the finding `line.too_long` and is skipped unread.
    pub max_line_bytes: usize,
    /// Bytes all the compressed streams of one upload may expand to, together.
    pub max_expanded_bytes: u64,
    /// Expanded bytes per compressed byte read, judged after [`Limits::ratio_after_bytes`].
    pub max_expansion_ratio: u64,
    pub ratio_after_bytes: u64,
    /// Findings kept (with their examples) per rule; the rest are counted.
    pub findings_per_rule: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_expanded_bytes: DEFAULT_MAX_EXPANDED_BYTES,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
            ratio_after_bytes: RATIO_AFTER_BYTES,
            findings_per_rule: DEFAULT_FINDINGS_PER_RULE,
        }
    }
}

/// Every rule, documented in one place: code, severity, and what to do about it.
pub const RULES: &[(&str, Severity, &str)] = &[
    ("file.unreadable", Severity::Error, "The file could not be read; check the path and permissions."),
    ("file.too_large", Severity::Error, "The file is larger than the limit; split it or raise the limit."),
    ("gzip.truncated", Severity::Error, "The gzip stream ends early or is corrupt; export or copy the file again. Lines before the damage were read."),
    ("zip.unsafe_name", Severity::Error, "A zip entry's name leaves the archive (`..` or an absolute path); it was skipped. Re-create the archive with plain names."),
    ("zip.corrupt", Severity::Error, "The zip archive cannot be read; re-create it."),
    ("decompress.too_large", Severity::Error, "The compressed upload expands to more than the limit (IMSHIFT_MAX_EXPANDED_BYTES, 64 GiB by default); nothing of it was staged. Split the dump into smaller uploads or raise the limit."),
    ("decompress.ratio", Severity::Error, "The compressed upload expands more than 200 times (IMSHIFT_MAX_EXPANSION_RATIO) past its first 64 MiB: no export compresses that well, a decompression bomb does; nothing of it was staged. Upload the real export."),
    ("line.too_long", Severity::Error, "The line (or CSV record) is longer than the limit (IMSHIFT_MAX_LINE_BYTES, 1 MiB by default); it was skipped without being read. Remove what bloats it (an embedded file?) or raise the limit."),
    ("utf8.invalid", Severity::Error, "The line is not UTF-8; export the dump as UTF-8."),
    ("json.syntax", Severity::Error, "The line is not one JSON object; each line must hold exactly one record."),
    ("record.kind_missing", Severity::Error, "The record has no `kind`; add one of account, friend, block, group, member, message, group_event, conversation."),
    ("record.kind_unknown", Severity::Error, "`kind` is not one the format defines; check the spelling."),
    ("field.missing", Severity::Error, "A required field is missing."),
    ("field.type", Severity::Error, "A field has the wrong type."),
    ("field.value", Severity::Error, "A field's value is not one the format allows."),
    ("field.unknown", Severity::Warning, "A field the format does not define; it is kept in `extra` (reported once per field name)."),
    ("id.invalid", Severity::Error, "An id must be 1 to 64 bytes with no control characters."),
    ("time.seconds", Severity::Warning, "A time looks like seconds (10 digits); it was multiplied by 1000. Export milliseconds to silence this."),
    ("account.duplicate", Severity::Warning, "The same account id appears twice; the later line wins."),
    ("group.duplicate", Severity::Warning, "The same group id appears twice; the later line wins."),
    ("message.duplicate", Severity::Warning, "Two messages have the same id, from, to and sent_at; the later line wins and the earlier is ignored."),
    ("ref.account_missing", Severity::Error, "The record names an account that is not in the dump; add the account, or remove the record."),
    ("ref.group_missing", Severity::Error, "The record names a group that is not in the dump; add the group, or remove the record."),
    ("group.owner_conflict", Severity::Error, "A member record says `owner` for someone other than the group's owner; a group has exactly one owner (`group.owner`)."),
    ("message.sender_not_member", Severity::Warning, "The sender was not a member of the group when the message was sent (by the dump's member records)."),
    ("csv.mapping", Severity::Warning, "How the CSV header's columns were read; check that each column landed on the right field."),
    ("target.user_id", Severity::Error, "The target IM does not accept this account id; map it to one that fits before importing."),
    ("target.user_id_case", Severity::Warning, "The target IM keeps account ids in lower case: this id changes case on the way, and two old ids that differ only in case become one account there. Nothing to fix unless the dumps hold such a pair."),
    ("target.group_id", Severity::Error, "The target IM does not accept this group id; map it to one that fits before importing."),
    ("target.group_type", Severity::Error, "The target IM cannot import this group type."),
    ("target.message_size", Severity::Error, "The message is larger than the target IM accepts."),
    ("target.group_order", Severity::Warning, "The target IM imports a group's history only with strictly increasing send times in seconds: messages that share a second are sent a second apart, in their order, so some land slightly later than they were sent. Nothing to fix unless exact seconds matter."),
];

pub fn severity_of(code: &str) -> Severity {
    RULES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, s, _)| *s)
        .unwrap_or(Severity::Error)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_codes_are_unique() {
        let mut codes: Vec<_> = super::RULES.iter().map(|r| r.0).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), super::RULES.len());
    }
}
