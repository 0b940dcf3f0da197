use crate::common::*;
use imshift::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn invite(owner: &Browser, email: &str, role: &str) -> (String, String) {
    let r = owner
        .api(
            Method::POST,
            "/api/v1/invites",
            Some(json!({ "email": email, "role": role })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let link = v["link"].as_str().unwrap().to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    (v["invite"]["id"].as_str().unwrap().to_string(), token)
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_invite_works_once_and_makes_a_member_with_its_role(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let (_, token) = invite(&owner, "Vera@Example.com", "viewer").await;
    assert!(token.starts_with("inv_"));

    // The invite page shows who is invited, to anyone holding the link.
    let page = app
        .anon()
        .get(format!("{}/invite/{token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Vera@Example.com"));

    let vera = app.browser();
    let r = vera
        .call(
            "accept_invite",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let me: Value = vera.json(Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["email"], "Vera@Example.com");

    // Used once: a second use fails, whoever tries.
    let again = app
        .browser()
        .call(
            "accept_invite",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already used"));

    let list: Value = owner.json(Method::GET, "/api/v1/invites", None).await;
    assert_eq!(list[0]["status"], "accepted");
    // The list never carries the link.
    assert!(!list.to_string().contains(&token));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn expired_and_revoked_invites_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let (_, expired) = invite(&owner, "late@example.com", "operator").await;
    sqlx::query("UPDATE invites SET expires_at = now() - interval '1 second' WHERE email = 'late@example.com'")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app
        .browser()
        .call(
            "accept_invite",
            &[
                ("token", &expired),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("expired"));

    let (id, revoked) = invite(&owner, "nope@example.com", "admin").await;
    let r = owner
        .api(Method::DELETE, &format!("/api/v1/invites/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .browser()
        .call(
            "accept_invite",
            &[
                ("token", &revoked),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("withdrawn"));

    let r = app
        .browser()
        .call(
            "accept_invite",
            &[
                ("token", "inv_made_up"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "no invite above made a member");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn invites_are_checked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let cases = [
        (
            json!({"email": "not-an-email", "role": "viewer"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"email": "x@example.com", "role": "owner"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"email": "x@example.com", "role": "emperor"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"email": OWNER, "role": "viewer"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ];
    for (body, status, code) in cases {
        let r = owner
            .api(Method::POST, "/api/v1/invites", Some(body.clone()))
            .await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(error_code(r).await, code, "{body}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn admins_change_roles_but_never_the_owners(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let admin = app.member("admin@example.com", Role::Admin).await;
    let op = app.member("op@example.com", Role::Operator).await;
    let users: Value = admin.json(Method::GET, "/api/v1/users", None).await;
    let id_of = |email: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (op_id, owner_id) = (id_of("op@example.com"), id_of(OWNER));

    let r = admin
        .api(
            Method::PATCH,
            &format!("/api/v1/users/{op_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The change applies to the operator's live session at once.
    let me: Value = op.json(Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["role"], "viewer");
    let r = op
        .api(
            Method::POST,
            "/api/v1/invites",
            Some(json!({"email": "a@b.io", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = admin
        .api(
            Method::PATCH,
            &format!("/api/v1/users/{owner_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = admin
        .api(Method::DELETE, &format!("/api/v1/users/{owner_id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Removing a member ends their session.
    let r = owner
        .api(Method::DELETE, &format!("/api/v1/users/{op_id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        op.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let r = owner
        .api(Method::DELETE, &format!("/api/v1/users/{op_id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = owner
        .api(Method::DELETE, "/api/v1/users/not-a-uuid", None)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let actions = app.audit_actions().await;
    assert!(actions.contains(&"team.role_changed".to_string()));
    assert!(actions.contains(&"team.member_removed".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_password_change_ends_the_other_sessions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let here = app.owner().await;
    let elsewhere = app.browser();
    assert_eq!(
        elsewhere.login(OWNER, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        elsewhere
            .api(Method::GET, "/api/v1/me", None)
            .await
            .status(),
        StatusCode::OK
    );

    let wrong = here
        .call(
            "change_password",
            &[
                ("current", "not it at all"),
                ("new", "a brand new passphrase"),
                ("confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = here
        .call(
            "change_password",
            &[
                ("current", PASSWORD),
                ("new", "a brand new passphrase"),
                ("confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        here.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        elsewhere
            .api(Method::GET, "/api/v1/me", None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser().login(OWNER, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser()
            .login(OWNER, "a brand new passphrase")
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn signing_out_ends_the_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    assert_eq!(owner.call("logout", &[]).await.status(), StatusCode::OK);
    assert_eq!(
        owner.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = owner.get("/team").await;
    assert!(r.status().is_redirection());
}
