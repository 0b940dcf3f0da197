//! Sync gauges for `/metrics`, read from the database when scraped: what waits, how old the
//! oldest waiting event is, dead letters, apply lag over the last five minutes and the last
//! canary, per migration and direction. Read at scrape time, not counted in memory, because
//! every console process sends and a gauge must say the same whichever process is scraped.

use sqlx::PgPool;

#[derive(sqlx::FromRow)]
struct Row {
    migration_id: crate::model::MigrationId,
    from_side: String,
    enabled: bool,
    backlog: i64,
    oldest_waiting_secs: Option<f64>,
    dead: i64,
    apply_p99_secs: Option<f64>,
}

/// Sets the gauges of every direction that was ever switched (a handful of rows; each figure
/// comes from an index range of its own direction; the canary as the Sync tab reads it).
pub async fn refresh(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.migration_id, d.from_side, d.enabled,
                w.backlog, w.oldest_waiting_secs, x.dead, l.apply_p99_secs
         FROM sync_directions d
         CROSS JOIN LATERAL (
             SELECT count(*) AS backlog,
                    extract(epoch FROM now() - min(received_at))::float8 AS oldest_waiting_secs
             FROM sync_inbound i
             WHERE i.migration_id = d.migration_id AND i.side = d.from_side
               AND i.state IN ('queued', 'sending')) w
         CROSS JOIN LATERAL (
             SELECT count(*) AS dead FROM sync_inbound i
             WHERE i.migration_id = d.migration_id AND i.side = d.from_side
               AND i.state = 'dead') x
         CROSS JOIN LATERAL (
             SELECT percentile_cont(0.99) WITHIN GROUP
                        (ORDER BY extract(epoch FROM i.sent_at - i.received_at))::float8
                        AS apply_p99_secs
             FROM sync_inbound i
             WHERE i.migration_id = d.migration_id AND i.side = d.from_side
               AND i.received_at > now() - interval '5 minutes' AND i.sent_at IS NOT NULL) l",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let side = r.from_side.parse().ok();
        let canary = match side {
            Some(side) => super::canary::last(pool, r.migration_id, side).await?,
            None => None,
        };
        let labels = [
            ("migration", r.migration_id.to_string()),
            ("from", r.from_side),
        ];
        let gauge = |name: &'static str, v: f64| metrics::gauge!(name, &labels).set(v);
        gauge("imshift_sync_enabled", if r.enabled { 1.0 } else { 0.0 });
        gauge("imshift_sync_backlog", r.backlog as f64);
        gauge(
            "imshift_sync_oldest_waiting_seconds",
            r.oldest_waiting_secs.unwrap_or(0.0),
        );
        gauge("imshift_sync_dead_letters", r.dead as f64);
        // No sample (nothing applied in 5 minutes) is 0, not the last value seen: with a
        // backlog, the oldest-waiting gauge is the one that rises.
        gauge(
            "imshift_sync_apply_lag_p99_seconds",
            r.apply_p99_secs.unwrap_or(0.0),
        );
        if let Some(c) = canary {
            let age = time::OffsetDateTime::now_utc() - c.sent_at;
            gauge("imshift_sync_canary_age_seconds", age.as_seconds_f64());
            // -1: the last canary has not come through (yet, or at all).
            gauge(
                "imshift_sync_canary_round_trip_seconds",
                c.round_trip_ms.map_or(-1.0, |ms| ms / 1000.0),
            );
        }
    }
    Ok(())
}
