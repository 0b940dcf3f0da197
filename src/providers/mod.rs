//! The IM systems on either side of a migration, as plug-ins.
//!
//! Each provider is one folder under `src/providers/` with the same parts — `provider.rs` (the
//! [`Provider`] implementation: identity, connection fields, Test connection, quotas,
//! capabilities, target rules, sandbox, callback check), its REST client, conversions from the
//! canonical dump, callbacks, and a local sandbox — and one line in [`registry`].
//!
//! **The rule:** outside `src/providers/<name>/` and its registry lines, nothing names a
//! provider. Everything else asks the [`Registry`] for the migration's provider and talks to it
//! through these traits. A vendor export the Dumps tab reads is the provider's too
//! (`<name>/dump.rs`, a [`crate::dumps::formats::VendorFormat`] listed by
//! [`registry::dump_formats`]). `tests/console/layout.rs` greps the tree for this.

use crate::import::target::ImportTarget;
use crate::model::{ConnectionCheck, FieldSpec, MigrationId, ProviderInfo, Side};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub mod digest;
pub mod dump_only;
pub mod easemob;
pub mod limits;
pub mod netease;
pub mod outbound;
pub mod registry;
pub mod reorder;
pub mod retry;
pub mod rongcloud;
pub mod self_built;
pub mod serving;
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
    pub migration_id: MigrationId,
    pub side: Side,
    /// Public fields by id, as the provider's [`Provider::check`] left them.
    pub public: Map<String, Value>,
    pub secrets: HashMap<String, SecretString>,
    /// Points at a sandbox this console started.
    pub sandbox: bool,
}

impl Connection {
    /// A side with nothing set yet.
    pub fn empty(migration_id: MigrationId, side: Side) -> Self {
        Connection {
            migration_id,
            side,
            public: Map::new(),
            secrets: HashMap::new(),
            sandbox: false,
        }
    }

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
    /// The event's data in the relay protocol's (canonical) form, whatever the provider's.
    pub data: Value,
    /// Who made it, when the event says: [`ORIGIN`] marks what imshift itself sent there.
    pub origin: Option<String>,
    /// A second identity the provider derives from the content (a message's sender and
    /// random), known to the sink before it sends: the id map matches it too.
    pub alias: Option<String>,
}

/// The origin tag imshift puts on everything it sends into a side (relay `origin`, a
/// message's custom data), so that it is never sent back.
pub const ORIGIN: &str = "imshift";

/// One event on its way to a side, in the relay protocol's words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncEvent {
    /// Its identity on the side it came from: ids and randoms derived from it make a resend
    /// land once.
    pub key: String,
    pub kind: String,
    pub at_ms: i64,
    pub data: Value,
    /// For a `message.recalled`: what the sender found, on the side this goes to, of the
    /// message it recalls (sinks cannot query the database). `None` for other kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
    /// Earlier tries at delivering it: a side whose API does not absorb a repeat looks for
    /// the first try's result before sending again.
    #[serde(skip)]
    pub attempts: u32,
}

/// The message a `message.recalled` names, as the sender found it among the events of the
/// same direction (a `message.sent` of the same `id` and conversation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Original {
    /// No such message was applied on the other side: never synced, or still a dead letter.
    Unknown,
    /// Applied; `made` is its identity there when the side answered one (such as a group
    /// message's `group:{id}:{seq}`).
    Applied { made: Option<String> },
    /// The message came from the side the recall goes to (imshift made it on the recall's
    /// side), and the recall's `id` is already its id there.
    Theirs,
}

/// What became of one event sent into a side.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Applied (or already there). `made` is its identity on that side when the provider
    /// answered one: the id map, so that side's report of it is known as an echo.
    Applied { made: Option<String> },
    /// Not applied: what to do about it and why, with the provider's code.
    Failed {
        class: ErrorClass,
        code: Option<String>,
        message: String,
    },
}

impl Delivered {
    pub fn failed(class: ErrorClass, code: Option<String>, message: impl Into<String>) -> Self {
        Delivered::Failed {
            class,
            code,
            message: message.into(),
        }
    }

    /// The side did not answer (connect, TLS, timeout): retried, and coded `unreachable`
    /// whichever provider it is, so the Sync tab reads the same for either side.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::failed(ErrorClass::Retryable, Some("unreachable".into()), message)
    }
}

/// The echo guards a sink applies besides the origin tag in the relay protocol. All on in
/// production; tests turn one off to prove the next one catches what it let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoGuards {
    /// The provider's own "fire no callback for this" flags and callback-free APIs.
    pub provider_flags: bool,
    /// imshift's tag in a message's custom data.
    pub origin_tag: bool,
}

