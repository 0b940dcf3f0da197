//! The import plan: the phases in the order providers require, which staged rows each one
//! takes, how its work is cut into tasks, and the preflight estimate from the quotas.
//!
//! accounts → profiles → friends, blocks → one-to-one history → groups → members → group
//! history → unread counts → conversations. A phase starts when the phases it depends on are
//! done, so independent ones (one-to-one history beside the whole group branch) run at once.

use super::target::{ImportTarget, Support};
use crate::dumps::canonical::Kind;
use crate::model::{MigrationId, Preflight, PreflightPhase, UploadId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Accounts,
    Profiles,
    Friends,
    Blocks,
    C2cHistory,
    Groups,
    Members,
    GroupHistory,
    Unread,
    Conversations,
    GroupEvents,
}

/// How a phase's rows are cut into tasks.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    /// Runs of `n` ordinals of one upload.
    Ords(i32),
    /// `n` keys (owners, groups) per task, every row of a key in one task.
    Keys(usize),
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Accounts,
        Phase::Profiles,
        Phase::Friends,
        Phase::Blocks,
        Phase::C2cHistory,
        Phase::Groups,
        Phase::Members,
        Phase::GroupHistory,
        Phase::Unread,
        Phase::Conversations,
        Phase::GroupEvents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Accounts => "accounts",
            Phase::Profiles => "profiles",
            Phase::Friends => "friends",
            Phase::Blocks => "blocks",
            Phase::C2cHistory => "c2c_history",
            Phase::Groups => "groups",
            Phase::Members => "members",
            Phase::GroupHistory => "group_history",
            Phase::Unread => "unread",
            Phase::Conversations => "conversations",
            Phase::GroupEvents => "group_events",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::Accounts => "Accounts",
            Phase::Profiles => "Profiles",
            Phase::Friends => "Friends",
            Phase::Blocks => "Blocks",
            Phase::C2cHistory => "One-to-one history",
            Phase::Groups => "Groups",
            Phase::Members => "Group members",
            Phase::GroupHistory => "Group history",
            Phase::Unread => "Unread counts",
            Phase::Conversations => "Conversations",
            Phase::GroupEvents => "Group events",
        }
    }

    pub fn depends_on(self) -> &'static [Phase] {
        match self {
            Phase::Accounts => &[],
            Phase::Profiles
            | Phase::Friends
            | Phase::Blocks
            | Phase::C2cHistory
            | Phase::Groups => &[Phase::Accounts],
            Phase::Members => &[Phase::Groups],
            Phase::GroupHistory => &[Phase::Members],
            // Importing group messages zeroes unread counts: set them after.
            Phase::Unread | Phase::GroupEvents => &[Phase::GroupHistory],
            Phase::Conversations => &[Phase::C2cHistory, Phase::GroupHistory],
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Phase::Accounts | Phase::Profiles => Kind::Account,
            Phase::Friends => Kind::Friend,
            Phase::Blocks => Kind::Block,
            Phase::C2cHistory | Phase::GroupHistory => Kind::Message,
            Phase::Groups => Kind::Group,
            Phase::Members | Phase::Unread => Kind::Member,
            Phase::Conversations => Kind::Conversation,
            Phase::GroupEvents => Kind::GroupEvent,
        }
    }

    /// The SQL expression (over `s`, the staged row) requests are grouped by.
    pub fn key(self) -> &'static str {
        match self {
            Phase::Accounts | Phase::Profiles => "s.account_id",
            Phase::Friends | Phase::Blocks | Phase::Conversations => "s.owner",
            Phase::C2cHistory => "s.from_id",
            Phase::GroupHistory => "s.to_id",
            Phase::Groups | Phase::Members | Phase::Unread | Phase::GroupEvents => "s.group_id",
        }
    }

    /// Which of the kind's rows the phase takes.
    pub fn filter(self) -> &'static str {
        match self {
            Phase::Profiles => {
                "(s.record::jsonb ?| array['gender', 'birthday', 'signature', 'location', 'custom'])"
            }
            Phase::C2cHistory => "s.conv = 'c2c'",
            Phase::GroupHistory => "s.conv = 'group'",
            Phase::Unread => "coalesce((s.record->>'unread')::bigint, 0) > 0",
            _ => "true",
        }
    }

    /// The order a task takes its rows in: history by time, batched phases by key.
    pub fn order(self) -> String {
        match self {
            Phase::C2cHistory => "s.sent_at, s.upload_id, s.ord".into(),
            Phase::GroupHistory => "s.to_id, s.sent_at, s.upload_id, s.ord".into(),
            Phase::Friends | Phase::Blocks | Phase::Members | Phase::Unread => {
                format!("{}, s.upload_id, s.ord", self.key())
            }
            _ => "s.upload_id, s.ord".into(),
        }
    }

    pub fn split(self) -> Split {
        match self {
            Phase::Accounts => Split::Ords(1000),
            Phase::Profiles => Split::Ords(500),
            Phase::C2cHistory => Split::Ords(500),
            Phase::Groups => Split::Ords(200),
            Phase::Conversations | Phase::GroupEvents => Split::Ords(5000),
            Phase::Friends => Split::Keys(100),
            Phase::Blocks => Split::Keys(200),
            Phase::Members | Phase::Unread => Split::Keys(20),
            // One group's history is one ordered stream.
            Phase::GroupHistory => Split::Keys(1),
        }
    }

    /// What a record of this phase needs the target to have already: the phase that imports
    /// it, and the SQL (over `s`, the staged row) naming it. A record whose account or group
    /// was not imported fails here, saying which, instead of going out to be refused.
    pub fn needs(self) -> &'static [(Phase, &'static str)] {
        match self {
            Phase::Profiles => &[(Phase::Accounts, "s.account_id")],
            Phase::Friends => &[(Phase::Accounts, "s.owner"), (Phase::Accounts, "s.friend")],
            Phase::Blocks => &[(Phase::Accounts, "s.owner"), (Phase::Accounts, "s.blocked")],
            Phase::C2cHistory => &[(Phase::Accounts, "s.from_id"), (Phase::Accounts, "s.to_id")],
            Phase::Groups => &[(Phase::Accounts, "s.owner")],
            Phase::Members | Phase::Unread => &[
                (Phase::Groups, "s.group_id"),
                (Phase::Accounts, "s.account"),
            ],
            Phase::GroupHistory => &[(Phase::Groups, "s.to_id"), (Phase::Accounts, "s.from_id")],
            Phase::Accounts | Phase::Conversations | Phase::GroupEvents => &[],
        }
    }

    /// Whether the key is a parameter of the request (one owner's friends, one group's
    /// members), so a request holds one key's records. Otherwise a request takes the records
    /// of any keys (a hundred accounts at once), up to the API's batch size.
    pub fn key_in_request(self) -> bool {
        matches!(
            self,
            Phase::Friends | Phase::Blocks | Phase::Members | Phase::GroupHistory | Phase::Unread
        )
    }

    /// Requests of one key go one after another (group history must arrive in order; one
    /// user's friends at once would conflict: a target answers such concurrent writes with an
    /// error).
    pub fn one_key_at_a_time(self) -> bool {
        matches!(
            self,
            Phase::GroupHistory | Phase::Friends | Phase::Blocks | Phase::Members
        )
    }

    /// The staged rows of this phase among `$1` (uploads), without records kept aside, nor
    /// those a `failed_or_new` relaunch running now leaves out because an earlier run sent them
    /// (so its tasks, their spacing and its counts cover only what it sends).
    pub fn from_where(self) -> String {
        let (table, _) = crate::dumps::stage::table(self.kind());
        format!(
            "FROM {table} s WHERE s.upload_id = ANY($1) AND {}
               AND NOT EXISTS (SELECT 1 FROM staged_holds h WHERE h.upload_id = s.upload_id AND h.ord = s.ord)
               AND NOT EXISTS (SELECT 1 FROM import_sent_before b JOIN import_runs br ON br.id = b.run_id
                   AND br.state IN ('running', 'paused')
                   WHERE b.upload_id = s.upload_id AND b.ord = s.ord AND b.phase = '{}')",
            self.filter(),
            self.as_str()
        )
    }
}

