//! A local NetEase Yunxin server API ("V1", `POST /nimserver/<module>/<op>.action`), in
//! memory, enforcing what reference §6 lists: the signature and its 5-minute window, a quota
//! per API answered 416, batch sizes, accid rules, team rules (801/802/803/804/809), message
//! types and body size, history windows. Every business answer is HTTP 200 with
//! `{"code":200,…}` or `{"code":N,"desc":"…"}`; only unknown paths get HTTP 404.
//!
//! Faults can be injected (HTTP 502, body codes 416/500/503/431, and answers lost after the
//! call was applied) at random with a seed or scripted call by call (`POST /_sandbox/faults`),
//! so a client's retries and its handling of ambiguous outcomes can be tested.
//!
//! Choices the reference does not settle are marked UNCONFIRMED where they are made; the
//! main ones:
//! - an unknown or missing `AppKey` → 403; a bad `Nonce`/`CurTime`/`CheckSum` or a `CurTime`
//!   more than 300 s away → 414 with a `desc` starting "checksum" (wording UNCONFIRMED);
//! - a non-form `Content-Type` → 414; a known path with another method or an unbuilt API →
//!   HTTP 404;
//! - an account a call needs that does not exist → 404 (except `getUinfos`, which leaves it out);
//! - over a per-call batch size → 414 (`team/add` past the team's member limit → 801);
//! - `friend/add type=1` stores both directions ([`SandboxConfig::mutual_friends`]);
//! - tids are numbers in `team/query` and `team/joinTeams`, a string in `team/create`;
//! - history `body` is the sent JSON as a JSON value.
//!
//! Messages are kept in one list in msgid order, with each message's `route` flag and its
//! `fromclienttype` (32, REST); the 抄送 (message copy) emitter (`copy.rs`) copies each one
//! whose `route` is not false to the hook URL.

mod accounts;
pub mod cli;
pub mod copy;
mod http;
mod messages;
mod params;
mod pull;
mod teams;

pub use params::parse_form;

use crate::providers::serving::Serving;
use crate::providers::{
    ApiLimit, Connection, Limits, RunningSandbox, Sandbox, Standalone, StartOptions, Started,
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use params::Params;
use rand::rngs::StdRng;
use rand::SeedableRng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// APIs the sandbox serves that imshift's [`super::LIMITS`] does not list: 100/s each (reference
/// §1.5's working figure), batch sizes from reference §5.
const EXTRA_LIMITS: &[(&str, u32, Option<usize>)] = &[
    ("user/refreshToken", 100, None),
    ("friend/delete", 100, None),
    ("user/listBlackAndMuteList", 100, None),
    ("team/kick", 100, Some(200)),
    ("team/removeManager", 100, Some(10)),
    ("team/changeOwner", 100, None),
    ("team/update", 100, None),
    ("team/remove", 100, None),
];

/// The quotas and batch sizes the sandbox enforces unless told others: imshift's table for
/// NetEase, and [`EXTRA_LIMITS`] for the APIs it leaves out.
pub fn default_limits() -> Limits {
    let mut limits = Limits::from_table(super::LIMITS);
    for &(api, qps, batch) in EXTRA_LIMITS {
        limits.apis.entry(api).or_insert(ApiLimit { qps, batch });
    }
    limits
}

/// What an injected fault does to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 502 before the call is applied (what the official SDK retries, reference §1.4).
    BadGateway,
    /// `{"code":N}` in an HTTP 200 answer; the call is not applied.
    Code(i64),
    /// The call is applied, then the connection is cut in the middle of the answer.
    LostAnswer,
    /// The call is applied, then HTTP 502 is answered instead of its result.
    LostAnswerBadGateway,
}

