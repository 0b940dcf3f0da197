//! Uploads: announce a file, send its bytes in one request or in resumable pieces, discard it.
//! Bytes go straight to a file under the data directory, never into memory; a complete upload
//! is queued for ingest (`super::jobs`). The browser and the REST API share these functions.

use crate::audit;
use crate::auth::Actor;
use crate::jobs::{self, NewJob};
use crate::model::{NewUpload, Permission, Upload, UploadFile};
use crate::web::{AppError, AppResult, AppState};
use axum::body::Body;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::{PgExecutor, PgPool};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

pub const FORMATS: [&str; 5] = ["auto", "canonical", "netease", "easemob", "csv"];

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    migration_id: Uuid,
    file_name: String,
    format: String,
    mode: String,
    size_bytes: i64,
    received_bytes: i64,
    state: String,
    read_bytes: i64,
    records: i64,
    rejected: i64,
    counts: sqlx::types::Json<BTreeMap<String, i64>>,
    error: Option<String>,
    files: sqlx::types::Json<Vec<UploadFile>>,
    created_by: Option<String>,
    created_at: OffsetDateTime,
    ingest_started_at: Option<OffsetDateTime>,
    ingest_finished_at: Option<OffsetDateTime>,
}

impl From<Row> for Upload {
    fn from(r: Row) -> Self {
        Upload {
            id: r.id,
            migration_id: r.migration_id,
            file_name: r.file_name,
            format: r.format,
            mode: r.mode,
            size_bytes: r.size_bytes,
            received_bytes: r.received_bytes,
            state: r.state,
            read_bytes: r.read_bytes,
            records: r.records,
            rejected: r.rejected,
            counts: r.counts.0,
            error: r.error,
            files: r.files.0,
            created_by: r.created_by,
            created_at: r.created_at,
            ingest_started_at: r.ingest_started_at,
            ingest_finished_at: r.ingest_finished_at,
        }
    }
}

const SELECT: &str = "SELECT d.id, d.migration_id, d.file_name, d.format, d.mode, d.size_bytes,
        d.received_bytes, d.state, d.read_bytes, d.records, d.rejected, d.counts, d.error,
        coalesce((SELECT json_agg(json_build_object('name', f.name, 'format', f.format) ORDER BY f.file_no)
                  FROM dump_files f WHERE f.upload_id = d.id), '[]') AS files,
        u.email AS created_by, d.created_at, d.ingest_started_at, d.ingest_finished_at
    FROM dump_uploads d LEFT JOIN users u ON u.id = d.created_by";

/// Where an upload's bytes wait on disk.
pub fn part_path(s: &AppState, id: Uuid) -> PathBuf {
    s.uploads_dir().join(format!("{id}.part"))
}

async fn row(pool: &PgPool, migration_id: Uuid, id: Uuid) -> AppResult<Upload> {
    sqlx::query_as::<_, Row>(&format!("{SELECT} WHERE d.id = $1 AND d.migration_id = $2"))
        .bind(id)
        .bind(migration_id)
        .fetch_optional(pool)
        .await?
        .map(Upload::from)
        .ok_or_else(|| AppError::NotFound(format!("This migration has no upload {id}.")))
}

pub async fn get(pool: &PgPool, actor: &Actor, migration_id: Uuid, id: Uuid) -> AppResult<Upload> {
    actor.require(Permission::Read)?;
    row(pool, migration_id, id).await
}

/// Every upload of the migration that is not discarded, newest first.
pub async fn list(pool: &PgPool, actor: &Actor, migration_id: Uuid) -> AppResult<Vec<Upload>> {
    actor.require(Permission::Read)?;
    crate::migration::get(pool, actor, migration_id).await?;
    Ok(sqlx::query_as::<_, Row>(&format!(
        "{SELECT} WHERE d.migration_id = $1 AND d.state <> 'discarded' ORDER BY d.seq DESC"
    ))
    .bind(migration_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Upload::from)
    .collect())
}

/// The last part of a path, so a name can never point elsewhere on disk or in a report.
fn clean_name(name: &str) -> AppResult<String> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if base.is_empty() || base == "." || base == ".." || base.chars().any(char::is_control) {
        return Err(AppError::validation(
            "file_name",
            "give the file's name, such as `accounts.jsonl.gz`",
        ));
    }
    Ok(base.chars().take(200).collect())
}

