//! The audit log: one append-only row per state-changing action. A database trigger refuses
//! UPDATE, DELETE and TRUNCATE, so not even the console can rewrite history.
//!
//! Details are built by the caller from explicit fields; no secret (password, token, app key)
//! is ever passed in.

pub mod bench;
mod query;

pub use query::{csv_export, facets, page};

use crate::auth::Actor;
use crate::service::AppResult;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Who did it, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Who {
    pub user_id: Option<Uuid>,
    pub label: String,
    pub token_id: Option<Uuid>,
    pub ip: Option<String>,
}

impl Who {
    pub fn anonymous(ip: Option<String>) -> Self {
        Who {
            user_id: None,
            label: "anonymous".into(),
            token_id: None,
            ip,
        }
    }

    pub fn system(label: &str) -> Self {
        Who {
            user_id: None,
            label: label.into(),
            token_id: None,
            ip: None,
        }
    }

    pub fn user(id: Uuid, email: &str, ip: Option<String>) -> Self {
        Who {
            user_id: Some(id),
            label: email.into(),
            token_id: None,
            ip,
        }
    }
}

impl From<&Actor> for Who {
    fn from(a: &Actor) -> Self {
        Who {
            user_id: Some(a.user_id),
            label: a.email.clone(),
            token_id: a.token_id,
            ip: a.ip.clone(),
        }
    }
}

pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    who: &Who,
    action: &str,
    target: &str,
    details: Value,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor_user_id, actor, actor_token_id, action, target, details, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(who.user_id)
    .bind(&who.label)
    .bind(who.token_id)
    .bind(action)
    .bind(target)
    .bind(details)
    .bind(&who.ip)
    .execute(db)
    .await?;
    Ok(())
}
