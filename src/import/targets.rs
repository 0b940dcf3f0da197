//! The import target of each migration, built from its keys and quotas and kept a few seconds,
//! so a quota changed during a run is in force within seconds and keys are not opened per
//! request.

use super::target::ImportTarget;
use crate::model::TargetKind;
use crate::providers::tencent::import::TencentImport;
use crate::web::AppState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

const FRESH: Duration = Duration::from_secs(3);

type Cached = (Instant, Arc<dyn ImportTarget>);

#[derive(Clone)]
pub struct Targets {
    state: AppState,
    cache: Arc<Mutex<HashMap<Uuid, Cached>>>,
}

impl Targets {
    pub fn new(state: AppState) -> Self {
        Targets {
            state,
            cache: Arc::default(),
        }
    }

    /// The migration's target, or why there is none (in words, for the run's status).
    pub async fn get(&self, migration_id: Uuid) -> Result<Arc<dyn ImportTarget>, String> {
        if let Some((at, t)) = self.cache.lock().await.get(&migration_id) {
            if at.elapsed() < FRESH {
                return Ok(t.clone());
            }
        }
        let target: String = sqlx::query_scalar("SELECT target FROM im_migrations WHERE id = $1")
            .bind(migration_id)
            .fetch_optional(&self.state.pool)
            .await
            .map_err(|e| format!("database: {e}"))?
            .ok_or("the migration is gone")?;
        let t: Arc<dyn ImportTarget> = match target.parse::<TargetKind>() {
            Ok(TargetKind::Tencent) => {
                let (client, _admin, sdkappid) =
                    crate::migration::keys::client(&self.state, migration_id)
                        .await
                        .map_err(|e| e.to_string())?;
                Arc::new(TencentImport::new(client, sdkappid as u64))
            }
            Ok(other) => {
                return Err(format!(
                    "imports into {} are not supported yet; Tencent IM is",
                    other.label()
                ))
            }
            Err(e) => return Err(e),
        };
        self.cache
            .lock()
            .await
            .insert(migration_id, (Instant::now(), t.clone()));
        Ok(t)
    }
}
