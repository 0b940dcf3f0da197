//! Reading the audit log: filters, keyset pages (fast at any depth), CSV of a filtered view.

use crate::auth::Actor;
use crate::model::{AuditEntry, AuditFacets, AuditPage, AuditQuery, Permission};
use crate::service::{AppError, AppResult};
use sqlx::{PgPool, Postgres, QueryBuilder};
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
/// Rows one CSV export holds at most; narrow the filters for more.
pub const CSV_MAX_ROWS: i64 = 100_000;

fn parse_time(field: &str, value: &str, end_of_day: bool) -> AppResult<OffsetDateTime> {
    let value = value.trim();
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(value, &format) {
        let d = if end_of_day {
            d.next_day().unwrap_or(d)
        } else {
            d
        };
        return Ok(d.with_time(Time::MIDNIGHT).assume_utc());
    }
    Err(AppError::validation(
        field,
        format!("`{value}` is not a time: use 2026-11-22 or 2026-11-22T10:00:00Z"),
    ))
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, q: &AuditQuery) -> AppResult<()> {
    qb.push(" WHERE true");
    if let Some(actor) = non_empty(&q.actor) {
        qb.push(" AND actor = ").push_bind(actor.to_string());
    }
    if let Some(action) = non_empty(&q.action) {
        qb.push(" AND action = ").push_bind(action.to_string());
    }
    if let Some(target) = non_empty(&q.target) {
        let escaped = target
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        qb.push(" AND target LIKE ")
            .push_bind(format!("{escaped}%"));
    }
    if let Some(from) = non_empty(&q.from) {
        qb.push(" AND at >= ")
            .push_bind(parse_time("from", from, false)?);
    }
    if let Some(to) = non_empty(&q.to) {
        qb.push(" AND at < ").push_bind(parse_time("to", to, true)?);
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, at, actor, action, target, details, ip FROM audit_log";

pub async fn page(pool: &PgPool, actor: &Actor, q: &AuditQuery) -> AppResult<AuditPage> {
    actor.require(Permission::Read)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut qb = QueryBuilder::new(COLUMNS);
    push_filters(&mut qb, q)?;
    if let Some(before) = q.before {
        qb.push(" AND id < ").push_bind(before);
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
    let mut entries: Vec<AuditEntry> = qb.build_query_as().fetch_all(pool).await?;
    let next_cursor = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    name_targets(pool, &mut entries).await?;
    Ok(AuditPage {
        entries,
        next_cursor,
    })
}

/// The id after `prefix:` in a target such as `migration:<uuid>`.
fn target_id(target: &str, prefix: &str) -> Option<Uuid> {
    target.strip_prefix(prefix)?.strip_prefix(':')?.parse().ok()
}

/// Gives each entry its target's name and page: migrations by name, tokens by name, people
/// by email (already the target). One query per kind of target for the whole page; the CSV
/// export keeps the raw targets.
async fn name_targets(pool: &PgPool, entries: &mut [AuditEntry]) -> AppResult<()> {
    let ids = |prefix: &str| -> Vec<Uuid> {
        let mut v: Vec<Uuid> = entries
            .iter()
            .filter_map(|e| target_id(&e.target, prefix))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (migrations, tokens) = (ids("migration"), ids("token"));
    let names = |rows: Vec<(Uuid, String)>| rows.into_iter().collect::<HashMap<_, _>>();
    let migration_names = if migrations.is_empty() {
        HashMap::new()
    } else {
        names(
            sqlx::query_as("SELECT id, name FROM im_migrations WHERE id = ANY($1)")
                .bind(&migrations)
                .fetch_all(pool)
                .await?,
        )
    };
    let token_names = if tokens.is_empty() {
        HashMap::new()
    } else {
        names(
            sqlx::query_as("SELECT id, name FROM api_tokens WHERE id = ANY($1)")
                .bind(&tokens)
                .fetch_all(pool)
                .await?,
        )
    };
    for e in entries {
        if let Some(id) = target_id(&e.target, "migration") {
            match migration_names.get(&id) {
                Some(name) => {
                    e.target_name = Some(name.clone());
                    e.target_link = Some(format!("/migrations/{id}"));
                }
                // Deleted since: its name is in the deletion's details.
                None => {
                    e.target_name = e.details["name"].as_str().map(|n| format!("{n} (deleted)"));
                }
            }
        } else if let Some(id) = target_id(&e.target, "token") {
            let name = token_names
                .get(&id)
                .map(String::as_str)
                .or(e.details["name"].as_str());
            e.target_name = name.map(|n| format!("token “{n}”"));
            e.target_link = Some("/settings".into());
        } else if e.target.contains('@') {
            e.target_link = Some("/team".into());
        }
    }
    Ok(())
}

pub async fn facets(pool: &PgPool, actor: &Actor) -> AppResult<AuditFacets> {
    actor.require(Permission::Read)?;
    // Loose index scans: each distinct value costs one index probe, not a table scan.
    let distinct = |col: &str| {
        format!(
            "WITH RECURSIVE t(v) AS (
               (SELECT {col} FROM audit_log ORDER BY {col} LIMIT 1)
               UNION ALL
               SELECT (SELECT {col} FROM audit_log WHERE {col} > t.v ORDER BY {col} LIMIT 1)
               FROM t WHERE t.v IS NOT NULL)
             SELECT v FROM t WHERE v IS NOT NULL LIMIT 500"
        )
    };
    let actors = sqlx::query_scalar(&distinct("actor"))
        .fetch_all(pool)
        .await?;
    let actions = sqlx::query_scalar(&distinct("action"))
        .fetch_all(pool)
        .await?;
    Ok(AuditFacets { actors, actions })
}

/// The filtered view as CSV, newest first.
pub async fn csv_export(pool: &PgPool, actor: &Actor, q: &AuditQuery) -> AppResult<Vec<u8>> {
    actor.require(Permission::Read)?;
    let mut qb = QueryBuilder::new(COLUMNS);
    push_filters(&mut qb, q)?;
    if let Some(before) = q.before {
        qb.push(" AND id < ").push_bind(before);
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(CSV_MAX_ROWS);
    let rows: Vec<AuditEntry> = qb.build_query_as().fetch_all(pool).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| AppError::internal(e);
    w.write_record(["id", "at", "actor", "action", "target", "details", "ip"])
        .map_err(io)?;
    for r in rows {
        w.write_record(crate::csv_safe::row([
            r.id.to_string(),
            r.at.format(&Rfc3339).unwrap_or_default(),
            r.actor,
            r.action,
            r.target,
            r.details.to_string(),
            r.ip.unwrap_or_default(),
        ]))
        .map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| AppError::internal(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_accept_dates_and_rfc3339() {
        let from = parse_time("from", "2026-11-22", false).unwrap();
        let to = parse_time("to", "2026-11-22", true).unwrap();
        assert_eq!((to - from).whole_hours(), 24);
        assert!(parse_time("from", "2026-11-22T10:00:00Z", false).is_ok());
        let err = parse_time("from", "yesterday", false).unwrap_err();
        assert!(err.to_string().starts_with("from:"));
    }
}
