//! Both sides of a migration as connections: the provider's fields (public ones as JSON, each
//! secret sealed on its own and write-only), Test connection, and "Rehearse in sandbox", which
//! points a side at an in-process sandbox of its provider.

use super::get;
use crate::audit;
use crate::auth::Actor;
use crate::model::{
    ConnectionCheck, ConnectionInput, ConnectionView, FieldKind, MigrationId, Permission,
    SecretHint, Side,
};
use crate::providers::{outbound, Connection, Provider, StartOptions};
use crate::secrets::last4;
use crate::service::{AppError, AppResult, Services};
use crate::sync::inbound::hook_url;
use secrecy::SecretString;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use time::OffsetDateTime;

/// Where a sealed secret lives, bound into its ciphertext: moving it to another migration,
/// side or field makes it unreadable.
fn context(id: MigrationId, side: Side, field: &str) -> String {
    format!("im_migration:{id}:{side}:{field}")
}

/// The context of a secret sealed before connections existed (`legacy_context` column).
fn legacy(id: MigrationId, name: &str) -> String {
    format!("im_migration:{id}:{name}")
}

#[derive(sqlx::FromRow)]
struct Row {
    provider: String,
    public: Value,
    complete: bool,
    sandbox: bool,
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    field: String,
    sealed: Vec<u8>,
    last4: String,
    set_by: String,
    set_at: OffsetDateTime,
    legacy_context: Option<String>,
}

async fn row(pool: &PgPool, id: MigrationId, side: Side) -> AppResult<Option<Row>> {
    Ok(sqlx::query_as(
        "SELECT provider, public, complete, sandbox FROM connections
         WHERE migration_id = $1 AND side = $2",
    )
    .bind(id)
    .bind(side.as_str())
    .fetch_optional(pool)
    .await?)
}

async fn secret_rows(pool: &PgPool, id: MigrationId, side: Side) -> AppResult<Vec<SecretRow>> {
    Ok(sqlx::query_as(
        "SELECT field, sealed, last4, set_by, set_at, legacy_context FROM connection_secrets
         WHERE migration_id = $1 AND side = $2",
    )
    .bind(id)
    .bind(side.as_str())
    .fetch_all(pool)
    .await?)
}

/// The provider the migration names for `side`.
fn provider_of(
    state: &Services,
    m: &crate::model::Migration,
    side: Side,
) -> AppResult<Arc<dyn Provider>> {
    let name = match side {
        Side::Source => &m.source,
        Side::Target => &m.target,
    };
    state
        .config
        .providers
        .for_side(name, side)
        .cloned()
        .map_err(|e| AppError::validation(side.as_str(), e))
}

fn is_set(v: &Value) -> bool {
    !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty())
}

/// Every required field the provider shows for these values is set.
fn complete(p: &dyn Provider, side: Side, public: &Map<String, Value>, secrets: &[String]) -> bool {
    p.fields(side).iter().filter(|f| f.required).all(|f| {
        let shown = f.only_when.as_ref().is_none_or(|(other, value)| {
            public.get(other).and_then(Value::as_str) == Some(value.as_str())
        });
        !shown
            || match f.kind {
                FieldKind::Secret => secrets.contains(&f.id),
                _ => public.get(&f.id).is_some_and(is_set),
            }
    })
}

pub async fn view(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    side: Side,
) -> AppResult<ConnectionView> {
    let m = get(&state.pool, actor, id).await?;
    let p = provider_of(state, &m, side)?;
    // A connection stored for another provider (the side was changed) shows as not set.
    let r = row(&state.pool, id, side)
        .await?
        .filter(|r| r.provider == p.id());
    let secrets = match r {
        Some(_) => secret_rows(&state.pool, id, side).await?,
        None => vec![],
    };
    let values: BTreeMap<String, Value> = match &r {
        Some(r) => r
            .public
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    };
    let public: Map<String, Value> = values.clone().into_iter().collect();
    Ok(ConnectionView {
        side,
        provider: p.id().into(),
        provider_label: p.label().into(),
        fields: p.fields(side),
        endpoint: p.endpoint(side, &public),
        values,
        secrets: secrets
            .into_iter()
            .map(|s| {
                (
                    s.field,
                    SecretHint {
                        last4: s.last4,
                        set_by: s.set_by,
                        set_at: s.set_at,
                    },
                )
            })
            .collect(),
        complete: r.as_ref().is_some_and(|r| r.complete),
        sandbox: r.as_ref().is_some_and(|r| r.sandbox),
        can_test: p.can_test(side),
        can_sandbox: p.sandbox().is_some(),
        note: p.note(side),
    })
}

