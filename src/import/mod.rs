//! Imports: a run moves a migration's staged records into its target, phase by phase, as
//! jobs paced to the target's quotas (`plan` for the phases and their order, `runner` for a
//! task, `supervisor` for the run). Here: what the console and the REST API do with runs —
//! preflight, launch, pause, resume, cancel, retry failed records, status and failures.

pub mod bench;
pub mod hand_over;
pub mod id_map;
pub mod plan;
pub mod runner;
pub mod supervisor;
pub mod target;
pub mod targets;
pub mod throughput;

use crate::audit;
use crate::auth::Actor;
use crate::jobs::{self, NewJob};
use crate::migration::state::Change;
use crate::model::{
    EarlierRuns, ImportFailure, ImportFailuresPage, ImportRun, MigrationId, MigrationState,
    Permission, PhaseState, PhaseStatus, Preflight, PreflightHandOver, PreflightPhase, ReportState,
    RunId, RunState, SkipReason, UploadId,
};
use crate::providers::Registry;
use crate::service::{AppError, AppResult, Services};
use plan::{Phase, Resend};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A state word read from the database into its enum (the tables' CHECKs keep to the words).
pub(crate) fn decode<T: std::str::FromStr<Err = String>>(word: &str) -> Result<T, sqlx::Error> {
    word.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

/// Staged data may not change under a running or paused import.
pub async fn ensure_no_active_run(pool: &PgPool, migration_id: MigrationId) -> AppResult<()> {
    let active: Option<String> = sqlx::query_scalar(
        "SELECT state FROM import_runs WHERE migration_id = $1 AND state IN ('running', 'paused')",
    )
    .bind(migration_id)
    .fetch_optional(pool)
    .await?;
    match active {
        Some(state) => Err(AppError::Conflict(format!(
            "An import of this migration is {state}; cancel it or let it finish before changing the staged dumps."
        ))),
        None => Ok(()),
    }
}

/// The run's migration and the uploads it takes; None once it is cancelled or gone.
pub async fn run_info(
    pool: &PgPool,
    run_id: RunId,
) -> Result<Option<(MigrationId, Vec<UploadId>)>, sqlx::Error> {
    let row: Option<(MigrationId, serde_json::Value, String)> =
        sqlx::query_as("SELECT migration_id, plan, state FROM import_runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(pool)
            .await?;
    let row = match row {
        Some((m, plan, state)) => Some((m, plan, decode::<RunState>(&state)?)),
        None => None,
    };
    Ok(row.and_then(|(m, plan, state)| {
        (state != RunState::Cancelled).then(|| {
            let uploads = plan["uploads"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|u| u.as_str().and_then(|s| s.parse().ok()))
                        .collect()
                })
                .unwrap_or_default();
            (m, uploads)
        })
    }))
}

/// The run stops itself until a person acts (wrong keys, a target that will not have us).
pub async fn pause_for(pool: &PgPool, run_id: RunId, why: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query(
        "UPDATE import_runs SET state = 'paused', error = $2, paused_at = now()
         WHERE id = $1 AND state = 'running'",
    )
    .bind(run_id)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() > 0 {
        jobs::pause_scope(&mut *tx, &run_id.to_string()).await?;
        follow_run(&mut tx, run_id).await?;
        tracing::warn!(run = %run_id, "import paused: {why}");
    }
    tx.commit().await
}

/// The migration's state follows its run.
pub(crate) async fn follow_run(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: RunId,
) -> Result<(), sqlx::Error> {
    let migration: Option<MigrationId> =
        sqlx::query_scalar("SELECT migration_id FROM import_runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(m) = migration {
        crate::migration::state::settle(tx, m, Change::Follow).await?;
    }
    Ok(())
}

/// What Launch would do now, and what stands in its way.
pub async fn preflight(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<Preflight> {
    actor.require(Permission::Read)?;
    let m = crate::migration::get(&s.pool, actor, migration_id).await?;
    let keys =
        crate::migration::connections::view(s, actor, migration_id, crate::model::Side::Target)
            .await?;
    let target_label = keys.provider_label.clone();
    let mut p = plan::preflight(
        target_label.clone(),
        keys.endpoint.clone().unwrap_or_default(),
        keys.sandbox,
    );
    if m.state == MigrationState::Archived {
        p.blockers
            .push("The migration is archived; restore it first.".into());
    }
    let uploads = plan::staged_uploads(&s.pool, migration_id).await?;
    if uploads.is_empty() {
        p.blockers
            .push("Nothing is staged yet: upload the old system's dumps on the Dumps tab.".into());
    }
    let report = crate::dumps::report::report(&s.pool, actor, migration_id).await?;
    match report.state {
        ReportState::Current | ReportState::Pending => {}
        ReportState::Failed => p.blockers.push(format!(
            "Checking the dumps failed; launch once a check has finished. {}",
            report.error.as_deref().unwrap_or_default()
        )),
        ReportState::Validating | ReportState::Stale => p.blockers.push(
            "The dumps are still being checked; launch when the report is up to date.".into(),
        ),
    }
    if ensure_no_active_run(&s.pool, migration_id).await.is_err() {
        p.blockers
            .push("An import of this migration is already running or paused.".into());
    }
    let target = targets::Targets::new(s.clone()).get(migration_id).await;
    let target = match target {
        Ok(t) => Some(t),
        Err(why) => {
            p.blockers.push(format!("No target to send to: {why}"));
            None
        }
    };
    let kept: i64 = report.rejected.values().sum();
    if kept > 0 {
        p.warnings.push(format!(
            "{kept} records were kept aside by validation (errors) and will not be sent; see the Dumps tab."
        ));
    }
    let replaced: i64 = report.superseded.values().sum();
    if replaced > 0 {
        p.warnings.push(format!(
            "{replaced} duplicate records were replaced by later lines and will not be sent."
        ));
    }
    if report.warnings > 0 {
        p.warnings.push(format!(
            "Validation reported {} warnings; those records are sent as they are.",
            report.warnings
        ));
    }
    media_links(&mut p, &report.counts);
    if !keys.sandbox {
        p.warnings.push(format!(
            "This sends to the real {} app at {}; rehearse in the sandbox first if you have not.",
            target_label, p.base_url
        ));
    }
    if let Some(t) = target {
        let sizes = plan::cached_sizes(&s.pool, migration_id, &uploads).await?;
        let (phases, total) = plan::estimate(t.as_ref(), &sizes);
        p.records = phases.iter().map(|x| x.records).sum();
        p.by_api = phases
            .iter()
            .filter(|x| x.note.is_none())
            .map(|x| x.records)
            .sum();
        let files = s
            .config
            .providers
            .get(&m.target)
            .and_then(|pr| pr.hand_over().map(|h| (h.label(), h.note(), h.phases())));
        if let Some((label, note, names)) = files {
            p.hand_over = Some(PreflightHandOver {
                label: label.to_string(),
                note: note.to_string(),
                records: phases
                    .iter()
                    .filter(|x| names.contains(&x.phase.as_str()))
                    .map(|x| x.records)
                    .sum(),
                phases: names.iter().map(|n| n.to_string()).collect(),
            });
        }
        p.phases = phases;
        p.estimate_secs = total;
        p.earlier = earlier_runs(&s.pool, migration_id, &uploads, &mut p.phases).await?;
        if let Some(e) = &p.earlier {
            p.warnings.push(format!(
                "An earlier run of this migration ({}) already sent {} of these {} records. Launching sends everything again unless you choose to send only the {} that failed or are new.",
                e.last_state, e.sent_before, p.records, e.failed_or_new
            ));
        }
    }
    Ok(p)
}

/// Says how many staged messages link to files on the old system's storage, by body type:
/// they travel as links (no target copies media on import), so the new app must still reach
/// them, and they break when the old storage is switched off.
fn media_links(p: &mut Preflight, counts: &std::collections::BTreeMap<String, i64>) {
    let kinds = [
        ("image", "images"),
        ("audio", "voice messages"),
        ("video", "videos"),
        ("file", "files"),
    ];
    let found: Vec<(i64, &str)> = kinds
        .iter()
        .filter_map(|(t, words)| {
            let n = counts.get(&format!("message.{t}")).copied().unwrap_or(0);
            (n > 0).then_some((n, *words))
        })
        .collect();
    p.media_links = found.iter().map(|(n, _)| n).sum();
    if p.media_links == 0 {
        return;
    }
    let list: Vec<String> = found
        .iter()
        .map(|(n, w)| format!("{} {w}", crate::model::thousands(*n)))
        .collect();
    p.warnings.push(format!(
        "{} messages link to files on the old system's storage ({}). They are sent as links, not copied: the new app must still reach those addresses, and they stop working when the old storage is switched off (copying the files over is not built yet).",
        crate::model::thousands(p.media_links),
        list.join(", ")
    ));
}

/// The reason a `failed_or_new` relaunch gives for each record it leaves out.
pub const SENT_BEFORE: &str =
    "sent by an earlier run of this migration; this launch sends only what failed or is new";

/// SQL (over `r`, a result of this run) for "the target has this record": this run sent it, or
/// it is left out because an earlier run did.
pub fn sent_sql() -> String {
    format!("(r.state = 'sent' OR (r.state = 'skipped' AND r.message = '{SENT_BEFORE}'))")
}

/// The migration's finished runs.
async fn finished_runs<'e>(
    db: impl sqlx::PgExecutor<'e>,
    migration_id: MigrationId,
) -> Result<Vec<(RunId, String, Option<OffsetDateTime>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, state, finished_at FROM import_runs
         WHERE migration_id = $1 AND state IN ('done', 'failed', 'cancelled')
         ORDER BY created_at DESC",
    )
    .bind(migration_id)
    .fetch_all(db)
    .await
}

