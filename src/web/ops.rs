//! Operations endpoints: liveness, readiness, Prometheus metrics, and per-request metrics.

use super::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

/// `metrics` has one process-wide recorder; every router in the process shares it.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then ours just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub fn init_metrics() {
    let _ = prometheus();
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match crate::db::pending(&state.pool).await {
        Ok(p) if p.is_empty() => {
            Json(json!({ "database": "ok", "migrations": "applied" })).into_response()
        }
        Ok(p) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "database": "ok", "migrations": "pending", "pending": p,
                         "fix": "run `imshift db migrate`" }),
            ),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics, for loopback callers (a scraper on the same machine) or callers with
/// IMSHIFT_METRICS_TOKEN as a bearer token. A request that came through a proxy (it names a
/// forwarded client) is not local, even when the proxy runs on this machine.
pub async fn metrics_text(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let headers = request.headers();
    let local = peer.is_some_and(|p| p.is_loopback())
        && crate::auth::actor::forwarded_hops(headers).is_empty();
    let with_token = state.config.metrics_token.as_ref().is_some_and(|want| {
        use secrecy::ExposeSecret;
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // Compared as digests, so the time taken says nothing about the token.
        given.is_some_and(|g| {
            crate::auth::secret::hash(g) == crate::auth::secret::hash(want.expose_secret())
        })
    });
    if !(local || with_token) {
        return crate::web::AppError::Forbidden(
            "Metrics are served to callers on this machine, or with IMSHIFT_METRICS_TOKEN as \
             `Authorization: Bearer <token>`."
                .into(),
        )
        .into_response();
    }
    if let Err(e) = crate::sync::metrics::refresh(&state.pool).await {
        tracing::warn!(error = %e, "reading the sync gauges failed");
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}

/// Runs inside routing, where the matched route is known, and hands it to `track`.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// One log line and the metrics for every request, labelled by route pattern, never the raw
/// path: invite links carry a secret and ids would explode the label set.
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let latency = start.elapsed();
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "static-or-unmatched".into());
    let status = response.status().as_u16();
    tracing::info!(
        target: "imshift::http",
        method = %method,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(latency.as_secs_f64());
    response
}