/// What one save writes to a side's connection.
struct Write<'a> {
    public: &'a Map<String, Value>,
    /// Secrets given now, to seal (the others are kept).
    new_secrets: &'a [(String, SecretString)],
    /// Optional secrets to remove.
    cleared: &'a [String],
    /// The side now points at a sandbox this console started.
    sandbox: bool,
}

/// Stores public fields and newly given secrets, sealed, under one transaction.
async fn store(
    state: &Services,
    actor: &Actor,
    (id, side): (MigrationId, Side),
    p: &dyn Provider,
    w: Write<'_>,
) -> AppResult<()> {
    let Write {
        public,
        new_secrets,
        cleared,
        sandbox,
    } = w;
    let mut tx = state.pool.begin().await?;
    // The provider changed: what was stored for the old one goes.
    sqlx::query("DELETE FROM connections WHERE migration_id = $1 AND side = $2 AND provider <> $3")
        .bind(id)
        .bind(side.as_str())
        .bind(p.id())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO connections (migration_id, side, provider, public, sandbox)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (migration_id, side) DO UPDATE SET public = $4, sandbox = $5, updated_at = now()",
    )
    .bind(id)
    .bind(side.as_str())
    .bind(p.id())
    .bind(Value::Object(public.clone()))
    .bind(sandbox)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM connection_secrets WHERE migration_id = $1 AND side = $2 AND field = ANY($3)",
    )
    .bind(id)
    .bind(side.as_str())
    .bind(cleared)
    .execute(&mut *tx)
    .await?;
    for (field, value) in new_secrets {
        let sealed = state.master_key.seal(value, &context(id, side, field));
        sqlx::query(
            "INSERT INTO connection_secrets (migration_id, side, field, sealed, last4, set_by, set_at)
             VALUES ($1, $2, $3, $4, $5, $6, now())
             ON CONFLICT (migration_id, side, field) DO UPDATE SET sealed = $4, last4 = $5,
                 set_by = $6, set_at = now(), legacy_context = NULL",
        )
        .bind(id)
        .bind(side.as_str())
        .bind(field)
        .bind(&sealed)
        .bind(last4(value))
        .bind(&actor.email)
        .execute(&mut *tx)
        .await?;
    }
    let fields: Vec<String> = sqlx::query_scalar(
        "SELECT field FROM connection_secrets WHERE migration_id = $1 AND side = $2",
    )
    .bind(id)
    .bind(side.as_str())
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE connections SET complete = $3 WHERE migration_id = $1 AND side = $2")
        .bind(id)
        .bind(side.as_str())
        .bind(complete(p, side, public, &fields))
        .execute(&mut *tx)
        .await?;
    super::state::settle(&mut tx, id, super::state::Change::Follow).await?;
    match sandbox {
        true => {
            audit::record(
                &mut *tx,
                &actor.into(),
                "migration.sandbox_started",
                &format!("migration:{id}"),
                json!({ "side": side, "provider": p.id(), "endpoint": p.endpoint(side, public) }),
            )
            .await?
        }
        false => {
            // Which fields changed, never a secret's value.
            let mut details = public.clone();
            details.insert("side".into(), json!(side));
            details.insert("provider".into(), json!(p.id()));
            for f in p
                .fields(side)
                .iter()
                .filter(|f| f.kind == FieldKind::Secret)
            {
                let what = if new_secrets.iter().any(|(n, _)| *n == f.id) {
                    "rotated"
                } else if cleared.contains(&f.id) {
                    "cleared"
                } else {
                    "kept"
                };
                details.insert(f.id.clone(), json!(what));
            }
            audit::record(
                &mut *tx,
                &actor.into(),
                "migration.keys_set",
                &format!("migration:{id}"),
                Value::Object(details),
            )
            .await?
        }
    }
    tx.commit().await?;
    forget_opened(state);
    Ok(())
}

