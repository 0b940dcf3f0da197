//! The IM systems on either side of a migration, as plug-ins.
//!
//! Each provider is one folder under `src/providers/` with the same parts — `provider.rs` (the
//! [`Provider`] implementation: identity, connection fields, Test connection, quotas,
//! capabilities, target rules, sandbox, callback check), its REST client, conversions from the
//! canonical dump, callbacks, and a local sandbox — and one line in [`registry`].
//!
//! **The rule:** outside `src/providers/<name>/` and its registry line, nothing names a
//! provider. Everything else asks the [`Registry`] for the migration's provider and talks to it
//! through these traits. Dump formats (`src/dumps/formats`) are named for the export file they
//! read, not for a provider, and user-facing text that comes from the provider itself is
//! exempt. `tests/console/layout.rs` greps the tree for this.

use crate::import::target::ImportTarget;
use crate::model::{ConnectionCheck, FieldSpec, ProviderInfo, Side};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

pub mod dump_only;
pub mod easemob;
pub mod limits;
pub mod netease;
pub mod outbound;
pub mod registry;
pub mod retry;
pub mod rongcloud;
pub mod self_built;
pub mod tencent;

pub use limits::{ApiLimit, Limits};
pub use registry::Registry;

/// What a caller should do about a provider answer, whatever the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Success.
    Ok,
    /// A transient failure: retry the same request with backoff.
    Retryable,
    /// The provider throttled us: slow down and retry later.
    RateLimited,
    /// Credentials or permissions are wrong: a person must fix the configuration.
    Auth,
    /// The request itself is wrong or refers to missing data: retrying will not help.
    Permanent,
}

impl ErrorClass {
    /// True when retrying the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable | ErrorClass::RateLimited)
    }
}

/// One side's connection with its secrets opened, for the moment a provider needs them.
pub struct Connection {
    pub migration_id: Uuid,
    pub side: Side,
    /// Public fields by id, as the provider's [`Provider::check`] left them.
    pub public: Map<String, Value>,
    pub secrets: HashMap<String, SecretString>,
    /// Points at a sandbox this console started.
    pub sandbox: bool,
}

impl Connection {
    pub fn text(&self, field: &str) -> Option<&str> {
        self.public.get(field).and_then(Value::as_str)
    }

    pub fn number(&self, field: &str) -> Option<i64> {
        self.public.get(field).and_then(Value::as_i64)
    }

    pub fn secret(&self, field: &str) -> Option<&SecretString> {
        self.secrets.get(field)
    }

    /// A field the provider declared required, missing: said in the words a person can act on.
    pub fn missing(field: &str) -> String {
        format!("`{field}` is not set: complete the connection on the Connections tab")
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut secrets: Vec<_> = self.secrets.keys().collect();
        secrets.sort();
        f.debug_struct("Connection")
            .field("migration_id", &self.migration_id)
            .field("side", &self.side)
            .field("public", &self.public)
            .field("secrets", &secrets)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// A field's value refused, with the field it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a provider can do besides holding a connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    /// Imports go into it (phase by phase, [`ImportTarget::support`] says through which API
    /// or why not).
    pub import: bool,
    /// Sync events it can tell imshift about (by callback or relay).
    pub sync_receives: &'static [&'static str],
    /// Sync events imshift can send into it.
    pub sync_sends: &'static [&'static str],
    /// APIs verification can read back through.
    pub read_back: &'static [&'static str],
}

/// A callback as it arrived, for [`Provider::verify_callback`].
pub struct CallbackRequest<'a> {
    pub query: &'a HashMap<String, String>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    /// Unix seconds now, for replay windows.
    pub now: i64,
}

/// One event a provider told imshift about, in the relay protocol's words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundEvent {
    /// The provider's identity for it: a redelivery carries the same key and is not stored
    /// twice.
    pub key: String,
    /// The relay event type (`message.sent`, `group.created`, …).
    pub kind: String,
    /// When it happened on the provider, Unix milliseconds.
    pub at_ms: i64,
    /// The event as the provider sent it.
    pub data: Value,
}

