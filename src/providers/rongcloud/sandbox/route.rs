//! The sandbox's 全量消息路由 (message routing) emitter (reference §3, §5.10): every message
//! an app user sends — and a server-API message only when
//! [`RouteConfig::route_api_messages`] is on (RongCloud's console switch, off by default) — is
//! `POST`ed to the app server's URL as an `application/x-www-form-urlencoded` form of
//! `fromUserId`, `toUserId` (the group id for a group message), `objectName`, `content`,
//! `channelType` (`PERSON`/`GROUP`), `msgTimestamp` (ms), `msgUID`, `sensitiveType`,
//! `source`, `clientIp`, `timestamp` (and `groupUserIds`, `busChannel` when they apply), with
//! `?nonce=…&signTimestamp=…&signature=…` added to the URL:
//! `signature = hex(SHA1(AppSecret + nonce + signTimestamp))`, `signTimestamp` in ms.
//!
//! An HTTP 200 answer within the timeout is a delivery; anything else is tried again a few
//! times with a doubling pause, each try freshly signed (RongCloud's own retry policy is
//! UNCONFIRMED, hence [`RouteConfig::retries`]). [`RouteConfig::duplicate`] delivers every
//! message twice, as an at-least-once sender may. Messages go out side by side, so they may
//! arrive out of order, as from the real service.

use super::params::{check_group_id, check_user_id};
use super::{now_ms, Channel, Message, Shared, User, SERVER};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `lowercase_hex(SHA1(secret + nonce + timestamp))`: a request's `Signature` and a routed
/// message's `signature` alike (reference §1.2, §3).
pub fn signature(secret: &str, nonce: &str, timestamp: &str) -> String {
    let mut h = Sha1::new();
    h.update(secret.as_bytes());
    h.update(nonce.as_bytes());
    h.update(timestamp.as_bytes());
    hex::encode(h.finalize())
}

/// Compares two hex digests in time independent of where they differ, ignoring case.
pub(super) fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

/// Where and how the sandbox routes messages.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The app server's routing URL; `None`: nothing is routed.
    pub url: Option<String>,
    /// Route messages sent through the server API too (RongCloud's console switch; off by
    /// default, reference §3). Settable at run time with `POST /_sandbox/route`.
    pub route_api_messages: bool,
    /// Tries after the first that failed (UNCONFIRMED: RongCloud does not say).
    pub retries: u32,
    /// The pause before the first retry; each next one doubles it.
    pub retry_delay_ms: u64,
    /// How long one try waits for its answer (UNCONFIRMED).
    pub timeout_ms: u64,
    /// Deliver every message twice. Settable at run time with `POST /_sandbox/route`.
    pub duplicate: bool,
    /// Also add `appKey` to the query (UNCONFIRMED whether RongCloud does).
    pub app_key_param: bool,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            url: None,
            route_api_messages: false,
            retries: 3,
            retry_delay_ms: 200,
            timeout_ms: 5000,
            duplicate: false,
            app_key_param: false,
        }
    }
}

/// What the emitter did, and its switches as set at run time.
#[derive(Debug, Default)]
pub struct RouteState {
    duplicate: AtomicBool,
    api_messages: AtomicBool,
    /// How long after a message is stored it is routed (ms): the real service routes through
    /// a queue, so its routing lags the API's answer (by how much is UNCONFIRMED). Settable at
    /// run time with `POST /_sandbox/route`; 0 by default.
    delay_ms: AtomicU64,
    /// Deliveries begun (a duplicated message counts twice).
    posted: AtomicU64,
    /// Deliveries answered HTTP 200.
    delivered: AtomicU64,
    /// Tries that failed (each retry counts).
    failed_tries: AtomicU64,
    /// Deliveries given up on after every retry.
    given_up: AtomicU64,
}