/// SQL for "an earlier run (`$2`, their ids) sent this staged record (`s`) in phase `$3`".
const SENT_EARLIER: &str = "EXISTS (SELECT 1 FROM import_results x WHERE x.run_id = ANY($2)
    AND x.phase = $3 AND x.upload_id = s.upload_id AND x.ord = s.ord AND x.state = 'sent')";

/// What earlier runs sent of what is staged now (per phase, into `phases`), and what sending
/// only the failed or new records would take.
async fn earlier_runs(
    pool: &PgPool,
    migration_id: MigrationId,
    uploads: &[UploadId],
    phases: &mut [PreflightPhase],
) -> Result<Option<EarlierRuns>, sqlx::Error> {
    let runs = finished_runs(pool, migration_id).await?;
    let Some((last_run, last_state, last_finished_at)) = runs.first().cloned() else {
        return Ok(None);
    };
    let last_state = decode::<RunState>(&last_state)?;
    let ids: Vec<RunId> = runs.iter().map(|r| r.0).collect();
    for ph in phases.iter_mut() {
        let Some(phase) = Phase::parse(&ph.phase) else {
            continue;
        };
        if ph.note.is_some() || ph.records == 0 {
            continue;
        }
        ph.sent_before = sqlx::query_scalar(&format!(
            "SELECT count(*) {} AND {SENT_EARLIER}",
            phase.from_where()
        ))
        .bind(uploads)
        .bind(&ids)
        .bind(phase.as_str())
        .fetch_one(pool)
        .await?;
    }
    let sent_before = phases.iter().map(|p| p.sent_before).sum::<i64>();
    let records = phases.iter().map(|p| p.records).sum::<i64>();
    Ok(Some(EarlierRuns {
        last_run,
        last_state,
        last_finished_at,
        runs: runs.len() as i64,
        sent_before,
        failed_or_new: records - sent_before,
        failed_or_new_secs: chain_secs(phases, |p| p.secs * share_left(p)),
    }))
}

