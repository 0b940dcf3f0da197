//! Sync gauges for `/metrics`, read from the database when scraped: what waits, how old the
//! oldest waiting event is, dead letters, apply lag over the last five minutes and the last
//! canary, per migration and direction. Read at scrape time, not counted in memory, because
//! every console process sends and a gauge must say the same whichever process is scraped.

use sqlx::PgPool;

#[derive(sqlx::FromRow)]
struct Row {
    migration_id: uuid::Uuid,
    from_side: String,
    enabled: bool,
    backlog: i64,
    oldest_waiting_secs: Option<f64>,
    dead: i64,
    apply_p99_secs: Option<f64>,
    canary_age_secs: Option<f64>,
    canary_round_trip_secs: Option<f64>,
}

/// Sets the gauges of every direction that was ever switched (a handful of rows; each figure
/// comes from an index range of its own direction).
pub async fn refresh(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.migration_id, d.from_side, d.enabled,
                w.backlog, w.oldest_waiting_secs, x.dead, l.apply_p99_secs,
                c.canary_age_secs, c.canary_round_trip_secs
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
               AND i.received_at > now() - interval '5 minutes' AND i.sent_at IS NOT NULL) l
         LEFT JOIN LATERAL (
             SELECT extract(epoch FROM now() - c.sent_at)::float8 AS canary_age_secs,
                    (SELECT extract(epoch FROM e.sent_at - c.sent_at)::float8
                     FROM sync_inbound e
                     WHERE e.migration_id = c.migration_id AND e.side = c.from_side
                       AND e.received_at >= c.sent_at - interval '5 seconds'
                       AND e.data->'body'->>'text' = $1 || c.token
                     LIMIT 1) AS canary_round_trip_secs
             FROM sync_canaries c
             WHERE c.migration_id = d.migration_id AND c.from_side = d.from_side
             ORDER BY c.sent_at DESC LIMIT 1) c ON true",
    )
    .bind(super::canary::PREFIX)
    .fetch_all(pool)
    .await?;
    for r in rows {
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
        if let Some(age) = r.canary_age_secs {
            gauge("imshift_sync_canary_age_seconds", age);
            // -1: the last canary has not come through (yet, or at all).
            gauge(
                "imshift_sync_canary_round_trip_seconds",
                r.canary_round_trip_secs.unwrap_or(-1.0),
            );
        }
    }
    Ok(())
}
