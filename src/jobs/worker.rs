//! The worker pool a console process runs: claims jobs up to its concurrency, keeps each
//! one's lease alive with a heartbeat, tells the handler when to stop, records the end, and
//! reaps jobs whose worker died.

use super::{claim, finish, heartbeat, reap, Beat, Finish, Job};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Why a handler should stop before finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Pause,
    Cancel,
    /// The lease is gone: another worker may hold the job; write nothing more.
    Lost,
    /// The process is shutting down; the job goes back to the queue.
    Shutdown,
}

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (the database blinked, the provider is down).
    #[error("{error}")]
    Retry { error: String, after: Duration },
    /// Will fail the same way again; a person must look.
    #[error("{0}")]
    Failed(String),
    /// Stopped on request (see [`JobContext::stop`]).
    #[error("stopped: {0:?}")]
    Stopped(Stop),
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry {
            error: e.to_string(),
            after: Duration::from_secs(2),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::retry(format!("database: {e}"))
    }
}

/// What a handler gets: the job, the database, and a way to learn it should stop.
#[derive(Clone)]
pub struct JobContext {
    pub job: Job,
    pub pool: PgPool,
    pub owner: Arc<str>,
    stop: watch::Receiver<Option<Stop>>,
}

impl JobContext {
    /// Set once pause, cancel, shutdown or a lost lease has been seen (within a heartbeat).
    pub fn stop(&self) -> Option<Stop> {
        *self.stop.borrow()
    }

    /// `Err(Stopped)` when the handler should stop now: use at each safe point.
    pub fn check(&self) -> Result<(), JobError> {
        match self.stop() {
            Some(s) => Err(JobError::Stopped(s)),
            None => Ok(()),
        }
    }

    /// Resolves when a stop is requested (for racing a long wait against it).
    pub async fn stopped(&self) -> Stop {
        let mut rx = self.stop.clone();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                return Stop::Shutdown;
            }
        }
    }

    /// Sleeps for `d` unless told to stop first.
    pub async fn sleep(&self, d: Duration) -> Result<(), JobError> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            s = self.stopped() => Err(JobError::Stopped(s)),
        }
    }

    /// In the transaction that commits the job's work, last: `Err(Stopped(Lost))` unless this
    /// worker still holds the job's lease (see [`super::hold_lease`]); roll back on it.
    pub async fn hold_lease(&self, conn: &mut sqlx::PgConnection) -> Result<(), JobError> {
        if super::hold_lease(conn, &self.job, &self.owner).await? {
            Ok(())
        } else {
            Err(JobError::Stopped(Stop::Lost))
        }
    }

    pub async fn checkpoint(&self, value: &serde_json::Value) -> Result<(), JobError> {
        if super::save_checkpoint(&self.pool, self.job.id, &self.owner, value).await? {
            Ok(())
        } else {
            Err(JobError::Stopped(Stop::Lost))
        }
    }
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The `jobs.kind` this handler runs.
    fn kind(&self) -> &'static str;
    async fn run(&self, ctx: JobContext) -> Result<(), JobError>;
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs this process runs at once.
    pub concurrency: usize,
    /// Which machine this is, for jobs tied to a local disk.
    pub node: String,
    pub lease: Duration,
    /// How often leases are renewed and stop requests read.
    pub beat: Duration,
    /// How often this process looks for expired leases.
    pub reap_every: Duration,
    /// The wait after a panic before the next attempt; it doubles with each attempt.
    pub panic_backoff: Duration,
}

impl WorkerConfig {
    pub fn new(node: impl Into<String>) -> Self {
        WorkerConfig {
            concurrency: 8,
            node: node.into(),
            lease: Duration::from_secs(15),
            beat: Duration::from_secs(1),
            reap_every: Duration::from_secs(3),
            panic_backoff: Duration::from_secs(5),
        }
    }
}

