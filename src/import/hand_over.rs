//! Hand-over files: what a target's own staff import, for what its API cannot take (a target
//! that imports history only from files). A build reads the staged history in conversation
//! and time order and hands each record to the target's writer ([`crate::providers::HandOver`]),
//! with what the import made of each old group id; records the writer cannot express are kept
//! aside with why, in `kept_aside.jsonl` beside the files.
//!
//! A build runs as a job on the node that was asked (its files are on that node's disk), and a
//! crash starts it again from an empty folder.

use crate::audit;
use crate::auth::Actor;
use crate::jobs::{self, Handler, JobContext, JobError, NewJob};
use crate::model::{HandOverBuild, MigrationId, Permission};
use crate::providers::HandOverError;
use crate::service::{AppError, AppResult, Services};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use uuid::Uuid;

pub const KIND: &str = "hand_over";
/// Beside the provider's files: each record kept aside, with why.
pub const KEPT_ASIDE: &str = "kept_aside.jsonl";
/// Every file of a build, its manifest and what was kept aside, in one download.
pub const ARCHIVE: &str = "all-files.zip";

fn dir(data_dir: &Path, build: Uuid) -> PathBuf {
    data_dir.join("hand-over").join(build.to_string())
}

/// A target that hands files over.
struct Seam(std::sync::Arc<dyn crate::providers::Provider>);

impl Seam {
    fn files(&self) -> &dyn crate::providers::HandOver {
        // `seam` made one only for a provider that has it.
        self.0.hand_over().expect("checked by seam()")
    }
}

/// The target's hand-over, or why it has none.
fn seam(s: &Services, target: &str) -> AppResult<Seam> {
    let p = s
        .config
        .providers
        .get(target)
        .cloned()
        .ok_or_else(|| AppError::Conflict(format!("the target `{target}` is not known")))?;
    if p.hand_over().is_none() {
        return Err(AppError::Conflict(format!(
            "{} takes everything through its API: there are no files to hand over",
            p.label()
        )));
    }
    Ok(Seam(p))
}

async fn target_of(s: &Services, migration_id: MigrationId) -> AppResult<String> {
    Ok(
        sqlx::query_scalar("SELECT target FROM im_migrations WHERE id = $1")
            .bind(migration_id)
            .fetch_one(&s.pool)
            .await?,
    )
}

