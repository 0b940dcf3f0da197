//! A faithful in-memory emulator of the Tencent IM REST API (spec §5), for tests and
//! rehearsals without a Tencent account. It checks what the real server checks (signature,
//! admin, QPS, batch sizes, existence, id rules, ordering, dedupe, sizes) and answers with
//! the real error codes, always over HTTP 200. Faults and latency can be injected with a
//! seed so runs are reproducible, and Tencent-format callbacks can be posted to an app.

mod accounts;
mod args;
mod groups;
mod http;
mod messages;
mod profiles;
mod relationships;

use super::Limits;
use accounts::{account_check, account_import, multiaccount_import};
use axum::Router;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use groups::{
    add_group_member, create_group, delete_group_member, destroy_group, group_msg_get_simple,
    group_msg_recall, import_group, import_group_member, import_group_msg, modify_group_base_info,
    send_group_msg, set_unread_msg_num,
};
use http::router_from;
use messages::{admin_getroammsg, admin_msgwithdraw, importmsg, recentcontact_get_list, sendmsg};
use profiles::{portrait_get, portrait_set};
use rand::rngs::StdRng;
use rand::SeedableRng;
use relationships::{black_list_add, friend_check, friend_delete, friend_write};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The sandbox's notion of "now", in Unix seconds. Clones share one clock.
#[derive(Clone)]
pub struct Clock(Arc<Mutex<ClockMode>>);

enum ClockMode {
    System { offset: i64 },
    Fixed(u64),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now={})", self.now())
    }
}

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Mutex::new(ClockMode::System { offset: 0 })))
    }

    pub fn fixed(now: u64) -> Self {
        Clock(Arc::new(Mutex::new(ClockMode::Fixed(now))))
    }

    pub fn now(&self) -> u64 {
        match *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            ClockMode::Fixed(t) => t,
            ClockMode::System { offset } => {
                let real = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                real.saturating_add_signed(offset)
            }
        }
    }

    /// Milliseconds, as Tencent's callbacks carry `EventTime`: two events of one second
    /// keep their order.
    pub fn now_ms(&self) -> u64 {
        match *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            ClockMode::Fixed(t) => t * 1000,
            ClockMode::System { offset } => {
                let real = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                real.saturating_add_signed(offset * 1000)
            }
        }
    }

    /// Move time forward (or back, with a negative value).
    pub fn advance(&self, secs: i64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *m {
            ClockMode::Fixed(t) => *t = t.saturating_add_signed(secs),
            ClockMode::System { offset } => *offset += secs,
        }
    }

    pub fn set(&self, now: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = ClockMode::Fixed(now);
    }
}

#[derive(Clone)]
pub struct SandboxConfig {
    pub sdkappid: u64,
    /// The app's secret key; UserSigs must be signed with it.
    pub key: SecretString,
    /// App admin identifiers allowed to call the REST API.
    pub admins: Vec<String>,
    pub limits: Limits,
    /// Fraction (0..=1) of authenticated requests answered with a retryable error.
    pub fault_rate: f64,
    /// Fraction (0..=1) of requests carried out whose answer is then lost: the connection is
    /// cut in the middle of the answer, as when a gateway or the network drops it. The
    /// caller cannot tell whether the request took effect.
    pub lost_answer_rate: f64,
    /// The APIs (`service/command`) whose answers may be lost; every API when empty.
    pub lost_answer_apis: Vec<String>,
    /// Delay added to every request.
    pub latency_ms: u64,
    /// Seed for fault injection, so a run can be replayed.
    pub seed: u64,
    /// Where to POST callbacks; none are sent when unset.
    pub callback_url: Option<String>,
    /// Callback auth token; when set, callbacks carry `Sign` and `RequestTime`.
    pub callback_token: Option<SecretString>,
    /// Fraction (0..=1) of callbacks never sent: Tencent does not retry an after-callback
    /// that failed, so a receiver that was down loses it.
    pub lost_callback_rate: f64,
    /// Load state from and save it to this JSON file.
    pub state_file: Option<PathBuf>,
    pub clock: Clock,
    /// Code for per-API QPS excess: 60007 by default (60011/60018 are also plausible).
    pub rate_limit_code: i64,
    /// Accept the legacy `SyncFromOldSystem: 1` (current docs allow only 2 and 5).
    pub accept_sync_from_old_system_1: bool,
    /// Accept an imported group message whose SendTime equals the previous one (the docs say
    /// strictly later).
    pub allow_equal_group_send_time: bool,
    /// Registered `Tag_Profile_Custom_<Key>` keys (without the prefix).
    pub custom_profile_tags: Vec<String>,
}

