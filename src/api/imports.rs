//! Imports over HTTP: the preflight, launch, status (also as server-sent events), pause,
//! resume, cancel, retry failed records, and the failures list and its CSV.

use super::{ApiJson, ApiPath, ErrorBody};
use crate::auth::Actor;
use crate::import;
use crate::model::{
    IdMapPage, ImportFailuresPage, ImportRun, ImportThroughput, MigrationId, Preflight, RunId,
};
use crate::web::{AppError, AppResult, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_preflight))
        .routes(routes!(list_imports, launch_import))
        .routes(routes!(get_import))
        .routes(routes!(import_events))
        .routes(routes!(pause_import))
        .routes(routes!(resume_import))
        .routes(routes!(cancel_import))
        .routes(routes!(retry_import))
        .routes(routes!(list_failures))
        .routes(routes!(get_throughput))
        .routes(routes!(export_failures))
        .routes(routes!(list_id_map))
        .routes(routes!(get_hand_over, build_hand_over))
        .routes(routes!(download_hand_over))
        .routes(routes!(pull_hand_over))
        .routes(routes!(export_id_map))
}

type Ids = ApiPath<(MigrationId, RunId)>;

/// What Launch would send, to which target, how long the quotas make it take, and what
/// stands in the way.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/preflight", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Preflight), (status = 404, body = ErrorBody)))]
async fn get_preflight(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Preflight>> {
    Ok(ApiJson(import::preflight(&s, &actor, id).await?))
}

/// The migration's import runs, newest first.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = Vec<ImportRun>), (status = 404, body = ErrorBody)))]
async fn list_imports(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<ApiJson<Vec<ImportRun>>> {
    Ok(ApiJson(import::list(&s, &actor, id).await?))
}

#[derive(Deserialize, IntoParams)]
struct LaunchQuery {
    /// Under an earlier run of the migration: `all` sends every staged record again (the
    /// default), `failed_or_new` only those no earlier run sent (failed, skipped or new).
    resend: Option<String>,
}

/// Launch an import of everything staged (operator or higher). 409 says what stands in the way.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/imports", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), LaunchQuery),
    responses((status = 201, body = ImportRun), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn launch_import(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<LaunchQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<(StatusCode, ApiJson<ImportRun>)> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    let resend = q
        .resend
        .as_deref()
        .map(|r| {
            import::plan::Resend::parse(r).ok_or_else(|| {
                AppError::validation("resend", format!("`{r}` is not all or failed_or_new"))
            })
        })
        .transpose()?;
    Ok((
        StatusCode::CREATED,
        ApiJson(import::launch_with(&s, &actor, id, resend).await?),
    ))
}

/// A run: its state and, per phase, done / failed / skipped / pending, requests, the rate
/// achieved against the quota, and the time left.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/{run}", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id")),
    responses((status = 200, body = ImportRun), (status = 404, body = ErrorBody)))]
async fn get_import(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
) -> AppResult<ApiJson<ImportRun>> {
    Ok(ApiJson(import::status(&s, &actor, id, run).await?))
}

/// The run's throughput over its whole length: per API, requests per bucket of `bucket_secs`
/// against the API's quota, throttle answers and records recorded as failed.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/{run}/throughput", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id")),
    responses((status = 200, body = ImportThroughput), (status = 404, body = ErrorBody)))]
async fn get_throughput(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
) -> AppResult<ApiJson<ImportThroughput>> {
    Ok(ApiJson(
        import::throughput::read(&s, &actor, id, run).await?,
    ))
}