/// A running pool; stops its jobs (they go back to the queue) on [`WorkerPool::shutdown`].
pub struct WorkerPool {
    pub id: Arc<str>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Periodic chores that live as long as the pool (see [`WorkerPool::attach`]).
    chores: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerPool {
    pub async fn start(
        pool: PgPool,
        config: WorkerConfig,
        handlers: Vec<Arc<dyn Handler>>,
    ) -> Result<WorkerPool, sqlx::Error> {
        let host = hostname();
        let pid = std::process::id();
        let id: Arc<str> =
            format!("{host}:{pid}:{}", &uuid::Uuid::new_v4().to_string()[..8]).into();
        sqlx::query("INSERT INTO workers (id, host, pid) VALUES ($1, $2, $3)")
            .bind(&*id)
            .bind(&host)
            .bind(pid as i32)
            .execute(&pool)
            .await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let handlers: HashMap<&'static str, Arc<dyn Handler>> =
            handlers.into_iter().map(|h| (h.kind(), h)).collect();
        let task = tokio::spawn(run(pool, config, handlers, id.clone(), shutdown_rx));
        Ok(WorkerPool {
            id,
            shutdown,
            task,
            chores: vec![],
        })
    }

    /// Ties a background chore (a periodic sweep) to the pool: it stops at shutdown.
    pub fn attach(&mut self, chore: tokio::task::JoinHandle<()>) {
        self.chores.push(chore);
    }

    /// Stops claiming, asks running jobs to stop and waits for them (they are queued again).
    pub async fn shutdown(self) {
        for c in &self.chores {
            c.abort();
        }
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

async fn run(
    pool: PgPool,
    config: WorkerConfig,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    id: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    let kinds: Vec<&str> = handlers.keys().copied().collect();
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut running = JoinSet::new();
    // Tells running jobs the process is stopping.
    let (stop_all, _) = watch::channel(false);
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => match l.listen("imshift_jobs").await {
            Ok(()) => Some(l),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let mut reap_tick = tokio::time::interval(config.reap_every);
    let mut alive_tick = tokio::time::interval(Duration::from_secs(5));
    let mut vacuum_tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        // Reap and report alive between claims; both are cheap single statements.
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = reap_tick.tick() => {
                match reap(&pool).await {
                    Ok(n) if n > 0 => tracing::warn!(jobs = n, "took back jobs whose worker stopped answering"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("reaper: {e}"),
                }
                continue;
            }
            _ = vacuum_tick.tick() => {
                // These few rows are rewritten many times a second (slots, leases); where
                // autovacuum is off or slow to reach them, their dead versions would pile up
                // and slow every request down. Cheap: the tables are tiny.
                let _ = sqlx::query("VACUUM (SKIP_LOCKED) rate_slots, jobs, workers")
                    .execute(&pool)
                    .await;
                continue;
            }
            _ = alive_tick.tick() => {
                let _ = sqlx::query("UPDATE workers SET heartbeat_at = now() WHERE id = $1")
                    .bind(&*id).execute(&pool).await;
                let _ = sqlx::query("DELETE FROM workers WHERE heartbeat_at < now() - interval '1 minute'")
                    .execute(&pool).await;
                continue;
            }
            permit = slots.clone().acquire_owned() => {
                let Ok(permit) = permit else { break };
                match claim(&pool, &id, &config.node, &kinds, config.lease).await {
                    Ok(Some(job)) => {
                        let handler = handlers[job.kind.as_str()].clone();
                        let ctx = (pool.clone(), id.clone(), config.clone(), stop_all.subscribe());
                        running.spawn(async move {
                            run_one(ctx.0, ctx.1, ctx.2, ctx.3, job, handler).await;
                            drop(permit);
                        });
                        continue;
                    }
                    Ok(None) => drop(permit),
                    Err(e) => {
                        drop(permit);
                        tracing::warn!("claiming a job: {e}");
                    }
                }
            }
        }
        // Nothing to do: wait for a notification, a poll interval, or shutdown.
        let wait = tokio::time::sleep(Duration::from_millis(500));
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = wait => {}
            _ = async {
                match listener.as_mut() {
                    Some(l) => { let _ = l.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    let _ = stop_all.send(true);
    while running.join_next().await.is_some() {}
    let _ = sqlx::query("DELETE FROM workers WHERE id = $1")
        .bind(&*id)
        .execute(&pool)
        .await;
}

async fn run_one(
    pool: PgPool,
    owner: Arc<str>,
    config: WorkerConfig,
    mut process_stop: watch::Receiver<bool>,
    job: Job,
    handler: Arc<dyn Handler>,
) {
    let (stop_tx, stop_rx) = watch::channel(None);
    let id = job.id;
    let kind = job.kind.clone();
    let attempt = job.attempts;
    let ctx = JobContext {
        job,
        pool: pool.clone(),
        owner: owner.clone(),
        stop: stop_rx,
    };
    let beat = {
        let (pool, owner) = (pool.clone(), owner.clone());
        let lease = config.lease;
        let every = config.beat;
        async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    r = process_stop.changed(), if !shutting_down => {
                        // Keep the lease while the handler winds down.
                        shutting_down = true;
                        if r.is_ok() {
                            let _ = stop_tx.send(Some(Stop::Shutdown));
                        }
                    }
                }
                let stop = match heartbeat(&pool, id, &owner, lease).await {
                    Ok(Beat::Held) => None,
                    Ok(Beat::Pause) => Some(Stop::Pause),
                    Ok(Beat::Cancel) => Some(Stop::Cancel),
                    Ok(Beat::Lost) => Some(Stop::Lost),
                    // The database may be back at the next beat; the lease has slack.
                    Err(e) => {
                        tracing::warn!(job = id, "heartbeat: {e}");
                        None
                    }
                };
                if let Some(s) = stop {
                    // Shutdown, once seen, is not overwritten by a pause.
                    if stop_tx.borrow().is_none() || s == Stop::Lost {
                        let _ = stop_tx.send(Some(s));
                    }
                }
            }
        }
    };
    let work = tokio::spawn({
        let handler = handler.clone();
        let ctx = ctx.clone();
        async move { handler.run(ctx).await }
    });
    let result = tokio::select! {
        r = work => r,
        _ = beat => unreachable!("the heartbeat loop never ends"),
    };
    let how = match result {
        Ok(Ok(())) => Finish::Done,
        Ok(Err(JobError::Stopped(Stop::Lost))) => {
            tracing::warn!(job = id, kind, "lost the lease; another worker takes over");
            return;
        }
        Ok(Err(JobError::Stopped(Stop::Pause))) => Finish::Paused,
        Ok(Err(JobError::Stopped(Stop::Cancel))) => Finish::Cancelled,
        Ok(Err(JobError::Stopped(Stop::Shutdown))) => Finish::Release,
        Ok(Err(JobError::Retry { error, after })) => {
            tracing::warn!(job = id, kind, "will retry: {error}");
            Finish::Retry { error, after }
        }
        Ok(Err(JobError::Failed(error))) => {
            tracing::error!(job = id, kind, "failed: {error}");
            Finish::Failed { error }
        }
        Err(panic) => {
            let error = format!("the handler panicked: {}", panic_message(panic));
            tracing::error!(job = id, kind, attempt, "{error}");
            // Counts as an attempt; after `max_attempts` the job ends failed (see `finish`).
            Finish::Retry {
                error,
                after: backoff(config.panic_backoff, attempt),
            }
        }
    };
    match finish(&pool, id, &owner, &how).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = id, kind, "finished after losing the lease"),
        Err(e) => tracing::warn!(job = id, kind, "recording the end: {e} (the reaper will)"),
    }
}

/// `base` doubled for each attempt after the first, at most five minutes.
fn backoff(base: Duration, attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 16) as u32;
    base.saturating_mul(1 << doublings)
        .min(Duration::from_secs(300))
}

/// What a panicking handler said, in words.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_backoff_doubles_per_attempt_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 3), Duration::from_secs(20));
        assert_eq!(backoff(base, 40), Duration::from_secs(300));
    }
}
