//! Server functions for the Dumps tab; thin doors to `crate::dumps`. The file bytes go over
//! the REST API (`/api/v1/migrations/{id}/uploads`), the same path scripts use.

use crate::model::*;
use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

#[server(prefix = "/_fn", endpoint = "uploads")]
pub async fn list_uploads(id: Uuid) -> Result<Vec<Upload>, ApiError> {
    Ok(crate::dumps::uploads::list(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "dump_report")]
pub async fn load_dump_report(id: Uuid) -> Result<DumpReport, ApiError> {
    Ok(crate::dumps::report::report(&state().pool, &actor().await?, id).await?)
}

#[server(prefix = "/_fn", endpoint = "dump_findings")]
pub async fn dump_findings(
    id: Uuid,
    code: Option<String>,
    severity: Option<String>,
    after: Option<i64>,
) -> Result<FindingsPage, ApiError> {
    let filter = crate::dumps::report::FindingFilter {
        code,
        severity,
        after,
        limit: Some(50),
    };
    Ok(crate::dumps::report::findings(&state().pool, &actor().await?, id, &filter).await?)
}

#[server(prefix = "/_fn", endpoint = "discard_upload")]
pub async fn discard_upload(id: Uuid, upload: Uuid) -> Result<Upload, ApiError> {
    Ok(crate::dumps::uploads::discard(&state(), &actor().await?, id, upload).await?)
}
