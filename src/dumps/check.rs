//! The console's cross-record validation: the rules of [`super::validate::Index`] over every
//! staged record of a migration, read back from PostgreSQL as a stream. Memory holds the index
//! (accounts, groups, memberships) but never the messages; message duplicates are found by
//! PostgreSQL grouping the stored identity hash. Findings and holds are rewritten whole on one
//! transaction, then the report's numbers are stored for the pages to read.

use super::canonical::{Kind, Refs};
use super::read::RuleCap;
use super::stage::{copy, encode_finding, FINDINGS_COPY};
use super::validate::{finding, Index, Problem, Target};
use super::{severity_of, Severity, RULES};
use crate::jobs::{JobContext, JobError};
use crate::model::{MigrationId, UploadId};
use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};

const BATCH_BYTES: usize = 1 << 20;

/// Codes whose hold means "a later line replaced this record", not "this record is wrong".
pub const SUPERSEDED: [&str; 3] = ["account.duplicate", "group.duplicate", "message.duplicate"];

struct Out<'t> {
    tx: Transaction<'t, Postgres>,
    migration: String,
    findings: Vec<u8>,
    holds: Vec<u8>,
    pending: Vec<u8>,
    /// The first findings of each rule are stored; the rest only counted, by the upload they
    /// are about (as staging does for line findings), so a dump with millions of broken
    /// references writes thousands of rows, not millions.
    cap: RuleCap,
    not_kept: BTreeMap<(UploadId, &'static str), i64>,
}

impl Out<'_> {
    async fn flush(&mut self, force: bool) -> Result<(), sqlx::Error> {
        if !self.findings.is_empty() && (force || self.findings.len() >= BATCH_BYTES) {
            let data = std::mem::take(&mut self.findings);
            copy(&mut self.tx, FINDINGS_COPY, &data).await?;
        }
        if !self.holds.is_empty() && (force || self.holds.len() >= BATCH_BYTES) {
            let data = std::mem::take(&mut self.holds);
            copy(
                &mut self.tx,
                "COPY staged_holds (upload_id, ord, kind, code) FROM STDIN",
                &data,
            )
            .await?;
        }
        if !self.pending.is_empty() && (force || self.pending.len() >= BATCH_BYTES) {
            let data = std::mem::take(&mut self.pending);
            copy(&mut self.tx, super::stage::PENDING_COPY, &data).await?;
        }
        Ok(())
    }

    fn pending(&mut self, upload: UploadId, ord: i32) {
        use std::io::Write;
        let _ = writeln!(self.pending, "{upload}\t{ord}");
    }

    fn hold(&mut self, upload: UploadId, ord: i32, kind: Kind, code: &str) {
        use std::io::Write;
        let _ = writeln!(self.holds, "{upload}\t{ord}\t{}\t{code}", kind.as_str());
    }

    /// Records the problems of one record; the first error keeps it aside unless it already is.
    fn problems(&mut self, at: &At, kind: Kind, file: &str, problems: Vec<Problem>, held: bool) {
        let mut held = held;
        for p in problems {
            let f = finding(kind, file, at.line as u64, p);
            if self.cap.admit(f.code) {
                encode_finding(
                    &mut self.findings,
                    &self.migration,
                    &at.upload.to_string(),
                    "cross",
                    Some((kind, at.ord as u32)),
                    &f,
                );
            } else {
                *self.not_kept.entry((at.upload, f.code)).or_default() += 1;
            }
            if f.severity == Severity::Error && !held {
                held = true;
                self.hold(at.upload, at.ord, kind, f.code);
            }
        }
    }
}

/// Where a staged record is.
#[derive(Clone, Copy)]
struct At {
    upload: UploadId,
    ord: i32,
    file_no: i32,
    line: i64,
}

fn at(row: &PgRow) -> At {
    At {
        upload: row.get(0),
        ord: row.get(1),
        file_no: row.get(2),
        line: row.get(3),
    }
}