/// An IM system imshift can move from or into.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The name stored on migrations (such as `self_built`).
    fn id(&self) -> &'static str;
    /// What people call it.
    fn label(&self) -> &'static str;
    fn can_be(&self, side: Side) -> bool;
    /// The fields of a connection on `side`, in the order the form shows them.
    fn fields(&self, side: Side) -> Vec<FieldSpec>;
    /// Checks the public fields of a connection and puts them in their stored form (a region
    /// picks its base URL); secrets are checked by [`Provider::check_secret`].
    fn check(&self, side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError>;
    fn check_secret(&self, _side: Side, _field: &str, _value: &str) -> Result<(), String> {
        Ok(())
    }
    /// The address imshift calls, from the public fields.
    fn endpoint(&self, _side: Side, public: &Map<String, Value>) -> Option<String> {
        public
            .get("base_url")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    /// Why this side has nothing to connect to, when it has not.
    fn note(&self, _side: Side) -> Option<String> {
        None
    }
    /// Test connection exists on `side` (then [`Provider::test`] answers).
    fn can_test(&self, _side: Side) -> bool {
        false
    }
    /// A harmless signed call, said in words. `None`: this provider has no such call.
    async fn test(&self, _conn: &Connection) -> Option<ConnectionCheck> {
        None
    }
    /// Default quotas and batch sizes of the APIs imshift calls (overridable per migration).
    fn limits(&self) -> Limits {
        Limits::default()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    /// Rules the target puts on records, judged during validation.
    fn rules(&self) -> Option<&'static dyn TargetRules> {
        None
    }
    /// The import seam into this provider, with the migration's limits in force.
    fn import_target(
        &self,
        _conn: &Connection,
        _limits: Limits,
    ) -> Result<Arc<dyn ImportTarget>, String> {
        Err(format!("imports into {} are not supported", self.label()))
    }
    /// Its local sandbox, when it has one.
    fn sandbox(&self) -> Option<&dyn Sandbox> {
        None
    }
    /// Checks that a callback came from this connection's provider (signature, replay window).
    fn verify_callback(&self, _conn: &Connection, _req: &CallbackRequest) -> Result<(), String> {
        Err(format!("{} sends imshift no callbacks", self.label()))
    }
    /// The events in a callback [`Provider::verify_callback`] accepted; an error says what is
    /// malformed and where.
    fn inbound(
        &self,
        _conn: &Connection,
        _req: &CallbackRequest,
    ) -> Result<Vec<InboundEvent>, String> {
        Err(format!("{} sends imshift no events", self.label()))
    }
    /// The body answering a callback whose events are stored.
    fn inbound_answer(&self, accepted: usize, duplicates: usize) -> Value {
        serde_json::json!({ "accepted": accepted, "duplicates": duplicates })
    }
}

impl dyn Provider {
    pub fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: self.id().into(),
            label: self.label().into(),
            source: self.can_be(Side::Source),
            target: self.can_be(Side::Target),
        }
    }
}

/// A sandbox answering like the provider, in this process.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync {
    /// `imshift sandbox <provider> [ARGS]`: parses its own flags from `args` (clap, `--help`
    /// included) and serves until Ctrl-C / SIGTERM.
    async fn serve(&self, args: Vec<String>) -> Result<(), String> {
        let _ = args;
        Err("this provider's sandbox runs only inside the console".into())
    }

    /// Starts an empty sandbox on `port` (0: any free one). With `keys`, it accepts those;
    /// without, it makes its own.
    async fn start(&self, keys: Option<&Connection>, port: u16) -> Result<Started, String>;
}

/// A sandbox just started, and the connection that reaches it.
pub struct Started {
    pub sandbox: Box<dyn RunningSandbox>,
    /// Public fields of the connection (its base URL among them).
    pub public: Map<String, Value>,
    /// The secrets it accepts, by field.
    pub secrets: Vec<(String, SecretString)>,
}

/// A sandbox that runs until dropped.
pub trait RunningSandbox: Send + Sync {
    fn addr(&self) -> SocketAddr;
}

/// One record's problem: its rule code and what exactly is wrong.
pub type Problem = (&'static str, String);

/// The target's own rules on records, on top of the dump format's.
pub trait TargetRules: Send + Sync {
    /// The provider's id: which rules staged records were judged by.
    fn name(&self) -> &'static str;
    /// The provider's label, for findings' wording.
    fn label(&self) -> &'static str;
    /// Problems of one record (codes `target.*`).
    fn check(&self, refs: &crate::dumps::canonical::Refs, problems: &mut Vec<Problem>);
    /// The target takes a group's history only in strictly increasing send seconds, so
    /// messages sharing a second will move (`target.group_order`).
    fn strict_group_order(&self) -> bool {
        false
    }
}
