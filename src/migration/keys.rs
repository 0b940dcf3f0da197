//! A migration's target keys: set and rotate (secrets sealed, write-only), Test connection, and
//! "Rehearse in sandbox", which points the keys at an in-process Tencent sandbox.

use super::get;
use crate::audit;
use crate::auth::Actor;
use crate::model::{
    ConnectionCheck, Permission, RegionChoice, SecretHint, SetTencentKeys, TargetKeys, TargetKind,
};
use crate::providers::outbound;
use crate::providers::tencent::{self, client::TencentClient, client::TencentConfig};
use crate::secrets::{last4, MasterKey};
use crate::web::{AppError, AppResult, AppState};
use secrecy::SecretString;
use serde_json::json;
use sqlx::PgPool;
use std::time::Instant;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    sdkappid: Option<i64>,
    region: Option<String>,
    base_url: Option<String>,
    admin_identifier: Option<String>,
    secret_sealed: Option<Vec<u8>>,
    secret_last4: Option<String>,
    secret_set_by: Option<String>,
    secret_set_at: Option<OffsetDateTime>,
    callback_last4: Option<String>,
    callback_set_by: Option<String>,
    callback_set_at: Option<OffsetDateTime>,
    sandbox: bool,
}

fn hint(
    last4: Option<String>,
    by: Option<String>,
    at: Option<OffsetDateTime>,
) -> Option<SecretHint> {
    Some(SecretHint {
        last4: last4?,
        set_by: by.unwrap_or_default(),
        set_at: at?,
    })
}

/// Where a sealed secret lives, bound into its ciphertext.
fn context(id: Uuid, field: &str) -> String {
    format!("im_migration:{id}:{field}")
}

pub fn regions(target: TargetKind) -> Vec<RegionChoice> {
    match target {
        TargetKind::Tencent => tencent::REGIONS
            .iter()
            .map(|r| RegionChoice {
                id: r.id.to_string(),
                label: r.label.to_string(),
                base_url: format!("https://{}", r.domain),
            })
            .collect(),
        _ => vec![],
    }
}