struct Files {
    names: HashMap<(UploadId, i32), String>,
    /// Upload → its position (later uploads win duplicates).
    order: HashMap<UploadId, usize>,
}

impl Files {
    fn name(&self, a: &At) -> &str {
        self.names
            .get(&(a.upload, a.file_no))
            .map(String::as_str)
            .unwrap_or("?")
    }

    fn key(&self, a: &At) -> (usize, i32) {
        (self.order.get(&a.upload).copied().unwrap_or(0), a.ord)
    }
}

const COMMON: &str = "upload_id, ord, file_no, line";

#[derive(sqlx::FromRow)]
struct StagedUpload {
    id: UploadId,
    counts: sqlx::types::Json<BTreeMap<String, i64>>,
    rejected: i64,
    verified_for: Option<String>,
}

/// A message whose identity hash another message shares.
#[derive(sqlx::FromRow)]
struct DupRow {
    upload_id: UploadId,
    ord: i32,
    file_no: i32,
    line: i64,
    msg_id: String,
    from_id: String,
    to_id: String,
    sent_at: i64,
}

/// Validates the migration's staged records across uploads, keeping `findings_per_rule`
/// findings of each rule (the rest counted), and stores the report and the import sizes.
pub async fn validate_migration(
    ctx: &JobContext,
    migration_id: MigrationId,
    findings_per_rule: u64,
    providers: &crate::providers::Registry,
) -> Result<(), JobError> {
    let pool = &ctx.pool;
    let lock = validation_lock(pool, migration_id).await?;
    let result = run(ctx, pool, migration_id, findings_per_rule, providers).await;
    // Ending the transaction releases the lock; so does dropping it (a panic, a cancelled
    // future: the rollback runs before the connection is reused) or losing the connection.
    let _ = lock.rollback().await;
    result
}

