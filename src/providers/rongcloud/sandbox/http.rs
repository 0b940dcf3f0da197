//! The HTTP shell around the API handlers: routing (`POST /<path>.json`), the signature
//! headers, the form (or JSON) body, the per-API quota, injected faults and lost answers, the
//! `{"code":…}` envelope with its HTTP status, and `/_sandbox/*`.

use super::params::{parse_form, parse_json, Params, PARAM};
use super::route::{same_digest, signature};
use super::{
    handler_for, http_status, now_ms, rej, Body as Kind, Ctx, Fault, Faults, Handler, Out, Reject,
    Shared, PER_MINUTE,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The answer to a call: the HTTP status paired with its code, and the JSON body.
fn envelope(result: Out) -> (u16, Value) {
    let mut out = Map::new();
    let status = match result {
        Ok(payload) => {
            out.insert("code".into(), json!(200));
            out.extend(payload);
            200
        }
        Err(r) => {
            out.insert("code".into(), json!(r.code));
            out.insert("errorMessage".into(), json!(r.msg));
            r.status.unwrap_or_else(|| http_status(r.code))
        }
    };
    (status, Value::Object(out))
}

fn json_response(status: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

fn refusal(r: Reject) -> Response {
    let (status, body) = envelope(Err(r));
    json_response(status, &body)
}

/// Unknown paths and methods: HTTP 404 with a JSON body (reference §5.1; the body's code is
/// the sandbox's own).
fn not_found(what: &str) -> Response {
    json_response(
        404,
        &json!({ "code": 404, "errorMessage": format!("no API at {what}") }),
    )
}

/// What a load balancer answers when the service behind it fails.
fn error_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!("<html><body><h1>{status}</h1></body></html>"),
    )
        .into_response()
}

/// A response whose body breaks off after `sent` bytes: the connection is cut.
fn cut(sent: Vec<u8>) -> Response {
    let cut = futures_util::stream::iter([
        Ok(Bytes::from(sent)),
        Err(std::io::Error::other(
            "sandbox: connection cut (fault injection)",
        )),
    ]);
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from_stream(cut),
    )
        .into_response()
}

impl Shared {
    /// The signature headers (reference §1.2, §5.2), each also as `RC-<name>`; header names
    /// are case-insensitive. An unknown or missing key → 401 / 1001 (UNCONFIRMED), anything
    /// else → 401 / 1004.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Reject> {
        let h = |name: &str| {
            headers
                .get(name)
                .or_else(|| headers.get(format!("RC-{name}").as_str()))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let app_key = h("App-Key");
        if app_key.is_empty() {
            return Err(rej(1001, "the App-Key header is missing"));
        }
        if app_key != self.config.app_key {
            return Err(rej(1001, format!("App-Key {app_key:?} is not a known app")));
        }
        let nonce = h("Nonce");
        if nonce.is_empty() {
            return Err(rej(1004, "the Nonce header is missing"));
        }
        if let Some(max) = self.config.max_nonce_chars {
            let n = nonce.chars().count();
            if n > max {
                return Err(rej(1004, format!("Nonce is {n} characters; at most {max}")));
            }
        }
        let timestamp = h("Timestamp");
        let ts: u64 = match timestamp.parse() {
            Ok(t) if timestamp.bytes().all(|b| b.is_ascii_digit()) => t,
            _ => {
                return Err(rej(
                    1004,
                    format!("Timestamp {timestamp:?} is not decimal seconds or milliseconds"),
                ))
            }
        };
        // The SDKs send seconds (Java, Go) or milliseconds (Python, the docs): both pass.
        let ts_ms = if ts < 100_000_000_000 {
            ts.saturating_mul(1000)
        } else {
            ts
        };
        let now = now_ms();
        let window = self.config.timestamp_window_secs.saturating_mul(1000);
        if now.abs_diff(ts_ms) > window {
            return Err(rej(
                1004,
                format!(
                    "Timestamp {timestamp} is {} s from the server's clock; at most {} s",
                    now.abs_diff(ts_ms) / 1000,
                    self.config.timestamp_window_secs
                ),
            ));
        }
        let given = h("Signature");
        if given.is_empty() {
            return Err(rej(1004, "the Signature header is missing"));
        }
        let expected = signature(self.config.secret.expose_secret(), nonce, timestamp);
        if !same_digest(&expected, given) {
            return Err(rej(
                1004,
                "Signature does not match SHA1(App Secret + Nonce + Timestamp)",
            ));
        }
        Ok(())
    }

