//! A local RongCloud (融云) IM Server API (`POST /<path>.json`), in memory, enforcing what
//! reference §5 lists: the `App-Key`/`Nonce`/`Timestamp`/`Signature` headers (or their `RC-`
//! forms) and a clock window, form bodies with repeated keys (JSON only on the v3 history
//! queries), a token bucket per API answered HTTP 429 / code 1008 (private publish counts
//! recipients per minute, group publish counts groups per second), batch sizes and id rules,
//! users registered by `user/getToken`, membership-only groups, the one-way blacklist,
//! message publish with content checked per `objectName`, and history read-back.
//!
//! Success is HTTP 200 `{"code":200,…}`; a refusal is the HTTP status §1.4 pairs with its code
//! and `{"code":N,"errorMessage":"…"}` saying which field and which limit. Unknown paths are
//! HTTP 404 with a JSON body.
//!
//! Faults can be injected (HTTP 5xx pages, body codes with their HTTP status, connections cut
//! before the call, answers lost after it was applied), at random with a seed or scripted call
//! by call (`POST /_sandbox/faults`), so a client's retries, domain switch and handling of
//! ambiguous outcomes can be tested.
//!
//! Messages that app users send (`POST /_sandbox/user_message`) — and server-API sends only
//! when [`route::RouteConfig::route_api_messages`] is on — are posted to the app server by the
//! 全量消息路由 emitter (`route.rs`, reference §3).
//!
//! Choices the reference does not settle are marked UNCONFIRMED where they are made; the main
//! ones, most of them switchable in [`SandboxConfig`]:
//! - an unknown `App-Key` → HTTP 401 code 1001; any other header failure → 401 / 1004;
//! - the clock window is ±5 minutes ([`SandboxConfig::timestamp_window_secs`]); nonces are
//!   not length-checked ([`SandboxConfig::max_nonce_chars`]);
//! - a user a call names that never got a token → HTTP 400 / 1002 "not registered"
//!   ([`SandboxConfig::require_registered`]; the real service may accept unknown ids in
//!   sends and group calls);
//! - a group past its member cap → HTTP 405 / 1002 ([`SandboxConfig::group_full`]);
//! - `group/create` of an existing id adds the members; `group/join` of an unknown id creates
//!   the group; `group/dismiss` of an unknown group → HTTP 200 code 1015;
//! - built-in content is checked field by field ([`SandboxConfig::check_content`]);
//! - publish answers `messageUIDs` per recipient (private) or per group;
//! - v3 history answers code 200 ([`SandboxConfig::history_success_code`]), at most 100 a
//!   page.

pub mod cli;
mod groups;
mod http;
mod messages;
mod params;
pub mod route;
mod users;

pub use params::{parse_form, parse_json};

