//! The context every service runs on, whichever door called it (a page's server function, a
//! REST handler, a worker, the command line): the pool, the settings read at start-up, the
//! master key, the provider registry and the sandboxes this process started. The web layer
//! holds it in its state beside what only the web needs (Leptos options).

use crate::model::{MigrationId, Side, UploadId};
use crate::providers::{EchoGuards, Registry, RunningSandbox};
use crate::secrets::MasterKey;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// 16 GiB: a 2 GB export fits many times over; larger dumps should be split.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 16 << 30;
/// 200 GiB of uploads waiting to be staged, all uploads together.
pub const DEFAULT_UPLOAD_QUOTA_BYTES: u64 = 200 << 30;

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
    /// Where uploads wait until they are staged (IMSHIFT_DATA_DIR).
    pub data_dir: PathBuf,
    /// The largest file one upload may be (IMSHIFT_MAX_UPLOAD_BYTES).
    pub max_upload_bytes: u64,
    /// What reading one upload may cost: line length, expansion, findings kept per rule.
    pub dump_limits: crate::dumps::Limits,
    /// Jobs this process runs at once; 0 runs no workers (IMSHIFT_WORKERS).
    pub workers: usize,
    /// How long a job stays with a worker that stopped answering before another takes it.
    pub job_lease: Duration,
    /// The first wait after `login_max_failures` failures; each further failure doubles it,
    /// up to `login_window`.
    pub login_delay: Duration,
    /// Proxies whose X-Forwarded-For / Forwarded headers name the client
    /// (IMSHIFT_TRUSTED_PROXIES, CIDR list).
    pub trusted_proxies: Vec<sqlx::types::ipnetwork::IpNetwork>,
    /// A bearer token that opens /metrics to non-loopback callers (IMSHIFT_METRICS_TOKEN).
    pub metrics_token: Option<secrecy::SecretString>,
    /// Bytes all unfinished uploads may hold together, by announced size
    /// (IMSHIFT_UPLOAD_QUOTA_BYTES).
    pub upload_quota_bytes: u64,
    /// An upload that receives no byte for this long is discarded (IMSHIFT_UPLOAD_EXPIRY_HOURS).
    pub upload_expiry: Duration,
    /// Attempts a dump ingest gets before its upload is failed (IMSHIFT_INGEST_MAX_ATTEMPTS).
    pub ingest_max_attempts: i32,
    /// The providers migrations can name (tests add their own).
    pub providers: Registry,
    /// Sync's echo guards besides the origin tag: all on, except in tests that prove the
    /// next guard catches what one lets through.
    pub sync_guards: EchoGuards,
    /// Silence of every console process longer than this is a gap in the sides' callbacks,
    /// filled by reading their history back (IMSHIFT_SYNC_GAP_SECS).
    pub sync_gap_after: Duration,
    /// How often a canary goes through each direction that is on; zero sends none
    /// (IMSHIFT_SYNC_CANARY_SECS).
    pub sync_canary_every: Duration,
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
            data_dir: PathBuf::from("imshift-data"),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            dump_limits: crate::dumps::Limits::default(),
            workers: 8,
            job_lease: Duration::from_secs(15),
            login_delay: Duration::from_secs(1),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            upload_quota_bytes: DEFAULT_UPLOAD_QUOTA_BYTES,
            upload_expiry: Duration::from_secs(7 * 24 * 3600),
            ingest_max_attempts: 3,
            providers: Registry::builtin(),
            sync_guards: EchoGuards::default(),
            sync_gap_after: Duration::from_secs(15),
            sync_canary_every: Duration::from_secs(300),
        }
    }
}

/// The sandboxes this process started for rehearsals, by migration and side.
/// Shared handles, so a caller can use one without holding the map's lock (a sandbox's user
/// message comes back to this console, which opens the same map).
pub type Sandboxes = Arc<Mutex<HashMap<(MigrationId, Side), Arc<dyn RunningSandbox>>>>;

/// Connections the door (`/hooks/…`) opened lately, by migration and side, with when: every
/// delivery needs its side's secrets, and opening them is three queries and a decryption.
pub type Opened = Arc<
    std::sync::Mutex<
        HashMap<
            (MigrationId, Side),
            (
                std::time::Instant,
                Arc<dyn crate::providers::Provider>,
                Arc<crate::providers::Connection>,
            ),
        >,
    >,
>;

/// What the services reach. The pool travels here (and into Leptos context through the web
/// state), never through a global.
#[derive(Clone)]
pub struct Services {
    pub pool: PgPool,
    pub config: Arc<Config>,
    /// Seals and opens app keys at rest.
    pub master_key: Arc<MasterKey>,
    /// In-process provider sandboxes for rehearsals, by migration and side.
    pub sandboxes: Sandboxes,
    /// Uploads receiving bytes in this process right now (one writer per upload).
    pub receiving: Arc<std::sync::Mutex<HashSet<UploadId>>>,
    /// This machine, for jobs that need its disk (see `jobs.node`).
    pub node: String,
    /// Rung when sync events are stored, so this process's sender takes them at once
    /// (other processes find them on their next look).
    pub sync_wake: Arc<tokio::sync::Notify>,
    pub opened: Opened,
    /// The door's writer: deliveries arriving together are stored in one statement.
    pub door: Arc<crate::sync::commit::GroupCommit>,
}

impl Services {
    pub fn new(pool: PgPool, config: Config, master_key: MasterKey) -> Self {
        let node = node_name(&config.data_dir);
        Services {
            pool,
            config: Arc::new(config),
            master_key: Arc::new(master_key),
            sandboxes: Default::default(),
            receiving: Default::default(),
            node,
            sync_wake: Default::default(),
            opened: Default::default(),
            door: Default::default(),
        }
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }
}

/// A machine is its host name and data directory: two processes sharing both share uploads.
pub fn node_name(data_dir: &std::path::Path) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}