/// Set or rotate one side's connection. A secret left out (or empty) keeps its stored value.
pub async fn set(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    side: Side,
    input: &ConnectionInput,
) -> AppResult<ConnectionView> {
    actor.require(Permission::ManageCredentials)?;
    let m = get(&state.pool, actor, id).await?;
    let p = provider_of(state, &m, side)?;
    let fields = p.fields(side);
    // A side with nothing to connect stays unset (it would otherwise count as complete).
    if fields.is_empty() {
        return Err(AppError::validation(
            side.as_str(),
            p.note(side)
                .unwrap_or_else(|| format!("{} has nothing to connect", p.label())),
        ));
    }
    if let Some(unknown) = input
        .fields
        .keys()
        .find(|k| !fields.iter().any(|f| &f.id == *k))
    {
        let known: Vec<&str> = fields.iter().map(|f| f.id.as_str()).collect();
        return Err(AppError::validation(
            unknown,
            format!(
                "`{unknown}` is not a {} connection field; use: {}",
                p.label(),
                known.join(", ")
            ),
        ));
    }
    let mut public = Map::new();
    let mut new_secrets = vec![];
    // An optional secret given as `null` is removed (the end of a rotation, a token dropped);
    // left out or empty, it is kept.
    let cleared: Vec<String> = fields
        .iter()
        .filter(|f| f.kind == FieldKind::Secret && !f.required)
        .filter(|f| input.fields.get(&f.id).is_some_and(Value::is_null))
        .map(|f| f.id.clone())
        .collect();
    for f in &fields {
        let Some(v) = input.fields.get(&f.id).filter(|v| is_set(v)) else {
            continue;
        };
        if f.kind == FieldKind::Secret {
            let Some(s) = v.as_str().map(str::trim) else {
                return Err(AppError::validation(&f.id, "a secret is text"));
            };
            p.check_secret(side, &f.id, s)
                .map_err(|e| AppError::validation(&f.id, e))?;
            new_secrets.push((f.id.clone(), SecretString::from(s.to_string())));
        } else {
            public.insert(f.id.clone(), v.clone());
        }
    }
    p.check(side, &mut public)
        .map_err(|e| AppError::validation(&e.field, e.message))?;
    // A required secret must be given once; afterwards leaving it out keeps it.
    let stored: Vec<String> = match row(&state.pool, id, side).await? {
        Some(r) if r.provider == p.id() => secret_rows(&state.pool, id, side)
            .await?
            .into_iter()
            .map(|s| s.field)
            .collect(),
        _ => vec![],
    };
    if let Some(f) = fields.iter().find(|f| {
        f.kind == FieldKind::Secret
            && f.required
            && !stored.contains(&f.id)
            && !new_secrets.iter().any(|(n, _)| *n == f.id)
    }) {
        return Err(AppError::validation(
            &f.id,
            format!("paste the {} ({})", f.label.to_lowercase(), f.help),
        ));
    }
    let write = Write {
        public: &public,
        new_secrets: &new_secrets,
        cleared: &cleared,
        sandbox: false,
    };
    store(state, actor, (id, side), p.as_ref(), write).await?;
    view(state, actor, id, side).await
}

/// The side's connection with its secrets opened, for its provider; a sandbox connection
/// whose sandbox is not running in this process (after a restart) gets it started again.
pub async fn open(
    state: &Services,
    id: MigrationId,
    side: Side,
) -> AppResult<(Arc<dyn Provider>, Connection)> {
    let name: String = sqlx::query_scalar(&format!(
        "SELECT {} FROM im_migrations WHERE id = $1",
        match side {
            Side::Source => "source",
            Side::Target => "target",
        }
    ))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("No migration has id {id}.")))?;
    let p = state
        .config
        .providers
        .for_side(&name, side)
        .cloned()
        .map_err(AppError::Conflict)?;
    let r = row(&state.pool, id, side)
        .await?
        .filter(|r| r.provider == p.id() && r.complete)
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "Set the {}'s connection first (Connections tab).",
                side.as_str()
            ))
        })?;
    let mut secrets = HashMap::new();
    for s in secret_rows(&state.pool, id, side).await? {
        let ctx = match &s.legacy_context {
            Some(name) => legacy(id, name),
            None => context(id, side, &s.field),
        };
        let value = state
            .master_key
            .open(&s.sealed, &ctx)
            .map_err(|e| AppError::Conflict(e.to_string()))?;
        secrets.insert(s.field, value);
    }
    let conn = Connection {
        migration_id: id,
        side,
        public: r.public.as_object().cloned().unwrap_or_default(),
        secrets,
        sandbox: r.sandbox,
    };
    if conn.sandbox {
        ensure_sandbox(state, p.as_ref(), &conn).await?;
    }
    Ok((p, conn))
}

