//! Coexistence sync over HTTP: both directions with their health, turning one on or off, the
//! event log, replaying dead letters, and a test message from a sandbox side. The doors the
//! sides themselves deliver to (`/hooks/...`) are in `crate::sync::inbound`.

use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::Actor;
use crate::model::{
    MigrationId, ReplayRequest, SetDirection, Side, SyncEventQuery, SyncEventView, SyncIdPair,
    SyncIdQuery, SyncView,
};
use crate::sync::control;
use crate::web::{AppError, AppResult, AppState};
use axum::extract::{Query, State};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_sync))
        .routes(routes!(set_direction))
        .routes(routes!(list_events))
        .routes(routes!(id_map))
        .routes(routes!(replay))
        .routes(routes!(send_test))
}

/// Both directions: on or off, the values to paste into each side's console, and health
/// (status, events per minute, lag p50/p99, backlog and drain time, errors, echoes filtered,
/// the last 30 minutes).
#[utoipa::path(get, path = "/api/v1/migrations/{id}/sync", tag = "sync",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = SyncView), (status = 404, body = ErrorBody)))]
async fn get_sync(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<SyncView>> {
    Ok(ApiJson(control::view(&s, &actor, id).await?))
}

/// Turn the direction whose events come from `side` on or off (operators and up; audited).
/// Events that arrive while it is off are kept, not sent.
#[utoipa::path(put, path = "/api/v1/migrations/{id}/sync/{side}", tag = "sync",
    request_body = SetDirection,
    params(("id" = Uuid, Path, description = "Migration id"),
           ("side" = Side, Path, description = "The side the direction's events come from")),
    responses((status = 200, body = SyncView), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_direction(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
    body: Result<ApiJson<SetDirection>, AppError>,
) -> AppResult<ApiJson<SyncView>> {
    actor.require(crate::model::Permission::RunMigrations)?;
    let ApiJson(body) = body?;
    Ok(ApiJson(
        control::set_direction(&s, &actor, id, side, body.enabled).await?,
    ))
}

/// The event log, newest first: `q` finds an account, group or message id on either side;
/// each event says where it is (queued, sending, sent, dead with why, echo, received while off).
#[utoipa::path(get, path = "/api/v1/migrations/{id}/sync/events", tag = "sync",
    params(("id" = Uuid, Path, description = "Migration id"), SyncEventQuery),
    responses((status = 200, body = Vec<SyncEventView>), (status = 404, body = ErrorBody)))]
async fn list_events(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    Query(q): Query<SyncEventQuery>,
) -> AppResult<ApiJson<Vec<SyncEventView>>> {
    Ok(ApiJson(control::events(&s, &actor, id, &q).await?))
}

/// The id map: what the old system and the new one call the same account, group or message,
/// as the import and sync recorded it, newest first; `q` finds an id on either side.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/sync/id-map", tag = "sync",
    params(("id" = Uuid, Path, description = "Migration id"), SyncIdQuery),
    responses((status = 200, body = Vec<SyncIdPair>), (status = 404, body = ErrorBody)))]
async fn id_map(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    Query(q): Query<SyncIdQuery>,
) -> AppResult<ApiJson<Vec<SyncIdPair>>> {
    Ok(ApiJson(control::id_map(&s, &actor, id, &q).await?))
}

/// Send dead letters again, after fixing their cause: by key, or all (of a side, of an error
/// code). Operators and up; audited. Answers how many went back to the queue.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/sync/replay", tag = "sync",
    request_body = ReplayRequest,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replay(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    body: Result<ApiJson<ReplayRequest>, AppError>,
) -> AppResult<ApiJson<Value>> {
    actor.require(crate::model::Permission::RunMigrations)?;
    let ApiJson(body) = body?;
    let n = control::replay(&s, &actor, id, &body).await?;
    Ok(ApiJson(json!({ "replayed": n })))
}

/// A test message sent as a user of `side`'s sandbox; watch it arrive on the other side in
/// the event log. Answers its id on `side`.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/sync/{side}/test", tag = "sync",
    params(("id" = Uuid, Path, description = "Migration id"),
           ("side" = Side, Path, description = "The sandbox side to send from")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn send_test(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
) -> AppResult<ApiJson<Value>> {
    let made = control::send_test(&s, &actor, id, side).await?;
    Ok(ApiJson(json!({ "id": made })))
}