    /// Over the API's quota → 429 / 1008, counted as throttled. Private publish spends one
    /// token per recipient, group publish one per group (reference §1.5).
    fn within_quota(&self, api: &'static str, params: &Params) -> Result<(), Reject> {
        let Some(limiter) = self.limiters.get(api) else {
            return Ok(());
        };
        let cost = match api {
            "message/private/publish" | "statusmessage/private/publish" => {
                params.all("toUserId").len()
            }
            "message/group/publish" | "statusmessage/group/publish" => {
                params.all("toGroupId").len()
            }
            _ => 1,
        };
        // An empty list is refused by the handler with its reason.
        let Some(n) = NonZeroU32::new(cost.max(1).min(u32::MAX as usize) as u32) else {
            return Ok(());
        };
        if matches!(limiter.check_n(n), Ok(Ok(()))) {
            return Ok(());
        }
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttled += 1;
        let limit = self.config.limits.qps(api).unwrap_or(100);
        let what = match api {
            PER_MINUTE => format!("{} recipient-messages a minute", limit * 60),
            "message/group/publish" => format!("{limit} group-messages a second"),
            _ => format!("{limit} calls a second"),
        };
        Err(rej(
            1008,
            format!("{api}: call rate exceeded; the limit is {what}"),
        ))
    }

    /// The fault this call gets, if any: the script first, then the random rates.
    fn fault_for(&self, api: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if !(faults.apis.is_empty() || faults.apis.iter().any(|a| a == api)) {
            return None;
        }
        let fault = faults
            .next
            .pop_front()
            .or_else(|| random_fault(&faults, &self.rng));
        if fault.is_some() {
            self.counters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .injected += 1;
        }
        fault
    }

    fn record(&self, api: &'static str, f: impl FnOnce(&mut super::ApiStats)) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let s = c.apis.entry(api).or_default();
        s.calls += 1;
        f(s);
    }

    /// Applies a call; the answer and the messages it stored that routing should post.
    fn run(&self, handler: Handler, params: &Params) -> (Out, Vec<usize>) {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut ctx = Ctx {
            now_ms: now_ms(),
            config: &self.config,
            base_url: self.base_url.get().map_or("", String::as_str),
            to_route: Vec::new(),
        };
        let out = handler(&mut ctx, &mut data, params);
        (out, ctx.to_route)
    }
}

fn random_fault(faults: &Faults, rng: &std::sync::Mutex<rand::rngs::StdRng>) -> Option<Fault> {
    if faults.http_rate <= 0.0
        && faults.code_rate <= 0.0
        && faults.disconnect_rate <= 0.0
        && faults.lost_answer_rate <= 0.0
    {
        return None;
    }
    let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
    if rng.random::<f64>() < faults.http_rate && !faults.http_statuses.is_empty() {
        let s = faults.http_statuses[rng.random_range(0..faults.http_statuses.len())];
        return Some(Fault::Http(s));
    }
    if rng.random::<f64>() < faults.code_rate && !faults.codes.is_empty() {
        let code = faults.codes[rng.random_range(0..faults.codes.len())];
        return Some(Fault::Code(code));
    }
    if rng.random::<f64>() < faults.disconnect_rate {
        return Some(Fault::Disconnect);
    }
    if rng.random::<f64>() < faults.lost_answer_rate {
        return Some(if faults.lost_answer_as_504 {
            Fault::LostAnswerTimeout
        } else {
            Fault::LostAnswer
        });
    }
    None
}

