//! Where a migration stands and what it needs next: its state and newest run's progress (the
//! "pulse" pages poll to stay live), what is staged, and the next step.

use crate::auth::Actor;
use crate::model::{
    MigrationId, MigrationOverview, MigrationPulse, MigrationState, NextStep, Permission,
    ReportState, RunId, RunProgress, RunState, Strategy, UploadId,
};
use crate::service::AppResult;
use sqlx::PgPool;
use std::collections::HashSet;

type PulseRow = (
    MigrationId,
    String,
    Option<RunId>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
);

/// The pulse of one migration (archived or not), or of every live one when `id` is None.
pub async fn pulses(
    pool: &PgPool,
    actor: &Actor,
    id: Option<MigrationId>,
) -> AppResult<Vec<MigrationPulse>> {
    actor.require(Permission::Read)?;
    // The run picked as `state::settle` picks it, so the numbers belong to the state shown.
    let rows: Vec<PulseRow> = sqlx::query_as(
        "SELECT m.id, m.state, r.id, r.state, r.error,
                coalesce(sum(p.total), 0)::bigint, coalesce(sum(p.sent), 0)::bigint,
                coalesce(sum(p.failed), 0)::bigint, coalesce(sum(p.skipped), 0)::bigint,
                (SELECT count(*) FROM dump_uploads u WHERE u.migration_id = m.id AND u.state = 'staged'),
                coalesce((SELECT d.state IN ('validating', 'stale') FROM dump_reports d WHERE d.migration_id = m.id), false)
         FROM im_migrations m
         LEFT JOIN LATERAL (
             SELECT r.id, r.state, r.error FROM import_runs r WHERE r.migration_id = m.id
             ORDER BY (r.state IN ('running', 'paused')) DESC, r.created_at DESC LIMIT 1
         ) r ON true
         LEFT JOIN import_phases p ON p.run_id = r.id
         WHERE CASE WHEN $1::uuid IS NULL THEN m.state <> 'archived' ELSE m.id = $1 END
         GROUP BY m.id, m.state, r.id, r.state, r.error, m.created_at
         ORDER BY m.created_at DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let pulses = rows
        .into_iter()
        .map(
            |(id, state, run, run_state, error, total, sent, failed, skipped, staged, checking)| {
                // The run's row came with its id, so its state is there too.
                let run_state = run_state
                    .as_deref()
                    .map(crate::import::decode::<RunState>)
                    .transpose()?;
                Ok(MigrationPulse {
                    id,
                    state: state.parse().unwrap_or(MigrationState::Draft),
                    run: run.zip(run_state).map(|(id, state)| RunProgress {
                        id,
                        state,
                        total,
                        sent,
                        failed,
                        skipped,
                        error,
                    }),
                    staged_uploads: staged,
                    checking,
                })
            },
        )
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(pulses)
}

/// What the next step is decided from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Situation {
    pub archived: bool,
    pub keys_set: bool,
    pub coexistence: bool,
    /// The newest run's state and failed records.
    pub run: Option<(RunState, i64)>,
    pub staged_uploads: i64,
    pub validating: bool,
    /// The last check of the dumps failed (a launch is refused until one succeeds).
    pub check_failed: bool,
    pub errors: i64,
    pub staged_since_run: i64,
}

/// The one thing that stands before the migration moves on, in the order a team meets them.
pub fn next_step(s: &Situation) -> NextStep {
    if s.archived {
        return NextStep::Restore;
    }
    let run = s.run;
    match run {
        Some((RunState::Running, _)) => return NextStep::Running,
        Some((RunState::Paused, _)) => return NextStep::Resume,
        _ => {}
    }
    if !s.keys_set {
        return NextStep::SetKeys;
    }
    if s.validating {
        return NextStep::WaitValidation;
    }
    if s.check_failed && s.staged_uploads > 0 {
        return NextStep::CheckFailed;
    }
    if let Some((RunState::Done, failed)) = run {
        if s.staged_since_run == 0 {
            return if failed > 0 {
                NextStep::RetryFailures
            } else if s.coexistence {
                NextStep::Sync
            } else {
                NextStep::Done
            };
        }
    }
    if s.staged_uploads == 0 {
        return NextStep::UploadDumps;
    }
    // Records kept aside are not sent: worth a look before the first import of them.
    if s.errors > 0 && !matches!(run, Some((RunState::Done, _))) {
        return NextStep::ReviewErrors;
    }
    NextStep::Launch
}

