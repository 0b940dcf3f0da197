//! Personal API tokens for scripts and CI: shown once, stored as a hash, revocable. A token acts
//! with its owner's current role.

use super::{secret, Actor, User};
use crate::audit;
use crate::model::{ApiToken, CreatedToken, Permission};
use crate::service::{AppError, AppResult};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub const TOKEN_PREFIX: &str = "imshift_pat_";
/// Characters of a token kept in clear to tell tokens apart.
const SHOWN: usize = TOKEN_PREFIX.len() + 4;

const COLUMNS: &str = "id, name, prefix, created_at, last_used_at, revoked_at, can_mint_tokens";

fn check_name(name: &str) -> AppResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::validation(
            "name",
            "give the token a name of 1 to 100 characters, such as `ci-rehearsal`",
        ));
    }
    Ok(name)
}

/// A token acting as the actor. A request made with a token may create one only when that
/// token was created with the right to (`can_mint_tokens`); a session always may.
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    name: &str,
    can_mint_tokens: bool,
) -> AppResult<CreatedToken> {
    actor.require(Permission::Read)?;
    let name = check_name(name)?;
    if let Some(token_id) = actor.token_id {
        let may: bool = sqlx::query_scalar("SELECT can_mint_tokens FROM api_tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(pool)
            .await?
            .unwrap_or(false);
        if !may {
            return Err(AppError::Forbidden(
                "This API token cannot create tokens. Create one in Settings, or give a script \
                 that must mint tokens a token made with `can_mint_tokens`."
                    .into(),
            ));
        }
    }
    insert(pool, &actor.into(), actor.user_id, name, can_mint_tokens).await
}

/// For `imshift token create`: a script's first token, without a browser.
pub async fn create_from_cli(
    pool: &PgPool,
    email: &str,
    name: &str,
    can_mint_tokens: bool,
) -> AppResult<CreatedToken> {
    let name = check_name(name)?;
    let user_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1)")
        .bind(email.trim())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("No team member has the email {email}.")))?;
    insert(
        pool,
        &audit::Who::system("cli"),
        user_id,
        name,
        can_mint_tokens,
    )
    .await
}

async fn insert(
    pool: &PgPool,
    who: &audit::Who,
    user_id: Uuid,
    name: &str,
    can_mint_tokens: bool,
) -> AppResult<CreatedToken> {
    let secret = secret::generate(TOKEN_PREFIX);
    let mut tx = pool.begin().await?;
    let token: ApiToken = sqlx::query_as(&format!(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, can_mint_tokens)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(name)
    .bind(&secret[..SHOWN])
    .bind(secret::hash(&secret))
    .bind(can_mint_tokens)
    .fetch_one(&mut *tx)
    .await?;
    let owner: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        who,
        "token.created",
        &format!("token:{}", token.id),
        json!({ "name": token.name, "prefix": token.prefix, "user": owner,
                "can_mint_tokens": can_mint_tokens }),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken { token, secret })
}

/// Revokes every live token of a user (their password changed or was reset); how many.
pub async fn revoke_all_for_user(tx: &mut sqlx::PgConnection, user_id: Uuid) -> AppResult<u64> {
    Ok(sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(tx)
    .await?
    .rows_affected())
}

pub async fn list(pool: &PgPool, actor: &Actor) -> AppResult<Vec<ApiToken>> {
    actor.require(Permission::Read)?;
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC"
    ))
    .bind(actor.user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn revoke(pool: &PgPool, actor: &Actor, id: Uuid) -> AppResult<ApiToken> {
    actor.require(Permission::Read)?;
    let mut tx = pool.begin().await?;
    let token: ApiToken = sqlx::query_as(&format!(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(actor.user_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("You have no token with id {id}.")))?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "token.revoked",
        &format!("token:{id}"),
        json!({ "name": token.name, "prefix": token.prefix }),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The user behind a live token, and the token's id.
pub async fn authenticate(pool: &PgPool, secret: &str) -> AppResult<Option<(User, Uuid)>> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    // One query finds the token and its owner; the UPDATE below runs at most once a minute.
    #[derive(sqlx::FromRow)]
    struct Row {
        token_id: Uuid,
        stale: bool,
        #[sqlx(flatten)]
        user: User,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT t.id AS token_id,
                (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS stale,
                u.id, u.email, u.role, u.password_hash
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(secret::hash(secret))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // Scripts may call many times a second; last_used_at only needs minute precision.
    if row.stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(row.token_id)
            .execute(pool)
            .await?;
    }
    Ok(Some((row.user, row.token_id)))
}
