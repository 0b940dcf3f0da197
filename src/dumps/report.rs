//! Reading the validation report: the stored numbers, each rule with its first examples, the
//! findings page by page, and all of them as CSV.

use super::check::explanation;
use crate::auth::Actor;
use crate::model::{
    DumpReport, FindingRow, FindingsPage, MigrationId, Permission, ReportState, RuleSummary,
};
use crate::service::{AppError, AppResult};
use axum::body::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Examples shown under each rule.
const EXAMPLES: i64 = 3;
const PAGE_MAX: i64 = 500;

#[derive(sqlx::FromRow)]
struct Stored {
    /// validating, current or failed (the others are figured).
    #[sqlx(try_from = "String")]
    state: ReportState,
    counts: sqlx::types::Json<BTreeMap<String, i64>>,
    accepted: sqlx::types::Json<BTreeMap<String, i64>>,
    rejected: sqlx::types::Json<BTreeMap<String, i64>>,
    superseded: sqlx::types::Json<BTreeMap<String, i64>>,
    rules: sqlx::types::Json<Vec<StoredRule>>,
    validated_at: Option<OffsetDateTime>,
    error: Option<String>,
}

/// Where the report stands, as scripts wait on it: `pending` (nothing checked yet), `validating`
/// (a check is queued or running), `current`, `stale` (an upload is being staged since the
/// last check; a check follows it) or `failed` (the check gave up; `error` says why).
fn state(stored: Option<ReportState>, staging: bool) -> ReportState {
    match (stored, staging) {
        (None, _) => ReportState::Pending,
        (Some(ReportState::Validating), _) => ReportState::Validating,
        (Some(_), true) => ReportState::Stale,
        (Some(ReportState::Failed), false) => ReportState::Failed,
        (Some(_), false) => ReportState::Current,
    }
}

#[derive(Deserialize)]
struct StoredRule {
    code: String,
    severity: String,
    count: i64,
}

const FINDING_COLUMNS: &str =
    "SELECT id, code, severity, file, line, message, excerpt, converted FROM dump_findings";

pub async fn report(
    pool: &PgPool,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<DumpReport> {
    actor.require(Permission::Read)?;
    crate::migration::get(pool, actor, migration_id).await?;
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT state, counts, accepted, rejected, superseded, rules, validated_at, error
         FROM dump_reports WHERE migration_id = $1",
    )
    .bind(migration_id)
    .fetch_optional(pool)
    .await?;
    let staging: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM dump_uploads WHERE migration_id = $1 AND state IN ('queued', 'ingesting'))",
    )
    .bind(migration_id)
    .fetch_one(pool)
    .await?;
    let Some(s) = stored else {
        return Ok(DumpReport {
            state: state(None, staging),
            error: None,
            counts: BTreeMap::new(),
            accepted: BTreeMap::new(),
            rejected: BTreeMap::new(),
            superseded: BTreeMap::new(),
            errors: 0,
            warnings: 0,
            rules: vec![],
            validated_at: None,
        });
    };
    // Findings past the per-rule cap of an upload were counted, not stored: they count here.
    let not_kept: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT n.code, n.severity, sum(n.count)::bigint FROM dump_findings_not_kept n
         JOIN dump_uploads u ON u.id = n.upload_id AND u.state = 'staged'
         WHERE n.migration_id = $1 GROUP BY 1, 2",
    )
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    let mut stored_rules = s.rules.0;
    for (code, severity, _) in &not_kept {
        if !stored_rules.iter().any(|r| &r.code == code) {
            stored_rules.push(StoredRule {
                code: code.clone(),
                severity: severity.clone(),
                count: 0,
            });
        }
    }
    let mut rules = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    for r in stored_rules {
        let missing = not_kept.iter().find(|n| n.0 == r.code).map_or(0, |n| n.2);
        let count = r.count + missing;
        if r.severity == "error" {
            errors += count;
        } else {
            warnings += count;
        }
        let examples: Vec<FindingRow> = sqlx::query_as(&format!(
            "{FINDING_COLUMNS} WHERE migration_id = $1 AND code = $2 ORDER BY id LIMIT $3"
        ))
        .bind(migration_id)
        .bind(&r.code)
        .bind(EXAMPLES)
        .fetch_all(pool)
        .await?;
        rules.push(RuleSummary {
            explanation: explanation(&r.code).to_string(),
            code: r.code,
            severity: r.severity,
            count,
            not_kept: missing,
            examples,
        });
    }
    // Errors first, then the most frequent, as the stored list is ordered.
    rules.sort_by(|a, b| {
        (b.severity == "error", b.count, &a.code).cmp(&(a.severity == "error", a.count, &b.code))
    });
    Ok(DumpReport {
        state: state(Some(s.state), staging),
        // Said only while it is the report's state: a failed check's numbers are the last
        // good ones, and a later upload's check may still fix it.
        error: (s.state == ReportState::Failed)
            .then_some(s.error)
            .flatten(),
        counts: s.counts.0,
        accepted: s.accepted.0,
        rejected: s.rejected.0,
        superseded: s.superseded.0,
        errors,
        warnings,
        rules,
        validated_at: s.validated_at,
    })
}

