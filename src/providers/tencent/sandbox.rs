//! A faithful in-memory emulator of the Tencent IM REST API (spec §5), for tests and
//! rehearsals without a Tencent account. It checks what the real server checks (signature,
//! admin, QPS, batch sizes, existence, id rules, ordering, dedupe, sizes) and answers with
//! the real error codes, always over HTTP 200. Faults and latency can be injected with a
//! seed so runs are reproducible, and Tencent-format callbacks can be posted to an app.

use super::callbacks;
use super::convert::{check_group_id, check_user_id};
use super::usersig::{self, UserSigError};
use super::Limits;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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

/// Largest message (MsgBody + CloudCustomData as JSON) Tencent accepts.
const MAX_MSG_BYTES: usize = 8 * 1024;
/// Group imports state 8000 bytes.
const MAX_GROUP_MSG_BYTES: usize = 8000;
const SENDMSG_DEDUPE_SECS: u64 = 120;
const GROUP_RANDOM_DEDUPE_SECS: u64 = 300;
/// Codes the real service returns for transient trouble; fault injection picks among them.
const FAULT_CODES: [i64; 3] = [70500, 10002, 90992];

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

fn conv_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}\n{b}")
    } else {
        format!("{b}\n{a}")
    }
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
    body: Value,
}

/// Per-request context handed to the API handlers.
struct Ctx<'a> {
    now: u64,
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
            o.insert("EventTime".into(), json!(self.now * 1000));
        }
        self.callbacks.push(PendingCallback { command, body });
    }

    /// Admins exist as accounts on a real app (they are created with it).
    fn account_exists(&self, data: &Data, id: &str) -> bool {
        data.accounts.contains_key(id) || self.config.admins.iter().any(|a| a == id)
    }
}

// ---- small JSON helpers; `code` is the module's error for a missing or wrong field ----

