//! The run's supervisor: one job per run that starts each phase once the phases it waits on
//! are done (cutting it into tasks), notices when a phase's tasks are all finished, and ends
//! the run. It holds no state of its own: if its process dies, another worker picks it up
//! from the tables.

use super::plan::{Phase, Split};
use super::runner::{Selector, TaskPayload, TASK};
use super::target::Support;
use super::targets::Targets;
use crate::jobs::{Handler, JobContext, JobError};
use crate::migration::state::Change;
use crate::model::{MigrationId, PhaseState, RunId, RunState, UploadId};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::time::Duration;

pub const SUPERVISE: &str = "import.supervise";

pub struct Supervise {
    pub targets: Targets,
}

/// The quota a phase's tasks are scheduled at: its batch size and requests per second, and
/// whether the phase is on the run's longest chain (its tasks are claimable earlier).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub batch: usize,
    pub qps: f64,
    pub critical: bool,
}

/// Each task becomes claimable this long before the quota lets it start: the next task of a
/// phase is running when the one before it ends, and the workers are not all taken by one
/// phase's tasks waiting on its limiter while another phase, under another quota, waits in
/// the queue behind them (a lead proportional to the phase, as it was, grows without bound
/// over a long phase and ends up holding every worker). Independent phases progress side by
/// side, each at its own API's quota. Workers claim by this time, oldest first: a phase that
/// fell behind takes its turn with the others instead of every worker (a priority would).
const LEAD_SECS: f64 = 0.5;

/// The lead of a phase on the run's longest chain: its tasks are ahead in the queue, so the
/// run ends at the bound when workers or CPU are scarce, and the other phases, which have
/// slack, wait a little instead.
const CRITICAL_LEAD_SECS: f64 = 2.0;

/// A phase whose slack is at most this share of the run's quota bound is on its longest
/// chain.
const CRITICAL_SLACK: f64 = 0.05;

/// The phases on the longest chain of the plan (each phase's quota time and what it waits on,
/// as the preflight had them): those whose latest finish, not delaying the whole, is their
/// earliest finish.
pub fn critical_phases(plan: &[(Phase, f64)]) -> Vec<Phase> {
    let secs = |p: Phase| {
        plan.iter()
            .find(|(q, _)| *q == p)
            .map_or(0.0, |(_, s)| s.max(0.0))
    };
    let mut earliest: HashMap<Phase, f64> = HashMap::new();
    // Phase::ALL is in dependency order.
    for p in Phase::ALL {
        let start = p
            .depends_on()
            .iter()
            .map(|d| earliest.get(d).copied().unwrap_or(0.0))
            .fold(0.0, f64::max);
        earliest.insert(p, start + secs(p));
    }
    let total = earliest.values().copied().fold(0.0, f64::max);
    let mut latest: HashMap<Phase, f64> = HashMap::new();
    for p in Phase::ALL.into_iter().rev() {
        let end = Phase::ALL
            .into_iter()
            .filter(|s| s.depends_on().contains(&p))
            .map(|s| latest.get(&s).copied().unwrap_or(total) - secs(s))
            .fold(total, f64::min);
        latest.insert(p, end);
    }
    Phase::ALL
        .into_iter()
        .filter(|p| secs(*p) > 0.0 && latest[p] - earliest[p] <= CRITICAL_SLACK * total)
        .collect()
}