/// The share of a phase's records a `failed_or_new` run sends.
fn share_left(p: &PreflightPhase) -> f64 {
    if p.records > 0 {
        (p.records - p.sent_before).max(0) as f64 / p.records as f64
    } else {
        0.0
    }
}

/// The time of the longest chain of dependent phases, each taking `secs`.
fn chain_secs(phases: &[PreflightPhase], secs: impl Fn(&PreflightPhase) -> f64) -> f64 {
    let mut finish: HashMap<&str, f64> = HashMap::new();
    for p in phases {
        let start = p
            .depends_on
            .iter()
            .map(|d| finish.get(d.as_str()).copied().unwrap_or(0.0))
            .fold(0.0, f64::max);
        finish.insert(p.phase.as_str(), start + secs(p));
    }
    finish.values().copied().fold(0.0, f64::max)
}

/// Launches a run with the preflight as its plan, sending everything staged.
pub async fn launch(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<ImportRun> {
    launch_with(s, actor, migration_id, None).await
}

/// Launches a run; under an earlier run, `resend` chooses between sending everything again
/// (the default) and only what failed or is new.
pub async fn launch_with(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    resend: Option<Resend>,
) -> AppResult<ImportRun> {
    actor.require(Permission::RunMigrations)?;
    let mut p = preflight(s, actor, migration_id).await?;
    if !p.blockers.is_empty() {
        return Err(AppError::Conflict(p.blockers.join(" ")));
    }
    let id = RunId::new_v4();
    let m = crate::migration::get(&s.pool, actor, migration_id).await?;
    let mut tx = s.pool.begin().await?;
    // An ingest commits under this lock too: what is staged cannot change between reading the
    // uploads the run takes and the run existing.
    sqlx::query("SELECT 1 FROM im_migrations WHERE id = $1 FOR UPDATE")
        .bind(migration_id)
        .execute(&mut *tx)
        .await?;
    let uploads = plan::staged_uploads(&mut *tx, migration_id).await?;
    // Under an earlier run the choice is recorded (sending everything again when none was made).
    let resend = p.earlier.as_ref().map(|_| resend.unwrap_or(Resend::All));
    if resend == Some(Resend::FailedOrNew) {
        // The plan is what this run sends: each phase's time shrinks with what it leaves out.
        for ph in &mut p.phases {
            let share = share_left(ph);
            ph.secs *= share;
            ph.requests = (ph.requests as f64 * share).ceil() as i64;
        }
        p.estimate_secs = chain_secs(&p.phases, |ph| ph.secs);
    }
    sqlx::query(
        "INSERT INTO import_runs (id, migration_id, target, plan, created_by, resend)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(migration_id)
    .bind(&m.target)
    .bind(json!({ "uploads": uploads, "preflight": p }))
    .bind(actor.user_id)
    .bind(resend.map(Resend::as_str))
    .execute(&mut *tx)
    .await
    .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
        Some(c) if c == "23505" => {
            AppError::Conflict("An import of this migration is already running or paused.".into())
        }
        _ => e.into(),
    })?;
    for (i, ph) in p.phases.iter().enumerate() {
        sqlx::query(
            "INSERT INTO import_phases (run_id, phase, position, depends_on, api, total, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&ph.phase)
        .bind(i as i32)
        .bind(&ph.depends_on)
        .bind(&ph.api)
        .bind(ph.records)
        .bind(&ph.note)
        .execute(&mut *tx)
        .await?;
    }
    let mut left_out = 0;
    if resend == Some(Resend::FailedOrNew) {
        left_out = leave_out_sent(&mut tx, id, migration_id, &uploads, &p.phases).await?;
    }
    supervise(&mut tx, id, migration_id).await?;
    crate::migration::state::settle(&mut tx, migration_id, Change::Follow).await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "import.launched",
        &format!("migration:{migration_id}"),
        json!({
            "run": id, "records": p.records, "estimate_secs": p.estimate_secs.round(), "target": p.target,
            "resend": resend.map(Resend::as_str), "left_out": left_out,
        }),
    )
    .await?;
    tx.commit().await?;
    status(s, actor, migration_id, id).await
}

