//! The dump jobs: ingest one complete upload into the staged tables, and validate a
//! migration's staged records across uploads.

use super::stage::{self, Progress, StageError, StageInput};
use super::uploads::delete_staged;
use crate::audit::{self, Who};
use crate::jobs::worker::Stop;
use crate::jobs::{self, Handler, JobContext, JobError, NewJob};
use crate::model::{MigrationId, UploadId, UploadState};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub const INGEST: &str = "dump.ingest";
pub const VALIDATE: &str = "dump.validate";

/// Queues a validation of the migration's staged data, unless one is already waiting (it will
/// see this change too), and marks the report as being redone: a new generation, so that a
/// validation already running (it read the data before this change) does not end `current`.
/// `removed`: staged records went away, so every message must be checked again.
pub async fn enqueue_validate(
    tx: &mut Transaction<'_, Postgres>,
    migration_id: MigrationId,
    removed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dump_reports (migration_id, state, full_recheck, generation) VALUES ($1, 'validating', $2, 1)
         ON CONFLICT (migration_id) DO UPDATE
            SET state = 'validating', error = NULL, generation = dump_reports.generation + 1,
                full_recheck = dump_reports.full_recheck OR $2, updated_at = now()",
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
    /// Where the upload is written for reading (a scratch file per attempt, 0600).
    pub uploads_dir: PathBuf,
    pub max_bytes: u64,
    pub limits: super::Limits,
    /// Where the migration's target rules come from.
    pub providers: crate::providers::Registry,
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    migration_id: MigrationId,
    seq: i64,
    file_name: String,
    format: String,
    mode: String,
    #[sqlx(try_from = "String")]
    state: UploadState,
    size_bytes: i64,
}

/// Where the bytes to stage are on this machine.
enum Source {
    /// Written from the pieces in PostgreSQL for this attempt; removed when done.
    Scratch(PathBuf),
    /// A file an earlier version left in the uploads directory (or the ingest benchmark).
    Local(PathBuf),
}

impl Source {
    fn path(&self) -> &std::path::Path {
        match self {
            Source::Scratch(p) | Source::Local(p) => p,
        }
    }
}

/// Removes this attempt's scratch file however the attempt ends.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Ingest {
    /// Writes the upload's pieces, in order, into a new 0600 file under the uploads directory
    /// (one piece in memory at a time), or finds the file an earlier version kept on disk.
    async fn fetch(
        &self,
        ctx: &JobContext,
        id: UploadId,
        up: &UploadRow,
    ) -> Result<Result<Source, String>, JobError> {
        let pool = &ctx.pool;
        let dir = &self.uploads_dir;
        super::uploads::private_dir(dir).map_err(|e| {
            JobError::retry(format!("the uploads directory cannot be created: {e}"))
        })?;
        let stored: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(length(data)), 0)::bigint FROM dump_upload_pieces WHERE upload_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?;
        if stored == 0 {
            let legacy = super::uploads::part_path(dir, id);
            if std::fs::metadata(&legacy).is_ok_and(|m| m.len() == up.size_bytes as u64) {
                return Ok(Ok(Source::Local(legacy)));
            }
        }
        if stored != up.size_bytes {
            return Ok(Err(format!(
                "The database holds {stored} of this upload's {} bytes; upload the file again.",
                up.size_bytes
            )));
        }
        let need = (up.size_bytes as u64).saturating_add(super::uploads::HEADROOM_BYTES);
        let free = super::uploads::free_bytes(dir).unwrap_or(u64::MAX);
        if free < need {
            // Space may come back as other uploads finish; the attempts are bounded.
            return Err(JobError::Retry {
                error: format!(
                    "the data directory has {} free; staging {} needs {}",
                    super::uploads::human_bytes(free),
                    up.file_name,
                    super::uploads::human_bytes(need)
                ),
                after: Duration::from_secs(60),
            });
        }
        // One name per attempt: a worker that lost its lease never writes into the next one's.
        let path = dir.join(format!("{id}.{}-{}.part", ctx.job.id, ctx.job.attempts));
        let _ = std::fs::remove_file(&path);
        let file = super::uploads::private_file(&path)
            .map_err(|e| JobError::retry(format!("cannot write the upload to disk: {e}")))?;
        let mut guard = Scratch(Some(path.clone()));
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let mut at = 0i64;
        while at < up.size_bytes {
            ctx.check()?;
            let piece: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT data FROM dump_upload_pieces WHERE upload_id = $1 AND byte_offset = $2",
            )
            .bind(id)
            .bind(at)
            .fetch_optional(pool)
            .await?;
            let Some(piece) = piece.filter(|p| !p.is_empty()) else {
                return Ok(Err(format!(
                    "The piece at byte {at} of this upload is missing; upload the file again."
                )));
            };
            out.write_all(&piece)
                .await
                .map_err(|e| JobError::retry(format!("writing the upload to disk: {e}")))?;
            at += piece.len() as i64;
        }
        out.flush()
            .await
            .map_err(|e| JobError::retry(format!("writing the upload to disk: {e}")))?;
        drop(out);
        guard.0 = None;
        Ok(Ok(Source::Scratch(path)))
    }
}