/// Which findings to list.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct FindingFilter {
    /// Only this rule, e.g. `ref.account_missing`.
    pub code: Option<String>,
    /// `error` or `warning`.
    pub severity: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<i64>,
    /// Page size, at most 500 (default 100).
    pub limit: Option<i64>,
}

fn filtered<'a>(
    migration_id: MigrationId,
    f: &'a FindingFilter,
) -> AppResult<QueryBuilder<'a, Postgres>> {
    let mut qb = QueryBuilder::new(FINDING_COLUMNS);
    qb.push(" WHERE migration_id = ").push_bind(migration_id);
    if let Some(code) = f.code.as_deref().filter(|c| !c.is_empty()) {
        qb.push(" AND code = ").push_bind(code);
    }
    match f.severity.as_deref().filter(|c| !c.is_empty()) {
        None => {}
        Some(s @ ("error" | "warning")) => {
            qb.push(" AND severity = ").push_bind(s);
        }
        Some(other) => {
            return Err(AppError::validation(
                "severity",
                format!("`{other}` is not error or warning"),
            ))
        }
    }
    if let Some(after) = f.after {
        qb.push(" AND id > ").push_bind(after);
    }
    Ok(qb)
}

pub async fn findings(
    pool: &PgPool,
    actor: &Actor,
    migration_id: MigrationId,
    f: &FindingFilter,
) -> AppResult<FindingsPage> {
    actor.require(Permission::Read)?;
    crate::migration::get(pool, actor, migration_id).await?;
    let limit = f.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    let mut qb = filtered(migration_id, f)?;
    qb.push(" ORDER BY id LIMIT ").push_bind(limit + 1);
    let mut rows: Vec<FindingRow> = qb.build_query_as().fetch_all(pool).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(FindingsPage {
        findings: rows,
        next,
    })
}

/// Every matching finding as CSV, streamed: a dump with millions of findings downloads
/// without the server holding them.
pub async fn findings_csv(
    pool: &PgPool,
    actor: &Actor,
    migration_id: MigrationId,
    f: FindingFilter,
) -> AppResult<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
    actor.require(Permission::Read)?;
    crate::migration::get(pool, actor, migration_id).await?;
    // Refuse a bad filter now, while a status code can still say so.
    filtered(migration_id, &f)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pool = pool.clone();
    tokio::spawn(async move {
        let row = |r: &FindingRow| -> Vec<u8> {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(crate::csv_safe::row([
                r.code.as_str(),
                r.severity.as_str(),
                r.file.as_str(),
                &r.line.to_string(),
                r.message.as_str(),
                r.excerpt.as_str(),
            ]));
            w.into_inner().unwrap_or_default()
        };
        let mut buf = b"code,severity,file,line,message,excerpt\n".to_vec();
        let Ok(mut qb) = filtered(migration_id, &f) else {
            return;
        };
        qb.push(" ORDER BY id");
        let mut rows = qb.build_query_as::<FindingRow>().fetch(&pool);
        loop {
            match rows.try_next().await {
                Ok(Some(r)) => {
                    buf.extend(row(&r));
                    if buf.len() > 64 * 1024
                        && tx
                            .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    });
    Ok(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