fn get_str(v: &Value, field: &str, code: i64) -> Result<String, Reject> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(rej(code, format!("{field} must be a string"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

fn opt_str(v: &Value, field: &str, code: i64) -> Result<Option<String>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(rej(code, format!("{field} must be a string"))),
    }
}

fn get_u64(v: &Value, field: &str, code: i64) -> Result<u64, Reject> {
    match v.get(field) {
        Some(n) if n.is_u64() => Ok(n.as_u64().unwrap_or(0)),
        Some(_) => Err(rej(code, format!("{field} must be a non-negative integer"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

fn get_u32(v: &Value, field: &str, code: i64) -> Result<u64, Reject> {
    let n = get_u64(v, field, code)?;
    if n > u64::from(u32::MAX) {
        return Err(rej(code, format!("{field} must fit in 32 bits")));
    }
    Ok(n)
}

fn opt_u64(v: &Value, field: &str, code: i64) -> Result<Option<u64>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => get_u64(v, field, code).map(Some),
    }
}

fn get_array<'v>(v: &'v Value, field: &str, code: i64) -> Result<&'v Vec<Value>, Reject> {
    match v.get(field) {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(rej(code, format!("{field} must be an array"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

fn batch(ctx: &Ctx, api: &str, n: usize, code: i64) -> Result<(), Reject> {
    match ctx.config.limits.batch(api) {
        Some(max) if n > max => Err(rej(
            code,
            format!("{n} items in one request; at most {max} are allowed"),
        )),
        _ => Ok(()),
    }
}

fn string_list(v: &Value, field: &str, code: i64) -> Result<Vec<String>, Reject> {
    get_array(v, field, code)?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| rej(code, format!("{field} must hold strings")))
        })
        .collect()
}

/// Message elements (spec §3.7). Returns what is wrong, if anything.
fn check_msg_body(body: &Value) -> Result<(), String> {
    let Value::Array(elems) = body else {
        return Err("MsgBody must be an array".into());
    };
    if elems.is_empty() {
        return Err("MsgBody is empty".into());
    }
    let mut customs = 0;
    for (i, e) in elems.iter().enumerate() {
        let ty = e.get("MsgType").and_then(Value::as_str).unwrap_or("");
        let Some(c) = e.get("MsgContent").filter(|c| c.is_object()) else {
            return Err(format!("MsgBody[{i}].MsgContent must be an object"));
        };
        let has_str = |f: &str| c.get(f).is_some_and(Value::is_string);
        let flag2 = |f: &str| c.get(f).and_then(Value::as_u64) == Some(2);
        let ok = match ty {
            "TIMTextElem" => has_str("Text"),
            "TIMLocationElem" => {
                c.get("Latitude").is_some_and(Value::is_number)
                    && c.get("Longitude").is_some_and(Value::is_number)
            }
            "TIMFaceElem" => c.get("Index").is_some_and(Value::is_number),
            "TIMCustomElem" => {
                customs += 1;
                true
            }
            "TIMSoundElem" => has_str("Url") && has_str("UUID") && flag2("Download_Flag"),
            "TIMFileElem" => has_str("Url") && has_str("UUID") && flag2("Download_Flag"),
            "TIMImageElem" => {
                has_str("UUID") && c.get("ImageInfoArray").is_some_and(Value::is_array)
            }
            "TIMVideoFileElem" => {
                has_str("VideoUrl") && flag2("VideoDownloadFlag") && flag2("ThumbDownloadFlag")
            }
            "TIMRelayElem" => true,
            other => {
                return Err(format!(
                    "MsgBody[{i}].MsgType {other:?} is not a known element type"
                ))
            }
        };
        if !ok {
            return Err(format!(
                "MsgBody[{i}] ({ty}) is missing required fields or Download_Flag is not 2"
            ));
        }
    }
    if customs > 1 {
        return Err("at most one TIMCustomElem per message".into());
    }
    Ok(())
}

fn msg_size(body: &Value, cloud: Option<&str>) -> usize {
    body.to_string().len() + cloud.map_or(0, str::len)
}

// ---- accounts ----

fn account_import(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let id = get_str(v, "UserID", 70402)?;
    check_user_id(&id).map_err(|e| rej(70402, e))?;
    let acc = d.accounts.entry(id).or_default();
    if let Some(n) = opt_str(v, "Nick", 70402)? {
        acc.nick = Some(n);
    }
    if let Some(f) = opt_str(v, "FaceUrl", 70402)? {
        acc.face_url = Some(f);
    }
    let _ = ctx;
    Ok(Map::new())
}

fn multiaccount_import(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    // Both the old `Accounts` (strings) and the new `AccountList` (objects) forms.
    let items: Vec<(String, Option<String>, Option<String>)> = if v.get("AccountList").is_some() {
        get_array(v, "AccountList", 70402)?
            .iter()
            .map(|a| {
                Ok((
                    get_str(a, "UserID", 70402)?,
                    opt_str(a, "Nick", 70402)?,
                    opt_str(a, "FaceUrl", 70402)?,
                ))
            })
            .collect::<Result<_, Reject>>()?
    } else {
        string_list(v, "Accounts", 70402)?
            .into_iter()
            .map(|u| (u, None, None))
            .collect()
    };
    batch(
        ctx,
        "im_open_login_svc/multiaccount_import",
        items.len(),
        70206,
    )?;
    let mut fail = Vec::new();
    for (id, nick, face) in items {
        if check_user_id(&id).is_err() {
            fail.push(json!(id));
            continue;
        }
        let acc = d.accounts.entry(id).or_default();
        if nick.is_some() {
            acc.nick = nick;
        }
        if face.is_some() {
            acc.face_url = face;
        }
    }
    let mut out = Map::new();
    out.insert("FailAccounts".into(), Value::Array(fail));
    Ok(out)
}

fn account_check(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let items = get_array(v, "CheckItem", 70402)?;
    batch(ctx, "im_open_login_svc/account_check", items.len(), 70206)?;
    let mut result = Vec::new();
    for it in items {
        let id = get_str(it, "UserID", 70402)?;
        let status = if ctx.account_exists(d, &id) {
            "Imported"
        } else {
            "NotImported"
        };
        result.push(
            json!({"UserID": id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status}),
        );
    }
    let mut out = Map::new();
    out.insert("ResultItem".into(), Value::Array(result));
    Ok(out)
}

// ---- profile ----

const STANDARD_TAGS: &[&str] = &[
    "Tag_Profile_IM_Nick",
    "Tag_Profile_IM_Gender",
    "Tag_Profile_IM_BirthDay",
    "Tag_Profile_IM_Location",
    "Tag_Profile_IM_SelfSignature",
    "Tag_Profile_IM_AllowType",
    "Tag_Profile_IM_Language",
    "Tag_Profile_IM_Image",
    "Tag_Profile_IM_MsgSettings",
    "Tag_Profile_IM_AdminForbidType",
    "Tag_Profile_IM_Level",
    "Tag_Profile_IM_Role",
];

fn portrait_set(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 40001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(40003, format!("account {from:?} does not exist")));
    }
    let items = get_array(v, "ProfileItem", 40001)?;
    let mut updates = Vec::new();
    for it in items {
        let tag = get_str(it, "Tag", 40001)?;
        let value = it
            .get("Value")
            .cloned()
            .ok_or_else(|| rej(40001, format!("{tag}: Value is required")))?;
        let known = STANDARD_TAGS.contains(&tag.as_str())
            || tag
                .strip_prefix("Tag_Profile_Custom_")
                .is_some_and(|k| ctx.config.custom_profile_tags.iter().any(|t| t == k));
        if !known {
            return Err(rej(
                40009,
                format!("tag {tag:?} is not a standard tag nor a registered custom tag"),
            ));
        }
        if value.as_str().is_some_and(|s| s.len() > 500) {
            return Err(rej(40601, format!("{tag}: value is longer than 500 bytes")));
        }
        updates.push((tag, value));
    }
    let acc = d.accounts.entry(from).or_default();
    for (tag, value) in updates {
        match tag.as_str() {
            "Tag_Profile_IM_Nick" => acc.nick = value.as_str().map(str::to_string),
            "Tag_Profile_IM_Image" => acc.face_url = value.as_str().map(str::to_string),
            _ => {
                acc.profile.insert(tag, value);
            }
        }
    }
    Ok(Map::new())
}

fn portrait_get(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let to = string_list(v, "To_Account", 40001)?;
    batch(ctx, "profile/portrait_get", to.len(), 40001)?;
    let tags = string_list(v, "TagList", 40001)?;
    let mut items = Vec::new();
    let mut fail = Vec::new();
    for id in to {
        let Some(acc) = d.accounts.get(&id) else {
            if ctx.account_exists(d, &id) {
                items.push(
                    json!({"To_Account": id, "ProfileItem": [], "ResultCode": 0, "ResultInfo": ""}),
                );
            } else {
                items.push(json!({"To_Account": id, "ProfileItem": [], "ResultCode": 40003, "ResultInfo": "account does not exist"}));
                fail.push(json!(id));
            }
            continue;
        };
        let mut profile = Vec::new();
        for t in &tags {
            let value = match t.as_str() {
                "Tag_Profile_IM_Nick" => acc.nick.clone().map(Value::String),
                "Tag_Profile_IM_Image" => acc.face_url.clone().map(Value::String),
                other => acc.profile.get(other).cloned(),
            };
            if let Some(value) = value {
                profile.push(json!({"Tag": t, "Value": value}));
            }
        }
        items.push(
            json!({"To_Account": id, "ProfileItem": profile, "ResultCode": 0, "ResultInfo": ""}),
        );
    }
    let mut out = Map::new();
    out.insert("UserProfileItem".into(), Value::Array(items));
    if !fail.is_empty() {
        out.insert("Fail_Account".into(), Value::Array(fail));
    }
    Ok(out)
}

// ---- relationships ----

fn sns_result(items: Vec<Value>, fail: Vec<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("ResultItem".into(), Value::Array(items));
    if !fail.is_empty() {
        out.insert("Fail_Account".into(), Value::Array(fail));
    }
    out
}

fn friend_write(ctx: &mut Ctx, d: &mut Data, v: &Value, api: &str, both: bool) -> Out {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let items = get_array(v, "AddFriendItem", 30001)?;
    batch(ctx, api, items.len(), 30001)?;
    let both = both && v.get("AddType").and_then(Value::as_str) != Some("Add_Type_Single");
    let (mut results, mut fail, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for it in items {
        let to = get_str(it, "To_Account", 30001)?;
        let source_ok = it
            .get("AddSource")
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("AddSource_Type_"));
        let code = if !ctx.account_exists(d, &to) {
            30003
        } else if !source_ok || to == from {
            30001
        } else if api == "sns/friend_import"
            && d.friends.get(&from).is_some_and(|f| f.contains(&to))
        {
            // Tencent answers a friend already on the list with 30001, the code it also
            // uses for a bad parameter (spec: "30001 ... also: already friend").
            30001
        } else {
            d.friends
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            if both {
                d.friends
                    .entry(to.clone())
                    .or_default()
                    .insert(from.clone());
            }
            pairs.push(json!({"From_Account": from, "To_Account": to, "Initiator_Account": from}));
            0
        };
        if code != 0 {
            fail.push(json!(to));
        }
        results.push(json!({"To_Account": to, "ResultCode": code, "ResultInfo": ""}));
    }
    // friend_add calls back (ClientCmd friend_add); friend_import, an import, does not.
    if api == "sns/friend_add" && !pairs.is_empty() {
        let force = v.get("ForceAddFlags").and_then(Value::as_u64).unwrap_or(0);
        ctx.callback(
            "Sns.CallbackFriendAdd",
            json!({"PairList": pairs, "ClientCmd": "friend_add", "Admin_Account": ctx.admin,
                   "ForceFlag": force}),
        );
    }
    Ok(sns_result(results, fail))
}

/// friend_check (CN-1646): which of `To_Account` are on `From_Account`'s list, and with
/// `CheckResult_Type_Both` which have `From_Account` on theirs. At most 1000 accounts.
fn friend_check(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let to = string_list(v, "To_Account", 30001)?;
    if to.is_empty() {
        return Err(rej(30001, "To_Account is empty"));
    }
    batch(ctx, "sns/friend_check", to.len(), 30001)?;
    let both = match get_str(v, "CheckType", 30001)?.as_str() {
        "CheckResult_Type_Single" => false,
        "CheckResult_Type_Both" => true,
        other => {
            return Err(rej(
                30001,
                format!(
                "CheckType {other:?} is neither CheckResult_Type_Single nor CheckResult_Type_Both"
            ),
            ))
        }
    };
    let on = |a: &str, b: &str| d.friends.get(a).is_some_and(|f| f.contains(b));
    let items: Vec<Value> = to
        .iter()
        .map(|t| {
            let relation = match (on(&from, t), both && on(t, &from)) {
                (true, true) => "CheckResult_Type_BothWay",
                (true, false) => "CheckResult_Type_AWithB",
                (false, true) => "CheckResult_Type_BWithA",
                (false, false) => "CheckResult_Type_NoRelation",
            };
            json!({"To_Account": t, "Relation": relation, "ResultCode": 0, "ResultInfo": ""})
        })
        .collect();
    let mut out = Map::new();
    out.insert("InfoItem".into(), Value::Array(items));
    out.insert("Fail_Account".into(), json!([]));
    Ok(out)
}

fn black_list_add(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let to = string_list(v, "To_Account", 30001)?;
    batch(ctx, "sns/black_list_add", to.len(), 30001)?;
    let (mut results, mut fail) = (Vec::new(), Vec::new());
    for t in to {
        let code = if ctx.account_exists(d, &t) {
            d.blocks.entry(from.clone()).or_default().insert(t.clone());
            0
        } else {
            fail.push(json!(t));
            30003
        };
        results.push(json!({"To_Account": t, "ResultCode": code, "ResultInfo": ""}));
    }
    Ok(sns_result(results, fail))
}

// ---- C2C ----

fn importmsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let sync = v.get("SyncFromOldSystem").and_then(Value::as_u64);
    let sync_ok = match sync {
        Some(2) | Some(5) => true,
        Some(1) => ctx.config.accept_sync_from_old_system_1,
        _ => false,
    };
    if !sync_ok {
        return Err(rej(
            90030,
            "SyncFromOldSystem must be 2 (history) or 5 (real-time)",
        ));
    }
    let from = get_str(v, "From_Account", 90008)?;
    let to = get_str(v, "To_Account", 90003)?;
    let seq = opt_u64(v, "MsgSeq", 90001)?.unwrap_or(0);
    let random = get_u32(v, "MsgRandom", 90005)?;
    let time = get_u32(v, "MsgTimeStamp", 90006)?;
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    if !body.is_array() {
        return Err(rej(90002, "MsgBody must be an array"));
    }
    check_msg_body(&body).map_err(|e| rej(90010, e))?;
    let cloud = opt_str(v, "CloudCustomData", 90001)?;
    if msg_size(&body, cloud.as_deref()) > MAX_MSG_BYTES {
        return Err(rej(93000, "the message is larger than 8 KB"));
    }
    if !ctx.account_exists(d, &from) {
        return Err(rej(90048, format!("From_Account {from:?} does not exist")));
    }
    if !ctx.account_exists(d, &to) {
        return Err(rej(90012, format!("To_Account {to:?} is not registered")));
    }
    let conv = conv_key(&from, &to);
    // First write wins; a duplicate still answers OK.
    if d.c2c_seen.insert((conv.clone(), seq, random, time)) {
        d.c2c.entry(conv).or_default().push(C2cMessage {
            from,
            to,
            seq,
            random,
            time,
            body,
            cloud_custom_data: cloud,
        });
    }
    Ok(Map::new())
}

fn forbids_after(v: &Value) -> bool {
    v.get("ForbidCallbackControl")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str() == Some("ForbidAfterSendMsgCallback"))
        })
}

