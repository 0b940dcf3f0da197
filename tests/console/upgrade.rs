//! A database made by the schema before connections, with target keys set, upgrades without
//! losing them: the keys become the target connection and their secrets, sealed under the old
//! contexts, still open.

use crate::common::*;
use imshift::providers::tencent::sandbox::{spawn, SandboxConfig};
use imshift::secrets::{last4, MasterKey};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::borrow::Cow;
use uuid::Uuid;

/// The migration that turns target keys into connections.
const CONNECTIONS: i64 = 20261205000010;
const MASTER: [u8; 32] = [0x5a; 32];
const APP: u64 = 1_400_000_321;
const SECRET: &str = "legacy-secret-key-0d6f1e8c2b7a4953";
const CALLBACK: &str = "legacy-callback-token-77aa";

#[sqlx::test(migrations = false)]
async fn target_keys_from_before_connections_upgrade_and_still_open(pool: PgPool) {
    let mut before = sqlx::migrate!();
    before.migrations = Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < CONNECTIONS)
            .cloned()
            .collect(),
    );
    assert!(!before.migrations.is_empty());
    before.run(&pool).await.unwrap();

    let sandbox = spawn(
        SandboxConfig::new(APP, SECRET, "administrator"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let key = MasterKey::from_bytes(MASTER);
    let secret = SecretString::from(SECRET.to_string());
    let callback = SecretString::from(CALLBACK.to_string());

    // The owner, as the old console stored them.
    let owner_id = Uuid::new_v4();
    let hash = password_auth::generate_hash(PASSWORD);
    sqlx::query("INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, 'owner')")
        .bind(owner_id)
        .bind(OWNER)
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO im_migrations (id, name, strategy, source, target, state, created_by)
         VALUES ($1, 'Chat app → new IM', 'coexistence', 'netease', 'tencent', 'ready', $2)",
    )
    .bind(id)
    .bind(owner_id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO target_keys (migration_id, sdkappid, region, base_url, admin_identifier,
             secret_sealed, secret_last4, secret_set_by, secret_set_at,
             callback_sealed, callback_last4, callback_set_by, callback_set_at, sandbox)
         VALUES ($1, $2, 'custom', $3, 'administrator', $4, $5, $6, now(), $7, $8, $6, now(), false)",
    )
    .bind(id)
    .bind(APP as i64)
    .bind(sandbox.base_url())
    .bind(key.seal(&secret, &format!("im_migration:{id}:secret")))
    .bind(last4(&secret))
    .bind(OWNER)
    .bind(key.seal(&callback, &format!("im_migration:{id}:callback")))
    .bind(last4(&callback))
    .execute(&pool)
    .await
    .unwrap();

    imshift::db::MIGRATOR.run(&pool).await.unwrap();
    let app = TestApp::spawn_keyed(pool, |_| {}, MasterKey::from_bytes(MASTER)).await;
    let owner = app.browser();
    let r = owner.login(OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the old owner signs in");

    let r = owner
        .api(
            Method::GET,
            &format!("/api/v1/migrations/{id}/connections/target"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains(SECRET) && !text.contains(CALLBACK));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["provider"], "tencent");
    assert_eq!(
        v["values"],
        json!({
            "sdkappid": APP, "region": "custom", "base_url": sandbox.base_url(),
            "admin_identifier": "administrator"
        })
    );
    assert_eq!(
        v["secrets"]["secret_key"]["last4"],
        &SECRET[SECRET.len() - 4..]
    );
    assert_eq!(v["secrets"]["secret_key"]["set_by"], OWNER);
    assert_eq!(
        v["secrets"]["callback_token"]["last4"],
        &CALLBACK[CALLBACK.len() - 4..]
    );
    assert_eq!(v["complete"], true);
    assert_eq!(v["sandbox"], false);

    let r = owner
        .api(Method::GET, &format!("/api/v1/migrations/{id}"), None)
        .await;
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["keys_set"], true, "{m}");
    assert_eq!(m["state"], "ready", "{m}");

    // The secret sealed under the old context opens: the sandbox accepts the signature.
    let r = owner
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/connections/target/test"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let check: Value = r.json().await.unwrap();
    assert_eq!(check["ok"], true, "{check}");
    let legacy: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT field, legacy_context FROM connection_secrets WHERE migration_id = $1 ORDER BY field",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        legacy,
        [
            ("callback_token".to_string(), Some("callback".to_string())),
            ("secret_key".to_string(), Some("secret".to_string())),
        ]
    );
}
