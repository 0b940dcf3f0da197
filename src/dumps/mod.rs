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
    /// The offending text, for the console; not part of `imshift validate`'s JSON.
    #[serde(skip)]
    pub excerpt: String,
}

/// The validation report: `imshift validate` prints it as JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub counts: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    pub accepted: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Every rule, documented in one place: code, severity, and what to do about it.
pub const RULES: &[(&str, Severity, &str)] = &[
    ("file.unreadable", Severity::Error, "The file could not be read; check the path and permissions."),
    ("file.too_large", Severity::Error, "The file is larger than the limit; split it or raise the limit."),
    ("gzip.truncated", Severity::Error, "The gzip stream ends early or is corrupt; export or copy the file again. Lines before the damage were read."),
    ("zip.unsafe_name", Severity::Error, "A zip entry's name leaves the archive (`..` or an absolute path); it was skipped. Re-create the archive with plain names."),
    ("zip.corrupt", Severity::Error, "The zip archive cannot be read; re-create it."),
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
    ("target.group_id", Severity::Error, "The target IM does not accept this group id; map it to one that fits before importing."),
    ("target.group_type", Severity::Error, "The target IM cannot import this group type."),
    ("target.message_size", Severity::Error, "The message is larger than the target IM accepts."),
    ("target.group_order", Severity::Warning, "Tencent IM imports a group's history only with strictly increasing send times in seconds: messages that share a second are sent a second apart, in their order, so some land slightly later than they were sent. Nothing to fix unless exact seconds matter."),
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
