use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn api_tokens_authenticate_until_revoked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let secret = app.token(&owner).await;
    assert!(secret.starts_with("imshift_pat_"));

    let me = app
        .with_token(Method::GET, "/api/v1/me", &secret, None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], OWNER);

    // A token needs no Origin: it is not an ambient credential.
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/invites",
            &secret,
            Some(serde_json::json!({"email": "script@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let who: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'team.invite_created' AND actor_token_id IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(who, OWNER);

    // Listing shows the prefix only; the secret is stored as a hash.
    let list: Value = owner.json(Method::GET, "/api/v1/tokens", None).await;
    assert!(!list.to_string().contains(&secret));
    assert!(secret.starts_with(list[0]["prefix"].as_str().unwrap()));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE position($1 in prefix) > 0 OR encode(token_hash, 'escape') LIKE '%' || $1 || '%'")
        .bind(&secret[12..])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the secret is not stored in clear");

    let id = list[0]["id"].as_str().unwrap();
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            &secret,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .with_token(Method::GET, "/api/v1/me", &secret, None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    for bad in ["imshift_pat_forged", "Basic abc", ""] {
        let r = app
            .anon()
            .get(format!("{}/api/v1/me", app.base))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_bad_token_is_not_rescued_by_a_cookie(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let r = owner
        .http
        .get(format!("{}/api/v1/me", app.base))
        .bearer_auth("imshift_pat_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn tokens_need_a_name_and_are_personal(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let r = owner
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(serde_json::json!({"name": "  "})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = owner
        .api(Method::POST, "/api/v1/tokens", Some(serde_json::json!({})))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "validation");

    app.token(&owner).await;
    let other = app
        .member("other@example.com", imshift::model::Role::Admin)
        .await;
    let list: Value = other.json(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "another member's tokens are not listed"
    );
    let owners: Value = owner.json(Method::GET, "/api/v1/tokens", None).await;
    let id = owners[0]["id"].as_str().unwrap();
    let r = other
        .api(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