fn sendmsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = opt_str(v, "From_Account", 90008)?.unwrap_or_else(|| ctx.admin.to_string());
    let to = get_str(v, "To_Account", 90003)?;
    let random = get_u32(v, "MsgRandom", 90005)?;
    if let Some(life) = opt_u64(v, "MsgLifeTime", 90044)? {
        if life > 604_800 {
            return Err(rej(90026, "MsgLifeTime is longer than 7 days"));
        }
    }
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    if !body.is_array() {
        return Err(rej(90002, "MsgBody must be an array"));
    }
    check_msg_body(&body).map_err(|e| rej(90010, e))?;
    let cloud = opt_str(v, "CloudCustomData", 90001)?;
    if msg_size(&body, cloud.as_deref()) > MAX_MSG_BYTES {
        return Err(rej(93000, "the message is larger than 8 KB"));
    }
    for a in [&from, &to] {
        if !ctx.account_exists(d, a) {
            return Err(rej(20003, format!("account {a:?} does not exist")));
        }
    }
    let seq = match opt_u64(v, "MsgSeq", 90001)? {
        Some(s) => s,
        None => {
            d.next_c2c_seq += 1;
            d.next_c2c_seq
        }
    };
    let now = ctx.now;
    let dedupe = format!(
        "{from}\n{seq}\n{random}\n{}",
        crc32fast::hash(body.to_string().as_bytes())
    );
    d.sendmsg_seen
        .retain(|_, (at, _, _)| now.saturating_sub(*at) < SENDMSG_DEDUPE_SECS);
    let mut out = Map::new();
    if let Some((_, t, key)) = d.sendmsg_seen.get(&dedupe) {
        out.insert("MsgTime".into(), json!(t));
        out.insert("MsgKey".into(), json!(key));
        return Ok(out);
    }
    let msg = C2cMessage {
        from: from.clone(),
        to: to.clone(),
        seq,
        random,
        time: now,
        body: body.clone(),
        cloud_custom_data: cloud.clone(),
    };
    let key = msg.key();
    d.sendmsg_seen.insert(dedupe, (now, now, key.clone()));
    let conv = conv_key(&from, &to);
    d.c2c_seen.insert((conv.clone(), seq, random, now));
    d.c2c.entry(conv).or_default().push(msg);
    if !forbids_after(v) {
        ctx.callback(
            "C2C.CallbackAfterSendMsg",
            json!({"From_Account": from, "To_Account": to, "MsgSeq": seq, "MsgRandom": random,
                   "MsgTime": now, "MsgKey": key, "OnlineOnlyFlag": 0, "SendMsgResult": 0,
                   "ErrorInfo": "send msg succeed", "UnreadMsgNum": 1, "MsgBody": body,
                   "CloudCustomData": cloud.unwrap_or_default()}),
        );
    }
    out.insert("MsgTime".into(), json!(now));
    out.insert("MsgKey".into(), json!(key));
    Ok(out)
}

