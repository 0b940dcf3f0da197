//! Who may reach what, enumerated from the router's own lists (pages, server functions, the
//! OpenAPI document), so a new route is covered without editing this file.

use crate::common::*;
use imshift::app::calls::PUBLIC_CALLS;
use imshift::model::Role;
use imshift::web::PUBLIC_PAGES;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

const SOME_ID: &str = "00000000-0000-4000-8000-000000000001";

/// Every REST operation as (method, path with ids filled in, templated path).
fn api_operations() -> Vec<(Method, String, String)> {
    let doc = serde_json::to_value(imshift::api::openapi()).unwrap();
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            ops.push((m, fill_ids(path), path.clone()));
        }
    }
    assert!(ops.len() >= 12, "the API lists its operations: {ops:?}");
    ops
}

/// Every `{…}` of a templated path as a well-formed id, so the role check is what answers.
fn fill_ids(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(&rest[..open]);
        // A side is a word, not an id.
        out.push_str(if rest[open..close] == *"{side}" {
            "target"
        } else {
            SOME_ID
        });
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

fn page_paths() -> Vec<String> {
    let routes = leptos_axum::generate_route_list(imshift::app::App);
    let paths: Vec<String> = routes.iter().map(|r| r.path().to_string()).collect();
    assert!(paths.len() >= 8, "pages found: {paths:?}");
    paths
}

fn server_calls() -> Vec<String> {
    let calls: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.to_string())
        .collect();
    assert!(calls.len() >= 15, "server functions found: {calls:?}");
    calls
}

/// One body that satisfies every mutating endpoint's parser, so the role check is what answers.
fn any_body() -> Value {
    json!({
        "email": "someone@example.com", "role": "viewer", "name": "t",
        "strategy": "coexistence", "source": "netease", "target": "tencent",
        "sdkappid": 1400000000, "region": "china", "admin_identifier": "administrator",
    })
}

const ANY_FORM: [(&str, &str); 23] = [
    ("skipped", "false"),
    ("upload", SOME_ID),
    ("run", SOME_ID),
    ("action", "pause"),
    ("email", "someone@example.com"),
    ("role", "viewer"),
    ("id", SOME_ID),
    ("name", "t"),
    ("current", PASSWORD),
    ("new", "another long password"),
    ("confirm", "another long password"),
    ("token", "inv_nothing"),
    ("strategy", "coexistence"),
    ("source", "netease"),
    ("target", "tencent"),
    ("sdkappid", "1400000000"),
    ("region", "china"),
    ("admin_identifier", "administrator"),
    ("archived", "true"),
    ("api", "openim/importmsg"),
    ("side", "target"),
    ("from", "source"),
    ("enabled", "true"),
];

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn anonymous_requests_are_refused_everywhere_but_the_public_doors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    let anon = app.anon();

    for (method, path, template) in api_operations() {
        let r = anon
            .request(method.clone(), format!("{}{path}", app.base))
            .header("origin", &app.base)
            .json(&any_body())
            .send()
            .await
            .unwrap();
        if template == "/api/v1/openapi.json" {
            assert_eq!(r.status(), StatusCode::OK);
            continue;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(error_code(r).await, "unauthorized");
    }

    for path in page_paths() {
        let concrete = path.replace("{token}", "inv_x").replace(":token", "inv_x");
        let r = anon
            .get(format!("{}{concrete}", app.base))
            .send()
            .await
            .unwrap();
        let public = PUBLIC_PAGES.iter().any(|p| concrete.starts_with(p));
        if public {
            // Open to anyone: it answers itself (setup, once closed, points to sign-in; an
            // unknown invite is a 404 page that says so).
            let to = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string());
            assert!(
                to.as_deref().is_none_or(|l| l == "/login"),
                "public page {path} answers: {} {to:?}",
                r.status()
            );
            assert!(!r.status().is_server_error(), "{path}: {}", r.status());
        } else {
            assert!(
                r.status().is_redirection(),
                "{path} must redirect, got {}",
                r.status()
            );
            let to = r.headers()["location"].to_str().unwrap();
            assert!(to.starts_with("/login?next="), "{path} → {to}");
        }
    }

    for call in server_calls() {
        if PUBLIC_CALLS.contains(&call.as_str()) {
            continue;
        }
        let r = anon
            .post(format!("{}{call}", app.base))
            .header("origin", &app.base)
            .form(&ANY_FORM)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{call}");
    }
}