/// What a launch under an earlier run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resend {
    /// Every staged record again (the target's dedupe absorbs what it already has).
    All,
    /// Only records no earlier run of the migration sent: those that failed, were skipped or
    /// are new since.
    FailedOrNew,
}

impl Resend {
    pub fn as_str(self) -> &'static str {
        match self {
            Resend::All => "all",
            Resend::FailedOrNew => "failed_or_new",
        }
    }

    pub fn parse(s: &str) -> Option<Resend> {
        [Resend::All, Resend::FailedOrNew]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The staged uploads an import takes (its data is frozen while the run lasts).
pub async fn staged_uploads<'e>(
    db: impl sqlx::PgExecutor<'e>,
    migration_id: MigrationId,
) -> Result<Vec<UploadId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM dump_uploads WHERE migration_id = $1 AND state = 'staged' ORDER BY seq",
    )
    .bind(migration_id)
    .fetch_all(db)
    .await
}

/// How much of a phase is staged: its records, its distinct keys, and for phases whose
/// requests hold one key's records, how many keys hold how many records (so the requests a
/// batch size makes can be counted exactly, not guessed from the averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSize {
    pub records: i64,
    pub keys: i64,
    /// `(records of a key, keys with that many)`, for [`Phase::key_in_request`] phases.
    #[serde(default)]
    pub per_key: Vec<(i64, i64)>,
}

