//! The job system: work rows in PostgreSQL (`jobs`) that in-process workers claim, hold with a
//! lease and finish. Two console processes on one database share the work: a claim is one
//! `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, a lease is renewed by a heartbeat,
//! and any process's reaper hands back work whose lease ran out (its worker died).
//!
//! It is ours, not a queue crate's, because the console shows job rows, progress, pause, cancel
//! and retry, and those live in the same tables the imports write; the crates available for
//! sqlx 0.8 keep their rows to themselves.

pub mod pacer;
pub mod worker;

use crate::model::MigrationId;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use std::time::Duration;
use uuid::Uuid;

pub use worker::{Handler, JobContext, JobError, WorkerPool};

/// A job as its handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub migration_id: Option<MigrationId>,
    pub scope: Option<String>,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    pub checkpoint: Option<Value>,
}

/// A job to add.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub kind: &'static str,
    pub migration_id: Option<MigrationId>,
    pub scope: Option<String>,
    /// Only workers on this node may run it (an upload on its disk).
    pub node: Option<String>,
    pub payload: Value,
    pub priority: i32,
    /// Attempts before it ends `failed` (a crash, panic or retryable error uses one);
    /// None: [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<i32>,
}

/// Attempts a job gets unless it says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;

impl NewJob {
    pub fn new(kind: &'static str, payload: Value) -> Self {
        NewJob {
            kind,
            payload,
            ..Default::default()
        }
    }
}

pub async fn enqueue<'e>(db: impl PgExecutor<'e>, job: &NewJob) -> Result<i64, sqlx::Error> {
    let id = sqlx::query_scalar(
        "WITH j AS (
            INSERT INTO jobs (kind, migration_id, scope, node, payload, priority, max_attempts)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id)
         SELECT id FROM j, pg_notify('imshift_jobs', $1)",
    )
    .bind(job.kind)
    .bind(job.migration_id)
    .bind(&job.scope)
    .bind(&job.node)
    .bind(&job.payload)
    .bind(job.priority)
    .bind(job.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1))
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// Adds `job` unless one like it (same kind, migration and scope) is already in one of
/// `states` — a validation already waiting sees this change too; a run needs one supervisor.
pub async fn enqueue_unless(
    conn: &mut sqlx::PgConnection,
    job: &NewJob,
    states: &[&str],
) -> Result<bool, sqlx::Error> {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    let there: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = $1 AND migration_id IS NOT DISTINCT FROM $2
                        AND scope IS NOT DISTINCT FROM $3 AND state = ANY($4))",
    )
    .bind(job.kind)
    .bind(job.migration_id)
    .bind(&job.scope)
    .bind(&states)
    .fetch_one(&mut *conn)
    .await?;
    if !there {
        enqueue(&mut *conn, job).await?;
    }
    Ok(!there)
}

impl Job {
    /// A uuid the payload names under `key`, as the id it is (`UploadId`, `RunId`).
    pub fn uuid<T: From<Uuid>>(&self, key: &str) -> Result<T, worker::JobError> {
        self.payload
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<Uuid>().ok())
            .map(T::from)
            .ok_or_else(|| worker::JobError::Failed(format!("the job's payload has no {key}")))
    }
}

/// Claims the most urgent queued job of one of `kinds` that this node may run, leasing it to
/// `owner` for `lease`.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    node: &str,
    kinds: &[&str],
    lease: Duration,
) -> Result<Option<Job>, sqlx::Error> {
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    sqlx::query_as(
        "UPDATE jobs SET state = 'running', lease_owner = $1, ran_by = $1,
                lease_until = clock_timestamp() + make_interval(secs => $4),
                attempts = attempts + 1, started_at = coalesce(started_at, now()), control = NULL
         WHERE id = (
             SELECT id FROM jobs
             WHERE state = 'queued' AND run_after <= now() AND kind = ANY($3)
               AND (node IS NULL OR node = $2)
             ORDER BY priority DESC, run_after, id
             FOR UPDATE SKIP LOCKED
             LIMIT 1)
         RETURNING id, kind, migration_id, scope, payload, attempts, max_attempts, checkpoint",
    )
    .bind(owner)
    .bind(node)
    .bind(&kinds)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Fences a commit by the job's lease: on `conn` (the committing transaction), locks the job
/// row if `owner` still holds it for this attempt with a lease that has not run out. While
/// that lock is held no reaper can hand the job to another worker, so what commits with it was
/// done by the job's one rightful worker. False: the lease is gone; roll back.
pub async fn hold_lease(
    conn: &mut sqlx::PgConnection,
    job: &Job,
    owner: &str,
) -> Result<bool, sqlx::Error> {
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempts = $3
            AND state = 'running' AND lease_until > clock_timestamp()
         FOR UPDATE",
    )
    .bind(job.id)
    .bind(owner)
    .bind(job.attempts)
    .fetch_optional(conn)
    .await?;
    Ok(held.is_some())
}

/// What a heartbeat learned about a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Keep going.
    Held,
    /// Someone asked it to pause or cancel; stop at the next safe point.
    Pause,
    Cancel,
    /// The lease is gone (reaped, or the job was cancelled while queued): stop, write nothing.
    Lost,
}

