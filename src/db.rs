//! The database: connect (creating it when missing) and apply our schema migrations.

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

/// The schema's history, from `migrations/`, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/imshift";

pub async fn connect(url: &str) -> anyhow_like::Result<PgPool> {
    if !Postgres::database_exists(url).await.map_err(|e| {
        anyhow_like::Error(format!(
            "cannot reach PostgreSQL at {}: {e}. Start it (on Debian: `pg_ctlcluster 15 main start`) \
             or set DATABASE_URL to a server you can reach.",
            redact(url)
        ))
    })? {
        Postgres::create_database(url)
            .await
            .map_err(|e| anyhow_like::Error(format!("cannot create database {}: {e}", redact(url))))?;
        tracing::info!(database = %redact(url), "created the database");
    }
    use sqlx::ConnectOptions;
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e| anyhow_like::Error(format!("DATABASE_URL {}: {e}", redact(url))))?;
    // Staging and validation stream millions of rows in one statement on purpose.
    let options =
        options.log_slow_statements(log::LevelFilter::Warn, std::time::Duration::from_secs(60));
    PgPoolOptions::new()
        .max_connections(20)
        .connect_with(options)
        .await
        .map_err(|e| anyhow_like::Error(format!("cannot connect to {}: {e}", redact(url))))
}

/// A second pool on the same database, for a background task whose many queries in flight
/// must not make the rest of the console wait for a connection. Connects lazily.
pub fn own_pool(shared: &PgPool, connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .connect_lazy_with((*shared.connect_options()).clone())
}

pub async fn migrate(pool: &PgPool) -> anyhow_like::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| anyhow_like::Error(format!("applying database migrations failed: {e}")))
}

/// The role the console runs as when migrations run as another (the owner): it reads and
/// writes the product's tables but owns none, so it cannot disable the audit log's triggers
/// or rewrite its rows (`session_replication_role` needs a superuser too). The audit log
/// gets `INSERT, SELECT` only. Run by the owner after migrating; idempotent.
pub async fn grant_runtime(owner: &PgPool, role: &str) -> Result<(), sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(owner)
            .await?;
    if !exists {
        return Err(sqlx::Error::Protocol(format!(
            "the runtime role {role:?} does not exist; create it first (CREATE ROLE {role} LOGIN PASSWORD '…')"
        )));
    }
    let r = quote_ident(role);
    for sql in [
        format!("GRANT USAGE ON SCHEMA public TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"),
        format!("REVOKE ALL ON audit_log FROM {r}"),
        format!("GRANT SELECT, INSERT ON audit_log TO {r}"),
        format!("REVOKE ALL ON _sqlx_migrations FROM {r}"),
        format!("GRANT SELECT ON _sqlx_migrations TO {r}"),
        format!("GRANT USAGE ON SCHEMA tower_sessions TO {r}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tower_sessions TO {r}"
        ),
    ] {
        sqlx::query(&sql).execute(owner).await?;
    }
    Ok(())
}

/// The session store's table, created by the owner with the rest of the schema.
pub async fn migrate_sessions(pool: &PgPool) -> Result<(), sqlx::Error> {
    tower_sessions_sqlx_store::PostgresStore::new(pool.clone())
        .migrate()
        .await
}

/// The user name in a PostgreSQL URL (the role the console connects as).
pub fn user_of(url: &str) -> Option<String> {
    let opts: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
    Some(opts.get_username().to_string())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Versions this binary knows that the database has not applied successfully.
pub async fn pending(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .or_else(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(vec![]),
                _ => Err(e),
            })?;
    Ok(MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A string error for start-up paths, where the message is all the user needs.
pub mod anyhow_like {
    #[derive(Debug)]
    pub struct Error(pub String);
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Error {}
    pub type Result<T> = std::result::Result<T, Error>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://me:hunter2@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(super::redact("postgres://me@db/x"), "postgres://me@db/x");
    }
}
