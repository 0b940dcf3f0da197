//! `POST /hooks/{migration_id}/{side}`: where a side's provider delivers its events.
//!
//! Public on purpose: a provider's callback carries no session and no Origin, so the route is
//! mounted outside the sign-in and cross-site layers and trusts only what the side's provider
//! verifies (signature, replay window, app id). Every accepted event is stored before the
//! answer, idempotent by the provider's key for it, and any console process can take any
//! delivery: nothing here lives in memory.

use super::commit::Delivery;
use crate::migration::connections;
use crate::model::{MigrationId, Side};
use crate::providers::{CallbackRequest, InboundEvent};
use crate::service::{AppError, AppResult};
use crate::web::{ops, AppState};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A delivery's body beyond this is refused (413) unread: a relay batch is at most 100 events.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A provider key beyond this is not an identity but a mistake.
const MAX_KEY_BYTES: usize = 512;
/// `at` up to the end of year 9999: the database's timestamps go no further.
const MAX_AT_MS: i64 = 253_402_300_799_999;
/// Past a reorder window, before the sender is woken: the window is counted from the
/// database's clock at the insert, a little before the answer.
const HELD_MARGIN: std::time::Duration = std::time::Duration::from_millis(2);

/// Where a side's provider (or a sandbox standing in for it) delivers this migration's events.
pub fn hook_url(public_url: &str, id: MigrationId, side: Side) -> String {
    format!("{}/hooks/{id}/{side}", public_url.trim_end_matches('/'))
}

/// The hooks, for merging outside the session and cross-site layers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/{migration_id}/{side}", post(receive))
        .route_layer(from_fn(ops::remember_route))
}

/// What became of a delivery (or of each event in an accepted one), as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An event stored for the first time.
    Accepted,
    /// An event already stored: acknowledged, not stored again.
    Duplicate,
    /// A checked delivery that carried nothing to relay (a failed send, a command not relayed).
    Ignored,
    /// Unsigned, wrongly signed, or for another app.
    BadSignature,
    /// Signed outside the replay window.
    Stale,
    Malformed,
    TooLarge,
    /// Of the accepted: events imshift itself made on that side, kept and not sent back.
    Echo,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::BadSignature => "bad_signature",
            Outcome::Stale => "stale",
            Outcome::Malformed => "malformed",
            Outcome::TooLarge => "too_large",
            Outcome::Echo => "echo",
        }
    }
}