type Row = (
    Uuid,
    String,
    Option<String>,
    Option<Value>,
    i64,
    i64,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

fn build_of(r: Row, label: &str, note: &str) -> HandOverBuild {
    let (id, state, error, manifest, written, kept_aside, created_by, created_at, finished_at) = r;
    HandOverBuild {
        id,
        state,
        error,
        label: label.into(),
        note: note.into(),
        manifest,
        written,
        kept_aside,
        created_by,
        created_at,
        finished_at,
    }
}

const COLUMNS: &str =
    "id, state, error, manifest, written, kept_aside, created_by, created_at, finished_at";

/// Starts a build of the migration's hand-over files (one at a time).
pub async fn start(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<HandOverBuild> {
    actor.require(Permission::RunMigrations)?;
    crate::migration::get(&s.pool, actor, migration_id).await?;
    let target = target_of(s, migration_id).await?;
    let seam = seam(s, &target)?;
    let (label, note) = (seam.files().label(), seam.files().note());
    let mut tx = s.pool.begin().await?;
    // One build at a time per migration: the row lock orders two clicks.
    sqlx::query("SELECT 1 FROM im_migrations WHERE id = $1 FOR UPDATE")
        .bind(migration_id)
        .execute(&mut *tx)
        .await?;
    let busy: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM hand_over_builds WHERE migration_id = $1 AND state = 'building')",
    )
    .bind(migration_id)
    .fetch_one(&mut *tx)
    .await?;
    if busy {
        return Err(AppError::Conflict(format!(
            "{label} are being built already: wait for that build to finish"
        )));
    }
    let id = Uuid::new_v4();
    let row: Row = sqlx::query_as(&format!(
        "INSERT INTO hand_over_builds (id, migration_id, node, created_by) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(migration_id)
    .bind(&s.node)
    .bind(&actor.email)
    .fetch_one(&mut *tx)
    .await?;
    let mut job = NewJob::new(KIND, json!({ "build": id }));
    job.migration_id = Some(migration_id);
    job.node = Some(s.node.clone());
    job.max_attempts = Some(3);
    jobs::enqueue(&mut *tx, &job).await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "hand_over.started",
        &format!("migration:{migration_id}"),
        json!({ "build": id, "files": label }),
    )
    .await?;
    tx.commit().await?;
    Ok(build_of(row, label, note))
}

/// The migration's newest build, if any (and what its target would hand over).
pub async fn latest(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
) -> AppResult<Option<HandOverBuild>> {
    actor.require(Permission::Read)?;
    crate::migration::get(&s.pool, actor, migration_id).await?;
    let target = target_of(s, migration_id).await?;
    let Ok(seam) = seam(s, &target) else {
        return Ok(None);
    };
    let (label, note) = (seam.files().label(), seam.files().note());
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hand_over_builds WHERE migration_id = $1 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(migration_id)
    .fetch_optional(&s.pool)
    .await?;
    Ok(Some(match row {
        Some(r) => build_of(r, label, note),
        // Nothing built yet: the files this target would take, and a Build button.
        None => HandOverBuild {
            id: Uuid::nil(),
            state: "none".into(),
            error: None,
            label: label.into(),
            note: note.into(),
            manifest: None,
            written: 0,
            kept_aside: 0,
            created_by: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: None,
        },
    }))
}

/// A built file to download: its path on this node and its size. Audited: the files hold the
/// app's whole message history.
pub async fn file(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    build: Uuid,
    name: &str,
) -> AppResult<(PathBuf, u64)> {
    actor.require(Permission::RunMigrations)?;
    crate::migration::get(&s.pool, actor, migration_id).await?;
    let row: Option<(String, String, Option<Value>)> = sqlx::query_as(
        "SELECT state, node, manifest FROM hand_over_builds WHERE id = $1 AND migration_id = $2",
    )
    .bind(build)
    .bind(migration_id)
    .fetch_optional(&s.pool)
    .await?;
    let Some((state, node, manifest)) = row else {
        return Err(AppError::NotFound(format!(
            "No hand-over build has id {build}."
        )));
    };
    if state != "ready" {
        return Err(AppError::Conflict(format!(
            "the build is {state}: nothing to download yet"
        )));
    }
    // Only names the build wrote (never a path from the request).
    let listed = manifest
        .as_ref()
        .and_then(|m| m.get("files"))
        .and_then(Value::as_array)
        .is_some_and(|f| {
            f.iter()
                .any(|f| f.get("name").and_then(Value::as_str) == Some(name))
        });
    let extra = ["manifest.json", KEPT_ASIDE, ARCHIVE].contains(&name);
    if !listed && !extra {
        return Err(AppError::NotFound(format!(
            "The build has no file named {name:?}."
        )));
    }
    if node != s.node {
        return Err(AppError::Conflict(format!(
            "the files were built on {node}, whose disk holds them: download them from a console running there"
        )));
    }
    let path = dir(&s.config.data_dir, build).join(name);
    let len = tokio::fs::metadata(&path)
        .await
        .map_err(|_| AppError::NotFound(format!("{name} is not on this node's disk any more")))?
        .len();
    audit::record(
        &s.pool,
        &actor.into(),
        "hand_over.downloaded",
        &format!("migration:{migration_id}"),
        json!({ "build": build, "file": name, "bytes": len }),
    )
    .await?;
    Ok((path, len))
}

/// Zips every file of the build folder into [`ARCHIVE`], one file at a time through a small
/// buffer, so a build of a hundred thousand files costs no more memory than one.
fn archive(dir: &std::path::Path) -> std::io::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != ARCHIVE)
        .collect();
    names.sort();
    let file = std::fs::File::create_new(dir.join(ARCHIVE))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for name in names {
        zip.start_file(name.as_str(), options)
            .map_err(std::io::Error::other)?;
        let mut f = std::fs::File::open(dir.join(&name))?;
        std::io::copy(&mut f, &mut zip)?;
    }
    zip.finish().map_err(std::io::Error::other)?.flush()?;
    Ok(())
}

