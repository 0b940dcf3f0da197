//! A run's throughput, second by second: the runner adds its requests, throttle answers and
//! failed records to per-second buckets as they happen and writes them with each flush of its
//! results (one upsert per flush, in the same transaction), so the Import tab can draw
//! requests per second per API against the quota, and failures, over the whole run — during
//! it, after a reload, and once it is over.

use crate::auth::Actor;
use crate::model::{
    ImportThroughput, MigrationId, Permission, RunId, ThroughputPoint, ThroughputSeries,
};
use crate::service::AppResult;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;

/// Counts per Unix second, waiting for the next flush.
#[derive(Default, Debug)]
pub struct Samples(BTreeMap<i64, [i64; 3]>);

fn now_sec() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Samples {
    /// Adds to the current second.
    pub fn add(&mut self, requests: i64, throttled: i64, failed: i64) {
        if requests == 0 && throttled == 0 && failed == 0 {
            return;
        }
        let b = self.0.entry(now_sec()).or_default();
        b[0] += requests;
        b[1] += throttled;
        b[2] += failed;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the buckets to the run's samples of `api`.
    pub async fn write(
        self,
        tx: &mut Transaction<'_, Postgres>,
        run_id: RunId,
        api: &str,
    ) -> Result<(), sqlx::Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let (mut sec, mut req, mut thr, mut fail) = (vec![], vec![], vec![], vec![]);
        for (s, [r, t, f]) in self.0 {
            sec.push(s);
            req.push(r as i32);
            thr.push(t as i32);
            fail.push(f as i32);
        }
        sqlx::query(
            "INSERT INTO import_throughput (run_id, api, sec, requests, throttled, failed)
             SELECT $1, $2, t.s, t.r, t.t, t.f
             FROM unnest($3::bigint[], $4::int[], $5::int[], $6::int[]) AS t(s, r, t, f)
             ON CONFLICT (run_id, api, sec) DO UPDATE
                SET requests = import_throughput.requests + EXCLUDED.requests,
                    throttled = import_throughput.throttled + EXCLUDED.throttled,
                    failed = import_throughput.failed + EXCLUDED.failed",
        )
        .bind(run_id)
        .bind(api)
        .bind(&sec)
        .bind(&req)
        .bind(&thr)
        .bind(&fail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// At most this many buckets per series, whatever the run's length: an hour-long run is drawn
/// from 15-second buckets, not 3,600 points per API.
const MAX_BUCKETS: i64 = 240;

/// The bucket width that keeps `span` seconds within [`MAX_BUCKETS`].
pub fn bucket_secs(span: i64) -> i64 {
    const STEPS: [i64; 9] = [1, 2, 5, 10, 15, 30, 60, 120, 300];
    STEPS
        .into_iter()
        .find(|s| span <= s * MAX_BUCKETS)
        .unwrap_or_else(|| (span + MAX_BUCKETS - 1) / MAX_BUCKETS)
}

/// The run's throughput from its start to its end (or now).
pub async fn read(
    s: &crate::service::Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
) -> AppResult<ImportThroughput> {
    let pool = &s.pool;
    actor.require(Permission::Read)?;
    // Refuses a run of another migration, or of a migration the caller may not see.
    super::status(s, actor, migration_id, run_id).await?;
    let (start, end): (i64, i64) = sqlx::query_as(
        "SELECT extract(epoch FROM created_at)::bigint,
                greatest(extract(epoch FROM coalesce(finished_at, now()))::bigint,
                         coalesce((SELECT max(sec) FROM import_throughput WHERE run_id = $1), 0))
         FROM import_runs WHERE id = $1",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await?;
    let span = (end - start + 1).max(1);
    let bucket = bucket_secs(span);
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT api, (sec - $2) / $3 * $3 AS at, sum(requests)::bigint, sum(throttled)::bigint,
                sum(failed)::bigint
         FROM import_throughput WHERE run_id = $1
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(run_id)
    .bind(start)
    .bind(bucket)
    .fetch_all(pool)
    .await?;
    let limits =
        crate::migration::limits::effective(pool, &s.config.providers, migration_id).await?;
    let mut series: Vec<ThroughputSeries> = vec![];
    for (api, at, requests, throttled, failed) in rows {
        if series.last().is_none_or(|s| s.api != api) {
            series.push(ThroughputSeries {
                qps: limits.qps(&api).unwrap_or(0) as f64,
                api: api.clone(),
                requests: 0,
                throttled: 0,
                failed: 0,
                points: vec![],
            });
        }
        let s = series.last_mut().expect("pushed above");
        s.requests += requests;
        s.throttled += throttled;
        s.failed += failed;
        s.points.push(ThroughputPoint {
            at: at.max(0),
            requests,
            throttled,
            failed,
        });
    }
    Ok(ImportThroughput {
        run: run_id,
        start,
        span_secs: (span + bucket - 1) / bucket * bucket,
        bucket_secs: bucket,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_any_run_within_the_chart() {
        assert_eq!(bucket_secs(1), 1);
        assert_eq!(bucket_secs(240), 1);
        assert_eq!(bucket_secs(241), 2);
        assert_eq!(bucket_secs(3600), 15);
        for span in [1, 59, 600, 7200, 86_400, 1_000_000] {
            assert!(span <= bucket_secs(span) * MAX_BUCKETS, "{span}");
        }
    }

    #[test]
    fn samples_add_up_in_their_second() {
        let mut s = Samples::default();
        s.add(1, 0, 0);
        s.add(2, 1, 3);
        s.add(0, 0, 0);
        let total: [i64; 3] =
            s.0.values()
                .fold([0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
        assert_eq!(total, [3, 1, 3]);
    }
}
