//! Per-migration pacing: the provider's table of default quotas and batch sizes (one table in
//! code, `providers::tencent::LIMITS`), with this migration's overrides on top — lower to
//! protect a shared app, higher for a raised quota.

use super::get;
use crate::audit;
use crate::auth::Actor;
use crate::model::{ApiLimitView, LimitOverride, Permission, TargetKind};
use crate::providers::tencent::Limits;
use crate::web::{AppError, AppResult};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

pub type Overrides = BTreeMap<String, LimitOverride>;

const MAX_QPS: u32 = 100_000;
const MAX_BATCH: u32 = 10_000;

async fn overrides(pool: &PgPool, id: Uuid) -> AppResult<Overrides> {
    let v: serde_json::Value = sqlx::query_scalar("SELECT limits FROM im_migrations WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    serde_json::from_value(v).map_err(AppError::internal)
}

/// The limits a client for this migration applies.
pub async fn effective(pool: &PgPool, id: Uuid) -> AppResult<Limits> {
    Ok(apply(&overrides(pool, id).await?))
}

fn apply(set: &Overrides) -> Limits {
    let mut limits = Limits::default();
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

pub async fn view(pool: &PgPool, actor: &Actor, id: Uuid) -> AppResult<Vec<ApiLimitView>> {
    let m = get(pool, actor, id).await?;
    if m.target != TargetKind::Tencent {
        return Ok(vec![]);
    }
    let defaults = Limits::default();
    let set = overrides(pool, id).await?;
    let used = apply(&set);
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

/// Replaces this migration's overrides (an empty map goes back to the defaults).
pub async fn set(
    pool: &PgPool,
    actor: &Actor,
    id: Uuid,
    new: Overrides,
) -> AppResult<Vec<ApiLimitView>> {
    actor.require(Permission::RunMigrations)?;
    let m = get(pool, actor, id).await?;
    if m.target != TargetKind::Tencent {
        return Err(AppError::validation(
            "target",
            format!("{} has no pacing table yet", m.target.label()),
        ));
    }
    let defaults = Limits::default();
    for (api, o) in &new {
        let Some(d) = defaults.get(api) else {
            return Err(AppError::validation(
                api,
                format!("`{api}` is not a Tencent IM API imshift calls; use one of the names GET returns"),
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
    }
    let before = overrides(pool, id).await?;
    let mut tx = pool.begin().await?;
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
        serde_json::json!({ "from": before, "to": new }),
    )
    .await?;
    tx.commit().await?;
    view(pool, actor, id).await
}