/// One validation of a migration at a time, across processes: a transaction-level advisory
/// lock, held by a transaction that lives as long as the validation. Unlike a session lock,
/// it cannot outlive the validation on a pooled connection.
pub async fn validation_lock(
    pool: &PgPool,
    migration_id: MigrationId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("validate:{migration_id}"))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn run(
    ctx: &JobContext,
    pool: &PgPool,
    migration_id: MigrationId,
    findings_per_rule: u64,
    providers: &crate::providers::Registry,
) -> Result<(), JobError> {
    // The data as of this generation is what this validation reads; a change after it (an
    // ingest's commit, a discard) bumps it and queues the next validation.
    let generation: i64 = sqlx::query_scalar(
        "INSERT INTO dump_reports (migration_id, state) VALUES ($1, 'validating')
         ON CONFLICT (migration_id) DO UPDATE SET state = 'validating', error = NULL, updated_at = now()
         RETURNING generation",
    )
    .bind(migration_id)
    .fetch_one(pool)
    .await?;
    let target_kind: Option<String> =
        sqlx::query_scalar("SELECT target FROM im_migrations WHERE id = $1")
            .bind(migration_id)
            .fetch_optional(pool)
            .await?;
    let Some(target_kind) = target_kind else {
        return Ok(());
    };
    let target = super::validate::target_rules(providers, &target_kind);
    let uploads: Vec<StagedUpload> = sqlx::query_as(
        "SELECT id, counts, rejected, verified_for FROM dump_uploads
         WHERE migration_id = $1 AND state = 'staged' ORDER BY seq",
    )
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    let ids: Vec<UploadId> = uploads.iter().map(|u| u.id).collect();
    let names: Vec<(UploadId, i32, String)> =
        sqlx::query_as("SELECT upload_id, file_no, name FROM dump_files WHERE upload_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    let files = Files {
        names: names.into_iter().map(|(u, n, s)| ((u, n), s)).collect(),
        order: ids.iter().enumerate().map(|(i, u)| (*u, i)).collect(),
    };

    let full_recheck: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT full_recheck FROM dump_reports WHERE migration_id = $1), true)",
    )
    .bind(migration_id)
    .fetch_one(pool)
    .await?;
    let target_name = target.map(target_name).unwrap_or("");
    // Messages staged against another target's rules are judged again.
    let mut full = full_recheck
        || uploads
            .iter()
            .any(|u| u.verified_for.as_deref() != Some(target_name));

    let t0 = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    // Everything but messages is checked again whole; messages below, whole or only pending.
    sqlx::query("DELETE FROM dump_findings WHERE migration_id = $1 AND scope = 'cross' AND kind <> 'message'")
        .bind(migration_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM staged_holds WHERE upload_id = ANY($1) AND kind <> 'message'")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    // Every cross finding is written again below (messages: those still pending), and counted
    // again past the cap.
    sqlx::query("DELETE FROM dump_findings_not_kept WHERE upload_id = ANY($1) AND scope = 'cross'")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    let mut out = Out {
        tx,
        migration: migration_id.to_string(),
        findings: Vec::new(),
        holds: Vec::new(),
        pending: Vec::new(),
        cap: RuleCap::new(findings_per_rule),
        not_kept: BTreeMap::new(),
    };
    let mut index = Index::default();
    let mut held: HashSet<(UploadId, i32)> = HashSet::new();

    // Accounts and groups: read whole (they are small next to messages), in upload order, so
    // that a duplicate's later line wins as it does in `imshift validate`.
    for kind in [Kind::Account, Kind::Group] {
        let sql = match kind {
            Kind::Account => format!("SELECT {COMMON}, account_id FROM staged_accounts WHERE upload_id = ANY($1)"),
            _ => format!("SELECT {COMMON}, group_id, owner, group_type FROM staged_groups WHERE upload_id = ANY($1)"),
        };
        let mut rows: Vec<(At, Refs)> = sqlx::query(&sql)
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                let refs = match kind {
                    Kind::Account => Refs::Account { id: r.get(4) },
                    _ => Refs::Group {
                        id: r.get(4),
                        owner: r.get(5),
                        group_type: r.get(6),
                    },
                };
                (at(r), refs)
            })
            .collect();
        rows.sort_by_key(|(a, _)| files.key(a));
        let mut first: HashMap<String, At> = HashMap::new();
        for (a, refs) in &rows {
            let (id, code) = match refs {
                Refs::Account { id } => {
                    index.add_account(id);
                    (id, "account.duplicate")
                }
                Refs::Group { id, owner, .. } => {
                    index.add_group(id, owner);
                    (id, "group.duplicate")
                }
                _ => unreachable!("only accounts and groups here"),
            };
            if let Some(prev) = first.insert(id.clone(), *a) {
                // A group defined twice may have changed owner: what staging vouched for
                // about group messages no longer holds.
                full |= kind == Kind::Group;
                let msg = format!(
                    "`{id}` was already defined at {}:{}; this line wins",
                    files.name(&prev),
                    prev.line
                );
                out.problems(a, kind, files.name(a), vec![(code, msg)], false);
                if held.insert((prev.upload, prev.ord)) {
                    out.hold(prev.upload, prev.ord, kind, code);
                }
            }
        }
        ctx.check()?;
        // Checked once every account is known (a group's owner must exist).
        for (a, refs) in &rows {
            let p = index.check(refs, target);
            if !p.is_empty() {
                let already = held.contains(&(a.upload, a.ord));
                out.problems(a, kind, files.name(a), p, already);
            }
        }
        out.flush(false).await?;
    }

    tracing::debug!(elapsed = ?t0.elapsed(), "validate: accounts and groups");
    // Members: each one joins the index as it is checked (members do not depend on members).
    {
        let sql = format!(
            "SELECT {COMMON}, group_id, account, role, joined_at FROM staged_members WHERE upload_id = ANY($1)"
        );
        let mut rows = sqlx::query(&sql).bind(&ids).fetch(pool);
        let mut n = 0u64;
        let mut seen: HashSet<(String, String)> = HashSet::new();
        while let Some(r) = rows.try_next().await? {
            let a = at(&r);
            // A membership given twice may have changed its join time.
            full |= !seen.insert((r.get(4), r.get(5)));
            let refs = Refs::Member {
                group: r.get(4),
                account: r.get(5),
                role: r.get(6),
                joined_at: r.get(7),
            };
            if let Refs::Member {
                group,
                account,
                role,
                joined_at,
            } = &refs
            {
                index.add_member(group, account, role, *joined_at);
            }
            let p = index.check(&refs, target);
            if !p.is_empty() {
                out.problems(&a, Kind::Member, files.name(&a), p, false);
                out.flush(false).await?;
            }
            n += 1;
            if n.is_multiple_of(20_000) {
                ctx.check()?;
            }
        }
    }

    tracing::debug!(elapsed = ?t0.elapsed(), "validate: members");
    // Messages: all of them after a discard or a changed group or membership; otherwise only
    // those staging could not vouch for. Whatever still has a problem stays pending.
    if full {
        sqlx::query("DELETE FROM dump_findings WHERE migration_id = $1 AND scope = 'cross' AND kind = 'message'")
            .bind(migration_id)
            .execute(&mut *out.tx)
            .await?;
        sqlx::query("DELETE FROM staged_holds WHERE upload_id = ANY($1) AND kind = 'message'")
            .bind(&ids)
            .execute(&mut *out.tx)
            .await?;
    } else {
        sqlx::query(
            "DELETE FROM dump_findings f WHERE f.migration_id = $1 AND f.scope = 'cross' AND f.kind = 'message'
               AND (f.code = 'message.duplicate'
                    OR EXISTS (SELECT 1 FROM staged_pending p WHERE p.upload_id = f.upload_id AND p.ord = f.ord))",
        )
        .bind(migration_id)
        .execute(&mut *out.tx)
        .await?;
        sqlx::query(
            "DELETE FROM staged_holds h WHERE h.upload_id = ANY($1) AND h.kind = 'message'
               AND (h.code = 'message.duplicate'
                    OR EXISTS (SELECT 1 FROM staged_pending p WHERE p.upload_id = h.upload_id AND p.ord = h.ord))",
        )
        .bind(&ids)
        .execute(&mut *out.tx)
        .await?;
    }
    // Read from the pool, which still sees the pending list this transaction replaces.
    let messages_sql = if full {
        format!("SELECT {COMMON}, conv, from_id, to_id, sent_at, body_bytes, msg_id FROM staged_messages WHERE upload_id = ANY($1)")
    } else {
        "SELECT m.upload_id, m.ord, m.file_no, m.line, m.conv, m.from_id, m.to_id, m.sent_at, m.body_bytes, m.msg_id
         FROM staged_pending p JOIN staged_messages m USING (upload_id, ord) WHERE p.upload_id = ANY($1)"
            .to_string()
    };
    sqlx::query("DELETE FROM staged_pending WHERE upload_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *out.tx)
        .await?;
    {
        let mut rows = sqlx::query(&messages_sql).bind(&ids).fetch(pool);
        let mut n = 0u64;
        while let Some(r) = rows.try_next().await? {
            let a = at(&r);
            let refs = Refs::Message {
                group: r.get::<&str, _>(4) == "group",
                from: r.get(5),
                to: r.get(6),
                sent_at: r.get(7),
                body_bytes: r.get::<i32, _>(8).max(0) as usize,
                id: r.get(9),
            };
            let p = index.check(&refs, target);
            if !p.is_empty() {
                out.pending(a.upload, a.ord);
                out.problems(&a, Kind::Message, files.name(&a), p, false);
                out.flush(false).await?;
            }
            n += 1;
            if n.is_multiple_of(20_000) {
                ctx.check()?;
            }
        }
    }
    tracing::debug!(elapsed = ?t0.elapsed(), full, "validate: messages");

    // The smaller kinds stream past the finished index.
    let streams: [(Kind, String); 4] = [
        (Kind::Friend, format!("SELECT {COMMON}, owner, friend FROM staged_friends WHERE upload_id = ANY($1)")),
        (Kind::Block, format!("SELECT {COMMON}, owner, blocked FROM staged_blocks WHERE upload_id = ANY($1)")),
        (Kind::GroupEvent, format!("SELECT {COMMON}, group_id, actor, target, at FROM staged_group_events WHERE upload_id = ANY($1)")),
        (Kind::Conversation, format!("SELECT {COMMON}, owner, conv, peer FROM staged_conversations WHERE upload_id = ANY($1)")),
    ];
    for (kind, sql) in streams {
        let mut rows = sqlx::query(&sql).bind(&ids).fetch(pool);
        let mut n = 0u64;
        while let Some(r) = rows.try_next().await? {
            let a = at(&r);
            let refs = match kind {
                Kind::Friend => Refs::Friend {
                    owner: r.get(4),
                    friend: r.get(5),
                },
                Kind::Block => Refs::Block {
                    owner: r.get(4),
                    blocked: r.get(5),
                },
                Kind::GroupEvent => Refs::GroupEvent {
                    group: r.get(4),
                    actor: r.get(5),
                    target: r.get(6),
                    at: r.get(7),
                },
                _ => Refs::Conversation {
                    owner: r.get(4),
                    group: r.get::<&str, _>(5) == "group",
                    peer: r.get(6),
                },
            };
            let p = index.check(&refs, target);
            if !p.is_empty() {
                out.problems(&a, kind, files.name(&a), p, false);
                out.flush(false).await?;
            }
            n += 1;
            if n.is_multiple_of(20_000) {
                ctx.check()?;
            }
        }
    }
    out.flush(true).await?;
    drop(index);

    tracing::debug!(elapsed = ?t0.elapsed(), "validate: streamed");
    // Message duplicates: the same (id, from, to, sent_at) twice. Staging stored every
    // message's identity hash in sorted parts; merging each part across uploads finds the few
    // candidates, which are then compared in full.
    let (mut cand_u, mut cand_o) = (Vec::<UploadId>::new(), Vec::<i32>::new());
    {
        let position: HashMap<UploadId, usize> = files.order.clone();
        let mut rows = sqlx::query_as::<_, (UploadId, i16, Vec<u8>)>(
            "SELECT upload_id, part, data FROM staged_idents WHERE upload_id = ANY($1) ORDER BY part",
        )
        .bind(&ids)
        .fetch(pool);
        let mut part = -1i16;
        let mut entries: Vec<(u64, usize, u32, UploadId)> = Vec::new();
        let mut merge = |entries: &mut Vec<(u64, usize, u32, UploadId)>| {
            entries.sort_unstable_by_key(|e| (e.0, e.1, e.2));
            for run in entries.chunk_by(|a, b| a.0 == b.0) {
                if run.len() > 1 {
                    for e in run {
                        cand_u.push(e.3);
                        cand_o.push(e.2 as i32);
                    }
                }
            }
            entries.clear();
        };
        while let Some((upload, p, data)) = rows.try_next().await? {
            if p != part {
                merge(&mut entries);
                part = p;
            }
            let at = position.get(&upload).copied().unwrap_or(0);
            for c in data.chunks_exact(super::stage::IDENT_ENTRY) {
                let ident = u64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
                let ord = u32::from_be_bytes(c[8..].try_into().expect("4 bytes"));
                entries.push((ident, at, ord, upload));
            }
        }
        merge(&mut entries);
    }
    let dups: Vec<DupRow> = sqlx::query_as(
        "SELECT m.upload_id, m.ord, m.file_no, m.line, m.msg_id, m.from_id, m.to_id, m.sent_at
         FROM unnest($1::uuid[], $2::int[]) AS c(upload_id, ord)
         JOIN staged_messages m USING (upload_id, ord)",
    )
    .bind(&cand_u)
    .bind(&cand_o)
    .fetch_all(&mut *out.tx)
    .await?;
    let mut same: BTreeMap<(String, String, String, i64), Vec<At>> = BTreeMap::new();
    for d in dups {
        same.entry((d.msg_id, d.from_id, d.to_id, d.sent_at))
            .or_default()
            .push(At {
                upload: d.upload_id,
                ord: d.ord,
                file_no: d.file_no,
                line: d.line,
            });
    }
    let (mut hold_u, mut hold_o) = (Vec::new(), Vec::new());
    for ((id, ..), mut ats) in same {
        if ats.len() < 2 {
            continue;
        }
        ats.sort_by_key(|a| files.key(a));
        for w in ats.windows(2) {
            let (prev, a) = (&w[0], &w[1]);
            let msg = format!(
                "the same message (id {id:?}) was at {}:{}; this line wins",
                files.name(prev),
                prev.line
            );
            out.problems(
                a,
                Kind::Message,
                files.name(a),
                vec![("message.duplicate", msg)],
                false,
            );
            hold_u.push(prev.upload);
            hold_o.push(prev.ord);
        }
    }
    out.flush(true).await?;
    for ((upload, code), n) in std::mem::take(&mut out.not_kept) {
        let severity = match severity_of(code) {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        sqlx::query(
            "INSERT INTO dump_findings_not_kept (upload_id, migration_id, scope, code, severity, count)
             VALUES ($1, $2, 'cross', $3, $4, $5)",
        )
        .bind(upload)
        .bind(migration_id)
        .bind(code)
        .bind(severity)
        .bind(n)
        .execute(&mut *out.tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO staged_holds (upload_id, ord, kind, code)
         SELECT u, o, 'message', 'message.duplicate' FROM unnest($1::uuid[], $2::int[]) AS t(u, o)
         ON CONFLICT DO NOTHING",
    )
    .bind(&hold_u)
    .bind(&hold_o)
    .execute(&mut *out.tx)
    .await?;

    tracing::debug!(elapsed = ?t0.elapsed(), "validate: duplicates");
    // The offending text of the first examples of each rule, for the report.
    for kind in Kind::ALL {
        let (table, _) = super::stage::table(kind);
        sqlx::query(&format!(
            // A converted line shows as the user wrote it, beside its canonical record.
            "UPDATE dump_findings f
             SET excerpt = CASE WHEN s.raw IS NULL THEN left(s.record::text, 500) ELSE left(s.raw, 2000) END,
                 converted = CASE WHEN s.raw IS NULL THEN NULL ELSE left(s.record::text, 2000) END
             FROM {table} s
             WHERE f.id IN (
                 SELECT x.id FROM (SELECT DISTINCT code FROM dump_findings
                                   WHERE migration_id = $1 AND scope = 'cross' AND kind = $2) c,
                 LATERAL (SELECT id FROM dump_findings
                          WHERE migration_id = $1 AND code = c.code AND scope = 'cross' AND kind = $2
                          ORDER BY id LIMIT 20) x)
               AND s.upload_id = f.upload_id AND s.ord = f.ord"
        ))
        .bind(migration_id)
        .bind(kind.as_str())
        .execute(&mut *out.tx)
        .await?;
    }
    ctx.check()?;

    tracing::debug!(elapsed = ?t0.elapsed(), "validate: excerpts");
    // The report's numbers, stored so that no page load counts rows.
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut unreadable = 0i64;
    for u in &uploads {
        for (k, v) in u.counts.0.iter() {
            *counts.entry(k.clone()).or_default() += v;
        }
        unreadable += u.rejected;
    }
    let holds: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, code, count(*) FROM staged_holds WHERE upload_id = ANY($1) GROUP BY 1, 2",
    )
    .bind(&ids)
    .fetch_all(&mut *out.tx)
    .await?;
    let (mut rejected, mut superseded) = (
        BTreeMap::<String, i64>::new(),
        BTreeMap::<String, i64>::new(),
    );
    for (kind, code, n) in holds {
        let side = if SUPERSEDED.contains(&code.as_str()) {
            &mut superseded
        } else {
            &mut rejected
        };
        *side.entry(kind).or_default() += n;
    }
    let mut accepted = BTreeMap::new();
    for kind in Kind::ALL {
        let k = kind.as_str();
        let n = counts.get(k).copied().unwrap_or(0);
        if n > 0 {
            accepted.insert(
                k.to_string(),
                n - rejected.get(k).copied().unwrap_or(0) - superseded.get(k).copied().unwrap_or(0),
            );
        }
    }
    if unreadable > 0 {
        rejected.insert("unreadable_lines".into(), unreadable);
    }
    let rules: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT code, severity, count(*) FROM dump_findings WHERE migration_id = $1
         GROUP BY 1, 2 ORDER BY (severity = 'error') DESC, count(*) DESC, code",
    )
    .bind(migration_id)
    .fetch_all(&mut *out.tx)
    .await?;
    let rules: Vec<_> = rules
        .into_iter()
        .map(|(code, severity, count)| json!({"code": code, "severity": severity, "count": count}))
        .collect();
    // The import phases' sizes, for the preflight: new uploads' keys counted once, then added
    // up less what is now kept aside.
    super::counts::count_uploads(&mut out.tx, &ids).await?;
    let sizes = super::counts::phase_sizes(&mut out.tx, &ids).await?;
    tracing::debug!(elapsed = ?t0.elapsed(), "validate: import sizes");
    // Current only if nothing changed since this validation began; otherwise the next one,
    // already queued, will say so.
    sqlx::query(
        "UPDATE dump_reports SET state = CASE WHEN generation = $8 THEN 'current' ELSE 'validating' END,
                error = NULL, full_recheck = full_recheck AND generation <> $8, counts = $2, accepted = $3, rejected = $4,
                superseded = $5, rules = $6, import_sizes = $7, sizes_for = now(), validated_at = now(),
                updated_at = now()
         WHERE migration_id = $1",
    )
    .bind(migration_id)
    .bind(json!(counts))
    .bind(json!(accepted))
    .bind(json!(rejected))
    .bind(json!(superseded))
    .bind(json!(rules))
    .bind(json!(sizes))
    .bind(generation)
    .execute(&mut *out.tx)
    .await?;
    ctx.check()?;
    out.tx.commit().await?;
    tracing::debug!(elapsed = ?t0.elapsed(), "validate: committed");
    Ok(())
}

