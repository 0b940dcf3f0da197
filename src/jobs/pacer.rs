//! Request pacing shared by every worker of every console process on the database: one GCRA
//! slot row per (target app, API) in `rate_slots`, taken by `rate_take()` (see the jobs
//! migration). A request waits for its slot, so the provider's quota holds in total however
//! many workers and processes send; a throttle answer halves the rate for everyone, which then
//! recovers by 2 % of the quota a second.
//!
//! Each process takes slots a few at a time (about 50 ms worth) and hands them to its senders
//! itself, so the shared row is written some twenty times a second, not once per request.

use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Slots this process holds for one key: the next at `next`, then every `spacing`.
struct Block {
    next: Instant,
    spacing: Duration,
    left: u32,
}

#[derive(Clone)]
pub struct Pacer {
    pool: PgPool,
    blocks: Arc<Mutex<HashMap<String, Block>>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

/// Slots per trip to the database: about 50 ms of the quota, at least one.
fn block_size(qps: f64) -> u32 {
    (qps * 0.05).clamp(1.0, 50.0) as u32
}

impl Pacer {
    pub fn new(pool: PgPool) -> Self {
        Pacer {
            pool,
            blocks: Arc::default(),
        }
    }

    /// Takes `count` slots from the shared row: the wait before the first, and their spacing.
    async fn take(
        &self,
        key: &str,
        qps: f64,
        count: u32,
    ) -> Result<(Duration, Duration), sqlx::Error> {
        let interval = 1.0 / qps.max(0.01);
        let (wait, spacing): (f64, f64) =
            sqlx::query_as("SELECT wait, spacing FROM rate_take($1, $2, $3)")
                .bind(key)
                .bind(interval)
                .bind(count as i32)
                .fetch_one(&self.pool)
                .await?;
        Ok((
            Duration::from_secs_f64(wait.max(0.0)),
            Duration::from_secs_f64(spacing.max(0.0)),
        ))
    }

    /// The wait before one request to `key` at `qps` requests per second may start.
    pub async fn reserve(&self, key: &str, qps: f64) -> Result<Duration, sqlx::Error> {
        // The lock is held across the refill, so one sender refills while the others wait
        // for the block it brings.
        let mut blocks = self.blocks.lock().await;
        let now = Instant::now();
        if let Some(b) = blocks.get_mut(key) {
            // A slot gone stale by more than two spacings is dropped: using it late would send
            // a burst above the quota.
            if b.left > 0 && b.next + b.spacing * 2 >= now {
                let slot = b.next;
                b.next += b.spacing;
                b.left -= 1;
                return Ok(slot.saturating_duration_since(now));
            }
        }
        let count = block_size(qps);
        let (wait, spacing) = self.take(key, qps, count).await?;
        let first = Instant::now() + wait;
        blocks.insert(
            key.to_string(),
            Block {
                next: first + spacing,
                spacing,
                left: count - 1,
            },
        );
        Ok(first.saturating_duration_since(Instant::now()))
    }

    /// Waits for the next slot of `key`.
    pub async fn wait(&self, key: &str, qps: f64) -> Result<(), sqlx::Error> {
        let d = self.reserve(key, qps).await?;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        Ok(())
    }

    /// The provider answered "too many requests" on `key`: everyone slows down, and the slots
    /// this process holds are given up.
    pub async fn throttled(&self, key: &str) -> Result<(), sqlx::Error> {
        self.blocks.lock().await.remove(key);
        sqlx::query("SELECT rate_throttled($1)")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Throttle answers seen on `key` so far.
    pub async fn throttles(&self, key: &str) -> Result<i64, sqlx::Error> {
        Ok(
            sqlx::query_scalar("SELECT throttles FROM rate_slots WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }
}