#[async_trait::async_trait]
impl Handler for Ingest {
    fn kind(&self) -> &'static str {
        INGEST
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let id: UploadId = ctx.job.uuid("upload_id")?;
        let pool = &ctx.pool;
        let Some(up) = sqlx::query_as::<_, UploadRow>(
            "SELECT migration_id, seq, file_name, format, mode, state, size_bytes FROM dump_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        else {
            return Ok(());
        };
        if !matches!(up.state, UploadState::Queued | UploadState::Ingesting) {
            // Discarded while it waited.
            return Ok(());
        }
        // Refused early when a run already holds the staged data (and again at commit).
        let active: Option<String> = sqlx::query_scalar(
            "SELECT state FROM import_runs WHERE migration_id = $1 AND state IN ('running', 'paused') LIMIT 1",
        )
        .bind(up.migration_id)
        .fetch_optional(pool)
        .await?;
        if let Some(state) = active {
            refuse(pool, id, &state).await?;
            return Ok(());
        }
        sqlx::query(
            "UPDATE dump_uploads SET state = 'ingesting', ingest_started_at = now(), read_bytes = 0,
                    records = 0, counts = '{}', updated_at = now() WHERE id = $1 AND state IN ('queued', 'ingesting')",
        )
        .bind(id)
        .execute(pool)
        .await?;
        let source = match self.fetch(&ctx, id, &up).await? {
            Ok(s) => s,
            Err(why) => {
                super::uploads::fail(pool, id, &why).await?;
                return Ok(());
            }
        };
        let _scratch = Scratch(match &source {
            Source::Scratch(p) => Some(p.clone()),
            Source::Local(_) => None,
        });
        let path = source.path().to_path_buf();
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
        let target = super::validate::target_rules(&self.providers, &target_kind);
        let known = super::check::known_index(pool, up.migration_id).await?;
        let mut tx = pool.begin().await?;
        let result = stage::stage(
            &mut tx,
            StageInput {
                migration_id: up.migration_id,
                upload_id: id,
                name: &up.file_name,
                path: path.clone(),
                format: super::formats::Format::named(&up.format),
                max_bytes: self.max_bytes,
                target,
                known,
                limits: self.limits,
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
                super::uploads::fail(pool, id, &format!("{} ({})", f.message, f.code)).await?;
                if let Source::Local(p) = &source {
                    let _ = tokio::fs::remove_file(p).await;
                }
                return Ok(());
            }
        };
        // The commit: the migration first (a launch writes it too), then the upload; both
        // held until the end, so a launch or a discard lands wholly before or after.
        if let Some(state) = super::uploads::lock_migration(&mut tx, up.migration_id).await? {
            drop(tx);
            refuse(pool, id, &state).await?;
            return Ok(());
        }
        let now: Option<String> =
            sqlx::query_scalar("SELECT state FROM dump_uploads WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let now = now
            .as_deref()
            .map(crate::import::decode::<UploadState>)
            .transpose()?;
        if now != Some(UploadState::Ingesting) {
            // Discarded (or failed) while it was read: nothing of it stays.
            return Ok(());
        }
        let read_bytes = progress.read_bytes.load(Ordering::Relaxed) as i64;
        sqlx::query(
            "UPDATE dump_uploads SET state = 'staged', records = $2, rejected = $3, counts = $4,
                    read_bytes = $5, verified_for = $6, phase_keys_counted = true,
                    ingest_finished_at = clock_timestamp(), updated_at = now()
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
            let replaced: Vec<(UploadId, String)> = sqlx::query_as(
                "UPDATE dump_uploads SET state = 'discarded', updated_at = now()
                 WHERE migration_id = $1 AND seq < $2 AND state IN ('staged', 'failed')
                 RETURNING id, file_name",
            )
            .bind(up.migration_id)
            .bind(up.seq)
            .fetch_all(&mut *tx)
            .await?;
            let ids: Vec<UploadId> = replaced.iter().map(|r| r.0).collect();
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
        // The bytes go with the commit that staged them.
        sqlx::query("DELETE FROM dump_upload_pieces WHERE upload_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Last: only the worker that still holds the job's lease commits; holding the job's
        // row until the commit keeps the reaper from handing it to another in between.
        ctx.hold_lease(&mut tx).await?;
        if matches!(ctx.stop(), Some(Stop::Cancel | Stop::Lost)) {
            return Err(ctx.check().unwrap_err());
        }
        tx.commit().await?;
        if let Source::Local(p) = &source {
            let _ = tokio::fs::remove_file(p).await;
        }
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

/// The upload is not staged because a run of its migration is `state`; it says so.
async fn refuse(pool: &sqlx::PgPool, id: UploadId, state: &str) -> Result<(), JobError> {
    let why = format!(
        "Not staged: an import of this migration is {state}, and the data it takes may not change while it lasts (nothing staged was replaced or added). Cancel the import or let it finish, then upload the file again."
    );
    super::uploads::fail(pool, id, &why).await?;
    tracing::warn!(upload = %id, "refused to stage while an import is {state}");
    Ok(())
}

pub struct Validate {
    /// Cross-record findings kept per rule (`IMSHIFT_FINDINGS_PER_RULE`); the rest are counted.
    pub findings_per_rule: u64,
    pub providers: crate::providers::Registry,
}

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
        super::check::validate_migration(
            &ctx,
            migration_id,
            self.findings_per_rule,
            &self.providers,
        )
        .await
    }
}
