use crate::common::*;
use imshift::model::Role;
use imshift::providers::tencent::sandbox::{spawn, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

const SECRET: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const TOKEN: &str = "callback-token-xyzzy-0042";

async fn new_migration(b: &Browser, name: &str) -> String {
    b.new_migration(name, "coexistence", "netease", "tencent")
        .await
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn migrations_are_created_edited_archived_and_audited(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let op = app.member("op@example.com", Role::Operator).await;
    let id = new_migration(&op, "Chat → Tencent").await;

    let dup = op
        .api(Method::POST, "/api/v1/migrations", Some(json!({
            "name": "chat → tencent", "strategy": "forced_upgrade", "source": "easemob", "target": "tencent"
        })))
        .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let bad = op
        .api(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({
                "name": "x", "strategy": "sideways", "source": "easemob", "target": "tencent"
            })),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = op
        .api(Method::PATCH, &format!("/api/v1/migrations/{id}"), Some(json!({
            "name": "Chat app → Tencent IM", "strategy": "forced_upgrade", "source": "netease", "target": "tencent", "notes": "rehearse first"
        })))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["strategy"], "forced_upgrade");
    assert_eq!(m["state"], "draft");
    assert_eq!(m["keys_set"], false);

    let list: Value = owner.json(Method::GET, "/api/v1/migrations", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = op
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/archive"),
            None,
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "archived");
    let list: Value = owner.json(Method::GET, "/api/v1/migrations", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let archived: Value = owner
        .json(Method::GET, "/api/v1/migrations?archived=true", None)
        .await;
    assert_eq!(archived.as_array().unwrap().len(), 1);

    // An operator runs migrations but does not hold the keys.
    let r = op
        .api(Method::PUT, &format!("/api/v1/migrations/{id}/keys"), Some(json!({
            "sdkappid": 1400000000, "region": "china", "admin_identifier": "administrator", "secret_key": SECRET
        })))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let actions = app.audit_actions().await;
    for a in [
        "migration.created",
        "migration.updated",
        "migration.archived",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} audited");
    }
    let changes: Value =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'migration.updated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(changes["strategy"]["from"], "coexistence");
    assert!(
        changes.get("source").is_none(),
        "unchanged fields are not listed: {changes}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn keys_are_sealed_write_only_and_tested_against_the_sandbox(pool: PgPool) {
    let logs = Logs::capture();

    let sandbox = spawn(
        SandboxConfig::new(1400000000, SECRET, "administrator"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner, "keys").await;
    let mut bodies = String::new();
    let keys_path = format!("/api/v1/migrations/{id}/keys");

    // Plain http is for loopback only.
    let r = owner
        .api(
            Method::PUT,
            &keys_path,
            Some(json!({
                "sdkappid": 1400000000, "region": "custom", "base_url": "http://example.com",
                "admin_identifier": "administrator", "secret_key": SECRET
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("plain http"));

    let base = format!("http://{}", sandbox.addr);
    let r = owner
        .api(
            Method::PUT,
            &keys_path,
            Some(json!({
                "sdkappid": 1400000000, "region": "custom", "base_url": base,
                "admin_identifier": "administrator", "secret_key": SECRET, "callback_token": TOKEN
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    bodies += &text;
    let k: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(k["secret_key"]["last4"], "3b5e");
    assert_eq!(k["secret_key"]["set_by"], OWNER);
    assert_eq!(k["callback_token"]["last4"], "0042");

    let test_path = format!("/api/v1/migrations/{id}/keys/test");
    let r = owner.api(Method::POST, &test_path, None).await;
    let text = r.text().await.unwrap();
    bodies += &text;
    let check: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(check["ok"], true, "{check}");

    // Wrong key: the sandbox answers 70009 and the sentence says what to do.
    let r = owner
        .api(
            Method::PUT,
            &keys_path,
            Some(json!({
                "sdkappid": 1400000000, "region": "custom", "base_url": base,
                "admin_identifier": "administrator", "secret_key": "not-the-right-key-0000"
            })),
        )
        .await;
    bodies += &r.text().await.unwrap();
    let check: Value = owner.json(Method::POST, &test_path, None).await;
    assert_eq!(check["ok"], false);
    assert_eq!(check["code"], 70009, "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("key"),
        "{check}"
    );

    // Not an admin.
    let r = owner
        .api(
            Method::PUT,
            &keys_path,
            Some(json!({
                "sdkappid": 1400000000, "region": "custom", "base_url": base,
                "admin_identifier": "alice", "secret_key": SECRET
            })),
        )
        .await;
    bodies += &r.text().await.unwrap();
    let check: Value = owner.json(Method::POST, &test_path, None).await;
    assert_eq!(check["ok"], false);
    assert_eq!(check["code"], 60010, "{check}");

    // Omitting the secret keeps it: back to the right admin, the stored key is still the wrong one.
    let r = owner
        .api(Method::PUT, &keys_path, Some(json!({
            "sdkappid": 1400000000, "region": "custom", "base_url": base, "admin_identifier": "administrator"
        })))
        .await;
    let k: Value = r.json().await.unwrap();
    assert_eq!(k["secret_key"]["last4"], SECRET[SECRET.len() - 4..]);

    // Nobody answering: a sentence, not a stack trace.
    let r = owner
        .api(
            Method::PUT,
            &keys_path,
            Some(json!({
                "sdkappid": 1400000000, "region": "custom", "base_url": "http://127.0.0.1:9",
                "admin_identifier": "administrator"
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let check: Value = owner.json(Method::POST, &test_path, None).await;
    assert_eq!(check["ok"], false);
    assert!(check["code"].is_null());

    for path in [
        keys_path.clone(),
        format!("/api/v1/migrations/{id}"),
        "/api/v1/audit?limit=500".into(),
    ] {
        bodies += &owner
            .api(Method::GET, &path, None)
            .await
            .text()
            .await
            .unwrap();
    }
    let audit: Vec<Value> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let stored: Vec<(Vec<u8>, Value)> = sqlx::query_as(
        "SELECT s.sealed, c.public FROM connection_secrets s
         JOIN connections c USING (migration_id, side)",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the secret key and the callback token are stored"
    );
    let stored = format!("{stored:?}");
    let everything = format!("{bodies}\n{audit:?}\n{}", logs.text());
    for secret in [SECRET, TOKEN, &SECRET[..16]] {
        assert!(
            !everything.contains(secret),
            "a secret leaked into a response, the audit log or a log line"
        );
        assert!(!stored.contains(secret));
    }
    assert!(
        logs.text().contains("/api/v1/migrations/{id}/keys/test"),
        "the log was captured"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn rehearsal_points_the_keys_at_a_running_sandbox(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner, "rehearsal").await;
    let r = owner
        .api(
            Method::POST,
            &format!("/api/v1/migrations/{id}/sandbox"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let k: Value = r.json().await.unwrap();
    assert_eq!(k["sandbox"], true);
    assert!(k["base_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let check: Value = owner
        .json(
            Method::POST,
            &format!("/api/v1/migrations/{id}/keys/test"),
            None,
        )
        .await;
    assert_eq!(check["ok"], true, "{check}");
    let m: Value = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}"), None)
        .await;
    assert_eq!(m["state"], "ready");
    assert!(app
        .audit_actions()
        .await
        .contains(&"migration.sandbox_started".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn pacing_defaults_come_from_the_table_and_can_be_overridden(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner, "pacing").await;
    let path = format!("/api/v1/migrations/{id}/limits");
    let limits: Value = owner.json(Method::GET, &path, None).await;
    let find = |v: &Value, api: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|l| l["api"] == api)
            .unwrap()
            .clone()
    };
    let importmsg = find(&limits, "openim/importmsg");
    assert_eq!(importmsg["default_qps"], 200);
    assert_eq!(importmsg["qps"], 200);
    assert_eq!(
        find(&limits, "group_open_http_svc/import_group_msg")["default_batch"],
        7
    );

    let r = owner
        .api(
            Method::PUT,
            &path,
            Some(json!({
                "openim/importmsg": {"qps": 50},
                "group_open_http_svc/import_group_member": {"batch": 100}
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let limits: Value = r.json().await.unwrap();
    assert_eq!(find(&limits, "openim/importmsg")["qps"], 50);
    assert_eq!(find(&limits, "openim/importmsg")["overridden"], true);
    assert_eq!(
        find(&limits, "group_open_http_svc/import_group_member")["batch"],
        100
    );

    for (body, what) in [
        (json!({"openim/nosuch": {"qps": 1}}), "not a Tencent IM API"),
        (json!({"openim/importmsg": {"qps": 0}}), "qps 0"),
        (
            json!({"openim/importmsg": {"batch": 5}}),
            "one item per request",
        ),
    ] {
        let r = owner.api(Method::PUT, &path, Some(body)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains(what), "{what}");
    }
    let r = owner.api(Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(
        find(&r.json::<Value>().await.unwrap(), "openim/importmsg")["qps"],
        200
    );
    assert!(app
        .audit_actions()
        .await
        .contains(&"migration.limits_set".to_string()));
}