impl SandboxConfig {
    pub fn new(sdkappid: u64, key: &str, admin: &str) -> Self {
        SandboxConfig {
            sdkappid,
            key: SecretString::from(key.to_string()),
            admins: vec![admin.to_string()],
            limits: Limits::default(),
            fault_rate: 0.0,
            lost_answer_rate: 0.0,
            lost_answer_apis: Vec::new(),
            latency_ms: 0,
            seed: 0,
            callback_url: None,
            callback_token: None,
            lost_callback_rate: 0.0,
            state_file: None,
            clock: Clock::system(),
            rate_limit_code: 60007,
            accept_sync_from_old_system_1: false,
            allow_equal_group_send_time: false,
            custom_profile_tags: Vec::new(),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("sdkappid", &self.sdkappid)
            .field("key", &"<redacted>")
            .field("admins", &self.admins)
            .field("fault_rate", &self.fault_rate)
            .field("lost_answer_rate", &self.lost_answer_rate)
            .field("lost_answer_apis", &self.lost_answer_apis)
            .field("latency_ms", &self.latency_ms)
            .field("seed", &self.seed)
            .field("callback_url", &self.callback_url)
            .field("lost_callback_rate", &self.lost_callback_rate)
            .field(
                "callback_token",
                &self.callback_token.as_ref().map(|_| "<redacted>"),
            )
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Account {
    nick: Option<String>,
    face_url: Option<String>,
    profile: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    role: String,
    join_time: u64,
    unread: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupMessage {
    seq: u64,
    from: String,
    time: u64,
    random: u64,
    body: Value,
    cloud_custom_data: Option<String>,
    /// Recalled by group_msg_recall: read back with `IsPlaceMsg` 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    recalled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    group_type: String,
    name: String,
    owner: Option<String>,
    introduction: Option<String>,
    notification: Option<String>,
    face_url: Option<String>,
    max_member_count: Option<u64>,
    apply_join_option: Option<String>,
    create_time: u64,
    members: BTreeMap<String, Member>,
    messages: Vec<GroupMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct C2cMessage {
    from: String,
    to: String,
    seq: u64,
    random: u64,
    time: u64,
    body: Value,
    cloud_custom_data: Option<String>,
    /// Recalled by admin_msgwithdraw: read back with `MsgFlagBits` 8.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    recalled: bool,
}

impl C2cMessage {
    fn key(&self) -> String {
        format!("{}_{}_{}", self.seq, self.random, self.time)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    accounts: BTreeMap<String, Account>,
    friends: BTreeMap<String, BTreeSet<String>>,
    blocks: BTreeMap<String, BTreeSet<String>>,
    groups: BTreeMap<String, Group>,
    /// Keyed by the two accounts in sorted order, joined by a newline.
    c2c: BTreeMap<String, Vec<C2cMessage>>,
    next_group_no: u64,
    next_c2c_seq: u64,
    /// importmsg dedupe: (conversation, MsgSeq, MsgRandom, MsgTimeStamp).
    #[serde(skip)]
    c2c_seen: HashSet<(String, u64, u64, u64)>,
    /// sendmsg dedupe: key → (first seen, MsgTime, MsgKey).
    #[serde(skip)]
    sendmsg_seen: HashMap<String, (u64, u64, String)>,
    /// group Random dedupe: key → (first seen, MsgSeq, MsgTime).
    #[serde(skip)]
    group_random_seen: HashMap<String, (u64, u64, u64)>,
}

impl Data {
    fn rebuild_indexes(&mut self) {
        self.c2c_seen = self
            .c2c
            .iter()
            .flat_map(|(k, msgs)| {
                msgs.iter()
                    .map(move |m| (k.clone(), m.seq, m.random, m.time))
            })
            .collect();
    }
}

#[derive(Debug, Default, Clone, Serialize)]
struct ApiStats {
    calls: u64,
    rejected: u64,
    codes: BTreeMap<i64, u64>,
    /// Requests carried out whose answer the sandbox cut (fault injection).
    lost: u64,
}

struct Shared {
    config: SandboxConfig,
    limiters: HashMap<&'static str, DefaultDirectRateLimiter>,
    rng: Mutex<StdRng>,
    data: Mutex<Data>,
    stats: Mutex<BTreeMap<String, ApiStats>>,
    callbacks_sent: Arc<AtomicU64>,
    callbacks_lost: AtomicU64,
    http: reqwest::Client,
    /// Set by `spawn`: state is saved by a background task instead of on every request,
    /// so large imports do not rewrite the whole file per call.
    save_in_background: std::sync::atomic::AtomicBool,
    dirty: std::sync::atomic::AtomicBool,
}

/// A refused request: the Tencent code and the sandbox's explanation.
#[derive(Debug)]
struct Reject {
    code: i64,
    info: String,
}

fn rej(code: i64, info: impl Into<String>) -> Reject {
    Reject {
        code,
        info: info.into(),
    }
}

type Out = Result<Map<String, Value>, Reject>;

/// A callback to post once the state lock is released.
struct PendingCallback {
    command: &'static str,
    platform: &'static str,
    body: Value,
}

/// Per-request context handed to the API handlers.
struct Ctx<'a> {
    now: u64,
    /// The same moment in milliseconds, for callbacks' `EventTime`.
    now_ms: u64,
    /// `OptPlatform` of the callbacks this request fires: `RESTAPI` for REST calls, a client
    /// platform for what a simulated user does.
    platform: &'static str,
    admin: &'a str,
    config: &'a SandboxConfig,
    callbacks: Vec<PendingCallback>,
}

impl Ctx<'_> {
    fn callback(&mut self, command: &'static str, mut body: Value) {
        if self.config.callback_url.is_none() {
            return;
        }
        if let Some(o) = body.as_object_mut() {
            o.insert("CallbackCommand".into(), json!(command));
            o.insert("EventTime".into(), json!(self.now_ms));
        }
        self.callbacks.push(PendingCallback {
            command,
            platform: self.platform,
            body,
        });
    }

    /// Admins exist as accounts on a real app (they are created with it).
    fn account_exists(&self, data: &Data, id: &str) -> bool {
        data.accounts.contains_key(id) || self.config.admins.iter().any(|a| a == id)
    }
}

// ---- dispatch ----

type Handler = fn(&mut Ctx, &mut Data, &Value) -> Out;

fn handler_for(api: &str) -> Option<(Handler, bool)> {
    // (handler, mutates state)
    Some(match api {
        "im_open_login_svc/account_import" => (account_import as Handler, true),
        "im_open_login_svc/multiaccount_import" => (multiaccount_import, true),
        "im_open_login_svc/account_check" => (account_check, false),
        "profile/portrait_set" => (portrait_set, true),
        "profile/portrait_get" => (portrait_get, false),
        "sns/friend_import" => (
            |c, d, v| friend_write(c, d, v, "sns/friend_import", false),
            true,
        ),
        "sns/friend_add" => (
            |c, d, v| friend_write(c, d, v, "sns/friend_add", true),
            true,
        ),
        "sns/friend_delete" => (friend_delete, true),
        "sns/friend_check" => (friend_check, false),
        "sns/black_list_add" => (black_list_add, true),
        "openim/importmsg" => (importmsg, true),
        "openim/sendmsg" => (sendmsg, true),
        "openim/admin_getroammsg" => (admin_getroammsg, false),
        "openim/admin_msgwithdraw" => (admin_msgwithdraw, true),
        "recentcontact/get_list" => (recentcontact_get_list, false),
        "group_open_http_svc/import_group" => (import_group, true),
        "group_open_http_svc/import_group_member" => (import_group_member, true),
        "group_open_http_svc/import_group_msg" => (import_group_msg, true),
        "group_open_http_svc/set_unread_msg_num" => (set_unread_msg_num, true),
        "group_open_http_svc/create_group" => (create_group, true),
        "group_open_http_svc/destroy_group" => (destroy_group, true),
        "group_open_http_svc/modify_group_base_info" => (modify_group_base_info, true),
        "group_open_http_svc/add_group_member" => (add_group_member, true),
        "group_open_http_svc/delete_group_member" => (delete_group_member, true),
        "group_open_http_svc/send_group_msg" => (send_group_msg, true),
        "group_open_http_svc/group_msg_get_simple" => (group_msg_get_simple, false),
        "group_open_http_svc/group_msg_recall" => (group_msg_recall, true),
        _ => return None,
    })
}

impl Shared {
    fn new(config: SandboxConfig) -> std::io::Result<Self> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        if config.admins.is_empty() {
            return Err(invalid(
                "the sandbox needs at least one admin identifier".into(),
            ));
        }
        if config.key.expose_secret().is_empty() {
            return Err(invalid("the sandbox needs a non-empty secret key".into()));
        }
        for (name, rate) in [
            ("fault_rate", config.fault_rate),
            ("lost_answer_rate", config.lost_answer_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(invalid(format!("{name} {rate} must be between 0 and 1")));
            }
        }
        let limiters = config
            .limits
            .apis
            .iter()
            .map(|(path, l)| {
                let qps = NonZeroU32::new(l.qps.max(1)).expect("max(1) is non-zero");
                (*path, RateLimiter::direct(Quota::per_second(qps)))
            })
            .collect();
        let mut data = Data::default();
        if let Some(path) = &config.state_file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    data = serde_json::from_slice(&bytes).map_err(|e| {
                        invalid(format!("sandbox state file {}: {e}", path.display()))
                    })?;
                    data.rebuild_indexes();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| std::io::Error::other(format!("callback HTTP client: {e}")))?;
        Ok(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            limiters,
            data: Mutex::new(data),
            stats: Mutex::new(BTreeMap::new()),
            callbacks_sent: Arc::new(AtomicU64::new(0)),
            callbacks_lost: AtomicU64::new(0),
            http,
            save_in_background: std::sync::atomic::AtomicBool::new(false),
            dirty: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Note a change; saved now, or soon by the background saver.
    fn changed(&self, data: &Data) {
        if self.config.state_file.is_none() {
            return;
        }
        if self.save_in_background.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        } else {
            self.save(data);
        }
    }

    /// Save if anything changed since the last save.
    fn save_if_dirty(&self) {
        if self.dirty.swap(false, Ordering::Relaxed) {
            let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            self.save(&data);
        }
    }

    fn save(&self, data: &Data) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let result = serde_json::to_vec(data)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!("sandbox: cannot save state to {}: {e}", path.display());
        }
    }

    /// Everything the sandbox holds, for comparing with what was meant to arrive.
    /// What an app user does: `from` sends `text` to an account or a group, from a phone
    /// (callbacks say `OptPlatform=Android`). Answers the message's id: its `MsgKey`, or
    /// `{group}:{MsgSeq}`.
    pub fn user_message(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        let random: u32 = rand::random();
        let body = json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]);
        let (api, req) = if group {
            (
                "group_open_http_svc/send_group_msg",
                json!({"GroupId": to, "From_Account": from, "Random": random, "MsgBody": body}),
            )
        } else {
            (
                "openim/sendmsg",
                json!({"From_Account": from, "To_Account": to, "MsgRandom": random, "MsgBody": body}),
            )
        };
        let admin = self.config.admins[0].clone();
        // A user who sends exists: the sandbox registers the sender (and a one-to-one peer)
        // the way the app's sign-up would have.
        {
            let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            data.accounts.entry(from.to_string()).or_default();
            if !group {
                data.accounts.entry(to.to_string()).or_default();
            }
        }
        let out = http::run_as(self, api, &admin, req.to_string().as_bytes(), "Android")
            .map_err(|r| format!("{api} refused ({}): {}", r.code, r.info))?;
        Ok(if group {
            format!(
                "{to}:{}",
                out.get("MsgSeq").and_then(Value::as_u64).unwrap_or(0)
            )
        } else {
            out.get("MsgKey")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
    }

    /// What an app user does besides sending: recall a message (`{"from","to","key"}` for a
    /// one-to-one `MsgKey`, `{"by","group","seq"}` for a group's), end a friendship
    /// (`{"unfriend": true, "from", "to"}`) or change a profile (`{"from", "profile":
    /// [{"Tag","Value"}]}`), from a phone: the callbacks say
    /// `OptPlatform=Android`, as a user's own would.
    pub fn user_action(&self, v: &Value) -> Result<(), String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let (api, req, actor) = if let Some(items) = v.get("profile") {
            (
                "profile/portrait_set",
                json!({"From_Account": s("from"), "ProfileItem": items}),
                s("from"),
            )
        } else if v.get("unfriend").and_then(Value::as_bool) == Some(true) {
            (
                "sns/friend_delete",
                json!({"From_Account": s("from"), "To_Account": [s("to")],
                       "DeleteType": "Delete_Type_Both"}),
                s("from"),
            )
        } else if !s("group").is_empty() {
            let seq = v
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or("seq is required")?;
            (
                "group_open_http_svc/group_msg_recall",
                json!({"GroupId": s("group"), "MsgSeqList": [{"MsgSeq": seq}]}),
                s("by"),
            )
        } else {
            (
                "openim/admin_msgwithdraw",
                json!({"From_Account": s("from"), "To_Account": s("to"), "MsgKey": s("key")}),
                s("from"),
            )
        };
        if actor.is_empty() {
            return Err("say who does it (from, or by for a group recall)".into());
        }
        let out = http::run_as(self, api, actor, req.to_string().as_bytes(), "Android")
            .map_err(|r| format!("{api} refused ({}): {}", r.code, r.info))?;
        // Per-item answers: a recall of a seq the group lacks, a friend who is not one.
        let item_failed = ["RecallRetList", "ResultItem"].iter().find_map(|list| {
            out.get(*list)?.as_array()?.iter().find_map(|i| {
                let code = i.get("RetCode").or_else(|| i.get("ResultCode"))?.as_i64()?;
                (code != 0).then_some(code)
            })
        });
        match item_failed {
            Some(code) => Err(format!("{api} refused the item: {code}")),
            None => Ok(()),
        }
    }

