//! Server functions for migrations and their keys; thin doors to `crate::migration`.

use crate::model::*;
use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "migrations")]
pub async fn list_migrations(archived: Option<bool>) -> Result<Vec<Migration>, ApiError> {
    Ok(crate::migration::list(&state().pool, &actor().await?, archived.unwrap_or(false)).await?)
}

#[server(prefix = "/_fn", endpoint = "migration")]
pub async fn get_migration(id: Uuid) -> Result<Migration, ApiError> {
    Ok(crate::migration::get(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "create_migration")]
pub async fn create_migration(
    name: String,
    strategy: Strategy,
    source: SourceKind,
    target: TargetKind,
    notes: Option<String>,
) -> Result<(), ApiError> {
    let input = MigrationInput {
        name,
        strategy,
        source,
        target,
        notes: notes.unwrap_or_default(),
    };
    let m = crate::migration::create(&state().pool, &actor().await?, &input).await?;
    leptos_axum::redirect(&format!("/migrations/{}", m.id));
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "update_migration")]
pub async fn update_migration(
    id: Uuid,
    name: String,
    strategy: Strategy,
    source: SourceKind,
    target: TargetKind,
    notes: Option<String>,
) -> Result<Migration, ApiError> {
    let input = MigrationInput {
        name,
        strategy,
        source,
        target,
        notes: notes.unwrap_or_default(),
    };
    Ok(crate::migration::update(&state().pool, &actor().await?, id, &input).await?)
}

#[server(prefix = "/_fn", endpoint = "archive_migration")]
pub async fn archive_migration(id: Uuid, archived: bool) -> Result<Migration, ApiError> {
    Ok(crate::migration::set_archived(&state().pool, &actor().await?, id, archived).await?)
}

#[server(prefix = "/_fn", endpoint = "keys")]
pub async fn get_keys(id: Uuid) -> Result<(TargetKeys, Vec<RegionChoice>), ApiError> {
    let keys = crate::migration::keys::view(&state().pool, &actor().await?, id).await?;
    let regions = crate::migration::keys::regions(keys.target);
    Ok((keys, regions))
}

#[server(prefix = "/_fn", endpoint = "set_keys")]
pub async fn set_keys(
    id: Uuid,
    sdkappid: String,
    region: String,
    base_url: Option<String>,
    admin_identifier: String,
    secret_key: Option<String>,
    callback_token: Option<String>,
) -> Result<TargetKeys, ApiError> {
    let sdkappid = sdkappid.trim().parse().map_err(|_| {
        crate::web::AppError::validation("sdkappid", "the SDKAppID is a number, such as 1400000000")
    })?;
    let input = SetTencentKeys {
        sdkappid,
        region,
        base_url,
        admin_identifier,
        secret_key,
        callback_token,
    };
    Ok(crate::migration::keys::set_tencent(&state(), &actor().await?, id, &input).await?)
}

#[server(prefix = "/_fn", endpoint = "test_keys")]
pub async fn test_keys(id: Uuid) -> Result<ConnectionCheck, ApiError> {
    Ok(crate::migration::keys::test_connection(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "rehearse")]
pub async fn rehearse(id: Uuid) -> Result<TargetKeys, ApiError> {
    Ok(crate::migration::keys::rehearse(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "limits")]
pub async fn get_limits(id: Uuid) -> Result<Vec<ApiLimitView>, ApiError> {
    Ok(crate::migration::limits::view(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "overview")]
pub async fn get_overview(id: Uuid) -> Result<MigrationOverview, ApiError> {
    Ok(crate::migration::overview::overview(&state().pool, &actor().await?, id).await?)
}

/// One migration's pulse (`id`), or every live migration's; polled by the pages.
#[server(prefix = "/_fn", endpoint = "pulses")]
pub async fn get_pulses(id: Option<Uuid>) -> Result<Vec<MigrationPulse>, ApiError> {
    Ok(crate::migration::overview::pulses(&state().pool, &actor().await?, id).await?)
}

/// One API's rate and batch size as typed in the quota table; `reset` puts the defaults back.
#[server(prefix = "/_fn", endpoint = "set_limit")]
pub async fn set_limit(
    id: Uuid,
    api: String,
    qps: Option<String>,
    batch: Option<String>,
    reset: Option<bool>,
) -> Result<Vec<ApiLimitView>, ApiError> {
    let actor = actor().await?;
    // Refuse a viewer before judging what they typed.
    actor.require(Permission::RunMigrations)?;
    let number = |what: &str, v: Option<String>| -> Result<Option<u32>, crate::web::AppError> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => t.parse().map(Some).map_err(|_| {
                crate::web::AppError::validation(
                    &api,
                    format!("{what} `{t}` is not a whole number; leave it empty for the default"),
                )
            }),
        }
    };
    let o = if reset.unwrap_or(false) {
        None
    } else {
        Some(LimitOverride {
            qps: number("requests per second", qps)?,
            batch: number("items per request", batch)?,
        })
    };
    Ok(crate::migration::limits::set_one(&state().pool, &actor, id, &api, o).await?)
}