impl PhaseSize {
    /// Requests this phase takes at `batch` records per request.
    pub fn requests(&self, phase: Phase, batch: usize) -> i64 {
        let b = batch.max(1) as i64;
        if phase.key_in_request() {
            self.per_key
                .iter()
                .map(|(n, k)| k * ((n + b - 1) / b))
                .sum()
        } else {
            (self.records + b - 1) / b
        }
    }
}

/// The staged size of every phase.
pub async fn sizes(
    pool: &PgPool,
    uploads: &[UploadId],
) -> Result<HashMap<Phase, PhaseSize>, sqlx::Error> {
    let mut out = HashMap::new();
    for phase in Phase::ALL {
        let size = if phase.key_in_request() {
            let per_key: Vec<(i64, i64)> = sqlx::query_as(&format!(
                "SELECT n, count(*) FROM (SELECT count(*) AS n {} GROUP BY {}) k GROUP BY n ORDER BY n",
                phase.from_where(),
                phase.key()
            ))
            .bind(uploads)
            .fetch_all(pool)
            .await?;
            PhaseSize {
                records: per_key.iter().map(|(n, k)| n * k).sum(),
                keys: per_key.iter().map(|(_, k)| k).sum(),
                per_key,
            }
        } else {
            let (records, keys): (i64, i64) = sqlx::query_as(&format!(
                "SELECT count(*), count(DISTINCT {}) {}",
                phase.key(),
                phase.from_where()
            ))
            .bind(uploads)
            .fetch_one(pool)
            .await?;
            PhaseSize {
                records,
                keys,
                per_key: vec![],
            }
        };
        out.insert(phase, size);
    }
    Ok(out)
}

/// [`sizes`] as the last validation counted them (`dumps::counts`, stored with the report), so
/// opening the Import tab never counts staged rows.
pub async fn cached_sizes(
    pool: &PgPool,
    migration_id: MigrationId,
    _uploads: &[UploadId],
) -> Result<HashMap<Phase, PhaseSize>, sqlx::Error> {
    crate::dumps::counts::stored(pool, migration_id).await
}

/// The preflight's phases and the time the quotas make them take; phases that do not wait on
/// each other overlap, so the whole is the longest chain, not the sum.
pub fn estimate(
    target: &dyn ImportTarget,
    sizes: &HashMap<Phase, PhaseSize>,
) -> (Vec<PreflightPhase>, f64) {
    let mut finish: HashMap<Phase, f64> = HashMap::new();
    let mut phases = vec![];
    for phase in Phase::ALL {
        let size = sizes.get(&phase).cloned().unwrap_or_default();
        let records = size.records;
        let start = phase
            .depends_on()
            .iter()
            .map(|d| finish.get(d).copied().unwrap_or(0.0))
            .fold(0.0, f64::max);
        let (api, batch, qps, note) = match target.support(phase) {
            Support::Api { api, batch, qps } => (api.to_string(), batch, qps, None),
            Support::Skip(why) => (String::new(), 1, 0.0, Some(why)),
        };
        let reqs = if note.is_some() {
            0
        } else {
            size.requests(phase, batch)
        };
        let secs = if qps > 0.0 { reqs as f64 / qps } else { 0.0 };
        finish.insert(phase, start + secs);
        phases.push(PreflightPhase {
            phase: phase.as_str().into(),
            label: phase.label().into(),
            api,
            records,
            requests: reqs,
            qps,
            batch: batch as i64,
            secs,
            depends_on: phase
                .depends_on()
                .iter()
                .map(|d| d.as_str().to_string())
                .collect(),
            note,
            sent_before: 0,
        });
    }
    let total = finish.values().copied().fold(0.0, f64::max);
    (phases, total)
}

/// An empty preflight to fill in.
pub fn preflight(target: String, base_url: String, sandbox: bool) -> Preflight {
    Preflight {
        target,
        base_url,
        sandbox,
        phases: vec![],
        records: 0,
        by_api: 0,
        hand_over: None,
        media_links: 0,
        estimate_secs: 0.0,
        warnings: vec![],
        blockers: vec![],
        earlier: None,
    }
}