/// Announces a file of `size_bytes`; its bytes follow with [`append`].
pub async fn create(
    s: &AppState,
    actor: &Actor,
    migration_id: Uuid,
    input: &NewUpload,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let m = crate::migration::get(&s.pool, actor, migration_id).await?;
    if m.state == crate::model::MigrationState::Archived {
        return Err(AppError::Conflict(
            "This migration is archived; restore it before uploading.".into(),
        ));
    }
    // What an import takes stays as it was while the import lasts.
    crate::import::ensure_no_active_run(&s.pool, migration_id).await?;
    let name = clean_name(&input.file_name)?;
    let format = input.format.as_deref().unwrap_or("auto");
    if !FORMATS.contains(&format) {
        return Err(AppError::validation(
            "format",
            format!("`{format}` is not one of {}", FORMATS.join(", ")),
        ));
    }
    let mode = input.mode.as_deref().unwrap_or("add");
    if mode != "add" && mode != "replace" {
        return Err(AppError::validation(
            "mode",
            "use `add` (join the staged data) or `replace` (discard earlier uploads once this one is staged)",
        ));
    }
    if input.size_bytes <= 0 {
        return Err(AppError::validation(
            "size_bytes",
            "the file is empty; export the dump again",
        ));
    }
    let max = s.config.max_upload_bytes;
    if input.size_bytes as u64 > max {
        return Err(AppError::TooLarge(format!(
            "{name} is {} bytes; one upload may be at most {max} bytes ({}). Split the dump into several files (kinds may be mixed in any file).",
            input.size_bytes,
            human_bytes(max)
        )));
    }
    let id = Uuid::new_v4();
    tokio::fs::create_dir_all(s.uploads_dir())
        .await
        .map_err(AppError::internal)?;
    tokio::fs::File::create(part_path(s, id))
        .await
        .map_err(AppError::internal)?;
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, format, mode, size_bytes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(migration_id)
    .bind(&name)
    .bind(format)
    .bind(mode)
    .bind(input.size_bytes)
    .bind(actor.user_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "dump.upload_started",
        &format!("migration:{migration_id}"),
        json!({ "upload": id, "file": name, "bytes": input.size_bytes, "format": format, "mode": mode }),
    )
    .await?;
    tx.commit().await?;
    row(&s.pool, migration_id, id).await
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Frees the upload for another writer when the request ends, however it ends.
struct Receiving<'a>(&'a AppState, Uuid);

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

async fn set_received<'e>(db: impl PgExecutor<'e>, id: Uuid, n: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE dump_uploads SET received_bytes = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(n)
        .execute(db)
        .await
        .map(|_| ())
}

