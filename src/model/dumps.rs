//! Dumps as the browser and the REST API see them: uploads, the validation report, findings.

use super::{MigrationId, UploadId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

string_enum!(
    /// Where an upload stands (`dump_uploads.state`).
    UploadState {
        Uploading => "uploading", "uploading";
        Queued => "queued", "queued";
        Ingesting => "ingesting", "ingesting";
        Staged => "staged", "staged";
        Failed => "failed", "failed";
        Discarded => "discarded", "discarded";
    }
);

string_enum!(
    /// Where the dumps report stands; `pending` and `stale` are figured, not stored.
    ReportState {
        Pending => "pending", "not checked yet";
        Validating => "validating", "checking across records…";
        Current => "current", "up to date";
        Stale => "stale", "a file is being staged…";
        Failed => "failed", "check failed";
    }
);

/// One uploaded file and where its ingest stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Upload {
    pub id: UploadId,
    pub migration_id: MigrationId,
    pub file_name: String,
    /// What the uploader said: `auto`, or a format's id (`GET /api/v1/dump-formats`).
    pub format: String,
    /// The same in words ("Tell from the content", "imshift canonical JSON Lines").
    #[serde(default)]
    pub format_label: String,
    /// add: joins the staged data; replace: discards the earlier uploads once staged.
    pub mode: String,
    pub size_bytes: i64,
    pub received_bytes: i64,
    /// uploading, queued, ingesting, staged, failed or discarded.
    pub state: UploadState,
    /// Ingest progress: bytes of the file read, records staged, lines rejected.
    pub read_bytes: i64,
    pub records: i64,
    pub rejected: i64,
    /// By kind, and messages by conversation type and body type (`message.c2c`, `message.text`).
    pub counts: BTreeMap<String, i64>,
    /// Why the upload could not be ingested at all.
    pub error: Option<String>,
    /// The files inside (one, or a zip's entries) and the format each was read as.
    pub files: Vec<UploadFile>,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub ingest_started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub ingest_finished_at: Option<OffsetDateTime>,
    /// While uploading: when the upload is discarded unless more bytes arrive.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    /// While uploading: when the last piece arrived (or the upload was announced). The page
    /// calls an upload interrupted only when this is a while ago.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub received_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UploadFile {
    pub name: String,
    pub format: String,
    /// The format in words.
    #[serde(default)]
    pub format_label: String,
}

/// A format an upload may name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DumpFormat {
    /// What `format` takes: `auto`, `canonical`, `csv`, or a vendor export's id.
    pub id: String,
    pub label: String,
}

/// Start an upload (the bytes follow with `PUT …/uploads/{id}?offset=`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewUpload {
    pub file_name: String,
    pub size_bytes: i64,
    /// `auto` (default) or a format's id (`GET /api/v1/dump-formats`).
    #[serde(default)]
    pub format: Option<String>,
    /// add (default) or replace.
    #[serde(default)]
    pub mode: Option<String>,
}

/// One rule that found something, with the first examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RuleSummary {
    pub code: String,
    /// error (the record is kept aside) or warning (reported, still imported).
    pub severity: String,
    /// Every finding of the rule, those not kept included.
    pub count: i64,
    /// Findings counted but not stored (past the per-rule cap of an upload): not in the list
    /// or the CSV.
    #[serde(default)]
    pub not_kept: i64,
    /// What the rule means and how to fix it.
    pub explanation: String,
    pub examples: Vec<FindingRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct FindingRow {
    pub id: i64,
    pub code: String,
    pub severity: String,
    pub file: String,
    /// 1-based; 0 for a finding about the whole file.
    pub line: i64,
    pub message: String,
    /// The offending text: the line as it is in the file (cut if very long).
    pub excerpt: String,
    /// For a line of a vendor format (a vendor's export, CSV): the canonical record it was
    /// converted to, which the message's field names refer to. Absent for canonical lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", sqlx(default))]
    pub converted: Option<String>,
}

/// A page of findings; pass `next` as `after` for the following page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FindingsPage {
    pub findings: Vec<FindingRow>,
    pub next: Option<i64>,
}

/// The migration's validation report over all its staged uploads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DumpReport {
    /// Where the report stands: `pending` (nothing checked yet), `validating` (a check is
    /// queued or running; the numbers are from the last one), `current` (the numbers are the
    /// staged data's), `stale` (an upload is being staged since; a check follows it) or
    /// `failed` (the check gave up; `error` says why). Scripts poll until `current` or `failed`.
    pub state: ReportState,
    /// Why the check failed (state `failed` only).
    #[serde(default)]
    pub error: Option<String>,
    /// Records read, by kind and by message conversation and body type.
    pub counts: BTreeMap<String, i64>,
    /// Records that will be imported, by kind.
    pub accepted: BTreeMap<String, i64>,
    /// Records kept aside with an error, by kind (`unreadable_lines`: lines that are no record).
    pub rejected: BTreeMap<String, i64>,
    /// Records a later line replaced (duplicates), by kind.
    pub superseded: BTreeMap<String, i64>,
    pub errors: i64,
    pub warnings: i64,
    pub rules: Vec<RuleSummary>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub validated_at: Option<OffsetDateTime>,
}