/// Fault injection: random rates (with [`SandboxConfig::seed`]) and a script of the next
/// calls' faults, which comes first. Settable at run time with `POST /_sandbox/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction (0..=1) of calls answered HTTP 502 without being applied.
    pub bad_gateway_rate: f64,
    /// Fraction (0..=1) of calls answered one of `codes` without being applied.
    pub code_rate: f64,
    /// The body codes `code_rate` picks from.
    pub codes: Vec<i64>,
    /// Fraction (0..=1) of calls applied whose answer is then lost.
    pub lost_answer_rate: f64,
    /// A lost answer is an HTTP 502 (else a connection cut mid-answer).
    pub lost_answer_as_502: bool,
    /// The APIs (`module/op`) faults hit; every API when empty.
    pub apis: Vec<String>,
    /// The next calls' faults, one per call (of the APIs above), before any random one.
    pub next: VecDeque<Fault>,
    /// Calls (of the APIs above) applied are answered this many milliseconds late: a message's
    /// copy then reaches the app server before the sender has NetEase's answer.
    pub answer_delay_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            bad_gateway_rate: 0.0,
            code_rate: 0.0,
            codes: vec![416, 500, 503, 431],
            lost_answer_rate: 0.0,
            lost_answer_as_502: false,
            apis: Vec::new(),
            next: VecDeque::new(),
            answer_delay_ms: 0,
        }
    }
}