use crate::providers::serving::Serving;
use crate::providers::{
    ApiLimit, Connection, Limits, RunningSandbox, Sandbox, Standalone, StartOptions, Started,
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use params::Params;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The APIs the sandbox serves with their documented quota (calls per second; for
/// `message/private/publish` recipients per second, enforced as 60× that per minute; for
/// `message/group/publish` groups per second) and batch size (reference §1.5, §4). The names
/// are the paths without the leading `/` and the `.json`.
pub const LIMITS: &[(&str, u32, Option<usize>)] = &[
    ("user/getToken", 200, None),
    ("user/refresh", 100, None),
    ("user/info", 100, None),
    ("user/token/expire", 100, Some(20)),
    ("user/blacklist/add", 100, Some(20)),
    ("user/blacklist/remove", 100, Some(20)),
    // The batch is the largest `size`.
    ("user/blacklist/query", 100, Some(1000)),
    ("friend/add", 100, None),
    ("friend/delete", 100, Some(100)),
    ("friend/get", 100, Some(100)),
    ("group/create", 100, Some(1000)),
    ("group/join", 100, Some(1000)),
    ("group/quit", 100, Some(1000)),
    ("group/dismiss", 100, None),
    ("group/refresh", 100, None),
    ("group/sync", 100, None),
    ("group/user/query", 100, None),
    ("group/user/gag/add", 100, Some(20)),
    // 6000 recipient-messages a minute, ≤1000 recipients a call.
    ("message/private/publish", 100, Some(1000)),
    // 20 group-messages a second, ≤3 groups a call.
    ("message/group/publish", 20, Some(3)),
    ("statusmessage/private/publish", 100, Some(1000)),
    ("statusmessage/group/publish", 20, Some(3)),
    // The batch is the largest `pageSize` (UNCONFIRMED).
    ("v3/message/private/query", 100, Some(100)),
    ("v3/message/group/query", 100, Some(100)),
    ("message/history", 100, None),
];

/// The API whose quota counts recipients per minute.
const PER_MINUTE: &str = "message/private/publish";

/// The quotas and batch sizes the sandbox enforces unless told others.
pub fn default_limits() -> Limits {
    Limits::from_table(LIMITS)
}

/// `base` with `over`'s entries for the APIs the sandbox knows laid on top (a provider's table
/// may name fewer APIs, or others).
fn overlay(mut base: Limits, over: &Limits) -> Limits {
    for (api, l) in &over.apis {
        if let Some(known) = base.apis.get_mut(api) {
            *known = ApiLimit {
                qps: l.qps,
                batch: l.batch.or(known.batch),
            };
        }
    }
    base
}

/// What an injected fault does to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// This HTTP status with a load balancer's HTML page; the call is not applied.
    Http(u16),
    /// `{"code":N}` with the HTTP status §1.4 pairs with it (1000 → 500, 1050 → 504, 1008 →
    /// 429, …); the call is not applied.
    Code(i64),
    /// The connection is cut before any of the answer's body; the call is not applied.
    Disconnect,
    /// The call is applied, then the connection is cut in the middle of the answer.
    LostAnswer,
    /// The call is applied, then HTTP 504 `{"code":1050}` is answered instead of its result.
    LostAnswerTimeout,
}

/// Fault injection: random rates (with [`SandboxConfig::seed`]) and a script of the next
/// calls' faults, which comes first. Settable at run time with `POST /_sandbox/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction (0..=1) of calls answered one of `http_statuses` without being applied.
    pub http_rate: f64,
    pub http_statuses: Vec<u16>,
    /// Fraction (0..=1) of calls answered one of `codes` without being applied.
    pub code_rate: f64,
    pub codes: Vec<i64>,
    /// Fraction (0..=1) of calls whose connection is cut before they are applied.
    pub disconnect_rate: f64,
    /// Fraction (0..=1) of calls applied whose answer is then lost.
    pub lost_answer_rate: f64,
    /// A lost answer is an HTTP 504 / 1050 (else a connection cut mid-answer).
    pub lost_answer_as_504: bool,
    /// The APIs (`group/create`, …) faults hit; every API when empty.
    pub apis: Vec<String>,
    /// The next calls' faults, one per call (of the APIs above), before any random one.
    pub next: VecDeque<Fault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            http_rate: 0.0,
            http_statuses: vec![500, 502, 504],
            code_rate: 0.0,
            codes: vec![1000, 1050, 1008],
            disconnect_rate: 0.0,
            lost_answer_rate: 0.0,
            lost_answer_as_504: false,
            apis: Vec::new(),
            next: VecDeque::new(),
        }
    }
}