/// Calls a viewer may make that change something: their own tokens, password and session.
const SELF_SERVICE_API: [(&str, &str); 2] = [
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
];
const SELF_SERVICE_CALLS: [&str; 3] = [
    "/_fn/create_token",
    "/_fn/revoke_token",
    "/_fn/change_password",
];
/// Server functions that only read.
const READ_CALLS: [&str; 25] = [
    "/_fn/import_preflight",
    "/_fn/import_throughput",
    "/_fn/import_runs",
    "/_fn/import_failures",
    "/_fn/import_id_map",
    "/_fn/hand_over",
    "/_fn/dumps",
    "/_fn/dump_findings",
    "/_fn/dump_formats",
    "/_fn/members",
    "/_fn/invites",
    "/_fn/tokens",
    "/_fn/audit",
    "/_fn/audit_facets",
    "/_fn/api_operations",
    "/_fn/migrations",
    "/_fn/migration",
    "/_fn/connections",
    "/_fn/providers",
    "/_fn/limits",
    "/_fn/overview",
    "/_fn/pulses",
    "/_fn/sync",
    "/_fn/sync_events",
    "/_fn/sync_id_map",
];

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_viewer_is_forbidden_every_mutation(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    let viewer = app.member("viewer@example.com", Role::Viewer).await;
    let token = app.token(&viewer).await;
    let mut checked = 0;

    for (method, path, template) in api_operations() {
        if method == Method::GET || SELF_SERVICE_API.contains(&(method.as_str(), template.as_str()))
        {
            continue;
        }
        let r = app
            .with_token(method.clone(), &path, &token, Some(any_body()))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} with a viewer's token"
        );
        assert_eq!(error_code(r).await, "forbidden");
        // And with the viewer's session, as the pages would.
        let r = viewer.api(method.clone(), &path, Some(any_body())).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} with a viewer's session"
        );
        checked += 1;
    }

    for call in server_calls() {
        let c = call.as_str();
        if PUBLIC_CALLS.contains(&c) || SELF_SERVICE_CALLS.contains(&c) || READ_CALLS.contains(&c) {
            continue;
        }
        let name = c.trim_start_matches("/_fn/");
        let r = viewer.call(name, &ANY_FORM).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{call} as viewer");
        checked += 1;
    }
    assert!(checked >= 8, "mutations checked: {checked}");
    // Nothing a viewer tried left a trace of success.
    let actions = app.audit_actions().await;
    assert!(!actions
        .iter()
        .any(|a| a == "team.invite_created" || a == "team.role_changed"));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn setup_is_open_until_the_owner_exists(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let anon = app.anon();
    // Before: every page leads to setup, and setup answers.
    let r = anon.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/setup");
    let r = anon
        .get(format!("{}/setup", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Create owner account"));

    let b = app.browser();
    let short = b
        .call(
            "setup",
            &[
                ("email", OWNER),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short
        .text()
        .await
        .unwrap()
        .contains("at least 10 characters"));

    app.owner().await;
    let r = anon
        .get(format!("{}/setup", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/login");
    let again = app
        .browser()
        .call(
            "setup",
            &[
                ("email", "thief@example.com"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    let owners: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(owners, 1);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn cross_site_writes_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let invite = [("email", "new@example.com"), ("role", "viewer")];

    let from_evil = owner
        .http
        .post(format!("{}/_fn/create_invite", app.base))
        .header("origin", "https://evil.example")
        .form(&invite)
        .send()
        .await
        .unwrap();
    assert_eq!(from_evil.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(from_evil).await, "csrf");

    let cross_site = owner
        .http
        .post(format!("{}/api/v1/invites", app.base))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"email": "new@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);

    let no_origin = owner
        .http
        .post(format!("{}/_fn/create_invite", app.base))
        .form(&invite)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    assert!(!app
        .audit_actions()
        .await
        .contains(&"team.invite_created".to_string()));

    let same_site = owner.call("create_invite", &invite).await;
    assert_eq!(same_site.status(), StatusCode::OK);
    assert!(app
        .audit_actions()
        .await
        .contains(&"team.invite_created".to_string()));

    // The session cookie itself is SameSite=Strict and HttpOnly.
    let r = app.browser().login(OWNER, PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn repeated_failed_sign_ins_are_throttled(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.owner().await;
    let b = app.browser();
    for _ in 0..5 {
        let r = b.login(OWNER, "wrong password!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, with a time to wait.
    let r = b.login(OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("Try again in"),
        "{body}"
    );
    // One audit row per email, address and window, not one per attempt.
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(failed, 1);

    // Another account is not locked by this one's failures.
    let other = app.member("other@example.com", Role::Viewer).await;
    assert_eq!(
        other.api(Method::GET, "/api/v1/me", None).await.status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn throttling_lifts_when_the_window_passes(pool: PgPool) {
    let app =
        TestApp::spawn_with(pool, |c| c.login_window = std::time::Duration::from_secs(2)).await;
    app.owner().await;
    let b = app.browser();
    for _ in 0..5 {
        b.login(OWNER, "wrong password!").await;
    }
    assert_eq!(
        b.login(OWNER, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(b.login(OWNER, PASSWORD).await.status(), StatusCode::OK);
}