impl Faults {
    fn check(&self) -> Result<(), String> {
        if self.answer_delay_ms > 60_000 {
            return Err("answer_delay_ms is at most 60000 (a minute)".into());
        }
        for (name, rate) in [
            ("bad_gateway_rate", self.bad_gateway_rate),
            ("code_rate", self.code_rate),
            ("lost_answer_rate", self.lost_answer_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} {rate} must be between 0 and 1"));
            }
        }
        if self.code_rate > 0.0 && self.codes.is_empty() {
            return Err("code_rate needs at least one code in codes".into());
        }
        if self
            .codes
            .iter()
            .chain(self.next.iter().filter_map(|f| match f {
                Fault::Code(c) => Some(c),
                _ => None,
            }))
            .any(|&c| c == 200)
        {
            return Err("200 is not a fault".into());
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct SandboxConfig {
    /// The one app key it accepts.
    pub app_key: String,
    /// The app secret requests' `CheckSum` is made with.
    pub secret: SecretString,
    /// Quota (416 past it) and batch size per API.
    pub limits: Limits,
    pub faults: Faults,
    /// Seed for random faults, so a run can be replayed.
    pub seed: u64,
    /// Delay added to every call.
    pub latency_ms: u64,
    /// Per API (`module/op`): how long a call waits after it was applied before it is
    /// answered, so a test can stop the caller between the two (a crash after the target
    /// acted, before the caller wrote down what it did).
    pub slow_answers: BTreeMap<String, u64>,
    /// The app's largest team, owner included: `teamMemberLimit`'s default and ceiling
    /// (reference §2.3: 200 by default).
    pub team_member_max: u32,
    /// `friend/add type=1` makes both accounts friends of each other (UNCONFIRMED,
    /// reference §2.2; `false` stores only accid → faccid, and `friend/delete` then removes one
    /// direction too).
    pub mutual_friends: bool,
    /// How far `CurTime` may be from the sandbox's clock (reference §1.2: 5 minutes).
    pub checksum_window_secs: u64,
    /// The message copy (抄送): where, signed how, retries, duplicates.
    pub copy: copy::CopyConfig,
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
            team_member_max: 200,
            mutual_friends: true,
            checksum_window_secs: 300,
            copy: copy::CopyConfig::default(),
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
            .field("team_member_max", &self.team_member_max)
            .field("mutual_friends", &self.mutual_friends)
            .finish_non_exhaustive()
    }
}

// ---- the data ----

#[derive(Debug, Clone, Default, Serialize)]
struct Account {
    token: String,
    name: Option<String>,
    icon: Option<String>,
    sign: Option<String>,
    email: Option<String>,
    birth: Option<String>,
    mobile: Option<String>,
    gender: Option<i64>,
    ex: Option<String>,
    props: Option<String>,
    created_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Friend {
    createtime: u64,
    updatetime: u64,
    alias: Option<String>,
    serverex: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Team {
    tid: u64,
    tname: String,
    owner: String,
    managers: BTreeSet<String>,
    /// Everyone in the team, the owner included, with when they joined (ms).
    members: BTreeMap<String, u64>,
    /// Invited with `magree=1`, not yet members.
    invited: BTreeSet<String>,
    /// Kicked or left: may still read history with `checkTeamValid=false`.
    former: BTreeSet<String>,
    announcement: String,
    intro: String,
    custom: String,
    icon: String,
    joinmode: i64,
    beinvitemode: i64,
    invitemode: i64,
    uptinfomode: i64,
    upcustommode: i64,
    member_limit: u32,
    createtime: u64,
    updatetime: u64,
}

impl Team {
    fn is_admin(&self, accid: &str) -> bool {
        self.owner == accid || self.managers.contains(accid)
    }
}

/// One stored message, P2P (`ope` 0, `to` an accid) or team (`ope` 1, `to` a tid).
#[derive(Debug, Clone, Serialize)]
struct Message {
    msgid: u64,
    msgidclient: String,
    /// Server time (ms): the sandbox never takes a time from the caller.
    timetag: u64,
    from: String,
    ope: i64,
    to: String,
    #[serde(rename = "type")]
    msg_type: i64,
    /// The `body` field as sent (a JSON text).
    body: String,
    option: Option<String>,
    /// `option.route`: whether NetEase would 抄送 (copy) it to the app server.
    route: bool,
    ext: Option<String>,
    pushcontent: Option<String>,
    payload: Option<String>,
    /// 32: sent through the server API (REST).
    fromclienttype: i64,
}

#[derive(Debug, Default, Serialize)]
struct Data {
    accounts: BTreeMap<String, Account>,
    /// accid → faccid → the edge.
    friends: BTreeMap<String, BTreeMap<String, Friend>>,
    /// Pending `friend/add type=2` requests: (from, to).
    friend_requests: BTreeSet<(String, String)>,
    blacklist: BTreeMap<String, BTreeSet<String>>,
    mutelist: BTreeMap<String, BTreeSet<String>>,
    teams: BTreeMap<u64, Team>,
    /// Every message, in msgid order.
    messages: Vec<Message>,
    #[serde(skip)]
    sessions: HashMap<String, Vec<usize>>,
    #[serde(skip)]
    next_tid: u64,
    #[serde(skip)]
    next_msgid: u64,
    #[serde(skip)]
    last_timetag: u64,
}

impl Data {
    fn new() -> Self {
        Data {
            next_tid: 10_001,
            next_msgid: 100_000_000_001,
            ..Data::default()
        }
    }

    /// The account a call names, which must exist (404 otherwise: UNCONFIRMED code).
    fn account(&self, accid: &str) -> Result<&Account, Reject> {
        self.accounts
            .get(accid)
            .ok_or_else(|| rej(404, format!("account {accid:?} does not exist")))
    }

    fn friend_count(&self) -> usize {
        self.friends.values().map(BTreeMap::len).sum()
    }
}

/// The index key of a P2P conversation (either direction) or a team's.
fn p2p_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("p2p\n{a}\n{b}")
    } else {
        format!("p2p\n{b}\n{a}")
    }
}

fn team_key(tid: u64) -> String {
    format!("team\n{tid}")
}

// ---- requests ----

/// A refused call: NetEase's code and the sandbox's explanation (`desc`).
#[derive(Debug)]
struct Reject {
    code: i64,
    desc: String,
}

fn rej(code: i64, desc: impl Into<String>) -> Reject {
    Reject {
        code,
        desc: desc.into(),
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
}

impl Ctx<'_> {
    /// The batch size of `api` in force, else `default`.
    fn batch(&self, api: &str, default: usize) -> usize {
        self.config.limits.batch(api).unwrap_or(default)
    }

    /// Refuses a list longer than `api`'s batch size (414: UNCONFIRMED code).
    fn check_batch(&self, api: &str, field: &str, n: usize, default: usize) -> Result<(), Reject> {
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

/// The APIs it serves: (canonical name, handler).
fn handler_for(api: &str) -> Option<(&'static str, Handler)> {
    let table: &[(&'static str, Handler)] = &[
        ("user/create", accounts::create),
        ("user/updateUinfo", accounts::update_uinfo),
        ("user/getUinfos", accounts::get_uinfos),
        ("user/refreshToken", accounts::refresh_token),
        ("friend/add", accounts::friend_add),
        ("friend/get", accounts::friend_get),
        ("friend/delete", accounts::friend_delete),
        ("user/setSpecialRelation", accounts::set_special_relation),
        ("user/listBlackAndMuteList", accounts::list_black_and_mute),
        ("team/create", teams::create),
        ("team/add", teams::add),
        ("team/kick", teams::kick),
        ("team/addManager", teams::add_manager),
        ("team/removeManager", teams::remove_manager),
        ("team/changeOwner", teams::change_owner),
        ("team/update", teams::update),
        ("team/remove", teams::remove),
        ("team/query", teams::query),
        ("team/joinTeams", teams::join_teams),
        ("msg/sendMsg", messages::send_msg),
        ("history/querySessionMsg", messages::query_session_msg),
        ("history/queryTeamMsg", messages::query_team_msg),
    ];
    table.iter().find(|(name, _)| *name == api).copied()
}

#[derive(Debug, Default, Clone, Serialize)]
struct ApiStats {
    calls: u64,
    /// Answers by body code (200 included).
    codes: BTreeMap<i64, u64>,
    /// Injected HTTP 502s (the call not applied).
    bad_gateway: u64,
    /// Calls applied whose answer was lost (cut or 502).
    lost: u64,
}

#[derive(Debug, Default)]
struct Counters {
    /// Calls refused 416 for going over their quota (not injected 416s).
    throttled: u64,
    /// Faults injected, of every kind.
    injected: u64,
    apis: BTreeMap<&'static str, ApiStats>,
}

struct Shared {
    config: SandboxConfig,
    /// One bucket per frequency-control category (see [`super::category`]).
    limiters: HashMap<&'static str, DefaultDirectRateLimiter>,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    data: Mutex<Data>,
    counters: Mutex<Counters>,
    copy: copy::CopyState,
    /// The history lines pulls from an incremental interface took (`pull.rs`).
    pulled: Mutex<Vec<Value>>,
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
        if config.team_member_max < 2 {
            return Err("team_member_max must be at least 2".into());
        }
        config.faults.check()?;
        // NetEase limits per App Key and category (reference §1.5): the APIs of a category
        // share one bucket, at the lowest quota the table gives any of them.
        let mut per_category: HashMap<&'static str, u32> = HashMap::new();
        for (api, l) in &config.limits.apis {
            let q = per_category.entry(super::category(api)).or_insert(u32::MAX);
            *q = (*q).min(l.qps.max(1));
        }
        let limiters = per_category
            .into_iter()
            .map(|(category, qps)| {
                let qps = NonZeroU32::new(qps).expect("max(1) is non-zero");
                (category, RateLimiter::direct(Quota::per_second(qps)))
            })
            .collect();
        Ok(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            faults: Mutex::new(config.faults.clone()),
            copy: copy::CopyState::new(&config.copy),
            pulled: Mutex::new(Vec::new()),
            config,
            limiters,
            data: Mutex::new(Data::new()),
            counters: Mutex::new(Counters::default()),
        })
    }

    fn state_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let team_messages = d.messages.iter().filter(|m| m.ope == 1).count();
        json!({
            "accounts": d.accounts.len(),
            "friends": d.friend_count(),
            "friend_requests": d.friend_requests.len(),
            "blacklist": d.blacklist.values().map(BTreeSet::len).sum::<usize>(),
            "mutelist": d.mutelist.values().map(BTreeSet::len).sum::<usize>(),
            "teams": d.teams.len(),
            "members": d.teams.values().map(|t| t.members.len()).sum::<usize>(),
            "messages": d.messages.len(),
            "p2p_messages": d.messages.len() - team_messages,
            "team_messages": team_messages,
            "throttled": c.throttled,
            "injected": c.injected,
            "apis": serde_json::to_value(&c.apis).unwrap_or(Value::Null),
            "copies": self.copy.json(),
            "pulled": self.pulled.lock().unwrap_or_else(|p| p.into_inner()).len(),
        })
    }

    fn export_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&*d).unwrap_or(Value::Null)
    }

    fn teams_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(
            d.teams
                .values()
                .map(|t| {
                    json!({
                        "tid": t.tid.to_string(),
                        "tname": t.tname,
                        "owner": t.owner,
                        "managers": t.managers,
                        "members": t.members.keys().collect::<Vec<_>>(),
                        "invited": t.invited,
                        "custom": t.custom,
                        "intro": t.intro,
                        "announcement": t.announcement,
                        "icon": t.icon,
                        "member_limit": t.member_limit,
                    })
                })
                .collect(),
        )
    }

    fn messages_json(&self) -> Value {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&d.messages).unwrap_or(Value::Null)
    }

    fn one_to_one_texts(&self) -> Vec<String> {
        let d = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<&String> = d.sessions.keys().filter(|k| k.starts_with("p2p")).collect();
        keys.sort();
        keys.into_iter()
            .flat_map(|k| d.sessions[k].iter().map(|&i| &d.messages[i]))
            .filter(|m| m.msg_type == 0)
            .filter_map(|m| {
                serde_json::from_str::<Value>(&m.body)
                    .ok()
                    .and_then(|b| b["msg"].as_str().map(String::from))
            })
            .collect()
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
    /// What a client's base URL is: `http://ADDR/nimserver`.
    pub fn base_url(&self) -> String {
        format!("http://{}/nimserver", self.addr)
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

    /// Same JSON as `GET /_sandbox/export`: everything it holds.
    pub fn export(&self) -> Value {
        self.shared.export_json()
    }

    /// Same JSON as `GET /_sandbox/teams`: every team with its owner, managers and members.
    pub fn teams(&self) -> Value {
        self.shared.teams_json()
    }

    /// Same JSON as `GET /_sandbox/messages`: every message in msgid order, with `route` and
    /// `fromclienttype`.
    pub fn messages(&self) -> Value {
        self.shared.messages_json()
    }

    /// Replaces the fault injection in force (as `POST /_sandbox/faults`).
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.check()?;
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
        Ok(())
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
    let app = http::router_from(shared.clone());
    Ok(SandboxHandle {
        addr,
        shared,
        serving: Serving::start(listener, app, "NetEase sandbox"),
    })
}

/// From `GET /_sandbox/state`: the calls refused 416 for going over their quota.
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
        copy::user_message(&self.shared, from, to, group, text)
    }

    fn one_to_one_texts(&self) -> Result<Vec<String>, String> {
        Ok(self.shared.one_to_one_texts())
    }

    fn throttled(&self) -> Option<u64> {
        Some(throttled(&self.state()))
    }
}

