//! `imshift bench ingest`: stage generated dumps through the real upload → ingest → validate
//! jobs, and compare with a plain COPY of the very same rows into the same tables.

use super::canonical::Kind;
use super::fixtures::{self, Spec};
use super::jobs::{Ingest, Validate, INGEST};
use super::stage::{copy_statement, table, upload_tables};
use crate::jobs::worker::WorkerConfig;
use crate::jobs::{self, Handler, NewJob, WorkerPool};
use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::PgPool;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct Figures {
    pub messages: u64,
    pub records: i64,
    pub file_bytes: u64,
    /// Upload queued → report current (read, stage, validate).
    pub total: Duration,
    /// Reading and COPY only.
    pub staging: Duration,
    pub plain_copy: Duration,
    pub plain_rows: i64,
    /// Peak resident memory of this process during the ingest.
    pub peak_rss_kb: u64,
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Starts a measured phase on a settled database: no dead rows left by an earlier size's
/// clean-up (this machine may run without autovacuum) and no checkpoint about to start, so
/// neither the ingest nor the plain COPY pays for what came before it.
async fn settle(pool: &PgPool) -> Result<(), sqlx::Error> {
    let tables: Vec<&str> = upload_tables()
        .chain(["dump_files", "dump_uploads", "jobs"])
        .collect();
    sqlx::query(&format!("VACUUM {}", tables.join(", ")))
        .execute(pool)
        .await?;
    // Needs superuser or pg_checkpoint; without it the figures are only noisier.
    let _ = sqlx::query("CHECKPOINT").execute(pool).await;
    Ok(())
}

/// Resets the kernel's peak-RSS mark (Linux), so the peak is the ingest's, not the fixture
/// generator's that ran before it.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn run(
    pool: &PgPool,
    messages: u64,
    dir: &Path,
) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir.join("uploads"))?;
    // The same people and groups at every size, so only the history grows.
    let spec = Spec {
        accounts: 20_000,
        friends: 10,
        groups: 1_000,
        members: 50,
        messages,
        ..Spec::default()
    };
    let upload = Uuid::new_v4();
    let path = dir.join("uploads").join(format!("{upload}.part"));
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        fixtures::generate(&spec, &mut out)?;
        out.flush()?;
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    let migration = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO im_migrations (id, name, strategy, source, target) VALUES ($1, $2, 'forced_upgrade', 'self_built', 'tencent')",
    )
    .bind(migration)
    .bind(format!("bench {messages} {upload}"))
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, size_bytes, received_bytes, state)
         VALUES ($1, $2, 'bench.jsonl', $3, $3, 'queued')",
    )
    .bind(upload)
    .bind(migration)
    .bind(file_bytes as i64)
    .execute(pool)
    .await?;
    let handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(Ingest {
            uploads_dir: dir.join("uploads"),
            max_bytes: u64::MAX,
        }),
        Arc::new(Validate),
    ];
    settle(pool).await?;
    let workers = WorkerPool::start(pool.clone(), WorkerConfig::new("bench"), handlers).await?;
    reset_peak();
    let started = Instant::now();
    jobs::enqueue(
        pool,
        &NewJob {
            kind: INGEST,
            migration_id: Some(migration),
            node: Some("bench".into()),
            payload: json!({ "upload_id": upload }),
            ..Default::default()
        },
    )
    .await?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (state, error): (String, Option<String>) =
            sqlx::query_as("SELECT state, error FROM dump_uploads WHERE id = $1")
                .bind(upload)
                .fetch_one(pool)
                .await?;
        if state == "failed" {
            return Err(format!("the ingest failed: {}", error.unwrap_or_default()).into());
        }
        let current: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dump_reports WHERE migration_id = $1 AND state = 'current')
                AND NOT EXISTS (SELECT 1 FROM jobs WHERE migration_id = $1 AND state IN ('queued', 'running'))",
        )
        .bind(migration)
        .fetch_one(pool)
        .await?;
        if state == "staged" && current {
            break;
        }
    }
    let total = started.elapsed();
    let peak_rss_kb = proc_status("VmHWM:");
    workers.shutdown().await;
    let (records, staging): (i64, f64) = sqlx::query_as(
        "SELECT records, extract(epoch FROM ingest_finished_at - ingest_started_at)::float8
         FROM dump_uploads WHERE id = $1",
    )
    .bind(upload)
    .fetch_one(pool)
    .await?;

    // The same rows, exported and copied back in plainly.
    let mut dumps = vec![];
    let mut conn = pool.acquire().await?;
    for kind in Kind::ALL {
        let (t, _) = table(kind);
        let file = dir.join(format!("{t}.copy"));
        let mut out = BufWriter::new(std::fs::File::create(&file)?);
        let mut s = conn
            .copy_out_raw(&format!(
                "COPY (SELECT upload_id, ord, file_no, line, {} FROM {t} WHERE upload_id = '{upload}') TO STDOUT",
                table(kind).1
            ))
            .await?;
        while let Some(chunk) = s.try_next().await? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        drop(s);
        sqlx::query(&format!("DELETE FROM {t} WHERE upload_id = $1"))
            .bind(upload)
            .execute(&mut *conn)
            .await?;
        dumps.push((kind, file));
    }
    settle(pool).await?;
    let plain_start = Instant::now();
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut buf = vec![0u8; 1 << 20];
    for (kind, file) in &dumps {
        let mut f = std::fs::File::open(file)?;
        let mut c = tx.copy_in_raw(&copy_statement(*kind)).await?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            c.send(&buf[..n]).await?;
        }
        c.finish().await?;
    }
    tx.commit().await?;
    let plain_copy = plain_start.elapsed();
    let mut plain_rows = 0i64;
    for (kind, file) in &dumps {
        let (t, _) = table(*kind);
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t} WHERE upload_id = $1"))
            .bind(upload)
            .fetch_one(&mut *conn)
            .await?;
        plain_rows += n;
        sqlx::query(&format!("DELETE FROM {t} WHERE upload_id = $1"))
            .bind(upload)
            .execute(&mut *conn)
            .await?;
        let _ = std::fs::remove_file(file);
    }
    sqlx::query("DELETE FROM im_migrations WHERE id = $1")
        .bind(migration)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM dump_uploads WHERE id = $1")
        .bind(upload)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM staged_holds WHERE upload_id = $1")
        .bind(upload)
        .execute(&mut *conn)
        .await?;
    Ok(Figures {
        messages,
        records,
        file_bytes,
        total,
        staging: Duration::from_secs_f64(staging.max(0.0)),
        plain_copy,
        plain_rows,
        peak_rss_kb,
    })
}
