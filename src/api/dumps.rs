//! Dumps over HTTP: upload (in one request, or in resumable pieces), the validation report,
//! findings and their CSV, and discarding an upload. Same functions as the console's Dumps tab.

use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::Actor;
use crate::dumps::report::{self, FindingFilter};
use crate::dumps::uploads;
use crate::model::{
    DumpFormat, DumpReport, FindingsPage, MigrationId, NewUpload, Upload, UploadId,
};
use crate::web::{AppError, AppResult, AppState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dumps, upload_dump))
        .routes(routes!(start_upload))
        .routes(routes!(get_upload, send_upload, discard_upload))
        .routes(routes!(get_report))
        .routes(routes!(list_findings))
        .routes(routes!(export_findings))
        .routes(routes!(list_formats))
}

/// The formats an upload may name: `auto`, imshift's canonical lines, each vendor export this
/// build reads, and CSV.
#[utoipa::path(get, path = "/api/v1/dump-formats", tag = "dumps",
    responses((status = 200, body = Vec<DumpFormat>), (status = 401, body = ErrorBody)))]
async fn list_formats(actor: Actor) -> AppResult<ApiJson<Vec<DumpFormat>>> {
    actor.require(crate::model::Permission::Read)?;
    Ok(ApiJson(uploads::format_choices()))
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> AppResult<T> {
    q.map(|Query(q)| q)
        .map_err(|e| AppError::validation("query", e.body_text()))
}

/// The migration's uploads, newest first (discarded ones are left out).
#[utoipa::path(get, path = "/api/v1/migrations/{id}/dumps", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Vec<Upload>), (status = 404, body = ErrorBody)))]
async fn list_dumps(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Vec<Upload>>> {
    Ok(ApiJson(uploads::list(&s.pool, &actor, id).await?))
}

#[derive(Deserialize, IntoParams)]
struct UploadQuery {
    /// The file's name as findings should show it (default: from Content-Disposition, else `upload`).
    file_name: Option<String>,
    /// `auto` (default) or a format's id (`GET /api/v1/dump-formats`).
    format: Option<String>,
    /// add (default) or replace: discard the earlier uploads once this one is staged.
    mode: Option<String>,
    /// The size in bytes, when the request has no Content-Length.
    size: Option<i64>,
}

fn disposition_name(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("content-disposition")?.to_str().ok()?;
    let at = v.find("filename=")?;
    Some(
        v[at + 9..]
            .trim_matches(|c| c == '"' || c == ' ' || c == ';')
            .to_string(),
    )
}

/// Upload a dump in one request: the body is the file as it is (JSON Lines, gzip or zip; the
/// content tells which). It is staged and validated in the background; poll the upload or the
/// report. `curl --data-binary @dump.jsonl.gz -H 'Authorization: Bearer …' '…/dumps?file_name=dump.jsonl.gz'`
#[utoipa::path(post, path = "/api/v1/migrations/{id}/dumps", tag = "dumps", params(("id" = Uuid, Path, description = "Migration id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 202, body = Upload), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 411, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn upload_dump(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, ApiJson<Upload>)> {
    let q = query(q)?;
    let size = match q.size {
        Some(n) => n,
        None => headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                AppError::validation(
                    "size",
                    "send Content-Length, or give the file's size as ?size=BYTES",
                )
            })?,
    };
    let input = NewUpload {
        file_name: q
            .file_name
            .or_else(|| disposition_name(&headers))
            .unwrap_or_else(|| "upload".into()),
        size_bytes: size,
        format: q.format,
        mode: q.mode,
    };
    let up = uploads::create(&s, &actor, id, &input).await?;
    let up = uploads::append(&s, &actor, id, up.id, 0, body).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(up)))
}

/// Start a resumable upload; send the bytes with `PUT …/uploads/{upload}?offset=…`. 507 when
/// the upload quota or the data directory's free disk cannot take the announced size.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/uploads", tag = "dumps", request_body = NewUpload,
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 201, body = Upload), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 507, body = ErrorBody)))]
async fn start_upload(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    body: Result<ApiJson<NewUpload>, AppError>,
) -> AppResult<(StatusCode, ApiJson<Upload>)> {
    actor.require(crate::model::Permission::RunMigrations)?;
    let ApiJson(input) = body?;
    Ok((
        StatusCode::CREATED,
        ApiJson(uploads::create(&s, &actor, id, &input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}/uploads/{upload}", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id"), ("upload" = Uuid, Path, description = "Upload id")),
    responses((status = 200, body = Upload), (status = 404, body = ErrorBody)))]
async fn get_upload(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, upload)): ApiPath<(MigrationId, UploadId)>,
) -> AppResult<ApiJson<Upload>> {
    Ok(ApiJson(uploads::get(&s.pool, &actor, id, upload).await?))
}

#[derive(Deserialize, IntoParams)]
struct OffsetQuery {
    /// Where these bytes start: the upload's `received_bytes`.
    offset: i64,
}

/// Send bytes of an upload from `offset`. After an interruption, read `received_bytes` and
/// continue from there. The last byte queues the upload for staging.
#[utoipa::path(put, path = "/api/v1/migrations/{id}/uploads/{upload}", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id"), ("upload" = Uuid, Path, description = "Upload id"), OffsetQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Upload), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn send_upload(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, upload)): ApiPath<(MigrationId, UploadId)>,
    q: Result<Query<OffsetQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> AppResult<ApiJson<Upload>> {
    actor.require(crate::model::Permission::RunMigrations)?;
    let q = query(q)?;
    Ok(ApiJson(
        uploads::append(&s, &actor, id, upload, q.offset, body).await?,
    ))
}

/// Discard an upload: an unfinished one stops, a staged one's records leave the staged data.
#[utoipa::path(delete, path = "/api/v1/migrations/{id}/uploads/{upload}", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id"), ("upload" = Uuid, Path, description = "Upload id")),
    responses((status = 200, body = Upload), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn discard_upload(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, upload)): ApiPath<(MigrationId, UploadId)>,
) -> AppResult<ApiJson<Upload>> {
    Ok(ApiJson(uploads::discard(&s, &actor, id, upload).await?))
}

/// The validation report over the migration's staged dumps: counts, accepted and rejected
/// records by kind, and every rule that found something with its first examples.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/dumps/report", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = DumpReport), (status = 404, body = ErrorBody)))]
async fn get_report(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<DumpReport>> {
    Ok(ApiJson(report::report(&s.pool, &actor, id).await?))
}

/// Findings, oldest first, filtered by rule and severity; follow `next` with `after`.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/dumps/findings", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id"), FindingFilter),
    responses((status = 200, body = FindingsPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_findings(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<FindingFilter>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<FindingsPage>> {
    Ok(ApiJson(
        report::findings(&s.pool, &actor, id, &query(q)?).await?,
    ))
}

/// Every finding (filtered like the list) as CSV: code, severity, file, line, message, excerpt.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/dumps/findings.csv", tag = "dumps",
    params(("id" = Uuid, Path, description = "Migration id"), FindingFilter),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
async fn export_findings(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<FindingFilter>, axum::extract::rejection::QueryRejection>,
) -> AppResult<impl IntoResponse> {
    let stream = report::findings_csv(&s.pool, &actor, id, query(q)?).await?;
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8"),
            (
                "content-disposition",
                "attachment; filename=\"imshift-findings.csv\"",
            ),
        ],
        Body::from_stream(stream),
    ))
}