fn admin_getroammsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let op = get_str(v, "Operator_Account", 90001)?;
    let peer = get_str(v, "Peer_Account", 90001)?;
    let max_cnt = get_u64(v, "MaxCnt", 90001)?.clamp(1, 100) as usize;
    let min_time = get_u64(v, "MinTime", 90001)?;
    let max_time = get_u64(v, "MaxTime", 90001)?;
    let last_key = opt_str(v, "LastMsgKey", 90001)?;
    for a in [&op, &peer] {
        if !ctx.account_exists(d, a) {
            return Err(rej(90048, format!("account {a:?} does not exist")));
        }
    }
    // Newest first; continue from just after LastMsgKey.
    let mut msgs: Vec<&C2cMessage> = d
        .c2c
        .get(&conv_key(&op, &peer))
        .map(|m| {
            m.iter()
                .filter(|m| m.time >= min_time && m.time <= max_time)
                .collect()
        })
        .unwrap_or_default();
    msgs.sort_by_key(|m| std::cmp::Reverse((m.time, m.seq, m.random)));
    let start = match &last_key {
        Some(k) => msgs.iter().position(|m| &m.key() == k).map_or(0, |i| i + 1),
        None => 0,
    };
    let page: Vec<&C2cMessage> = msgs.iter().skip(start).take(max_cnt).copied().collect();
    let complete = start + page.len() >= msgs.len();
    let list: Vec<Value> = page
        .iter()
        .map(|m| {
            json!({"From_Account": m.from, "To_Account": m.to, "MsgSeq": m.seq, "MsgRandom": m.random,
                   "MsgTimeStamp": m.time, "MsgFlagBits": 0, "IsPeerRead": 0, "MsgKey": m.key(),
                   "MsgBody": m.body, "CloudCustomData": m.cloud_custom_data.clone().unwrap_or_default()})
        })
        .collect();
    let mut out = Map::new();
    out.insert("Complete".into(), json!(u8::from(complete)));
    out.insert("MsgCnt".into(), json!(list.len()));
    out.insert(
        "LastMsgTime".into(),
        json!(page.last().map_or(0, |m| m.time)),
    );
    out.insert(
        "LastMsgKey".into(),
        json!(page.last().map(|m| m.key()).unwrap_or_default()),
    );
    out.insert("MsgList".into(), Value::Array(list));
    Ok(out)
}

// ---- groups ----

const GROUP_TYPES: &[&str] = &["Private", "Public", "ChatRoom", "AVChatRoom", "Community"];

fn group_type(v: &Value) -> Result<String, Reject> {
    let t = get_str(v, "Type", 10004)?;
    // Work and Meeting are the newer names of Private and ChatRoom.
    let t = match t.as_str() {
        "Work" => "Private".to_string(),
        "Meeting" => "ChatRoom".to_string(),
        _ => t,
    };
    if !GROUP_TYPES.contains(&t.as_str()) {
        return Err(rej(
            10004,
            format!("group Type {t:?} is not one of {GROUP_TYPES:?}"),
        ));
    }
    Ok(t)
}

fn new_group_id(d: &mut Data, ty: &str) -> String {
    d.next_group_no += 1;
    let prefix = if ty == "Community" {
        "@TGS#_@TGS#"
    } else {
        "@TGS#"
    };
    format!("{prefix}2{:09X}", d.next_group_no)
}

fn check_custom_group_id(id: &str, ty: &str) -> Result<(), Reject> {
    if ty == "Community" {
        let rest = id.strip_prefix("@TGS#_").ok_or_else(|| {
            rej(
                10015,
                format!("Community group id {id:?} must start with @TGS#_"),
            )
        })?;
        if id.len() > 48 || rest.is_empty() || !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(rej(10015, format!("group id {id:?} is invalid")));
        }
        return Ok(());
    }
    check_group_id(id).map_err(|e| rej(10015, e))
}

