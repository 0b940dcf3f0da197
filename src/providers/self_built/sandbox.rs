//! `imshift sandbox relay`: a stand-in for a self-built old IM system speaking relay protocol
//! v1. It checks and stores what imshift posts to its relay URL, and posts its own users'
//! events to imshift's inbound door, signed as the old system would.

use super::{signature, verify, SelfBuilt};
use crate::providers::serving::Serving;
use crate::providers::{Connection, Provider, RunningSandbox, Sandbox, StartOptions, Started};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the relay sandbox's own events say they come from, when the caller does not say.
const ORIGIN: &str = "relay-sandbox";

/// What a relay sandbox accepts and where it sends.
#[derive(Clone, Default)]
pub struct RelayConfig {
    /// imshift signs its posts with it (the connection's outbound secret).
    pub verify_secret: String,
    /// The relay signs its posts to imshift with it (the connection's inbound secret).
    pub send_secret: Option<String>,
    /// imshift's inbound door for this migration and side.
    pub hook_url: Option<String>,
    /// Fraction of batches answered 503 before anything is stored (0 to 1).
    pub fault_rate: f64,
    /// Accounts this old system does not know: events naming them are rejected.
    pub reject_accounts: Vec<String>,
    pub seed: u64,
}

#[derive(Default)]
struct Log {
    events: Vec<Value>,
    ids: HashSet<String>,
    duplicates: u64,
    rejected: u64,
    faults: u64,
}

struct Shared {
    config: RelayConfig,
    log: Mutex<Log>,
    rng: Mutex<StdRng>,
    http: reqwest::Client,
}

impl Shared {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running relay sandbox; stops when dropped.
pub struct RelayHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _serving: Serving,
}

impl RelayHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The events imshift posted, in the order they arrived (duplicates and rejected ones
    /// left out).
    pub fn received(&self) -> Vec<Value> {
        self.shared.log().events.clone()
    }

    /// Signs `events` with the send secret and posts them to imshift, as `POST /send` does.
    pub async fn send(&self, events: Vec<Value>) -> Result<Value, String> {
        send(&self.shared, events).await.map_err(|(_, e)| e)
    }
}

#[async_trait::async_trait]
impl RunningSandbox for RelayHandle {
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
        let conv = if group { "group" } else { "c2c" };
        let event = message_event(from, to, conv, text);
        let id = event["id"].as_str().unwrap_or_default().to_string();
        let out = self.send(vec![event]).await?;
        let status = out["status"].as_u64().unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(format!(
                "imshift answered {status} to the relay's message.sent: {}",
                out["answer"]
            ));
        }
        Ok(id)
    }
}

/// Starts a relay sandbox on `addr` (port 0 picks a free one; see `handle.addr`).
pub async fn spawn(config: RelayConfig, addr: SocketAddr) -> std::io::Result<RelayHandle> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
        config,
        log: Mutex::default(),
        http,
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/", post(receive))
        .route("/events", get(list))
        .route("/send", post(send_route))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared.clone());
    Ok(RelayHandle {
        addr,
        shared,
        _serving: Serving::start(listener, app, "relay sandbox"),
    })
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, Json(body)).into_response()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The first `--reject-account` an event's data names, where the protocol puts accounts.
fn unknown_account<'a>(data: &Value, reject: &'a [String]) -> Option<&'a String> {
    let named = |v: &Value| reject.iter().find(|r| v.as_str() == Some(r.as_str()));
    ["from", "to", "owner", "by"]
        .iter()
        .filter_map(|f| data.get(*f))
        .chain(
            data.get("accounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .find_map(named)
}

/// `POST /`: a batch from imshift.
async fn receive(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers
        .get("imshift-signature")
        .and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = verify(&sh.config.verify_secret, header, &body, now) {
        let code = if e.starts_with("stale") {
            "stale"
        } else {
            "bad_signature"
        };
        return error(StatusCode::UNAUTHORIZED, code, e);
    }
    // The provider's parser judges the batch; the events are kept whole, as they came.
    if let Err(e) = super::events(&body, SelfBuilt.capabilities().sync_receives) {
        return error(StatusCode::BAD_REQUEST, "malformed", e);
    }
    let Ok(Value::Object(mut batch)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the body is not a JSON object",
        );
    };
    let Some(Value::Array(events)) = batch.remove("events") else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed",
            "the body has no \"events\" array",
        );
    };
    let p = sh.config.fault_rate.clamp(0.0, 1.0);
    if p > 0.0
        && sh
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_bool(p)
    {
        sh.log().faults += 1;
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "fault",
            "injected fault (--fault-rate): nothing was stored, resend the batch",
        );
    }
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, vec![]);
    let mut log = sh.log();
    for ev in events {
        let id = ev["id"].as_str().unwrap_or_default().to_string();
        if log.ids.contains(&id) {
            duplicates += 1;
            log.duplicates += 1;
        } else if let Some(acc) = unknown_account(&ev["data"], &sh.config.reject_accounts) {
            log.rejected += 1;
            rejected.push(json!({
                "id": id,
                "code": "unknown_account",
                "message": format!("account {acc:?} does not exist on the old system"),
            }));
        } else {
            log.ids.insert(id);
            log.events.push(ev);
            accepted += 1;
        }
    }
    Json(json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected}))
        .into_response()
}

