//! Import runs as the browser and the REST API see them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One phase of the preflight: what it will send and how long the quota makes it take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PreflightPhase {
    pub phase: String,
    pub label: String,
    /// The target API, or empty when the target cannot take this kind of record.
    pub api: String,
    pub records: i64,
    /// Requests it takes (records over the batch size, at least one per owner or group).
    pub requests: i64,
    pub qps: f64,
    pub batch: i64,
    pub secs: f64,
    pub depends_on: Vec<String>,
    /// Why the phase is skipped on this target.
    pub note: Option<String>,
}

/// What Launch will do, before it does it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Preflight {
    pub target: String,
    /// The API address the keys point at (a sandbox shows its local address).
    pub base_url: String,
    pub sandbox: bool,
    pub phases: Vec<PreflightPhase>,
    pub records: i64,
    /// Seconds the quotas make the whole run take (independent phases overlap).
    pub estimate_secs: f64,
    /// Worth reading before launching (records kept aside by validation, warnings).
    pub warnings: Vec<String>,
    /// Why Launch is not possible now.
    pub blockers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PhaseStatus {
    pub phase: String,
    pub label: String,
    /// waiting, running, done or skipped.
    pub state: String,
    pub api: String,
    pub note: Option<String>,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    pub pending: i64,
    pub requests: i64,
    /// Throttle answers from the target.
    pub throttled: i64,
    /// The quota in force now (requests per second).
    pub qps: f64,
    /// Requests per second achieved, over the phase's working time.
    pub rate: f64,
    pub elapsed_secs: f64,
    /// At the quota, for what is pending.
    pub secs_left: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportRun {
    pub id: Uuid,
    pub migration_id: Uuid,
    /// running, paused, cancelled or done.
    pub state: String,
    pub target: String,
    /// Why the run paused itself, in words.
    pub error: Option<String>,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// Working time, pauses excluded.
    pub elapsed_secs: f64,
    pub secs_left: f64,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    pub pending: i64,
    pub phases: Vec<PhaseStatus>,
}

/// A record the target refused, with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportFailure {
    pub phase: String,
    pub upload_id: Uuid,
    pub ord: i32,
    pub file: String,
    pub line: i64,
    /// The provider's error code, when it gave one.
    pub code: Option<i64>,
    pub message: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The start of the staged record.
    pub record: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportFailuresPage {
    pub failures: Vec<ImportFailure>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}
