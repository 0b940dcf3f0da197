//! Where a migration stands, decided in one place. The state is not set by whoever happens to
//! change something: every change (keys saved, a run launched, paused, resumed, cancelled,
//! finished or failed, archive and restore) calls [`settle`], which derives the state from the
//! facts in the tables with [`derive`]. So the badge can never disagree with the runs.

use crate::model::{MigrationId, MigrationState, RunState, Strategy};
use sqlx::PgConnection;

/// What the state is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub archived: bool,
    pub keys_set: bool,
    pub strategy: Strategy,
    /// The state of the newest import run, if any.
    pub last_run: Option<RunFact>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFact {
    Running,
    Paused,
    Done,
    /// Cancelled or failed: the migration is back where it was before the run.
    Ended,
}

impl From<RunState> for RunFact {
    fn from(s: RunState) -> RunFact {
        match s {
            RunState::Running => RunFact::Running,
            RunState::Paused => RunFact::Paused,
            RunState::Done => RunFact::Done,
            RunState::Cancelled | RunState::Failed => RunFact::Ended,
        }
    }
}

/// What a person asked for, beyond what the tables say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Something the state follows changed (keys, runs): derive it again.
    Follow,
    Archive,
    Restore,
}

/// The state the facts make.
pub fn derive(f: &Facts) -> MigrationState {
    if f.archived {
        return MigrationState::Archived;
    }
    match f.last_run {
        Some(RunFact::Running) => MigrationState::Importing,
        Some(RunFact::Paused) => MigrationState::Paused,
        Some(RunFact::Done) => match f.strategy {
            Strategy::Coexistence => MigrationState::Syncing,
            Strategy::ForcedUpgrade => MigrationState::Done,
        },
        Some(RunFact::Ended) | None if f.keys_set => MigrationState::Ready,
        Some(RunFact::Ended) | None => MigrationState::Draft,
    }
}

/// Derives the migration's state after `change` and stores it (in the caller's transaction,
/// which should hold the row lock if it races). Returns the new state.
pub async fn settle(
    conn: &mut PgConnection,
    migration_id: MigrationId,
    change: Change,
) -> Result<Option<MigrationState>, sqlx::Error> {
    let row: Option<(String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT m.state, m.strategy,
                EXISTS (SELECT 1 FROM connections c WHERE c.migration_id = m.id AND c.side = 'target'
                        AND c.provider = m.target AND c.complete),
                (SELECT r.state FROM import_runs r WHERE r.migration_id = m.id
                  ORDER BY (r.state IN ('running', 'paused')) DESC, r.created_at DESC LIMIT 1)
         FROM im_migrations m WHERE m.id = $1 FOR UPDATE OF m",
    )
    .bind(migration_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((state, strategy, keys_set, last_run)) = row else {
        return Ok(None);
    };
    let facts = Facts {
        archived: match change {
            Change::Archive => true,
            Change::Restore => false,
            Change::Follow => state == "archived",
        },
        keys_set,
        strategy: Strategy::try_from(strategy).unwrap_or(Strategy::ForcedUpgrade),
        last_run: last_run
            .as_deref()
            .map(crate::import::decode::<RunState>)
            .transpose()?
            .map(RunFact::from),
    };
    let new = derive(&facts);
    if new.as_str() != state {
        sqlx::query("UPDATE im_migrations SET state = $2, updated_at = now() WHERE id = $1")
            .bind(migration_id)
            .bind(new.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(last_run: Option<RunFact>) -> Facts {
        Facts {
            archived: false,
            keys_set: true,
            strategy: Strategy::ForcedUpgrade,
            last_run,
        }
    }

    #[test]
    fn the_state_follows_the_newest_run() {
        assert_eq!(derive(&facts(None)), MigrationState::Ready);
        assert_eq!(
            derive(&facts(Some(RunFact::Running))),
            MigrationState::Importing
        );
        assert_eq!(
            derive(&facts(Some(RunFact::Paused))),
            MigrationState::Paused
        );
        assert_eq!(derive(&facts(Some(RunFact::Done))), MigrationState::Done);
        // A cancelled or failed run gives the migration back as it was.
        assert_eq!(derive(&facts(Some(RunFact::Ended))), MigrationState::Ready);
        let no_keys = Facts {
            keys_set: false,
            ..facts(Some(RunFact::Ended))
        };
        assert_eq!(derive(&no_keys), MigrationState::Draft);
        let coexist = Facts {
            strategy: Strategy::Coexistence,
            ..facts(Some(RunFact::Done))
        };
        assert_eq!(derive(&coexist), MigrationState::Syncing);
    }

    #[test]
    fn archived_wins_until_restored() {
        let f = Facts {
            archived: true,
            ..facts(Some(RunFact::Running))
        };
        assert_eq!(derive(&f), MigrationState::Archived);
    }
}
