//! A self-built source's connection: its relay URL and two secrets, checked, sealed, and tested
//! against a relay that checks imshift's signature the way the relay protocol says.

use crate::common::*;
use axum::http::{HeaderMap, StatusCode as Status};
use imshift::providers::self_built;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

const OUTBOUND: &str = "relay-outbound-secret-51f0c2";
const INBOUND: &str = "relay-inbound-secret-9d3e77";

/// A relay that accepts a batch signed with `secret` (400 for an empty one, as it has no
/// events) and refuses any other signature with 401.
async fn relay(secret: &'static str) -> String {
    let app = axum::Router::new().route(
        "/relay",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let sig = headers
                    .get("imshift-signature")
                    .and_then(|v| v.to_str().ok());
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                match self_built::verify(secret, sig, &body, now) {
                    Err(_) => Status::UNAUTHORIZED,
                    Ok(()) if body.as_ref() == br#"{"events":[]}"# => Status::BAD_REQUEST,
                    Ok(()) => Status::OK,
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Plain http to this machine is refused unless it is a sandbox this process knows.
    imshift::providers::outbound::register_sandbox(addr);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/relay")
}

async fn migration(owner: &Browser) -> String {
    owner
        .new_migration("relay", "coexistence", "self_built", "tencent")
        .await
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_self_built_source_is_set_sealed_and_tested_against_its_relay(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = migration(&owner).await;
    let path = format!("/api/v1/migrations/{id}/connections/source");

    let view: Value = owner.json(Method::GET, &path, None).await;
    assert_eq!(view["provider"], "self_built");
    let fields: Vec<&str> = view["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "relay_url",
            "outbound_secret",
            "inbound_secret",
            "previous_inbound_secret",
            "reorder_ms"
        ]
    );
    assert_eq!(view["can_test"], true);
    // The relay sandbox stands in for the old system (`imshift sandbox relay`).
    assert_eq!(view["can_sandbox"], true);

    // A short secret and a URL into the private network are refused, naming the field.
    let url = relay(OUTBOUND).await;
    let r = owner
        .api(Method::PUT, &path, Some(json!({"fields": {"relay_url": url, "outbound_secret": "short", "inbound_secret": INBOUND}})))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("outbound_secret"));
    let r = owner
        .api(Method::PUT, &path, Some(json!({"fields": {"relay_url": "http://10.0.0.5/relay", "outbound_secret": OUTBOUND, "inbound_secret": INBOUND}})))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("relay_url"));

    let r = owner
        .api(Method::PUT, &path, Some(json!({"fields": {"relay_url": url, "outbound_secret": OUTBOUND, "inbound_secret": INBOUND}})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["complete"], true);
    assert_eq!(view["endpoint"], url.as_str());
    assert_eq!(
        view["secrets"]["outbound_secret"]["last4"],
        &OUTBOUND[OUTBOUND.len() - 4..]
    );
    let body = view.to_string();
    assert!(!body.contains(OUTBOUND) && !body.contains(INBOUND));

    // The relay checks the signature made with the outbound secret.
    let check: Value = owner
        .json(Method::POST, &format!("{path}/test"), None)
        .await;
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["message"].as_str().unwrap().starts_with("OK"));

    // Rotate only the outbound secret to one the relay does not know: the inbound one is kept,
    // and the test says in words that the relay refused the signature.
    let r = owner
        .api(Method::PUT, &path, Some(json!({"fields": {"relay_url": url, "outbound_secret": "a-different-outbound-secret"}})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view["secrets"]["inbound_secret"]["last4"],
        &INBOUND[INBOUND.len() - 4..]
    );
    let check: Value = owner
        .json(Method::POST, &format!("{path}/test"), None)
        .await;
    assert_eq!(check["ok"], false);
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("refused imshift's signature"),
        "{check}"
    );

    // Each secret sits in its own sealed row; none holds the plaintext.
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT field, sealed FROM connection_secrets WHERE side = 'source' ORDER BY field",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["inbound_secret", "outbound_secret"]
    );
    for (_, sealed) in &rows {
        let text = String::from_utf8_lossy(sealed);
        assert!(!text.contains(INBOUND) && !text.contains("a-different-outbound-secret"));
    }
    assert!(app
        .audit_actions()
        .await
        .contains(&"migration.keys_tested".to_string()));
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_side_with_nothing_to_connect_says_so_and_stays_unset(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let owner = app.owner().await;
    let id = owner
        .new_migration("dump only", "forced_upgrade", "easemob", "tencent")
        .await;
    // Easemob is read from its export only: its side has nothing to connect.
    let side = "source";
    let path = format!("/api/v1/migrations/{id}/connections/{side}");
    let view = owner.json(Method::GET, &path, None).await;
    assert_eq!(view["fields"], json!([]));
    assert_eq!(view["can_test"], false);
    assert!(view["note"]
        .as_str()
        .unwrap()
        .starts_with("Nothing to connect"));
    let r = owner
        .api(Method::PUT, &path, Some(json!({"fields": {}})))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .split(": ")
            .next(),
        Some(side)
    );
    let m = owner
        .json(Method::GET, &format!("/api/v1/migrations/{id}"), None)
        .await;
    assert_eq!(m["keys_set"], false);
    assert_eq!(m["state"], "draft");
}