impl RouteState {
    pub fn new(config: &RouteConfig) -> Self {
        let s = RouteState::default();
        s.duplicate.store(config.duplicate, Ordering::Relaxed);
        s.api_messages
            .store(config.route_api_messages, Ordering::Relaxed);
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "duplicate": self.duplicate.load(Ordering::Relaxed),
            "route_api_messages": self.api_messages.load(Ordering::Relaxed),
            "delay_ms": self.delay_ms.load(Ordering::Relaxed),
            "posted": self.posted.load(Ordering::Relaxed),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failed_tries": self.failed_tries.load(Ordering::Relaxed),
            "given_up": self.given_up.load(Ordering::Relaxed),
        })
    }
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// The form fields of one routed message (reference §3).
fn form(m: &Message) -> Vec<(&'static str, String)> {
    let channel = match m.channel_type {
        Channel::Person => "PERSON",
        Channel::Group => "GROUP",
    };
    let client_ip = if m.source == SERVER {
        String::new()
    } else {
        format!("127.0.0.1:{}", rand::rng().random_range(30_000..60_000))
    };
    let mut f = vec![
        ("fromUserId", m.from_user_id.clone()),
        ("toUserId", m.to.clone()),
        ("objectName", m.object_name.clone()),
        ("content", m.content.clone()),
        ("channelType", channel.to_string()),
        ("msgTimestamp", m.msg_time.to_string()),
        ("msgUID", m.uid.clone()),
        ("sensitiveType", "0".to_string()),
        ("source", m.source.clone()),
        ("clientIp", client_ip),
        // UNCONFIRMED meaning: the time the routing request is made (ms).
        ("timestamp", now_ms().to_string()),
    ];
    if !m.to_user_ids.is_empty() {
        // UNCONFIRMED encoding: comma-joined.
        f.push(("groupUserIds", m.to_user_ids.join(",")));
    }
    if let Some(b) = &m.bus_channel {
        f.push(("busChannel", b.clone()));
    }
    f
}

/// Routes stored message `index` to the app server, unless there is no URL or it came
/// through the server API while such messages are not routed.
pub(super) fn emit(shared: &Arc<Shared>, index: usize) {
    let Some(url) = shared.config.route.url.clone() else {
        return;
    };
    let fields = {
        let d = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let Some(m) = d.messages.get(index) else {
            return;
        };
        if m.source == SERVER && !shared.route.api_messages.load(Ordering::Relaxed) {
            return;
        }
        form(m)
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let delay = shared.route.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let times = if shared.route.duplicate.load(Ordering::Relaxed) {
            2
        } else {
            1
        };
        for _ in 0..times {
            deliver(&shared, &url, &fields).await;
        }
    });
}

/// A nonce as RongCloud's: ≤18 characters (10 digits here).
fn nonce() -> String {
    rand::rng()
        .random_range(1_000_000_000u64..10_000_000_000)
        .to_string()
}

/// One delivery, tried until answered 200 or the retries are spent.
async fn deliver(shared: &Shared, url: &str, fields: &[(&'static str, String)]) {
    let c = &shared.config.route;
    shared.route.posted.fetch_add(1, Ordering::Relaxed);
    let mut pause = c.retry_delay_ms;
    for attempt in 0..=c.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            pause = pause.saturating_mul(2);
        }
        let nonce = nonce();
        let ts = now_ms().to_string();
        let sig = signature(shared.config.secret.expose_secret(), &nonce, &ts);
        let mut query = vec![("nonce", nonce), ("signTimestamp", ts), ("signature", sig)];
        if c.app_key_param {
            query.push(("appKey", shared.config.app_key.clone()));
        }
        let sent = http()
            .post(url)
            .timeout(Duration::from_millis(c.timeout_ms))
            .query(&query)
            .form(fields)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().as_u16() == 200 => {
                shared.route.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) => tracing::debug!("sandbox routing answered HTTP {}", r.status()),
            Err(e) => tracing::debug!("sandbox routing failed: {}", e.without_url()),
        }
        shared.route.failed_tries.fetch_add(1, Ordering::Relaxed);
    }
    shared.route.given_up.fetch_add(1, Ordering::Relaxed);
}

