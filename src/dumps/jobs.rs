//! The dump jobs: ingest one complete upload into the staged tables, and validate a
//! migration's staged records across uploads.

use super::stage::{self, Progress, StageError, StageInput};
use super::uploads::delete_staged;
use crate::audit::{self, Who};
use crate::jobs::{self, Handler, JobContext, JobError, NewJob};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const INGEST: &str = "dump.ingest";
pub const VALIDATE: &str = "dump.validate";

/// Queues a validation of the migration's staged data, unless one is already waiting (it will
/// see this change too), and marks the report as being redone. `removed`: staged records went
/// away, so every message must be checked again.
pub async fn enqueue_validate(
    tx: &mut Transaction<'_, Postgres>,
    migration_id: Uuid,
    removed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dump_reports (migration_id, state, full_recheck) VALUES ($1, 'validating', $2)
         ON CONFLICT (migration_id) DO UPDATE
            SET state = 'validating', full_recheck = dump_reports.full_recheck OR $2, updated_at = now()",
    )
    .bind(migration_id)
    .bind(removed)
    .execute(&mut **tx)
    .await?;
    jobs::enqueue_unless(
        tx,
        &NewJob {
            kind: VALIDATE,
            migration_id: Some(migration_id),
            ..Default::default()
        },
        &["queued"],
    )
    .await?;
    Ok(())
}

pub struct Ingest {
    pub uploads_dir: PathBuf,
    pub max_bytes: u64,
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    migration_id: Uuid,
    seq: i64,
    file_name: String,
    format: String,
    mode: String,
    state: String,
}

#[async_trait::async_trait]
impl Handler for Ingest {
    fn kind(&self) -> &'static str {
        INGEST
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let id = ctx.job.uuid("upload_id")?;
        let pool = &ctx.pool;
        let Some(up) = sqlx::query_as::<_, UploadRow>(
            "SELECT migration_id, seq, file_name, format, mode, state FROM dump_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        else {
            return Ok(());
        };
        if up.state != "queued" && up.state != "ingesting" {
            // Discarded while it waited.
            return Ok(());
        }
        sqlx::query(
            "UPDATE dump_uploads SET state = 'ingesting', ingest_started_at = now(), read_bytes = 0,
                    records = 0, counts = '{}', updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(pool)
        .await?;
        let path = self.uploads_dir.join(format!("{id}.part"));
        let progress = Arc::new(Progress::default());
        // Progress goes out on its own connection while the load runs in its transaction.
        let reporter = {
            let (pool, progress) = (pool.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let counts = progress
                        .counts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    let _ = sqlx::query(
                        "UPDATE dump_uploads SET read_bytes = $2, records = $3, counts = $4, updated_at = now()
                         WHERE id = $1 AND state = 'ingesting'",
                    )
                    .bind(id)
                    .bind(progress.read_bytes.load(Ordering::Relaxed) as i64)
                    .bind(progress.records.load(Ordering::Relaxed) as i64)
                    .bind(json!(counts))
                    .execute(&pool)
                    .await;
                }
            })
        };
        let target_kind: String =
            sqlx::query_scalar("SELECT target FROM im_migrations WHERE id = $1")
                .bind(up.migration_id)
                .fetch_one(pool)
                .await?;
        let target = target_kind
            .parse()
            .ok()
            .and_then(super::validate::Target::for_migration);
        let known = super::check::known_index(pool, up.migration_id).await?;
        let mut tx = pool.begin().await?;
        let result = stage::stage(
            &mut tx,
            StageInput {
                migration_id: up.migration_id,
                upload_id: id,
                name: &up.file_name,
                path: path.clone(),
                format: stage::parse_format(&up.format),
                max_bytes: self.max_bytes,
                target,
                known,
            },
            progress.clone(),
            || ctx.stop().is_none(),
        )
        .await;
        reporter.abort();
        let staged = match result {
            Ok(s) => s,
            Err(StageError::Stopped) => {
                drop(tx);
                return Err(ctx
                    .check()
                    .err()
                    .unwrap_or(JobError::Stopped(crate::jobs::worker::Stop::Shutdown)));
            }
            Err(StageError::Db(e)) => return Err(e.into()),
            Err(e @ StageError::Interrupted) => return Err(JobError::retry(e)),
            Err(StageError::Unreadable(f)) => {
                drop(tx);
                sqlx::query(
                    "UPDATE dump_uploads SET state = 'failed', error = $2, ingest_finished_at = now(),
                            updated_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(format!("{} ({})", f.message, f.code))
                .execute(pool)
                .await?;
                let _ = tokio::fs::remove_file(&path).await;
                return Ok(());
            }
        };
        let read_bytes = progress.read_bytes.load(Ordering::Relaxed) as i64;
        sqlx::query(
            "UPDATE dump_uploads SET state = 'staged', records = $2, rejected = $3, counts = $4,
                    read_bytes = $5, verified_for = $6, ingest_finished_at = clock_timestamp(), updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(staged.records as i64)
        .bind(staged.rejected_lines as i64)
        .bind(json!(staged.counts))
        .bind(read_bytes)
        .bind(target.map(super::check::target_name).unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        let mut replaced_any = false;
        if up.mode == "replace" {
            let replaced: Vec<(Uuid, String)> = sqlx::query_as(
                "UPDATE dump_uploads SET state = 'discarded', updated_at = now()
                 WHERE migration_id = $1 AND seq < $2 AND state IN ('staged', 'failed')
                 RETURNING id, file_name",
            )
            .bind(up.migration_id)
            .bind(up.seq)
            .fetch_all(&mut *tx)
            .await?;
            let ids: Vec<Uuid> = replaced.iter().map(|r| r.0).collect();
            replaced_any = !ids.is_empty();
            delete_staged(&mut tx, &ids).await?;
            if !replaced.is_empty() {
                audit::record(
                    &mut *tx,
                    &Who::system("imshift"),
                    "dump.replaced",
                    &format!("migration:{}", up.migration_id),
                    json!({
                        "by_upload": id, "file": up.file_name,
                        "replaced": replaced.iter().map(|(i, n)| json!({"upload": i, "file": n})).collect::<Vec<_>>(),
                    }),
                )
                .await
                .map_err(JobError::retry)?;
            }
        }
        enqueue_validate(&mut tx, up.migration_id, replaced_any).await?;
        // Still ours? A discard while we loaded must win.
        if ctx.stop().is_some() {
            drop(tx);
            return Err(ctx.check().unwrap_err());
        }
        tx.commit().await?;
        let _ = tokio::fs::remove_file(&path).await;
        tracing::info!(
            upload = %id,
            records = staged.records,
            rejected_lines = staged.rejected_lines,
            "staged {}",
            up.file_name
        );
        Ok(())
    }
}

pub struct Validate;

#[async_trait::async_trait]
impl Handler for Validate {
    fn kind(&self) -> &'static str {
        VALIDATE
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let migration_id = ctx
            .job
            .migration_id
            .ok_or_else(|| JobError::Failed("the job names no migration".into()))?;
        super::check::validate_migration(&ctx, migration_id).await
    }
}
