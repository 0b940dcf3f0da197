//! One import task: a slice of one phase (a run of ordinals, or a few owners or groups). It
//! reads its staged records, skips those already done in this run (so a task picked up again
//! after a crash resumes where it was), prepares each record's request part, and sends
//! batches paced by the shared limiter: retryable answers back off with jitter, throttles
//! slow everyone down, and a refused record is recorded with the provider's code and words.

use super::plan::Phase;
use super::target::{Failure, ImportTarget, Item, Outcome, Prepared, Support};
use super::targets::Targets;
use crate::jobs::pacer::Pacer;
use crate::jobs::{Handler, JobContext, JobError};
use crate::model::{MigrationId, RunId, UploadId};
use crate::providers::retry::{self, Decision};
use crate::providers::ErrorClass;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const TASK: &str = "import.task";

/// Which rows a task takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Selector {
    Ords {
        upload: UploadId,
        from: i32,
        to: i32,
    },
    Keys {
        keys: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskPayload {
    pub run_id: RunId,
    pub phase: Phase,
    pub selector: Selector,
    /// Send again the records that failed in this run.
    #[serde(default)]
    pub retry: bool,
}

/// Requests of one task in flight at once (the limiter paces them; this only hides latency):
/// enough for the quota at 100 ms a request, so one task alone keeps its API at its quota
/// on a distant target or a busy machine, and at least 8, at most 32. Ordered phases stay at
/// 8: each of their requests commits its results before the next, and more of those at once
/// only queue on the phase's counters and the connection pool.
fn in_flight(qps: f64, ordered: bool) -> usize {
    if ordered {
        return 8;
    }
    ((qps * 0.1).ceil() as usize).clamp(8, 32)
}

pub struct ImportTask {
    pub targets: Targets,
    pub pacer: Pacer,
}

/// One result row on its way to `import_results`.
struct ResultRow {
    upload: UploadId,
    ord: i32,
    state: &'static str,
    sent: Value,
    code: Option<i64>,
    message: Option<String>,
    /// Requests that carried this record in this attempt (0: decided without a request).
    tries: i32,
    /// The record's key and the id the target made for it (its answer's `made`), for the id
    /// map.
    made: Option<(String, String)>,
}

/// Results waiting to be written, and the request counters that go with them.
#[derive(Default)]
struct Pending {
    rows: Vec<ResultRow>,
    requests: i64,
    throttled: i64,
    samples: super::throughput::Samples,
}

struct Run {
    pool: PgPool,
    run_id: RunId,
    phase: Phase,
    api: String,
    pending: Mutex<Pending>,
    last_flush: Mutex<Instant>,
}

impl Run {
    async fn push(&self, rows: Vec<ResultRow>) -> Result<(), sqlx::Error> {
        let due = {
            let mut p = self.pending.lock().await;
            let failed = rows.iter().filter(|r| r.state == "failed").count() as i64;
            p.samples.add(0, 0, failed);
            p.rows.extend(rows);
            p.rows.len() >= 200
                || self.last_flush.lock().await.elapsed() > Duration::from_millis(500)
        };
        if due {
            self.flush().await?;
        }
        Ok(())
    }

    async fn count(&self, requests: i64, throttled: i64) {
        let mut p = self.pending.lock().await;
        p.requests += requests;
        p.throttled += throttled;
        p.samples.add(requests, throttled, 0);
    }

    /// Writes what is pending: the results (each a checkpoint) and the phase's counters.
    async fn flush(&self) -> Result<(), sqlx::Error> {
        let p = std::mem::take(&mut *self.pending.lock().await);
        *self.last_flush.lock().await = Instant::now();
        if p.rows.is_empty() && p.requests == 0 && p.throttled == 0 {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // A result lost with a database crash is resent, and the provider's dedupe absorbs it.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        if !p.rows.is_empty() {
            let (mut u, mut o, mut st, mut se, mut c, mut m, mut n) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            let (mut olds, mut news) = (vec![], vec![]);
            // One row per old id in a statement: ON CONFLICT cannot touch a row twice. A group
            // history batch maps every message, so look them up by hash.
            let mut at: std::collections::HashMap<String, usize> = Default::default();
            for r in p.rows {
                if let Some((old, new)) = r.made {
                    match at.get(&old) {
                        Some(&i) => news[i] = new,
                        None => {
                            at.insert(old.clone(), olds.len());
                            olds.push(old);
                            news.push(new);
                        }
                    }
                }
                u.push(r.upload);
                o.push(r.ord);
                st.push(r.state);
                se.push(r.sent);
                c.push(r.code);
                m.push(r.message);
                n.push(r.tries);
            }
            // `attempts` counts the requests that carried the record, over every retry.
            sqlx::query(
                "INSERT INTO import_results (run_id, phase, upload_id, ord, state, sent, code, message, attempts)
                 SELECT $1, $2, t.u, t.o, t.st, t.se, t.c, t.m, t.n
                 FROM unnest($3::uuid[], $4::int[], $5::text[], $6::jsonb[], $7::bigint[], $8::text[], $9::int[])
                      AS t(u, o, st, se, c, m, n)
                 ON CONFLICT (run_id, phase, upload_id, ord) DO UPDATE
                    SET state = EXCLUDED.state, sent = EXCLUDED.sent, code = EXCLUDED.code,
                        message = EXCLUDED.message, attempts = import_results.attempts + EXCLUDED.attempts,
                        at = now()",
            )
            .bind(self.run_id)
            .bind(self.phase.as_str())
            .bind(&u)
            .bind(&o)
            .bind(&st)
            .bind(&se)
            .bind(&c)
            .bind(&m)
            .bind(&n)
            .execute(&mut *tx)
            .await?;
            if !olds.is_empty() {
                sqlx::query(
                    "INSERT INTO import_id_map (migration_id, kind, old_id, new_id, run_id)
                     SELECT (SELECT migration_id FROM import_runs WHERE id = $1), $2, t.o, t.n, $1
                     FROM unnest($3::text[], $4::text[]) AS t(o, n)
                     ON CONFLICT (migration_id, kind, old_id) DO UPDATE
                        SET new_id = EXCLUDED.new_id, run_id = EXCLUDED.run_id, at = now()",
                )
                .bind(self.run_id)
                .bind(self.phase.kind().as_str())
                .bind(&olds)
                .bind(&news)
                .execute(&mut *tx)
                .await?;
            }
        }
        p.samples.write(&mut tx, self.run_id, &self.api).await?;
        if p.requests > 0 || p.throttled > 0 {
            sqlx::query(
                "UPDATE import_phases SET requests = requests + $3, throttled = throttled + $4
                 WHERE run_id = $1 AND phase = $2",
            )
            .bind(self.run_id)
            .bind(self.phase.as_str())
            .bind(p.requests)
            .bind(p.throttled)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

fn row(item: &Item, prepared: Option<&Prepared>, outcome: Outcome, tries: i32) -> ResultRow {
    let mut sent = prepared.map(|p| p.sent.clone()).unwrap_or(Value::Null);
    let mut made = None;
    let (state, code, message) = match outcome {
        Outcome::Sent(extra) => {
            if let Some(new) = extra.get("made").and_then(Value::as_str) {
                // `made_for` names the record when the batch key does not (a group's
                // messages share their group's key).
                let old = extra.get("made_for").and_then(Value::as_str);
                made = Some((old.unwrap_or(&item.key).to_string(), new.to_string()));
            }
            if let (Value::Object(s), Value::Object(e)) = (&mut sent, extra) {
                s.extend(e);
            }
            ("sent", None, None)
        }
        Outcome::Failed { code, message } => ("failed", code, Some(message)),
        Outcome::Skipped(why) => ("skipped", None, Some(why)),
    };
    ResultRow {
        upload: item.upload_id,
        ord: item.ord,
        state,
        sent,
        code,
        message,
        tries,
        made,
    }
}

/// The task's rows with what this run already did with them.
async fn fetch(
    pool: &PgPool,
    p: &TaskPayload,
    uploads: &[UploadId],
) -> Result<Vec<(Item, Option<String>, Vec<String>)>, sqlx::Error> {
    let phase = p.phase;
    let selector = match &p.selector {
        Selector::Ords { .. } => "s.upload_id = $4 AND s.ord BETWEEN $5 AND $6".to_string(),
        Selector::Keys { .. } => format!("{} = ANY($7)", phase.key()),
    };
    // The result is looked up per row by its whole key: a join here is at the mercy of table
    // statistics, and with none (autovacuum off, a table just loaded) it scans every result of
    // the phase for each row.
    let refs: Vec<&str> = phase.needs().iter().map(|(_, e)| *e).collect();
    let sql = format!(
        "SELECT s.upload_id, s.ord, {key} AS key, s.record::text AS record,
                (SELECT r.state FROM import_results r WHERE r.run_id = $2 AND r.phase = $3
                   AND r.upload_id = s.upload_id AND r.ord = s.ord) AS done,
                coalesce((SELECT r.attempts FROM import_results r WHERE r.run_id = $2
                   AND r.phase = $3 AND r.upload_id = s.upload_id AND r.ord = s.ord), 0) AS tries,
                ARRAY[{refs}]::text[] AS refs
         {from_where} AND {selector}
         ORDER BY {order}",
        key = phase.key(),
        refs = refs.join(", "),
        from_where = phase.from_where(),
        order = phase.order(),
    );
    let (upload, from, to, keys) = match &p.selector {
        Selector::Ords { upload, from, to } => (Some(*upload), *from, *to, vec![]),
        Selector::Keys { keys } => (None, 0, 0, keys.clone()),
    };
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        UploadId,
        i32,
        String,
        String,
        Option<String>,
        i32,
        Vec<String>,
    )> = sqlx::query_as(&sql)
        .bind(uploads)
        .bind(p.run_id)
        .bind(phase.as_str())
        .bind(upload)
        .bind(from)
        .bind(to)
        .bind(&keys)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(upload_id, ord, key, record, state, tries_before, refs)| {
            let done = matches!(state.as_deref(), Some("sent") | Some("skipped"));
            (
                Item {
                    upload_id,
                    ord,
                    key,
                    record: serde_json::from_str(&record).unwrap_or(Value::Null),
                    context: Value::Null,
                    done,
                    tries_before,
                },
                state,
                refs,
            )
        })
        .collect())
}

/// For each item, the first account or group it needs that this run did not import (its
/// record failed, was kept aside by validation, or is not in the dumps). Phases whose
/// dependency the target skips altogether check nothing.
async fn missing_needs(
    pool: &PgPool,
    run_id: RunId,
    phase: Phase,
    uploads: &[UploadId],
    refs: &[Vec<String>],
) -> Result<Vec<Option<String>>, sqlx::Error> {
    let mut out = vec![None; refs.len()];
    for (i, (dep, _)) in phase.needs().iter().enumerate() {
        let checked: bool = sqlx::query_scalar(
            "SELECT coalesce((SELECT state NOT IN ('skipped', 'cancelled') FROM import_phases
                              WHERE run_id = $1 AND phase = $2), false)",
        )
        .bind(run_id)
        .bind(dep.as_str())
        .fetch_one(pool)
        .await?;
        if !checked {
            continue;
        }
        let mut ids: Vec<String> = refs.iter().filter_map(|r| r.get(i).cloned()).collect();
        ids.sort();
        ids.dedup();
        let (table, _) = crate::dumps::stage::table(dep.kind());
        let imported: std::collections::HashSet<String> = sqlx::query_scalar(&format!(
            "SELECT x FROM unnest($3::text[]) AS x WHERE EXISTS (
                 SELECT 1 FROM {table} s JOIN import_results r
                     ON r.run_id = $1 AND r.phase = $4 AND r.upload_id = s.upload_id AND r.ord = s.ord
                 WHERE s.upload_id = ANY($2) AND {key} = x AND {sent})",
            key = dep.key(),
            sent = super::sent_sql(),
        ))
        .bind(run_id)
        .bind(uploads)
        .bind(&ids)
        .bind(dep.as_str())
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        for (slot, r) in out.iter_mut().zip(refs) {
            if slot.is_some() {
                continue;
            }
            if let Some(id) = r.get(i).filter(|id| !imported.contains(*id)) {
                let what = if *dep == Phase::Groups {
                    "group"
                } else {
                    "account"
                };
                *slot = Some(format!(
                    "not sent: it needs the {what} `{id}`, which was not imported in this run (see the {} phase, or the Dumps tab if validation kept it aside)",
                    dep.label().to_lowercase()
                ));
            }
        }
    }
    Ok(out)
}

