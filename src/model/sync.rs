//! Coexistence sync as the Sync tab and the REST API show it: each direction's switch,
//! set-up values and health, and the event log. Shared by the UI and the server.

use super::Side;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

string_enum!(
    /// How a direction is doing, judged against its own traffic.
    SyncHealth {
        Off => "off", "Off";
        Idle => "idle", "On, nothing yet";
        Healthy => "healthy", "Healthy";
        Delayed => "delayed", "Delayed";
        Failing => "failing", "Failing";
        Silent => "silent", "Silent";
    }
);

string_enum!(
    /// Where an event is on its way.
    SyncEventState {
        Queued => "queued", "Queued";
        Sending => "sending", "Sending";
        Sent => "sent", "Sent";
        Dead => "dead", "Dead letter";
        Echo => "echo", "Echo, not sent back";
        Off => "off", "Received while off";
    }
);

/// A value to paste into a side's own console.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SetupValue {
    pub what: String,
    pub value: String,
}

/// Errors of one code in the last hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorCount {
    pub code: String,
    /// The latest message for it, in words.
    pub message: String,
    pub events: i64,
    /// Of those, set aside as dead letters (replayable by this code).
    #[serde(default)]
    pub dead: i64,
}

/// One minute of a direction's traffic, for the charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MinutePoint {
    /// Minutes before now (0: this minute).
    pub ago: i32,
    pub received: i64,
    pub sent: i64,
    /// p99 of received → sent, ms, of the events sent in that minute.
    pub apply_p99_ms: Option<f64>,
}

/// The last canary of a direction: a marked message sent as a user of its side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Canary {
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// Sent → received by imshift, ms.
    pub received_ms: Option<f64>,
    /// Sent → applied on the other side, ms: the round trip.
    pub round_trip_ms: Option<f64>,
    /// Why it could not be sent.
    pub error: Option<String>,
}

/// The figures of one direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DirectionHealth {
    pub status: SyncHealth,
    /// Why the status is what it is, in words.
    pub why: String,
    pub received_total: i64,
    pub sent_total: i64,
    /// Received in the last 5 minutes, per minute.
    pub events_per_min: f64,
    /// Waiting or being sent.
    pub backlog: i64,
    /// Seconds to send the backlog at the rate of the last 5 minutes (none without a rate).
    pub drain_secs: Option<f64>,
    /// Provider event time → received, ms (last hour).
    pub capture_p50_ms: Option<f64>,
    pub capture_p99_ms: Option<f64>,
    /// Received → applied on the other side, ms (last hour).
    pub apply_p50_ms: Option<f64>,
    pub apply_p99_ms: Option<f64>,
    pub dead: i64,
    pub echo_filtered: i64,
    /// Deliveries refused at the door (bad signature, stale, malformed, too large).
    pub refused: i64,
    /// Seconds since the last event arrived.
    pub last_event_secs: Option<i64>,
    pub errors: Vec<ErrorCount>,
    /// The last 30 minutes, oldest first.
    pub minutes: Vec<MinutePoint>,
    /// The last canary, when one was sent.
    pub canary: Option<Canary>,
    /// Why this direction gets no canary, when it gets none.
    pub canary_note: Option<String>,
}

/// One direction: events from `from` to the other side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncDirection {
    pub from: Side,
    pub from_label: String,
    pub to_label: String,
    pub enabled: bool,
    /// Why it cannot be turned on, when it cannot.
    pub blocked: Option<String>,
    pub changed_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub changed_at: Option<OffsetDateTime>,
    /// imshift's door for `from`'s events.
    pub hook_url: String,
    /// What to paste into `from`'s console so it sends its events there.
    pub setup: Vec<SetupValue>,
    /// `from` runs in a sandbox of this console: a test message can be sent as a user there.
    pub can_send_test: bool,
    pub health: DirectionHealth,
}

/// A time every console process was silent, and its filling from the sides' history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct SyncGap {
    #[serde(with = "time::serde::rfc3339")]
    pub from_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to_at: OffsetDateTime,
    /// `open`, `filling` or `filled`.
    pub state: String,
    /// Events read back that had not arrived (all migrations).
    pub recovered: i64,
    pub conversations: i64,
    /// What could not be read, in words.
    pub problems: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub filled_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncView {
    /// Old → new first, then new → old.
    pub directions: Vec<SyncDirection>,
    /// Times every console process was down (the last 30 days), newest first.
    pub gaps: Vec<SyncGap>,
}

/// One pair of the id map as the Sync tab shows it: what the old system and the new one call
/// the same account, group or message, and whether the import or sync recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncIdPair {
    /// `account`, `group` or `message`.
    pub kind: String,
    pub old_id: String,
    pub new_id: String,
    /// `import` or `sync`.
    pub via: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Which id-map pairs to list: those where either id is `q` (or, for the import's map,
/// contains it); the newest `limit` (at most 500, 100 by default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct SyncIdQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One event of the log, with its path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncEventView {
    /// The side it came from.
    pub side: Side,
    pub key: String,
    pub kind: String,
    pub conv: String,
    pub state: SyncEventState,
    /// Who did it (`from`, `by` or `owner`) and what it was about (`to`, `group`).
    pub actor: String,
    pub subject: String,
    /// A short preview: a text message's text, a group's name.
    pub preview: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    pub attempts: i32,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

/// Which events to list (`q` matches an account, group or message id on either side).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct SyncEventQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub state: Option<SyncEventState>,
    #[serde(default)]
    pub side: Option<Side>,
    /// At most 500; 100 by default.
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Dead letters to send again: these keys of `side`, or every one of `side` (or of both).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReplayRequest {
    #[serde(default)]
    pub side: Option<Side>,
    #[serde(default)]
    pub keys: Vec<String>,
    /// Replay every dead letter matching `side` (and `error_code`, when given).
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub error_code: Option<String>,
}

/// Turn a direction on or off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SetDirection {
    pub enabled: bool,
}
