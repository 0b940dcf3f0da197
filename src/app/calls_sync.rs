//! Server functions for coexistence sync; thin doors to `crate::sync::control`.

use crate::model::*;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "sync")]
pub async fn get_sync(id: MigrationId) -> Result<SyncView, ApiError> {
    Ok(crate::sync::control::view(&state(), &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "set_sync")]
pub async fn set_sync(id: MigrationId, from: Side, enabled: bool) -> Result<SyncView, ApiError> {
    Ok(crate::sync::control::set_direction(&state(), &actor().await?, id, from, enabled).await?)
}

#[server(prefix = "/_fn", endpoint = "sync_events")]
pub async fn sync_events(
    id: MigrationId,
    q: Option<String>,
    state_filter: Option<SyncEventState>,
) -> Result<Vec<SyncEventView>, ApiError> {
    let query = SyncEventQuery {
        q,
        state: state_filter,
        side: None,
        limit: Some(100),
    };
    Ok(crate::sync::control::events(&state(), &actor().await?, id, &query).await?)
}

#[server(prefix = "/_fn", endpoint = "sync_id_map")]
pub async fn sync_id_map(id: MigrationId, q: Option<String>) -> Result<Vec<SyncIdPair>, ApiError> {
    let query = SyncIdQuery {
        q,
        limit: Some(100),
    };
    Ok(crate::sync::control::id_map(&state(), &actor().await?, id, &query).await?)
}

/// Replays one dead letter (`key` of `side`) or, without a key, every dead letter (of `side`
/// and `error_code` when given).
#[server(prefix = "/_fn", endpoint = "sync_replay")]
pub async fn sync_replay(
    id: MigrationId,
    side: Option<Side>,
    key: Option<String>,
    error_code: Option<String>,
) -> Result<i64, ApiError> {
    let req = ReplayRequest {
        side,
        all: key.is_none(),
        keys: key.into_iter().collect(),
        error_code,
    };
    Ok(crate::sync::control::replay(&state(), &actor().await?, id, &req).await?)
}

#[server(prefix = "/_fn", endpoint = "sync_test")]
pub async fn sync_test(id: MigrationId, from: Side) -> Result<String, ApiError> {
    Ok(crate::sync::control::send_test(&state(), &actor().await?, id, from).await?)
}