/// How long the door uses a connection it opened before it opens it again: a secret rotated
/// in another console process is in force at this one's door about this long after (at once
/// in the process that stored it).
const OPENED_FRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// While one delivery's task opens the connection again, how long the others go on with the
/// one opened before.
const REOPEN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection opened longer ago than this (a side quiet for a while) is opened again
/// before the delivery is checked, not in the background.
const OPENED_STALE: std::time::Duration = std::time::Duration::from_secs(6);

/// [`open`] for the door, kept [`OPENED_FRESH`]: a delivery per event would otherwise open
/// its side's secrets each time. Past that, the first delivery to see it starts opening it
/// again in the background and every delivery goes on with the one opened before until that
/// lands: deliveries that each opened it themselves finished their queries in any order, and
/// a side's later delivery reached the writer before an earlier one (a conversation's events
/// out of order). A side not opened yet, opened over [`OPENED_STALE`] ago, or whose reopening
/// failed waits for the queries.
pub async fn open_at_door(
    state: &Services,
    id: MigrationId,
    side: Side,
) -> AppResult<(Arc<dyn Provider>, Arc<Connection>)> {
    let now = std::time::Instant::now();
    let reopen = {
        let mut opened = state.opened.lock().unwrap();
        match opened.get_mut(&(id, side)) {
            Some((at, p, c)) if now.duration_since(*at) < OPENED_STALE => {
                let got = (p.clone(), c.clone());
                if now.duration_since(*at) < OPENED_FRESH {
                    return Ok(got);
                }
                // Fresh for a moment more, so that only this delivery starts the reopening.
                *at = now.checked_sub(OPENED_FRESH - REOPEN_GRACE).unwrap_or(now);
                Some(got)
            }
            _ => None,
        }
    };
    if let Some(got) = reopen {
        let state = state.clone();
        let replaced = got.1.clone();
        tokio::spawn(async move {
            match open(&state, id, side).await {
                Ok((p, c)) => keep_opened(&state, id, side, p, Arc::new(c), Some(&replaced)),
                // The next delivery opens it itself and answers why it cannot.
                Err(_) => {
                    state.opened.lock().unwrap().remove(&(id, side));
                }
            }
        });
        return Ok(got);
    }
    let (p, c) = open(state, id, side).await?;
    let c = Arc::new(c);
    keep_opened(state, id, side, p.clone(), c.clone(), None);
    Ok((p, c))
}

/// `replaces`: a reopening is kept only if the one it was read to replace is still the one
/// kept (a change to a connection drops them all, and what a reopening read before that may
/// be older than what a delivery opened since).
fn keep_opened(
    state: &Services,
    id: MigrationId,
    side: Side,
    p: Arc<dyn Provider>,
    c: Arc<Connection>,
    replaces: Option<&Arc<Connection>>,
) {
    let mut opened = state.opened.lock().unwrap();
    if let Some(old) = replaces {
        match opened.get(&(id, side)) {
            Some((_, _, kept)) if Arc::ptr_eq(kept, old) => {}
            _ => return,
        }
    }
    // Opened secrets stay in memory no longer than they are used.
    opened.retain(|_, (at, _, _)| at.elapsed() < OPENED_STALE);
    opened.insert((id, side), (std::time::Instant::now(), p, c));
}

/// Drops the door's opened connections, after a change to any of them.
pub fn forget_opened(state: &Services) {
    state.opened.lock().unwrap().clear();
}

/// Test connection on one side: the provider's harmless signed call, in words.
pub async fn test(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    side: Side,
) -> AppResult<ConnectionCheck> {
    actor.require(Permission::RunMigrations)?;
    get(&state.pool, actor, id).await?;
    let (p, conn) = open(state, id, side).await?;
    let check = p.test(&conn).await.ok_or_else(|| {
        AppError::validation(
            side.as_str(),
            format!("{} has no connection to test", p.label()),
        )
    })?;
    audit::record(
        &state.pool,
        &actor.into(),
        "migration.keys_tested",
        &format!("migration:{id}"),
        json!({ "side": side, "ok": check.ok, "code": check.code, "latency_ms": check.latency_ms }),
    )
    .await?;
    Ok(check)
}