/// Writes `body` at `offset` (which must be the bytes received so far). When the last byte
/// arrives the upload is queued for ingest. An interrupted request keeps what reached the disk:
/// ask the upload for `received_bytes` and continue from there.
pub async fn append(
    s: &AppState,
    actor: &Actor,
    migration_id: Uuid,
    id: Uuid,
    offset: i64,
    body: Body,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let up = row(&s.pool, migration_id, id).await?;
    if up.state != "uploading" {
        return Err(AppError::Conflict(format!(
            "This upload is {} and takes no more bytes; start a new upload to send the file again.",
            up.state
        )));
    }
    if offset != up.received_bytes {
        return Err(AppError::Conflict(format!(
            "The server has {} bytes of this upload; send the rest from offset {}.",
            up.received_bytes, up.received_bytes
        )));
    }
    if !s
        .receiving
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id)
    {
        return Err(AppError::Conflict(
            "Another request is sending bytes to this upload right now.".into(),
        ));
    }
    let _guard = Receiving(s, id);
    let path = part_path(s, id);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .map_err(|e| {
            AppError::Gone(format!(
                "The bytes of this upload are no longer on this server ({e}); start a new upload."
            ))
        })?;
    // Bytes past what was recorded come from a request that broke off; they are sent again.
    file.set_len(offset as u64)
        .await
        .map_err(AppError::internal)?;
    file.seek(std::io::SeekFrom::Start(offset as u64))
        .await
        .map_err(AppError::internal)?;
    let mut received = offset;
    let mut last_saved = Instant::now();
    let mut stream = body.into_data_stream();
    let mut outcome: AppResult<()> = Ok(());
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                outcome = Err(AppError::validation(
                    "body",
                    format!("the upload broke off after {received} bytes ({e}); resume from offset {received}"),
                ));
                break;
            }
        };
        if received + chunk.len() as i64 > up.size_bytes {
            outcome = Err(AppError::TooLarge(format!(
                "{} was announced as {} bytes, but more arrived; start the upload again with the file's real size.",
                up.file_name, up.size_bytes
            )));
            break;
        }
        if let Err(e) = file.write_all(&chunk).await {
            outcome = Err(AppError::internal(e));
            break;
        }
        received += chunk.len() as i64;
        if last_saved.elapsed() > Duration::from_secs(1) {
            file.flush().await.map_err(AppError::internal)?;
            set_received(&s.pool, id, received).await?;
            last_saved = Instant::now();
        }
    }
    file.flush().await.map_err(AppError::internal)?;
    if let Err(e) = outcome {
        if matches!(e, AppError::TooLarge(_)) {
            // More than announced: the file cannot be trusted; drop it whole.
            drop(file);
            discard_bytes(s, id).await;
            sqlx::query("UPDATE dump_uploads SET state = 'failed', error = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(e.to_string())
                .execute(&s.pool)
                .await?;
        } else {
            set_received(&s.pool, id, received).await?;
        }
        return Err(e);
    }
    if received < up.size_bytes {
        set_received(&s.pool, id, received).await?;
        return row(&s.pool, migration_id, id).await;
    }
    file.sync_all().await.map_err(AppError::internal)?;
    drop(file);
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "UPDATE dump_uploads SET received_bytes = $2, state = 'queued', updated_at = now()
         WHERE id = $1 AND state = 'uploading'",
    )
    .bind(id)
    .bind(received)
    .execute(&mut *tx)
    .await?;
    jobs::enqueue(
        &mut *tx,
        &NewJob {
            kind: super::jobs::INGEST,
            migration_id: Some(migration_id),
            node: Some(s.node.clone()),
            payload: json!({ "upload_id": id }),
            ..Default::default()
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "dump.uploaded",
        &format!("migration:{migration_id}"),
        json!({ "upload": id, "file": up.file_name, "bytes": received, "mode": up.mode }),
    )
    .await?;
    tx.commit().await?;
    row(&s.pool, migration_id, id).await
}

async fn discard_bytes(s: &AppState, id: Uuid) {
    let _ = tokio::fs::remove_file(part_path(s, id)).await;
}

/// Deletes a staged upload's rows and findings (the records of a replaced or discarded file).
pub async fn delete_staged<'c>(
    tx: &mut sqlx::Transaction<'c, sqlx::Postgres>,
    ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    for t in super::stage::upload_tables() {
        sqlx::query(&format!("DELETE FROM {t} WHERE upload_id = ANY($1)"))
            .bind(ids)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Discards an upload: an unfinished one stops, a staged one's records leave the staged data.
/// The file's bytes are deleted; the audit log keeps that it was there.
pub async fn discard(
    s: &AppState,
    actor: &Actor,
    migration_id: Uuid,
    id: Uuid,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let up = row(&s.pool, migration_id, id).await?;
    if up.state == "discarded" {
        return Ok(up);
    }
    crate::import::ensure_no_active_run(&s.pool, migration_id).await?;
    let mut tx = s.pool.begin().await?;
    // A running ingest stops at its next batch and rolls back.
    sqlx::query(
        "UPDATE jobs SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
                         control = CASE WHEN state = 'running' THEN 'cancel' END
         WHERE kind = $1 AND payload->>'upload_id' = $2 AND state IN ('queued', 'running', 'paused')",
    )
    .bind(super::jobs::INGEST)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE dump_uploads SET state = 'discarded', updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let was_staged = up.state == "staged";
    if was_staged {
        delete_staged(&mut tx, &[id]).await?;
        super::jobs::enqueue_validate(&mut tx, migration_id, true).await?;
    } else {
        sqlx::query("DELETE FROM dump_findings WHERE upload_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    audit::record(
        &mut *tx,
        &actor.into(),
        "dump.deleted",
        &format!("migration:{migration_id}"),
        json!({ "upload": id, "file": up.file_name, "state": up.state, "records": up.records }),
    )
    .await?;
    tx.commit().await?;
    discard_bytes(s, id).await;
    row(&s.pool, migration_id, id).await
}
