//! `imshift bench ingest`: stage generated dumps through the real upload → ingest → validate
//! jobs, and compare with a plain COPY of the very same rows into the same tables.

use super::canonical::Kind;
use super::fixtures::{self, Spec};
use super::jobs::{Ingest, Validate, INGEST};
use super::stage::{copy_statement, table, upload_tables};
use crate::jobs::worker::WorkerConfig;
use crate::jobs::{self, Handler, NewJob, WorkerPool};
use crate::model::{MigrationId, UploadId};
use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::PgPool;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A generated dump staged through the real jobs.
struct Generated {
    migration: MigrationId,
    upload: UploadId,
    file_bytes: u64,
    /// Upload queued → report current.
    total: Duration,
    peak_rss_kb: u64,
}

/// Generates a dump of `messages` messages (and the same people and groups at every size), and
/// stages it through the real upload → ingest → validate jobs on a settled database.
async fn stage_generated(
    pool: &PgPool,
    messages: u64,
    dir: &Path,
) -> Result<Generated, Box<dyn std::error::Error>> {
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
    let upload = UploadId::new_v4();
    let path = dir.join("uploads").join(format!("{upload}.part"));
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        fixtures::generate(&spec, &mut out)?;
        out.flush()?;
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    let migration = queued_upload(
        pool,
        &format!("bench {messages} {upload}"),
        upload,
        "bench.jsonl",
        file_bytes as i64,
    )
    .await?;
    let handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(Ingest {
            uploads_dir: dir.join("uploads"),
            max_bytes: u64::MAX,
            limits: super::Limits::default(),
            providers: crate::providers::Registry::builtin(),
        }),
        Arc::new(Validate {
            findings_per_rule: super::DEFAULT_FINDINGS_PER_RULE,
            providers: crate::providers::Registry::builtin(),
        }),
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
    Ok(Generated {
        migration,
        upload,
        file_bytes,
        total,
        peak_rss_kb,
    })
}

pub async fn run(
    pool: &PgPool,
    messages: u64,
    dir: &Path,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let Generated {
        migration,
        upload,
        file_bytes,
        total,
        peak_rss_kb,
    } = stage_generated(pool, messages, dir).await?;
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

/// What `imshift bench preflight` measured: the import sizes the Import tab's preflight shows,
/// counted from the staged rows (what its first load after staging did) and read as stored by
/// the validation (what it does now).
pub struct PreflightFigures {
    pub messages: u64,
    pub records: i64,
    /// Upload queued → report current (staging and the validation, its counting included).
    pub total: Duration,
    /// Counting the staged rows (`plan::sizes`), the first time after staging.
    pub counted_first: Duration,
    /// Counting them again, their pages now cached (median of 3).
    pub counted_warm: Duration,
    /// Reading the stored sizes (`plan::cached_sizes`), median of 7.
    pub stored: Duration,
    /// What staging spends on them besides counting messages as it reads them: counting the
    /// smaller kinds' tables per phase and key (measured again in a rolled-back transaction).
    pub count_small_kinds: Duration,
    /// What counting the messages from their table would cost instead (the same way).
    pub count_messages_table: Duration,
    /// What each validation spends: adding the keys up, less the records kept aside.
    pub add_up: Duration,
    /// The stored sizes equal the count.
    pub equal: bool,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub async fn preflight(
    pool: &PgPool,
    messages: u64,
    dir: &Path,
) -> Result<PreflightFigures, Box<dyn std::error::Error>> {
    use crate::import::plan;
    let g = stage_generated(pool, messages, dir).await?;
    let uploads = plan::staged_uploads(pool, g.migration).await?;
    let records: i64 = sqlx::query_scalar("SELECT records FROM dump_uploads WHERE id = $1")
        .bind(g.upload)
        .fetch_one(pool)
        .await?;
    let t = Instant::now();
    let counted = plan::sizes(pool, &uploads).await?;
    let counted_first = t.elapsed();
    let mut warm = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        plan::sizes(pool, &uploads).await?;
        warm.push(t.elapsed());
    }
    let mut reads = vec![];
    let mut stored = Default::default();
    for _ in 0..7 {
        let t = Instant::now();
        stored = plan::cached_sizes(pool, g.migration, &uploads).await?;
        reads.push(t.elapsed());
    }
    let mut tx = pool.begin().await?;
    let t = Instant::now();
    super::counts::phase_sizes(&mut tx, &uploads).await?;
    let add_up = t.elapsed();
    sqlx::query("DELETE FROM staged_phase_keys WHERE upload_id = $1")
        .bind(g.upload)
        .execute(&mut *tx)
        .await?;
    let t = Instant::now();
    super::counts::count_kinds(&mut tx, &uploads, super::counts::ALL_BUT_MESSAGES).await?;
    let count_small_kinds = t.elapsed();
    let t = Instant::now();
    super::counts::count_kinds(&mut tx, &uploads, &[super::canonical::Kind::Message]).await?;
    let count_messages_table = t.elapsed();
    tx.rollback().await?;
    let o = IngestOutcome {
        migration: g.migration,
        upload: g.upload,
        state: String::new(),
        error: None,
        records,
        findings_stored: 0,
        findings_not_kept: 0,
    };
    forget(pool, &o).await?;
    Ok(PreflightFigures {
        messages,
        records,
        total: g.total,
        counted_first,
        counted_warm: median(warm),
        stored: median(reads),
        count_small_kinds,
        count_messages_table,
        add_up,
        equal: stored == counted,
    })
}

/// The hostile inputs of `imshift bench hostile` (issue 10): small files that used to cost
/// gigabytes. Each is written streaming, compressed blocks repeated as gzip members, so making
/// a 1 GiB bomb takes a second and no memory.
pub const HOSTILE: [(&str, &str); 5] = [
    ("lines-4m.gz", "4,000,000 invalid lines (`x`), gzip"),
    ("line-256m.gz", "one 256 MiB line (a message record), gzip"),
    (
        "line-100m.jsonl",
        "one 100 MB line (an account record), plain",
    ),
    ("bomb-1g.gz", "1 GiB of zero bytes, gzip"),
    (
        "bomb-records-1g.gz",
        "1 GiB of one friend line repeated, gzip",
    ),
];

/// Writes `block` gzip-compressed once, then that member `times` times: a multi-member gzip
/// that expands to `times` × `block`.
fn gz_repeat(out: &mut impl Write, block: &[u8], times: u64) -> std::io::Result<()> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(block)?;
    let member = enc.finish()?;
    for _ in 0..times {
        out.write_all(&member)?;
    }
    Ok(())
}