async fn row(pool: &PgPool, id: Uuid) -> AppResult<Option<Row>> {
    Ok(
        sqlx::query_as("SELECT * FROM target_keys WHERE migration_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn view(pool: &PgPool, actor: &Actor, id: Uuid) -> AppResult<TargetKeys> {
    let m = get(pool, actor, id).await?;
    let r = row(pool, id).await?;
    Ok(match r {
        None => TargetKeys {
            target: m.target,
            sdkappid: None,
            region: None,
            base_url: None,
            admin_identifier: None,
            secret_key: None,
            callback_token: None,
            sandbox: false,
        },
        Some(r) => TargetKeys {
            target: m.target,
            sdkappid: r.sdkappid,
            region: r.region,
            base_url: r.base_url,
            admin_identifier: r.admin_identifier,
            secret_key: hint(r.secret_last4, r.secret_set_by, r.secret_set_at),
            callback_token: hint(r.callback_last4, r.callback_set_by, r.callback_set_at),
            sandbox: r.sandbox,
        },
    })
}

/// `https://` to a public address; `http://` only to this machine (sandboxes); no userinfo or
/// odd host spellings (see `providers::outbound`). Host names are checked again, by their DNS
/// answer, each time the console connects.
pub fn check_base_url(url: &str) -> AppResult<String> {
    outbound::check_url(url, outbound::Policy::from_env())
        .map(|t| t.url)
        .map_err(|r| AppError::validation("base_url", r.0))
}

fn check_admin(admin: &str) -> AppResult<String> {
    let admin = admin.trim();
    tencent::convert::check_user_id(admin).map_err(|why| {
        AppError::validation(
            "admin_identifier",
            format!("an app admin's UserID ({why}); the Tencent console calls it `administrator` by default"),
        )
    })?;
    Ok(admin.to_string())
}

/// Stores one sealed secret; `field` is `secret` or `callback` (a column prefix, never input).
async fn store_sealed(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    field: &'static str,
    sealed: &[u8],
    last4: &str,
    by: &str,
) -> AppResult<()> {
    sqlx::query(&format!(
        "UPDATE target_keys SET {field}_sealed = $2, {field}_last4 = $3, {field}_set_by = $4,
             {field}_set_at = now() WHERE migration_id = $1"
    ))
    .bind(id)
    .bind(sealed)
    .bind(last4)
    .bind(by)
    .execute(tx)
    .await?;
    Ok(())
}

/// Set or rotate a Tencent IM target's keys. A secret left out keeps its stored value.
pub async fn set_tencent(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    input: &SetTencentKeys,
) -> AppResult<TargetKeys> {
    actor.require(Permission::ManageCredentials)?;
    let m = get(&state.pool, actor, id).await?;
    if m.target != TargetKind::Tencent {
        return Err(AppError::validation(
            "target",
            format!(
                "this migration's target is {}, not Tencent IM",
                m.target.label()
            ),
        ));
    }
    if !(1..=u32::MAX as i64).contains(&input.sdkappid) {
        return Err(AppError::validation(
            "sdkappid",
            "the SDKAppID is a positive number, such as 1400000000",
        ));
    }
    let base_url = if input.region == "custom" {
        check_base_url(input.base_url.as_deref().unwrap_or_default())?
    } else {
        regions(TargetKind::Tencent)
            .into_iter()
            .find(|r| r.id == input.region)
            .map(|r| r.base_url)
            .ok_or_else(|| {
                AppError::validation(
                    "region",
                    format!(
                        "`{}` is not a Tencent IM region; choose one from the list or `custom`",
                        input.region
                    ),
                )
            })?
    };
    let admin = check_admin(&input.admin_identifier)?;
    let secret = input
        .secret_key
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let token = input
        .callback_token
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let existing = row(&state.pool, id).await?;
    if secret.is_none()
        && existing
            .as_ref()
            .and_then(|r| r.secret_sealed.as_ref())
            .is_none()
    {
        return Err(AppError::validation(
            "secret_key",
            "paste the app's secret key (console → Application → Basic config)",
        ));
    }
    let key: &MasterKey = &state.master_key;
    let sealed_secret = secret.map(|s| {
        let s = SecretString::from(s.to_string());
        (key.seal(&s, &context(id, "secret")), last4(&s))
    });
    let sealed_token = token.map(|t| {
        let t = SecretString::from(t.to_string());
        (key.seal(&t, &context(id, "callback")), last4(&t))
    });
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        "INSERT INTO target_keys (migration_id, sdkappid, region, base_url, admin_identifier, sandbox)
         VALUES ($1, $2, $3, $4, $5, false)
         ON CONFLICT (migration_id) DO UPDATE SET sdkappid = $2, region = $3, base_url = $4,
             admin_identifier = $5, sandbox = false, updated_at = now()",
    )
    .bind(id)
    .bind(input.sdkappid)
    .bind(&input.region)
    .bind(&base_url)
    .bind(&admin)
    .execute(&mut *tx)
    .await?;
    for (field, value) in [("secret", &sealed_secret), ("callback", &sealed_token)] {
        if let Some((sealed, l4)) = value {
            store_sealed(&mut tx, id, field, sealed, l4, &actor.email).await?;
        }
    }
    sqlx::query("UPDATE im_migrations SET state = 'ready', updated_at = now() WHERE id = $1 AND state = 'draft'")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    // Which fields changed, never their values' secrets.
    audit::record(
        &mut *tx,
        &actor.into(),
        "migration.keys_set",
        &format!("migration:{id}"),
        json!({
            "sdkappid": input.sdkappid,
            "region": input.region,
            "base_url": base_url,
            "admin_identifier": admin,
            "secret_key": if sealed_secret.is_some() { "rotated" } else { "kept" },
            "callback_token": if sealed_token.is_some() { "rotated" } else { "kept" },
        }),
    )
    .await?;
    tx.commit().await?;
    view(&state.pool, actor, id).await
}

/// A client for the migration's target, secrets opened just for it, with the admin it acts as.
pub async fn client(state: &AppState, id: Uuid) -> AppResult<(TencentClient, String, i64)> {
    let r = row(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::Conflict("Set the target's keys first (Keys tab).".into()))?;
    let (Some(sdkappid), Some(base_url), Some(admin), Some(sealed)) = (
        r.sdkappid,
        r.base_url.clone(),
        r.admin_identifier.clone(),
        r.secret_sealed.as_ref(),
    ) else {
        return Err(AppError::Conflict(
            "The target's keys are incomplete: set them on the Keys tab.".into(),
        ));
    };
    let secret = state
        .master_key
        .open(sealed, &context(id, "secret"))
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    if r.sandbox {
        super::keys::ensure_sandbox(state, id, sdkappid, &admin, &secret, &base_url).await?;
    }
    let client = TencentClient::new(TencentConfig {
        base_url,
        sdkappid: sdkappid as u64,
        admin: admin.clone(),
        secret,
        usersig_ttl_secs: 86_400,
    })
    .map_err(|e| AppError::validation("keys", e.to_string()))?
    .with_limits(super::limits::effective(&state.pool, id).await?);
    Ok((client, admin, sdkappid))
}

/// Signs a harmless call (`account_check` on the admin) and says what happened in words.
pub async fn test_connection(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
) -> AppResult<ConnectionCheck> {
    actor.require(Permission::RunMigrations)?;
    let (client, admin, sdkappid) = client(state, id).await?;
    let started = Instant::now();
    let outcome = client.account_check(std::slice::from_ref(&admin)).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let check = match outcome {
        Ok(_) => ConnectionCheck {
            ok: true,
            code: None,
            message: format!(
                "OK: SDKAppID {sdkappid} answered as admin `{admin}` in {latency_ms} ms."
            ),
            latency_ms,
        },
        Err(e) => ConnectionCheck {
            ok: false,
            code: e.code(),
            message: e.for_test_connection(),
            latency_ms,
        },
    };
    audit::record(
        &state.pool,
        &actor.into(),
        "migration.keys_tested",
        &format!("migration:{id}"),
        json!({ "ok": check.ok, "code": check.code, "latency_ms": latency_ms }),
    )
    .await?;
    Ok(check)
}

/// The sandbox's app admin in rehearsals.
const SANDBOX_ADMIN: &str = "administrator";

async fn spawn_sandbox(
    id: Uuid,
    sdkappid: i64,
    admin: &str,
    secret: &SecretString,
    port: u16,
) -> AppResult<tencent::sandbox::SandboxHandle> {
    use secrecy::ExposeSecret;
    let config =
        tencent::sandbox::SandboxConfig::new(sdkappid as u64, secret.expose_secret(), admin);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let handle = tencent::sandbox::spawn(config, addr)
        .await
        .map_err(|e| AppError::Conflict(format!("The sandbox could not start on {addr}: {e}")))?;
    tracing::info!(migration = %id, addr = %handle.addr, "sandbox started");
    // The outbound guard admits the sandboxes this process started, whatever else it refuses.
    outbound::register_sandbox(handle.addr);
    Ok(handle)
}

/// Sandboxes live in this process: after a restart the first use starts it again (empty).
pub async fn ensure_sandbox(
    state: &AppState,
    id: Uuid,
    sdkappid: i64,
    admin: &str,
    secret: &SecretString,
    base_url: &str,
) -> AppResult<()> {
    let mut running = state.sandboxes.lock().await;
    if running.contains_key(&id) {
        return Ok(());
    }
    let port = base_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let handle = spawn_sandbox(id, sdkappid, admin, secret, port).await?;
    running.insert(id, handle);
    Ok(())
}

/// Points the migration's target at a fresh in-process sandbox with generated keys.
pub async fn rehearse(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<TargetKeys> {
    actor.require(Permission::ManageCredentials)?;
    let m = get(&state.pool, actor, id).await?;
    if m.target != TargetKind::Tencent {
        return Err(AppError::validation(
            "target",
            format!(
                "a sandbox exists for Tencent IM targets; this one is {}",
                m.target.label()
            ),
        ));
    }
    let sdkappid = row(&state.pool, id)
        .await?
        .and_then(|r| r.sdkappid)
        .unwrap_or(1_400_000_000);
    let secret = SecretString::from(crate::auth::secret::generate("sbx_"));
    let handle = spawn_sandbox(id, sdkappid, SANDBOX_ADMIN, &secret, 0).await?;
    let base_url = format!("http://{}", handle.addr);
    let addr = handle.addr;
    if let Some(old) = state.sandboxes.lock().await.insert(id, handle) {
        if old.addr != addr {
            outbound::forget_sandbox(old.addr);
        }
        drop(old);
    }
    let sealed = state.master_key.seal(&secret, &context(id, "secret"));
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        "INSERT INTO target_keys (migration_id, sdkappid, region, base_url, admin_identifier,
                                  secret_sealed, secret_last4, secret_set_by, secret_set_at, sandbox)
         VALUES ($1, $2, 'custom', $3, $4, $5, $6, $7, now(), true)
         ON CONFLICT (migration_id) DO UPDATE SET sdkappid = $2, region = 'custom', base_url = $3,
             admin_identifier = $4, secret_sealed = $5, secret_last4 = $6, secret_set_by = $7,
             secret_set_at = now(), sandbox = true, updated_at = now()",
    )
    .bind(id)
    .bind(sdkappid)
    .bind(&base_url)
    .bind(SANDBOX_ADMIN)
    .bind(&sealed)
    .bind(last4(&secret))
    .bind(&actor.email)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE im_migrations SET state = 'ready', updated_at = now() WHERE id = $1 AND state = 'draft'")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "migration.sandbox_started",
        &format!("migration:{id}"),
        json!({ "base_url": base_url, "sdkappid": sdkappid }),
    )
    .await?;
    tx.commit().await?;
    view(&state.pool, actor, id).await
}
