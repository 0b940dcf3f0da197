use crate::providers::tencent::sandbox::SandboxHandle;
use crate::secrets::MasterKey;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Settings the server reads once at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    /// How people reach the console; invite links are built from it.
    pub public_url: String,
    /// Mark cookies `Secure` (on when `public_url` is https).
    pub secure_cookies: bool,
    pub invite_ttl: Duration,
    /// Failed sign-ins for one email within `login_window` before sign-in is refused.
    pub login_max_failures: i64,
    pub login_window: Duration,
}

impl Config {
    pub fn for_url(public_url: &str) -> Self {
        let public_url = public_url.trim_end_matches('/').to_string();
        Self {
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            invite_ttl: Duration::from_secs(72 * 3600),
            login_max_failures: 5,
            login_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What every handler can reach. The pool travels here (and into Leptos context), never
/// through a global.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub leptos: LeptosOptions,
    /// Seals and opens app keys at rest.
    pub master_key: Arc<MasterKey>,
    /// In-process Tencent sandboxes for rehearsals, by migration.
    pub sandboxes: Arc<Mutex<HashMap<Uuid, SandboxHandle>>>,
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