/// Adds the tasks for `phase` (only its failed records when `retry`), spaced by `pace`.
pub async fn plan_tasks(
    tx: &mut Transaction<'_, Postgres>,
    run_id: RunId,
    migration_id: MigrationId,
    phase: Phase,
    uploads: &[UploadId],
    retry: bool,
    pace: Option<Pace>,
) -> Result<usize, sqlx::Error> {
    let only_failed = if retry {
        "AND EXISTS (SELECT 1 FROM import_results r WHERE r.run_id = $2 AND r.phase = $3
             AND r.upload_id = s.upload_id AND r.ord = s.ord AND r.state = 'failed')"
    } else {
        "AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL"
    };
    let batch = pace.map_or(1, |p| p.batch.max(1)) as i64;
    // Each task with the requests it will take.
    let selectors: Vec<(Selector, i64)> = match phase.split() {
        Split::Ords(n) => {
            // Runs of n of this phase's records (not of ordinals, which every kind shares), so
            // a task fills whole batches.
            let rows: Vec<(UploadId, i32, i32, i64)> = sqlx::query_as(&format!(
                "SELECT upload_id, min(ord), max(ord), count(*) FROM (
                     SELECT s.upload_id, s.ord,
                            (row_number() OVER (PARTITION BY s.upload_id ORDER BY s.ord) - 1) / {n} AS chunk
                     {} {only_failed}) t
                 GROUP BY upload_id, chunk ORDER BY 1, 2",
                phase.from_where()
            ))
            .bind(uploads)
            .bind(run_id)
            .bind(phase.as_str())
            .fetch_all(&mut **tx)
            .await?;
            rows.into_iter()
                .map(|(upload, from, to, count)| {
                    (
                        Selector::Ords { upload, from, to },
                        (count + batch - 1) / batch,
                    )
                })
                .collect()
        }
        Split::Keys(n) => {
            let keys: Vec<(String, i64)> = sqlx::query_as(&format!(
                "SELECT {key}, count(*) {} {only_failed} GROUP BY {key} ORDER BY 1",
                phase.from_where(),
                key = phase.key(),
            ))
            .bind(uploads)
            .bind(run_id)
            .bind(phase.as_str())
            .fetch_all(&mut **tx)
            .await?;
            keys.chunks(n.max(1))
                .map(|c| {
                    let requests = c.iter().map(|(_, k)| (k + batch - 1) / batch).sum();
                    (
                        Selector::Keys {
                            keys: c.iter().map(|(k, _)| k.clone()).collect(),
                        },
                        requests,
                    )
                })
                .collect()
        }
    };
    let mut at = 0.0f64;
    let mut payloads: Vec<serde_json::Value> = vec![];
    let mut delays: Vec<f64> = vec![];
    for (selector, requests) in selectors {
        payloads.push(json!(TaskPayload {
            run_id,
            phase,
            selector,
            retry
        }));
        let lead = if pace.is_some_and(|p| p.critical) {
            CRITICAL_LEAD_SECS
        } else {
            LEAD_SECS
        };
        delays.push((at - lead).max(0.0));
        if let Some(p) = pace.filter(|p| p.qps > 0.0) {
            at += requests as f64 / p.qps;
        }
    }
    let n = payloads.len();
    sqlx::query(
        "INSERT INTO jobs (kind, migration_id, scope, payload, run_after)
         SELECT $1, $2, $3, p, now() + make_interval(secs => d)
         FROM unnest($4::jsonb[], $5::float8[]) AS t(p, d)",
    )
    .bind(TASK)
    .bind(migration_id)
    .bind(run_id.to_string())
    .bind(&payloads)
    .bind(&delays)
    .execute(&mut **tx)
    .await?;
    crate::jobs::notify(&mut **tx).await?;
    Ok(n)
}

#[derive(sqlx::FromRow)]
struct PhaseRow {
    phase: String,
    #[sqlx(try_from = "String")]
    state: PhaseState,
    depends_on: Vec<String>,
}

#[async_trait::async_trait]
impl Handler for Supervise {
    fn kind(&self) -> &'static str {
        SUPERVISE
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let run_id: RunId = ctx.job.uuid("run_id")?;
        // The tasks' queries are planned from table statistics; fresh ones keep them on
        // their indexes where autovacuum is off or has not reached a table just loaded.
        analyze(&ctx.pool, STAGED).await;
        let mut analyzed = std::time::Instant::now();
        loop {
            ctx.check()?;
            if step(&ctx.pool, &self.targets, run_id).await? {
                return Ok(());
            }
            if analyzed.elapsed() > Duration::from_secs(60) {
                analyze(&ctx.pool, &["import_results"]).await;
                analyzed = std::time::Instant::now();
            }
            ctx.sleep(Duration::from_millis(500)).await?;
        }
    }
}

const STAGED: &[&str] = &[
    "staged_accounts",
    "staged_friends",
    "staged_blocks",
    "staged_groups",
    "staged_members",
    "staged_messages",
    "staged_group_events",
    "staged_conversations",
    "staged_holds",
    "import_results",
];

async fn analyze(pool: &PgPool, tables: &[&str]) {
    for t in tables {
        if let Err(e) = sqlx::query(&format!("ANALYZE {t}")).execute(pool).await {
            tracing::warn!("ANALYZE {t}: {e}");
        }
    }
}