pub struct Build {
    pub services: Services,
}

#[derive(Deserialize)]
struct Payload {
    build: Uuid,
}

impl Build {
    async fn fail(&self, build: Uuid, why: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE hand_over_builds SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
        )
        .bind(build)
        .bind(why)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    async fn write(
        &self,
        ctx: &JobContext,
        migration_id: MigrationId,
        build: Uuid,
    ) -> Result<(), String> {
        let s = &self.services;
        let pool = &s.pool;
        let target = target_of(s, migration_id)
            .await
            .map_err(|e| e.to_string())?;
        let seam = seam(s, &target).map_err(|e| e.to_string())?;
        let out = dir(&s.config.data_dir, build);
        // A crash left a half-written folder: start again from nothing.
        let _ = tokio::fs::remove_dir_all(&out).await;
        tokio::fs::create_dir_all(&out)
            .await
            .map_err(|e| format!("cannot make {}: {e}", out.display()))?;
        let mut w = seam.files().writer(&out)?;
        let mut aside = std::io::BufWriter::new(
            std::fs::File::create_new(out.join(KEPT_ASIDE)).map_err(|e| e.to_string())?,
        );
        // What the import made of each old group id, over every run.
        let groups: HashMap<String, String> = sqlx::query_as(
            "SELECT old_id, new_id FROM import_id_map WHERE migration_id = $1 AND kind = 'group'",
        )
        .bind(migration_id)
        .fetch_all(pool)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
        let ids = |g: &str| groups.get(g).cloned();
        let uploads = super::plan::staged_uploads(pool, migration_id)
            .await
            .map_err(|e| e.to_string())?;
        let (mut written, mut kept) = (0i64, 0i64);
        // Conversation by conversation, oldest first; records validation kept aside are not
        // history to hand over.
        let queries = [
            "SELECT s.record::text, f.name, s.line FROM staged_messages s JOIN dump_files f
               ON f.upload_id = s.upload_id AND f.file_no = s.file_no
             WHERE s.upload_id = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM staged_holds h WHERE h.upload_id = s.upload_id AND h.ord = s.ord)
             ORDER BY s.conv, s.to_id, s.from_id, s.sent_at, s.upload_id, s.ord",
            "SELECT s.record::text, f.name, s.line FROM staged_group_events s JOIN dump_files f
               ON f.upload_id = s.upload_id AND f.file_no = s.file_no
             WHERE s.upload_id = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM staged_holds h WHERE h.upload_id = s.upload_id AND h.ord = s.ord)
             ORDER BY s.group_id, s.at, s.upload_id, s.ord",
        ];
        for sql in queries {
            let mut rows = sqlx::query_as::<_, (String, String, i64)>(sql)
                .bind(&uploads)
                .fetch(pool);
            while let Some((record, file, line)) =
                rows.try_next().await.map_err(|e| e.to_string())?
            {
                let r: Value = serde_json::from_str(&record).map_err(|e| e.to_string())?;
                match w.push(&r, &ids) {
                    Ok(true) => written += 1,
                    Ok(false) => {}
                    Err(HandOverError::Record(why)) => {
                        kept += 1;
                        let line = json!({ "file": file, "line": line, "why": why, "record": r });
                        writeln!(aside, "{line}").map_err(|e| e.to_string())?;
                    }
                    Err(HandOverError::Io(e)) => return Err(format!("writing the files: {e}")),
                }
                if (written + kept) % 10_000 == 0 {
                    ctx.check().map_err(|e| e.to_string())?;
                }
            }
        }
        aside.flush().map_err(|e| e.to_string())?;
        drop(aside);
        let manifest = w.finish()?;
        let zipped = out.clone();
        tokio::task::spawn_blocking(move || archive(&zipped))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("writing {ARCHIVE}: {e}"))?;
        sqlx::query(
            "UPDATE hand_over_builds SET state = 'ready', manifest = $2, written = $3, kept_aside = $4,
                    finished_at = now() WHERE id = $1",
        )
        .bind(build)
        .bind(&manifest)
        .bind(written)
        .bind(kept)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Handler for Build {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let p: Payload = serde_json::from_value(ctx.job.payload.clone())
            .map_err(|e| JobError::Failed(format!("unreadable hand-over job: {e}")))?;
        let migration_id = ctx
            .job
            .migration_id
            .ok_or_else(|| JobError::Failed("the job names no migration".into()))?;
        if let Err(why) = self.write(&ctx, migration_id, p.build).await {
            tracing::warn!(build = %p.build, "hand-over build failed: {why}");
            self.fail(p.build, &why).await?;
        }
        Ok(())
    }
}