/// Renews the lease and reads any pause or cancel request.
pub async fn heartbeat(
    pool: &PgPool,
    id: i64,
    owner: &str,
    lease: Duration,
) -> Result<Beat, sqlx::Error> {
    let control: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE jobs SET lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'
         RETURNING control",
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(match control {
        None => Beat::Lost,
        Some(Some(c)) if c == "cancel" => Beat::Cancel,
        Some(Some(_)) => Beat::Pause,
        Some(None) => Beat::Held,
    })
}

/// Saves where the job is, so a worker that picks it up after a crash resumes there.
pub async fn save_checkpoint(
    pool: &PgPool,
    id: i64,
    owner: &str,
    checkpoint: &Value,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET checkpoint = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(checkpoint)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// How a run of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Done,
    /// Stopped on request; `paused` jobs go back to the queue on resume.
    Paused,
    Cancelled,
    /// Try again after `after` (counts against max_attempts).
    Retry {
        error: String,
        after: Duration,
    },
    Failed {
        error: String,
    },
    /// The process is shutting down: queue it again at once, without using up an attempt.
    Release,
}

/// Records how the run ended, if this owner still holds the job. Returns false when the
/// lease was lost (another worker may have it now).
pub async fn finish(
    pool: &PgPool,
    id: i64,
    owner: &str,
    how: &Finish,
) -> Result<bool, sqlx::Error> {
    let (state, error, after) = match how {
        Finish::Done => ("done", None, 0.0),
        Finish::Paused => ("paused", None, 0.0),
        Finish::Cancelled => ("cancelled", None, 0.0),
        Finish::Retry { error, after } => ("queued", Some(error.as_str()), after.as_secs_f64()),
        Finish::Failed { error } => ("failed", Some(error.as_str()), 0.0),
        Finish::Release => ("released", None, 0.0),
    };
    let r = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN $3 = 'released' THEN 'queued'
                         WHEN $3 = 'queued' AND attempts >= max_attempts THEN 'failed' ELSE $3 END,
            attempts = CASE WHEN $3 = 'released' THEN greatest(attempts - 1, 0) ELSE attempts END,
            last_error = coalesce($4, last_error),
            run_after = now() + make_interval(secs => $5),
            lease_owner = NULL, lease_until = NULL, control = NULL,
            finished_at = CASE WHEN $3 IN ('done', 'failed', 'cancelled')
                                 OR ($3 = 'queued' AND attempts >= max_attempts) THEN now() END
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(state)
    .bind(error)
    .bind(after)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Hands back jobs whose worker stopped renewing its lease (the process died or hung): they
/// are queued again from their checkpoint, or failed once they used up their attempts, so a
/// job that kills its process (out of memory) cannot crash-loop the console forever.
pub async fn reap(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN control = 'cancel' THEN 'cancelled'
                         WHEN control = 'pause' THEN 'paused'
                         WHEN attempts >= max_attempts THEN 'failed'
                         ELSE 'queued' END,
            last_error = CASE WHEN control IS NULL
                              THEN 'its worker stopped answering during attempt ' || attempts
                                   || ' (the process crashed, hung or was killed, e.g. for using too much memory)'
                              ELSE last_error END,
            finished_at = CASE WHEN control IS NULL AND attempts >= max_attempts THEN now()
                               ELSE finished_at END,
            lease_owner = NULL, lease_until = NULL, control = NULL
         WHERE state = 'running' AND lease_until < clock_timestamp()",
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Pauses every unfinished job of `scope`: queued ones at once, running ones at their next
/// heartbeat.
pub async fn pause_scope<'e>(db: impl PgExecutor<'e>, scope: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN state = 'queued' THEN 'paused' ELSE state END,
            control = CASE WHEN state = 'running' THEN 'pause' ELSE control END
         WHERE scope = $1 AND state IN ('queued', 'running')",
    )
    .bind(scope)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Queues the paused jobs of `scope` again (and takes back a pause not yet seen).
pub async fn resume_scope(pool: &PgPool, scope: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN state = 'paused' THEN 'queued' ELSE state END,
            control = NULL, run_after = now()
         WHERE scope = $1 AND (state = 'paused' OR (state = 'running' AND control = 'pause'))",
    )
    .bind(scope)
    .execute(pool)
    .await?;
    notify(pool).await?;
    Ok(r.rows_affected())
}

/// Wakes idle workers (they also poll, so this only saves latency).
pub async fn notify<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('imshift_jobs', '')")
        .execute(db)
        .await
        .map(|_| ())
}

/// Cancels every unfinished job of `scope`.
pub async fn cancel_scope<'e>(db: impl PgExecutor<'e>, scope: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET
            state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
            control = CASE WHEN state = 'running' THEN 'cancel' ELSE control END,
            finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END
         WHERE scope = $1 AND state IN ('queued', 'running', 'paused')",
    )
    .bind(scope)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// Unfinished jobs of `scope` by state, for progress displays.
pub async fn scope_counts(pool: &PgPool, scope: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT state, count(*) FROM jobs WHERE scope = $1 GROUP BY state ORDER BY state",
    )
    .bind(scope)
    .fetch_all(pool)
    .await
}
