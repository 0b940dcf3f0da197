//! A migration: the unit a team works on. Shared by the UI and the server.

use super::{MigrationId, RunId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// How the old app is retired.
    Strategy {
        ForcedUpgrade => "forced_upgrade", "Forced upgrade";
        Coexistence => "coexistence", "Coexistence (two-way sync)";
    }
);

string_enum!(
    /// Where a migration stands.
    MigrationState {
        Draft => "draft", "Draft";
        Ready => "ready", "Keys set";
        Importing => "importing", "Importing";
        Paused => "paused", "Import paused";
        Syncing => "syncing", "Syncing";
        Done => "done", "Done";
        Archived => "archived", "Archived";
    }
);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct Migration {
    pub id: MigrationId,
    pub name: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub strategy: Strategy,
    /// The old system's provider, by its registry name (`self_built`, …).
    pub source: String,
    /// The new IM's provider, by its registry name.
    pub target: String,
    /// The providers' own names for themselves.
    #[cfg_attr(feature = "ssr", sqlx(default))]
    #[serde(default)]
    pub source_label: String,
    #[cfg_attr(feature = "ssr", sqlx(default))]
    #[serde(default)]
    pub target_label: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub state: MigrationState,
    pub notes: String,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Whether the target's connection is complete (never its secrets).
    pub keys_set: bool,
}

/// Create or edit a migration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MigrationInput {
    pub name: String,
    pub strategy: Strategy,
    /// A provider that can be a source (`GET /api/v1/providers`).
    pub source: String,
    /// A provider that can be a target.
    pub target: String,
    #[serde(default)]
    pub notes: String,
}

/// A secret as the browser sees it: its last characters and who set it when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SecretHint {
    pub last4: String,
    pub set_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: OffsetDateTime,
}

/// The outcome of Test connection, in words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConnectionCheck {
    pub ok: bool,
    /// The provider's error code, when it answered with one.
    pub code: Option<i64>,
    /// What happened and what to do.
    pub message: String,
    pub latency_ms: u64,
}

impl ConnectionCheck {
    pub fn passed(message: String, latency_ms: u64) -> Self {
        ConnectionCheck {
            ok: true,
            code: None,
            message,
            latency_ms,
        }
    }

    pub fn failed(code: Option<i64>, message: String, latency_ms: u64) -> Self {
        ConnectionCheck {
            ok: false,
            code,
            message,
            latency_ms,
        }
    }
}

/// One API's pacing for a migration: the provider's documented default and this migration's
/// override, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiLimitView {
    /// `service/command`, e.g. `openim/importmsg`.
    pub api: String,
    pub default_qps: u32,
    pub default_batch: Option<u32>,
    /// Requests per second this migration uses (the override, else the default).
    pub qps: u32,
    /// Items per request this migration uses (the override, else the default).
    pub batch: Option<u32>,
    pub overridden: bool,
}

/// An override; leave a field out to use the default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LimitOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
}

/// The newest import run's progress, in numbers (the run that decides the migration's state:
/// a running or paused one first, else the latest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunProgress {
    pub id: RunId,
    /// running, paused, done, cancelled or failed.
    pub state: super::RunState,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Why the run stopped or failed, when it says.
    pub error: Option<String>,
}

impl RunProgress {
    /// Records dealt with (sent, failed or skipped).
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.skipped
    }

    /// Share of the records dealt with, 0 to 100 (100 for a run with nothing to send).
    pub fn percent(&self) -> f64 {
        if self.total <= 0 {
            100.0
        } else {
            (self.done() as f64 / self.total as f64 * 100.0).clamp(0.0, 100.0)
        }
    }

    pub fn moving(&self) -> bool {
        self.state.live()
    }
}

/// A migration's state and its newest run's progress: what the pages poll to stay live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MigrationPulse {
    pub id: MigrationId,
    pub state: MigrationState,
    pub run: Option<RunProgress>,
    /// Uploads staged for import.
    pub staged_uploads: i64,
    /// A check of the dumps is under way.
    pub checking: bool,
}

string_enum!(
    /// What a migration needs next, decided by `migration::overview::next_step`.
    NextStep {
        Restore => "restore", "Restore the migration";
        SetKeys => "set_keys", "Set the target's keys";
        UploadDumps => "upload_dumps", "Upload the old system's dumps";
        WaitValidation => "wait_validation", "Wait for the dumps to be checked";
        CheckFailed => "check_failed", "Check the dumps again";
        ReviewErrors => "review_errors", "Review the validation errors";
        Launch => "launch", "Launch the import";
        Running => "running", "The import is running";
        Resume => "resume", "Resume the paused import";
        RetryFailures => "retry_failures", "Retry the failed records";
        Sync => "sync", "Keep both systems in sync";
        Done => "done", "Nothing left to import";
    }
);

/// Where a migration stands and what it needs next: the Overview tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MigrationOverview {
    pub pulse: MigrationPulse,
    pub keys_set: bool,
    /// The keys point at the console's sandbox.
    pub sandbox: bool,
    /// Uploads staged for import.
    pub staged_uploads: i64,
    /// Records that will be imported, by kind (from the dumps' report).
    pub staged: std::collections::BTreeMap<String, i64>,
    /// Records validation kept aside with an error (they will not be sent).
    pub kept_aside: i64,
    pub errors: i64,
    pub warnings: i64,
    /// A check of the dumps is under way.
    pub validating: bool,
    /// Why the last check of the dumps failed, when it did.
    #[serde(default)]
    pub check_error: Option<String>,
    /// Uploads staged after the newest finished run took its plan.
    pub staged_since_run: i64,
    pub next: NextStep,
}