/// What a phase needs to know about its keys from elsewhere.
async fn context(
    pool: &PgPool,
    run_id: RunId,
    phase: Phase,
    uploads: &[UploadId],
    keys: Vec<String>,
) -> Result<HashMap<String, Value>, sqlx::Error> {
    let rows: Vec<(String, Value)> = match phase {
        // A group is created before its first message and its first member.
        Phase::Groups => sqlx::query_as(
            "SELECT g, json_build_object('first_activity', least(
                 (SELECT min(m.sent_at) FROM staged_messages m
                   WHERE m.upload_id = ANY($1) AND m.conv = 'group' AND m.to_id = g),
                 (SELECT min(mm.joined_at) FROM staged_members mm
                   WHERE mm.upload_id = ANY($1) AND mm.group_id = g)))::jsonb
             FROM unnest($2::text[]) AS g",
        )
        .bind(uploads)
        .bind(&keys)
        .fetch_all(pool)
        .await?,
        // Members go into what the target made of their group (a target that picks its own
        // group ids answered one, in this run or an earlier one) and are added by its owner.
        Phase::Members => sqlx::query_as(
            "SELECT k, json_build_object('group', json_build_object(
                 'tid', (SELECT m.new_id FROM import_id_map m
                         WHERE m.migration_id = (SELECT migration_id FROM import_runs WHERE id = $1)
                           AND m.kind = 'group' AND m.old_id = k),
                 'owner', (SELECT g.owner FROM staged_groups g
                           WHERE g.upload_id = ANY($2) AND g.group_id = k LIMIT 1)))::jsonb
             FROM unnest($3::text[]) AS k",
        )
        .bind(run_id)
        .bind(uploads)
        .bind(&keys)
        .fetch_all(pool)
        .await?,
        // History follows the creation time the groups phase gave the group.
        Phase::GroupHistory => sqlx::query_as(&format!(
            "SELECT g.group_id, json_build_object('create_time', (r.sent->>'CreateTime')::bigint)::jsonb
             FROM import_results r JOIN staged_groups g ON g.upload_id = r.upload_id AND g.ord = r.ord
             WHERE r.run_id = $1 AND r.phase = 'groups' AND {} AND g.group_id = ANY($2)",
            super::sent_sql()
        ))
        .bind(run_id)
        .bind(&keys)
        .fetch_all(pool)
        .await?,
        _ => vec![],
    };
    Ok(rows.into_iter().collect())
}