/// The run's status as server-sent events (`event: status`, data: the run as JSON), once a
/// second until it has ended and the answers still in flight after a pause or cancel are in.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/{run}/events", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id")),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = ErrorBody)))]
async fn import_events(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
) -> AppResult<impl IntoResponse> {
    // Refuse a wrong id now, while a status code can still say so.
    import::status(&s, &actor, id, run).await?;
    let stream =
        futures_util::stream::unfold((s, actor, false), move |(s, actor, over)| async move {
            if over {
                return None;
            }
            // Re-checked each tick: a removed member or a revoked token stops receiving.
            let actor = actor.refresh(&s.pool).await.ok()?;
            let status = import::status(&s, &actor, id, run).await.ok()?;
            let done = !status.state.live() && status.in_flight == 0;
            let event = Event::default()
                .event("status")
                .json_data(&status)
                .unwrap_or_default();
            if !done {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some((Ok::<_, Infallible>(event), (s, actor, done)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

macro_rules! control {
    ($name:ident, $path:literal, $doc:literal, $f:path) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "imports",
            params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id")),
            responses((status = 200, body = ImportRun), (status = 403, body = ErrorBody),
                      (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        async fn $name(
            State(s): State<AppState>,
            actor: Actor,
            ApiPath((id, run)): Ids,
        ) -> AppResult<ApiJson<ImportRun>> {
            Ok(ApiJson($f(&s, &actor, id, run).await?))
        }
    };
}

control!(
    pause_import,
    "/api/v1/migrations/{id}/imports/{run}/pause",
    "Pause: running requests finish, nothing new is sent until resume.",
    import::pause
);
control!(
    resume_import,
    "/api/v1/migrations/{id}/imports/{run}/resume",
    "Resume a paused run where it stopped.",
    import::resume
);
control!(
    cancel_import,
    "/api/v1/migrations/{id}/imports/{run}/cancel",
    "Cancel: nothing more is sent; what was sent stays on the target.",
    import::cancel
);

#[derive(Deserialize, IntoParams)]
struct RetryQuery {
    /// Only this phase (e.g. `c2c_history`); every phase with failures when left out.
    phase: Option<String>,
}

/// Send the failed records again (of one phase, or all).
#[utoipa::path(post, path = "/api/v1/migrations/{id}/imports/{run}/retry", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id"), RetryQuery),
    responses((status = 200, body = ImportRun), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_import(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
    q: Result<Query<RetryQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<ImportRun>> {
    actor.require(crate::model::Permission::RunMigrations)?;
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    Ok(ApiJson(
        import::retry_failed(&s, &actor, id, run, q.phase.as_deref()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
struct FailureQuery {
    /// Only this phase.
    phase: Option<String>,
    /// Only this provider error code.
    code: Option<i64>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size, at most 500 (default 100).
    limit: Option<i64>,
    /// `skipped` lists the skipped records, with why, instead of the failed ones.
    state: Option<String>,
}

impl FailureQuery {
    fn filter(&self, default_limit: i64) -> AppResult<import::FailureFilter> {
        let skipped = match self.state.as_deref() {
            None | Some("failed") => false,
            Some("skipped") => true,
            Some(other) => {
                return Err(AppError::validation(
                    "state",
                    format!("`{other}` is not failed or skipped"),
                ))
            }
        };
        Ok(import::FailureFilter {
            phase: self.phase.clone(),
            code: self.code,
            after: self.after.clone(),
            limit: self.limit.unwrap_or(default_limit),
            skipped,
        })
    }
}

/// Records the target refused, with the provider's code, why, and where they came from.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/{run}/failures", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id"), FailureQuery),
    responses((status = 200, body = ImportFailuresPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_failures(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
    q: Result<Query<FailureQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<ImportFailuresPage>> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    Ok(ApiJson(
        import::failures(&s, &actor, id, run, &q.filter(100)?).await?,
    ))
}

/// Every failure (filtered like the list) as CSV.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/imports/{run}/failures.csv", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("run" = Uuid, Path, description = "Run id"), FailureQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
async fn export_failures(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, run)): Ids,
    q: Result<Query<FailureQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<impl IntoResponse> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    // The first page now, so a wrong id or filter is a status code.
    let mut filter = q.filter(500)?;
    filter.after = None;
    filter.limit = 500;
    let first = import::failures(&s, &actor, id, run, &filter).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let line = |f: &crate::model::ImportFailure| {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(crate::csv_safe::row([
                f.phase.as_str(),
                &f.file,
                &f.line.to_string(),
                &f.code.map(|c| c.to_string()).unwrap_or_default(),
                &f.message,
                &f.attempts.to_string(),
                &f.record,
            ]));
            w.into_inner().unwrap_or_default()
        };
        let mut page = first;
        let mut buf = b"phase,file,line,code,message,attempts,record\n".to_vec();
        loop {
            for f in &page.failures {
                buf.extend(line(f));
            }
            if tx
                .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                .await
                .is_err()
            {
                return;
            }
            let Some(next) = page.next.clone() else {
                return;
            };
            filter.after = Some(next);
            match import::failures(&s, &actor, id, run, &filter).await {
                Ok(p) => page = p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8"),
            (
                "content-disposition",
                "attachment; filename=\"imshift-import-failures.csv\"",
            ),
        ],
        Body::from_stream(body),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdMapQuery {
    /// `account` or `group`.
    kind: Option<String>,
    /// Old or new ids containing this text.
    q: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most 1000; 100 by default.
    limit: Option<i64>,
}

impl IdMapQuery {
    fn filter(self, default_limit: i64) -> import::id_map::IdMapFilter {
        import::id_map::IdMapFilter {
            kind: self.kind,
            q: self.q,
            after: self.after,
            limit: self.limit.unwrap_or(default_limit),
        }
    }
}

/// The id map: what the target made of each old id where it chose its own (a team's
/// id for each old group), over every run of the migration.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/id-map", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), IdMapQuery),
    responses((status = 200, body = IdMapPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_id_map(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<IdMapQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<IdMapPage>> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    Ok(ApiJson(
        import::id_map::list(&s, &actor, id, &q.filter(100)).await?,
    ))
}

/// The whole id map (filtered like the list) as CSV: `kind,old_id,new_id,run_id,at`.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/id-map.csv", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), IdMapQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
async fn export_id_map(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<IdMapQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<impl IntoResponse> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    let mut filter = q.filter(1000);
    filter.after = None;
    filter.limit = 1000;
    let first = import::id_map::list(&s, &actor, id, &filter).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut page = first;
        let mut buf = b"kind,old_id,new_id,run_id,at\n".to_vec();
        let rfc = time::format_description::well_known::Rfc3339;
        loop {
            {
                let mut w = csv::Writer::from_writer(&mut buf);
                for e in &page.entries {
                    let _ = w.write_record(crate::csv_safe::row([
                        e.kind.as_str(),
                        &e.old_id,
                        &e.new_id,
                        &e.run_id.to_string(),
                        &e.at.format(&rfc).unwrap_or_default(),
                    ]));
                }
                let _ = w.flush();
            }
            if tx
                .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                .await
                .is_err()
            {
                return;
            }
            let Some(next) = page.next.clone() else {
                return;
            };
            filter.after = Some(next);
            match import::id_map::list(&s, &actor, id, &filter).await {
                Ok(p) => page = p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"id-map-{id}.csv\""),
            ),
        ],
        Body::from_stream(body),
    ))
}

/// The migration's newest build of hand-over files (what the target's own staff import, such
/// as a target's history files), or `state: none` with what they would be; 204 when the target
/// takes everything through its API.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/hand-over", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 200, body = crate::model::HandOverBuild), (status = 204), (status = 404, body = ErrorBody)))]
async fn get_hand_over(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<axum::response::Response> {
    Ok(match import::hand_over::latest(&s, &actor, id).await? {
        Some(b) => ApiJson(b).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Builds the hand-over files from what is staged now (one build at a time); 202, then
/// `GET …/hand-over` says when they are ready.
#[utoipa::path(post, path = "/api/v1/migrations/{id}/hand-over", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id")),
    responses((status = 202, body = crate::model::HandOverBuild), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn build_hand_over(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
) -> AppResult<(StatusCode, ApiJson<crate::model::HandOverBuild>)> {
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(import::hand_over::start(&s, &actor, id).await?),
    ))
}

/// One file of a ready build (a name its manifest lists, `manifest.json`, or
/// `kept_aside.jsonl`), streamed. Each download is audited.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/hand-over/{build}/{name}", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), ("build" = Uuid, Path, description = "Build id"), ("name" = String, Path, description = "File name")),
    responses((status = 200, content_type = "application/octet-stream", body = String), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn download_hand_over(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath((id, build, name)): ApiPath<(MigrationId, uuid::Uuid, String)>,
) -> AppResult<impl IntoResponse> {
    let (path, len) = import::hand_over::file(&s, &actor, id, build, &name).await?;
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AppError::Internal(Box::new(e)))?;
    let kind = if name.ends_with(".json") {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, kind.to_string()),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(futures_util::stream::unfold(f, |mut f| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        })),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Where to start (`next` of an earlier pull); without it, where the last pull ended.
    cursor: Option<String>,
    /// Lines at most (1–5000; 1000 by default).
    limit: Option<i64>,
}

/// The incremental interface a target's importer polls (where the target's staff import the
/// history): the staged history after the cursor as lines of the hand-over files,
/// `{"code":200,"data":[…],"next":"…","more":false,"kept_aside":[{"file","line","why"}]}`.
/// Call it with an API token of an operator made for the importer; each pull is audited.
#[utoipa::path(get, path = "/api/v1/migrations/{id}/hand-over/increments", tag = "imports",
    params(("id" = Uuid, Path, description = "Migration id"), PullQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn pull_hand_over(
    State(s): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<MigrationId>,
    q: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<ApiJson<serde_json::Value>> {
    let Query(q) = q.map_err(|e| AppError::validation("query", e.body_text()))?;
    Ok(ApiJson(
        import::hand_over::pull(&s, &actor, id, q.cursor.as_deref(), q.limit).await?,
    ))
}
