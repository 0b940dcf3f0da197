//! The audit log's guarantee does not rest on the console being the table owner: run as the
//! runtime role that `imshift serve` grants when migrations run as the owner, the console
//! works, and can neither rewrite the audit log nor switch its triggers off.

use crate::common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

async fn refused(pool: &PgPool, sql: &str) -> String {
    let e = sqlx::query(sql)
        .execute(pool)
        .await
        .expect_err(&format!("`{sql}` must be refused to the runtime role"));
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.to_string())
        .unwrap_or_default();
    // 42501: insufficient privilege (also "must be owner of table").
    assert_eq!(code, "42501", "`{sql}`: {e}");
    e.to_string()
}

#[sqlx::test]
async fn the_runtime_role_cannot_rewrite_or_unguard_the_audit_log(owner: PgPool) {
    imshift::db::migrate_sessions(&owner).await.unwrap();
    let role = format!(
        "imshift_rt_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&owner)
        .await
        .unwrap();
    imshift::db::grant_runtime(&owner, &role).await.unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&owner)
        .await
        .unwrap();
    let runtime = PgPool::connect(&format!("postgres://{role}@127.0.0.1:5432/{db}"))
        .await
        .unwrap();

    // The console runs as that role: set-up, a migration, the audit log.
    let app = TestApp::spawn(runtime.clone()).await;
    let b = app.owner().await;
    let r = b
        .api(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({"name": "Roles", "strategy": "forced_upgrade", "source": "self_built", "target": "tencent"})),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let audit = b.api(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(audit.status(), StatusCode::OK);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&runtime)
        .await
        .unwrap();
    assert!(rows >= 2, "set-up and the migration are audited ({rows})");

    // History cannot be edited, and its guard cannot be lifted.
    refused(&runtime, "UPDATE audit_log SET action = 'forged'").await;
    refused(&runtime, "DELETE FROM audit_log").await;
    refused(&runtime, "TRUNCATE audit_log").await;
    refused(&runtime, "ALTER TABLE audit_log DISABLE TRIGGER ALL").await;
    refused(&runtime, "SET session_replication_role = replica").await;
    refused(
        &runtime,
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    )
    .await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'forged'")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(after, 0);

    drop(app);
    runtime.close().await;
    sqlx::query(&format!("DROP OWNED BY {role}"))
        .execute(&owner)
        .await
        .unwrap();
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&owner)
        .await
        .unwrap();
}