#[async_trait::async_trait]
impl Handler for ImportTask {
    fn kind(&self) -> &'static str {
        TASK
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let p: TaskPayload = serde_json::from_value(ctx.job.payload.clone())
            .map_err(|e| JobError::Failed(format!("unreadable task: {e}")))?;
        let pool = &ctx.pool;
        let Some((migration_id, uploads)) = super::run_info(pool, p.run_id).await? else {
            return Ok(());
        };
        let target = match self.targets.get(migration_id).await {
            Ok(t) => t,
            Err(why) => {
                super::pause_for(pool, p.run_id, &why).await?;
                return Err(JobError::Stopped(crate::jobs::worker::Stop::Pause));
            }
        };
        let Support::Api { api, batch, qps } = target.support(p.phase) else {
            return Ok(());
        };
        let mut items = fetch(pool, &p, &uploads).await?;
        if items.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<String> = items.iter().map(|(i, _, _)| i.key.clone()).collect();
        keys.dedup();
        let ctx_by_key = context(pool, p.run_id, p.phase, &uploads, keys).await?;
        for (item, _, _) in &mut items {
            if let Some(c) = ctx_by_key.get(&item.key) {
                item.context = c.clone();
            }
        }
        let refs: Vec<Vec<String>> = items.iter().map(|(_, _, r)| r.clone()).collect();
        let missing = missing_needs(pool, p.run_id, p.phase, &uploads, &refs).await?;
        // A normal task leaves failed records alone; a retry task sends exactly those.
        let send_it = |state: &Option<String>| match state.as_deref() {
            None => true,
            Some("failed") => p.retry,
            _ => false,
        };
        let wanted: Vec<bool> = items.iter().map(|(_, s, _)| send_it(s)).collect();
        let items: Vec<Item> = items.into_iter().map(|(i, _, _)| i).collect();
        let run = Arc::new(Run {
            pool: pool.clone(),
            run_id: p.run_id,
            phase: p.phase,
            api: api.to_string(),
            pending: Mutex::default(),
            last_flush: Mutex::new(Instant::now()),
        });
        let mut prepared = target.prepare(p.phase, &items);
        for (r, why) in prepared.iter_mut().zip(missing) {
            if let Some(message) = why {
                *r = Err(Outcome::Failed {
                    code: None,
                    message,
                });
            }
        }
        let mut lanes: Vec<(String, Vec<Prepared>)> = vec![];
        let mut now_rows = vec![];
        for (i, r) in prepared.into_iter().enumerate() {
            if !wanted[i] {
                continue;
            }
            match r {
                Err(outcome) => now_rows.push(row(&items[i], None, outcome, 0)),
                Ok(prep) => {
                    // A request holds one key's records where the key is a parameter of the
                    // request; otherwise records of any keys share a request.
                    let key = if p.phase.key_in_request() {
                        &items[i].key
                    } else {
                        ""
                    };
                    // One-key-at-a-time phases keep a key in one lane.
                    match lanes.last_mut() {
                        Some((k, v)) if k == key => v.push(prep),
                        _ => lanes.push((key.to_string(), vec![prep])),
                    }
                }
            }
        }
        run.push(now_rows).await?;
        let sequential = p.phase.one_key_at_a_time();
        let resumed = ctx.job.attempts > 1 || p.retry;
        // Single-record phases: every record is its own lane; others: a key's records.
        let lanes: Vec<(String, Vec<Vec<Prepared>>)> = lanes
            .into_iter()
            .flat_map(|(key, preps)| {
                let mut batches = vec![];
                let mut cur = vec![];
                for prep in preps {
                    cur.push(prep);
                    if cur.len() >= batch.max(1) {
                        batches.push(std::mem::take(&mut cur));
                    }
                }
                if !cur.is_empty() {
                    batches.push(cur);
                }
                if sequential {
                    vec![(key, batches)]
                } else {
                    batches
                        .into_iter()
                        .map(|b| (key.clone(), vec![b]))
                        .collect()
                }
            })
            .collect();
        let items = Arc::new(items);
        let env = Env {
            target: target.clone(),
            pacer: self.pacer.clone(),
            rate_key: target.rate_key(api),
            qps,
            phase: p.phase,
            run: run.clone(),
            items: items.clone(),
            ctx: ctx.clone(),
            migration_id,
            targets: self.targets.clone(),
        };
        let results: Vec<Result<(), JobError>> = futures_util::stream::iter(lanes)
            .map(|(key, batches)| {
                let env = &env;
                async move {
                    for (n, b) in batches.into_iter().enumerate() {
                        // After a crash, the first batch of an ordered lane may have arrived.
                        env.send_batch(&key, b, resumed && n == 0).await?;
                    }
                    Ok(())
                }
            })
            .buffer_unordered(in_flight(qps, sequential))
            .collect()
            .await;
        // Whatever happened, keep what was done.
        run.flush().await?;
        for r in results {
            r?;
        }
        Ok(())
    }
}

