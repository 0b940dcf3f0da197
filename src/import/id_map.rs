//! The import's id map: what a target made of each old id where it chose its own (a target's
//! team ids, accounts it keeps in lower case, the seq a target gives a group message). The
//! runner writes it with each result (see `runner.rs`); later phases and runs read it, and the
//! Import tab shows, searches and exports it.

use crate::auth::Actor;
use crate::model::{IdMapEntry, IdMapPage, MigrationId, Permission, RunId};
use crate::service::{AppError, AppResult, Services};
use time::OffsetDateTime;

/// How a group message is named in the map: its group and its id (a message id alone is
/// unique only with its sender, recipient and time).
pub fn group_message_key(group: &str, id: &str) -> String {
    format!("{group}:{id}")
}

/// A LIKE pattern that matches `q` as a plain substring: its wildcards are escaped.
pub fn contains(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Which entries to list: one kind, those whose old or new id contains `q`, after a cursor.
#[derive(Debug, Clone, Default)]
pub struct IdMapFilter {
    pub kind: Option<String>,
    pub q: Option<String>,
    /// `kind|old_id` of the last entry of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

pub async fn list(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    f: &IdMapFilter,
) -> AppResult<IdMapPage> {
    actor.require(Permission::Read)?;
    crate::migration::get(&s.pool, actor, migration_id).await?;
    if let Some(k) = f.kind.as_deref() {
        if !["account", "group", "message"].contains(&k) {
            return Err(AppError::validation(
                "kind",
                format!("`{k}` is not a kind of id in the map; use account, group or message"),
            ));
        }
    }
    let (after_kind, after_old) = match f.after.as_deref() {
        Some(a) => match a.split_once('|') {
            Some((k, o)) => (Some(k.to_string()), Some(o.to_string())),
            None => {
                return Err(AppError::validation(
                    "after",
                    "not a cursor this list gave (`kind|old id`)",
                ))
            }
        },
        None => (None, None),
    };
    let pattern = f.q.as_deref().filter(|q| !q.is_empty()).map(contains);
    let limit = f.limit.clamp(1, 1000);
    let rows: Vec<(String, String, String, RunId, OffsetDateTime)> = sqlx::query_as(
        "SELECT kind, old_id, new_id, run_id, at FROM import_id_map
         WHERE migration_id = $1
           AND ($2::text IS NULL OR kind = $2)
           AND ($3::text IS NULL OR old_id LIKE $3 OR new_id LIKE $3)
           AND ($4::text IS NULL OR (kind, old_id) > ($4, $5))
         ORDER BY kind, old_id
         LIMIT $6",
    )
    .bind(migration_id)
    .bind(f.kind.as_deref())
    .bind(pattern.as_deref())
    .bind(after_kind.as_deref())
    .bind(after_old.as_deref().unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_id_map WHERE migration_id = $1 AND ($2::text IS NULL OR kind = $2)",
    )
    .bind(migration_id)
    .bind(f.kind.as_deref())
    .fetch_one(&s.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<IdMapEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|(kind, old_id, new_id, run, at)| IdMapEntry {
            kind,
            old_id,
            new_id,
            run_id: run,
            at,
        })
        .collect();
    let next = more
        .then(|| entries.last().map(|e| format!("{}|{}", e.kind, e.old_id)))
        .flatten();
    Ok(IdMapPage {
        entries,
        total,
        next,
    })
}
