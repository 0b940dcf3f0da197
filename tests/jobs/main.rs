//! The job system on PostgreSQL: exactly-once claims across worker pools, leases taken back
//! from a dead worker, pause and cancel reaching a running job, checkpoints, and the shared
//! request pacer.

use imshift::jobs::pacer::Pacer;
use imshift::jobs::worker::WorkerConfig;
use imshift::jobs::{self, Handler, JobContext, JobError, NewJob, WorkerPool};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records each run of a job; `steps` jobs sleep between steps, checking for stop requests.
struct Recorder;

#[async_trait::async_trait]
impl Handler for Recorder {
    fn kind(&self) -> &'static str {
        "test.record"
    }
    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let steps = ctx.job.payload["steps"].as_i64().unwrap_or(0);
        let from = ctx
            .job
            .checkpoint
            .as_ref()
            .and_then(|c| c["step"].as_i64())
            .unwrap_or(0);
        for step in from..steps {
            ctx.sleep(Duration::from_millis(100)).await?;
            ctx.checkpoint(&json!({ "step": step + 1 })).await?;
            // The first attempt of a `fail_once` job breaks half way.
            if ctx.job.payload["fail_once"] == true && ctx.job.attempts == 1 && step == steps / 2 {
                return Err(JobError::Retry {
                    error: "flaky".into(),
                    after: Duration::ZERO,
                });
            }
        }
        sqlx::query("INSERT INTO seen (job_id, owner, resumed_from) VALUES ($1, $2, $3)")
            .bind(ctx.job.id)
            .bind(&*ctx.owner)
            .bind(from)
            .execute(&ctx.pool)
            .await?;
        Ok(())
    }
}

async fn setup(pool: &PgPool) {
    sqlx::query("CREATE TABLE seen (job_id bigint, owner text, resumed_from bigint)")
        .execute(pool)
        .await
        .unwrap();
}

async fn pool_of(pool: &PgPool, node: &str) -> WorkerPool {
    let mut c = WorkerConfig::new(node);
    c.concurrency = 4;
    c.lease = Duration::from_secs(2);
    c.reap_every = Duration::from_millis(300);
    WorkerPool::start(pool.clone(), c, vec![Arc::new(Recorder)])
        .await
        .unwrap()
}