impl Default for EchoGuards {
    fn default() -> Self {
        EchoGuards {
            provider_flags: true,
            origin_tag: true,
        }
    }
}

/// One page of a side's history read back.
pub struct ReadPage {
    /// Its events, keyed exactly as the side's callbacks key them (so what did arrive is a
    /// duplicate, not a second copy).
    pub events: Vec<InboundEvent>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<String>,
}

/// Reads a side's history back, for filling gaps its callbacks left.
#[async_trait::async_trait]
pub trait ReadBack: Send + Sync {
    /// The pacing key and quota of reading `conv` (shared with imports and sync).
    fn pace(&self, conv: &str) -> Option<(String, f64)>;
    /// One page of what happened in `conv` (`c2c:<a>:<b>` or `group:<id>`, see
    /// `crate::sync::conversation`) between the two times (Unix ms), from `page`: its events
    /// oldest first; pages may go newest first.
    async fn read(
        &self,
        conv: &str,
        from_ms: i64,
        to_ms: i64,
        page: Option<String>,
    ) -> Result<ReadPage, String>;
    /// The pacing key and quota of listing an account's conversations.
    fn pace_listing(&self) -> Option<(String, f64)> {
        None
    }
    /// One page (from `page`) of the conversations `account` had a message in at or after
    /// `since_ms`, as `read` names them: the chats that began during a gap, which imshift
    /// never saw. `None`: this side cannot list an account's conversations.
    async fn conversations_of(
        &self,
        _account: &str,
        _since_ms: i64,
        _page: Option<String>,
    ) -> Option<Result<ConversationsPage, String>> {
        None
    }
}

/// A page of an account's conversations, with where the next page starts.
#[derive(Debug, Default)]
pub struct ConversationsPage {
    pub conversations: Vec<String>,
    pub next: Option<String>,
}