impl Faults {
    fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("http_rate", self.http_rate),
            ("code_rate", self.code_rate),
            ("disconnect_rate", self.disconnect_rate),
            ("lost_answer_rate", self.lost_answer_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} must be between 0 and 1"));
            }
        }
        if self.http_rate > 0.0 && self.http_statuses.is_empty() {
            return Err("http_rate needs at least one status in http_statuses".into());
        }
        if self.code_rate > 0.0 && self.codes.is_empty() {
            return Err("code_rate needs at least one code in codes".into());
        }
        let scripted = self.next.iter();
        let statuses = self
            .http_statuses
            .iter()
            .copied()
            .chain(scripted.clone().filter_map(|f| match f {
                Fault::Http(s) => Some(*s),
                _ => None,
            }));
        for s in statuses {
            if !(400..=599).contains(&s) {
                return Err(format!("HTTP {s} is not a fault: use 400 to 599"));
            }
        }
        let codes = self.codes.iter().chain(scripted.filter_map(|f| match f {
            Fault::Code(c) => Some(c),
            _ => None,
        }));
        for &c in codes {
            if c == 200 {
                return Err("code 200 is not a fault".into());
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct SandboxConfig {
    /// The one app key it accepts.
    pub app_key: String,
    /// The App Secret requests' `Signature` (and the routing signature) is made with.
    pub secret: SecretString,
    /// Quota (429 / 1008 past it) and batch size per API; see [`LIMITS`].
    pub limits: Limits,
    pub faults: Faults,
    /// Seed for random faults, so a run can be replayed.
    pub seed: u64,
    /// Delay added to every call.
    pub latency_ms: u64,
    /// Per API: how long a call waits after it was applied before it is answered, so a test
    /// can stop the caller between the two.
    pub slow_answers: BTreeMap<String, u64>,
    /// How far `Timestamp` may be from the sandbox's clock (UNCONFIRMED: 5 minutes).
    pub timestamp_window_secs: u64,
    /// Refuse longer nonces (the docs say 18; the Go SDK sends up to 19, so off by default).
    pub max_nonce_chars: Option<usize>,
    /// A development app's cap on registered users (reference §1.4: 100 → 2007); off by
    /// default.
    pub dev_user_cap: Option<usize>,
    /// Users named in sends, groups and blacklists must have got a token (UNCONFIRMED: the
    /// real service may not check).
    pub require_registered: bool,
    /// The largest group (reference §2.4: 3000).
    pub group_member_max: usize,
    /// The HTTP status and code of a call that would take a group past
    /// [`Self::group_member_max`] (UNCONFIRMED: HTTP 405 per §1.4, code unknown).
    pub group_full: (u16, i64),
    /// A user's largest blacklist (reference §2.2: 3000 on premium plans).
    pub blacklist_max: usize,
    /// 信息托管 (profile hosting) is enabled: `/friend/*` answer, else 1009.
    pub entrust: bool,
    /// The hourly history log (`/message/history.json`) is enabled, else 1009.
    pub history_log: bool,
    /// Check built-in content JSON field by field (reference §2.6); off: any JSON object.
    pub check_content: bool,
    /// The code of a successful v3 history query (UNCONFIRMED: 200 or 10000).
    pub history_success_code: i64,
    /// The 全量消息路由 (message routing): where, which messages, retries, duplicates.
    pub route: route::RouteConfig,
}

impl SandboxConfig {
    pub fn new(app_key: &str, secret: &str) -> Self {
        SandboxConfig {
            app_key: app_key.to_string(),
            secret: SecretString::from(secret.to_string()),
            limits: default_limits(),
            faults: Faults::default(),
            seed: 0,
            latency_ms: 0,
            slow_answers: BTreeMap::new(),
            timestamp_window_secs: 300,
            max_nonce_chars: None,
            dev_user_cap: None,
            require_registered: true,
            group_member_max: 3000,
            group_full: (405, params::PARAM),
            blacklist_max: 3000,
            entrust: false,
            history_log: false,
            check_content: true,
            history_success_code: 200,
            route: route::RouteConfig::default(),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("app_key", &self.app_key)
            .field("secret", &"<redacted>")
            .field("faults", &self.faults)
            .field("seed", &self.seed)
            .field("latency_ms", &self.latency_ms)
            .field("require_registered", &self.require_registered)
            .field("group_member_max", &self.group_member_max)
            .field("entrust", &self.entrust)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

// ---- the data ----

/// A token handed out by `user/getToken`: kept to tell valid from void, never logged nor
/// exported.
#[derive(Clone)]
struct Token {
    value: SecretString,
    issued_ms: u64,
}

#[derive(Clone, Serialize)]
struct User {
    name: String,
    portrait: String,
    created_ms: u64,
    /// How many tokens were handed out (their values stay inside).
    tokens_issued: usize,
    /// `user/token/expire`: tokens issued before this (ms) are void.
    tokens_void_before: u64,
    #[serde(skip)]
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Serialize)]
struct Group {
    name: String,
    /// Member → when they joined (ms).
    members: BTreeMap<String, u64>,
    /// Member → muted until (ms; 0 = for good).
    gagged: BTreeMap<String, u64>,
    created_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
struct FriendEdge {
    extra: String,
    time_ms: u64,
}

/// A conversation type as routing names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Channel {
    Person,
    Group,
}

/// One stored message: a private one has one recipient (`to`), a group one `to` is the
/// group.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(rename = "messageUID")]
    uid: String,
    /// Server time (ms): the sandbox never takes a time from the caller.
    msg_time: u64,
    channel_type: Channel,
    from_user_id: String,
    to: String,
    /// A targeted group message's recipients (empty: the whole group).
    to_user_ids: Vec<String>,
    object_name: String,
    /// The content JSON text as sent.
    content: String,
    is_persisted: bool,
    is_include_sender: bool,
    is_counted: bool,
    is_mentioned: bool,
    disable_push: bool,
    disable_update_last_msg: bool,
    push_content: Option<String>,
    expansion: bool,
    extra_content: Option<String>,
    bus_channel: Option<String>,
    /// Whose history holds it (empty when not persisted).
    holders: BTreeSet<String>,
    /// `Server` (server API) or the app platform that sent it (`Android`).
    source: String,
}

/// [`Message::source`] of what came through the server API.
const SERVER: &str = "Server";

#[derive(Default, Serialize)]
struct Data {
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    /// User → the users they blocked.
    blacklists: BTreeMap<String, BTreeSet<String>>,
    /// Hosted friends (only with `entrust`): user → friend → edge.
    friends: BTreeMap<String, BTreeMap<String, FriendEdge>>,
    /// Every stored message, in send order.
    messages: Vec<Message>,
    /// Status messages accepted (not stored, not routed).
    status_messages: u64,
    #[serde(skip)]
    uids: HashMap<String, usize>,
    #[serde(skip)]
    last_time: u64,
}

impl Data {
    /// A registered user, 1002 otherwise (UNCONFIRMED code).
    fn user(&self, field: &str, id: &str) -> Result<&User, Reject> {
        self.users.get(id).ok_or_else(|| {
            rej(
                params::PARAM,
                format!("{field} {id:?} is not registered: get it a token with user/getToken"),
            )
        })
    }

    /// The user must be registered when the sandbox says so.
    fn known(&self, config: &SandboxConfig, field: &str, id: &str) -> Result<(), Reject> {
        if config.require_registered {
            self.user(field, id)?;
        }
        Ok(())
    }

    /// A fresh message UID shaped as RongCloud's (`CH2C-A072-OGM5-E3HL`).
    fn new_uid(&self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = rand::rng();
        loop {
            let raw: Vec<u8> = (0..16)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect();
            let uid = raw
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("-");
            if !self.uids.contains_key(&uid) {
                return uid;
            }
        }
    }

    /// Server time for a new message: never before the last one.
    fn stamp(&mut self, now: u64) -> u64 {
        let t = now.max(self.last_time);
        self.last_time = t;
        t
    }

    fn push_message(&mut self, m: Message) -> usize {
        let i = self.messages.len();
        self.uids.insert(m.uid.clone(), i);
        self.messages.push(m);
        i
    }

    fn members(&self) -> usize {
        self.groups.values().map(|g| g.members.len()).sum()
    }
}

// ---- requests ----

/// A refused call: RongCloud's code, the HTTP status when it is not the one §1.4 pairs with
/// the code, and the sandbox's explanation (`errorMessage`).
#[derive(Debug)]
struct Reject {
    code: i64,
    status: Option<u16>,
    msg: String,
}

fn rej(code: i64, msg: impl Into<String>) -> Reject {
    Reject {
        code,
        status: None,
        msg: msg.into(),
    }
}

/// The HTTP status RongCloud pairs with a body code (reference §1.4).
pub fn http_status(code: i64) -> u16 {
    match code {
        200 | 1015 => 200,
        1001 | 1004 | 1006 | 1007 => 401,
        1008 => 429,
        1009 => 430,
        1016 | 2007 => 403,
        1000 => 500,
        1050 => 504,
        _ => 400,
    }
}

/// The payload keys of a successful answer (`code` 200 is added around them).
type Out = Result<Map<String, Value>, Reject>;

fn ok(v: Value) -> Out {
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

struct Ctx<'a> {
    now_ms: u64,
    config: &'a SandboxConfig,
    /// `http://ADDR`, for URLs the sandbox hands out.
    base_url: &'a str,
    /// Indexes of the messages this call stored that routing should post.
    to_route: Vec<usize>,
}

impl Ctx<'_> {
    /// The batch size of `api` in force, else `default`.
    fn batch(&self, api: &str, default: usize) -> usize {
        self.config.limits.batch(api).unwrap_or(default)
    }

    /// Refuses a list longer than `api`'s batch size, or an empty one.
    fn check_batch(&self, api: &str, field: &str, n: usize, default: usize) -> Result<(), Reject> {
        if n == 0 {
            return Err(rej(params::PARAM, format!("{field} is required")));
        }
        let max = self.batch(api, default);
        if n > max {
            return Err(rej(
                params::PARAM,
                format!("{field} has {n} entries; at most {max} per call"),
            ));
        }
        Ok(())
    }
}

type Handler = fn(&mut Ctx, &mut Data, &Params) -> Out;

/// How an API takes its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Form,
    Json,
}

/// The APIs it serves: (canonical name, body kind, handler).
fn handler_for(api: &str) -> Option<(&'static str, Body, Handler)> {
    let table: &[(&'static str, Body, Handler)] = &[
        ("user/getToken", Body::Form, users::get_token),
        ("user/refresh", Body::Form, users::refresh),
        ("user/info", Body::Form, users::info),
        ("user/token/expire", Body::Form, users::token_expire),
        ("user/blacklist/add", Body::Form, users::blacklist_add),
        ("user/blacklist/remove", Body::Form, users::blacklist_remove),
        ("user/blacklist/query", Body::Form, users::blacklist_query),
        ("friend/add", Body::Form, users::friend_add),
        ("friend/delete", Body::Form, users::friend_delete),
        ("friend/get", Body::Form, users::friend_get),
        ("group/create", Body::Form, groups::create),
        ("group/join", Body::Form, groups::join),
        ("group/quit", Body::Form, groups::quit),
        ("group/dismiss", Body::Form, groups::dismiss),
        ("group/refresh", Body::Form, groups::refresh),
        ("group/sync", Body::Form, groups::sync),
        ("group/user/query", Body::Form, groups::user_query),
        ("group/user/gag/add", Body::Form, groups::gag_add),
        (
            "message/private/publish",
            Body::Form,
            messages::private_publish,
        ),
        ("message/group/publish", Body::Form, messages::group_publish),
        (
            "statusmessage/private/publish",
            Body::Form,
            messages::status_private_publish,
        ),
        (
            "statusmessage/group/publish",
            Body::Form,
            messages::status_group_publish,
        ),
        (
            "v3/message/private/query",
            Body::Json,
            messages::private_query,
        ),
        ("v3/message/group/query", Body::Json, messages::group_query),
        ("message/history", Body::Form, messages::history_log),
    ];
    table.iter().find(|(name, _, _)| *name == api).copied()
}

#[derive(Debug, Default, Clone, Serialize)]
struct ApiStats {
    calls: u64,
    /// Answers by body code (200 included).
    codes: BTreeMap<i64, u64>,
    /// Injected HTTP error pages and cut connections (the call not applied).
    http_faults: u64,
    /// Calls applied whose answer was lost (cut or 504).
    lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    /// Calls refused 1008 for going over their quota (not injected ones).
    throttled: u64,
    /// Faults injected, of every kind.
    injected: u64,
    apis: BTreeMap<&'static str, ApiStats>,
}

struct Shared {
    config: SandboxConfig,
    /// One token bucket per API (RongCloud limits each API per App Key, §1.5).
    limiters: HashMap<&'static str, DefaultDirectRateLimiter>,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    data: Mutex<Data>,
    counters: Mutex<Counters>,
    route: route::RouteState,
    /// `http://ADDR`, known once it listens.
    base_url: std::sync::OnceLock<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    fn new(config: SandboxConfig) -> Result<Self, String> {
        if config.app_key.is_empty() {
            return Err("the sandbox needs an app key".into());
        }
        if config.secret.expose_secret().is_empty() {
            return Err("the sandbox needs a non-empty app secret".into());
        }
        if config.group_member_max < 1 {
            return Err("group_member_max must be at least 1".into());
        }
        config.faults.check()?;
        let limiters = LIMITS
            .iter()
            .map(|&(api, default_qps, _)| {
                let qps = config.limits.qps(api).unwrap_or(default_qps).max(1);
                let qps = NonZeroU32::new(qps).expect("max(1) is non-zero");
                let quota = if api == PER_MINUTE {
                    // 6000 a minute is a minute's budget, not 100 every second.
                    let per_minute =
                        NonZeroU32::new(qps.get().saturating_mul(60)).expect("a non-zero product");
                    Quota::per_minute(per_minute)
                } else {
                    Quota::per_second(qps)
                };
                (api, RateLimiter::direct(quota))
            })
            .collect();
        Ok(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            faults: Mutex::new(config.faults.clone()),
            route: route::RouteState::new(&config.route),
            config,
            limiters,
            data: Mutex::new(Data::default()),
            counters: Mutex::new(Counters::default()),
            base_url: std::sync::OnceLock::new(),
        })
    }

    fn state_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let group_messages = d
            .messages
            .iter()
            .filter(|m| m.channel_type == Channel::Group)
            .count();
        json!({
            "users": d.users.len(),
            "groups": d.groups.len(),
            "members": d.members(),
            "blacklist": d.blacklists.values().map(BTreeSet::len).sum::<usize>(),
            "friends": d.friends.values().map(BTreeMap::len).sum::<usize>(),
            "messages": d.messages.len(),
            "private_messages": d.messages.len() - group_messages,
            "group_messages": group_messages,
            "status_messages": d.status_messages,
            "throttled": c.throttled,
            "injected": c.injected,
            "apis": serde_json::to_value(&c.apis).unwrap_or(Value::Null),
            "route": self.route.json(),
        })
    }

    fn export_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&*d).unwrap_or(Value::Null)
    }

    fn messages_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&d.messages).unwrap_or(Value::Null)
    }

    /// The texts of the one-to-one `RC:TxtMsg`s, each conversation's in send order.
    fn one_to_one_texts(&self) -> Vec<String> {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_pair: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for m in d
            .messages
            .iter()
            .filter(|m| m.channel_type == Channel::Person && m.object_name == messages::TEXT)
        {
            let (a, b) = (m.from_user_id.as_str(), m.to.as_str());
            let key = if a <= b { (a, b) } else { (b, a) };
            let text = serde_json::from_str::<Value>(&m.content)
                .ok()
                .and_then(|c| c["content"].as_str().map(String::from))
                .unwrap_or_default();
            by_pair.entry(key).or_default().push(text);
        }
        by_pair.into_values().flatten().collect()
    }

    /// Whether `token` was issued to `user` and is still valid.
    fn token_valid(&self, user: &str, token: &str) -> bool {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        d.users.get(user).is_some_and(|u| {
            u.tokens
                .iter()
                .any(|t| t.value.expose_secret() == token && t.issued_ms >= u.tokens_void_before)
        })
    }
}

