//! Request pacing shared by every worker of every console process on the database: one GCRA
//! slot row per (target app, API) in `rate_slots`, taken by `rate_take()` (see the jobs
//! migration). A request waits for its slot, so the provider's quota holds in total however
//! many workers and processes send; a throttle answer halves the rate for everyone, which then
//! recovers by 2 % of the quota a second.
//!
//! Each process takes slots a few at a time (about 50 ms worth) and hands them to its senders
//! itself, so the shared row is written some twenty times a second, not once per request. The
//! sync sender's pacer takes only as many as are waiting and lets a short burst go at once
//! ([`Pacer::as_needed`]), so that neither slots reserved ahead nor strict spacing make a
//! message wait.

use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Slots this process holds for one key: the next at `next`, then every `spacing`.
struct Block {
    next: Instant,
    spacing: Duration,
    left: u32,
    /// How early a slot may be used (the burst the quota allows).
    early: Duration,
}

/// Requests a sync pacer lets go at once when the quota has been idle (never more than a
/// second's quota): the providers count their quotas as token buckets, so a relay batch's
/// ten messages of ten chats need not wait for each other.
const SYNC_BURST: u32 = 10;

#[derive(Clone)]
pub struct Pacer {
    pool: PgPool,
    blocks: Arc<Mutex<HashMap<String, Block>>>,
    /// Requests waiting for a slot here right now.
    waiting: Arc<AtomicU32>,
    /// Take only as many slots as requests are waiting, and let up to [`SYNC_BURST`] go at
    /// once (see [`Pacer::as_needed`]).
    as_needed: bool,
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
            waiting: Arc::default(),
            as_needed: false,
        }
    }

    /// A pacer for senders whose requests come a few at a time below the quota (the sync
    /// sender). It takes from the shared row only as many slots as requests are waiting (a
    /// block at most): a whole block taken for them mostly went stale unused, and the shared
    /// schedule had moved on by the block's length, so the next request waited for that (a
    /// median of 12 ms per message at 1,000 events/s). And it uses a slot up to
    /// [`SYNC_BURST`] − 1 spacings early (GCRA's burst tolerance: however the slots are
    /// shared, no window of time gets more than its quota and that burst), so ten messages
    /// arriving together are not spread over ten spacings. The import keeps whole blocks and
    /// strict spacing: its workers keep the quota busy, and nothing waits on one message.
    pub fn as_needed(pool: PgPool) -> Self {
        Pacer {
            as_needed: true,
            ..Pacer::new(pool)
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
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let mut blocks = self.blocks.lock().await;
        // This request and those queued behind it for the lock.
        let waiting = self.waiting.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        if let Some(b) = blocks.get_mut(key) {
            // A slot gone stale by more than two spacings (and the burst allowed) is dropped:
            // using it late would send a burst above the quota.
            if b.left > 0 && b.next + b.spacing * 2 + b.early >= now {
                let slot = b.next;
                b.next += b.spacing;
                b.left -= 1;
                return Ok(slot.saturating_duration_since(now));
            }
        }
        let count = if self.as_needed {
            block_size(qps).min(waiting.max(1))
        } else {
            block_size(qps)
        };
        let (wait, spacing) = self.take(key, qps, count).await?;
        let early = if self.as_needed {
            spacing * (SYNC_BURST.min(qps as u32).max(1) - 1)
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        let first = (now + wait).checked_sub(early).unwrap_or(now);
        blocks.insert(
            key.to_string(),
            Block {
                next: first + spacing,
                spacing,
                left: count - 1,
                early,
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
