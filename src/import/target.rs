//! What an import needs from a target IM, whatever the provider: which phases it can take and
//! through which API, how to turn staged records into request parts, how to send a batch of
//! parts, and how to tell, after a crash, which parts already arrived.

use super::plan::Phase;
use crate::model::UploadId;
use crate::providers::ErrorClass;
use serde_json::Value;

/// One staged record going to the target.
#[derive(Debug, Clone)]
pub struct Item {
    pub upload_id: UploadId,
    pub ord: i32,
    /// What requests are grouped by: the owner of friends, the group of members and messages.
    pub key: String,
    /// The canonical record.
    pub record: Value,
    /// Facts the phase needs from elsewhere (a group's first activity, its creation time).
    pub context: Value,
    /// Already sent or skipped in this run (kept for phases whose requests depend on order).
    pub done: bool,
    /// Requests that carried this record earlier in this run (before a Retry or a crash): the
    /// failures table's TRIES counts these and this attempt's together.
    pub tries_before: i32,
}

/// One record's part of a request, built the same way every time for the same record, so a
/// request repeated after a crash is absorbed by the provider's dedupe.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Index into the task's items.
    pub item: usize,
    pub part: Value,
    /// What imshift derived for this record (sequence numbers, randoms, send times).
    pub sent: Value,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted; the value holds what the target answered for it (merged into `sent`).
    Sent(Value),
    Failed {
        code: Option<i64>,
        message: String,
    },
    /// Nothing to send for this record on this target; says why.
    Skipped(String),
}

impl Outcome {
    pub fn failed(code: Option<i64>, message: impl Into<String>) -> Self {
        Outcome::Failed {
            code,
            message: message.into(),
        }
    }
}

/// A whole request failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: ErrorClass,
    pub code: Option<i64>,
    pub message: String,
    /// The request may have been applied (a timeout, a broken connection).
    pub ambiguous: bool,
}

/// How a target takes a phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Support {
    Api {
        api: &'static str,
        /// Records per request.
        batch: usize,
        qps: f64,
    },
    /// The target has no way to take these records; says why.
    Skip(String),
}

#[async_trait::async_trait]
pub trait ImportTarget: Send + Sync {
    /// Pacing key of `api` for this app: shared by every worker of every process.
    fn rate_key(&self, api: &str) -> String;
    fn support(&self, phase: Phase) -> Support;
    /// Parts for `items` (same order); `Err` is the outcome of a record that needs no request.
    fn prepare(&self, phase: Phase, items: &[Item]) -> Vec<Result<Prepared, Outcome>>;
    /// Sends one request made of `parts` (all with the same key). One outcome per part.
    async fn send(
        &self,
        phase: Phase,
        key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Outcome>, Failure>;
    /// Which of `parts` already reached the target, for requests that a repeat could
    /// duplicate; `None` for a part that did not (or for phases the provider dedupes itself).
    async fn reconcile(
        &self,
        phase: Phase,
        key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Option<Outcome>>, Failure>;
    /// Before sending a request of `phase` again after an answer that may have been lost, ask
    /// [`ImportTarget::reconcile`] first even where the phase's order does not require it: the
    /// target's call is not idempotent (it makes a new object, such as a team with an id of
    /// the target's choosing, each time).
    fn check_before_repeat(&self, _phase: Phase) -> bool {
        false
    }
}