// ---- running it ----

/// A running sandbox; stops when dropped or on [`SandboxHandle::shutdown`].
pub struct SandboxHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    serving: Serving,
}

impl fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// What a client's base URL is (`http://ADDR`; the APIs are `/user/getToken.json`, …).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where `/_sandbox/*` lives: `http://ADDR`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn app_key(&self) -> &str {
        &self.shared.config.app_key
    }

    /// Same JSON as `GET /_sandbox/state`.
    pub fn state(&self) -> Value {
        self.shared.state_json()
    }

    /// Same JSON as `GET /_sandbox/export`: everything it holds (tokens left out).
    pub fn export(&self) -> Value {
        self.shared.export_json()
    }

    /// Same JSON as `GET /_sandbox/messages`: every stored message in send order.
    pub fn messages(&self) -> Value {
        self.shared.messages_json()
    }

    /// Whether `token` was issued to `user` by `user/getToken` and is still valid (not made
    /// void by `user/token/expire`): what a client's connect would check.
    pub fn token_valid(&self, user: &str, token: &str) -> bool {
        self.shared.token_valid(user, token)
    }

    /// Replaces the fault injection in force (as `POST /_sandbox/faults`).
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.check()?;
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
        Ok(())
    }

    /// Sends as an app user (as `POST /_sandbox/user_message`); the message's UID.
    pub fn send_as_user(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        route::user_message(&self.shared, from, to, group, text)
    }

    /// Stop accepting, finish calls in flight, and wait for the server to end.
    pub async fn shutdown(self) {
        self.serving.shutdown().await
    }
}

