//! The run's supervisor: one job per run that starts each phase once the phases it waits on
//! are done (cutting it into tasks), notices when a phase's tasks are all finished, and ends
//! the run. It holds no state of its own: if its process dies, another worker picks it up
//! from the tables.

use super::plan::{Phase, Split};
use super::runner::{Selector, TaskPayload, TASK};
use super::target::Support;
use super::targets::Targets;
use crate::jobs::{Handler, JobContext, JobError};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

pub const SUPERVISE: &str = "import.supervise";

pub struct Supervise {
    pub targets: Targets,
}

/// Adds the tasks for `phase` (only its failed records when `retry`).
pub async fn plan_tasks(
    tx: &mut Transaction<'_, Postgres>,
    run_id: Uuid,
    migration_id: Uuid,
    phase: Phase,
    uploads: &[Uuid],
    retry: bool,
) -> Result<usize, sqlx::Error> {
    let only_failed = if retry {
        "AND EXISTS (SELECT 1 FROM import_results r WHERE r.run_id = $2 AND r.phase = $3
             AND r.upload_id = s.upload_id AND r.ord = s.ord AND r.state = 'failed')"
    } else {
        "AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL"
    };
    let selectors: Vec<Selector> = match phase.split() {
        Split::Ords(n) => {
            let rows: Vec<(Uuid, i32, i32)> = sqlx::query_as(&format!(
                "SELECT s.upload_id, min(s.ord), max(s.ord) {} {only_failed}
                 GROUP BY s.upload_id, s.ord / {n} ORDER BY 1, 2",
                phase.from_where()
            ))
            .bind(uploads)
            .bind(run_id)
            .bind(phase.as_str())
            .fetch_all(&mut **tx)
            .await?;
            rows.into_iter()
                .map(|(upload, from, to)| Selector::Ords { upload, from, to })
                .collect()
        }
        Split::Keys(n) => {
            let keys: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT DISTINCT {} {} {only_failed} ORDER BY 1",
                phase.key(),
                phase.from_where()
            ))
            .bind(uploads)
            .bind(run_id)
            .bind(phase.as_str())
            .fetch_all(&mut **tx)
            .await?;
            keys.chunks(n.max(1))
                .map(|c| Selector::Keys { keys: c.to_vec() })
                .collect()
        }
    };
    let payloads: Vec<serde_json::Value> = selectors
        .into_iter()
        .map(|selector| {
            json!(TaskPayload {
                run_id,
                phase,
                selector,
                retry
            })
        })
        .collect();
    let n = payloads.len();
    sqlx::query(
        "INSERT INTO jobs (kind, migration_id, scope, payload)
         SELECT $1, $2, $3, p FROM unnest($4::jsonb[]) AS p",
    )
    .bind(TASK)
    .bind(migration_id)
    .bind(run_id.to_string())
    .bind(&payloads)
    .execute(&mut **tx)
    .await?;
    crate::jobs::notify(&mut **tx).await?;
    Ok(n)
}

#[derive(sqlx::FromRow)]
struct PhaseRow {
    phase: String,
    state: String,
    depends_on: Vec<String>,
}

#[async_trait::async_trait]
impl Handler for Supervise {
    fn kind(&self) -> &'static str {
        SUPERVISE
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let run_id = ctx.job.uuid("run_id")?;
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
async fn step(pool: &PgPool, targets: &Targets, run_id: Uuid) -> Result<bool, JobError> {
    let Some((migration_id, uploads)) = super::run_info(pool, run_id).await? else {
        return Ok(true);
    };
    let mut tx = pool.begin().await?;
    // One supervisor at a time even if a lost lease let two run.
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM import_runs WHERE id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
    match state.as_deref() {
        Some("running") => {}
        Some("paused") => return Ok(false),
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
    let mut states: HashMap<String, String> = phases
        .iter()
        .map(|p| (p.phase.clone(), p.state.clone()))
        .collect();
    for p in &phases {
        if p.state != "running" || open.get(&p.phase).copied().unwrap_or(0) > 0 {
            continue;
        }
        let Some(phase) = Phase::parse(&p.phase) else {
            continue;
        };
        finish_phase(&mut tx, run_id, phase, &uploads).await?;
        states.insert(p.phase.clone(), "done".into());
    }
    for p in &phases {
        if p.state != "waiting" {
            continue;
        }
        let ready = p.depends_on.iter().all(|d| {
            matches!(
                states.get(d).map(String::as_str),
                Some("done") | Some("skipped")
            )
        });
        let Some(phase) = Phase::parse(&p.phase) else {
            continue;
        };
        if !ready {
            continue;
        }
        let target = match targets.get(migration_id).await {
            Ok(t) => t,
            Err(why) => {
                drop(tx);
                super::pause_for(pool, run_id, &why).await?;
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
                "skipped"
            }
            Support::Api { api, .. } => {
                let tasks =
                    plan_tasks(&mut tx, run_id, migration_id, phase, &uploads, false).await?;
                let state = if tasks == 0 { "done" } else { "running" };
                sqlx::query(
                    "UPDATE import_phases SET state = $3, api = $4, started_at = now(),
                            finished_at = CASE WHEN $3 = 'done' THEN now() END
                     WHERE run_id = $1 AND phase = $2",
                )
                .bind(run_id)
                .bind(phase.as_str())
                .bind(state)
                .bind(api)
                .execute(&mut *tx)
                .await?;
                state
            }
        };
        states.insert(p.phase.clone(), new_state.into());
    }
    let over = states.values().all(|s| s == "done" || s == "skipped");
    if over {
        sqlx::query("UPDATE import_runs SET state = 'done', finished_at = now() WHERE id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE im_migrations SET state = CASE WHEN strategy = 'coexistence' THEN 'syncing' ELSE 'done' END,
                    updated_at = now()
             WHERE id = $1 AND state = 'importing'",
        )
        .bind(migration_id)
        .execute(&mut *tx)
        .await?;
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

/// A phase whose tasks all ended: any record a failed task never reached is recorded as
/// failed, so nothing goes unaccounted for.
async fn finish_phase(
    tx: &mut Transaction<'_, Postgres>,
    run_id: Uuid,
    phase: Phase,
    uploads: &[Uuid],
) -> Result<(), sqlx::Error> {
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
    if let Some(error) = task_error {
        sqlx::query(&format!(
            "INSERT INTO import_results (run_id, phase, upload_id, ord, state, message)
             SELECT $2, $3, s.upload_id, s.ord, 'failed', $4 {}
             ON CONFLICT DO NOTHING",
            phase.from_where()
        ))
        .bind(uploads)
        .bind(run_id)
        .bind(phase.as_str())
        .bind(format!(
            "not sent: its task stopped after repeated errors ({error}); retry the phase"
        ))
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "UPDATE import_phases SET state = 'done', finished_at = now() WHERE run_id = $1 AND phase = $2",
    )
    .bind(run_id)
    .bind(phase.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
