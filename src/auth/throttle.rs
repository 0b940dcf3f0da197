//! Sign-in throttling, kept in Postgres so every console process on the database counts the
//! same attempts.
//!
//! Policy: an email gets `login_max_failures` free attempts, a client address four times as
//! many. After that each attempt must wait `login_delay`, doubled per further failure, capped
//! at `login_window`: attempts slow down, the right password is never locked out for longer
//! than the current wait. A bucket forgets after it has been quiet for the wait plus
//! `login_window`; a success clears the email's bucket. An owner who cannot get a turn (an
//! attacker taking every slot) resets the password with `imshift user reset-password`, which
//! clears the bucket too.
//!
//! An attempt is reserved, under the bucket rows' locks, before the password is checked: 30
//! parallel wrong passwords cost at most `login_max_failures` password checks.

use crate::audit::{self, Who};
use crate::service::{AppError, AppResult, Config};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;

/// One address may try several emails; allow it more before slowing it.
const IP_FACTOR: i64 = 4;

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn window(config: &Config) -> time::Duration {
    time::Duration::try_from(config.login_window).unwrap_or(time::Duration::MINUTE)
}

/// How long a bucket with `failures` must wait after its last attempt.
pub fn wait_after(failures: i64, free: i64, config: &Config) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(30) as u32;
    config
        .login_delay
        .saturating_mul(1u32 << doublings)
        .min(config.login_window)
}

/// A reserved attempt: give it back with [`succeeded`] when the password was right.
pub struct Reservation {
    email_key: String,
    ip_key: Option<String>,
}

/// Counts this attempt before the password is checked, or refuses it with the time to wait.
pub async fn reserve(
    pool: &PgPool,
    config: &Config,
    email: &str,
    ip: Option<&str>,
) -> AppResult<Reservation> {
    let reservation = Reservation {
        email_key: email_key(email),
        ip_key: ip.map(ip_key),
    };
    let mut keys: Vec<(String, i64)> = vec![(
        reservation.email_key.clone(),
        config.login_max_failures.max(1),
    )];
    if let Some(k) = &reservation.ip_key {
        keys.push((k.clone(), config.login_max_failures.max(1) * IP_FACTOR));
    }
    // Locks are always taken in key order, so concurrent sign-ins cannot deadlock.
    keys.sort();
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, last_at)
         SELECT k, 0, now() FROM unnest($1::text[]) AS k ORDER BY k
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<(String, i32, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT key, failures, last_at, now() FROM login_throttle
         WHERE key = ANY($1) ORDER BY key FOR UPDATE",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    let window = window(config);
    let mut refuse_for = Duration::ZERO;
    let mut next = Vec::with_capacity(rows.len());
    for (key, failures, last_at, now) in rows {
        let free = keys
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(config.login_max_failures, |(_, f)| *f);
        let wait =
            time::Duration::try_from(wait_after(failures.into(), free, config)).unwrap_or(window);
        // A bucket quiet for its wait plus a whole window starts again.
        let failures = if now - last_at >= wait + window {
            0
        } else {
            failures
        };
        let wait = wait_after(failures.into(), free, config);
        let open_at = last_at + time::Duration::try_from(wait).unwrap_or(window);
        if failures > 0 && now < open_at {
            let left = (open_at - now).unsigned_abs();
            refuse_for = refuse_for.max(left);
        }
        next.push((key, failures + 1));
    }
    if !refuse_for.is_zero() {
        tx.rollback().await?;
        let secs = refuse_for.as_secs_f64().ceil().max(1.0) as u64;
        return Err(AppError::TooManyRequests {
            message: format!(
                "Too many failed sign-ins. Try again in {}. If you are locked out, an \
                 operator can run `imshift user reset-password --email …` on the server.",
                in_words(secs)
            ),
            retry_after_secs: secs,
        });
    }
    for (key, failures) in next {
        sqlx::query("UPDATE login_throttle SET failures = $2, last_at = now() WHERE key = $1")
            .bind(key)
            .bind(failures)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(reservation)
}

fn in_words(secs: u64) -> String {
    if secs < 90 {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let m = secs.div_ceil(60);
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    }
}

/// The password was right: the email starts afresh and the address gets its attempt back.
pub async fn succeeded(pool: &PgPool, r: &Reservation) -> AppResult<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(&r.email_key)
        .execute(pool)
        .await?;
    if let Some(k) = &r.ip_key {
        sqlx::query(
            "UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE key = $1",
        )
        .bind(k)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Forgets an email's failures (after an operator reset its password).
pub async fn clear(pool: &PgPool, email: &str) -> AppResult<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(email_key(email))
        .execute(pool)
        .await?;
    Ok(())
}

/// Why a sign-in failed, for the audit log's count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    WrongPassword,
    Throttled,
}

