//! The product's migration entity: a source, a target, their keys, and (later) the dumps, jobs
//! and sync that belong to it. Not to be confused with the database schema's migrations, which
//! live in `db.rs` and `/migrations`; the table is named `im_migrations` for that reason.

pub mod connections;
pub mod limits;
pub mod overview;
pub mod state;

use crate::audit;
use crate::auth::Actor;
use crate::model::{Migration, MigrationId, MigrationInput, MigrationState, Permission, Side};
use crate::providers::Registry;
use crate::service::{AppError, AppResult};
use serde_json::json;
use sqlx::PgPool;

const SELECT: &str = "SELECT m.id, m.name, m.strategy, m.source, m.target, m.state, m.notes,
        u.email AS created_by, m.created_at, m.updated_at,
        coalesce(c.complete AND c.provider = m.target, false) AS keys_set
    FROM im_migrations m
    LEFT JOIN users u ON u.id = m.created_by
    LEFT JOIN connections c ON c.migration_id = m.id AND c.side = 'target'";

/// Fills in what the providers call themselves.
pub fn labelled(providers: &Registry, mut m: Migration) -> Migration {
    m.source_label = providers.label(&m.source);
    m.target_label = providers.label(&m.target);
    m
}

fn check(providers: &Registry, input: &MigrationInput) -> AppResult<String> {
    providers
        .for_side(&input.source, Side::Source)
        .map_err(|e| AppError::validation("source", e))?;
    providers
        .for_side(&input.target, Side::Target)
        .map_err(|e| AppError::validation("target", e))?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(AppError::validation(
            "name",
            "give the migration a name of 1 to 120 characters, such as `Chat app, 2027 move`",
        ));
    }
    if input.notes.chars().count() > 4000 {
        return Err(AppError::validation(
            "notes",
            "keep notes under 4000 characters",
        ));
    }
    Ok(name.to_string())
}

fn name_taken(e: sqlx::Error, name: &str) -> AppError {
    if e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
    {
        AppError::Conflict(format!(
            "A migration named `{name}` already exists; choose another name."
        ))
    } else {
        e.into()
    }
}

pub async fn list(
    pool: &PgPool,
    providers: &Registry,
    actor: &Actor,
    archived: bool,
) -> AppResult<Vec<Migration>> {
    actor.require(Permission::Read)?;
    let rows: Vec<Migration> = sqlx::query_as(&format!(
        "{SELECT} WHERE (m.state = 'archived') = $1 ORDER BY m.created_at DESC"
    ))
    .bind(archived)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|m| labelled(providers, m)).collect())
}

/// One migration as its pages show it, with its providers' names.
pub async fn describe(
    pool: &PgPool,
    providers: &Registry,
    actor: &Actor,
    id: MigrationId,
) -> AppResult<Migration> {
    Ok(labelled(providers, get(pool, actor, id).await?))
}

pub async fn get(pool: &PgPool, actor: &Actor, id: MigrationId) -> AppResult<Migration> {
    actor.require(Permission::Read)?;
    sqlx::query_as(&format!("{SELECT} WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("No migration has id {id}.")))
}

pub async fn create(
    pool: &PgPool,
    providers: &Registry,
    actor: &Actor,
    input: &MigrationInput,
) -> AppResult<Migration> {
    actor.require(Permission::RunMigrations)?;
    let name = check(providers, input)?;
    let id = MigrationId::new_v4();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO im_migrations (id, name, strategy, source, target, notes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(&name)
    .bind(input.strategy.as_str())
    .bind(&input.source)
    .bind(&input.target)
    .bind(input.notes.trim())
    .bind(actor.user_id)
    .execute(&mut *tx)
    .await
    .map_err(|e| name_taken(e, &name))?;
    audit::record(
        &mut *tx,
        &actor.into(),
        "migration.created",
        &format!("migration:{id}"),
        json!({ "name": name, "strategy": input.strategy, "source": input.source, "target": input.target }),
    )
    .await?;
    tx.commit().await?;
    describe(pool, providers, actor, id).await
}

pub async fn update(
    pool: &PgPool,
    providers: &Registry,
    actor: &Actor,
    id: MigrationId,
    input: &MigrationInput,
) -> AppResult<Migration> {
    actor.require(Permission::RunMigrations)?;
    let name = check(providers, input)?;
    let before = get(pool, actor, id).await?;
    if before.state == MigrationState::Archived {
        return Err(AppError::Conflict(
            "This migration is archived; restore it before editing.".into(),
        ));
    }
    if before.target != input.target && before.keys_set {
        return Err(AppError::Conflict(
            "The target cannot change while its keys are set: clear the keys first, or create a new migration."
                .into(),
        ));
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE im_migrations SET name = $2, strategy = $3, source = $4, target = $5, notes = $6,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(input.strategy.as_str())
    .bind(&input.source)
    .bind(&input.target)
    .bind(input.notes.trim())
    .execute(&mut *tx)
    .await
    .map_err(|e| name_taken(e, &name))?;
    // Only what changed goes into the audit details.
    let mut changes = serde_json::Map::new();
    let mut note = |k: &str, from: String, to: String| {
        if from != to {
            changes.insert(k.into(), json!({ "from": from, "to": to }));
        }
    };
    note("name", before.name.clone(), name.clone());
    note(
        "strategy",
        before.strategy.to_string(),
        input.strategy.to_string(),
    );
    note("source", before.source.clone(), input.source.clone());
    note("target", before.target.clone(), input.target.clone());
    note(
        "notes",
        before.notes.clone(),
        input.notes.trim().to_string(),
    );
    audit::record(
        &mut *tx,
        &actor.into(),
        "migration.updated",
        &format!("migration:{id}"),
        serde_json::Value::Object(changes),
    )
    .await?;
    tx.commit().await?;
    describe(pool, providers, actor, id).await
}

pub async fn set_archived(
    pool: &PgPool,
    providers: &Registry,
    actor: &Actor,
    id: MigrationId,
    archived: bool,
) -> AppResult<Migration> {
    actor.require(Permission::RunMigrations)?;
    let before = get(pool, actor, id).await?;
    let (change, action) = if archived {
        (state::Change::Archive, "migration.archived")
    } else {
        (state::Change::Restore, "migration.restored")
    };
    let mut tx = pool.begin().await?;
    state::settle(&mut tx, id, change)
        .await
        .map_err(|e| name_taken(e, &before.name))?;
    audit::record(
        &mut *tx,
        &actor.into(),
        action,
        &format!("migration:{id}"),
        json!({ "name": before.name }),
    )
    .await?;
    tx.commit().await?;
    describe(pool, providers, actor, id).await
}
