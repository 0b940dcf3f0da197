//! Server functions for the Import tab; thin doors to `crate::import`. Live progress comes from
//! the REST API's server-sent events (`/api/v1/migrations/{id}/imports/{run}/events`).

use crate::model::*;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "import_preflight")]
pub async fn import_preflight(id: MigrationId) -> Result<Preflight, ApiError> {
    Ok(crate::import::preflight(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "import_runs")]
pub async fn import_runs(id: MigrationId) -> Result<Vec<ImportRun>, ApiError> {
    Ok(crate::import::list(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "import_failures")]
pub async fn import_failures(
    id: MigrationId,
    run: RunId,
    phase: Option<String>,
    code: Option<i64>,
    after: Option<String>,
    skipped: bool,
) -> Result<ImportFailuresPage, ApiError> {
    let filter = crate::import::FailureFilter {
        phase: phase.filter(|p| !p.is_empty()),
        code,
        after,
        limit: 50,
        skipped,
    };
    Ok(crate::import::failures(&state(), &actor().await?, id, run, &filter).await?)
}

/// `resend` under an earlier run: `all` or `failed_or_new`.
#[server(prefix = "/_fn", endpoint = "launch_import")]
pub async fn launch_import(id: MigrationId, resend: Option<String>) -> Result<ImportRun, ApiError> {
    let resend = match resend.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(crate::import::plan::Resend::parse(r).ok_or_else(|| {
            crate::web::AppError::validation("resend", format!("`{r}` is not all or failed_or_new"))
        })?),
    };
    Ok(crate::import::launch_with(&state(), &actor().await?, id, resend).await?)
}

#[server(prefix = "/_fn", endpoint = "import_throughput")]
pub async fn run_throughput(id: MigrationId, run: RunId) -> Result<ImportThroughput, ApiError> {
    Ok(crate::import::throughput::read(&state(), &actor().await?, id, run).await?)
}

/// Pause, resume or cancel a run.
#[server(prefix = "/_fn", endpoint = "control_import")]
pub async fn control_import(
    id: MigrationId,
    run: RunId,
    action: String,
) -> Result<ImportRun, ApiError> {
    let (s, a) = (state(), actor().await?);
    Ok(match action.as_str() {
        "pause" => crate::import::pause(&s, &a, id, run).await?,
        "resume" => crate::import::resume(&s, &a, id, run).await?,
        "cancel" => crate::import::cancel(&s, &a, id, run).await?,
        other => {
            return Err(crate::web::AppError::validation(
                "action",
                format!("`{other}` is not pause, resume or cancel"),
            )
            .into())
        }
    })
}

#[server(prefix = "/_fn", endpoint = "retry_import")]
pub async fn retry_import(
    id: MigrationId,
    run: RunId,
    phase: Option<String>,
) -> Result<ImportRun, ApiError> {
    let phase = phase.filter(|p| !p.is_empty());
    Ok(crate::import::retry_failed(&state(), &actor().await?, id, run, phase.as_deref()).await?)
}

/// The id map: what the target made of old ids where it chose its own, those whose old or
/// new id contains `q`, after the cursor.
#[server(prefix = "/_fn", endpoint = "import_id_map")]
pub async fn import_id_map(
    id: MigrationId,
    q: Option<String>,
    after: Option<String>,
) -> Result<IdMapPage, ApiError> {
    let filter = crate::import::id_map::IdMapFilter {
        kind: None,
        q: q.filter(|q| !q.trim().is_empty())
            .map(|q| q.trim().to_string()),
        after,
        limit: 50,
    };
    Ok(crate::import::id_map::list(&state(), &actor().await?, id, &filter).await?)
}

/// The newest build of the target's hand-over files; `None`: the target takes everything
/// through its API.
#[server(prefix = "/_fn", endpoint = "hand_over")]
pub async fn hand_over(id: MigrationId) -> Result<Option<HandOverBuild>, ApiError> {
    Ok(crate::import::hand_over::latest(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "build_hand_over")]
pub async fn build_hand_over(id: MigrationId) -> Result<HandOverBuild, ApiError> {
    Ok(crate::import::hand_over::start(&state(), &actor().await?, id).await?)
}