/// Lines one pull answers at most unless asked for fewer.
pub const PULL_LIMIT: i64 = 1000;
/// The most a pull may ask for.
pub const PULL_MAX: i64 = 5000;

/// `seq:ord` of an upload's row: increments come in upload order, then staged order.
/// Where a pull goes on: past staged record `ord` of upload `seq`, and past sync event `sync`
/// (`seq:ord`, or `seq:ord:sync` once sync events were served).
fn parse_cursor(c: &str) -> AppResult<(i64, i32, i64)> {
    let mut parts = c.split(':');
    let parsed = (|| {
        let seq = parts.next()?.parse().ok()?;
        let ord = parts.next()?.parse().ok()?;
        let sync = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some((seq, ord, sync))
    })();
    parsed.ok_or_else(|| {
        AppError::validation(
            "cursor",
            "not a cursor a pull answered (`seq:ord` or `seq:ord:sync`)",
        )
    })
}

fn cursor_at(seq: i64, ord: i32, sync: i64) -> String {
    if sync > 0 {
        format!("{seq}:{ord}:{sync}")
    } else {
        format!("{seq}:{ord}")
    }
}

/// Sync events younger than this are not served yet: an insert still committing may hold a
/// lower `seq` than one already visible, and a cursor must not pass it.
const SYNC_SETTLE_SECS: f64 = 5.0;