/// A `failed_or_new` run leaves out what an earlier run sent: its phases' rows no longer take
/// those records, and each has a skipped result saying why (with what the earlier run sent, so
/// what depends on it finds it). Returns how many were left out.
async fn leave_out_sent(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: RunId,
    migration_id: MigrationId,
    uploads: &[UploadId],
    phases: &[PreflightPhase],
) -> Result<i64, sqlx::Error> {
    let earlier: Vec<RunId> = finished_runs(&mut **tx, migration_id)
        .await?
        .into_iter()
        .map(|r| r.0)
        .collect();
    for ph in phases.iter().filter(|p| p.sent_before > 0) {
        let Some(phase) = Phase::parse(&ph.phase) else {
            continue;
        };
        sqlx::query(&format!(
            "INSERT INTO import_sent_before (run_id, phase, upload_id, ord)
             SELECT $4, $3, s.upload_id, s.ord {} AND {SENT_EARLIER}",
            phase.from_where()
        ))
        .bind(uploads)
        .bind(&earlier)
        .bind(phase.as_str())
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    }
    let r = sqlx::query(
        "INSERT INTO import_results (run_id, phase, upload_id, ord, state, sent, message, attempts)
         SELECT $1, b.phase, b.upload_id, b.ord, 'skipped',
                (SELECT x.sent FROM import_results x WHERE x.run_id = ANY($2) AND x.phase = b.phase
                    AND x.upload_id = b.upload_id AND x.ord = b.ord AND x.state = 'sent'
                  ORDER BY x.at DESC LIMIT 1),
                $3, 0
         FROM import_sent_before b WHERE b.run_id = $1",
    )
    .bind(run_id)
    .bind(&earlier)
    .bind(SENT_BEFORE)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() as i64)
}