/// Common fields of import_group and create_group. Returns (id, group) without inserting.
fn new_group(
    ctx: &Ctx,
    d: &mut Data,
    v: &Value,
    create_time: u64,
) -> Result<(String, Group), Reject> {
    let ty = group_type(v)?;
    let name = get_str(v, "Name", 10004)?;
    if name.is_empty() || name.len() > 30 {
        return Err(rej(10004, "Name must be 1 to 30 bytes"));
    }
    let owner = opt_str(v, "Owner_Account", 10004)?;
    if let Some(o) = &owner {
        if !ctx.account_exists(d, o) {
            return Err(rej(10019, format!("Owner_Account {o:?} does not exist")));
        }
    }
    let id = match opt_str(v, "GroupId", 10004)? {
        Some(id) => {
            check_custom_group_id(&id, &ty)?;
            if d.groups.contains_key(&id) {
                return Err(rej(10021, format!("group id {id:?} is already used")));
            }
            id
        }
        None => new_group_id(d, &ty),
    };
    let mut members = BTreeMap::new();
    if let Some(o) = &owner {
        members.insert(
            o.clone(),
            Member {
                role: "Owner".into(),
                join_time: create_time,
                unread: 0,
            },
        );
    }
    let group = Group {
        group_type: ty,
        name,
        owner,
        introduction: opt_str(v, "Introduction", 10004)?,
        notification: opt_str(v, "Notification", 10004)?,
        face_url: opt_str(v, "FaceUrl", 10004)?,
        max_member_count: opt_u64(v, "MaxMemberCount", 10004)?,
        apply_join_option: opt_str(v, "ApplyJoinOption", 10004)?,
        create_time,
        members,
        messages: Vec::new(),
    };
    Ok((id, group))
}

fn import_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    if group_type(v)? == "AVChatRoom" {
        return Err(rej(
            10007,
            "AVChatRoom groups cannot be imported; use create_group",
        ));
    }
    let create_time = opt_u64(v, "CreateTime", 10004)?.unwrap_or(ctx.now);
    if create_time > ctx.now {
        return Err(rej(10004, "CreateTime is in the future"));
    }
    let (id, group) = new_group(ctx, d, v, create_time)?;
    d.groups.insert(id.clone(), group);
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    Ok(out)
}

fn member_names(g: &Group) -> Vec<Value> {
    g.members
        .keys()
        .map(|m| json!({"Member_Account": m}))
        .collect()
}

fn create_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, mut group) = new_group(ctx, d, v, ctx.now)?;
    let list = match v.get("MemberList") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => get_array(v, "MemberList", 10004)?.clone(),
    };
    if group.group_type == "AVChatRoom" && !list.is_empty() {
        return Err(rej(10007, "AVChatRoom groups take no initial MemberList"));
    }
    batch(ctx, "group_open_http_svc/create_group", list.len(), 10005)?;
    for m in &list {
        let acc = get_str(m, "Member_Account", 10004)?;
        if !ctx.account_exists(d, &acc) {
            return Err(rej(10019, format!("account {acc:?} does not exist")));
        }
        let role = opt_str(m, "Role", 10004)?.unwrap_or_else(|| "Member".into());
        group.members.entry(acc).or_insert(Member {
            role,
            join_time: ctx.now,
            unread: 0,
        });
    }
    ctx.callback(
        "Group.CallbackAfterCreateGroup",
        json!({"GroupId": id, "Type": group.group_type, "Operator_Account": ctx.admin,
               "Owner_Account": group.owner.clone().unwrap_or_default(), "Name": group.name,
               "MemberList": member_names(&group), "UserDefinedDataList": []}),
    );
    let ty = group.group_type.clone();
    d.groups.insert(id.clone(), group);
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    out.insert("Type".into(), json!(ty));
    Ok(out)
}

fn group_mut<'d>(d: &'d mut Data, v: &Value) -> Result<(String, &'d mut Group), Reject> {
    let id = get_str(v, "GroupId", 10004)?;
    match d.groups.get_mut(&id) {
        Some(g) => Ok((id, g)),
        None => Err(rej(10010, format!("group {id:?} does not exist"))),
    }
}

fn destroy_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, _) = group_mut(d, v)?;
    let g = d.groups.remove(&id).expect("checked above");
    d.group_random_seen
        .retain(|k, _| !k.starts_with(&format!("{id}\n")));
    ctx.callback(
        "Group.CallbackAfterGroupDestroyed",
        json!({"GroupId": id, "Type": g.group_type, "Owner_Account": g.owner.clone().unwrap_or_default(),
               "Name": g.name, "MemberList": member_names(&g)}),
    );
    Ok(Map::new())
}

fn modify_group_base_info(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, g) = group_mut(d, v)?;
    let mut changed = json!({"GroupId": id, "Type": g.group_type, "Operator_Account": ctx.admin});
    if let Some(name) = opt_str(v, "Name", 10004)? {
        if name.is_empty() || name.len() > 30 {
            return Err(rej(10004, "Name must be 1 to 30 bytes"));
        }
        changed["Name"] = json!(name);
        g.name = name;
    }
    for (field, slot) in [
        ("Introduction", &mut g.introduction),
        ("Notification", &mut g.notification),
        ("FaceUrl", &mut g.face_url),
        ("ApplyJoinOption", &mut g.apply_join_option),
    ] {
        if let Some(x) = opt_str(v, field, 10004)? {
            if field != "ApplyJoinOption" {
                changed[field] = json!(x);
            }
            *slot = Some(x);
        }
    }
    if let Some(n) = opt_u64(v, "MaxMemberNum", 10004)? {
        g.max_member_count = Some(n);
    }
    ctx.callback("Group.CallbackAfterGroupInfoChanged", changed);
    Ok(Map::new())
}

fn member_accounts(v: &Value, field: &str) -> Result<Vec<String>, Reject> {
    get_array(v, field, 10004)?
        .iter()
        .map(|m| get_str(m, "Member_Account", 10004))
        .collect()
}

fn ensure_accounts(ctx: &Ctx, d: &Data, ids: &[String]) -> Result<(), Reject> {
    match ids.iter().find(|a| !ctx.account_exists(d, a)) {
        Some(a) => Err(rej(10019, format!("account {a:?} does not exist"))),
        None => Ok(()),
    }
}