/// `GET /events`.
async fn list(State(sh): State<Arc<Shared>>) -> Json<Value> {
    let log = sh.log();
    Json(json!({
        "events": log.events,
        "duplicates": log.duplicates,
        "rejected": log.rejected,
        "faults": log.faults,
    }))
}

/// A message.sent event for a text message; the event and the message share one fresh id.
fn message_event(from: &str, to: &str, conv: &str, text: &str) -> Value {
    let id = format!("rly-{}", uuid::Uuid::new_v4().simple());
    let at = now_ms();
    json!({
        "id": id,
        "type": "message.sent",
        "at": at,
        "origin": ORIGIN,
        "data": {
            "id": id, "conv": conv, "from": from, "to": to, "sent_at": at,
            "body": {"type": "text", "text": text},
        },
    })
}

/// `POST /send`: `{"events":[...]}` or `{"message":{"from","to","conv"?,"text"}}`.
async fn send_route(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("not JSON: {e}"),
            )
        }
    };
    let events = if let Some(list) = body.get("events").and_then(Value::as_array) {
        list.clone()
    } else if let Some(m) = body.get("message").filter(|m| m.is_object()) {
        let field = |f: &str| m.get(f).and_then(Value::as_str);
        let (Some(from), Some(to), Some(text)) = (field("from"), field("to"), field("text")) else {
            let why = "\"message\" needs string \"from\", \"to\" and \"text\"";
            return error(StatusCode::BAD_REQUEST, "malformed", why);
        };
        let conv = field("conv").unwrap_or("c2c");
        if conv != "c2c" && conv != "group" {
            let why = format!("\"message.conv\" is {conv:?}; expected \"c2c\" or \"group\"");
            return error(StatusCode::BAD_REQUEST, "malformed", why);
        }
        vec![message_event(from, to, conv, text)]
    } else {
        let why = "the body has neither an \"events\" array nor a \"message\" object";
        return error(StatusCode::BAD_REQUEST, "malformed", why);
    };
    match send(&sh, events).await {
        Ok(out) => Json(out).into_response(),
        Err((status, e)) => error(status, "send_failed", e),
    }
}

/// Fills what the caller left out, signs and posts to imshift; answers imshift's status and
/// body with the ids sent, or the HTTP status the relay answers for the failure.
async fn send(sh: &Shared, mut events: Vec<Value>) -> Result<Value, (StatusCode, String)> {
    let (Some(url), Some(secret)) = (&sh.config.hook_url, &sh.config.send_secret) else {
        return Err((
            StatusCode::CONFLICT,
            "the relay has no imshift URL or send secret (--imshift-url, --send-secret)".into(),
        ));
    };
    let mut sent = vec![];
    for (i, ev) in events.iter_mut().enumerate() {
        let Some(ev) = ev.as_object_mut() else {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("events[{i}] is not an object"),
            ));
        };
        fill(ev, "id", || {
            format!("rly-{}", uuid::Uuid::new_v4().simple()).into()
        });
        fill(ev, "at", || now_ms().into());
        fill(ev, "origin", || ORIGIN.into());
        sent.push(ev["id"].clone());
    }
    let body = serde_json::to_vec(&json!({ "events": events })).expect("JSON values serialize");
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let answer = sh
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("Imshift-Signature", signature(secret, t, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                format!("imshift at {url} did not answer: {e}"),
            )
        })?;
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(json!({"status": status, "answer": answer, "sent": sent}))
}

