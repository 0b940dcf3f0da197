//! The sandbox's 消息抄送 (message copy) emitter (reference §3, §6.11–12): every stored P2P or
//! team message whose `route` flag is not false is `POST`ed to the hook URL as an eventType 1
//! JSON object of strings, with `AppKey`, `CurTime` (ms), `MD5` and
//! `CheckSum = sha1(secret + MD5 + CurTime)`.
//!
//! An answer of HTTP 200 or 500 within the timeout (5 s, §3.1) is a delivery; anything else is
//! tried again a few times with a doubling pause (NetEase's own retries are UNCONFIRMED, so
//! how many is [`CopyConfig::retries`]). [`CopyConfig::duplicate`] delivers every copy twice,
//! as an at-least-once sender may. Copies of different messages go out side by side, so
//! they may arrive out of order, as from the real service.
//!
//! Messages "sent by an app user" ([`user_message`]) are stored as a phone's send
//! (`fromClientType` AOS) and copied like any other.

use super::params::fold;
use super::{now_ms, p2p_key, team_key, Account, Message, Shared};
use crate::providers::netease::sign;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where and how the sandbox sends its copies.
#[derive(Clone)]
pub struct CopyConfig {
    /// The app server's copy URL; `None`: nothing is copied.
    pub hook_url: Option<String>,
    /// The secret copies are signed with; `None`: the App Secret (NetEase's default).
    pub secret: Option<SecretString>,
    /// Tries after the first that failed (UNCONFIRMED: NetEase does not say).
    pub retries: u32,
    /// The pause before the first retry; each next one doubles it.
    pub retry_delay_ms: u64,
    /// How long one try waits for its answer (§3.1: 5 s).
    pub timeout_ms: u64,
    /// Deliver every copy twice (as an at-least-once sender may).
    pub duplicate: bool,
}

impl Default for CopyConfig {
    fn default() -> Self {
        CopyConfig {
            hook_url: None,
            secret: None,
            retries: 3,
            retry_delay_ms: 200,
            timeout_ms: 5000,
            duplicate: false,
        }
    }
}

impl std::fmt::Debug for CopyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyConfig")
            .field("hook_url", &self.hook_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("retries", &self.retries)
            .field("duplicate", &self.duplicate)
            .finish_non_exhaustive()
    }
}

/// What the emitter did, and the duplicate switch as set at run time.
#[derive(Debug, Default)]
pub struct CopyState {
    duplicate: AtomicBool,
    /// Copies answered 200 or 500.
    delivered: AtomicU64,
    /// Tries that failed (each retry counts).
    failed_tries: AtomicU64,
    /// Copies given up on after every retry.
    given_up: AtomicU64,
}

impl CopyState {
    pub fn new(config: &CopyConfig) -> Self {
        let s = CopyState::default();
        s.duplicate.store(config.duplicate, Ordering::Relaxed);
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "duplicate": self.duplicate.load(Ordering::Relaxed),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failed_tries": self.failed_tries.load(Ordering::Relaxed),
            "given_up": self.given_up.load(Ordering::Relaxed),
        })
    }
}

pub(super) fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// `fromclienttype` → the name copies use (§3.3).
fn client_name(t: i64) -> &'static str {
    match t {
        1 => "AOS",
        2 => "IOS",
        4 => "PC",
        8 => "WINPHONE",
        16 => "WEB",
        64 => "MAC",
        _ => "REST",
    }
}

/// `type` → the copy's `msgType` (§3.3).
fn msg_type(t: i64) -> &'static str {
    match t {
        0 => "TEXT",
        1 => "PICTURE",
        2 => "AUDIO",
        3 => "VIDEO",
        4 => "LOCATION",
        6 => "FILE",
        10 => "TIPS",
        _ => "CUSTOM",
    }
}

/// The eventType 1 body of one stored message: every value a string. A text's `body` is its
/// text (the official example); other types carry their JSON in `attach` (UNCONFIRMED per
/// type).
fn copy_body(m: &Message, nick: Option<&str>) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: String| {
        o.insert(k.into(), Value::String(v));
    };
    put("eventType", "1".into());
    put(
        "convType",
        if m.ope == 1 { "TEAM" } else { "PERSON" }.into(),
    );
    put("to", m.to.clone());
    put("fromAccount", m.from.clone());
    put("fromClientType", client_name(m.fromclienttype).into());
    put("fromDeviceId", String::new());
    put("fromNick", nick.unwrap_or_default().to_string());
    put("msgTimestamp", m.timetag.to_string());
    put("msgType", msg_type(m.msg_type).into());
    put("msgidClient", m.msgidclient.clone());
    put("msgidServer", m.msgid.to_string());
    put("resendFlag", "0".into());
    if m.msg_type == 0 {
        let text = serde_json::from_str::<Value>(&m.body)
            .ok()
            .and_then(|b| b.get("msg").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        put("body", text);
    } else {
        put("body", String::new());
        put("attach", m.body.clone());
    }
    if let Some(ext) = &m.ext {
        put("ext", ext.clone());
    }
    Value::Object(o)
}