    fn export_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&*d).unwrap_or(Value::Null)
    }

    fn state_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        json!({
            "accounts": d.accounts.len(),
            "friends": d.friends.values().map(BTreeSet::len).sum::<usize>(),
            "blocks": d.blocks.values().map(BTreeSet::len).sum::<usize>(),
            "groups": d.groups.len(),
            "members": d.groups.values().map(|g| g.members.len()).sum::<usize>(),
            "c2c_messages": d.c2c.values().map(Vec::len).sum::<usize>(),
            "group_messages": d.groups.values().map(|g| g.messages.len()).sum::<usize>(),
            "callbacks_sent": self.callbacks_sent.load(Ordering::Relaxed),
            "callbacks_lost": self.callbacks_lost.load(Ordering::Relaxed),
            "apis": stats,
        })
    }
}

/// The sandbox as an axum router (to mount or serve yourself). Panics only if the
/// configuration is invalid; use [`spawn`] for a checked start.
pub fn router(config: SandboxConfig) -> Router {
    router_from(Arc::new(
        Shared::new(config).expect("invalid sandbox configuration"),
    ))
}

/// A running sandbox; stops when dropped or on [`SandboxHandle::shutdown`].
pub struct SandboxHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
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
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sandbox clock (shared with the config's).
    pub fn clock(&self) -> &Clock {
        &self.shared.config.clock
    }

    /// Same JSON as `GET /_sandbox/state`.
    pub fn state(&self) -> Value {
        self.shared.state_json()
    }

    /// Same JSON as `GET /_sandbox/export`: every account, relation, group, member and
    /// message it holds.
    pub fn export(&self) -> Value {
        self.shared.export_json()
    }

    /// What an app user does: `from` sends `text` to an account or a group, from a phone
    /// (callbacks say `OptPlatform=Android`). Answers the message's id.
    pub fn user_message(
        &self,
        from: &str,
        to: &str,
        group: bool,
        text: &str,
    ) -> Result<String, String> {
        self.shared.user_message(from, to, group, text)
    }

    /// Stop accepting, finish requests in flight, and wait for the server to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Wait until the server ends (it ends only on shutdown).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Start the sandbox on `addr` (port 0 picks a free port; see `handle.addr`).
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<SandboxHandle> {
    let shared = Arc::new(Shared::new(config)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router_from(shared.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    shared.save_in_background.store(true, Ordering::Relaxed);
    let saver = shared.clone();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let autosave = async {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                saver.save_if_dirty();
            }
        };
        tokio::select! {
            r = server => {
                if let Err(e) = r {
                    tracing::error!("sandbox server on {addr} stopped: {e}");
                }
            }
            () = autosave => {}
        }
        saver.save_if_dirty();
    });
    Ok(SandboxHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

/// From `GET /_sandbox/state`: the requests answered 60007 (over the quota), every API.
pub fn throttled(state: &Value) -> u64 {
    state["apis"]
        .as_object()
        .map(|apis| {
            apis.values()
                .map(|a| a["codes"]["60007"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}
