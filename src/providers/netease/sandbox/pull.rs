//! NetEase's importer on the other end of the incremental interface (seed 001, step 4: its
//! staff pull the customer's history from an HTTP interface at an agreed interval): `POST
//! /_sandbox/pull {"url", "token"?, "cursor"?, "limit"?}` GETs `url?cursor=…&limit=…` page by
//! page, passing back each answer's `next`, until an answer says there is no `more`, and keeps
//! every line it took (`GET /_sandbox/pulled`). The authentication and paging are imshift's
//! (UNCONFIRMED with NetEase): a bearer token, `cursor`, `limit`.

use super::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Pages one pull may take before it stops (a safety net against an interface that always
/// says `more`).
const MAX_PAGES: usize = 10_000;

async fn pull(sh: &Shared, v: &Value) -> Result<Value, String> {
    let url = v
        .get("url")
        .and_then(Value::as_str)
        .ok_or("a pull needs the interface's `url`")?;
    let token = v.get("token").and_then(Value::as_str);
    let limit = v.get("limit").and_then(Value::as_u64).unwrap_or(1000);
    let mut cursor = v.get("cursor").and_then(Value::as_str).map(str::to_string);
    let (mut pages, mut lines) = (0usize, 0usize);
    loop {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let mut req = super::copy::http().get(url).query(&q);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("page {}: {e}", pages + 1))?;
        let status = r.status();
        let page: Value = r
            .json()
            .await
            .map_err(|e| format!("page {}: HTTP {status}, not JSON: {e}", pages + 1))?;
        if page.get("code").and_then(Value::as_i64) != Some(200) {
            return Err(format!(
                "page {}: HTTP {status}, answered {page}",
                pages + 1
            ));
        }
        pages += 1;
        let data = page
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        lines += data.len();
        sh.pulled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(data);
        let more = page.get("more").and_then(Value::as_bool).unwrap_or(false);
        match page.get("next").and_then(Value::as_str) {
            Some(n) if more && pages < MAX_PAGES => cursor = Some(n.to_string()),
            _ => break,
        }
    }
    Ok(json!({ "pages": pages, "lines": lines, "cursor": cursor }))
}

pub(super) async fn pull_route(State(sh): State<Arc<Shared>>, Json(v): Json<Value>) -> Response {
    match pull(&sh, &v).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e }))).into_response(),
    }
}

/// `GET /_sandbox/pulled`: every line pulls took, in order.
pub(super) async fn pulled_route(State(sh): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(
        sh.pulled.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    ))
}