async fn receive(
    State(state): State<AppState>,
    Path((id, side)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    match handle(&state, &id, &side, &query, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    id: &str,
    side: &str,
    query: &HashMap<String, String>,
    request: Request,
) -> AppResult<Response> {
    let id: MigrationId = id
        .parse()
        .map_err(|_| AppError::NotFound(format!("No migration has id {id}.")))?;
    let side: Side = side
        .parse()
        .map_err(|e| AppError::NotFound(format!("No hook for side {e}.")))?;
    let (provider, conn) = connections::open_at_door(&state.services, id, side).await?;

    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse(
            state,
            id,
            side,
            Outcome::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_BODY_BYTES} bytes (or was cut short)"),
        )
        .await;
    };
    let req = CallbackRequest {
        query,
        headers: &parts.headers,
        body: &body,
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    if let Err(why) = provider.verify_callback(&conn, &req) {
        let outcome = if why.starts_with("stale") {
            Outcome::Stale
        } else {
            Outcome::BadSignature
        };
        return refuse(state, id, side, outcome, StatusCode::UNAUTHORIZED, why).await;
    }
    let events = match provider.inbound(&conn, &req).and_then(checked) {
        Ok(e) => e,
        Err(why) => {
            return refuse(
                state,
                id,
                side,
                Outcome::Malformed,
                StatusCode::BAD_REQUEST,
                why,
            )
            .await
        }
    };
    if events.is_empty() {
        count(state, id, side, &[(Outcome::Ignored, 1)]).await?;
        return Ok(Json(provider.inbound_answer(0, 0)).into_response());
    }
    // The events and their outcome counts in one statement, with whatever other deliveries
    // arrived meanwhile: one commit per batch, answered only once committed.
    let delivery = Delivery {
        id,
        side,
        events,
        hold: provider.hold_back(&conn),
    };
    let delivered = delivery.events.len();
    let hold = delivery.hold;
    let stored = state
        .door
        .store(&state.pool, delivery)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let accepted = stored.new;
    let duplicates = delivered - accepted;
    if stored.queued > 0 {
        state.sync_wake.notify_one();
        if !hold.is_zero() {
            // Held events are due when the window ends: the sender looks then, not at its
            // next poll, which would add up to a poll's length to the window.
            let wake = state.sync_wake.clone();
            tokio::spawn(async move {
                tokio::time::sleep(hold + HELD_MARGIN).await;
                wake.notify_one();
            });
        }
    }
    count_metrics(
        side,
        &[
            (Outcome::Accepted, accepted),
            (Outcome::Duplicate, duplicates),
            (Outcome::Echo, stored.echo),
        ],
    );
    Ok(Json(provider.inbound_answer(accepted, duplicates)).into_response())
}

/// What the database needs of every event, said per event like the providers' own checks.
fn checked(events: Vec<InboundEvent>) -> Result<Vec<InboundEvent>, String> {
    for (i, e) in events.iter().enumerate() {
        if e.key.is_empty() || e.key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "events[{i}]: its id is empty or over {MAX_KEY_BYTES} bytes"
            ));
        }
        if [&e.key, &e.kind]
            .into_iter()
            .chain(&e.origin)
            .chain(&e.alias)
            .any(|s| s.contains('\0'))
            || has_nul(&e.data)
        {
            return Err(format!(
                "events[{i}]: has a NUL character (\\u0000), which cannot be stored"
            ));
        }
        if !(0..=MAX_AT_MS).contains(&e.at_ms) {
            return Err(format!(
                "events[{i}]: its time {} ms is not between 1970 and 9999",
                e.at_ms
            ));
        }
    }
    Ok(events)
}

/// PostgreSQL's text and jsonb cannot hold U+0000.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Adds to the outcome counts in `/metrics`, skipping zeros.
fn count_metrics(side: Side, counted: &[(Outcome, usize)]) {
    for (outcome, n) in counted.iter().filter(|(_, n)| *n > 0) {
        metrics::counter!(
            "imshift_sync_inbound_total",
            "side" => side.as_str(),
            "outcome" => outcome.as_str()
        )
        .increment(*n as u64);
    }
}

/// Adds to the outcome counts (table and metrics), skipping zeros.
async fn count(
    state: &AppState,
    id: MigrationId,
    side: Side,
    counted: &[(Outcome, usize)],
) -> AppResult<()> {
    count_metrics(side, counted);
    let counted: Vec<_> = counted.iter().filter(|(_, n)| *n > 0).collect();
    let outcomes: Vec<&str> = counted.iter().map(|(o, _)| o.as_str()).collect();
    let ns: Vec<i64> = counted.iter().map(|(_, n)| *n as i64).collect();
    sqlx::query(
        // One of 16 rows per outcome, so that concurrent deliveries rarely wait on each
        // other's row lock (see the migration that added `shard`).
        "INSERT INTO sync_inbound_counts (migration_id, side, outcome, shard, n, last_at)
         SELECT $1, $2, o.outcome, floor(random() * 16)::smallint, o.n, now()
         FROM UNNEST($3::text[], $4::bigint[]) AS o(outcome, n)
         ON CONFLICT (migration_id, side, outcome, shard)
         DO UPDATE SET n = sync_inbound_counts.n + EXCLUDED.n, last_at = EXCLUDED.last_at",
    )
    .bind(id)
    .bind(side.as_str())
    .bind(&outcomes)
    .bind(&ns)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// A refused delivery: counted, logged, and answered with why; nothing of it is stored.
async fn refuse(
    state: &AppState,
    id: MigrationId,
    side: Side,
    outcome: Outcome,
    status: StatusCode,
    why: String,
) -> AppResult<Response> {
    count(state, id, side, &[(outcome, 1)]).await?;
    tracing::info!(migration = %id, side = %side, outcome = outcome.as_str(), reason = %why, "inbound delivery refused");
    let body: Value = json!({ "error": { "code": outcome.as_str(), "message": why } });
    Ok((status, Json(body)).into_response())
}
