//! Who is making this request: a signed-in user (session cookie) or a personal API token.

use super::{tokens, AuthSession};
use crate::model::{Permission, Role};
use crate::web::{AppError, AppState};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::net::SocketAddr;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    /// Set when the request came with an API token rather than a session.
    pub token_id: Option<Uuid>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Your role ({}) cannot do this: {}.",
                self.role.label(),
                match permission {
                    Permission::Read => "read",
                    Permission::RunMigrations => "it needs the operator role or higher",
                    Permission::ManageCredentials | Permission::ManageTeam =>
                        "it needs the admin or owner role",
                }
            )))
        }
    }
}

/// The client's address as the socket saw it.
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

pub fn app_state(parts: &Parts) -> Result<AppState, AppError> {
    parts
        .extensions
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| AppError::Internal("AppState missing from request extensions".into()))
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let app = app_state(parts)?;
        let ip = client_ip(parts);
        // A request that names a token is judged by the token alone, never by a cookie too.
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let secret = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(AppError::Unauthorized)?;
            let (user, token_id) = tokens::authenticate(&app.pool, secret.trim())
                .await?
                .ok_or(AppError::Unauthorized)?;
            return Ok(Actor {
                user_id: user.id,
                email: user.email,
                role: user.role,
                token_id: Some(token_id),
                ip,
            });
        }
        let session = AuthSession::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Internal("auth layer missing".into()))?;
        let user = session.user.ok_or(AppError::Unauthorized)?;
        Ok(Actor {
            user_id: user.id,
            email: user.email,
            role: user.role,
            token_id: None,
            ip,
        })
    }
}
