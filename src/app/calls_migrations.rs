//! Server functions for migrations and their connections; thin doors to `crate::migration`.

use crate::model::*;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "migrations")]
pub async fn list_migrations(archived: Option<bool>) -> Result<Vec<Migration>, ApiError> {
    Ok(crate::migration::list(
        &state().pool,
        &state().config.providers,
        &actor().await?,
        archived.unwrap_or(false),
    )
    .await?)
}

#[server(prefix = "/_fn", endpoint = "migration")]
pub async fn get_migration(id: MigrationId) -> Result<Migration, ApiError> {
    Ok(crate::migration::describe(
        &state().pool,
        &state().config.providers,
        &actor().await?,
        id,
    )
    .await?)
}

#[server(prefix = "/_fn", endpoint = "create_migration")]
pub async fn create_migration(
    name: String,
    strategy: Strategy,
    source: String,
    target: String,
    notes: Option<String>,
) -> Result<(), ApiError> {
    let input = MigrationInput {
        name,
        strategy,
        source,
        target,
        notes: notes.unwrap_or_default(),
    };
    let m = crate::migration::create(
        &state().pool,
        &state().config.providers,
        &actor().await?,
        &input,
    )
    .await?;
    leptos_axum::redirect(&format!("/migrations/{}", m.id));
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "update_migration")]
pub async fn update_migration(
    id: MigrationId,
    name: String,
    strategy: Strategy,
    source: String,
    target: String,
    notes: Option<String>,
) -> Result<Migration, ApiError> {
    let input = MigrationInput {
        name,
        strategy,
        source,
        target,
        notes: notes.unwrap_or_default(),
    };
    Ok(crate::migration::update(
        &state().pool,
        &state().config.providers,
        &actor().await?,
        id,
        &input,
    )
    .await?)
}

#[server(prefix = "/_fn", endpoint = "archive_migration")]
pub async fn archive_migration(id: MigrationId, archived: bool) -> Result<Migration, ApiError> {
    Ok(crate::migration::set_archived(
        &state().pool,
        &state().config.providers,
        &actor().await?,
        id,
        archived,
    )
    .await?)
}

/// Both sides' connections: source first, then target.
#[server(prefix = "/_fn", endpoint = "connections")]
pub async fn get_connections(id: MigrationId) -> Result<Vec<ConnectionView>, ApiError> {
    let (s, actor) = (state(), actor().await?);
    let mut out = vec![];
    for side in Side::ALL {
        out.push(crate::migration::connections::view(&s, &actor, id, *side).await?);
    }
    Ok(out)
}

/// One side's fields as typed in its card (`fields[<id>]=…`); an empty secret keeps its value.
#[server(prefix = "/_fn", endpoint = "set_connection")]
pub async fn set_connection(
    id: MigrationId,
    side: Side,
    fields: Option<std::collections::BTreeMap<String, String>>,
) -> Result<ConnectionView, ApiError> {
    let input = ConnectionInput {
        fields: fields
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    };
    Ok(crate::migration::connections::set(&state(), &actor().await?, id, side, &input).await?)
}

#[server(prefix = "/_fn", endpoint = "test_connection")]
pub async fn test_connection(id: MigrationId, side: Side) -> Result<ConnectionCheck, ApiError> {
    Ok(crate::migration::connections::test(&state(), &actor().await?, id, side).await?)
}

#[server(prefix = "/_fn", endpoint = "rehearse")]
pub async fn rehearse(id: MigrationId, side: Side) -> Result<ConnectionView, ApiError> {
    Ok(crate::migration::connections::rehearse(&state(), &actor().await?, id, side).await?)
}

/// What each side of a new migration can be.
#[server(prefix = "/_fn", endpoint = "providers")]
pub async fn get_providers() -> Result<Vec<ProviderInfo>, ApiError> {
    actor().await?.require(Permission::Read)?;
    Ok(state().config.providers.list())
}

#[server(prefix = "/_fn", endpoint = "limits")]
pub async fn get_limits(id: MigrationId) -> Result<Vec<ApiLimitView>, ApiError> {
    Ok(crate::migration::limits::view(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "overview")]
pub async fn get_overview(id: MigrationId) -> Result<MigrationOverview, ApiError> {
    Ok(crate::migration::overview::overview(&state().pool, &actor().await?, id).await?)
}

/// One migration's pulse (`id`), or every live migration's; polled by the pages.
#[server(prefix = "/_fn", endpoint = "pulses")]
pub async fn get_pulses(id: Option<MigrationId>) -> Result<Vec<MigrationPulse>, ApiError> {
    Ok(crate::migration::overview::pulses(&state().pool, &actor().await?, id).await?)
}

/// One API's rate and batch size as typed in the quota table; `reset` puts the defaults back.
#[server(prefix = "/_fn", endpoint = "set_limit")]
pub async fn set_limit(
    id: MigrationId,
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
    Ok(crate::migration::limits::set_one(&state(), &actor, id, &api, o).await?)
}