fn fill(ev: &mut Map<String, Value>, key: &str, value: impl FnOnce() -> Value) {
    if ev.get(key).is_none_or(Value::is_null) {
        ev.insert(key.into(), value());
    }
}

fn secret_or_new(keys: Option<&Connection>, field: &str) -> SecretString {
    keys.and_then(|k| k.secret(field))
        .cloned()
        .unwrap_or_else(|| SecretString::from(crate::auth::secret::generate("rly_")))
}

#[async_trait::async_trait]
impl Sandbox for SelfBuilt {
    async fn serve(&self, args: Vec<String>) -> Result<(), String> {
        serve(args).await
    }

    async fn start(
        &self,
        keys: Option<&Connection>,
        opts: StartOptions,
    ) -> Result<Started, String> {
        let outbound = secret_or_new(keys, "outbound_secret");
        let inbound = secret_or_new(keys, "inbound_secret");
        let config = RelayConfig {
            verify_secret: outbound.expose_secret().to_string(),
            send_secret: Some(inbound.expose_secret().to_string()),
            hook_url: opts.hook_url,
            ..RelayConfig::default()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
        let handle = spawn(config, addr)
            .await
            .map_err(|e| format!("The relay sandbox could not start on {addr}: {e}"))?;
        let mut public = Map::new();
        public.insert("relay_url".into(), handle.base_url().into());
        Ok(Started {
            sandbox: Box::new(handle),
            public,
            secrets: vec![
                ("outbound_secret".into(), outbound),
                ("inbound_secret".into(), inbound),
            ],
        })
    }
}

fn fault_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a fraction from 0 to 1")),
    }
}

/// Emulate a self-built IM system's relay (relay protocol v1) until Ctrl-C / SIGTERM.
#[derive(Parser)]
#[command(
    name = "relay",
    bin_name = "imshift sandbox relay",
    no_binary_name = true
)]
pub struct RelayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    /// The secret imshift signs its posts with (the connection's outbound secret).
    #[arg(long, env = "IMSHIFT_RELAY_SECRET", hide_env_values = true)]
    secret: String,
    /// The secret the relay signs its posts to imshift with (the connection's inbound secret).
    #[arg(long, env = "IMSHIFT_RELAY_SEND_SECRET", hide_env_values = true)]
    send_secret: Option<String>,
    /// imshift's inbound URL for this migration (…/hooks/{id}/source), for POST /send.
    #[arg(long)]
    imshift_url: Option<String>,
    /// Fraction of batches answered 503 (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = fault_rate)]
    fault_rate: f64,
    /// An account the old system does not know: events naming it are rejected (repeatable).
    #[arg(long = "reject-account")]
    reject_accounts: Vec<String>,
    /// Seed for fault injection, to replay a run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Parses `args` (the words after `imshift sandbox relay`) and serves until Ctrl-C / SIGTERM.