fn add_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let accounts = member_accounts(v, "MemberList")?;
    batch(
        ctx,
        "group_open_http_svc/add_group_member",
        accounts.len(),
        10005,
    )?;
    ensure_accounts(ctx, d, &accounts)?;
    let now = ctx.now;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(
            10007,
            "add_group_member does not apply to AVChatRoom groups",
        ));
    }
    let mut results = Vec::new();
    let mut joined = Vec::new();
    for a in accounts {
        let r = if g.members.contains_key(&a) {
            2
        } else {
            g.members.insert(
                a.clone(),
                Member {
                    role: "Member".into(),
                    join_time: now,
                    unread: 0,
                },
            );
            joined.push(json!({"Member_Account": a}));
            1
        };
        results.push(json!({"Member_Account": a, "Result": r}));
    }
    let ty = g.group_type.clone();
    if !joined.is_empty() {
        ctx.callback(
            "Group.CallbackAfterNewMemberJoin",
            json!({"GroupId": id, "Type": ty, "JoinType": "Invited",
                   "Operator_Account": ctx.admin, "NewMemberList": joined}),
        );
    }
    let mut out = Map::new();
    out.insert("MemberList".into(), Value::Array(results));
    Ok(out)
}

fn delete_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let accounts = string_list(v, "MemberToDel_Account", 10004)?;
    batch(
        ctx,
        "group_open_http_svc/delete_group_member",
        accounts.len(),
        10005,
    )?;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(
            10004,
            "delete_group_member does not apply to AVChatRoom groups",
        ));
    }
    // Non-members "succeed" too.
    let left: Vec<Value> = accounts
        .iter()
        .filter(|a| g.members.remove(*a).is_some())
        .map(|a| json!({"Member_Account": a}))
        .collect();
    let ty = g.group_type.clone();
    if !left.is_empty() {
        ctx.callback(
            "Group.CallbackAfterMemberExit",
            json!({"GroupId": id, "Type": ty, "ExitType": "Kicked",
                   "Operator_Account": ctx.admin, "ExitMemberList": left}),
        );
    }
    Ok(Map::new())
}

fn import_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let list = get_array(v, "MemberList", 10004)?.clone();
    batch(
        ctx,
        "group_open_http_svc/import_group_member",
        list.len(),
        10005,
    )?;
    let accounts: Vec<String> = list
        .iter()
        .map(|m| get_str(m, "Member_Account", 10004))
        .collect::<Result<_, _>>()?;
    ensure_accounts(ctx, d, &accounts)?;
    let now = ctx.now;
    let (_, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups cannot import members"));
    }
    let mut results = Vec::new();
    for (m, acc) in list.iter().zip(accounts) {
        let join = opt_u64(m, "JoinTime", 10004)?;
        let role = opt_str(m, "Role", 10004)?;
        let unread = opt_u64(m, "UnreadMsgNum", 10004)?.unwrap_or(0);
        let r = if g.members.contains_key(&acc) {
            2
        } else if join.is_some_and(|t| t <= g.create_time || t >= now)
            || role.as_deref().is_some_and(|r| r != "Admin")
        {
            0
        } else {
            g.members.insert(
                acc.clone(),
                Member {
                    role: role.unwrap_or_else(|| "Member".into()),
                    join_time: join.unwrap_or(now),
                    unread: unread.min(g.messages.len() as u64),
                },
            );
            1
        };
        results.push(json!({"Member_Account": acc, "Result": r}));
    }
    let mut out = Map::new();
    out.insert("MemberList".into(), Value::Array(results));
    Ok(out)
}

fn import_group_msg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let list = get_array(v, "MsgList", 10004)?.clone();
    batch(
        ctx,
        "group_open_http_svc/import_group_msg",
        list.len(),
        10005,
    )?;
    let senders: Vec<String> = list
        .iter()
        .map(|m| get_str(m, "From_Account", 10004))
        .collect::<Result<_, _>>()?;
    ensure_accounts(ctx, d, &senders)?;
    for m in &list {
        get_u64(m, "SendTime", 10004)?;
        check_msg_body(m.get("MsgBody").unwrap_or(&Value::Null)).map_err(|e| rej(10004, e))?;
    }
    let now = ctx.now;
    let allow_equal = ctx.config.allow_equal_group_send_time;
    let (id, _) = group_mut(d, v)?;
    let Data {
        groups,
        group_random_seen,
        ..
    } = d;
    let g = groups.get_mut(&id).expect("checked above");
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups cannot import messages"));
    }
    group_random_seen.retain(|_, (at, _, _)| now.saturating_sub(*at) < GROUP_RANDOM_DEDUPE_SECS);
    let mut results = Vec::new();
    let mut imported = false;
    for (m, from) in list.iter().zip(senders) {
        let time = get_u64(m, "SendTime", 10004)?;
        let random = opt_u64(m, "Random", 10004)?;
        let body = m.get("MsgBody").cloned().unwrap_or(Value::Null);
        let cloud = opt_str(m, "CloudCustomData", 10004)?;
        let dedupe = random.map(|r| format!("{id}\n{r}"));
        if let Some((_, seq, t)) = dedupe.as_ref().and_then(|k| group_random_seen.get(k)) {
            // A replay within 5 minutes is dropped; answer as the first time.
            results.push(json!({"MsgSeq": seq, "MsgTime": t, "Result": 0}));
            continue;
        }
        let last = g.messages.last().map_or(0, |x| x.time);
        let after_last = if allow_equal {
            time >= last
        } else {
            time > last
        };
        let result = if msg_size(&body, cloud.as_deref()) > MAX_GROUP_MSG_BYTES {
            80002
        } else if time >= now || time <= g.create_time || !after_last {
            10004
        } else {
            0
        };
        if result != 0 {
            results.push(json!({"MsgSeq": 0, "MsgTime": time, "Result": result}));
            continue;
        }
        let seq = g.messages.last().map_or(0, |x| x.seq) + 1;
        g.messages.push(GroupMessage {
            seq,
            from,
            time,
            random: random.unwrap_or(0),
            body,
            cloud_custom_data: cloud,
        });
        if let Some(k) = dedupe {
            group_random_seen.insert(k, (now, seq, time));
        }
        imported = true;
        results.push(json!({"MsgSeq": seq, "MsgTime": time, "Result": 0}));
    }
    if imported {
        // Importing messages zeroes every member's unread count (spec §3.5).
        for m in g.members.values_mut() {
            m.unread = 0;
        }
    }
    let mut out = Map::new();
    out.insert("ImportMsgResult".into(), Value::Array(results));
    Ok(out)
}

