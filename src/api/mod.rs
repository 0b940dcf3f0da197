//! The REST API under /api/v1: what the UI does, for scripts and CI with a personal API token
//! (`Authorization: Bearer imshift_pat_…`). Each area has its own router; the OpenAPI document
//! is generated from the same handlers, so it cannot drift from them.

mod audit;
mod dumps;
mod extract;
mod imports;
mod migrations;
mod sync;
mod team;
mod tokens;

use crate::model::ApiError;
use crate::web::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use extract::{ApiJson, ApiPath};

pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "imshift API",
        description = "Everything the imshift console does, for scripts. Authenticate with a personal \
                       API token (Settings → API tokens) as `Authorization: Bearer <token>`. Errors are \
                       `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}` with a matching status code."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ApiError)),
    tags(
        (name = "team", description = "Members, roles and invites"),
        (name = "tokens", description = "Your personal API tokens"),
        (name = "audit", description = "The append-only audit log"),
        (name = "migrations", description = "Migrations, the providers they can name, and their quotas"),
        (name = "connections", description = "Both sides of a migration as connections: fields, write-only secrets, Test connection and sandbox rehearsals"),
        (name = "dumps", description = "Uploading the old system's dumps, staging, and the validation report"),
        (name = "imports", description = "Import runs into the target: preflight, launch, progress, pause, resume, cancel, retry, failures"),
        (name = "sync", description = "Coexistence: two-way sync between the sides, its health, event log and dead letters"),
    )
)]
struct ApiDoc;

/// The error envelope every failing call returns.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, as served at /api/v1/openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().1
}

/// The API's routes and their OpenAPI document.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(team::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(migrations::router())
        .merge(dumps::router())
        .merge(imports::router())
        .merge(sync::router())
        .split_for_parts();
    let served = doc.clone();
    let router = router.route(
        &format!("{PREFIX}/openapi.json"),
        get(move || {
            let doc = served.clone();
            async move { Json(doc) }
        }),
    );
    (router, doc)
}

/// The operations of the OpenAPI document, flattened for the console's API page.
pub fn operations() -> Vec<crate::app::calls::ApiOperation> {
    use utoipa::openapi::RefOr;
    let doc = openapi();
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter() {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let params = op
                .parameters
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    RefOr::T(p) => Some(match &p.description {
                        Some(d) => format!("{}: {d}", p.name),
                        None => p.name.clone(),
                    }),
                    RefOr::Ref(_) => None,
                })
                .collect();
            let responses = op
                .responses
                .responses
                .iter()
                .map(|(code, r)| match r {
                    RefOr::T(r) if !r.description.is_empty() => format!("{code} {}", r.description),
                    _ => code.clone(),
                })
                .collect();
            out.push(crate::app::calls::ApiOperation {
                tag: op.tags.iter().flatten().next().cloned().unwrap_or_default(),
                method: method.to_string(),
                path: path.clone(),
                summary: op
                    .summary
                    .clone()
                    .or_else(|| op.description.clone())
                    .unwrap_or_default(),
                params,
                responses,
            });
        }
    }
    out
}
