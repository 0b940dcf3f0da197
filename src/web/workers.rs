//! The console's background workers: which job kinds this process runs, and with what.

use super::AppState;
use crate::jobs::worker::WorkerConfig;
use crate::jobs::{Handler, WorkerPool};
use std::sync::Arc;

/// The handler of every job kind.
pub fn handlers(state: &AppState) -> Vec<Arc<dyn Handler>> {
    let targets = crate::import::targets::Targets::new(state.clone());
    vec![
        Arc::new(crate::dumps::jobs::Ingest {
            uploads_dir: state.uploads_dir(),
            max_bytes: state.config.max_upload_bytes,
        }),
        Arc::new(crate::dumps::jobs::Validate),
        Arc::new(crate::import::runner::ImportTask {
            targets: targets.clone(),
            pacer: crate::jobs::pacer::Pacer::new(state.pool.clone()),
        }),
        Arc::new(crate::import::supervisor::Supervise { targets }),
    ]
}

/// Starts this process's workers (none when configured with 0).
pub async fn start(state: &AppState) -> Result<Option<WorkerPool>, sqlx::Error> {
    if state.config.workers == 0 {
        return Ok(None);
    }
    let mut config = WorkerConfig::new(state.node.clone());
    config.concurrency = state.config.workers;
    config.lease = state.config.job_lease;
    config.reap_every = (state.config.job_lease / 5).max(std::time::Duration::from_millis(500));
    let pool = WorkerPool::start(state.pool.clone(), config, handlers(state)).await?;
    tracing::info!(worker = %pool.id, jobs = state.config.workers, "workers started");
    Ok(Some(pool))
}
