use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::Actor;
use crate::migration::{self, connections};
use crate::migration::{limits, overview};
use crate::model::{
    ApiLimitView, ConnectionCheck, ConnectionInput, ConnectionView, Migration, MigrationId,
    MigrationInput, MigrationOverview, ProviderInfo, Side,
};
use crate::web::{AppError, AppResult, AppState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

#[allow(deprecated)]
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_migrations, create_migration))
        .routes(routes!(get_migration, update_migration))
        .routes(routes!(archive_migration))
        .routes(routes!(restore_migration))
        .routes(routes!(list_providers))
        .routes(routes!(get_connection, set_connection))
        .routes(routes!(test_connection))
        .routes(routes!(rehearse_connection))
        // Deprecated for one release: the target connection under its old names.
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
    Ok(ApiJson(
        migration::list(&s.pool, &s.config.providers, &actor, q.archived).await?,
    ))
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
        ApiJson(migration::create(&s.pool, &s.config.providers, &actor, &input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 404, body = ErrorBody)))]
async fn get_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::describe(&s.pool, &s.config.providers, &actor, id).await?,
    ))
}

/// Edit a migration's name, strategy, source, target or notes.
#[utoipa::path(patch, path = "/api/v1/migrations/{id}", tag = "migrations", request_body = MigrationInput,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    ApiJson(input): ApiJson<MigrationInput>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::update(&s.pool, &s.config.providers, &actor, id, &input).await?,
    ))
}

/// Archive a migration: it leaves the list and frees its name.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/archive", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Migration), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn archive_migration(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::set_archived(&s.pool, &s.config.providers, &actor, id, true).await?,
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
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Migration>> {
    Ok(ApiJson(
        migration::set_archived(&s.pool, &s.config.providers, &actor, id, false).await?,
    ))
}

/// Every provider a migration can name, and which side each can be.
#[utoipa::path(get, path = "/api/v1/providers", tag = "migrations",
    responses((status = 200, body = Vec<ProviderInfo>), (status = 401, body = ErrorBody)))]
async fn list_providers(
    State(s): State<AppState>,
    actor: Actor,
) -> AppResult<ApiJson<Vec<ProviderInfo>>> {
    actor.require(crate::model::Permission::Read)?;
    Ok(ApiJson(s.config.providers.list()))
}

/// One side's connection: its provider's fields, the public values, and for secrets only
/// their last 4 characters with who set them when.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/connections/{side}", tag = "connections",
    params(("id" = Uuid, Path, description = "Migration id"), ("side" = Side, Path, description = "source or target")),
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody)))]
async fn get_connection(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
) -> AppResult<ApiJson<ConnectionView>> {
    Ok(ApiJson(connections::view(&s, &actor, id, side).await?))
}

/// Set or rotate one side's connection (admin or owner): `{"fields": {"<field id>": value}}`
/// with the ids its provider lists. Secrets are write-only; leave one out to keep it.
#[utoipa::path(put, path = "/api/v1/migrations/{id}/connections/{side}", tag = "connections",
    request_body = ConnectionInput,
    params(("id" = Uuid, Path, description = "Migration id"), ("side" = Side, Path, description = "source or target")),
    responses((status = 200, body = ConnectionView), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_connection(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
    body: Result<ApiJson<ConnectionInput>, AppError>,
) -> AppResult<ApiJson<ConnectionView>> {
    // Say "forbidden" before judging a body the caller may not send at all.
    actor.require(crate::model::Permission::ManageCredentials)?;
    let ApiJson(input) = body?;
    Ok(ApiJson(
        connections::set(&s, &actor, id, side, &input).await?,
    ))
}

/// Test connection: one harmless signed call to the side's provider, said in words.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/connections/{side}/test", tag = "connections",
    params(("id" = Uuid, Path, description = "Migration id"), ("side" = Side, Path, description = "source or target")),
    responses((status = 200, body = ConnectionCheck), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn test_connection(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
) -> AppResult<ApiJson<ConnectionCheck>> {
    Ok(ApiJson(connections::test(&s, &actor, id, side).await?))
}

/// Rehearse in sandbox: start the side's provider sandbox in the console and point the side's
/// connection at it (admin or owner).
#[utoipa::path(post, path = "/api/v1/migrations/{id}/connections/{side}/sandbox", tag = "connections",
    params(("id" = Uuid, Path, description = "Migration id"), ("side" = Side, Path, description = "source or target")),
    responses((status = 200, body = ConnectionView), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rehearse_connection(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, side)): ApiPath<(MigrationId, Side)>,
) -> AppResult<ApiJson<ConnectionView>> {
    Ok(ApiJson(connections::rehearse(&s, &actor, id, side).await?))
}

/// Deprecated: `GET …/connections/target`. The target connection, flattened: field ids as
/// keys, secrets as `{last4, set_by, set_at}`, plus `target` and `sandbox`.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/keys", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
#[deprecated = "use GET /api/v1/migrations/{id}/connections/target"]
async fn get_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<serde_json::Value>> {
    Ok(ApiJson(connections::legacy_view(&s, &actor, id).await?))
}

/// Deprecated: `PUT …/connections/target` with these fields under `fields`. Set or rotate the
/// target's keys (admin or owner) by field id; secrets are write-only, omit one to keep it.
#[utoipa::path(put, path = "/api/v1/migrations/{id}/keys", tag = "migrations", request_body = Object,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[deprecated = "use PUT /api/v1/migrations/{id}/connections/target"]
async fn set_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    body: Result<ApiJson<std::collections::BTreeMap<String, serde_json::Value>>, AppError>,
) -> AppResult<ApiJson<serde_json::Value>> {
    actor.require(crate::model::Permission::ManageCredentials)?;
    let ApiJson(fields) = body?;
    connections::set(&s, &actor, id, Side::Target, &ConnectionInput { fields }).await?;
    Ok(ApiJson(connections::legacy_view(&s, &actor, id).await?))
}

/// Deprecated: `POST …/connections/target/test`.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/keys/test", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = ConnectionCheck), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[deprecated = "use POST /api/v1/migrations/{id}/connections/target/test"]
async fn test_keys(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<ConnectionCheck>> {
    Ok(ApiJson(
        connections::test(&s, &actor, id, Side::Target).await?,
    ))
}

/// Deprecated: `POST …/connections/target/sandbox`.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/sandbox", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[deprecated = "use POST /api/v1/migrations/{id}/connections/target/sandbox"]
async fn rehearse(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<serde_json::Value>> {
    connections::rehearse(&s, &actor, id, Side::Target).await?;
    Ok(ApiJson(connections::legacy_view(&s, &actor, id).await?))
}

/// The target API's pacing for this migration: each API's documented quota and batch size, and
/// the values this migration uses.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/limits", tag = "migrations",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Vec<ApiLimitView>), (status = 404, body = ErrorBody)))]
async fn get_limits(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Vec<ApiLimitView>>> {
    Ok(ApiJson(limits::view(&s, &actor, id).await?))
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
    ApiPath(id): ApiPath<MigrationId>,
    body: Result<ApiJson<limits::Overrides>, AppError>,
) -> AppResult<ApiJson<Vec<ApiLimitView>>> {
    // Say "forbidden" before judging a body the caller may not send at all.
    actor.require(crate::model::Permission::RunMigrations)?;
    let ApiJson(body) = body?;
    Ok(ApiJson(limits::set(&s, &actor, id, body).await?))
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
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<MigrationOverview>> {
    Ok(ApiJson(overview::overview(&s.pool, &actor, id).await?))
}
