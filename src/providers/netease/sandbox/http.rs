//! The HTTP shell around the API handlers: routing, the signature headers, the form body, the
//! quota, injected faults and lost answers, the `{"code":…}` envelope, and `/_sandbox/*`.

use super::params::{parse_form, Params, PARAM};
use super::{handler_for, now_ms, rej, Ctx, Fault, Faults, Handler, Out, Reject, Shared};
use crate::providers::netease::sign;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn envelope(result: Out) -> Value {
    let mut out = Map::new();
    match result {
        Ok(payload) => {
            out.insert("code".into(), json!(200));
            out.extend(payload);
        }
        Err(r) => {
            out.insert("code".into(), json!(r.code));
            out.insert("desc".into(), json!(r.desc));
        }
    }
    Value::Object(out)
}

fn json_response(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 Not Found").into_response()
}

fn bad_gateway() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
        .into_response()
}

impl Shared {
    /// The signature headers (reference §1.2). UNCONFIRMED choices: a missing or unknown
    /// `AppKey` → 403; every other failure → 414 with a `desc` starting "checksum".
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Reject> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let app_key = h("AppKey").unwrap_or_default();
        if app_key.is_empty() || app_key != self.config.app_key {
            return Err(rej(403, format!("AppKey {app_key:?} is not a known app")));
        }
        let nonce = h("Nonce").unwrap_or_default();
        let n = nonce.chars().count();
        if !(1..=128).contains(&n) {
            return Err(rej(
                PARAM,
                format!("checksum: Nonce must be 1 to 128 characters, not {n}"),
            ));
        }
        let cur_time = h("CurTime").unwrap_or_default();
        let secs: u64 = match cur_time.parse() {
            Ok(s) if cur_time.bytes().all(|b| b.is_ascii_digit()) => s,
            _ => {
                return Err(rej(
                    PARAM,
                    format!("checksum: CurTime {cur_time:?} is not decimal seconds"),
                ))
            }
        };
        let now = now_ms() / 1000;
        if now.abs_diff(secs) > self.config.checksum_window_secs {
            return Err(rej(
                PARAM,
                format!(
                    "checksum expired: CurTime {secs} is {} s from the server's {now}",
                    now.abs_diff(secs)
                ),
            ));
        }
        let given = h("CheckSum").unwrap_or_default();
        let expected = sign::checksum(self.config.secret.expose_secret(), nonce, cur_time);
        if !sign::same_digest(&expected, given) {
            return Err(rej(PARAM, "checksum: CheckSum does not match"));
        }
        Ok(())
    }

    /// Over the quota of the API's category → 416, counted as throttled.
    fn within_quota(&self, api: &'static str) -> Result<(), Reject> {
        let category = crate::providers::netease::category(api);
        if self
            .limiters
            .get(category)
            .is_some_and(|l| l.check().is_err())
        {
            self.counters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .throttled += 1;
            return Err(rej(416, format!("{api}: call frequency over its limit")));
        }
        Ok(())
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

    /// How late the faults in force answer `api`.
    fn answer_delay(&self, api: &str) -> u64 {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if faults.apis.is_empty() || faults.apis.iter().any(|a| a == api) {
            faults.answer_delay_ms
        } else {
            0
        }
    }

    fn record(&self, api: &'static str, f: impl FnOnce(&mut super::ApiStats)) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let s = c.apis.entry(api).or_default();
        s.calls += 1;
        f(s);
    }

    fn run(&self, handler: Handler, params: &Params) -> Out {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut ctx = Ctx {
            now_ms: now_ms(),
            config: &self.config,
        };
        handler(&mut ctx, &mut data, params)
    }
}

