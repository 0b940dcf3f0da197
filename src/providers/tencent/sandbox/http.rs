//! The HTTP shell around the API handlers: the axum router, the URL's query (signature,
//! admin, QPS), injected faults and lost answers, the answer envelope, and callbacks out.

use super::{handler_for, rej, Ctx, Out, PendingCallback, Reject, Shared};
use crate::providers::tencent::callbacks;
use crate::providers::tencent::usersig::{self, UserSigError};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Codes the real service returns for transient trouble; fault injection picks among them.
const FAULT_CODES: [i64; 3] = [70500, 10002, 90992];

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
            if self.config.lost_callback_rate > 0.0 {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                if rng.random::<f64>() < self.config.lost_callback_rate {
                    self.callbacks_lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let mut query: Vec<(&str, String)> = vec![
                ("SdkAppid", self.config.sdkappid.to_string()),
                ("CallbackCommand", cb.command.to_string()),
                ("contenttype", "json".into()),
                ("ClientIP", "127.0.0.1".into()),
                ("OptPlatform", cb.platform.into()),
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
    run_as(sh, api, admin, body, "RESTAPI")
}

/// Runs one API as if sent from `platform` (what callbacks say in `OptPlatform`).
pub(super) fn run_as(
    sh: &Shared,
    api: &'static str,
    admin: &str,
    body: &[u8],
    platform: &'static str,
) -> Out {
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
    let now_ms = sh.config.clock.now_ms();
    let mut ctx = Ctx {
        now: now_ms / 1000,
        now_ms,
        platform,
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

/// `POST /_sandbox/user_message {"from","to","group","text"}`: an app user sends a message
/// (callbacks fire as for a phone's send). Answers `{"id"}` or 400 with why.
async fn user_message(State(sh): State<Arc<Shared>>, Json(v): Json<Value>) -> Response {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let group = v.get("group").and_then(Value::as_bool).unwrap_or(false);
    match sh.user_message(&s("from"), &s("to"), group, &s("text")) {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": e })),
        )
            .into_response(),
    }
}

/// `POST /_sandbox/user_action`: an app user recalls a message or ends a friendship
/// (see `Shared::user_action`). Answers `{}` or 400 with why.
async fn user_action(State(sh): State<Arc<Shared>>, Json(v): Json<Value>) -> Response {
    match sh.user_action(&v) {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": e })),
        )
            .into_response(),
    }
}

pub(super) fn router_from(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v4/{service}/{command}", any(handle))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/export", get(export))
        .route("/_sandbox/user_message", axum::routing::post(user_message))
        .route("/_sandbox/user_action", axum::routing::post(user_action))
        .fallback(not_found)
        .with_state(shared)
}
