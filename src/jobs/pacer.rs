//! Request pacing shared by every worker of every console process on the database: one GCRA
//! slot row per (target app, API) in `rate_slots`, taken by `rate_take()` (see the jobs
//! migration). A request waits for its slot, so the provider's quota holds in total however
//! many workers and processes send; a throttle answer halves the rate for everyone, which then
//! recovers by 2 % of the quota a second.

use sqlx::PgPool;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Pacer {
    pool: PgPool,
}

impl Pacer {
    pub fn new(pool: PgPool) -> Self {
        Pacer { pool }
    }

    /// The wait before one request to `key` at `qps` requests per second may start.
    pub async fn reserve(&self, key: &str, qps: f64) -> Result<Duration, sqlx::Error> {
        let interval = 1.0 / qps.max(0.01);
        let secs: f64 = sqlx::query_scalar("SELECT rate_take($1, $2)")
            .bind(key)
            .bind(interval)
            .fetch_one(&self.pool)
            .await?;
        Ok(Duration::from_secs_f64(secs.max(0.0)))
    }

    /// Waits for the next slot of `key`.
    pub async fn wait(&self, key: &str, qps: f64) -> Result<(), sqlx::Error> {
        let d = self.reserve(key, qps).await?;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        Ok(())
    }

    /// The provider answered "too many requests" on `key`.
    pub async fn throttled(&self, key: &str) -> Result<(), sqlx::Error> {
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
