//! The import phases' sizes (records, keys, records per key), counted by the validate job and
//! stored with the report, so the Import tab's preflight reads one row instead of counting
//! millions of staged rows (5.2 s for 2M messages on its first load).
//!
//! Each upload's records are counted per phase and key once (`staged_phase_keys`) while it is
//! staged: its messages as they are read (by sender and by group, in memory a bounded number
//! of keys at a time), the smaller kinds from their tables on the staging transaction. Uploads
//! staged by an earlier release are counted by the next validation. Every validation then adds
//! the uploads' keys up and takes away the records it kept aside (`staged_holds`, a few), which
//! gives exactly what counting the staged rows would: [`crate::import::plan::sizes`].

use crate::import::plan::{Phase, PhaseSize};
use crate::model::{MigrationId, UploadId};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

use super::canonical::Kind;

/// The message phases, in the order staging counts them: one-to-one history by sender
/// (`conv` c2c), group history by group (`conv` group), as [`Phase::key`] and
/// [`Phase::filter`] say.
pub const MESSAGE_PHASES: [&str; 2] = ["c2c_history", "group_history"];

/// Every kind but messages: what staging counts from the tables.
pub const ALL_BUT_MESSAGES: &[Kind] = &[
    Kind::Account,
    Kind::Friend,
    Kind::Block,
    Kind::Group,
    Kind::Member,
    Kind::GroupEvent,
    Kind::Conversation,
];

/// `(phase, key)` of each of the kind's phases for the staged row `s` (the key is NULL where
/// the row is not the phase's), for a lateral `VALUES`.
fn phase_keys(kind: Kind) -> Option<String> {
    let rows: Vec<String> = Phase::ALL
        .iter()
        .filter(|p| p.kind() == kind)
        .map(|p| {
            format!(
                "('{}', CASE WHEN {} THEN ({})::text END)",
                p.as_str(),
                p.filter(),
                p.key()
            )
        })
        .collect();
    (!rows.is_empty()).then(|| format!("(VALUES {}) p(phase, key)", rows.join(", ")))
}

/// Counts the records per phase and key of the staged uploads among `uploads` not counted yet
/// (staged by an earlier release): one scan of each table, in the caller's transaction.
pub async fn count_uploads(
    conn: &mut PgConnection,
    uploads: &[UploadId],
) -> Result<(), sqlx::Error> {
    let todo: Vec<UploadId> = sqlx::query_scalar(
        "SELECT id FROM dump_uploads WHERE id = ANY($1) AND NOT phase_keys_counted",
    )
    .bind(uploads)
    .fetch_all(&mut *conn)
    .await?;
    if todo.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM staged_phase_keys WHERE upload_id = ANY($1)")
        .bind(&todo)
        .execute(&mut *conn)
        .await?;
    count_kinds(conn, &todo, &Kind::ALL).await?;
    sqlx::query("UPDATE dump_uploads SET phase_keys_counted = true WHERE id = ANY($1)")
        .bind(&todo)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds the records per phase and key of `kinds` in `uploads` to `staged_phase_keys`.
pub async fn count_kinds(
    conn: &mut PgConnection,
    uploads: &[UploadId],
    kinds: &[Kind],
) -> Result<(), sqlx::Error> {
    for kind in kinds {
        let Some(values) = phase_keys(*kind) else {
            continue;
        };
        let (table, _) = super::stage::table(*kind);
        sqlx::query(&format!(
            "INSERT INTO staged_phase_keys (upload_id, phase, key, records)
             SELECT s.upload_id, p.phase, p.key, count(*) FROM {table} s CROSS JOIN LATERAL {values}
             WHERE s.upload_id = ANY($1) AND p.key IS NOT NULL
             GROUP BY 1, 2, 3
             ON CONFLICT (upload_id, phase, key) DO UPDATE
                SET records = staged_phase_keys.records + EXCLUDED.records"
        ))
        .bind(uploads)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Adds counts made while reading (`(phase, key, records)`) to the upload's.
pub async fn add_keys(
    conn: &mut PgConnection,
    upload: UploadId,
    counts: Vec<(&'static str, String, i64)>,
) -> Result<(), sqlx::Error> {
    let mut phases = Vec::with_capacity(counts.len());
    let mut keys = Vec::with_capacity(counts.len());
    let mut records = Vec::with_capacity(counts.len());
    for (p, k, n) in counts {
        phases.push(p);
        keys.push(k);
        records.push(n);
    }
    sqlx::query(
        "INSERT INTO staged_phase_keys (upload_id, phase, key, records)
         SELECT $1, p, k, n FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(p, k, n)
         ON CONFLICT (upload_id, phase, key) DO UPDATE
            SET records = staged_phase_keys.records + EXCLUDED.records",
    )
    .bind(upload)
    .bind(&phases)
    .bind(&keys)
    .bind(&records)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every phase's size over `uploads` (all counted), without the records kept aside: reads the
/// per-key counts and the holds, never the staged rows but the held ones.
pub async fn phase_sizes(
    conn: &mut PgConnection,
    uploads: &[UploadId],
) -> Result<HashMap<Phase, PhaseSize>, sqlx::Error> {
    let held: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| {
            let values = phase_keys(*k)?;
            let (table, _) = super::stage::table(*k);
            Some(format!(
                "SELECT p.phase, p.key, count(*) AS n FROM staged_holds h
                 JOIN {table} s ON s.upload_id = h.upload_id AND s.ord = h.ord
                 CROSS JOIN LATERAL {values}
                 WHERE h.upload_id = ANY($1) AND h.kind = '{}' AND p.key IS NOT NULL
                 GROUP BY 1, 2",
                k.as_str()
            ))
        })
        .collect();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "WITH t AS (SELECT phase, key, sum(records)::bigint AS n FROM staged_phase_keys
                    WHERE upload_id = ANY($1) GROUP BY 1, 2),
              h AS ({}),
              k AS (SELECT t.phase, t.n - coalesce(h.n, 0) AS n FROM t LEFT JOIN h USING (phase, key))
         SELECT phase, n, count(*) FROM k WHERE n > 0 GROUP BY 1, 2 ORDER BY 1, 2",
        held.join(" UNION ALL ")
    ))
    .bind(uploads)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<Phase, PhaseSize> = Phase::ALL
        .iter()
        .map(|p| (*p, PhaseSize::default()))
        .collect();
    for (phase, n, keys) in rows {
        let Some(phase) = Phase::parse(&phase) else {
            continue;
        };
        let size = out.entry(phase).or_default();
        size.records += n * keys;
        size.keys += keys;
        if phase.key_in_request() {
            size.per_key.push((n, keys));
        }
    }
    Ok(out)
}

/// The sizes the last validation stored with the migration's report (empty before the first):
/// what the preflight shows. Launch needs the report current, so these are the staged data's.
pub async fn stored(
    pool: &PgPool,
    migration_id: MigrationId,
) -> Result<HashMap<Phase, PhaseSize>, sqlx::Error> {
    let v: Option<Option<serde_json::Value>> =
        sqlx::query_scalar("SELECT import_sizes FROM dump_reports WHERE migration_id = $1")
            .bind(migration_id)
            .fetch_optional(pool)
            .await?;
    Ok(v.flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| {
            Phase::ALL
                .iter()
                .map(|p| (*p, PhaseSize::default()))
                .collect()
        }))
}
