//! Server functions for the Import tab; thin doors to `crate::import`. Live progress comes from
//! the REST API's server-sent events (`/api/v1/migrations/{id}/imports/{run}/events`).

use crate::model::*;
use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "import_preflight")]
pub async fn import_preflight(id: Uuid) -> Result<Preflight, ApiError> {
    Ok(crate::import::preflight(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "import_runs")]
pub async fn import_runs(id: Uuid) -> Result<Vec<ImportRun>, ApiError> {
    Ok(crate::import::list(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "import_failures")]
pub async fn import_failures(
    id: Uuid,
    run: Uuid,
    phase: Option<String>,
    code: Option<i64>,
    after: Option<String>,
) -> Result<ImportFailuresPage, ApiError> {
    let filter = crate::import::FailureFilter {
        phase: phase.filter(|p| !p.is_empty()),
        code,
        after,
        limit: 50,
    };
    Ok(crate::import::failures(&state().pool, &actor().await?, id, run, &filter).await?)
}

#[server(prefix = "/_fn", endpoint = "launch_import")]
pub async fn launch_import(id: Uuid) -> Result<ImportRun, ApiError> {
    Ok(crate::import::launch(&state(), &actor().await?, id).await?)
}

/// Pause, resume or cancel a run.
#[server(prefix = "/_fn", endpoint = "control_import")]
pub async fn control_import(id: Uuid, run: Uuid, action: String) -> Result<ImportRun, ApiError> {
    let (pool, a) = (state().pool, actor().await?);
    Ok(match action.as_str() {
        "pause" => crate::import::pause(&pool, &a, id, run).await?,
        "resume" => crate::import::resume(&pool, &a, id, run).await?,
        "cancel" => crate::import::cancel(&pool, &a, id, run).await?,
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
    id: Uuid,
    run: Uuid,
    phase: Option<String>,
) -> Result<ImportRun, ApiError> {
    let phase = phase.filter(|p| !p.is_empty());
    Ok(
        crate::import::retry_failed(&state().pool, &actor().await?, id, run, phase.as_deref())
            .await?,
    )
}