/// The body as fields: a form (any charset suffix) on the form APIs, a JSON object on the
/// JSON ones (reference §5.1). No body at all → 1003.
fn body_params(kind: Kind, headers: &HeaderMap, body: &[u8]) -> Result<Params, Reject> {
    if body.is_empty() {
        return Err(rej(1003, "no POST data"));
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ctype.split(';').next().unwrap_or_default().trim();
    let wanted = match kind {
        Kind::Form => "application/x-www-form-urlencoded",
        Kind::Json => "application/json",
    };
    if !essence.eq_ignore_ascii_case(wanted) {
        return Err(rej(
            PARAM,
            format!("Content-Type {ctype:?}: this API takes {wanted}"),
        ));
    }
    let fields = match kind {
        Kind::Form => parse_form(body),
        Kind::Json => parse_json(body),
    };
    fields
        .map(Params)
        .map_err(|e| rej(PARAM, format!("body: {e}")))
}

async fn api(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(name) = path.strip_prefix('/').and_then(|p| p.strip_suffix(".json")) else {
        return not_found(path);
    };
    let Some((api, kind, handler)) = handler_for(name) else {
        return not_found(path);
    };
    if method != Method::POST {
        return not_found(&format!("{method} {path}"));
    }
    if sh.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sh.config.latency_ms)).await;
    }
    let ready = sh
        .authenticate(&headers)
        .and_then(|()| body_params(kind, &headers, &body))
        .and_then(|p| sh.within_quota(api, &p).map(|()| p));
    let params = match ready {
        Ok(p) => p,
        Err(r) => {
            sh.record(api, |s| *s.codes.entry(r.code).or_default() += 1);
            return refusal(r);
        }
    };
    let lost = match sh.fault_for(api) {
        None => None,
        Some(Fault::Http(status)) => {
            sh.record(api, |s| s.http_faults += 1);
            return error_page(status);
        }
        Some(Fault::Disconnect) => {
            sh.record(api, |s| s.http_faults += 1);
            return cut(Vec::new());
        }
        Some(Fault::Code(code)) => {
            sh.record(api, |s| *s.codes.entry(code).or_default() += 1);
            return refusal(rej(code, format!("injected fault {code}")));
        }
        Some(f) => Some(f),
    };
    let (result, to_route) = sh.run(handler, &params);
    if result.is_ok() {
        for i in to_route {
            super::route::emit(&sh, i);
        }
    }
    let code = result.as_ref().err().map_or(200, |r| r.code);
    sh.record(api, |s| {
        *s.codes.entry(code).or_default() += 1;
        if lost.is_some() {
            s.lost += 1;
        }
    });
    if let Some(ms) = sh.config.slow_answers.get(api) {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    let (status, answer) = envelope(result);
    match lost {
        Some(Fault::LostAnswerTimeout) => refusal(rej(1050, "internal service timeout")),
        Some(_) => {
            // Applied, but the caller gets half an answer and a cut connection.
            let bytes = serde_json::to_vec(&answer).unwrap_or_default();
            cut(bytes[..bytes.len() / 2].to_vec())
        }
        None => json_response(status, &answer),
    }
}

async fn state(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.state_json())
}

async fn export(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.export_json())
}

async fn messages(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.messages_json())
}

async fn get_faults(State(sh): State<Arc<Shared>>) -> Json<Value> {
    let f = sh.faults.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Json(serde_json::to_value(f).unwrap_or(Value::Null))
}

/// `POST /_sandbox/faults` with a [`Faults`] JSON (missing fields take their defaults):
/// replaces the fault injection in force. 400 with why when it is not valid.
async fn set_faults(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Faults>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| f.check().map(|()| f));
    match parsed {
        Ok(f) => {
            *sh.faults.lock().unwrap_or_else(|p| p.into_inner()) = f.clone();
            Json(serde_json::to_value(f).unwrap_or(Value::Null)).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    }
}

pub(super) fn router_from(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/export", get(export))
        .route("/_sandbox/messages", get(messages))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route(
            "/_sandbox/user_message",
            post(super::route::user_message_route),
        )
        .route(
            "/_sandbox/route",
            get(super::route::route_route).post(super::route::route_route),
        )
        .route(
            "/_sandbox/history_log/{date}",
            get(super::messages::history_log_file),
        )
        .fallback(api)
        .with_state(shared)
}
