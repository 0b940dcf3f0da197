use super::{ApiJson, ErrorBody};
use crate::auth::Actor;
use crate::model::{AuditPage, AuditQuery};
use crate::web::{AppError, AppResult, AppState};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
}

fn query(
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<AuditQuery> {
    q.map(|Query(q)| q)
        .map_err(|e| AppError::validation("query", e.body_text()))
}

/// One page of the audit log, newest first. Follow `next_cursor` with `before` for older rows.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(s): State<AppState>,
    actor: Actor,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<AuditPage>> {
    Ok(ApiJson(
        crate::audit::page(&s.pool, &actor, &query(q)?).await?,
    ))
}

/// The filtered audit log as CSV (newest first, at most 100,000 rows).
#[utoipa::path(get, path = "/api/v1/audit/export.csv", tag = "audit", params(AuditQuery),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 401, body = ErrorBody)))]
async fn export_audit(
    State(s): State<AppState>,
    actor: Actor,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<impl IntoResponse> {
    let csv = crate::audit::csv_export(&s.pool, &actor, &query(q)?).await?;
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8"),
            (
                "content-disposition",
                "attachment; filename=\"imshift-audit.csv\"",
            ),
        ],
        csv,
    ))
}