fn times(n: i32) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// What `throttles` throttles and the other failures among `n` answers were, in words
/// (`every`: all `n` answers, the last one included).
fn answers(n: i32, throttles: usize, every: bool) -> String {
    let throttled = (throttles as i32).min(n);
    let every = every && n > 1;
    match (throttled, n - throttled) {
        (t, 0) if t == n && every => "throttled every time".into(),
        (t, 0) => format!("throttled {}", times(t)),
        (0, f) if f == n && every => "failing every time".into(),
        (0, f) => format!("failing {}", times(f)),
        (t, f) => format!("throttled {} and failing {}", times(t), times(f)),
    }
}

/// How a request that got an answer went before it (`tries` requests, `throttles` of them
/// throttled): the TRIES column counts the same requests.
fn history(tries: i32, throttles: usize) -> String {
    format!(
        "its request was sent {}: {} before this answer; imshift waited and sent it again each time",
        times(tries),
        answers(tries - 1, throttles, false)
    )
}

/// The words of a record this run stops sending after `tries` requests in this attempt
/// (`before` in earlier ones: the TRIES column shows both together), whose last answer was
/// `f`: what happened, and that only Retry sends it again.
fn gave_up(f: &Failure, before: i32, tries: i32, throttles: usize) -> String {
    let sent = if before > 0 {
        format!(
            "sent {} in this run ({before} before the last Retry, {tries} since)",
            times(before + tries)
        )
    } else {
        format!("sent {}", times(tries))
    };
    match f.class {
        ErrorClass::RateLimited | ErrorClass::Retryable => format!(
            "{sent}, {}; imshift waited and sent it again {} ({}); this run does not send it again: Retry sends it again",
            answers(tries, throttles, true),
            times(tries - 1),
            f.message
        ),
        _ if tries > 1 => format!("{} ({})", f.message, history(tries, throttles)),
        _ => f.message.clone(),
    }
}

