//! Import runs as the browser and the REST API see them.

use super::{MigrationId, RunId, UploadId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// Where an import run stands (`import_runs.state`).
    RunState {
        Running => "running", "Running";
        Paused => "paused", "Paused";
        Cancelled => "cancelled", "Cancelled";
        Done => "done", "Finished";
        Failed => "failed", "Failed";
    }
);

impl RunState {
    /// Running or paused: the run may still send.
    pub fn live(self) -> bool {
        matches!(self, RunState::Running | RunState::Paused)
    }
}

string_enum!(
    /// Where one phase of a run stands (`import_phases.state`).
    PhaseState {
        Waiting => "waiting", "Waiting";
        Running => "running", "Running";
        Done => "done", "Done";
        Skipped => "skipped", "Skipped";
        Cancelled => "cancelled", "Cancelled";
        Failed => "failed", "Failed";
    }
);

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
    /// Of `records`, those an earlier run of the migration sent (a `failed_or_new` relaunch
    /// leaves them out).
    #[serde(default)]
    pub sent_before: i64,
}

/// What the migration's earlier runs did with what is staged now, so a launch under them says
/// it would send everything again and offers to send only what failed or is new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EarlierRuns {
    /// The newest finished run.
    pub last_run: RunId,
    /// done, failed or cancelled.
    pub last_state: RunState,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_finished_at: Option<OffsetDateTime>,
    /// Runs of this migration before this launch.
    pub runs: i64,
    /// Staged records that an earlier run sent.
    pub sent_before: i64,
    /// Staged records that failed, were skipped or are new: what `failed_or_new` sends.
    pub failed_or_new: i64,
    /// The quotas' time for `failed_or_new` (the preflight's `estimate_secs` is for `all`).
    pub failed_or_new_secs: f64,
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
    /// Of `records`, those the target's API takes (the rest are skipped or handed over).
    #[serde(default)]
    pub by_api: i64,
    /// What goes to the target's staff as files instead of its API, when it takes history so.
    #[serde(default)]
    pub hand_over: Option<PreflightHandOver>,
    /// Staged messages whose body links to a file on the old system's storage (images, voice,
    /// video, files): sent as links, not copied.
    #[serde(default)]
    pub media_links: i64,
    /// Seconds the quotas make the whole run take (independent phases overlap).
    pub estimate_secs: f64,
    /// Worth reading before launching (records kept aside by validation, warnings).
    pub warnings: Vec<String>,
    /// Why Launch is not possible now.
    pub blockers: Vec<String>,
    /// Set when an earlier run of the migration exists: Launch then takes a choice
    /// (`resend`: `all` or `failed_or_new`).
    #[serde(default)]
    pub earlier: Option<EarlierRuns>,
}

/// The records a target's staff import from files imshift writes, instead of its API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PreflightHandOver {
    /// What the files are, as the target's hand-over names them.
    pub label: String,
    /// What the files are for and what to do with them, in the target's words.
    #[serde(default)]
    pub note: String,
    pub records: i64,
    /// The phases whose records they carry.
    pub phases: Vec<String>,
}

/// Why some of a phase's records were skipped, and how many.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SkipReason {
    pub reason: String,
    pub count: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PhaseStatus {
    pub phase: String,
    pub label: String,
    /// waiting, running, done, skipped, cancelled or failed.
    pub state: PhaseState,
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
    /// Working time (the run's pauses left out).
    pub elapsed_secs: f64,
    /// For what is pending: at the rate measured in this phase once there is one, before that
    /// at the quota.
    pub secs_left: f64,
    /// How `secs_left` was figured: `measured` (this phase's own rate), `scaled` (not started
    /// or too early to measure: the quota's time, times how much slower than their quotas the
    /// run's measured phases worked), `quota` (nothing measured yet) or empty (nothing left).
    #[serde(default)]
    pub estimate: String,
    /// The preflight's time for this phase.
    #[serde(default)]
    pub preflight_secs: f64,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// Labels of the phases that ran (or run) at the same time as this one.
    #[serde(default)]
    pub alongside: Vec<String>,
    /// Why records were skipped, per reason (a skipped phase's reason is its note).
    #[serde(default)]
    pub skip_reasons: Vec<SkipReason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportRun {
    pub id: RunId,
    pub migration_id: MigrationId,
    /// running, paused, cancelled, done or failed.
    pub state: RunState,
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
    /// What the preflight said the run would take.
    #[serde(default)]
    pub preflight_secs: f64,
    /// For a finished run: how far the preflight was off, in percent of its figure
    /// (positive: the run took longer).
    #[serde(default)]
    pub preflight_error_pct: Option<f64>,
    /// Tasks still waiting on answers from the target. A paused or cancelled run goes on
    /// counting until they are in: `pausing` / `cancelling` until this is 0.
    #[serde(default)]
    pub in_flight: i64,
    /// `pausing` or `cancelling` while answers are still coming in after Pause or Cancel.
    #[serde(default)]
    pub settling: Option<String>,
    /// For a launch under an earlier run: `all` or `failed_or_new`.
    #[serde(default)]
    pub resend: Option<String>,
    /// What of this run's records goes to the target's staff as files instead of its API
    /// (they are counted as skipped), when the target takes history that way.
    #[serde(default)]
    pub hand_over: Option<PreflightHandOver>,
}

/// A run's throughput over its whole length, in buckets of `bucket_secs`: per API, requests
/// (and throttles, and records recorded as failed) against the API's quota.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportThroughput {
    pub run: RunId,
    /// Unix second of the first bucket.
    pub start: i64,
    /// Seconds from `start` to the end of the last bucket.
    pub span_secs: i64,
    pub bucket_secs: i64,
    pub series: Vec<ThroughputSeries>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ThroughputSeries {
    pub api: String,
    /// The quota in force now (requests per second).
    pub qps: f64,
    pub requests: i64,
    pub throttled: i64,
    pub failed: i64,
    /// Buckets with something in them, in order.
    pub points: Vec<ThroughputPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ThroughputPoint {
    /// Seconds from `start`.
    pub at: i64,
    pub requests: i64,
    pub throttled: i64,
    pub failed: i64,
}

/// A record the target refused, with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportFailure {
    pub phase: String,
    pub upload_id: UploadId,
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

/// One old id and what the target made of it, where the target chose its own (a
/// team's numeric id, an account id kept in lower case).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IdMapEntry {
    /// `account` or `group`.
    pub kind: String,
    pub old_id: String,
    pub new_id: String,
    /// The run that recorded it.
    pub run_id: RunId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IdMapPage {
    pub entries: Vec<IdMapEntry>,
    /// How many ids the migration's map holds of this kind (or of every kind).
    pub total: i64,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

/// A build of hand-over files, as the Import tab and REST show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HandOverBuild {
    pub id: uuid::Uuid,
    /// `none` (never built), `building`, `ready` or `failed`.
    pub state: String,
    pub error: Option<String>,
    /// What the files are and what to do with them, in the target's words.
    pub label: String,
    pub note: String,
    /// The target's manifest (its `files` are what can be downloaded).
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub manifest: Option<serde_json::Value>,
    pub written: i64,
    pub kept_aside: i64,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}
