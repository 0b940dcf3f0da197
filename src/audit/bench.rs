//! `imshift bench audit`: fills a scratch database's audit log with realistic rows and times the
//! queries the Audit log page makes, first page and deep pages, with and without filters.

use super::page;
use crate::auth::Actor;
use crate::model::{AuditQuery, Role};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct Timing {
    pub label: String,
    pub rows: usize,
    pub median: Duration,
}

/// Adds rows until the log holds at least `rows`, in batches so memory stays flat.
pub async fn fill(pool: &PgPool, rows: i64) -> Result<i64, sqlx::Error> {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(pool)
        .await?;
    let mut added = have;
    while added < rows {
        let n = (rows - added).min(200_000);
        // 50 actors, 12 actions, targets spread over 10,000 names, a year of timestamps.
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, details, ip)
             SELECT now() - make_interval(secs => (($1 - g) * 31.5)),
                    'user' || (g % 50) || '@example.com',
                    (ARRAY['auth.login','auth.logout','auth.login_failed','team.invite_created',
                           'team.invite_accepted','team.role_changed','token.created','token.revoked',
                           'migration.created','dump.uploaded','import.launched','import.paused'])[1 + g % 12],
                    'target-' || (g % 10000),
                    jsonb_build_object('n', g),
                    '10.0.' || (g % 250) || '.1'
             FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) AS g",
        )
        .bind(rows)
        .bind(added)
        .bind(n)
        .execute(pool)
        .await?;
        added += n;
    }
    sqlx::query("ANALYZE audit_log").execute(pool).await?;
    Ok(added)
}

pub async fn run(pool: &PgPool) -> Result<Vec<Timing>, crate::service::AppError> {
    let actor = Actor {
        user_id: Uuid::nil(),
        email: "bench".into(),
        role: Role::Viewer,
        token_id: None,
        ip: None,
    };
    let min_id: i64 = sqlx::query_scalar("SELECT min(id) FROM audit_log")
        .fetch_one(pool)
        .await?;
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let cases: Vec<(&str, AuditQuery)> = vec![
        ("newest page, no filter", q(|_| {})),
        (
            "deepest page, no filter",
            AuditQuery {
                before: Some(min_id + 51),
                ..Default::default()
            },
        ),
        (
            "by actor",
            q(|q| q.actor = Some("user7@example.com".into())),
        ),
        ("by action", q(|q| q.action = Some("token.revoked".into()))),
        (
            "by target prefix",
            q(|q| q.target = Some("target-42".into())),
        ),
        (
            "by actor, deep page",
            AuditQuery {
                actor: Some("user7@example.com".into()),
                before: Some(min_id + 5_000),
                ..Default::default()
            },
        ),
        ("by time range (one day, 6 months ago)", {
            let day = time::OffsetDateTime::now_utc() - time::Duration::days(180);
            let d = day.date();
            AuditQuery {
                from: Some(d.to_string()),
                to: Some(d.to_string()),
                ..Default::default()
            }
        }),
        (
            "rare action + actor (sparse match)",
            q(|q| {
                q.actor = Some("user3@example.com".into());
                q.action = Some("auth.logout".into());
            }),
        ),
    ];
    let mut out = vec![];
    let mut times = vec![];
    for _ in 0..7 {
        let start = Instant::now();
        super::facets(pool, &actor).await?;
        times.push(start.elapsed());
    }
    times.sort();
    out.push(Timing {
        label: "filter choices (distinct actors, actions)".into(),
        rows: 0,
        median: times[3],
    });
    for (label, query) in cases {
        let mut times = vec![];
        let mut rows = 0;
        for _ in 0..7 {
            let start = Instant::now();
            rows = page(pool, &actor, &query).await?.entries.len();
            times.push(start.elapsed());
        }
        times.sort();
        out.push(Timing {
            label: label.to_string(),
            rows,
            median: times[times.len() / 2],
        });
    }
    Ok(out)
}
