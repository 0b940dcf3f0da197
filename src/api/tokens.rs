use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::{tokens, Actor};
use crate::model::{ApiToken, CreatedToken};
use crate::web::{AppResult, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Your API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ErrorBody)))]
async fn list_tokens(State(s): State<AppState>, actor: Actor) -> AppResult<ApiJson<Vec<ApiToken>>> {
    Ok(ApiJson(tokens::list(&s.pool, &actor).await?))
}

#[derive(Deserialize, ToSchema)]
struct NewToken {
    name: String,
    /// Whether requests with the new token may create tokens themselves (default false).
    /// A token may create tokens only if it was created with this right.
    #[serde(default)]
    can_mint_tokens: bool,
}

/// Create a token acting as you. The secret is in this answer only. With a token, this works
/// only if that token was created with `can_mint_tokens`.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_token(
    State(s): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<NewToken>,
) -> AppResult<(StatusCode, ApiJson<CreatedToken>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(tokens::create(&s.pool, &actor, &body.name, body.can_mint_tokens).await?),
    ))
}

/// Revoke one of your tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<ApiToken>> {
    Ok(ApiJson(tokens::revoke(&s.pool, &actor, id).await?))
}
