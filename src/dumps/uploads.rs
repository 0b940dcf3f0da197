//! Uploads: announce a file, send its bytes in one request or in resumable pieces, discard it.
//! Bytes wait in PostgreSQL (`dump_upload_pieces`, at most [`PIECE_BYTES`] a row), never in
//! one process's memory or on one process's disk: any console process may receive any piece,
//! and the ingest job (`super::jobs`), on whichever process claims it, reads them back. The
//! browser and the REST API share these functions.

use crate::audit::{self, Who};
use crate::auth::Actor;
use crate::import::decode;
use crate::jobs::{self, NewJob};
use crate::model::{MigrationId, NewUpload, Permission, Upload, UploadFile, UploadId, UploadState};
use crate::service::{AppError, AppResult, Services};
use axum::body::Body;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The formats an upload may name, in words.
pub fn format_choices() -> Vec<crate::model::DumpFormat> {
    super::formats::upload_choices()
        .into_iter()
        .map(|(id, label)| crate::model::DumpFormat {
            id: id.into(),
            label: label.into(),
        })
        .collect()
}

/// `format` (an upload's or a file's) in words; an id this build does not read stays as it is.
pub fn format_label(format: &str) -> String {
    match super::formats::Format::named(format) {
        Some(f) => f.label().into(),
        None if format == "auto" => "Tell from the content".into(),
        None => format.into(),
    }
}

/// What an upload's `format` may say: `auto`, then every format imshift reads.
pub fn formats() -> Vec<&'static str> {
    super::formats::upload_choices()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The largest piece kept in one row: what the browser sends in one request. A longer request
/// (a one-shot upload) is stored as several pieces.
pub const PIECE_BYTES: usize = 8 << 20;

/// Disk kept free beside a file being staged (the reader's scratch space, the database's
/// neighbours): an announced size is accepted only if the data directory has it plus this.
pub const HEADROOM_BYTES: u64 = 256 << 20;

#[derive(sqlx::FromRow)]
struct Row {
    id: UploadId,
    migration_id: MigrationId,
    file_name: String,
    format: String,
    mode: String,
    size_bytes: i64,
    received_bytes: i64,
    #[sqlx(try_from = "String")]
    state: UploadState,
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
    expires_at: Option<OffsetDateTime>,
    received_at: OffsetDateTime,
}