async fn supervise(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: RunId,
    migration_id: MigrationId,
) -> Result<(), sqlx::Error> {
    jobs::enqueue_unless(
        tx,
        &NewJob {
            kind: supervisor::SUPERVISE,
            migration_id: Some(migration_id),
            scope: Some(run_id.to_string()),
            payload: json!({ "run_id": run_id }),
            priority: 10,
            ..Default::default()
        },
        &["queued", "running", "paused"],
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: RunId,
    migration_id: MigrationId,
    #[sqlx(try_from = "String")]
    state: RunState,
    target: String,
    error: Option<String>,
    created_by: Option<String>,
    created_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    elapsed: f64,
    preflight_secs: Option<f64>,
    plan_phases: Option<serde_json::Value>,
    resend: Option<String>,
    in_flight: i64,
}

#[derive(sqlx::FromRow)]
struct PhaseRow {
    phase: String,
    #[sqlx(try_from = "String")]
    state: PhaseState,
    api: String,
    note: Option<String>,
    total: i64,
    sent: i64,
    failed: i64,
    skipped: i64,
    requests: i64,
    throttled: i64,
    elapsed: f64,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
}

/// `in_flight`: the run's tasks still working. After Pause or Cancel a task finishes the
/// requests it has out and records their answers before it stops, so the counters move until
/// this is 0.
const RUN_SELECT: &str = "SELECT r.id, r.migration_id, r.state, r.target, r.error, u.email AS created_by,
        r.created_at, r.finished_at,
        greatest(0, extract(epoch FROM coalesce(r.finished_at, r.paused_at, now()) - r.created_at) - r.paused_secs)::float8 AS elapsed,
        (r.plan->'preflight'->>'estimate_secs')::float8 AS preflight_secs,
        r.plan->'preflight'->'phases' AS plan_phases, r.resend,
        (SELECT count(*) FROM jobs j WHERE j.scope = r.id::text AND j.kind = 'import.task'
            AND j.state = 'running') AS in_flight
    FROM import_runs r LEFT JOIN users u ON u.id = r.created_by";

/// Seconds of work in a phase before its own rate is trusted over the quota.
const MEASURE_AFTER_SECS: f64 = 3.0;

/// How much slower than their quotas the run's phases have worked so far (1.0: at the quotas):
/// their working time over the preflight's time for what they did, over the phases that did a
/// measurable amount. None before any has.
fn slowness(phases: &[PhaseRow], planned: &[PreflightPhase]) -> Option<f64> {
    let (mut took, mut said) = (0.0, 0.0);
    for p in phases {
        let Some(x) = planned.iter().find(|x| x.phase == p.phase) else {
            continue;
        };
        let to_send = (p.total - x.sent_before).max(1) as f64;
        let worked = (p.sent + p.failed + p.skipped - x.sent_before).max(0) as f64;
        let expected = x.secs * worked / to_send;
        let measured = p.state == PhaseState::Done
            || (p.state == PhaseState::Running && p.elapsed >= MEASURE_AFTER_SECS);
        if measured && expected >= 1.0 {
            took += p.elapsed;
            said += expected;
        }
    }
    (said > 0.0).then(|| (took / said).clamp(0.5, 20.0))
}

/// A phase's time left and how it was figured: from the records per second it achieved over
/// its working time once it has worked a few seconds; before that from the preflight's time at
/// the quota for the share still pending, times how much slower than their quotas the run's
/// other phases have worked (`scaled`), or as it is before any has (`quota`).
fn phase_left(
    p: &PhaseRow,
    pending: i64,
    planned: Option<&PreflightPhase>,
    qps: f64,
    batch: f64,
    slow: Option<f64>,
    recent: Option<f64>,
) -> (f64, &'static str) {
    if pending == 0 || !matches!(p.state, PhaseState::Running | PhaseState::Waiting) {
        return (0.0, "");
    }
    let sent_before = planned.map_or(0, |x| x.sent_before);
    let worked = (p.sent + p.failed + p.skipped - sent_before).max(0);
    let to_send = (p.total - sent_before).max(1) as f64;
    if p.state == PhaseState::Running && p.elapsed >= MEASURE_AFTER_SECS && worked > 0 {
        // The requests still to make at the API's rate of the last seconds (a phase's pace
        // changes as the phases beside it start and end); the phase's average until then.
        let requests_left = planned.map_or(0.0, |x| x.requests as f64 * pending as f64 / to_send);
        // The window holds only the seconds since the phase started, when that is less.
        let window = (p.elapsed - 1.0).clamp(1.0, 10.0);
        return match recent {
            Some(n) if requests_left > 0.0 => (requests_left * window / n, "measured"),
            _ => (pending as f64 * p.elapsed / worked as f64, "measured"),
        };
    }
    let secs = match planned {
        Some(x) if x.secs > 0.0 => x.secs * pending as f64 / to_send,
        _ if qps > 0.0 => (pending as f64 / batch).ceil() / qps,
        _ => 0.0,
    };
    match slow {
        Some(k) => (secs * k, "scaled"),
        None => (secs, "quota"),
    }
}

async fn build_status(pool: &PgPool, providers: &Registry, r: RunRow) -> AppResult<ImportRun> {
    let phases: Vec<PhaseRow> = sqlx::query_as(
        "SELECT p.phase, p.state, p.api, p.note, p.total, p.sent, p.failed, p.skipped, p.requests,
                p.throttled, p.started_at, p.finished_at,
                coalesce(greatest(0,
                    extract(epoch FROM coalesce(p.finished_at, r.paused_at, now()) - p.started_at)
                    - (coalesce(p.paused_end, r.paused_secs) - coalesce(p.paused_start, p.paused_end, r.paused_secs))), 0)::float8 AS elapsed
         FROM import_phases p JOIN import_runs r ON r.id = p.run_id
         WHERE p.run_id = $1 ORDER BY p.position",
    )
    .bind(r.id)
    .fetch_all(pool)
    .await?;
    let planned: Vec<PreflightPhase> = r
        .plan_phases
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    // Why records were skipped, for the phases that skipped some on their own (a phase the
    // target cannot take says why in its note).
    let asked: Vec<&str> = phases
        .iter()
        .filter(|p| p.skipped > 0 && p.state != PhaseState::Skipped)
        .map(|p| p.phase.as_str())
        .collect();
    let mut reasons: HashMap<String, Vec<SkipReason>> = HashMap::new();
    if !asked.is_empty() {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT phase, message, count(*) FROM import_results
             WHERE run_id = $1 AND state = 'skipped' AND phase = ANY($2)
             GROUP BY 1, 2 ORDER BY 3 DESC, 2",
        )
        .bind(r.id)
        .bind(&asked)
        .fetch_all(pool)
        .await?;
        for (phase, reason, count) in rows {
            reasons.entry(phase).or_default().push(SkipReason {
                reason: reason.unwrap_or_else(|| "no reason recorded".into()),
                count,
            });
        }
    }
    let limits = crate::migration::limits::effective(pool, providers, r.migration_id).await?;
    let settling = match r.state {
        RunState::Paused if r.in_flight > 0 => Some("pausing".to_string()),
        RunState::Cancelled if r.in_flight > 0 => Some("cancelling".to_string()),
        _ => None,
    };
    let preflight_secs = r.preflight_secs.unwrap_or(0.0);
    let mut out = ImportRun {
        id: r.id,
        migration_id: r.migration_id,
        state: r.state,
        target: r.target,
        error: r.error,
        created_by: r.created_by,
        created_at: r.created_at,
        finished_at: r.finished_at,
        elapsed_secs: r.elapsed,
        secs_left: 0.0,
        total: 0,
        sent: 0,
        failed: 0,
        skipped: 0,
        pending: 0,
        phases: vec![],
        preflight_secs,
        preflight_error_pct: (r.state == RunState::Done && preflight_secs > 0.0)
            .then(|| (r.elapsed - preflight_secs) / preflight_secs * 100.0),
        in_flight: r.in_flight,
        settling,
        resend: r.resend,
        hand_over: None,
    };
    if let Some(h) = providers.get(&out.target).and_then(|p| p.hand_over()) {
        let names = h.phases();
        out.hand_over = Some(PreflightHandOver {
            label: h.label().to_string(),
            note: h.note().to_string(),
            records: phases
                .iter()
                .filter(|p| names.contains(&p.phase.as_str()))
                .map(|p| p.skipped)
                .sum(),
            phases: names.iter().map(|n| n.to_string()).collect(),
        });
    }
    let mut finish: HashMap<String, f64> = HashMap::new();
    let slow = slowness(&phases, &planned);
    // Each API's requests over the last ten whole seconds the run worked (samples of the
    // second now and the one before may still be on their way).
    let recent_rates: HashMap<String, f64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT t.api, sum(t.requests)::bigint FROM import_throughput t JOIN import_runs r ON r.id = t.run_id
         WHERE t.run_id = $1
           AND t.sec >= extract(epoch FROM coalesce(r.paused_at, now()))::bigint - 11
           AND t.sec < extract(epoch FROM coalesce(r.paused_at, now()))::bigint - 1
         GROUP BY 1",
    )
    .bind(r.id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter(|(_, n)| *n >= 5)
    .map(|(api, n)| (api, n as f64))
    .collect();
    let now = OffsetDateTime::now_utc();
    // When each phase worked, to say which ran side by side.
    let spans: Vec<(String, OffsetDateTime, OffsetDateTime)> = phases
        .iter()
        .filter(|p| p.state != PhaseState::Skipped)
        .filter_map(|p| Some((p.phase.clone(), p.started_at?, p.finished_at.unwrap_or(now))))
        .collect();
    let label = |name: &str| {
        Phase::parse(name)
            .map(|x| x.label())
            .unwrap_or("?")
            .to_string()
    };
    for p in phases {
        let phase = Phase::parse(&p.phase);
        let qps = limits.qps(&p.api).unwrap_or(0) as f64;
        let batch = limits.batch(&p.api).unwrap_or(1).max(1) as f64;
        let pending = (p.total - p.sent - p.failed - p.skipped).max(0);
        let plan = planned.iter().find(|x| x.phase == p.phase);
        let recent = recent_rates.get(&p.api).copied();
        let (left, estimate) = phase_left(&p, pending, plan, qps, batch, slow, recent);
        let start = phase
            .map(|ph| {
                ph.depends_on()
                    .iter()
                    .map(|d| finish.get(d.as_str()).copied().unwrap_or(0.0))
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0);
        finish.insert(p.phase.clone(), start + left);
        let alongside = spans
            .iter()
            .find(|s| s.0 == p.phase)
            .map(|(me, a, b)| {
                spans
                    .iter()
                    .filter(|(other, c, d)| other != me && c < b && a < d)
                    .map(|(other, ..)| label(other))
                    .collect()
            })
            .unwrap_or_default();
        let skip_reasons = if p.state == PhaseState::Skipped && p.skipped > 0 {
            vec![SkipReason {
                reason: p
                    .note
                    .clone()
                    .unwrap_or_else(|| "the target does not take them".into()),
                count: p.skipped,
            }]
        } else {
            reasons.remove(&p.phase).unwrap_or_default()
        };
        out.total += p.total;
        out.sent += p.sent;
        out.failed += p.failed;
        out.skipped += p.skipped;
        out.pending += pending;
        out.phases.push(PhaseStatus {
            label: label(&p.phase),
            state: p.state,
            api: p.api,
            note: p.note,
            total: p.total,
            sent: p.sent,
            failed: p.failed,
            skipped: p.skipped,
            pending,
            requests: p.requests,
            throttled: p.throttled,
            qps,
            rate: if p.elapsed > 0.5 {
                p.requests as f64 / p.elapsed
            } else {
                0.0
            },
            elapsed_secs: p.elapsed,
            secs_left: left,
            estimate: estimate.into(),
            preflight_secs: plan.map_or(0.0, |x| x.secs),
            started_at: p.started_at,
            finished_at: p.finished_at,
            alongside,
            skip_reasons,
            phase: p.phase,
        });
    }
    out.secs_left = if out.state.live() {
        finish.values().copied().fold(0.0, f64::max)
    } else {
        0.0
    };
    Ok(out)
}

pub async fn status(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
) -> AppResult<ImportRun> {
    let pool = &s.pool;
    actor.require(Permission::Read)?;
    let r: RunRow = sqlx::query_as(&format!(
        "{RUN_SELECT} WHERE r.id = $1 AND r.migration_id = $2"
    ))
    .bind(run_id)
    .bind(migration_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("This migration has no import run {run_id}.")))?;
    build_status(pool, &s.config.providers, r).await
}

