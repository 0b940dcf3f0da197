//! Invites: an expiring, single-use link that lets someone join the team with a given role.
//! No mail server is needed: the link is shown once to the inviter to copy.

use super::backend::{hash_password, USER_COLUMNS};
use super::{secret, validate_email, validate_password, Actor, User};
use crate::audit::{self, Who};
use crate::model::{CreatedInvite, Invite, InvitePreview, InviteStatus, Permission, Role};
use crate::service::{AppError, AppResult, Config};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    email: String,
    role: String,
    invited_by: Option<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    accepted_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl Row {
    fn status(&self) -> InviteStatus {
        if self.accepted_at.is_some() {
            InviteStatus::Accepted
        } else if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.expires_at <= OffsetDateTime::now_utc() {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        }
    }

    fn into_invite(self) -> Invite {
        Invite {
            status: self.status(),
            id: self.id,
            role: self.role.parse().unwrap_or(Role::Viewer),
            email: self.email,
            invited_by: self.invited_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

const SELECT: &str =
    "SELECT i.id, i.email, i.role, u.email AS invited_by, i.created_at, i.expires_at,
                             i.accepted_at, i.revoked_at
                      FROM invites i LEFT JOIN users u ON u.id = i.created_by";

pub const LINK_PREFIX: &str = "inv_";

pub async fn create(
    pool: &PgPool,
    config: &Config,
    actor: &Actor,
    email: &str,
    role: Role,
) -> AppResult<CreatedInvite> {
    actor.require(Permission::ManageTeam)?;
    let email = validate_email(email)?;
    if !Role::INVITABLE.contains(&role) {
        return Err(AppError::validation(
            "role",
            "invite as admin, operator or viewer; a team has one owner",
        ));
    }
    let mut tx = pool.begin().await?;
    let member: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))")
            .bind(&email)
            .fetch_one(&mut *tx)
            .await?;
    if member {
        return Err(AppError::Conflict(format!(
            "{email} is already a member of the team."
        )));
    }
    // A new invite replaces any earlier pending one for the same address.
    sqlx::query(
        "UPDATE invites SET revoked_at = now()
         WHERE lower(email) = lower($1) AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(&email)
    .execute(&mut *tx)
    .await?;
    let token = secret::generate(LINK_PREFIX);
    let ttl = time::Duration::try_from(config.invite_ttl).unwrap_or(time::Duration::DAY);
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO invites (id, email, role, token_hash, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6)",
    )
    .bind(id)
    .bind(&email)
    .bind(role.as_str())
    .bind(secret::hash(&token))
    .bind(actor.user_id)
    .bind(ttl)
    .execute(&mut *tx)
    .await?;
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "team.invite_created",
        &email,
        json!({ "role": role, "invite_id": id, "expires_at": row.expires_at.unix_timestamp() }),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedInvite {
        invite: row.into_invite(),
        link: format!("{}/invite/{token}", config.public_url),
    })
}

pub async fn list(pool: &PgPool, actor: &Actor) -> AppResult<Vec<Invite>> {
    actor.require(Permission::Read)?;
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY i.created_at DESC LIMIT 200"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Row::into_invite).collect())
}

pub async fn revoke(pool: &PgPool, actor: &Actor, id: Uuid) -> AppResult<Invite> {
    actor.require(Permission::ManageTeam)?;
    let mut tx = pool.begin().await?;
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE i.id = $1 FOR UPDATE OF i"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("No invite has id {id}.")))?;
    if row.status() != InviteStatus::Pending {
        return Err(AppError::Conflict(
            format!(
                "This invite is already {:?}; only pending invites can be revoked.",
                row.status()
            )
            .to_lowercase(),
        ));
    }
    sqlx::query("UPDATE invites SET revoked_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "team.invite_revoked",
        &row.email,
        json!({ "invite_id": id }),
    )
    .await?;
    tx.commit().await?;
    Ok(Invite {
        status: InviteStatus::Revoked,
        ..row.into_invite()
    })
}

async fn usable(tx: &mut sqlx::PgConnection, token: &str, lock: bool) -> AppResult<Row> {
    let sql = format!(
        "{SELECT} WHERE i.token_hash = $1{}",
        if lock { " FOR UPDATE OF i" } else { "" }
    );
    let row: Row = sqlx::query_as(&sql)
        .bind(secret::hash(token.trim()))
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(
                "This invite link is not valid. Check that it was copied whole, or ask for a new one."
                    .into(),
            )
        })?;
    match row.status() {
        InviteStatus::Pending => Ok(row),
        InviteStatus::Accepted => Err(AppError::Gone(
            "This invite link was already used. Sign in, or ask an admin for a new invite.".into(),
        )),
        InviteStatus::Expired => Err(AppError::Gone(
            "This invite link has expired. Ask an admin for a new invite.".into(),
        )),
        InviteStatus::Revoked => Err(AppError::Gone(
            "This invite was withdrawn. Ask an admin for a new invite.".into(),
        )),
    }
}

pub async fn preview(pool: &PgPool, token: &str) -> AppResult<InvitePreview> {
    let mut conn = pool.acquire().await?;
    let row = usable(&mut conn, token, false).await?;
    Ok(InvitePreview {
        role: row.role.parse().unwrap_or(Role::Viewer),
        email: row.email,
        expires_at: row.expires_at,
    })
}

/// Creates the invitee's account. Single use: the row is locked, so two tabs cannot both win.
pub async fn accept(
    pool: &PgPool,
    token: &str,
    password: &str,
    ip: Option<String>,
) -> AppResult<User> {
    validate_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    let mut tx = pool.begin().await?;
    let row = usable(&mut tx, token, true).await?;
    let user: User = sqlx::query_as(&format!(
        "INSERT INTO users (id, email, role, password_hash) VALUES ($1, $2, $3, $4)
         RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(&row.email)
    .bind(&row.role)
    .bind(hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if e.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "23505")
        {
            AppError::Conflict(format!(
                "{} is already a member: sign in instead.",
                row.email
            ))
        } else {
            e.into()
        }
    })?;
    sqlx::query("UPDATE invites SET accepted_at = now() WHERE id = $1")
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &Who::user(user.id, &user.email, ip),
        "team.invite_accepted",
        &user.email,
        json!({ "role": row.role, "invite_id": row.id }),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}