/// What the target's importer pulls (its "incremental interface"): the staged history
/// after `cursor` as lines of the hand-over files, in upload order, at most `limit`.
/// Without a cursor it starts where the last pull ended, so each GET answers what is new.
/// Answers `{"code":200,"data":[…],"next":…,"more":…,"kept_aside":[…]}`; each pull is
/// recorded and audited.
pub async fn pull(
    s: &Services,
    actor: &Actor,
    migration_id: MigrationId,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Value> {
    actor.require(Permission::RunMigrations)?;
    crate::migration::get(&s.pool, actor, migration_id).await?;
    let target = target_of(s, migration_id).await?;
    let seam = seam(s, &target)?;
    let limit = limit.unwrap_or(PULL_LIMIT);
    if !(1..=PULL_MAX).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("between 1 and {PULL_MAX} lines a pull"),
        ));
    }
    let from: Option<String> = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(c.to_string()),
        None => sqlx::query_scalar(
            "SELECT next FROM hand_over_pulls WHERE migration_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(migration_id)
        .fetch_optional(&s.pool)
        .await?
        .flatten(),
    };
    let (seq, ord, sync) = match from.as_deref() {
        Some(c) => parse_cursor(c)?,
        None => (0, -1, 0),
    };
    let groups: HashMap<String, String> = sqlx::query_as(
        "SELECT old_id, new_id FROM import_id_map WHERE migration_id = $1 AND kind = 'group'",
    )
    .bind(migration_id)
    .fetch_all(&s.pool)
    .await?
    .into_iter()
    .collect();
    let ids = |g: &str| groups.get(g).cloned();
    // Records validation kept aside are not history; (upload, ord) is unique across kinds.
    let rows: Vec<(i64, i32, String, String, i64)> = sqlx::query_as(
        "SELECT u.seq, x.ord, x.record::text, f.name, x.line FROM (
             SELECT upload_id, ord, file_no, line, record FROM staged_messages
             UNION ALL
             SELECT upload_id, ord, file_no, line, record FROM staged_group_events
         ) x
         JOIN dump_uploads u ON u.id = x.upload_id
         JOIN dump_files f ON f.upload_id = x.upload_id AND f.file_no = x.file_no
         WHERE u.migration_id = $1 AND u.state = 'staged' AND (u.seq, x.ord) > ($2, $3)
           AND NOT EXISTS (SELECT 1 FROM staged_holds h WHERE h.upload_id = x.upload_id AND h.ord = x.ord)
         ORDER BY u.seq, x.ord
         LIMIT $4",
    )
    .bind(migration_id)
    .bind(seq)
    .bind(ord)
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await?;
    let mut more = rows.len() as i64 > limit;
    let mut data = vec![];
    let mut aside = vec![];
    let mut next = from.clone();
    let (mut at_seq, mut at_ord, mut at_sync) = (seq, ord, sync);
    let staged = rows.len().min(limit as usize);
    for (seq, ord, record, file, line) in rows.into_iter().take(limit as usize) {
        (at_seq, at_ord) = (seq, ord);
        next = Some(cursor_at(at_seq, at_ord, at_sync));
        let r: Value =
            serde_json::from_str(&record).map_err(|e| AppError::Internal(Box::new(e)))?;
        match seam.files().line(&r, &ids) {
            Ok(Some(l)) => data.push(l),
            Ok(None) => {}
            Err(why) => aside.push(json!({ "file": file, "line": line, "why": why })),
        }
    }
    // Then the old system's messages that reached imshift through sync while the direction
    // into the target was off: kept, never sent, so the target's importer takes them here.
    // (With the direction on, sync sends them itself and they are not served again.)
    let room = limit - staged as i64;
    if !more && room > 0 {
        let events: Vec<(i64, String, Value)> = sqlx::query_as(
            "SELECT seq, key, data FROM sync_inbound
             WHERE migration_id = $1 AND side = 'source' AND state = 'off'
               AND kind = 'message.sent' AND seq > $2
               AND received_at < now() - make_interval(secs => $3)
             ORDER BY seq LIMIT $4",
        )
        .bind(migration_id)
        .bind(sync)
        .bind(SYNC_SETTLE_SECS)
        .bind(room + 1)
        .fetch_all(&s.pool)
        .await?;
        more = events.len() as i64 > room;
        for (n, key, mut record) in events.into_iter().take(room as usize) {
            at_sync = n;
            next = Some(cursor_at(at_seq, at_ord, at_sync));
            if let Value::Object(o) = &mut record {
                o.entry("kind").or_insert_with(|| "message".into());
            }
            match seam.files().line(&record, &ids) {
                Ok(Some(l)) => data.push(l),
                Ok(None) => {}
                Err(why) => aside.push(json!({ "sync_event": key, "why": why })),
            }
        }
    }
    let mut tx = s.pool.begin().await?;
    sqlx::query(
        "INSERT INTO hand_over_pulls (migration_id, cursor_from, next, lines, kept_aside, actor)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(migration_id)
    .bind(&from)
    .bind(&next)
    .bind(data.len() as i32)
    .bind(aside.len() as i32)
    .bind(&actor.email)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "hand_over.pulled",
        &format!("migration:{migration_id}"),
        json!({ "cursor": from, "next": next, "lines": data.len(), "kept_aside": aside.len() }),
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "code": 200, "data": data, "next": next, "more": more, "kept_aside": aside }))
}