impl From<Row> for Upload {
    fn from(r: Row) -> Self {
        Upload {
            id: r.id,
            migration_id: r.migration_id,
            file_name: r.file_name,
            format_label: format_label(&r.format),
            format: r.format,
            mode: r.mode,
            size_bytes: r.size_bytes,
            received_bytes: r.received_bytes,
            expires_at: (r.state == UploadState::Uploading)
                .then_some(r.expires_at)
                .flatten(),
            received_at: (r.state == UploadState::Uploading).then_some(r.received_at),
            state: r.state,
            read_bytes: r.read_bytes,
            records: r.records,
            rejected: r.rejected,
            counts: r.counts.0,
            error: r.error,
            files: r
                .files
                .0
                .into_iter()
                .map(|f| UploadFile {
                    format_label: format_label(&f.format),
                    ..f
                })
                .collect(),
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
        u.email AS created_by, d.created_at, d.ingest_started_at, d.ingest_finished_at, d.expires_at,
        d.updated_at AS received_at
    FROM dump_uploads d LEFT JOIN users u ON u.id = d.created_by";

/// Where an upload's bytes waited on disk before they moved to PostgreSQL; an ingest still
/// stages such a file when it finds one (an upload received by an earlier version).
pub fn part_path(uploads_dir: &Path, id: UploadId) -> PathBuf {
    uploads_dir.join(format!("{id}.part"))
}

/// The uploads directory, created (or narrowed) to 0700: files waiting there hold users'
/// messages.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A new file only its owner can read or write (0600); fails if it exists.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Bytes free for an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    fs4::available_space(dir)
}

async fn row(pool: &PgPool, migration_id: MigrationId, id: UploadId) -> AppResult<Upload> {
    sqlx::query_as::<_, Row>(&format!("{SELECT} WHERE d.id = $1 AND d.migration_id = $2"))
        .bind(id)
        .bind(migration_id)
        .fetch_optional(pool)
        .await?
        .map(Upload::from)
        .ok_or_else(|| AppError::NotFound(format!("This migration has no upload {id}.")))
}

pub async fn get(
    pool: &PgPool,
    actor: &Actor,
    migration_id: MigrationId,
    id: UploadId,
) -> AppResult<Upload> {
    actor.require(Permission::Read)?;
    row(pool, migration_id, id).await
}

/// Every upload of the migration that is not discarded, newest first.
pub async fn list(
    pool: &PgPool,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<Vec<Upload>> {
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

/// Seconds as a PostgreSQL interval argument.
fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

/// Announces a file of `size_bytes`; its bytes follow with [`append`].
pub async fn create(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    input: &NewUpload,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let m = crate::migration::get(&s.pool, actor, migration_id).await?;
    if m.state == crate::model::MigrationState::Archived {
        return Err(AppError::Conflict(
            "This migration is archived; restore it before uploading.".into(),
        ));
    }
    // What an import takes stays as it was while the import lasts (the ingest checks again).
    crate::import::ensure_no_active_run(&s.pool, migration_id).await?;
    let name = clean_name(&input.file_name)?;
    let format = input.format.as_deref().unwrap_or("auto");
    if !formats().contains(&format) {
        return Err(AppError::validation(
            "format",
            format!("`{format}` is not one of {}", formats().join(", ")),
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
    let size = input.size_bytes as u64;
    let max = s.config.max_upload_bytes;
    if size > max {
        return Err(AppError::TooLarge(format!(
            "{name} is {} bytes; one upload may be at most {max} bytes ({}). Split the dump into several files (kinds may be mixed in any file).",
            input.size_bytes,
            human_bytes(max)
        )));
    }
    // Staging writes the file to the data directory once: it must fit there.
    let dir = s.uploads_dir();
    private_dir(&dir).map_err(AppError::internal)?;
    let free = free_bytes(&dir).map_err(AppError::internal)?;
    if free < size.saturating_add(HEADROOM_BYTES) {
        return Err(AppError::InsufficientStorage(format!(
            "Not enough free disk for {name}: the console's data directory (IMSHIFT_DATA_DIR) has {} free; staging this file needs {} plus {} to spare. Free some space or move the data directory to a larger disk.",
            human_bytes(free),
            human_bytes(size),
            human_bytes(HEADROOM_BYTES)
        )));
    }
    let id = UploadId::new_v4();
    let mut tx = s.pool.begin().await?;
    // One announcement at a time, across processes, checks and takes the quota; the lock ends
    // with the transaction, however it ends.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('imshift:upload_quota', 0))")
        .execute(&mut *tx)
        .await?;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(size_bytes), 0)::bigint FROM dump_uploads
         WHERE state IN ('uploading', 'queued', 'ingesting')",
    )
    .fetch_one(&mut *tx)
    .await?;
    let quota = s.config.upload_quota_bytes;
    if (waiting as u64).saturating_add(size) > quota {
        return Err(AppError::InsufficientStorage(format!(
            "Uploads waiting to be staged already hold {} of the {} upload quota (IMSHIFT_UPLOAD_QUOTA_BYTES), so {} is free; {name} needs {}. Let them finish staging or discard abandoned ones, then try again.",
            human_bytes(waiting as u64),
            human_bytes(quota),
            human_bytes(quota.saturating_sub(waiting as u64)),
            human_bytes(size)
        )));
    }
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, format, mode, size_bytes, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
    )
    .bind(id)
    .bind(migration_id)
    .bind(&name)
    .bind(format)
    .bind(mode)
    .bind(input.size_bytes)
    .bind(actor.user_id)
    .bind(secs(s.config.upload_expiry))
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

/// Stores one piece at `at` and moves `received_bytes` past it, in one transaction, only if
/// the upload is still receiving and has exactly `at` bytes: a piece is never stored twice,
/// never after a discard, and two processes sending to one upload cannot interleave.
async fn save_piece(s: &Services, id: UploadId, at: i64, data: &[u8]) -> AppResult<()> {
    let mut tx = s.pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE dump_uploads SET received_bytes = $2 + $3, updated_at = now(),
                expires_at = now() + make_interval(secs => $4)
         WHERE id = $1 AND state = 'uploading' AND received_bytes = $2",
    )
    .bind(id)
    .bind(at)
    .bind(data.len() as i64)
    .bind(secs(s.config.upload_expiry))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        drop(tx);
        let (state, received): (String, i64) =
            sqlx::query_as("SELECT state, received_bytes FROM dump_uploads WHERE id = $1")
                .bind(id)
                .fetch_one(&s.pool)
                .await?;
        return Err(AppError::Conflict(
            if decode::<UploadState>(&state)? != UploadState::Uploading {
                format!("This upload is {state} and takes no more bytes; start a new upload to send the file again.")
            } else {
                format!("The server has {received} bytes of this upload; send the rest from offset {received}.")
            },
        ));
    }
    sqlx::query(
        "INSERT INTO dump_upload_pieces (upload_id, byte_offset, data) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(at)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Writes `body` at `offset` (which must be the bytes received so far). When the last byte
/// arrives the upload is queued for ingest. An interrupted request keeps what arrived: ask
/// the upload for `received_bytes` and continue from there, on any console process.
pub async fn append(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    id: UploadId,
    offset: i64,
    body: Body,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let up = row(&s.pool, migration_id, id).await?;
    if up.state != UploadState::Uploading {
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
    let mut received = offset;
    // At most one piece in memory per request.
    let mut buf: Vec<u8> =
        Vec::with_capacity(((up.size_bytes - offset) as usize).clamp(0, PIECE_BYTES));
    let mut stream = body.into_data_stream();
    let mut outcome: AppResult<()> = Ok(());
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let at = received + buf.len() as i64;
                outcome = Err(AppError::validation(
                    "body",
                    format!("the upload broke off after {at} bytes ({e}); resume from offset {at}"),
                ));
                break;
            }
        };
        if received + (buf.len() + chunk.len()) as i64 > up.size_bytes {
            outcome = Err(AppError::TooLarge(format!(
                "{} was announced as {} bytes, but more arrived; start the upload again with the file's real size.",
                up.file_name, up.size_bytes
            )));
            break;
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = rest.len().min(PIECE_BYTES - buf.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buf.len() == PIECE_BYTES {
                save_piece(s, id, received, &buf).await?;
                received += buf.len() as i64;
                buf.clear();
            }
        }
    }
    if let Err(e) = outcome {
        if matches!(e, AppError::TooLarge(_)) {
            // More than announced: the file cannot be trusted; drop it whole.
            let mut tx = s.pool.begin().await?;
            sqlx::query(
                "UPDATE dump_uploads SET state = 'failed', error = $2, updated_at = now()
                 WHERE id = $1 AND state = 'uploading'",
            )
            .bind(id)
            .bind(e.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM dump_upload_pieces WHERE upload_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        } else if !buf.is_empty() {
            // What arrived before the break is kept; the sender resumes after it.
            save_piece(s, id, received, &buf).await?;
        }
        return Err(e);
    }
    if !buf.is_empty() {
        save_piece(s, id, received, &buf).await?;
        received += buf.len() as i64;
    }
    if received < up.size_bytes {
        return row(&s.pool, migration_id, id).await;
    }
    let mut tx = s.pool.begin().await?;
    let queued = sqlx::query(
        "UPDATE dump_uploads SET state = 'queued', updated_at = now()
         WHERE id = $1 AND state = 'uploading' AND received_bytes = size_bytes",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if queued == 1 {
        // Any process may stage it: the bytes are in PostgreSQL.
        jobs::enqueue(
            &mut *tx,
            &NewJob {
                kind: super::jobs::INGEST,
                migration_id: Some(migration_id),
                payload: json!({ "upload_id": id }),
                max_attempts: Some(s.config.ingest_max_attempts),
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
    }
    tx.commit().await?;
    row(&s.pool, migration_id, id).await
}

/// Ends an upload that cannot be staged, with why, and lets its bytes go. Only an upload still
/// waiting or being staged changes (a discard that came first stays).
pub async fn fail(pool: &PgPool, id: UploadId, why: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE dump_uploads SET state = 'failed', error = $2, ingest_finished_at = now(),
                updated_at = now()
         WHERE id = $1 AND state IN ('queued', 'ingesting')",
    )
    .bind(id)
    .bind(why)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM dump_upload_pieces WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Discards every upload that received no byte before its `expires_at`, lets its bytes go and
/// audits each (`dump.expired`). Safe to run from every process at once: each upload is
/// expired by exactly one. Returns how many expired.
pub async fn expire_abandoned(pool: &PgPool) -> Result<u64, AppError> {
    let mut tx = pool.begin().await?;
    let expired: Vec<(UploadId, MigrationId, String, i64, i64, OffsetDateTime)> = sqlx::query_as(
        "UPDATE dump_uploads SET state = 'discarded', updated_at = now(),
                error = 'Expired: no bytes arrived after ' || to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC.'
         WHERE id IN (SELECT id FROM dump_uploads WHERE state = 'uploading' AND expires_at < now()
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, migration_id, file_name, size_bytes, received_bytes, updated_at",
    )
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<UploadId> = expired.iter().map(|e| e.0).collect();
    sqlx::query("DELETE FROM dump_upload_pieces WHERE upload_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    for (id, migration, file, size, received, _) in &expired {
        audit::record(
            &mut *tx,
            &Who::system("imshift"),
            "dump.expired",
            &format!("migration:{migration}"),
            json!({ "upload": id, "file": file, "bytes": size, "received_bytes": received }),
        )
        .await?;
    }
    tx.commit().await?;
    for (id, _, file, _, received, _) in &expired {
        tracing::info!(upload = %id, received_bytes = received, "expired the abandoned upload {file}");
    }
    Ok(expired.len() as u64)
}

/// Removes files in the uploads directory that belong to no upload still waiting or being
/// staged (scratch left by a process that died while staging, or by a discard).
pub async fn sweep_files(pool: &PgPool, dir: &Path) -> Result<u64, sqlx::Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut found: Vec<(UploadId, PathBuf)> = vec![];
    for e in entries.flatten() {
        let name = e.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.get(..36))
            .and_then(|n| n.parse::<UploadId>().ok());
        if let Some(id) = id {
            found.push((id, e.path()));
        }
    }
    if found.is_empty() {
        return Ok(0);
    }
    let ids: Vec<UploadId> = found.iter().map(|f| f.0).collect();
    let live: Vec<UploadId> = sqlx::query_scalar(
        "SELECT id FROM dump_uploads WHERE id = ANY($1) AND state IN ('uploading', 'queued', 'ingesting')",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut removed = 0;
    for (id, path) in found {
        if live.contains(&id) {
            continue;
        }
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Deletes a staged upload's rows and findings (the records of a replaced or discarded file).
pub async fn delete_staged<'c>(
    tx: &mut sqlx::Transaction<'c, sqlx::Postgres>,
    ids: &[UploadId],
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

/// Locks the migration's row for the rest of `tx` and says whether one of its import runs is
/// running or paused. Staged data changes (an ingest's commit, a discard) take this lock
/// first, so a launch, which writes the same row, is ordered before or after them, never
/// between their check and their commit.
pub async fn lock_migration(
    tx: &mut sqlx::PgConnection,
    migration_id: MigrationId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT 1 FROM im_migrations WHERE id = $1 FOR UPDATE")
        .bind(migration_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(
        "SELECT state FROM import_runs WHERE migration_id = $1 AND state IN ('running', 'paused')
         LIMIT 1",
    )
    .bind(migration_id)
    .fetch_optional(&mut *tx)
    .await
}

/// Why staged data may not change while a run of the migration is `state`.
pub fn run_blocks(state: &str) -> String {
    format!("An import of this migration is {state}; cancel it or let it finish before changing the staged dumps.")
}

/// Discards an upload: an unfinished one stops, a staged one's records leave the staged data.
/// The file's bytes are deleted; the audit log keeps that it was there.
pub async fn discard(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    id: UploadId,
) -> AppResult<Upload> {
    actor.require(Permission::RunMigrations)?;
    let up = row(&s.pool, migration_id, id).await?;
    if up.state == UploadState::Discarded {
        return Ok(up);
    }
    let mut tx = s.pool.begin().await?;
    if let Some(state) = lock_migration(&mut tx, migration_id).await? {
        return Err(AppError::Conflict(run_blocks(&state)));
    }
    // The state as it is now, locked: an ingest commits under the same lock, so either it
    // staged first (and its records go below) or it sees the discard and rolls back.
    let (state, records): (String, i64) = sqlx::query_as(
        "SELECT state, records FROM dump_uploads WHERE id = $1 AND migration_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(migration_id)
    .fetch_one(&mut *tx)
    .await?;
    let state = decode::<UploadState>(&state)?;
    if state == UploadState::Discarded {
        drop(tx);
        return row(&s.pool, migration_id, id).await;
    }
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
    sqlx::query("DELETE FROM dump_upload_pieces WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if state == UploadState::Staged {
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
        json!({ "upload": id, "file": up.file_name, "state": state, "records": records }),
    )
    .await?;
    tx.commit().await?;
    let _ = tokio::fs::remove_file(part_path(&s.uploads_dir(), id)).await;
    row(&s.pool, migration_id, id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn upload_files_and_directories_are_private() {
        let root = std::env::temp_dir().join(format!("imshift-private-{}", uuid::Uuid::new_v4()));
        let dir = root.join("uploads");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A directory left wider by an earlier version is narrowed.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("x.part");
        drop(private_file(&f).unwrap());
        assert_eq!(mode(&f), 0o600);
        assert!(
            private_file(&f).is_err(),
            "never reuses a file that is there"
        );
        assert!(free_bytes(&dir).unwrap() > 0);
        std::fs::remove_dir_all(root).unwrap();
    }
}