fn gz_once(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    gz_repeat(out, bytes, 1)
}

/// Writes the hostile input `name` (one of [`HOSTILE`]) into `dir`, scaled by `scale` (1.0:
/// the sizes of the issue; tests use smaller ones). Returns its path.
pub fn write_hostile(dir: &Path, name: &str, scale: f64) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let n = |full: u64| ((full as f64 * scale) as u64).max(1);
    const MIB: usize = 1 << 20;
    match name {
        "lines-4m.gz" => {
            // 500,000 lines a member.
            let lines = n(4_000_000);
            gz_repeat(&mut out, &b"x\n".repeat(500_000), lines / 500_000)?;
            gz_once(&mut out, &b"x\n".repeat((lines % 500_000) as usize))?;
        }
        "line-256m.gz" => {
            gz_once(
                &mut out,
                br#"{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"body":{"type":"text","text":""#,
            )?;
            gz_repeat(&mut out, &vec![b'a'; MIB], n(256))?;
            gz_once(&mut out, b"\"}}\n")?;
        }
        "line-100m.jsonl" => {
            out.write_all(br#"{"kind":"account","id":"u1","nick":""#)?;
            let block = vec![b'n'; MIB];
            let mut left = n(100_000_000);
            while left > 0 {
                let k = left.min(MIB as u64) as usize;
                out.write_all(&block[..k])?;
                left -= k as u64;
            }
            out.write_all(b"\"}")?;
        }
        "bomb-1g.gz" => gz_repeat(&mut out, &vec![0u8; MIB], n(1024))?,
        "bomb-records-1g.gz" => {
            // Friends: the shortest lines `imshift validate` must keep until the end.
            let line = b"{\"kind\":\"friend\",\"owner\":\"u1\",\"friend\":\"u2\"}\n";
            gz_repeat(&mut out, &line.repeat(MIB / line.len()), n(1024))?
        }
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("no hostile input named {other}"),
            ))
        }
    }
    out.flush()?;
    Ok(path)
}

/// Peak resident memory of this process so far (VmHWM), in kB.
pub fn peak_rss_kb() -> u64 {
    proc_status("VmHWM:")
}

/// How the console's ingest of one file ended.
#[derive(Debug)]
pub struct IngestOutcome {
    pub migration: MigrationId,
    pub upload: UploadId,
    /// `staged` or `failed`.
    pub state: String,
    pub error: Option<String>,
    pub records: i64,
    /// Rows in `dump_findings` for the upload, and findings only counted.
    pub findings_stored: i64,
    pub findings_not_kept: i64,
}

