//! The router: pages (Leptos SSR), the UI's server functions, the REST API, operations
//! endpoints and static files, behind sessions, the cross-site check and request tracking.

use super::{ops, AppState, Config};
use crate::app::{shell, App};
use crate::auth::{csrf, users, AuthSession, Backend};
use crate::secrets::MasterKey;
use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use axum_login::AuthManagerLayerBuilder;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::PgPool;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Pages anyone may open. Every other page sends a visitor without a session to sign in.
pub const PUBLIC_PAGES: [&str; 3] = ["/login", "/setup", "/invite/"];

/// Where the UI's server functions live (the REST API is under /api/v1).
pub const SERVER_FN_PREFIX: &str = "/_fn";

pub async fn build(
    pool: PgPool,
    config: Config,
    leptos: LeptosOptions,
    master_key: MasterKey,
) -> Result<Router, sqlx::Error> {
    Ok(build_with_state(pool, config, leptos, master_key).await?.0)
}

/// The router and the state it serves, for starting the workers beside it.
pub async fn build_with_state(
    pool: PgPool,
    config: Config,
    leptos: LeptosOptions,
    master_key: MasterKey,
) -> Result<(Router, AppState), sqlx::Error> {
    let state = AppState {
        services: crate::service::Services::new(pool.clone(), config, master_key),
        leptos,
    };
    ops::init_metrics();

    let store = PostgresStore::new(pool.clone());
    // A console running as a restricted role (migrations by the owner) cannot create the
    // schema; the owner did (`db::migrate_sessions`).
    if let Err(e) = store.migrate().await {
        let ready: bool =
            sqlx::query_scalar("SELECT to_regclass('tower_sessions.session') IS NOT NULL")
                .fetch_one(&pool)
                .await?;
        if !ready {
            return Err(e);
        }
    }
    let sessions = SessionManagerLayer::new(store)
        .with_name("imshift_session")
        .with_secure(state.config.secure_cookies)
        .with_same_site(SameSite::Strict)
        .with_http_only(true)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(12),
        ));
    let auth = AuthManagerLayerBuilder::new(Backend::new(pool), sessions).build();

    // leptos_routes also mounts the server functions (under SERVER_FN_PREFIX), with the same
    // context as the pages.
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            {
                let state = state.clone();
                move || {
                    provide_context(state.clone());
                    super::headers::provide_nonce()
                }
            },
            {
                let leptos = state.leptos.clone();
                move || shell(leptos.clone())
            },
        )
        .route_layer(from_fn(guard_pages));

    let (api, _openapi) = crate::api::router();

    let app = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_text))
        .merge(api)
        .merge(pages)
        .route_layer(from_fn(ops::remember_route))
        .nest_service("/pkg", super::assets::pkg(&state.leptos))
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            {
                let state = state.clone();
                move || {
                    provide_context(state.clone());
                    super::headers::provide_nonce()
                }
            },
            shell,
        ))
        .layer(from_fn(super::assets::pages_no_cache))
        .layer(from_fn(csrf::check))
        .layer(auth)
        // Provider callbacks carry no session and no Origin: merged after those two layers,
        // so neither applies; the provider's own signature check does instead.
        .merge(crate::sync::router())
        .layer(Extension(state.clone()))
        .layer(from_fn(ops::track))
        .layer(from_fn(super::headers::security))
        .with_state(state.clone());
    Ok((app, state))
}

/// Sends visitors to the right door: setup until an owner exists, then sign-in for anyone
/// without a session. Server functions and the API check again; this is for people.
async fn guard_pages(
    Extension(state): Extension<AppState>,
    session: AuthSession,
    uri: Uri,
    request: Request,
    next: Next,
) -> Response {
    let path = uri.path();
    if path.starts_with(SERVER_FN_PREFIX) {
        return next.run(request).await;
    }
    let signed_in = session.user.is_some();
    // Someone is signed in only after setup, so the owner check is skipped for them (but not
    // on /setup itself, which must close for everyone).
    let owner = if signed_in && path != "/setup" {
        true
    } else {
        match users::owner_exists(&state.pool).await {
            Ok(o) => o,
            Err(e) => return e.into_response(),
        }
    };
    if path == "/setup" {
        if owner {
            return Redirect::to("/login").into_response();
        }
    } else if !owner {
        return Redirect::to("/setup").into_response();
    } else if path == "/login" {
        if signed_in {
            return Redirect::to("/").into_response();
        }
    } else if !path.starts_with("/invite/") && !signed_in {
        let next = urlencode(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    next.run(request).await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