/// The migration's runs, newest first.
pub async fn list(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<Vec<ImportRun>> {
    let pool = &s.pool;
    actor.require(Permission::Read)?;
    crate::migration::get(pool, actor, migration_id).await?;
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "{RUN_SELECT} WHERE r.migration_id = $1 ORDER BY r.created_at DESC LIMIT 20"
    ))
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    let mut out = vec![];
    for r in rows {
        out.push(build_status(pool, &s.config.providers, r).await?);
    }
    Ok(out)
}

/// Ends a pause in the books: the time it lasted does not count as working time.
const UNPAUSE: &str =
    "paused_secs = paused_secs + coalesce(extract(epoch FROM now() - paused_at), 0), paused_at = NULL";

/// A pause, resume or cancel races the run's workers (result flushes, heartbeats) on the same
/// rows; PostgreSQL breaks a rare deadlock by failing one side, so that side tries again.
async fn change(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
    action: &str,
) -> AppResult<ImportRun> {
    let mut tries = 0;
    loop {
        match change_once(s, actor, migration_id, run_id, action).await {
            Err(AppError::Internal(e)) if tries < 3 && retryable_db(e.as_ref()) => tries += 1,
            other => return other,
        }
    }
}

/// A deadlock or serialization failure: the transaction did nothing and may run again.
fn retryable_db(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

async fn change_once(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
    action: &str,
) -> AppResult<ImportRun> {
    let pool = &s.pool;
    actor.require(Permission::RunMigrations)?;
    let before = status(s, actor, migration_id, run_id).await?;
    let scope = run_id.to_string();
    let mut tx = pool.begin().await?;
    // The state decided on is the one under the lock, not the one read before: a supervisor
    // finishing the run, or a second click, cannot slip between the check and the change.
    let (state, paused_at): (String, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT state, paused_at FROM import_runs WHERE id = $1 AND migration_id = $2 FOR UPDATE",
    )
    .bind(run_id)
    .bind(migration_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("This migration has no import run {run_id}.")))?;
    let state = decode::<RunState>(&state)?;
    let ok = match action {
        "pause" if state == RunState::Running => {
            sqlx::query("UPDATE import_runs SET state = 'paused', paused_at = now() WHERE id = $1")
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            jobs::pause_scope(&mut *tx, &scope).await?;
            true
        }
        "resume" if state == RunState::Paused => {
            sqlx::query(&format!(
                "UPDATE import_runs SET state = 'running', error = NULL, {UNPAUSE} WHERE id = $1"
            ))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            // Tasks keep their spacing (each phase's paced schedule), moved by the pause.
            sqlx::query(
                "UPDATE jobs SET state = CASE WHEN state = 'paused' THEN 'queued' ELSE state END,
                        control = NULL,
                        run_after = now() + greatest(interval '0', run_after - coalesce($2, now()))
                 WHERE scope = $1 AND (state = 'paused' OR (state = 'running' AND control = 'pause'))",
            )
            .bind(&scope)
            .bind(paused_at)
            .execute(&mut *tx)
            .await?;
            supervise(&mut tx, run_id, migration_id).await?;
            jobs::notify(&mut *tx).await?;
            true
        }
        "cancel" if state.live() => {
            sqlx::query(&format!(
                "UPDATE import_runs SET state = 'cancelled', finished_at = now(), {UNPAUSE} WHERE id = $1"
            ))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            // Every phase ends with the run: none is left `running` with time left.
            sqlx::query(
                "UPDATE import_phases SET state = 'cancelled', finished_at = now()
                 WHERE run_id = $1 AND state IN ('waiting', 'running')",
            )
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            jobs::cancel_scope(&mut *tx, &scope).await?;
            true
        }
        _ => false,
    };
    if !ok {
        return Err(AppError::Conflict(format!(
            "This import is {state}; it cannot {action} now."
        )));
    }
    crate::migration::state::settle(&mut tx, migration_id, Change::Follow).await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        match action {
            "pause" => "import.paused",
            "resume" => "import.resumed",
            _ => "import.cancelled",
        },
        &format!("migration:{migration_id}"),
        json!({ "run": run_id, "sent": before.sent, "failed": before.failed, "pending": before.pending }),
    )
    .await?;
    tx.commit().await?;
    status(s, actor, migration_id, run_id).await
}