/// Stages `file` as one upload of a new migration through the console's own jobs (ingest,
/// then validate) under `limits`, as the console would, and waits until the upload is staged
/// (and its report current) or failed. `dir` holds the uploads directory.
pub async fn ingest_file(
    pool: &PgPool,
    file: &Path,
    dir: &Path,
    limits: super::Limits,
) -> Result<IngestOutcome, Box<dyn std::error::Error>> {
    let uploads = dir.join("uploads");
    std::fs::create_dir_all(&uploads)?;
    let upload = UploadId::new_v4();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Where an upload that arrived whole waits (see `jobs::Ingest`); copied by the kernel.
    std::fs::copy(file, super::uploads::part_path(&uploads, upload))?;
    let size = std::fs::metadata(file)?.len() as i64;
    let migration = queued_upload(
        pool,
        &format!("hostile {name} {upload}"),
        upload,
        &name,
        size,
    )
    .await?;
    let node = format!("hostile-{upload}");
    let handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(Ingest {
            uploads_dir: uploads,
            max_bytes: u64::MAX,
            limits,
            providers: crate::providers::Registry::builtin(),
        }),
        Arc::new(Validate {
            findings_per_rule: limits.findings_per_rule,
            providers: crate::providers::Registry::builtin(),
        }),
    ];
    let workers =
        WorkerPool::start(pool.clone(), WorkerConfig::new(node.clone()), handlers).await?;
    jobs::enqueue(
        pool,
        &NewJob {
            kind: INGEST,
            migration_id: Some(migration),
            node: Some(node),
            payload: json!({ "upload_id": upload }),
            ..Default::default()
        },
    )
    .await?;
    let (state, error) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (state, error): (String, Option<String>) =
            sqlx::query_as("SELECT state, error FROM dump_uploads WHERE id = $1")
                .bind(upload)
                .fetch_one(pool)
                .await?;
        if state == "failed" {
            break (state, error);
        }
        let current: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dump_reports WHERE migration_id = $1 AND state = 'current')
                AND NOT EXISTS (SELECT 1 FROM jobs WHERE migration_id = $1 AND state IN ('queued', 'running'))",
        )
        .bind(migration)
        .fetch_one(pool)
        .await?;
        if state == "staged" && current {
            break (state, error);
        }
    };
    workers.shutdown().await;
    let (records, findings_stored, findings_not_kept): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT records FROM dump_uploads WHERE id = $1),
                (SELECT count(*) FROM dump_findings WHERE upload_id = $1),
                (SELECT coalesce(sum(count), 0)::bigint FROM dump_findings_not_kept WHERE upload_id = $1)",
    )
    .bind(upload)
    .fetch_one(pool)
    .await?;
    Ok(IngestOutcome {
        migration,
        upload,
        state,
        error,
        records,
        findings_stored,
        findings_not_kept,
    })
}

/// Removes what [`ingest_file`] left in the database.
pub async fn forget(pool: &PgPool, o: &IngestOutcome) -> Result<(), sqlx::Error> {
    for t in upload_tables() {
        sqlx::query(&format!("DELETE FROM {t} WHERE upload_id = $1"))
            .bind(o.upload)
            .execute(pool)
            .await?;
    }
    sqlx::query("DELETE FROM im_migrations WHERE id = $1")
        .bind(o.migration)
        .execute(pool)
        .await?;
    Ok(())
}

/// A scratch migration with one upload whose bytes have all arrived, queued for the ingest.
async fn queued_upload(
    pool: &PgPool,
    migration_name: &str,
    upload: UploadId,
    file_name: &str,
    size: i64,
) -> Result<MigrationId, sqlx::Error> {
    let migration = MigrationId::new_v4();
    // A target with rules of its own, so validation judges them as in a real migration.
    let providers = crate::providers::Registry::builtin();
    let target = providers
        .all()
        .find(|p| p.rules().is_some())
        .map_or("self_built", |p| p.id());
    sqlx::query(
        "INSERT INTO im_migrations (id, name, strategy, source, target) VALUES ($1, $2, 'forced_upgrade', 'self_built', $3)",
    )
    .bind(migration)
    .bind(migration_name)
    .bind(target)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, size_bytes, received_bytes, state)
         VALUES ($1, $2, $3, $4, $4, 'queued')",
    )
    .bind(upload)
    .bind(migration)
    .bind(file_name)
    .bind(size)
    .execute(pool)
    .await?;
    Ok(migration)
}