/// Start the sandbox on `addr` (port 0 picks a free port; see `handle.addr`).
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<SandboxHandle> {
    let shared = Arc::new(
        Shared::new(config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let _ = shared.base_url.set(format!("http://{addr}"));
    let app = http::router_from(shared.clone());
    Ok(SandboxHandle {
        addr,
        shared,
        serving: Serving::start(listener, app, "RongCloud sandbox"),
    })
}

/// From `GET /_sandbox/state`: the calls refused 1008 for going over their quota.
pub fn throttled(state: &Value) -> u64 {
    state["throttled"].as_u64().unwrap_or(0)
}

#[async_trait::async_trait]
impl RunningSandbox for SandboxHandle {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn user_message(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        route::user_message(&self.shared, from, to, group, text)
    }

    fn one_to_one_texts(&self) -> Result<Vec<String>, String> {
        Ok(self.shared.one_to_one_texts())
    }

    fn throttled(&self) -> Option<u64> {
        Some(throttled(&self.state()))
    }
}

/// RongCloud's sandbox, for the provider to hand out (`imshift sandbox rongcloud`).
pub struct RongcloudSandbox;

/// A new app key, shaped as RongCloud's (13 lower-case letters and digits).
fn new_app_key() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..13)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The public fields of a connection reaching a sandbox at `base_url`.
fn connection_public(base_url: String, app_key: &str) -> Map<String, Value> {
    let mut public = Map::new();
    public.insert("data_centre".into(), "custom".into());
    public.insert("base_url".into(), base_url.into());
    public.insert("app_key".into(), app_key.into());
    public
}

#[async_trait::async_trait]
impl Sandbox for RongcloudSandbox {
    async fn serve(&self, args: Vec<String>) -> Result<(), String> {
        cli::serve(args).await
    }

    /// Starts an empty sandbox accepting the connection's `app_key` / `app_secret` (else its
    /// own) that routes its users' messages to `opts.hook_url`, signed with the App Secret
    /// as RongCloud signs routing (so `opts.sign_hooks` adds no secret).
    async fn start(
        &self,
        keys: Option<&Connection>,
        opts: StartOptions,
    ) -> Result<Started, String> {
        let app_key = keys
            .and_then(|k| k.text("app_key"))
            .filter(|k| !k.is_empty())
            .map_or_else(new_app_key, String::from);
        let secret = match keys.and_then(|k| k.secret("app_secret")) {
            Some(s) if !s.expose_secret().is_empty() => s.clone(),
            _ => SecretString::from(crate::auth::secret::generate("sbx_")),
        };
        let mut config = SandboxConfig::new(&app_key, secret.expose_secret());
        if let Some(limits) = &opts.limits {
            config.limits = overlay(default_limits(), limits);
        }
        config.route.url = opts.hook_url.clone();
        let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
        let handle = spawn(config, addr)
            .await
            .map_err(|e| format!("The RongCloud sandbox could not start on {addr}: {e}"))?;
        Ok(Started {
            public: connection_public(handle.base_url(), &app_key),
            sandbox: Box::new(handle),
            secrets: vec![("app_secret".to_string(), secret)],
        })
    }

    fn standalone(&self, listen: SocketAddr, qps: u32) -> Option<Standalone> {
        let app_key = new_app_key();
        let secret = SecretString::from(crate::auth::secret::generate("sbx_"));
        let args = vec![
            "--listen".to_string(),
            listen.to_string(),
            "--appkey".into(),
            app_key.clone(),
            "--qps".into(),
            qps.to_string(),
        ];
        Some(Standalone {
            args,
            env: vec![(cli::SECRET_ENV.into(), secret.clone())],
            public: connection_public(format!("http://{listen}"), &app_key),
            secrets: vec![("app_secret".into(), secret)],
        })
    }

    fn throttled_in(&self, state: &Value) -> Option<u64> {
        Some(throttled(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_take_the_http_status_the_reference_pairs_them_with() {
        assert_eq!(http_status(1008), 429);
        assert_eq!(http_status(1004), 401);
        assert_eq!(http_status(1009), 430);
        assert_eq!(http_status(1050), 504);
        assert_eq!(http_status(1015), 200);
        assert_eq!(http_status(1002), 400);
    }

    #[test]
    fn uids_look_like_rongclouds() {
        let d = Data::default();
        let uid = d.new_uid();
        assert_eq!(uid.len(), 19, "{uid}");
        assert_eq!(uid.split('-').count(), 4, "{uid}");
    }

    #[test]
    fn a_providers_limits_are_laid_over_the_sandboxs_own() {
        let mut over = Limits::default();
        over.apis.insert(
            "message/group/publish",
            ApiLimit {
                qps: 5,
                batch: None,
            },
        );
        over.apis.insert(
            "not/an/api",
            ApiLimit {
                qps: 1,
                batch: None,
            },
        );
        let l = overlay(default_limits(), &over);
        assert_eq!(l.qps("message/group/publish"), Some(5));
        assert_eq!(l.batch("message/group/publish"), Some(3));
        assert!(l.get("not/an/api").is_none());
    }

    #[test]
    fn faults_are_checked() {
        let mut f = Faults::default();
        f.next.push_back(Fault::Http(200));
        assert!(f.check().is_err());
        let f = Faults {
            codes: vec![200],
            ..Faults::default()
        };
        assert!(f.check().is_err());
        assert!(Faults::default().check().is_ok());
    }
}
