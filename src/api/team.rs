use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::{invites, users, Actor};
use crate::model::{CreatedInvite, Invite, Me, Member, Role};
use crate::web::{AppResult, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users))
        .routes(routes!(update_user, remove_user))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(revoke_invite))
}

/// Who this token or session belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "team",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(actor: Actor) -> ApiJson<Me> {
    ApiJson(Me {
        id: actor.user_id,
        email: actor.email,
        role: actor.role,
    })
}

/// The team's members.
#[utoipa::path(get, path = "/api/v1/users", tag = "team",
    responses((status = 200, body = Vec<Member>), (status = 401, body = ErrorBody)))]
async fn list_users(State(s): State<AppState>, actor: Actor) -> AppResult<ApiJson<Vec<Member>>> {
    Ok(ApiJson(users::list(&s.pool, &actor).await?))
}

#[derive(Deserialize, ToSchema)]
struct UpdateUser {
    role: Role,
}

/// Change a member's role (admin or owner).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "team", request_body = UpdateUser,
    params(("id" = Uuid, Path, description = "Member id")),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> AppResult<ApiJson<Member>> {
    Ok(ApiJson(
        users::set_role(&s.pool, &actor, id, body.role).await?,
    ))
}

/// Remove a member from the team (admin or owner). Their sessions and tokens stop working.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "team",
    params(("id" = Uuid, Path, description = "Member id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_user(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    users::remove(&s.pool, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invites, newest first.
#[utoipa::path(get, path = "/api/v1/invites", tag = "team",
    responses((status = 200, body = Vec<Invite>), (status = 401, body = ErrorBody)))]
async fn list_invites(State(s): State<AppState>, actor: Actor) -> AppResult<ApiJson<Vec<Invite>>> {
    Ok(ApiJson(invites::list(&s.pool, &actor).await?))
}

#[derive(Deserialize, ToSchema)]
struct NewInvite {
    email: String,
    role: Role,
}

/// Invite someone (admin or owner). The answer holds the one-time link; it is not shown again.
#[utoipa::path(post, path = "/api/v1/invites", tag = "team", request_body = NewInvite,
    responses((status = 201, body = CreatedInvite), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invite(
    State(s): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<NewInvite>,
) -> AppResult<(StatusCode, ApiJson<CreatedInvite>)> {
    let created = invites::create(&s.pool, &s.config, &actor, &body.email, body.role).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Withdraw a pending invite (admin or owner).
#[utoipa::path(delete, path = "/api/v1/invites/{id}", tag = "team",
    params(("id" = Uuid, Path, description = "Invite id")),
    responses((status = 200, body = Invite), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_invite(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<ApiJson<Invite>> {
    Ok(ApiJson(invites::revoke(&s.pool, &actor, id).await?))
}
