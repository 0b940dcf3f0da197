//! The import target of each migration, built by its provider from the target connection and
//! the quotas and kept a few seconds,
//! so a quota changed during a run is in force within seconds and keys are not opened per
//! request.

use super::target::ImportTarget;
use crate::model::{MigrationId, Side};
use crate::service::Services;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const FRESH: Duration = Duration::from_secs(3);

type Cached = (Instant, Arc<dyn ImportTarget>);

#[derive(Clone)]
pub struct Targets {
    state: Services,
    cache: Arc<Mutex<HashMap<MigrationId, Cached>>>,
}

impl Targets {
    pub fn new(state: Services) -> Self {
        Targets {
            state,
            cache: Arc::default(),
        }
    }

    /// The migration's target, or why there is none (in words, for the run's status).
    pub async fn get(&self, migration_id: MigrationId) -> Result<Arc<dyn ImportTarget>, String> {
        if let Some((at, t)) = self.cache.lock().await.get(&migration_id) {
            if at.elapsed() < FRESH {
                return Ok(t.clone());
            }
        }
        let (provider, conn) =
            crate::migration::connections::open(&self.state, migration_id, Side::Target)
                .await
                .map_err(|e| e.to_string())?;
        let limits = crate::migration::limits::effective(
            &self.state.pool,
            &self.state.config.providers,
            migration_id,
        )
        .await
        .map_err(|e| e.to_string())?;
        let t = provider.import_target(&conn, limits)?;
        self.cache
            .lock()
            .await
            .insert(migration_id, (Instant::now(), t.clone()));
        Ok(t)
    }
}
