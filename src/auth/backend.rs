//! axum-login's view of our users: sessions live in Postgres (tower-sessions-sqlx-store).

use crate::model::{Me, Role};
use axum_login::{AuthUser, AuthnBackend, UserId};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub password_hash: String,
}

// The hash never reaches a log line through Debug.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn me(&self) -> Me {
        Me {
            id: self.id,
            email: self.email.clone(),
            role: self.role,
        }
    }
}

impl AuthUser for User {
    type Id = Uuid;

    fn id(&self) -> Uuid {
        self.id
    }

    // A password change changes the hash, which ends every other session of that user.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

#[derive(Clone)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Clone)]
pub struct Backend {
    pool: PgPool,
}

impl Backend {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}

pub const USER_COLUMNS: &str = "id, email, role, password_hash";

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = BackendError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, BackendError> {
        let user: Option<User> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)"
        ))
        .bind(creds.email.trim())
        .fetch_optional(&self.pool)
        .await?;
        // Verify even for unknown emails, so timing does not tell which emails exist.
        let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J8AWxjV5bL0fI4uGU5pUCLrsW6S1VBoSnEAbOnLZcVY".into()
        });
        let ok = tokio::task::spawn_blocking(move || {
            password_auth::verify_password(creds.password, &hash).is_ok()
        })
        .await?;
        Ok(user.filter(|_| ok))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, BackendError> {
        Ok(
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

pub type AuthSession = axum_login::AuthSession<Backend>;

/// Argon2id via password-auth, off the async threads: a hash takes tens of milliseconds.
pub async fn hash_password(password: String) -> Result<String, crate::service::AppError> {
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password))
        .await
        .map_err(crate::service::AppError::internal)
}

pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || password_auth::verify_password(password, &hash).is_ok())
        .await
        .unwrap_or(false)
}