fn set_unread_msg_num(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let acc = get_str(v, "Member_Account", 10004)?;
    let unread = get_u64(v, "UnreadMsgNum", 10004)?;
    if !ctx.account_exists(d, &acc) {
        return Err(rej(10019, format!("account {acc:?} does not exist")));
    }
    let (id, g) = group_mut(d, v)?;
    let count = g.messages.len() as u64;
    let tracks_unread = !matches!(g.group_type.as_str(), "ChatRoom" | "AVChatRoom");
    let Some(m) = g.members.get_mut(&acc) else {
        return Err(rej(10004, format!("{acc:?} is not a member of {id:?}")));
    };
    // ChatRoom and AVChatRoom have no unread counts; the call succeeds without effect.
    if tracks_unread {
        m.unread = unread.min(count);
    }
    Ok(Map::new())
}

fn send_group_msg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let random = get_u32(v, "Random", 10004)?;
    let from = opt_str(v, "From_Account", 10004)?.unwrap_or_else(|| ctx.admin.to_string());
    if !ctx.account_exists(d, &from) {
        return Err(rej(10019, format!("account {from:?} does not exist")));
    }
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    check_msg_body(&body).map_err(|e| rej(10004, e))?;
    let cloud = opt_str(v, "CloudCustomData", 10004)?;
    if msg_size(&body, cloud.as_deref()) > MAX_GROUP_MSG_BYTES {
        return Err(rej(80002, "the message is larger than 8000 bytes"));
    }
    let now = ctx.now;
    let (id, _) = group_mut(d, v)?;
    let Data {
        groups,
        group_random_seen,
        ..
    } = d;
    let g = groups.get_mut(&id).expect("checked above");
    group_random_seen.retain(|_, (at, _, _)| now.saturating_sub(*at) < GROUP_RANDOM_DEDUPE_SECS);
    let dedupe = format!(
        "{id}\n{random}\n{}",
        crc32fast::hash(body.to_string().as_bytes())
    );
    let mut out = Map::new();
    if let Some((_, seq, t)) = group_random_seen.get(&dedupe) {
        out.insert("MsgTime".into(), json!(t));
        out.insert("MsgSeq".into(), json!(seq));
        return Ok(out);
    }
    let seq = g.messages.last().map_or(0, |x| x.seq) + 1;
    g.messages.push(GroupMessage {
        seq,
        from: from.clone(),
        time: now,
        random,
        body: body.clone(),
        cloud_custom_data: cloud.clone(),
    });
    for (name, m) in g.members.iter_mut() {
        if *name != from {
            m.unread += 1;
        }
    }
    group_random_seen.insert(dedupe, (now, seq, now));
    if !forbids_after(v) {
        let ty = g.group_type.clone();
        ctx.callback(
            "Group.CallbackAfterSendMsg",
            json!({"GroupId": id, "Type": ty, "From_Account": from, "Operator_Account": ctx.admin,
                   "Random": random, "MsgSeq": seq, "MsgTime": now, "OnlineOnlyFlag": 0,
                   "MsgBody": body, "CloudCustomData": cloud.unwrap_or_default()}),
        );
    }
    out.insert("MsgTime".into(), json!(now));
    out.insert("MsgSeq".into(), json!(seq));
    Ok(out)
}

fn group_msg_get_simple(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let n = get_u64(v, "ReqMsgNumber", 10004)?;
    if n == 0 {
        return Err(rej(10004, "ReqMsgNumber must be at least 1"));
    }
    batch(
        ctx,
        "group_open_http_svc/group_msg_get_simple",
        n as usize,
        10005,
    )?;
    let from_seq = opt_u64(v, "ReqMsgSeq", 10004)?;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups keep no history"));
    }
    let page: Vec<&GroupMessage> = g
        .messages
        .iter()
        .rev()
        .filter(|m| from_seq.is_none_or(|s| m.seq <= s))
        .take(n as usize)
        .collect();
    let oldest = g.messages.first().map(|m| m.seq);
    let finished = page.last().map(|m| m.seq) == oldest || page.is_empty();
    let list: Vec<Value> = page
        .iter()
        .map(|m| {
            json!({"From_Account": m.from, "IsPlaceMsg": 0, "MsgPriority": 1, "MsgRandom": m.random,
                   "MsgSeq": m.seq, "MsgTimeStamp": m.time, "MsgBody": m.body,
                   "CloudCustomData": m.cloud_custom_data.clone().unwrap_or_default()})
        })
        .collect();
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    out.insert("IsFinished".into(), json!(u8::from(finished)));
    out.insert("RspMsgList".into(), Value::Array(list));
    Ok(out)
}

// ---- dispatch and HTTP ----

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
        "sns/friend_check" => (friend_check, false),
        "sns/black_list_add" => (black_list_add, true),
        "openim/importmsg" => (importmsg, true),
        "openim/sendmsg" => (sendmsg, true),
        "openim/admin_getroammsg" => (admin_getroammsg, false),
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
        _ => return None,
    })
}