/// What an app user does: `from` sends `text` (an `RC:TxtMsg`) to `to` (a user, or a group
/// when `group`) from an Android phone. The sender (and a one-to-one peer) is registered if
/// missing, as the app's sign-up would have; a group must exist with the sender in it (a
/// client cannot send to a group it is not in). Stored in both sides' (every member's)
/// history and routed. Answers the message UID.
pub(super) fn user_message(
    shared: &Arc<Shared>,
    from: &str,
    to: &str,
    group: bool,
    text: &str,
) -> Result<String, String> {
    let words = |r: super::Reject| r.msg;
    check_user_id("from", from).map_err(words)?;
    if group {
        check_group_id("to", to).map_err(words)?;
    } else {
        check_user_id("to", to).map_err(words)?;
    }
    let index = {
        let mut d = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let holders: BTreeSet<String> = if group {
            let g = d
                .groups
                .get(to)
                .ok_or_else(|| format!("group {to:?} does not exist"))?;
            if !g.members.contains_key(from) {
                return Err(format!("{from:?} is not in group {to:?}"));
            }
            g.members.keys().cloned().collect()
        } else {
            for id in [from, to] {
                d.users.entry(id.to_string()).or_insert_with(|| User {
                    name: String::new(),
                    portrait: String::new(),
                    created_ms: now,
                    tokens_issued: 0,
                    tokens_void_before: 0,
                    tokens: Vec::new(),
                });
            }
            BTreeSet::from([from.to_string(), to.to_string()])
        };
        let uid = d.new_uid();
        let msg_time = d.stamp(now);
        d.push_message(Message {
            uid,
            msg_time,
            channel_type: if group {
                Channel::Group
            } else {
                Channel::Person
            },
            from_user_id: from.to_string(),
            to: to.to_string(),
            to_user_ids: Vec::new(),
            object_name: super::messages::TEXT.to_string(),
            content: json!({ "content": text, "extra": "" }).to_string(),
            is_persisted: true,
            is_include_sender: true,
            is_counted: true,
            is_mentioned: false,
            disable_push: false,
            disable_update_last_msg: false,
            push_content: None,
            expansion: false,
            extra_content: None,
            bus_channel: None,
            holders,
            source: "Android".to_string(),
        })
    };
    let uid = {
        let d = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        d.messages[index].uid.clone()
    };
    emit(shared, index);
    Ok(uid)
}

/// `POST /_sandbox/user_message` `{"from","to","group","text"}` → `{"id": messageUID}`.
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

/// `GET /_sandbox/route`: what the emitter did; `POST` `{"duplicate": bool,
/// "route_api_messages": bool, "delay_ms": n}` sets any of the switches.
pub(super) async fn route_route(
    State(sh): State<Arc<Shared>>,
    body: Option<Json<Value>>,
) -> Json<Value> {
    if let Some(Json(v)) = body {
        if let Some(d) = v.get("duplicate").and_then(Value::as_bool) {
            sh.route.duplicate.store(d, Ordering::Relaxed);
        }
        if let Some(a) = v.get("route_api_messages").and_then(Value::as_bool) {
            sh.route.api_messages.store(a, Ordering::Relaxed);
        }
        if let Some(ms) = v.get("delay_ms").and_then(Value::as_u64) {
            sh.route.delay_ms.store(ms, Ordering::Relaxed);
        }
    }
    Json(sh.route.json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_secret_nonce_timestamp_in_lower_hex() {
        // SHA1("abc") split across the three parts.
        assert_eq!(
            signature("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(same_digest(
            "A9993E364706816ABA3E25717850C26C9CD0D89D",
            &signature("a", "b", "c")
        ));
        assert!(!same_digest(
            &signature("a", "b", "d"),
            &signature("a", "b", "c")
        ));
        assert!(nonce().len() <= 18);
    }
}