/// One look at the run; true when it is over.
async fn step(pool: &PgPool, targets: &Targets, run_id: RunId) -> Result<bool, JobError> {
    let Some((migration_id, uploads)) = super::run_info(pool, run_id).await? else {
        return Ok(true);
    };
    // Opened before the transaction: opening it reads the connection through the pool, and a
    // transaction waiting for a second connection while it holds the run's and phases' locks
    // stalls every writer of those rows until the pool gives up.
    let target = targets.get(migration_id).await;
    let mut tx = pool.begin().await?;
    // One supervisor at a time even if a lost lease let two run.
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM import_runs WHERE id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
    let state = state
        .as_deref()
        .map(super::decode::<RunState>)
        .transpose()?;
    match state {
        Some(RunState::Running) => {}
        Some(RunState::Paused) => return Ok(false),
        _ => return Ok(true),
    }
    let phases: Vec<PhaseRow> = sqlx::query_as(
        "SELECT phase, state, depends_on FROM import_phases WHERE run_id = $1 ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(&mut *tx)
    .await?;
    let open: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT payload->>'phase', count(*) FROM jobs
         WHERE scope = $1 AND kind = $2 AND state IN ('queued', 'running', 'paused') GROUP BY 1",
    )
    .bind(run_id.to_string())
    .bind(TASK)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut states: HashMap<String, PhaseState> =
        phases.iter().map(|p| (p.phase.clone(), p.state)).collect();
    for p in &phases {
        if p.state != PhaseState::Running || open.get(&p.phase).copied().unwrap_or(0) > 0 {
            continue;
        }
        let Some(phase) = Phase::parse(&p.phase) else {
            continue;
        };
        if let Some(why) = finish_phase(&mut tx, run_id, phase, &uploads).await? {
            fail_run(&mut tx, run_id, migration_id, &why).await?;
            tx.commit().await?;
            return Ok(true);
        }
        states.insert(p.phase.clone(), PhaseState::Done);
    }
    let mut critical: Option<Vec<Phase>> = None;
    for p in &phases {
        if p.state != PhaseState::Waiting {
            continue;
        }
        let ready = p
            .depends_on
            .iter()
            .all(|d| matches!(states.get(d), Some(PhaseState::Done | PhaseState::Skipped)));
        let Some(phase) = Phase::parse(&p.phase) else {
            continue;
        };
        if !ready {
            continue;
        }
        let target = match &target {
            Ok(t) => t,
            Err(why) => {
                drop(tx);
                super::pause_for(pool, run_id, why).await?;
                return Ok(false);
            }
        };
        let new_state = match target.support(phase) {
            Support::Skip(why) => {
                sqlx::query(&format!(
                    "INSERT INTO import_results (run_id, phase, upload_id, ord, state, message)
                     SELECT $2, $3, s.upload_id, s.ord, 'skipped', $4 {}
                     ON CONFLICT DO NOTHING",
                    phase.from_where()
                ))
                .bind(&uploads)
                .bind(run_id)
                .bind(phase.as_str())
                .bind(&why)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE import_phases SET state = 'skipped', note = $3, started_at = now(),
                            finished_at = now() WHERE run_id = $1 AND phase = $2",
                )
                .bind(run_id)
                .bind(phase.as_str())
                .bind(&why)
                .execute(&mut *tx)
                .await?;
                PhaseState::Skipped
            }
            Support::Api { api, batch, qps } => {
                let critical = critical.get_or_insert_with(Vec::new);
                if critical.is_empty() {
                    *critical = critical_of(&mut tx, run_id).await?;
                }
                let pace = Some(Pace {
                    batch,
                    qps,
                    critical: critical.contains(&phase),
                });
                plan_tasks(&mut tx, run_id, migration_id, phase, &uploads, false, pace).await?;
                // Even with no task, the phase ends through `finish_phase`, which checks that
                // nothing of it is pending (records that vanished from the staged data).
                sqlx::query(
                    "UPDATE import_phases SET state = 'running', api = $3, started_at = now()
                     WHERE run_id = $1 AND phase = $2",
                )
                .bind(run_id)
                .bind(phase.as_str())
                .bind(api)
                .execute(&mut *tx)
                .await?;
                PhaseState::Running
            }
        };
        states.insert(p.phase.clone(), new_state);
    }
    let over = states
        .values()
        .all(|s| matches!(s, PhaseState::Done | PhaseState::Skipped));
    if over {
        sqlx::query("UPDATE import_runs SET state = 'done', finished_at = now() WHERE id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        crate::migration::state::settle(&mut tx, migration_id, Change::Follow).await?;
        crate::audit::record(
            &mut *tx,
            &crate::audit::Who::system("imshift"),
            "import.finished",
            &format!("migration:{migration_id}"),
            json!({ "run": run_id }),
        )
        .await
        .map_err(JobError::retry)?;
    }
    tx.commit().await?;
    Ok(over)
}

/// The critical phases of a run's plan (the preflight it launched with).
async fn critical_of(
    tx: &mut Transaction<'_, Postgres>,
    run_id: RunId,
) -> Result<Vec<Phase>, sqlx::Error> {
    let phases: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT plan->'preflight'->'phases' FROM import_runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&mut **tx)
            .await?;
    let plan: Vec<(Phase, f64)> = phases
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let phase = Phase::parse(p.get("phase")?.as_str()?)?;
                    Some((phase, p.get("secs")?.as_f64()?))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(critical_phases(&plan))
}