struct Env {
    target: Arc<dyn ImportTarget>,
    pacer: Pacer,
    rate_key: String,
    qps: f64,
    phase: Phase,
    run: Arc<Run>,
    items: Arc<Vec<Item>>,
    ctx: JobContext,
    migration_id: MigrationId,
    targets: Targets,
}

impl Env {
    /// The quota in force now: a change made during the run is picked up within seconds.
    async fn qps(&self) -> f64 {
        match self.targets.get(self.migration_id).await {
            Ok(t) => match t.support(self.phase) {
                Support::Api { qps, .. } => qps,
                Support::Skip(_) => self.qps,
            },
            Err(_) => self.qps,
        }
    }

    async fn send_batch(
        &self,
        key: &str,
        mut batch: Vec<Prepared>,
        reconcile_first: bool,
    ) -> Result<(), JobError> {
        let mut reconcile = reconcile_first;
        let mut attempt = 0usize;
        let mut tries = 0i32;
        let mut throttles = 0usize;
        loop {
            self.ctx.check()?;
            if reconcile {
                let parts: Vec<&Prepared> = batch.iter().collect();
                if let Ok(found) = self.target.reconcile(self.phase, key, &parts).await {
                    let mut rows = vec![];
                    let mut rest = vec![];
                    for (prep, f) in batch.into_iter().zip(found) {
                        match f {
                            Some(outcome) => {
                                rows.push(row(&self.items[prep.item], Some(&prep), outcome, tries))
                            }
                            None => rest.push(prep),
                        }
                    }
                    self.run.push(rows).await?;
                    if self.phase.one_key_at_a_time() {
                        self.run.flush().await?;
                    }
                    batch = rest;
                    if batch.is_empty() {
                        return Ok(());
                    }
                }
            }
            let qps = self.qps().await;
            tokio::select! {
                r = self.pacer.wait(&self.rate_key, qps) => r?,
                s = self.ctx.stopped() => return Err(JobError::Stopped(s)),
            }
            let parts: Vec<&Prepared> = batch.iter().collect();
            let answer = self.target.send(self.phase, key, &parts).await;
            tries += 1;
            self.run.count(1, 0).await;
            match answer {
                Ok(outcomes) => {
                    let rows = batch
                        .iter()
                        .zip(outcomes)
                        .map(|(prep, o)| {
                            let o = match o {
                                Outcome::Failed { code, message } if tries > 1 => Outcome::Failed {
                                    code,
                                    message: format!("{message} ({})", history(tries, throttles)),
                                },
                                o => o,
                            };
                            row(&self.items[prep.item], Some(prep), o, tries)
                        })
                        .collect();
                    self.run.push(rows).await?;
                    // An ordered lane's next request must know this one is recorded.
                    if self.phase.one_key_at_a_time() {
                        self.run.flush().await?;
                    }
                    return Ok(());
                }
                Err(f) => match self.decide(&f, &mut attempt, &mut throttles).await? {
                    Some(delay) => {
                        reconcile = f.ambiguous
                            && (self.phase.one_key_at_a_time()
                                || self.target.check_before_repeat(self.phase));
                        self.ctx.sleep(delay).await?;
                    }
                    None => {
                        // The last answer was lost: what arrived is not a failure.
                        let mut found = vec![None; batch.len()];
                        if f.ambiguous {
                            let parts: Vec<&Prepared> = batch.iter().collect();
                            if let Ok(f) = self.target.reconcile(self.phase, key, &parts).await {
                                found = f;
                            }
                        }
                        let rows = batch
                            .iter()
                            .zip(found)
                            .map(|(prep, found)| {
                                let item = &self.items[prep.item];
                                let outcome = found.unwrap_or_else(|| Outcome::Failed {
                                    code: f.code,
                                    message: gave_up(&f, item.tries_before, tries, throttles),
                                });
                                row(item, Some(prep), outcome, tries)
                            })
                            .collect();
                        self.run.push(rows).await?;
                        return Ok(());
                    }
                },
            }
        }
    }

