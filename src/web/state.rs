//! The web layer's state: the services' context and what only the web needs.

use crate::service::Services;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;

pub use crate::service::{Config, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_QUOTA_BYTES};

/// What every handler can reach: the services' context (through `Deref`, so `state.pool` and
/// a service call `migration::get(&state, …)` read as before) and the Leptos options.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub leptos: LeptosOptions,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}
