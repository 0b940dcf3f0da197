//! Sign-in throttling: after too many failures for one email (or from one address) within the
//! window, sign-in is refused until the oldest failure leaves the window. Kept in Postgres so
//! every console process on the database sees the same count.

use crate::web::{AppError, AppResult, Config};
use sqlx::PgPool;
use time::OffsetDateTime;

/// One address may try several emails; allow it more before refusing.
const IP_FACTOR: i64 = 4;

pub async fn check(pool: &PgPool, config: &Config, email: &str, ip: Option<&str>) -> AppResult<()> {
    let window = time::Duration::try_from(config.login_window).unwrap_or(time::Duration::MINUTE);
    let since = OffsetDateTime::now_utc() - window;
    let (count, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT count(*), min(at) FROM login_failures WHERE lower(email) = lower($1) AND at > $2",
    )
    .bind(email.trim())
    .bind(since)
    .fetch_one(pool)
    .await?;
    let (ip_count, ip_oldest): (i64, Option<OffsetDateTime>) = match ip {
        Some(ip) => {
            sqlx::query_as("SELECT count(*), min(at) FROM login_failures WHERE ip = $1 AND at > $2")
                .bind(ip)
                .bind(since)
                .fetch_one(pool)
                .await?
        }
        None => (0, None),
    };
    let blocked_since = if count >= config.login_max_failures {
        oldest
    } else if ip_count >= config.login_max_failures * IP_FACTOR {
        ip_oldest
    } else {
        return Ok(());
    };
    let free_at = blocked_since.unwrap_or_else(OffsetDateTime::now_utc) + window;
    let secs = (free_at - OffsetDateTime::now_utc()).whole_seconds().max(1) as u64;
    Err(AppError::TooManyRequests {
        message: format!(
            "Too many failed sign-ins. Try again in {} minute{}, or ask an admin to check the audit log.",
            secs.div_ceil(60),
            if secs.div_ceil(60) == 1 { "" } else { "s" }
        ),
        retry_after_secs: secs,
    })
}

pub async fn record_failure(pool: &PgPool, email: &str, ip: Option<&str>) -> AppResult<()> {
    sqlx::query("INSERT INTO login_failures (email, ip) VALUES ($1, $2)")
        .bind(email.trim())
        .bind(ip)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn clear(pool: &PgPool, email: &str) -> AppResult<()> {
    sqlx::query("DELETE FROM login_failures WHERE lower(email) = lower($1)")
        .bind(email.trim())
        .execute(pool)
        .await?;
    Ok(())
}
