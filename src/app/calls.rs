//! The UI's server functions: thin wrappers that find the actor and call the same service
//! functions the REST API calls, so both doors enforce the same rules.

use crate::model::*;
use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    pub use crate::auth::{self, Actor, AuthSession};
    pub use crate::web::{AppError, AppState};
    use axum::extract::FromRequestParts;
    use axum::http::request::Parts;
    use leptos::prelude::*;

    pub fn state() -> AppState {
        expect_context::<AppState>()
    }

    fn parts() -> Result<Parts, AppError> {
        use_context::<Parts>().ok_or_else(|| AppError::Internal("request parts missing".into()))
    }

    pub async fn actor() -> Result<Actor, AppError> {
        Actor::from_request_parts(&mut parts()?, &()).await
    }

    pub async fn session() -> Result<AuthSession, AppError> {
        AuthSession::from_request_parts(&mut parts()?, &())
            .await
            .map_err(|_| AppError::Internal("auth layer missing".into()))
    }

    pub fn ip() -> Option<String> {
        parts().ok().and_then(|p| auth::actor::client_ip(&p))
    }
}
#[cfg(feature = "ssr")]
use ssr::*;

/// Server functions anyone may call: signing in and joining need no session.
pub const PUBLIC_CALLS: [&str; 6] = [
    "/_fn/me",
    "/_fn/setup",
    "/_fn/login",
    "/_fn/logout",
    "/_fn/invite_preview",
    "/_fn/accept_invite",
];

#[server(prefix = "/_fn", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, ApiError> {
    Ok(session().await?.user.map(|u| u.me()))
}

#[server(prefix = "/_fn", endpoint = "setup")]
pub async fn setup_owner(email: String, password: String, confirm: String) -> Result<(), ApiError> {
    if password != confirm {
        return Err(AppError::validation("confirm", "the two passwords differ").into());
    }
    let s = state();
    let user = auth::users::setup_owner(&s.pool, &email, &password, ip()).await?;
    let mut session = session().await?;
    session
        .login(&user)
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), ApiError> {
    let s = state();
    let ip = ip();
    let user =
        match auth::signin::sign_in(&s.pool, &s.config, &email, password, ip.as_deref()).await {
            Ok(user) => user,
            Err(e) => {
                // The page and scripts both learn when to try again.
                if let AppError::TooManyRequests {
                    retry_after_secs, ..
                } = &e
                {
                    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
                        opts.insert_header(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from(*retry_after_secs),
                        );
                    }
                }
                return Err(e.into());
            }
        };
    session()
        .await?
        .login(&user)
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    leptos_axum::redirect(&auth::signin::safe_next(next.as_deref().unwrap_or("/")));
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    let mut session = session().await?;
    if let Some(user) = session.user.clone() {
        crate::audit::record(
            &state().pool,
            &crate::audit::Who::user(user.id, &user.email, ip()),
            "auth.logout",
            &user.email,
            serde_json::json!({}),
        )
        .await?;
    }
    session
        .logout()
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "invite_preview")]
pub async fn get_invite_preview(token: String) -> Result<InvitePreview, ApiError> {
    Ok(auth::invites::preview(&state().pool, &token).await?)
}

#[server(prefix = "/_fn", endpoint = "accept_invite")]
pub async fn accept_invite(
    token: String,
    password: String,
    confirm: String,
) -> Result<(), ApiError> {
    if password != confirm {
        return Err(AppError::validation("confirm", "the two passwords differ").into());
    }
    let user = auth::invites::accept(&state().pool, &token, &password, ip()).await?;
    let mut session = session().await?;
    session
        .login(&user)
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "members")]
pub async fn list_members() -> Result<Vec<Member>, ApiError> {
    Ok(auth::users::list(&state().pool, &actor().await?).await?)
}

#[server(prefix = "/_fn", endpoint = "set_role")]
pub async fn set_role(id: Uuid, role: Role) -> Result<Member, ApiError> {
    Ok(auth::users::set_role(&state().pool, &actor().await?, id, role).await?)
}

#[server(prefix = "/_fn", endpoint = "remove_member")]
pub async fn remove_member(id: Uuid) -> Result<(), ApiError> {
    Ok(auth::users::remove(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "invites")]
pub async fn list_invites() -> Result<Vec<Invite>, ApiError> {
    Ok(auth::invites::list(&state().pool, &actor().await?).await?)
}

#[server(prefix = "/_fn", endpoint = "create_invite")]
pub async fn create_invite(email: String, role: Role) -> Result<CreatedInvite, ApiError> {
    let s = state();
    Ok(auth::invites::create(&s.pool, &s.config, &actor().await?, &email, role).await?)
}

#[server(prefix = "/_fn", endpoint = "revoke_invite")]
pub async fn revoke_invite(id: Uuid) -> Result<Invite, ApiError> {
    Ok(auth::invites::revoke(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "change_password")]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<(), ApiError> {
    if new != confirm {
        return Err(AppError::validation("confirm", "the two new passwords differ").into());
    }
    let actor = actor().await?;
    let user = auth::users::change_password(&state().pool, &actor, &current, &new).await?;
    // Keep this session; every other one ends because the password hash changed.
    let mut session = session().await?;
    session
        .login(&user)
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "tokens")]
pub async fn list_tokens() -> Result<Vec<ApiToken>, ApiError> {
    Ok(auth::tokens::list(&state().pool, &actor().await?).await?)
}

#[server(prefix = "/_fn", endpoint = "create_token")]
pub async fn create_token(
    name: String,
    can_mint_tokens: Option<bool>,
) -> Result<CreatedToken, ApiError> {
    let mint = can_mint_tokens.unwrap_or(false);
    Ok(auth::tokens::create(&state().pool, &actor().await?, &name, mint).await?)
}

#[server(prefix = "/_fn", endpoint = "revoke_token")]
pub async fn revoke_token(id: Uuid) -> Result<ApiToken, ApiError> {
    Ok(auth::tokens::revoke(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "audit")]
pub async fn load_audit_page(
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<AuditPage, ApiError> {
    let query = AuditQuery {
        actor,
        action,
        target,
        from,
        to,
        before,
        limit: None,
    };
    Ok(crate::audit::page(&state().pool, &ssr::actor().await?, &query).await?)
}

#[server(prefix = "/_fn", endpoint = "audit_facets")]
pub async fn load_audit_facets() -> Result<AuditFacets, ApiError> {
    Ok(crate::audit::facets(&state().pool, &actor().await?).await?)
}

/// One operation of the REST API, for the API page.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApiOperation {
    pub tag: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub params: Vec<String>,
    pub responses: Vec<String>,
}

#[server(prefix = "/_fn", endpoint = "api_operations")]
pub async fn api_operations() -> Result<Vec<ApiOperation>, ApiError> {
    actor().await?;
    Ok(crate::api::operations())
}