/// Where sync delivers one side's events: the other side's send APIs.
#[async_trait::async_trait]
pub trait SyncSink: Send + Sync {
    /// Events one request carries; 1 sends each on its own.
    fn batch(&self) -> usize {
        1
    }
    /// The pacing key and quota (requests per second) of the API `event` goes through, shared
    /// with imports of the same app; `None`: not paced.
    fn pace(&self, event: &SyncEvent) -> Option<(String, f64)>;
    /// The identities `event` will have on this side, known before it is sent (an inbound
    /// event's key or alias): written to the id map first, so that the side reporting it back
    /// at once is known as an echo even before the answer is recorded.
    fn expected_ids(&self, _event: &SyncEvent) -> Vec<String> {
        vec![]
    }
    /// Sends `events` (at most [`SyncSink::batch`], of different conversations); one answer
    /// per event, in order.
    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered>;
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
    /// The word after `imshift sandbox` that runs it (its id unless it says otherwise).
    fn sandbox_name(&self) -> &'static str {
        self.id()
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
    /// Where sync sends the other side's events into this one.
    fn sync_sink(
        &self,
        _conn: &Connection,
        _limits: Limits,
        _guards: EchoGuards,
    ) -> Result<Arc<dyn SyncSink>, String> {
        Err(format!(
            "imshift cannot send events into {} yet",
            self.label()
        ))
    }
    /// Reads this side's history back; `None`: it cannot (a side that resends by itself, as a
    /// relay does on a 5xx or a timeout, needs no gap filling).
    fn read_back(
        &self,
        _conn: &Connection,
        _limits: Limits,
    ) -> Option<Result<Arc<dyn ReadBack>, String>> {
        None
    }
    /// [`Provider::send_canary`] can send (a sandbox of this console always can).
    fn can_send_canary(&self) -> bool {
        false
    }
    /// Sends a canary: `from` writes `text` to `to` on this side as an app user would, so
    /// that the side reports it to imshift like any message. `None`: imshift cannot make this
    /// side send (a self-built system sends only what its users do).
    async fn send_canary(
        &self,
        _conn: &Connection,
        _from: &str,
        _to: &str,
        _text: &str,
    ) -> Option<Result<String, String>> {
        None
    }
    /// The values to paste into this side's own console so that it sends imshift its events
    /// (`hook_url` is imshift's door for this side), as (what, value) pairs.
    fn hook_setup(&self, _conn: &Connection, hook_url: &str) -> Vec<(String, String)> {
        vec![("Events URL".into(), hook_url.into())]
    }
    /// Files the target's own staff import for what its API cannot take; `None`: everything
    /// goes through its API (or nowhere).
    fn hand_over(&self) -> Option<&dyn HandOver> {
        None
    }
    /// How long an event from this side waits before it is sent, so that an earlier event of
    /// the same conversation that arrives late (callbacks sent concurrently overtake each
    /// other) still goes first. Zero by default: every event waits this long.
    fn hold_back(&self, _conn: &Connection) -> std::time::Duration {
        std::time::Duration::ZERO
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

/// Files a target's staff import by hand (a target that imports history only so): built
/// from the staged history, downloaded from the Import tab and handed over.
pub trait HandOver: Send + Sync {
    /// What the files are, on the Import tab.
    fn label(&self) -> &'static str;
    /// What to do with them, in words.
    fn note(&self) -> &'static str;
    /// The import phases whose records go in these files instead of through the API (the
    /// preflight counts them apart).
    fn phases(&self) -> &'static [&'static str];
    /// A writer of the files into `dir` (empty, made for this build).
    fn writer(&self, dir: &std::path::Path) -> Result<Box<dyn HandOverWriter>, String>;
    /// One record as a line of the files, for the target's importer pulling increments over
    /// HTTP. `Ok(None)`: the files do not carry its kind; `Err`: why it cannot be written.
    fn line(
        &self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Value>, String>;
}

/// Writes hand-over files one canonical record at a time, in the order given.
pub trait HandOverWriter: Send {
    /// Writes one record (a message or a group event). `Ok(false)`: these files do not carry
    /// its kind. `group_ids` is what the import made of an old group id, where the target
    /// chose its own.
    fn push(
        &mut self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<bool, HandOverError>;
    /// Closes the files and writes their manifest; returns it, with `files`: a list of
    /// `{name, lines, bytes, sha256}`.
    fn finish(self: Box<Self>) -> Result<Value, String>;
}

#[derive(Debug)]
pub enum HandOverError {
    /// This record cannot be written: it is kept aside with this reason, the rest go on.
    Record(String),
    /// Writing failed: the build stops.
    Io(String),
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

    /// Starts an empty sandbox. With `keys`, it accepts those; without, it makes its own.
    async fn start(&self, keys: Option<&Connection>, opts: StartOptions)
        -> Result<Started, String>;

    /// How to run it as a process of its own (`imshift sandbox <provider> ARGS`, with `env`)
    /// listening on `listen`, every API at `qps`, and the connection that reaches it: for a
    /// benchmark that measures the console's CPU alone. None when it runs only in-process.
    fn standalone(&self, listen: SocketAddr, qps: u32) -> Option<Standalone> {
        let _ = (listen, qps);
        None
    }

    /// From its `GET /_sandbox/state` JSON: how many requests it refused for going over a quota.
    fn throttled_in(&self, state: &Value) -> Option<u64> {
        let _ = state;
        None
    }
}

/// A sandbox to launch as `imshift sandbox <provider> ARGS` with `env`, and the connection
/// that reaches it once it listens.
pub struct Standalone {
    pub args: Vec<String>,
    pub env: Vec<(String, SecretString)>,
    pub public: Map<String, Value>,
    pub secrets: Vec<(String, SecretString)>,
}

/// Where an in-process sandbox listens and where it sends what its users do.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// 0: any free port.
    pub port: u16,
    /// The console's inbound door for this migration and side (`…/hooks/{id}/{side}`): the
    /// sandbox posts its callbacks or relay events there.
    pub hook_url: Option<String>,
    /// The quotas it enforces (a benchmark's raised ones, from the provider's
    /// [`Provider::limits`]); None: the provider's documented quotas.
    pub limits: Option<Limits>,
    /// Sign what goes to `hook_url` with a secret of the sandbox's own, returned among
    /// [`Started::secrets`], so the door checks signatures as it would in production.
    pub sign_hooks: bool,
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
#[async_trait::async_trait]
pub trait RunningSandbox: Send + Sync {
    fn addr(&self) -> SocketAddr;

    /// Does what an app user does: `from` sends `text` to `to` (an account, or a group when
    /// `group`), so the sandbox tells the console as the real service would. Answers the
    /// message's id on this side.
    async fn user_message(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        let _ = (from, to, group, text);
        Err("this sandbox cannot send as a user".into())
    }

    /// The texts of the one-to-one messages it stored, each conversation's in the order
    /// stored: what a benchmark checks arrived.
    fn one_to_one_texts(&self) -> Result<Vec<String>, String> {
        Err("this sandbox cannot list what it stored".into())
    }

    /// How many requests it refused for going over a quota, when it counts them.
    fn throttled(&self) -> Option<u64> {
        None
    }
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
