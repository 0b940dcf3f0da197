//! Imports: a run moves a migration's staged records into its target, phase by phase, as
//! jobs paced to the target's quotas (see `plan` for the phases and their order).

use crate::web::{AppError, AppResult};
use sqlx::PgPool;
use uuid::Uuid;

/// Staged data may not change under a running or paused import.
pub async fn ensure_no_active_run(pool: &PgPool, migration_id: Uuid) -> AppResult<()> {
    let active: Option<String> = sqlx::query_scalar(
        "SELECT state FROM import_runs WHERE migration_id = $1 AND state IN ('running', 'paused')",
    )
    .bind(migration_id)
    .fetch_optional(pool)
    .await?;
    match active {
        Some(state) => Err(AppError::Conflict(format!(
            "An import of this migration is {state}; cancel it or let it finish before changing the staged dumps."
        ))),
        None => Ok(()),
    }
}