/// What a rule means and how to fix it, from [`RULES`].
pub fn explanation(code: &str) -> &'static str {
    RULES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, e)| *e)
        .unwrap_or("")
}

/// Which target's rules staged records were judged by (`dump_uploads.verified_for`).
pub fn target_name(t: Target) -> &'static str {
    t.name()
}

/// The accounts, groups and memberships of the migration's staged uploads, in upload order:
/// what an upload being staged can check its messages against.
pub async fn known_index(pool: &PgPool, migration_id: MigrationId) -> Result<Index, sqlx::Error> {
    let mut index = Index::default();
    let live = "SELECT id FROM dump_uploads WHERE migration_id = $1 AND state = 'staged'";
    let accounts: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT account_id FROM staged_accounts WHERE upload_id IN ({live})"
    ))
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    for a in accounts {
        index.add_account(&a);
    }
    let groups: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT g.group_id, g.owner FROM staged_groups g JOIN dump_uploads u ON u.id = g.upload_id
         WHERE g.upload_id IN ({live}) ORDER BY u.seq, g.ord"
    ))
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    for (g, o) in groups {
        index.add_group(&g, &o);
    }
    let members: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT m.group_id, m.account, m.role, m.joined_at FROM staged_members m
         JOIN dump_uploads u ON u.id = m.upload_id WHERE m.upload_id IN ({live}) ORDER BY u.seq, m.ord"
    ))
    .bind(migration_id)
    .fetch_all(pool)
    .await?;
    for (g, a, r, j) in members {
        index.add_member(&g, &a, &r, j);
    }
    Ok(index)
}
