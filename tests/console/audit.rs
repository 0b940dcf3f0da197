use crate::common::*;
use imshift::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn every_action_writes_one_audit_row_without_secrets(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    app.browser().login(OWNER, "wrong password!").await;
    owner.login(OWNER, PASSWORD).await;
    let r = owner
        .api(
            Method::POST,
            "/api/v1/invites",
            Some(json!({"email": "v@example.com", "role": "viewer"})),
        )
        .await;
    let link = r.json::<Value>().await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let invite_token = link.rsplit('/').next().unwrap().to_string();
    let v = app.browser();
    v.call(
        "accept_invite",
        &[
            ("token", &invite_token),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;
    let users: Value = owner.json(Method::GET, "/api/v1/users", None).await;
    let vid = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "v@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner
        .api(
            Method::PATCH,
            &format!("/api/v1/users/{vid}"),
            Some(json!({"role": "operator"})),
        )
        .await;
    let token = app.token(&owner).await;
    let tokens: Value = owner.json(Method::GET, "/api/v1/tokens", None).await;
    owner
        .api(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", tokens[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    owner
        .call(
            "change_password",
            &[
                ("current", PASSWORD),
                ("new", "second passphrase!"),
                ("confirm", "second passphrase!"),
            ],
        )
        .await;
    owner.call("logout", &[]).await;

    let actions = app.audit_actions().await;
    assert_eq!(
        actions,
        [
            "team.owner_created",
            "auth.login_failed",
            "auth.login",
            "team.invite_created",
            "team.invite_accepted",
            "team.role_changed",
            "token.created",
            "token.revoked",
            "auth.password_changed",
            "auth.logout",
        ]
    );
    let rows: Vec<(String, Option<String>, Value)> =
        sqlx::query_as("SELECT actor, ip, details FROM audit_log ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows[1].0, "anonymous", "a failed sign-in is by nobody yet");
    assert!(
        rows.iter()
            .all(|(_, ip, _)| ip.as_deref() == Some("127.0.0.1")),
        "client IP recorded"
    );
    let everything = format!("{rows:?}");
    for secret in [
        PASSWORD,
        "second passphrase!",
        "wrong password!",
        &token,
        &invite_token,
        &link,
    ] {
        assert!(
            !everything.contains(secret),
            "audit details must not contain `{secret}`"
        );
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_audit_table_refuses_update_and_delete(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&app.pool)
        .await;
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&app.pool)
        .await;
    let truncate = sqlx::query("TRUNCATE audit_log").execute(&app.pool).await;
    for r in [update, delete, truncate] {
        let e = r.expect_err("audit_log must be append-only");
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert_eq!(app.audit_actions().await, ["team.owner_created"]);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_audit_log_filters_pages_and_exports(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    for i in 0..7 {
        owner
            .api(
                Method::POST,
                "/api/v1/invites",
                Some(json!({"email": format!("p{i}@example.com"), "role": "viewer"})),
            )
            .await;
    }
    app.member("admin@example.com", Role::Admin).await;

    // Keyset pages of 3 walk every invite row once, newest first.
    let mut seen = vec![];
    let mut cursor: Option<i64> = None;
    loop {
        let mut path = "/api/v1/audit?action=team.invite_created&limit=3".to_string();
        if let Some(c) = cursor {
            path += &format!("&before={c}");
        }
        let page: Value = owner.json(Method::GET, &path, None).await;
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["target"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("p{i}@example.com")).collect();
    assert_eq!(seen, expected);

    let by_actor: Value = owner
        .json(Method::GET, "/api/v1/audit?actor=admin%40example.com", None)
        .await;
    assert_eq!(by_actor["entries"].as_array().unwrap().len(), 1);
    assert_eq!(by_actor["entries"][0]["action"], "auth.login");

    let by_target: Value = owner
        .json(Method::GET, "/api/v1/audit?target=p3", None)
        .await;
    assert_eq!(by_target["entries"].as_array().unwrap().len(), 1);

    let future: Value = owner
        .json(Method::GET, "/api/v1/audit?from=2999-01-01", None)
        .await;
    assert_eq!(future["entries"].as_array().unwrap().len(), 0);
    let today: Value = owner
        .json(
            Method::GET,
            "/api/v1/audit?to=2999-01-01&from=2000-01-01",
            None,
        )
        .await;
    // owner_created, 7 invites, the admin's creation and sign-in.
    assert_eq!(today["entries"].as_array().unwrap().len(), 10);

    let bad = owner
        .api(Method::GET, "/api/v1/audit?from=yesterday", None)
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(bad).await == "validation");

    let csv = owner
        .api(
            Method::GET,
            "/api/v1/audit/export.csv?action=team.invite_created",
            None,
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,at,actor,action,target,details,ip");
    assert_eq!(lines.len(), 8);
    assert!(lines[1].contains("p6@example.com"));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn audit_targets_read_as_names_linked_to_their_pages(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let r = owner
        .api(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({"name": "Chat → Tencent", "strategy": "forced_upgrade", "source": "self_built", "target": "tencent"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner
        .api(
            Method::POST,
            "/api/v1/invites",
            Some(json!({"email": "v@example.com", "role": "viewer"})),
        )
        .await;
    let page: Value = owner.json(Method::GET, "/api/v1/audit", None).await;
    let entry = |action: &str| {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action}: {page}"))
            .clone()
    };
    // A migration by its name, linked; the raw target is still there for scripts.
    let created = entry("migration.created");
    assert_eq!(created["target"], format!("migration:{id}"));
    assert_eq!(created["target_name"], "Chat → Tencent");
    assert_eq!(created["target_link"], format!("/migrations/{id}"));
    // People are their email, linked to the team.
    let invited = entry("team.invite_created");
    assert_eq!(invited["target"], "v@example.com");
    assert!(invited.get("target_name").is_none(), "{invited}");
    assert_eq!(invited["target_link"], "/team");

    // The CSV keeps the raw target.
    let csv = owner
        .api(
            Method::GET,
            "/api/v1/audit/export.csv?action=migration.created",
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&format!("migration:{id}")), "{csv}");
    assert!(!csv.contains("/migrations/"), "{csv}");
}