/// Copies message `msgid` to the hook, unless it has `route` false or there is no hook.
pub(super) fn emit(shared: &Arc<Shared>, msgid: u64) {
    let Some(url) = shared.config.copy.hook_url.clone() else {
        return;
    };
    let body = {
        let d = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let Some(m) = d.messages.iter().rev().find(|m| m.msgid == msgid) else {
            return;
        };
        if !m.route {
            return;
        }
        let nick = d.accounts.get(&m.from).and_then(|a| a.name.as_deref());
        copy_body(m, nick).to_string()
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let times = if shared.copy.duplicate.load(Ordering::Relaxed) {
            2
        } else {
            1
        };
        for _ in 0..times {
            deliver(&shared, &url, &body).await;
        }
    });
}

/// One copy, tried until it is delivered or the retries are spent.
async fn deliver(shared: &Shared, url: &str, body: &str) {
    let c = &shared.config.copy;
    let secret = c.secret.as_ref().unwrap_or(&shared.config.secret);
    let md5 = sign::body_md5(body.as_bytes());
    let mut pause = c.retry_delay_ms;
    for attempt in 0..=c.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            pause = pause.saturating_mul(2);
        }
        let cur_time = now_ms().to_string();
        let sent = http()
            .post(url)
            .timeout(Duration::from_millis(c.timeout_ms))
            .header("Content-Type", "application/json;charset=utf-8")
            .header("AppKey", &shared.config.app_key)
            .header("CurTime", &cur_time)
            .header("MD5", &md5)
            .header(
                "CheckSum",
                sign::checksum(secret.expose_secret(), &md5, &cur_time),
            )
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(r) if matches!(r.status().as_u16(), 200 | 500) => {
                shared.copy.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) => tracing::debug!("sandbox message copy answered HTTP {}", r.status()),
            Err(e) => tracing::debug!("sandbox message copy failed: {}", e.without_url()),
        }
        shared.copy.failed_tries.fetch_add(1, Ordering::Relaxed);
    }
    shared.copy.given_up.fetch_add(1, Ordering::Relaxed);
}

/// What an app user does: `from` sends `text` to `to` (an account, or a team id when
/// `group`) from a phone. The sender (and a one-to-one peer) is registered if missing, as
/// the app's sign-up would have; a team must exist with the sender in it. Answers the msgid.
pub(super) fn user_message(
    shared: &Arc<Shared>,
    from: &str,
    to: &str,
    group: bool,
    text: &str,
) -> Result<String, String> {
    let (from, to) = (fold(from), if group { to.to_string() } else { fold(to) });
    if from.is_empty() || to.is_empty() {
        return Err("a user message needs `from` and `to`".into());
    }
    let msgid = {
        let mut d = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let key = if group {
            let tid: u64 = to.parse().map_err(|_| format!("{to:?} is not a team id"))?;
            let team = d
                .teams
                .get(&tid)
                .ok_or_else(|| format!("team {tid} does not exist (803)"))?;
            if !team.members.contains_key(&from) {
                return Err(format!("{from:?} is not in team {tid} (804)"));
            }
            team_key(tid)
        } else {
            for a in [&from, &to] {
                d.accounts.entry(a.clone()).or_insert_with(|| Account {
                    token: uuid::Uuid::new_v4().simple().to_string(),
                    created_ms: now,
                    ..Account::default()
                });
            }
            p2p_key(&from, &to)
        };
        let msgid = d.next_msgid;
        d.next_msgid += 1;
        let timetag = now.max(d.last_timetag);
        d.last_timetag = timetag;
        let index = d.messages.len();
        d.sessions.entry(key).or_default().push(index);
        d.messages.push(Message {
            msgid,
            msgidclient: uuid::Uuid::new_v4().simple().to_string(),
            timetag,
            from,
            ope: i64::from(group),
            to,
            msg_type: 0,
            body: json!({ "msg": text }).to_string(),
            option: None,
            route: true,
            ext: None,
            pushcontent: None,
            payload: None,
            // 1: Android (AOS).
            fromclienttype: 1,
        });
        msgid
    };
    emit(shared, msgid);
    Ok(msgid.to_string())
}

/// `POST /_sandbox/user_message` `{"from","to","group","text"}` → `{"id": msgid}`.
pub(super) async fn user_message_route(
    State(sh): State<Arc<Shared>>,
    Json(v): Json<Value>,
) -> Response {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let group = v.get("group").and_then(Value::as_bool).unwrap_or(false);
    match user_message(&sh, s("from"), s("to"), group, s("text")) {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": e })),
        )
            .into_response(),
    }
}

/// `GET /_sandbox/copy`: what the emitter did; `POST` `{"duplicate": bool}` sets the switch.
pub(super) async fn copy_route(
    State(sh): State<Arc<Shared>>,
    body: Option<Json<Value>>,
) -> Json<Value> {
    if let Some(d) = body.and_then(|Json(v)| v.get("duplicate").and_then(Value::as_bool)) {
        sh.copy.duplicate.store(d, Ordering::Relaxed);
    }
    Json(sh.copy.json())
}