pub async fn overview(
    pool: &PgPool,
    actor: &Actor,
    id: MigrationId,
) -> AppResult<MigrationOverview> {
    let m = super::get(pool, actor, id).await?;
    let pulse = pulses(pool, actor, Some(id))
        .await?
        .pop()
        .ok_or_else(|| crate::service::AppError::NotFound(format!("No migration has id {id}.")))?;
    // The target connection points at a sandbox this console started.
    let sandbox: bool = sqlx::query_scalar(
        "SELECT coalesce(bool_or(c.sandbox), false) FROM connections c
         JOIN im_migrations m ON m.id = c.migration_id AND c.provider = m.target
         WHERE c.migration_id = $1 AND c.side = 'target'",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    let staged_ids = crate::import::plan::staged_uploads(pool, id).await?;
    let report = crate::dumps::report::report(pool, actor, id).await?;
    // Uploads the newest finished run did not take (staged after it launched).
    let run_uploads: Option<serde_json::Value> = match &pulse.run {
        Some(r) if r.state == RunState::Done => {
            sqlx::query_scalar("SELECT plan->'uploads' FROM import_runs WHERE id = $1")
                .bind(r.id)
                .fetch_optional(pool)
                .await?
        }
        _ => None,
    };
    let taken: HashSet<UploadId> = run_uploads
        .and_then(|v| serde_json::from_value::<Vec<UploadId>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let staged_since_run = if pulse
        .run
        .as_ref()
        .is_some_and(|r| r.state == RunState::Done)
    {
        staged_ids.iter().filter(|u| !taken.contains(u)).count() as i64
    } else {
        0
    };
    // Stale: data staged since the last check, whose own check is on its way.
    let validating = matches!(report.state, ReportState::Validating | ReportState::Stale);
    let situation = Situation {
        archived: m.state == MigrationState::Archived,
        keys_set: m.keys_set,
        coexistence: m.strategy == Strategy::Coexistence,
        run: pulse.run.as_ref().map(|r| (r.state, r.failed)),
        staged_uploads: staged_ids.len() as i64,
        validating,
        check_failed: report.state == ReportState::Failed,
        errors: report.errors,
        staged_since_run,
    };
    Ok(MigrationOverview {
        next: next_step(&situation),
        pulse,
        keys_set: m.keys_set,
        sandbox,
        staged_uploads: staged_ids.len() as i64,
        staged: report.accepted,
        kept_aside: report.rejected.values().sum(),
        errors: report.errors,
        warnings: report.warnings,
        validating,
        check_error: (report.state == ReportState::Failed)
            .then(|| report.error.clone().unwrap_or_default()),
        staged_since_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Situation {
        Situation {
            keys_set: true,
            staged_uploads: 1,
            ..Situation::default()
        }
    }

    #[test]
    fn a_new_migration_needs_keys_then_dumps_then_a_launch() {
        assert_eq!(next_step(&Situation::default()), NextStep::SetKeys);
        let keys = Situation {
            keys_set: true,
            ..Situation::default()
        };
        assert_eq!(next_step(&keys), NextStep::UploadDumps);
        assert_eq!(next_step(&ready()), NextStep::Launch);
        let checking = Situation {
            validating: true,
            ..ready()
        };
        assert_eq!(next_step(&checking), NextStep::WaitValidation);
        let errors = Situation {
            errors: 3,
            ..ready()
        };
        assert_eq!(next_step(&errors), NextStep::ReviewErrors);
        // A check that failed stands before a launch the preflight would refuse.
        let failed = Situation {
            check_failed: true,
            errors: 3,
            ..ready()
        };
        assert_eq!(next_step(&failed), NextStep::CheckFailed);
        let nothing = Situation {
            check_failed: true,
            staged_uploads: 0,
            ..ready()
        };
        assert_eq!(next_step(&nothing), NextStep::UploadDumps);
    }

    #[test]
    fn a_run_decides_while_it_moves_and_after_it_is_done() {
        let run = |state: RunState, failed| Situation {
            run: Some((state, failed)),
            ..ready()
        };
        assert_eq!(next_step(&run(RunState::Running, 0)), NextStep::Running);
        assert_eq!(next_step(&run(RunState::Paused, 0)), NextStep::Resume);
        assert_eq!(next_step(&run(RunState::Done, 2)), NextStep::RetryFailures);
        assert_eq!(next_step(&run(RunState::Done, 0)), NextStep::Done);
        // A cancelled or failed run leaves the staged records to launch again.
        assert_eq!(next_step(&run(RunState::Cancelled, 0)), NextStep::Launch);
        let coexist = Situation {
            coexistence: true,
            ..run(RunState::Done, 0)
        };
        assert_eq!(next_step(&coexist), NextStep::Sync);
        // Dumps staged after the run are the next thing to import.
        let more = Situation {
            staged_since_run: 1,
            ..run(RunState::Done, 0)
        };
        assert_eq!(next_step(&more), NextStep::Launch);
        let archived = Situation {
            archived: true,
            ..run(RunState::Running, 0)
        };
        assert_eq!(next_step(&archived), NextStep::Restore);
    }
}