async fn state(pool: &PgPool, id: i64) -> String {
    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_state(pool: &PgPool, id: i64, want: &str, secs: f64) -> Duration {
    let start = Instant::now();
    while state(pool, id).await != want {
        assert!(
            start.elapsed().as_secs_f64() < secs,
            "job {id} not {want} within {secs} s (is {})",
            state(pool, id).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn two_pools_run_every_job_exactly_once(pool: PgPool) {
    setup(&pool).await;
    for _ in 0..200 {
        jobs::enqueue(&pool, &NewJob::new("test.record", json!({})))
            .await
            .unwrap();
    }
    let (a, b) = (pool_of(&pool, "n").await, pool_of(&pool, "n").await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'done'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if done == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of 200 done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
    let (runs, distinct, owners): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT job_id), count(DISTINCT owner) FROM seen")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((runs, distinct), (200, 200), "each job ran once");
    assert_eq!(owners, 2, "both pools took work");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_job_whose_worker_died_is_taken_back_and_resumes_from_its_checkpoint(pool: PgPool) {
    setup(&pool).await;
    let id = jobs::enqueue(&pool, &NewJob::new("test.record", json!({"steps": 6})))
        .await
        .unwrap();
    // A worker claims it, gets half way, and is never heard from again.
    let job = jobs::claim(
        &pool,
        "ghost",
        "n",
        &["test.record"],
        Duration::from_secs(1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(job.id, id);
    assert!(
        jobs::save_checkpoint(&pool, id, "ghost", &json!({"step": 3}))
            .await
            .unwrap()
    );
    let live = pool_of(&pool, "n").await;
    wait_state(&pool, id, "done", 15.0).await;
    live.shutdown().await;
    let (owner, from): (String, i64) = sqlx::query_as("SELECT owner, resumed_from FROM seen")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(owner, "ghost");
    assert_eq!(from, 3, "resumed where the dead worker left off");
    // The dead worker's late answer changes nothing.
    assert!(!jobs::finish(
        &pool,
        id,
        "ghost",
        &jobs::Finish::Failed {
            error: "late".into()
        }
    )
    .await
    .unwrap());
    assert_eq!(state(&pool, id).await, "done");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn pause_and_cancel_reach_a_running_job_within_two_seconds(pool: PgPool) {
    setup(&pool).await;
    let job = |steps| NewJob {
        scope: Some("run-1".into()),
        ..NewJob::new("test.record", json!({"steps": steps}))
    };
    let id = jobs::enqueue(&pool, &job(200)).await.unwrap();
    let w = pool_of(&pool, "n").await;
    wait_state(&pool, id, "running", 5.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    jobs::pause_scope(&pool, "run-1").await.unwrap();
    let took = wait_state(&pool, id, "paused", 5.0).await;
    assert!(took < Duration::from_millis(2500), "pause took {took:?}");
    let step: i64 =
        sqlx::query_scalar("SELECT (checkpoint->>'step')::bigint FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(step > 0);
    // Paused jobs stay put until resumed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(state(&pool, id).await, "paused");
    jobs::resume_scope(&pool, "run-1").await.unwrap();
    wait_state(&pool, id, "running", 5.0).await;
    jobs::cancel_scope(&pool, "run-1").await.unwrap();
    let took = wait_state(&pool, id, "cancelled", 5.0).await;
    assert!(took < Duration::from_millis(2500), "cancel took {took:?}");
    w.shutdown().await;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seen, 0, "a cancelled job never finished");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_failed_attempt_retries_from_its_checkpoint(pool: PgPool) {
    setup(&pool).await;
    let id = jobs::enqueue(
        &pool,
        &NewJob::new("test.record", json!({"steps": 6, "fail_once": true})),
    )
    .await
    .unwrap();
    let w = pool_of(&pool, "n").await;
    wait_state(&pool, id, "done", 15.0).await;
    w.shutdown().await;
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(error.as_deref(), Some("flaky"));
    let from: i64 = sqlx::query_scalar("SELECT resumed_from FROM seen")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        from, 4,
        "the second attempt started after the last checkpoint"
    );
}

/// Every sender's slots, in time order, and the seconds from the first to the last.
async fn sorted_slots(tasks: Vec<tokio::task::JoinHandle<Vec<Instant>>>) -> (Vec<Instant>, f64) {
    let mut slots: Vec<Instant> = vec![];
    for t in tasks {
        slots.extend(t.await.unwrap());
    }
    slots.sort();
    let span = (*slots.last().unwrap() - slots[0]).as_secs_f64();
    (slots, span)
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_pacer_spaces_requests_across_pacers_and_slows_after_a_throttle(pool: PgPool) {
    let qps = 50.0;
    let start = Instant::now();
    let mut tasks = vec![];
    // Two pacers (as if two processes), eight senders.
    for _ in 0..8 {
        let pacer = Pacer::new(pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut slots = vec![];
            for _ in 0..20 {
                let d = pacer.reserve("test:api", qps).await.unwrap();
                slots.push(Instant::now() + d);
                tokio::time::sleep(d).await;
            }
            slots
        }));
    }
    let (slots, span) = sorted_slots(tasks).await;
    // 160 requests at 50/s take 3.2 s; none two closer than the interval (less clock noise).
    assert!(span >= 159.0 / qps * 0.98, "160 slots in {span:.2} s");
    let tight = slots
        .windows(2)
        .filter(|w| (w[1] - w[0]).as_secs_f64() < 0.5 / qps)
        .count();
    assert!(tight <= 2, "{tight} slots closer than half the interval");
    assert!(start.elapsed().as_secs_f64() < 10.0);

    // A throttle holds everyone back a second and halves the rate.
    let p = Pacer::new(pool.clone());
    p.throttled("test:api").await.unwrap();
    let d = p.reserve("test:api", qps).await.unwrap();
    assert!(
        d >= Duration::from_millis(900),
        "after a throttle the next slot waits: {d:?}"
    );
    tokio::time::sleep(d).await;
    let a = p.reserve("test:api", qps).await.unwrap();
    let b = p.reserve("test:api", qps).await.unwrap();
    let gap = (b - a).as_secs_f64();
    assert!(
        gap > 1.6 / qps,
        "slots are further apart after a throttle: {gap}"
    );
    assert_eq!(p.throttles("test:api").await.unwrap(), 1);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_sync_pacer_below_the_quota_sends_at_once_and_keeps_the_quota_under_a_burst(
    pool: PgPool,
) {
    // 1,000/s: a whole block is 50 slots, 50 ms of the quota.
    let qps = 1000.0;
    let pacer = Pacer::as_needed(pool.clone());
    // One message every 5 ms, a fifth of the quota: none waits for slots reserved ahead.
    let mut waits = vec![];
    for _ in 0..40 {
        waits.push(pacer.reserve("sync:api", qps).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let longest = waits.iter().max().unwrap();
    assert!(
        *longest < Duration::from_millis(5),
        "a message below the quota waited {longest:?}"
    );
    // Ten at once after a pause go at once (a token bucket's burst), the rest by the quota.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let burst =
        futures_util::future::join_all((0..20).map(|_| pacer.reserve("sync:api", 100.0))).await;
    let mut burst: Vec<Duration> = burst.into_iter().map(Result::unwrap).collect();
    burst.sort();
    assert!(burst[9] < Duration::from_millis(5), "{burst:?}");
    // The 20th: ten spacings after the burst (less the time the test took to ask).
    assert!(burst[19] >= Duration::from_millis(70), "{burst:?}");

    // Two hundred at once from four senders (as if four processes), beside an import's pacer:
    // no half second gets more than its quota, the burst, and the two slots a pacer may use
    // late.
    let qps = 200.0;
    let mut tasks = vec![];
    for n in 0..5 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let pacer = if n == 0 {
                Pacer::new(pool)
            } else {
                Pacer::as_needed(pool)
            };
            let mut sends = vec![];
            for _ in 0..40 {
                let pacer = pacer.clone();
                sends.push(tokio::spawn(async move {
                    let d = pacer.reserve("sync:burst", qps).await.unwrap();
                    Instant::now() + d
                }));
            }
            let mut slots = vec![];
            for s in sends {
                slots.push(s.await.unwrap());
            }
            slots
        }));
    }
    let (slots, span) = sorted_slots(tasks).await;
    assert!(span >= 189.0 / qps * 0.98, "200 slots in {span:.2} s");
    let busiest = (0..slots.len())
        .map(|i| {
            slots[i..]
                .iter()
                .take_while(|s| (**s - slots[i]).as_secs_f64() < 0.5)
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 100 + 10 + 2, "{busiest} slots in half a second");
}

// ---- Bounded attempts, and the upload an ingest job was for -------------------------------

/// A migration and an upload waiting to be staged, its bytes in PostgreSQL.
async fn queued_upload(pool: &PgPool, dump: &[u8]) -> (uuid::Uuid, uuid::Uuid) {
    let (m, u) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    sqlx::query(
        "INSERT INTO im_migrations (id, name, strategy, source, target)
         VALUES ($1, 'jobs', 'forced_upgrade', 'self_built', 'tencent')",
    )
    .bind(m)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO dump_uploads (id, migration_id, file_name, size_bytes, received_bytes, state)
         VALUES ($1, $2, 'dump.jsonl', $3, $3, 'queued')",
    )
    .bind(u)
    .bind(m)
    .bind(dump.len() as i64)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO dump_upload_pieces (upload_id, byte_offset, data) VALUES ($1, 0, $2)")
        .bind(u)
        .bind(dump)
        .execute(pool)
        .await
        .unwrap();
    (m, u)
}

async fn ingest_job(pool: &PgPool, m: uuid::Uuid, u: uuid::Uuid, attempts: i32) -> i64 {
    jobs::enqueue(
        pool,
        &NewJob {
            kind: imshift::dumps::jobs::INGEST,
            migration_id: Some(m.into()),
            payload: json!({ "upload_id": u }),
            max_attempts: Some(attempts),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn upload_state(pool: &PgPool, u: uuid::Uuid) -> (String, Option<String>, i64) {
    sqlx::query_as(
        "SELECT state, error, (SELECT count(*) FROM dump_upload_pieces WHERE upload_id = $1)
         FROM dump_uploads WHERE id = $1",
    )
    .bind(u)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Stands in for an ingest that dies of its input every time (a decompression bomb, a bug).
struct PanickingIngest;

#[async_trait::async_trait]
impl Handler for PanickingIngest {
    fn kind(&self) -> &'static str {
        imshift::dumps::jobs::INGEST
    }
    async fn run(&self, _ctx: JobContext) -> Result<(), JobError> {
        panic!("reading the upload ran out of room");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_job_that_keeps_panicking_ends_failed_after_its_attempts_and_the_upload_says_why(
    pool: PgPool,
) {
    let (m, u) = queued_upload(&pool, b"{\"kind\":\"account\",\"id\":\"a\"}\n").await;
    let id = ingest_job(&pool, m, u, 3).await;
    let mut c = WorkerConfig::new("n");
    c.panic_backoff = Duration::from_millis(50);
    let w = WorkerPool::start(pool.clone(), c, vec![Arc::new(PanickingIngest)])
        .await
        .unwrap();
    wait_state(&pool, id, "failed", 20.0).await;
    // No fourth try comes later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.shutdown().await;
    let (attempts, error): (i32, String) =
        sqlx::query_as("SELECT attempts, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    assert!(error.contains("ran out of room"), "{error}");
    let (state, why, pieces) = upload_state(&pool, u).await;
    assert_eq!(state, "failed");
    let why = why.unwrap();
    assert!(
        why.contains("after 3 attempts")
            && why.contains("panicked: reading the upload ran out of room"),
        "{why}"
    );
    assert_eq!(pieces, 0, "a failed upload's bytes are let go");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_ingest_whose_worker_keeps_dying_ends_failed_and_the_upload_says_why(pool: PgPool) {
    let (m, u) = queued_upload(&pool, b"{\"kind\":\"account\",\"id\":\"a\"}\n").await;
    let id = ingest_job(&pool, m, u, 3).await;
    // Each attempt's process is killed (as for memory) before it can say anything.
    for attempt in 1..=3 {
        let job = jobs::claim(
            &pool,
            &format!("doomed-{attempt}"),
            "n",
            &[imshift::dumps::jobs::INGEST],
            Duration::from_millis(100),
        )
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("attempt {attempt} finds the job queued"));
        assert_eq!(job.attempts, attempt);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(jobs::reap(&pool).await.unwrap(), 1);
    }
    assert_eq!(state(&pool, id).await, "failed");
    assert!(jobs::claim(
        &pool,
        "next",
        "n",
        &[imshift::dumps::jobs::INGEST],
        Duration::from_secs(1)
    )
    .await
    .unwrap()
    .is_none());
    let (state, why, _) = upload_state(&pool, u).await;
    assert_eq!(state, "failed");
    let why = why.unwrap();
    assert!(
        why.contains("after 3 attempts") && why.contains("stopped answering during attempt 3"),
        "{why}"
    );
}

/// Backends of this database waiting for a lock another holds.
async fn lock_waiters(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_ingest_worker_past_its_lease_does_not_commit(pool: PgPool) {
    let dump = b"{\"kind\":\"account\",\"id\":\"a\"}\n{\"kind\":\"account\",\"id\":\"b\"}\n";
    let (m, u) = queued_upload(&pool, dump).await;
    let id = ingest_job(&pool, m, u, 5).await;
    // The commit will wait on the report row the test holds, as on any slow moment.
    sqlx::query("INSERT INTO dump_reports (migration_id, state) VALUES ($1, 'current')")
        .bind(m)
        .execute(&pool)
        .await
        .unwrap();
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dump_reports WHERE migration_id = $1 FOR UPDATE")
        .bind(m)
        .execute(&mut *hold)
        .await
        .unwrap();
    // A worker whose heartbeat never runs (a frozen process): its 1 s lease runs out.
    let dir = std::env::temp_dir().join(format!("imshift-jobs-{}", uuid::Uuid::new_v4()));
    let mut c = WorkerConfig::new("n");
    c.lease = Duration::from_secs(1);
    c.beat = Duration::from_secs(3600);
    c.reap_every = Duration::from_secs(3600);
    let w = WorkerPool::start(
        pool.clone(),
        c,
        vec![Arc::new(imshift::dumps::jobs::Ingest {
            uploads_dir: dir.clone(),
            max_bytes: 1 << 20,
            limits: Default::default(),
            providers: Default::default(),
        })],
    )
    .await
    .unwrap();
    let start = Instant::now();
    while lock_waiters(&pool).await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the ingest never reached its commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Meanwhile its lease was reaped and another worker took the job.
    let taken = sqlx::query(
        "UPDATE jobs SET lease_owner = 'successor', attempts = attempts + 1,
                lease_until = now() + interval '1 minute'
         WHERE id = $1 AND state = 'running' AND lease_until < clock_timestamp()",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1);
    hold.commit().await.unwrap();
    // The stale worker wakes up and must roll back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.shutdown().await;
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM staged_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(staged, 0, "nothing staged by a worker that lost its lease");
    let (state, _, pieces) = upload_state(&pool, u).await;
    assert_eq!(
        state, "ingesting",
        "the upload is still the successor's to stage"
    );
    assert_eq!(pieces, 1, "its bytes are still there for the successor");
    let owner: String = sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(owner, "successor");
    let _ = std::fs::remove_dir_all(dir);
}