/// A phase whose tasks all ended. Any record a failed task never reached is recorded as
/// failed, so nothing goes unaccounted for; the phase is done only when every one of its
/// records has an outcome. `Some(why)` when records of the phase are gone from the staged data
/// (the dumps changed under the run): the phase and the run fail, saying so.
async fn finish_phase(
    tx: &mut Transaction<'_, Postgres>,
    run_id: RunId,
    phase: Phase,
    uploads: &[UploadId],
) -> Result<Option<String>, sqlx::Error> {
    let task_error: Option<String> = sqlx::query_scalar(
        "SELECT last_error FROM jobs WHERE scope = $1 AND kind = $2 AND payload->>'phase' = $3
           AND state = 'failed' ORDER BY id DESC LIMIT 1",
    )
    .bind(run_id.to_string())
    .bind(TASK)
    .bind(phase.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    let why = match &task_error {
        Some(error) => format!(
            "not sent: its task stopped after repeated errors ({error}); Retry sends it again"
        ),
        None => "not sent: no task of the run reached it; Retry sends it".to_string(),
    };
    sqlx::query(&format!(
        "INSERT INTO import_results (run_id, phase, upload_id, ord, state, message)
         SELECT $2, $3, s.upload_id, s.ord, 'failed', $4 {}
         ON CONFLICT DO NOTHING",
        phase.from_where()
    ))
    .bind(uploads)
    .bind(run_id)
    .bind(phase.as_str())
    .bind(&why)
    .execute(&mut **tx)
    .await?;
    // The counters follow the results (a trigger); what is still pending has no staged row.
    let (total, pending): (i64, i64) = sqlx::query_as(
        "SELECT total, greatest(0, total - sent - failed - skipped) FROM import_phases
         WHERE run_id = $1 AND phase = $2",
    )
    .bind(run_id)
    .bind(phase.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let gone: Vec<String> = sqlx::query_scalar(
        "SELECT file_name FROM dump_uploads WHERE id = ANY($1) AND state <> 'staged' ORDER BY seq",
    )
    .bind(uploads)
    .fetch_all(&mut **tx)
    .await?;
    if pending > 0 {
        let why = format!(
            "{pending} of the {total} records of the {} phase are no longer staged{}: the dumps changed under this run, so it cannot finish. Nothing of them was sent; launch a new import to send what is staged now.",
            phase.label().to_lowercase(),
            if gone.is_empty() {
                String::new()
            } else {
                format!(" ({} discarded or replaced)", gone.join(", "))
            }
        );
        sqlx::query(
            "UPDATE import_phases SET state = 'failed', note = $3, finished_at = now()
             WHERE run_id = $1 AND phase = $2",
        )
        .bind(run_id)
        .bind(phase.as_str())
        .bind(&why)
        .execute(&mut **tx)
        .await?;
        return Ok(Some(why));
    }
    sqlx::query(
        "UPDATE import_phases SET state = 'done', finished_at = now() WHERE run_id = $1 AND phase = $2",
    )
    .bind(run_id)
    .bind(phase.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(None)
}

/// Ends the run as failed: its other phases stop, its tasks are cancelled, and the migration
/// follows.
async fn fail_run(
    tx: &mut Transaction<'_, Postgres>,
    run_id: RunId,
    migration_id: MigrationId,
    why: &str,
) -> Result<(), JobError> {
    sqlx::query(
        "UPDATE import_runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
    )
    .bind(run_id)
    .bind(why)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE import_phases SET state = 'cancelled', finished_at = now()
         WHERE run_id = $1 AND state IN ('waiting', 'running')",
    )
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    crate::jobs::cancel_scope(&mut **tx, &run_id.to_string()).await?;
    crate::migration::state::settle(tx, migration_id, Change::Follow).await?;
    crate::audit::record(
        &mut **tx,
        &crate::audit::Who::system("imshift"),
        "import.failed",
        &format!("migration:{migration_id}"),
        json!({ "run": run_id, "why": why }),
    )
    .await
    .map_err(JobError::retry)?;
    tracing::warn!(run = %run_id, "import failed: {why}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_chain_is_critical_and_phases_with_slack_are_not() {
        // The mixed migration of issue 11 at its target's documented quotas.
        let plan = [
            (Phase::Accounts, 0.2),
            (Phase::Profiles, 3.8),
            (Phase::Friends, 9.6),
            (Phase::Blocks, 0.2),
            (Phase::C2cHistory, 136.7),
            (Phase::Groups, 0.4),
            (Phase::Members, 1.7),
            (Phase::GroupHistory, 11.8),
            (Phase::Unread, 26.5),
        ];
        assert_eq!(
            critical_phases(&plan),
            vec![Phase::Accounts, Phase::C2cHistory]
        );
        // Group history long enough to be the chain.
        let mut plan = plan.to_vec();
        plan[7].1 = 200.0;
        assert_eq!(
            critical_phases(&plan),
            vec![
                Phase::Accounts,
                Phase::Groups,
                Phase::Members,
                Phase::GroupHistory,
                Phase::Unread
            ]
        );
        assert!(critical_phases(&[]).is_empty());
    }
}
