//! The console's background workers: which job kinds this process runs, and with what.

use super::AppState;
use crate::jobs::worker::WorkerConfig;
use crate::jobs::{Handler, WorkerPool};
use std::sync::Arc;
use std::time::Duration;

/// The handler of every job kind.
pub fn handlers(state: &AppState) -> Vec<Arc<dyn Handler>> {
    let targets = crate::import::targets::Targets::new(state.services.clone());
    vec![
        Arc::new(crate::dumps::jobs::Ingest {
            uploads_dir: state.uploads_dir(),
            max_bytes: state.config.max_upload_bytes,
            limits: state.config.dump_limits,
            providers: state.config.providers.clone(),
        }),
        Arc::new(crate::dumps::jobs::Validate {
            findings_per_rule: state.config.dump_limits.findings_per_rule,
            providers: state.config.providers.clone(),
        }),
        Arc::new(crate::import::runner::ImportTask {
            targets: targets.clone(),
            pacer: crate::jobs::pacer::Pacer::new(state.pool.clone()),
        }),
        Arc::new(crate::import::supervisor::Supervise { targets }),
        Arc::new(crate::import::hand_over::Build {
            services: state.services.clone(),
        }),
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
    let mut pool = WorkerPool::start(state.pool.clone(), config, handlers(state)).await?;
    pool.attach(tokio::spawn(sweep_uploads(state.clone())));
    pool.attach(crate::sync::deliver::spawn(state.services.clone()));
    pool.attach(crate::sync::gaps::spawn(state.services.clone()));
    if let Some(canaries) = crate::sync::canary::spawn(state.services.clone()) {
        pool.attach(canaries);
    }
    tracing::info!(worker = %pool.id, jobs = state.config.workers, "workers started");
    Ok(Some(pool))
}

/// How often abandoned uploads are looked for: a tenth of their expiry, between a second and
/// ten minutes.
pub fn sweep_every(expiry: Duration) -> Duration {
    (expiry / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Expires uploads that stopped receiving bytes (`dump.expired`) and removes scratch files
/// that belong to no upload in progress. Every process sweeps; each upload expires once.
async fn sweep_uploads(state: AppState) {
    let mut tick = tokio::time::interval(sweep_every(state.config.upload_expiry));
    loop {
        tick.tick().await;
        match crate::dumps::uploads::expire_abandoned(&state.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired abandoned uploads"),
            Err(e) => tracing::warn!("expiring abandoned uploads: {e}"),
        }
        if let Err(e) = crate::dumps::uploads::sweep_files(&state.pool, &state.uploads_dir()).await
        {
            tracing::warn!("sweeping the uploads directory: {e}");
        }
    }
}
