//! Per-migration pacing: the target provider's table of default quotas and batch sizes
//! ([`crate::providers::Provider::limits`]), with this migration's overrides on top — lower to
//! protect a shared app, higher for a raised quota.

use super::get;
use crate::audit;
use crate::auth::Actor;
use crate::model::{ApiLimitView, LimitOverride, MigrationId, Permission};
use crate::providers::{ApiLimit, Limits, Registry};
use crate::service::{AppError, AppResult, Services};
use sqlx::PgPool;
use std::collections::BTreeMap;

pub type Overrides = BTreeMap<String, LimitOverride>;

const MAX_QPS: u32 = 100_000;
const MAX_BATCH: u32 = 10_000;

async fn overrides(pool: &PgPool, id: MigrationId) -> AppResult<Overrides> {
    let v: serde_json::Value = sqlx::query_scalar("SELECT limits FROM im_migrations WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    serde_json::from_value(v).map_err(AppError::internal)
}

/// The target provider's defaults for this migration (none for a provider this build lacks).
async fn defaults(
    pool: &PgPool,
    providers: &Registry,
    id: MigrationId,
) -> AppResult<(Limits, String)> {
    let target: String = sqlx::query_scalar("SELECT target FROM im_migrations WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(match providers.get(&target) {
        Some(p) => (p.limits(), p.label().to_string()),
        None => (Limits::default(), target),
    })
}

/// The limits a client for this migration applies.
pub async fn effective(pool: &PgPool, providers: &Registry, id: MigrationId) -> AppResult<Limits> {
    let (defaults, _) = defaults(pool, providers, id).await?;
    Ok(apply(defaults, &overrides(pool, id).await?))
}

fn apply(mut limits: Limits, set: &Overrides) -> Limits {
    for (api, o) in set {
        if let Some(q) = o.qps {
            limits.set_qps(api, q);
        }
        if let Some(b) = o.batch {
            limits.set_batch(api, b as usize);
        }
    }
    limits
}

pub async fn view(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
) -> AppResult<Vec<ApiLimitView>> {
    get(&state.pool, actor, id).await?;
    let (defaults, _) = defaults(&state.pool, &state.config.providers, id).await?;
    let set = overrides(&state.pool, id).await?;
    let used = apply(defaults.clone(), &set);
    Ok(defaults
        .apis
        .iter()
        .map(|(api, d)| {
            let u = used.get(api).unwrap_or(*d);
            ApiLimitView {
                api: api.to_string(),
                default_qps: d.qps,
                default_batch: d.batch.map(|b| b as u32),
                qps: u.qps,
                batch: u.batch.map(|b| b as u32),
                overridden: set.contains_key(*api),
            }
        })
        .collect())
}

/// Checks one API's override against the provider's table.
fn check(defaults: &Limits, label: &str, api: &str, o: &LimitOverride) -> AppResult<ApiLimit> {
    let Some(d) = defaults.get(api) else {
        return Err(AppError::validation(
            api,
            format!("`{api}` is not a {label} API imshift calls; use one of the names GET returns"),
        ));
    };
    if let Some(q) = o.qps {
        if q == 0 || q > MAX_QPS {
            return Err(AppError::validation(
                api,
                format!("qps {q}: use 1 to {MAX_QPS} requests per second"),
            ));
        }
    }
    if let Some(b) = o.batch {
        if d.batch.is_none() {
            return Err(AppError::validation(
                api,
                "this API takes one item per request; it has no batch size",
            ));
        }
        if b == 0 || b > MAX_BATCH {
            return Err(AppError::validation(
                api,
                format!("batch {b}: use 1 to {MAX_BATCH} items per request"),
            ));
        }
    }
    Ok(d)
}

/// Per API whose values change, the values in force before and after (override or default):
/// `{"openim/importmsg": {"qps": {"from": 200, "to": 50}}}`.
fn changes(defaults: &Limits, before: &Overrides, after: &Overrides) -> serde_json::Value {
    let (old, new) = (
        apply(defaults.clone(), before),
        apply(defaults.clone(), after),
    );
    let mut out = serde_json::Map::new();
    for (api, d) in &defaults.apis {
        let (o, n) = (old.get(api).unwrap_or(*d), new.get(api).unwrap_or(*d));
        let mut c = serde_json::Map::new();
        if o.qps != n.qps {
            c.insert(
                "qps".into(),
                serde_json::json!({ "from": o.qps, "to": n.qps }),
            );
        }
        if o.batch != n.batch {
            c.insert(
                "batch".into(),
                serde_json::json!({ "from": o.batch, "to": n.batch }),
            );
        }
        if !c.is_empty() {
            out.insert(api.to_string(), c.into());
        }
    }
    out.into()
}

/// The target's table, refusing a target without one.
async fn table(state: &Services, actor: &Actor, id: MigrationId) -> AppResult<(Limits, String)> {
    actor.require(Permission::RunMigrations)?;
    get(&state.pool, actor, id).await?;
    let (defaults, label) = defaults(&state.pool, &state.config.providers, id).await?;
    if defaults.apis.is_empty() {
        return Err(AppError::validation(
            "target",
            format!("{label} has no pacing table yet"),
        ));
    }
    Ok((defaults, label))
}

/// Stores `edit(current overrides)` under the row lock and audits what changed (nothing is
/// written when nothing changes). A running import reads the new values within seconds.
async fn store(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    defaults: &Limits,
    edit: impl FnOnce(&Overrides) -> Overrides,
) -> AppResult<Vec<ApiLimitView>> {
    let mut tx = state.pool.begin().await?;
    let v: serde_json::Value =
        sqlx::query_scalar("SELECT limits FROM im_migrations WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    let before: Overrides = serde_json::from_value(v).map_err(AppError::internal)?;
    let new = edit(&before);
    if new != before {
        sqlx::query("UPDATE im_migrations SET limits = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(serde_json::to_value(&new).map_err(AppError::internal)?)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut *tx,
            &actor.into(),
            "migration.limits_set",
            &format!("migration:{id}"),
            serde_json::json!({ "changes": changes(defaults, &before, &new), "from": before, "to": new }),
        )
        .await?;
    }
    tx.commit().await?;
    view(state, actor, id).await
}

/// Replaces this migration's overrides (an empty map goes back to the defaults).
pub async fn set(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    new: Overrides,
) -> AppResult<Vec<ApiLimitView>> {
    let (defaults, label) = table(state, actor, id).await?;
    for (api, o) in &new {
        check(&defaults, &label, api, o)?;
    }
    store(state, actor, id, &defaults, |_| new).await
}

/// Sets one API's rate and batch size, or puts it back to the defaults (`None`); the other
/// APIs' overrides stay. A value equal to the default is no override.
pub async fn set_one(
    state: &Services,
    actor: &Actor,
    id: MigrationId,
    api: &str,
    o: Option<LimitOverride>,
) -> AppResult<Vec<ApiLimitView>> {
    let (defaults, label) = table(state, actor, id).await?;
    let o = o.unwrap_or_default();
    let d = check(&defaults, &label, api, &o)?;
    let o = LimitOverride {
        qps: o.qps.filter(|q| *q != d.qps),
        batch: o.batch.filter(|b| Some(*b as usize) != d.batch),
    };
    let api = api.to_string();
    store(state, actor, id, &defaults, move |before| {
        let mut new = before.clone();
        if o == LimitOverride::default() {
            new.remove(&api);
        } else {
            new.insert(api, o);
        }
        new
    })
    .await
}