pub async fn pause(s: &Services, a: &Actor, m: MigrationId, r: RunId) -> AppResult<ImportRun> {
    change(s, a, m, r, "pause").await
}

pub async fn resume(s: &Services, a: &Actor, m: MigrationId, r: RunId) -> AppResult<ImportRun> {
    change(s, a, m, r, "resume").await
}

pub async fn cancel(s: &Services, a: &Actor, m: MigrationId, r: RunId) -> AppResult<ImportRun> {
    change(s, a, m, r, "cancel").await
}

/// Sends again the failed records of one phase (or every phase), as new tasks of the run.
pub async fn retry_failed(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
    phase: Option<&str>,
) -> AppResult<ImportRun> {
    let pool = &s.pool;
    actor.require(Permission::RunMigrations)?;
    let before = status(s, actor, migration_id, run_id).await?;
    let phases: Vec<Phase> = match phase {
        Some(p) => vec![Phase::parse(p).ok_or_else(|| {
            AppError::validation("phase", format!("`{p}` is not a phase of an import"))
        })?],
        None => Phase::ALL.to_vec(),
    };
    let phases: Vec<Phase> = phases
        .into_iter()
        .filter(|p| {
            before
                .phases
                .iter()
                .any(|s| s.phase == p.as_str() && s.failed > 0)
        })
        .collect();
    if phases.is_empty() {
        return Err(AppError::Conflict(
            "There are no failed records to retry.".into(),
        ));
    }
    if before.state == RunState::Cancelled {
        return Err(AppError::Conflict(
            "This import was cancelled; launch a new one.".into(),
        ));
    }
    let (_, uploads) = run_info(pool, run_id)
        .await?
        .ok_or_else(|| AppError::Conflict("This import was cancelled.".into()))?;
    let mut tx = pool.begin().await?;
    let state: String =
        sqlx::query_scalar("SELECT state FROM import_runs WHERE id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
    let state = decode::<RunState>(&state)?;
    if state != before.state {
        return Err(AppError::Conflict(format!(
            "This import just became {state}; look again and retry."
        )));
    }
    if matches!(state, RunState::Done | RunState::Failed) {
        sqlx::query("UPDATE import_runs SET state = 'running', finished_at = NULL, error = NULL WHERE id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
                Some(c) if c == "23505" => AppError::Conflict(
                    "Another import of this migration is running; retry after it ends.".into(),
                ),
                _ => e.into(),
            })?;
        crate::migration::state::settle(&mut tx, migration_id, Change::Follow).await?;
    }
    let mut tasks = 0;
    for p in &phases {
        tasks +=
            supervisor::plan_tasks(&mut tx, run_id, migration_id, *p, &uploads, true, None).await?;
        sqlx::query(
            "UPDATE import_phases SET state = 'running', finished_at = NULL
             WHERE run_id = $1 AND phase = $2 AND state IN ('done', 'failed')",
        )
        .bind(run_id)
        .bind(p.as_str())
        .execute(&mut *tx)
        .await?;
    }
    supervise(&mut tx, run_id, migration_id).await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "import.retried",
        &format!("migration:{migration_id}"),
        json!({ "run": run_id, "phases": phases.iter().map(|p| p.as_str()).collect::<Vec<_>>(), "tasks": tasks }),
    )
    .await?;
    tx.commit().await?;
    status(s, actor, migration_id, run_id).await
}