fn random_fault(faults: &Faults, rng: &std::sync::Mutex<rand::rngs::StdRng>) -> Option<Fault> {
    if faults.bad_gateway_rate <= 0.0 && faults.code_rate <= 0.0 && faults.lost_answer_rate <= 0.0 {
        return None;
    }
    let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
    if rng.random::<f64>() < faults.bad_gateway_rate {
        return Some(Fault::BadGateway);
    }
    if rng.random::<f64>() < faults.code_rate && !faults.codes.is_empty() {
        let code = faults.codes[rng.random_range(0..faults.codes.len())];
        return Some(Fault::Code(code));
    }
    if rng.random::<f64>() < faults.lost_answer_rate {
        return Some(if faults.lost_answer_as_502 {
            Fault::LostAnswerBadGateway
        } else {
            Fault::LostAnswer
        });
    }
    None
}

/// A form body, whatever the charset suffix; anything else is a parameter error
/// (UNCONFIRMED: what NetEase answers a JSON or multipart body on these paths).
fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, Reject> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ctype.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(rej(
            PARAM,
            format!("Content-Type {ctype:?}: send application/x-www-form-urlencoded"),
        ));
    }
    parse_form(body)
        .map(Params)
        .map_err(|e| rej(PARAM, format!("form body: {e}")))
}

async fn nimserver(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path((module, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(op) = action.strip_suffix(".action") else {
        return not_found();
    };
    let Some((api, handler)) = handler_for(&format!("{module}/{op}")) else {
        return not_found();
    };
    if method != Method::POST {
        return not_found();
    }
    if sh.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sh.config.latency_ms)).await;
    }
    let ready = sh
        .authenticate(&headers)
        .and_then(|()| form_params(&headers, &body))
        .and_then(|p| sh.within_quota(api).map(|()| p));
    let params = match ready {
        Ok(p) => p,
        Err(r) => {
            sh.record(api, |s| *s.codes.entry(r.code).or_default() += 1);
            return json_response(&envelope(Err(r)));
        }
    };
    let lost = match sh.fault_for(api) {
        None => None,
        Some(Fault::BadGateway) => {
            sh.record(api, |s| s.bad_gateway += 1);
            return bad_gateway();
        }
        Some(Fault::Code(code)) => {
            sh.record(api, |s| *s.codes.entry(code).or_default() += 1);
            let r = rej(code, format!("injected fault {code}"));
            return json_response(&envelope(Err(r)));
        }
        Some(f) => Some(f),
    };
    let result = sh.run(handler, &params);
    if let (Ok(out), "msg/sendMsg") = (&result, api) {
        if let Some(msgid) = out.get("data").and_then(|d| d["msgid"].as_u64()) {
            super::copy::emit(&sh, msgid);
        }
    }
    let code = result.as_ref().err().map_or(200, |r| r.code);
    sh.record(api, |s| {
        *s.codes.entry(code).or_default() += 1;
        if lost.is_some() {
            s.lost += 1;
        }
    });
    let late = sh
        .config
        .slow_answers
        .get(api)
        .copied()
        .unwrap_or(0)
        .max(sh.answer_delay(api));
    if late > 0 {
        tokio::time::sleep(Duration::from_millis(late)).await;
    }
    let answer = envelope(result);
    match lost {
        Some(Fault::LostAnswerBadGateway) => bad_gateway(),
        Some(_) => {
            // Applied, but the caller gets half an answer and a cut connection.
            let bytes = serde_json::to_vec(&answer).unwrap_or_default();
            let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
            let cut = futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other(
                    "sandbox: answer lost (fault injection)",
                )),
            ]);
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                Body::from_stream(cut),
            )
                .into_response()
        }
        None => json_response(&answer),
    }
}

async fn state(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.state_json())
}

async fn export(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.export_json())
}

async fn teams(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(sh.teams_json())
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
        .route("/nimserver/{module}/{action}", any(nimserver))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/export", get(export))
        .route("/_sandbox/teams", get(teams))
        .route("/_sandbox/messages", get(messages))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route(
            "/_sandbox/user_message",
            axum::routing::post(super::copy::user_message_route),
        )
        .route(
            "/_sandbox/pull",
            axum::routing::post(super::pull::pull_route),
        )
        .route("/_sandbox/pulled", get(super::pull::pulled_route))
        .route(
            "/_sandbox/copy",
            get(super::copy::copy_route).post(super::copy::copy_route),
        )
        .fallback(|| async { not_found() })
        .with_state(shared)
}