    /// After a failed request: how long to wait before sending it again, or None to record
    /// its records as failed. A credentials problem pauses the whole run for a person.
    async fn decide(
        &self,
        f: &Failure,
        attempt: &mut usize,
        throttles: &mut usize,
    ) -> Result<Option<Duration>, JobError> {
        match f.class {
            ErrorClass::RateLimited => {
                *throttles += 1;
                self.run.count(0, 1).await;
                self.pacer.throttled(&self.rate_key).await?;
            }
            ErrorClass::Retryable => *attempt += 1,
            ErrorClass::Auth | ErrorClass::Permanent | ErrorClass::Ok => {}
        }
        match retry::Policy::STANDARD.decide(f.class, *attempt, *throttles) {
            Decision::Wait(delay) => Ok(Some(delay)),
            Decision::GiveUp => Ok(None),
            Decision::NeedsPerson => {
                super::pause_for(
                    &self.run.pool,
                    self.run.run_id,
                    &format!(
                        "the target refused imshift's credentials: {} Fix the keys, then resume.",
                        f.message
                    ),
                )
                .await?;
                Err(JobError::Stopped(crate::jobs::worker::Stop::Pause))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(class: ErrorClass) -> Failure {
        Failure {
            class,
            code: Some(60007),
            message: "the target throttled openim/importmsg (60007): too fast".into(),
            ambiguous: false,
        }
    }

    #[test]
    fn the_words_count_the_requests_the_tries_column_counts() {
        let m = gave_up(&failure(ErrorClass::Retryable), 0, 8, 0);
        assert!(
            m.starts_with(
                "sent 8 times, failing every time; imshift waited and sent it again 7 times ("
            ),
            "{m}"
        );
        assert!(
            m.ends_with("this run does not send it again: Retry sends it again"),
            "{m}"
        );
        // Throttled mid-run: the waits and retries are said as such.
        let m = gave_up(&failure(ErrorClass::RateLimited), 0, 41, 41);
        assert!(
            m.starts_with(
                "sent 41 times, throttled every time; imshift waited and sent it again 40 times"
            ),
            "{m}"
        );
        let m = gave_up(&failure(ErrorClass::Retryable), 0, 10, 2);
        assert!(m.contains("throttled twice and failing 8 times"), "{m}");
        // After a Retry the TRIES column holds both attempts: so do the words.
        let m = gave_up(&failure(ErrorClass::Retryable), 8, 8, 0);
        assert!(
            m.starts_with("sent 16 times in this run (8 before the last Retry, 8 since)"),
            "{m}"
        );
        // A refusal after throttles says why TRIES is above one.
        let m = gave_up(&failure(ErrorClass::Permanent), 0, 3, 2);
        assert!(m.ends_with("(its request was sent 3 times: throttled twice before this answer; imshift waited and sent it again each time)"), "{m}");
        assert_eq!(
            gave_up(&failure(ErrorClass::Permanent), 0, 1, 0),
            failure(ErrorClass::Permanent).message
        );
        assert_eq!(
            history(2, 0),
            "its request was sent twice: failing once before this answer; imshift waited and sent it again each time"
        );
    }
}
