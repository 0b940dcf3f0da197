//! Server functions for the Dumps tab; thin doors to `crate::dumps`. The file bytes go over
//! the REST API (`/api/v1/migrations/{id}/uploads`), the same path scripts use.

use crate::model::*;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::calls::ssr::{actor, state};

/// The uploads, then the report: read in this order, a report is never older than the
/// uploads shown beside it (an upload is marked staged in the transaction that marks the
/// report as being checked again).
#[server(prefix = "/_fn", endpoint = "dumps")]
pub async fn load_dumps(id: MigrationId) -> Result<(Vec<Upload>, DumpReport), ApiError> {
    let (pool, a) = (state().pool.clone(), actor().await?);
    let uploads = crate::dumps::uploads::list(&pool, &a, id).await?;
    let report = crate::dumps::report::report(&pool, &a, id).await?;
    Ok((uploads, report))
}

/// The formats an upload may name, in words.
#[server(prefix = "/_fn", endpoint = "dump_formats")]
pub async fn dump_formats() -> Result<Vec<DumpFormat>, ApiError> {
    actor().await?.require(Permission::Read)?;
    Ok(crate::dumps::uploads::format_choices())
}

#[server(prefix = "/_fn", endpoint = "dump_findings")]
pub async fn dump_findings(
    id: MigrationId,
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
pub async fn discard_upload(id: MigrationId, upload: UploadId) -> Result<Upload, ApiError> {
    Ok(crate::dumps::uploads::discard(&state(), &actor().await?, id, upload).await?)
}