/// Counts a failed sign-in for its email and address, and writes the audit row when none was
/// written for the pair within the window: one row per pair and window, saying how many
/// attempts it stands for. Also prunes what the window has left behind.
pub async fn report_failure(
    pool: &PgPool,
    config: &Config,
    email: &str,
    ip: Option<&str>,
    failure: Failure,
) -> AppResult<()> {
    prune(pool, config).await?;
    let (wrong, throttled) = match failure {
        Failure::WrongPassword => (1, 0),
        Failure::Throttled => (0, 1),
    };
    let mut tx = pool.begin().await?;
    let (wrong, throttled, first_at, due): (i32, i32, OffsetDateTime, bool) = sqlx::query_as(
        "INSERT INTO login_failure_reports AS r (email, ip, wrong, throttled, first_at, last_at)
         VALUES (lower($1), $2, $3, $4, now(), now())
         ON CONFLICT (email, ip) DO UPDATE SET
             wrong = r.wrong + EXCLUDED.wrong,
             throttled = r.throttled + EXCLUDED.throttled,
             first_at = coalesce(r.first_at, now()),
             last_at = now()
         RETURNING wrong, throttled, first_at,
                   (reported_at IS NULL OR reported_at <= now() - $5::interval)",
    )
    .bind(email.trim())
    .bind(ip.unwrap_or_default())
    .bind(wrong)
    .bind(throttled)
    .bind(window(config))
    .fetch_one(&mut *tx)
    .await?;
    if due {
        write_report(&mut tx, email.trim(), ip, wrong, throttled, first_at).await?;
        sqlx::query(
            "UPDATE login_failure_reports
             SET wrong = 0, throttled = 0, first_at = NULL, reported_at = now()
             WHERE email = lower($1) AND ip = $2",
        )
        .bind(email.trim())
        .bind(ip.unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_report(
    tx: &mut sqlx::PgConnection,
    email: &str,
    ip: Option<&str>,
    wrong: i32,
    throttled: i32,
    since: OffsetDateTime,
) -> AppResult<()> {
    let reason = if wrong > 0 {
        "wrong email or password"
    } else {
        "throttled"
    };
    audit::record(
        tx,
        &Who::anonymous(ip.filter(|i| !i.is_empty()).map(str::to_string)),
        "auth.login_failed",
        email,
        json!({
            "reason": reason,
            "attempts": wrong + throttled,
            "wrong_password": wrong,
            "throttled": throttled,
            "since": since.unix_timestamp(),
        }),
    )
    .await
}

/// The failures of this email and address not yet in the audit log, which the successful
/// sign-in's row then reports.
pub async fn take_unreported(pool: &PgPool, email: &str, ip: Option<&str>) -> AppResult<i32> {
    let n: Option<i32> = sqlx::query_scalar(
        "UPDATE login_failure_reports AS r SET wrong = 0, throttled = 0, first_at = NULL
         FROM (SELECT email, ip, wrong + throttled AS n FROM login_failure_reports
               WHERE email = lower($1) AND ip = $2 FOR UPDATE) old
         WHERE r.email = old.email AND r.ip = old.ip
         RETURNING old.n",
    )
    .bind(email.trim())
    .bind(ip.unwrap_or_default())
    .fetch_optional(pool)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Drops buckets and reports the window has left behind; a report still holding attempts is
/// written to the audit log first (its pair's last row is at least a window old by then).
pub async fn prune(pool: &PgPool, config: &Config) -> AppResult<()> {
    let window = window(config);
    let mut tx = pool.begin().await?;
    // Buckets wait at most a window, and forget after their wait plus a window.
    sqlx::query("DELETE FROM login_throttle WHERE last_at < now() - 2 * $1::interval")
        .bind(window)
        .execute(&mut *tx)
        .await?;
    let left: Vec<(String, String, i32, i32, Option<OffsetDateTime>)> = sqlx::query_as(
        "DELETE FROM login_failure_reports WHERE last_at < now() - $1::interval
         RETURNING email, ip, wrong, throttled, first_at",
    )
    .bind(window)
    .fetch_all(&mut *tx)
    .await?;
    for (email, ip, wrong, throttled, first_at) in left {
        if wrong + throttled > 0 {
            let since = first_at.unwrap_or_else(OffsetDateTime::now_utc);
            write_report(&mut tx, &email, Some(&ip), wrong, throttled, since).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_attempts_and_stop_at_the_window() {
        let mut c = Config::for_url("http://x");
        c.login_delay = Duration::from_secs(1);
        c.login_window = Duration::from_secs(60);
        assert_eq!(wait_after(4, 5, &c), Duration::ZERO);
        assert_eq!(wait_after(5, 5, &c), Duration::from_secs(1));
        assert_eq!(wait_after(6, 5, &c), Duration::from_secs(2));
        assert_eq!(wait_after(8, 5, &c), Duration::from_secs(8));
        assert_eq!(wait_after(12, 5, &c), Duration::from_secs(60));
        assert_eq!(wait_after(1_000, 5, &c), Duration::from_secs(60));
    }
}