fn envelope(api: &str, result: Result<Map<String, Value>, Reject>) -> Value {
    let display = api.starts_with("profile/") || api.starts_with("sns/");
    let mut out = Map::new();
    match result {
        Ok(extra) => {
            out.insert("ActionStatus".into(), json!("OK"));
            out.insert("ErrorCode".into(), json!(0));
            out.insert("ErrorInfo".into(), json!(""));
            out.extend(extra);
        }
        Err(r) => {
            out.insert("ActionStatus".into(), json!("FAIL"));
            out.insert("ErrorCode".into(), json!(r.code));
            out.insert("ErrorInfo".into(), json!(r.info));
        }
    }
    if display {
        out.insert("ErrorDisplay".into(), json!(""));
    }
    Value::Object(out)
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
            http,
            save_in_background: std::sync::atomic::AtomicBool::new(false),
            dirty: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn record(&self, api: &str, code: i64) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let s = stats.entry(api.to_string()).or_default();
        s.calls += 1;
        if code != 0 {
            s.rejected += 1;
            *s.codes.entry(code).or_default() += 1;
        }
    }

    /// Whether the answer of this carried-out request is to be lost (fault injection).
    fn loses_answer(&self, api: &str) -> bool {
        let c = &self.config;
        if c.lost_answer_rate <= 0.0
            || !(c.lost_answer_apis.is_empty() || c.lost_answer_apis.iter().any(|a| a == api))
        {
            return false;
        }
        let lost = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random::<f64>()
            < c.lost_answer_rate;
        if lost {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            stats.entry(api.to_string()).or_default().lost += 1;
        }
        lost
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

    /// Everything before the API itself: method, path, query, signature, admin, QPS, faults, JSON.
    fn authenticate(
        &self,
        method: &Method,
        api: Option<&'static str>,
        uri: &Uri,
    ) -> Result<(&'static str, String), Reject> {
        if method != Method::POST {
            return Err(rej(
                60002,
                format!("HTTP method {method} is not allowed; use POST"),
            ));
        }
        let api = api.ok_or_else(|| rej(60009, format!("unknown API path {}", uri.path())))?;
        let Query(q) = Query::<HashMap<String, String>>::try_from_uri(uri)
            .map_err(|e| rej(60002, format!("query string: {e}")))?;
        let sdkappid = q
            .get("sdkappid")
            .ok_or_else(|| rej(60012, "sdkappid is missing from the URL"))?;
        let sdkappid: u64 = sdkappid
            .parse()
            .map_err(|_| rej(60002, format!("sdkappid {sdkappid:?} is not a number")))?;
        for p in ["identifier", "usersig", "random", "contenttype"] {
            if !q.contains_key(p) {
                return Err(rej(60002, format!("{p} is missing from the URL")));
            }
        }
        if q["contenttype"] != "json" {
            return Err(rej(60002, "contenttype must be json"));
        }
        if q["random"].parse::<u32>().is_err() {
            return Err(rej(60002, "random must be an unsigned 32-bit integer"));
        }
        if sdkappid != self.config.sdkappid {
            return Err(rej(70020, format!("SDKAppID {sdkappid} does not exist")));
        }
        let identifier = q["identifier"].clone();
        let sig = &q["usersig"];
        if sig.is_empty() {
            return Err(rej(70002, "usersig is empty"));
        }
        usersig::verify(
            sig,
            sdkappid,
            self.config.key.expose_secret(),
            &identifier,
            self.config.clock.now(),
        )
        .map_err(|e: UserSigError| rej(e.code(), e.to_string()))?;
        if !self.config.admins.contains(&identifier) {
            return Err(rej(60010, format!("{identifier:?} is not an App admin")));
        }
        if self.limiters.get(api).is_some_and(|l| l.check().is_err()) {
            return Err(rej(
                self.config.rate_limit_code,
                format!("{api}: REST call frequency over limit"),
            ));
        }
        if self.config.fault_rate > 0.0 {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            if rng.random::<f64>() < self.config.fault_rate {
                let code = FAULT_CODES[rng.random_range(0..FAULT_CODES.len())];
                return Err(rej(code, "injected fault: internal error, please retry"));
            }
        }
        Ok((api, identifier))
    }

    fn fire(&self, pending: Vec<PendingCallback>, now: u64) {
        let Some(url) = self.config.callback_url.clone() else {
            return;
        };
        for cb in pending {
            let mut query: Vec<(&str, String)> = vec![
                ("SdkAppid", self.config.sdkappid.to_string()),
                ("CallbackCommand", cb.command.to_string()),
                ("contenttype", "json".into()),
                ("ClientIP", "127.0.0.1".into()),
                ("OptPlatform", "RESTAPI".into()),
            ];
            if let Some(token) = &self.config.callback_token {
                query.push(("Sign", callbacks::sign(token.expose_secret(), now as i64)));
                query.push(("RequestTime", now.to_string()));
            }
            let request = self.http.post(&url).query(&query).json(&cb.body);
            let sent = self.callbacks_sent.clone();
            // After-callbacks are fire-and-forget with a 2 s timeout and no retry.
            tokio::spawn(async move {
                match request.send().await {
                    Ok(_) => {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(
                        "sandbox callback {} failed: {}",
                        cb.command,
                        e.without_url()
                    ),
                }
            });
        }
    }

    /// Everything the sandbox holds, for comparing with what was meant to arrive.
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
            "apis": stats,
        })
    }
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path((service, command)): Path<(String, String)>,
    uri: Uri,
    body: Bytes,
) -> Response {
    if sh.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sh.config.latency_ms)).await;
    }
    let path = format!("{service}/{command}");
    let known = sh
        .config
        .limits
        .known_path(&path)
        .filter(|p| handler_for(p).is_some());
    let result = match sh.authenticate(&method, known, &uri) {
        Err(r) => Err(r),
        Ok((api, admin)) => run_api(&sh, api, &admin, &body),
    };
    let code = result.as_ref().err().map_or(0, |r| r.code);
    sh.record(known.unwrap_or("unknown"), code);
    let answer = envelope(&path, result);
    if code == 0 && known.is_some_and(|api| sh.loses_answer(api)) {
        // Done, but the caller gets half an answer and a cut connection.
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
        let cut = futures_util::stream::iter([
            Ok(half),
            Err(std::io::Error::other(
                "sandbox: answer lost (fault injection)",
            )),
        ]);
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(cut),
        )
            .into_response();
    }
    Json(answer).into_response()
}

fn run_api(sh: &Shared, api: &'static str, admin: &str, body: &[u8]) -> Out {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(rej(
            60003,
            "the request body is empty; send {} when there are no fields",
        ));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| rej(60003, format!("request JSON: {e}")))?;
    if !v.is_object() {
        return Err(rej(60003, "the request body must be a JSON object"));
    }
    let (handler, mutates) = handler_for(api).expect("only known APIs reach here");
    let mut ctx = Ctx {
        now: sh.config.clock.now(),
        admin,
        config: &sh.config,
        callbacks: Vec::new(),
    };
    let result = {
        let mut data = sh.data.lock().unwrap_or_else(|p| p.into_inner());
        let r = handler(&mut ctx, &mut data, &v);
        if r.is_ok() && mutates {
            sh.changed(&data);
        }
        r
    };
    if result.is_ok() {
        sh.fire(std::mem::take(&mut ctx.callbacks), ctx.now);
    }
    result
}

async fn not_found(State(sh): State<Arc<Shared>>, uri: Uri) -> Json<Value> {
    sh.record("unknown", 60009);
    Json(envelope(
        "",
        Err(rej(60009, format!("unknown path {}", uri.path()))),
    ))
}

async fn state(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.state_json())
}

async fn export(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.export_json())
}

fn router_from(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v4/{service}/{command}", any(handle))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/export", get(export))
        .fallback(not_found)
        .with_state(shared)
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