pub async fn serve(args: Vec<String>) -> Result<(), String> {
    let args = RelayArgs::try_parse_from(args).unwrap_or_else(|e| e.exit());
    let config = RelayConfig {
        verify_secret: args.secret,
        send_secret: args.send_secret,
        hook_url: args.imshift_url,
        fault_rate: args.fault_rate,
        reject_accounts: args.reject_accounts,
        seed: args.seed,
    };
    let sending = config.hook_url.is_some() && config.send_secret.is_some();
    let handle = spawn(config, args.listen)
        .await
        .map_err(|e| format!("cannot start the relay sandbox on {}: {e}", args.listen))?;
    let url = handle.base_url();
    println!("relay sandbox on {url}");
    println!("  POST {url}          imshift's batches (relay URL)");
    println!("  GET  {url}events    what it received");
    println!(
        "  POST {url}send      post events to imshift{}",
        if sending {
            ""
        } else {
            " (needs --imshift-url and --send-secret)"
        }
    );
    println!("  GET  {url}healthz");
    crate::cli::shutdown_signal().await;
    drop(handle);
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;
    use crate::providers::outbound;
    use clap::CommandFactory;

    const SECRET: &str = "imshift-to-relay-secret";

    fn event(id: &str, from: &str) -> Value {
        json!({"id": id, "type": "message.sent", "at": 1_700_000_000_000i64, "origin": "imshift",
               "data": {"id": id, "conv": "c2c", "from": from, "to": "u2", "sent_at": 1, "body": {"type": "text", "text": "hi"}}})
    }

    async fn relay(config: RelayConfig) -> RelayHandle {
        let config = RelayConfig {
            verify_secret: SECRET.into(),
            ..config
        };
        spawn(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
    }

    async fn deliver(
        h: &RelayHandle,
        secret: &str,
        t_offset: i64,
        events: Vec<Value>,
    ) -> (u16, Value) {
        let body = json!({ "events": events }).to_string();
        let t = time::OffsetDateTime::now_utc().unix_timestamp() + t_offset;
        let r = reqwest::Client::new()
            .post(h.base_url())
            .header("Imshift-Signature", signature(secret, t, body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn a_signed_batch_is_accepted_once_and_listed_and_bad_ones_are_refused() {
        let h = relay(RelayConfig {
            reject_accounts: vec!["ghost".into()],
            ..Default::default()
        })
        .await;
        let (s, a) = deliver(&h, SECRET, 0, vec![event("e1", "u1"), event("e2", "u1")]).await;
        assert_eq!(
            (s, a["accepted"].as_u64(), a["duplicates"].as_u64()),
            (200, Some(2), Some(0))
        );
        let (s, a) = deliver(&h, SECRET, 0, vec![event("e2", "u1"), event("e3", "ghost")]).await;
        assert_eq!(
            (s, a["accepted"].as_u64(), a["duplicates"].as_u64()),
            (200, Some(0), Some(1))
        );
        assert_eq!(a["rejected"][0]["id"], "e3");
        assert_eq!(a["rejected"][0]["code"], "unknown_account");
        assert!(a["rejected"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ghost"));
        let ids: Vec<_> = h.received().iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids, [json!("e1"), json!("e2")]);

        let listed: Value = reqwest::get(format!("{}events", h.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["events"].as_array().unwrap().len(), 2);
        assert_eq!(
            (listed["duplicates"].as_u64(), listed["rejected"].as_u64()),
            (Some(1), Some(1))
        );

        let (s, a) = deliver(&h, "another-secret-entirely", 0, vec![event("e4", "u1")]).await;
        assert_eq!(
            (s, a["error"]["code"].as_str()),
            (401, Some("bad_signature"))
        );
        let (s, a) = deliver(&h, SECRET, -301, vec![event("e4", "u1")]).await;
        assert_eq!((s, a["error"]["code"].as_str()), (401, Some("stale")));
        let (s, a) = deliver(&h, SECRET, 0, vec![]).await;
        assert_eq!(s, 400, "{a}");
        let mut bad = event("e5", "u1");
        bad["type"] = json!("message.exploded");
        let (s, a) = deliver(&h, SECRET, 0, vec![event("e4", "u1"), bad]).await;
        assert_eq!(s, 400);
        assert!(
            a["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("events[1]"),
            "{a}"
        );
        assert_eq!(h.received().len(), 2);
        let health = reqwest::get(format!("{}healthz", h.base_url()))
            .await
            .unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn a_fault_rate_of_one_answers_503_and_stores_nothing() {
        let h = relay(RelayConfig {
            fault_rate: 1.0,
            ..Default::default()
        })
        .await;
        let (s, _) = deliver(&h, SECRET, 0, vec![event("e1", "u1")]).await;
        assert_eq!(s, 503);
        assert!(h.received().is_empty());
        let listed: Value = reqwest::get(format!("{}events", h.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["faults"], 1);
    }

    /// A stand-in for imshift's inbound door: checks the relay's signature, keeps the batches.
    async fn imshift(secret: &'static str) -> (String, Arc<Mutex<Vec<Value>>>) {
        let got = Arc::new(Mutex::new(vec![]));
        let keep = got.clone();
        let app = Router::new().route(
            "/hooks/m/source",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let header = headers
                    .get("imshift-signature")
                    .and_then(|v| v.to_str().ok());
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                if let Err(e) = verify(secret, header, &body, now) {
                    return (StatusCode::UNAUTHORIZED, e).into_response();
                }
                let batch: Value = serde_json::from_slice(&body).unwrap();
                let n = batch["events"].as_array().unwrap().len();
                keep.lock().unwrap().push(batch);
                Json(json!({"accepted": n, "duplicates": 0, "rejected": []})).into_response()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/hooks/m/source"), got)
    }

    #[tokio::test]
    async fn send_posts_a_signed_batch_to_imshift_and_user_message_answers_its_id() {
        let (hook, got) = imshift("relay-to-imshift-secret").await;
        let h = relay(RelayConfig {
            hook_url: Some(hook.clone()),
            send_secret: Some("relay-to-imshift-secret".into()),
            ..Default::default()
        })
        .await;
        let out = h
            .send(vec![
                json!({"type": "friend.added", "data": {"from": "u1", "to": "u2"}}),
            ])
            .await
            .unwrap();
        assert_eq!(out["status"], 200, "{out}");
        assert_eq!(out["answer"]["accepted"], 1);
        let sent = got.lock().unwrap()[0]["events"][0].clone();
        assert_eq!(sent["id"], out["sent"][0]);
        assert_eq!(sent["origin"], ORIGIN);
        assert!(sent["at"].as_i64().unwrap() > 1_700_000_000_000);

        let id = h.user_message("u1", "g1", true, "hello").await.unwrap();
        let m = got.lock().unwrap()[1]["events"][0].clone();
        assert_eq!(
            (m["id"].as_str(), m["type"].as_str()),
            (Some(id.as_str()), Some("message.sent"))
        );
        assert_eq!(m["data"]["conv"], "group");
        assert_eq!(m["data"]["body"]["text"], "hello");

        let via_http: Value = reqwest::Client::new()
            .post(format!("{}send", h.base_url()))
            .json(&json!({"message": {"from": "u2", "to": "u1", "text": "yo"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(via_http["status"], 200);
        assert_eq!(got.lock().unwrap()[2]["events"][0]["data"]["conv"], "c2c");

        // Signed with a secret imshift does not hold: user_message says what imshift answered.
        let wrong = relay(RelayConfig {
            hook_url: Some(hook),
            send_secret: Some("wrong-secret-xxxxxxx".into()),
            ..Default::default()
        })
        .await;
        let e = wrong
            .user_message("u1", "u2", false, "x")
            .await
            .unwrap_err();
        assert!(e.contains("401"), "{e}");
        let unset = relay(RelayConfig::default()).await;
        let r = reqwest::Client::new()
            .post(format!("{}send", unset.base_url()))
            .json(&json!({"events": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
    }

    #[tokio::test]
    async fn start_uses_the_connections_secrets_and_a_relay_url_imshift_may_call() {
        let mut secrets = std::collections::HashMap::new();
        secrets.insert("outbound_secret".to_string(), SecretString::from(SECRET));
        let conn = Connection {
            migration_id: uuid::Uuid::nil().into(),
            side: Side::Source,
            public: Map::new(),
            secrets,
            sandbox: true,
        };
        let started = SelfBuilt
            .start(Some(&conn), StartOptions::default())
            .await
            .unwrap();
        let url = started.public["relay_url"].as_str().unwrap();
        outbound::check_url(url, outbound::Policy::from_env()).unwrap();
        let names: Vec<_> = started.secrets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["outbound_secret", "inbound_secret"]);
        assert_eq!(started.secrets[0].1.expose_secret(), SECRET);
        assert!(started.secrets[1].1.expose_secret().starts_with("rly_"));
        // The Test connection call: a signed empty batch answered 400.
        let mut public = started.public.clone();
        SelfBuilt.check(Side::Source, &mut public).unwrap();
        let conn = Connection { public, ..conn };
        let check = SelfBuilt.test(&conn).await.unwrap();
        assert!(check.ok, "{}", check.message);
    }

    #[test]
    fn the_flags_parse_as_imshift_sandbox_relay_took_them() {
        RelayArgs::command().debug_assert();
        let a = RelayArgs::try_parse_from([
            "--secret",
            "S",
            "--reject-account",
            "a",
            "--reject-account",
            "b",
            "--fault-rate",
            "0.5",
        ])
        .unwrap();
        assert_eq!(a.listen.port(), 7300);
        assert_eq!(a.reject_accounts, ["a", "b"]);
        assert_eq!(a.fault_rate, 0.5);
        assert!(RelayArgs::try_parse_from(["--secret", "S", "--fault-rate", "2"]).is_err());
        let Err(help) = RelayArgs::try_parse_from(["--help"]) else {
            panic!("--help parsed as a run")
        };
        assert!(help.to_string().contains("imshift sandbox relay"));
    }
}