/// NetEase Yunxin's sandbox, for the provider to hand out.
pub struct NeteaseSandbox;

/// A new app key, shaped as NetEase's (32 lower-case hex digits).
fn new_app_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn connection_public(base_url: String, app_key: &str) -> Map<String, Value> {
    let mut public = Map::new();
    public.insert("data_centre".into(), "custom".into());
    public.insert("base_url".into(), base_url.into());
    public.insert("app_key".into(), app_key.into());
    public
}

#[async_trait::async_trait]
impl Sandbox for NeteaseSandbox {
    async fn serve(&self, args: Vec<String>) -> Result<(), String> {
        cli::serve(args).await
    }

    /// Starts an empty sandbox that copies its messages to `opts.hook_url`, signed with the
    /// connection's copy secret, else (with `opts.sign_hooks`) one of its own returned as
    /// `cc_secret`, else the App Secret.
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
        if let Some(limits) = opts.limits {
            config.limits = limits;
        }
        let mut secrets = vec![("app_secret".to_string(), secret)];
        config.copy.hook_url = opts.hook_url.clone();
        config.copy.secret = keys
            .and_then(|k| k.secret("cc_secret"))
            .filter(|s| !s.expose_secret().is_empty())
            .cloned();
        if opts.sign_hooks && config.copy.secret.is_none() {
            let cc = SecretString::from(crate::auth::secret::generate("sbx_"));
            config.copy.secret = Some(cc.clone());
            secrets.push(("cc_secret".into(), cc));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
        let handle = spawn(config, addr)
            .await
            .map_err(|e| format!("The NetEase sandbox could not start on {addr}: {e}"))?;
        Ok(Started {
            public: connection_public(handle.base_url(), &app_key),
            sandbox: Box::new(handle),
            secrets,
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
            public: connection_public(format!("http://{listen}/nimserver"), &app_key),
            secrets: vec![("app_secret".into(), secret)],
        })
    }

    fn throttled_in(&self, state: &Value) -> Option<u64> {
        Some(throttled(state))
    }
}