/// Which failures to list.
#[derive(Debug, Clone, Default)]
pub struct FailureFilter {
    pub phase: Option<String>,
    /// The provider's error code.
    pub code: Option<i64>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: i64,
    /// `skipped` lists the skipped records (with why) instead of the failed ones.
    pub skipped: bool,
}

#[derive(sqlx::FromRow)]
struct FailedRow {
    phase: String,
    upload_id: UploadId,
    ord: i32,
    code: Option<i64>,
    message: Option<String>,
    attempts: i32,
    at: OffsetDateTime,
}

/// Failed records, filterable by phase and the provider's code, in pages.
pub async fn failures(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    run_id: RunId,
    filter: &FailureFilter,
) -> AppResult<ImportFailuresPage> {
    let pool = &s.pool;
    let (phase, code, after) = (
        filter.phase.as_deref(),
        filter.code,
        filter.after.as_deref(),
    );
    actor.require(Permission::Read)?;
    status(s, actor, migration_id, run_id).await?;
    if let Some(p) = phase {
        Phase::parse(p).ok_or_else(|| {
            AppError::validation("phase", format!("`{p}` is not a phase of an import"))
        })?;
    }
    let (after_phase, after_upload, after_ord) = match after {
        Some(a) => {
            let mut it = a.split('|');
            let (p, u, o) = (it.next(), it.next(), it.next());
            match (
                p,
                u.and_then(|u| u.parse::<UploadId>().ok()),
                o.and_then(|o| o.parse::<i32>().ok()),
            ) {
                (Some(p), Some(u), Some(o)) => (Some(p.to_string()), Some(u), Some(o)),
                _ => {
                    return Err(AppError::validation(
                        "after",
                        "use the `next` of the previous page",
                    ))
                }
            }
        }
        None => (None, None, None),
    };
    let limit = filter.limit.clamp(1, 500);
    let rows: Vec<FailedRow> = sqlx::query_as(
        "SELECT phase, upload_id, ord, code, message, attempts, at FROM import_results
             WHERE run_id = $1 AND state = $8
               AND ($2::text IS NULL OR phase = $2) AND ($3::bigint IS NULL OR code = $3)
               AND ($4::text IS NULL OR (phase, upload_id, ord) > ($4, $5, $6))
             ORDER BY phase, upload_id, ord LIMIT $7",
    )
    .bind(run_id)
    .bind(phase)
    .bind(code)
    .bind(&after_phase)
    .bind(after_upload)
    .bind(after_ord)
    .bind(limit + 1)
    .bind(if filter.skipped { "skipped" } else { "failed" })
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    // Where each record came from, from the staged table of its kind.
    let mut place: HashMap<(UploadId, i32), (String, i64, String)> = HashMap::new();
    let mut by_kind: HashMap<&'static str, (Vec<UploadId>, Vec<i32>)> = HashMap::new();
    for r in rows {
        if let Some(p) = Phase::parse(&r.phase) {
            let (t, _) = crate::dumps::stage::table(p.kind());
            let e = by_kind.entry(t).or_default();
            e.0.push(r.upload_id);
            e.1.push(r.ord);
        }
    }
    for (table, (u, o)) in by_kind {
        let found: Vec<(UploadId, i32, Option<String>, i64, String)> = sqlx::query_as(&format!(
            "SELECT s.upload_id, s.ord, f.name, s.line, left(s.record::text, 300)
             FROM unnest($1::uuid[], $2::int[]) AS k(upload_id, ord)
             JOIN {table} s USING (upload_id, ord)
             LEFT JOIN dump_files f ON f.upload_id = s.upload_id AND f.file_no = s.file_no"
        ))
        .bind(&u)
        .bind(&o)
        .fetch_all(pool)
        .await?;
        for (u, o, name, line, record) in found {
            place.insert((u, o), (name.unwrap_or_default(), line, record));
        }
    }
    let failures: Vec<ImportFailure> = rows
        .iter()
        .map(|r| {
            let (file, line, record) = place
                .get(&(r.upload_id, r.ord))
                .cloned()
                .unwrap_or_default();
            ImportFailure {
                phase: r.phase.clone(),
                upload_id: r.upload_id,
                ord: r.ord,
                file,
                line,
                code: r.code,
                message: r.message.clone().unwrap_or_default(),
                attempts: r.attempts,
                at: r.at,
                record,
            }
        })
        .collect();
    let next = if more {
        failures
            .last()
            .map(|f| format!("{}|{}|{}", f.phase, f.upload_id, f.ord))
    } else {
        None
    };
    Ok(ImportFailuresPage { failures, next })
}
