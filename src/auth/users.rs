//! Team members: the owner's one-time setup, roles, removal, password changes.

use super::backend::{hash_password, verify_password, USER_COLUMNS};
use super::{validate_email, validate_password, Actor, User};
use crate::audit::{self, Who};
use crate::model::{Member, Permission, Role};
use crate::service::{AppError, AppResult};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub async fn owner_exists(pool: &PgPool) -> AppResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'owner')")
            .fetch_one(pool)
            .await?,
    )
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

async fn insert_user(
    tx: &mut sqlx::PgConnection,
    email: &str,
    role: Role,
    password_hash: String,
) -> AppResult<User> {
    sqlx::query_as(&format!(
        "INSERT INTO users (id, email, role, password_hash) VALUES ($1, $2, $3, $4)
         RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(role.as_str())
    .bind(password_hash)
    .fetch_one(tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) && role == Role::Owner {
            AppError::Gone("This console already has an owner: sign in instead.".into())
        } else if is_unique_violation(&e) {
            AppError::Conflict(format!("{email} is already a member of the team."))
        } else {
            e.into()
        }
    })
}

/// The first run: creates the owner. Closed for good once an owner exists.
pub async fn setup_owner(
    pool: &PgPool,
    email: &str,
    password: &str,
    ip: Option<String>,
) -> AppResult<User> {
    let email = validate_email(email)?;
    validate_password(password)?;
    if owner_exists(pool).await? {
        return Err(AppError::Gone(
            "This console already has an owner: sign in instead.".into(),
        ));
    }
    let hash = hash_password(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let user = insert_user(&mut tx, &email, Role::Owner, hash).await?;
    audit::record(
        &mut *tx,
        &Who::user(user.id, &user.email, ip),
        "team.owner_created",
        &user.email,
        json!({ "role": "owner" }),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// For scripted set-ups (`imshift user create`).
pub async fn create_from_cli(
    pool: &PgPool,
    email: &str,
    role: Role,
    password: &str,
) -> AppResult<User> {
    let email = validate_email(email)?;
    validate_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let user = insert_user(&mut tx, &email, role, hash).await?;
    audit::record(
        &mut *tx,
        &Who::system("cli"),
        "team.member_created",
        &user.email,
        json!({ "role": role }),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn list(pool: &PgPool, actor: &Actor) -> AppResult<Vec<Member>> {
    actor.require(Permission::Read)?;
    Ok(sqlx::query_as(
        "SELECT id, email, role, created_at FROM users
         ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'operator' THEN 2 ELSE 3 END, lower(email)",
    )
    .fetch_all(pool)
    .await?)
}

async fn member_for_update(tx: &mut sqlx::PgConnection, id: Uuid) -> AppResult<Member> {
    sqlx::query_as("SELECT id, email, role, created_at FROM users WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("No team member has id {id}.")))
}

pub async fn set_role(pool: &PgPool, actor: &Actor, id: Uuid, role: Role) -> AppResult<Member> {
    actor.require(Permission::ManageTeam)?;
    if role == Role::Owner {
        return Err(AppError::validation(
            "role",
            "a team has one owner; choose admin, operator or viewer",
        ));
    }
    let mut tx = pool.begin().await?;
    let member = member_for_update(&mut tx, id).await?;
    if member.role == Role::Owner {
        return Err(AppError::Forbidden(
            "The owner's role cannot be changed.".into(),
        ));
    }
    if member.role != role {
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut *tx,
            &actor.into(),
            "team.role_changed",
            &member.email,
            json!({ "from": member.role, "to": role }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Member { role, ..member })
}

pub async fn remove(pool: &PgPool, actor: &Actor, id: Uuid) -> AppResult<()> {
    actor.require(Permission::ManageTeam)?;
    if id == actor.user_id {
        return Err(AppError::Forbidden(
            "You cannot remove yourself; ask another admin.".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    let member = member_for_update(&mut tx, id).await?;
    if member.role == Role::Owner {
        return Err(AppError::Forbidden("The owner cannot be removed.".into()));
    }
    // Their sessions end at their next request: the session user no longer loads.
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "team.member_removed",
        &member.email,
        json!({ "role": member.role }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the actor's own password. Every other session of the user ends (axum-login
/// compares the password hash on each request); the caller re-logs the current one. The
/// user's API tokens are revoked too: a password change is what one does on suspecting the
/// account is exposed, and a token made by an intruder must not outlive it.
pub async fn change_password(
    pool: &PgPool,
    actor: &Actor,
    current: &str,
    new: &str,
) -> AppResult<User> {
    validate_password(new)?;
    let user: User = sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(actor.user_id)
        .fetch_one(pool)
        .await?;
    if !verify_password(current.to_string(), user.password_hash.clone()).await {
        return Err(AppError::validation(
            "current_password",
            "this is not your current password",
        ));
    }
    let hash = hash_password(new.to_string()).await?;
    let mut tx = pool.begin().await?;
    let user: User = sqlx::query_as(&format!(
        "UPDATE users SET password_hash = $1, password_changed_at = now() WHERE id = $2
         RETURNING {USER_COLUMNS}"
    ))
    .bind(hash)
    .bind(actor.user_id)
    .fetch_one(&mut *tx)
    .await?;
    let revoked = super::tokens::revoke_all_for_user(&mut tx, user.id).await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "auth.password_changed",
        &user.email,
        json!({ "tokens_revoked": revoked }),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// What `imshift user reset-password` did.
#[derive(Debug)]
pub struct Reset {
    pub email: String,
    pub tokens_revoked: u64,
}

/// An operator's way back in for a member who forgot the password or cannot get past the
/// sign-in throttle: sets the password, ends the member's sessions (the hash changed),
/// revokes their API tokens and clears the email's throttle.
pub async fn reset_password(pool: &PgPool, email: &str, new: &str) -> AppResult<Reset> {
    validate_password(new)?;
    let hash = hash_password(new.to_string()).await?;
    let mut tx = pool.begin().await?;
    let user: User = sqlx::query_as(&format!(
        "UPDATE users SET password_hash = $1, password_changed_at = now()
         WHERE lower(email) = lower($2) RETURNING {USER_COLUMNS}"
    ))
    .bind(hash)
    .bind(email.trim())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("No team member has the email {}.", email.trim())))?;
    let revoked = super::tokens::revoke_all_for_user(&mut tx, user.id).await?;
    audit::record(
        &mut *tx,
        &Who::system("cli"),
        "auth.password_reset",
        &user.email,
        json!({ "tokens_revoked": revoked }),
    )
    .await?;
    tx.commit().await?;
    super::throttle::clear(pool, &user.email).await?;
    Ok(Reset {
        email: user.email,
        tokens_revoked: revoked,
    })
}