/// Sandboxes live in this process: after a restart the first use starts the side's sandbox
/// again, on the same port with the same keys (and empty).
async fn ensure_sandbox(state: &Services, p: &dyn Provider, conn: &Connection) -> AppResult<()> {
    let mut running = state.sandboxes.lock().await;
    if running.contains_key(&(conn.migration_id, conn.side)) {
        return Ok(());
    }
    let Some(sandbox) = p.sandbox() else {
        return Err(AppError::Conflict(format!("{} has no sandbox", p.label())));
    };
    let port = p
        .endpoint(conn.side, &conn.public)
        .and_then(|u| u.rsplit(':').next().and_then(|p| p.parse().ok()))
        .unwrap_or(0);
    let opts = StartOptions {
        port,
        hook_url: Some(hook_url(
            &state.config.public_url,
            conn.migration_id,
            conn.side,
        )),
        ..StartOptions::default()
    };
    let handle = sandbox
        .start(Some(conn), opts)
        .await
        .map_err(AppError::Conflict)?
        .sandbox;
    tracing::info!(migration = %conn.migration_id, side = %conn.side, addr = %handle.addr(), "sandbox started again");
    outbound::register_sandbox(handle.addr());
    running.insert((conn.migration_id, conn.side), Arc::from(handle));
    Ok(())
}

/// Points one side at a fresh in-process sandbox of its provider, with keys made for it.
pub async fn rehearse(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    side: Side,
) -> AppResult<ConnectionView> {
    actor.require(Permission::ManageCredentials)?;
    let m = get(&state.pool, actor, id).await?;
    let p = provider_of(state, &m, side)?;
    let Some(sandbox) = p.sandbox() else {
        return Err(AppError::validation(
            "side",
            format!("{} has no sandbox to rehearse in", p.label()),
        ));
    };
    // The sandbox keeps the app id already entered, with keys of its own.
    let seed = Connection {
        migration_id: id,
        side,
        public: row(&state.pool, id, side)
            .await?
            .filter(|r| r.provider == p.id())
            .and_then(|r| r.public.as_object().cloned())
            .unwrap_or_default(),
        secrets: HashMap::new(),
        sandbox: true,
    };
    let opts = StartOptions {
        port: 0,
        hook_url: Some(hook_url(&state.config.public_url, id, side)),
        ..StartOptions::default()
    };
    let started = sandbox
        .start(Some(&seed), opts)
        .await
        .map_err(AppError::Conflict)?;
    let (handle, public, secrets) = (started.sandbox, started.public, started.secrets);
    let addr = handle.addr();
    tracing::info!(migration = %id, side = %side, addr = %addr, "sandbox started");
    // The outbound guard admits the sandboxes this process started, whatever else it refuses.
    outbound::register_sandbox(addr);
    if let Some(old) = state
        .sandboxes
        .lock()
        .await
        .insert((id, side), Arc::from(handle))
    {
        if old.addr() != addr {
            outbound::forget_sandbox(old.addr());
        }
    }
    let write = Write {
        public: &public,
        new_secrets: &secrets,
        cleared: &[],
        sandbox: true,
    };
    store(state, actor, (id, side), p.as_ref(), write).await?;
    view(state, actor, id, side).await
}

/// `GET …/keys` (deprecated): the target connection, flattened as the keys routes answered
/// before connections existed.
pub async fn legacy_view(state: &Services, actor: &Actor, id: MigrationId) -> AppResult<Value> {
    let v = view(state, actor, id, Side::Target).await?;
    let mut out = Map::new();
    out.insert("target".into(), json!(v.provider));
    for f in &v.fields {
        let value = match f.kind {
            FieldKind::Secret => json!(v.secrets.get(&f.id)),
            _ => v.values.get(&f.id).cloned().unwrap_or(Value::Null),
        };
        out.insert(f.id.clone(), value);
    }
    out.insert("sandbox".into(), json!(v.sandbox));
    Ok(Value::Object(out))
}
