use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::Actor;
use crate::migration::{self, keys};
use crate::migration::{limits, overview};
use crate::model::{
    ApiLimitView, ConnectionCheck, Migration, MigrationInput, MigrationOverview, SetTencentKeys,
    TargetKeys,
};
use crate::web::{AppError, AppResult, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_migrations, create_migration))
        .routes(routes!(get_migration, update_migration))
        .routes(routes!(archive_migration))
        .routes(routes!(restore_migration))
        .routes(routes!(get_keys, set_keys))
        .routes(routes!(test_keys))
        .routes(routes!(rehearse))
        .routes(routes!(get_limits, set_limits))
        .routes(routes!(get_overview))
}

#[derive(Deserialize, IntoParams)]
struct ListQuery {
    /// List archived migrations instead of live ones.
    #[serde(default)]
    archived: bool,
}

/// Migrations, newest first.
#[utoipa::path(get, path = "/api/v1/migrations", tag = "migrations", params(ListQuery),
    responses((status = 200, body = Vec<Migration>), (status = 401, body = ErrorBody)))]
async fn list_migrations(
    State(s): State<AppState>,
    actor: Actor,
    Query(q): Query<ListQuery>,
) -> AppResult<ApiJson<Vec<Migration>>> {
    Ok(ApiJson(migration::list(&s.pool, &actor, q.archived).await?))
}

/// Create a migration (operator or higher).
#[utoipa::path(post, path = "/api/v1/migrations", tag = "migrations", request_body = MigrationInput,
    responses((status = 201, body = Migration), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<MigrationInput>,
) -> AppResult<(StatusCode, ApiJson<Migration>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(migration::create(&s.pool, &actor, &input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 404, body = ErrorBody)))]
async fn get_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(migration::get(&s.pool, &actor, id).await?))
}

/// Edit a migration's name, strategy, source, target or notes.
#[utoipa::path(patch, path = "/api/v1/migrations/{id}", tag = "migrations", request_body = MigrationInput,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<MigrationInput>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::update(&s.pool, &actor, id, &input).await?,
    ))
}

/// Archive a migration: it leaves the list and frees its name.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/archive", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn archive_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::set_archived(&s.pool, &actor, id, true).await?,
    ))
}

/// Bring an archived migration back.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/restore", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restore_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::set_archived(&s.pool, &actor, id, false).await?,
    ))
}

/// The target's keys: ids and regions, and for secrets only their last 4 characters.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/keys", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = TargetKeys), (status = 404, body = ErrorBody)))]
async fn get_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<TargetKeys>> {
    Ok(ApiJson(keys::view(&s.pool, &actor, id).await?))
}

/// Set or rotate the Tencent IM target's keys (admin or owner). Secrets are write-only; omit
/// one to keep the stored value.
#[utoipa::path(put, path = "/api/v1/migrations/{id}/keys", tag = "migrations", request_body = SetTencentKeys,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = TargetKeys), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SetTencentKeys>,
) -> AppResult<ApiJson<TargetKeys>> {
    Ok(ApiJson(keys::set_tencent(&s, &actor, id, &input).await?))
}

/// Test connection: signs a harmless call with the stored keys and says what happened.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/keys/test", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = ConnectionCheck), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn test_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<ConnectionCheck>> {
    Ok(ApiJson(keys::test_connection(&s, &actor, id).await?))
}

/// Rehearse in sandbox: start a local Tencent IM sandbox in the console and point the target's
/// keys at it (admin or owner).
#[utoipa::path(post, path = "/api/v1/migrations/{id}/sandbox", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = TargetKeys), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rehearse(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<TargetKeys>> {
    Ok(ApiJson(keys::rehearse(&s, &actor, id).await?))
}

/// The target API's pacing for this migration: each API's documented quota and batch size, and
/// the values this migration uses.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/limits", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Vec<ApiLimitView>), (status = 404, body = ErrorBody)))]
async fn get_limits(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Vec<ApiLimitView>>> {
    Ok(ApiJson(limits::view(&s.pool, &actor, id).await?))
}

/// Replace this migration's overrides: `{"openim/importmsg": {"qps": 100}}`; `{}` restores the
/// defaults (operator or higher).
#[utoipa::path(put, path = "/api/v1/migrations/{id}/limits", tag = "migrations",
    request_body = std::collections::BTreeMap<String, crate::model::LimitOverride>,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Vec<ApiLimitView>), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_limits(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    body: Result<ApiJson<limits::Overrides>, AppError>,
) -> AppResult<ApiJson<Vec<ApiLimitView>>> {
    // Say "forbidden" before judging a body the caller may not send at all.
    actor.require(crate::model::Permission::RunMigrations)?;
    let ApiJson(body) = body?;
    Ok(ApiJson(limits::set(&s.pool, &actor, id, body).await?))
}

/// Where the migration stands: its state, the newest run's progress, what is staged, and the
/// next step (`next`: set_keys, upload_dumps, wait_validation, review_errors, launch, running,
/// resume, retry_failures, sync, done or restore).
#[utoipa::path(get, path = "/api/v1/migrations/{id}/overview", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = MigrationOverview), (status = 404, body = ErrorBody)))]
async fn get_overview(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<MigrationOverview>> {
    Ok(ApiJson(overview::overview(&s.pool, &actor, id).await?))
}
