//! The provider plug-in seam, proved with a provider that exists only in this test: added to
//! the registry of a test console, it is listed, gets its own connection form, has its fields
//! checked and its secret sealed, and an import runs through its `ImportTarget` — with nothing
//! added to `src/` for it.

use crate::common::*;
use imshift::import::plan::Phase;
use imshift::import::target::{Failure, ImportTarget, Item, Outcome, Prepared, Support};
use imshift::model::{FieldKind, FieldSpec, Role, Side};
use imshift::providers::{Capabilities, Connection, FieldError, Limits, Provider, Registry};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNTS_API: &str = "fake/accounts";
const SKIP: &str = "Fake IM takes accounts only";
const TOKEN: &str = "fake-token-plaintext-7c21e9a04b";

/// What reached the fake target: one account id per record sent.
type Received = Arc<Mutex<Vec<String>>>;

#[derive(Default)]
struct Fake {
    received: Received,
}

fn field(id: &str, label: &str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        id: id.into(),
        label: label.into(),
        kind,
        required: true,
        help: String::new(),
        placeholder: String::new(),
        choices: vec![],
        only_when: None,
    }
}

#[async_trait::async_trait]
impl Provider for Fake {
    fn id(&self) -> &'static str {
        "fakeim"
    }

    fn label(&self) -> &'static str {
        "Fake IM"
    }

    fn can_be(&self, side: Side) -> bool {
        side == Side::Target
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        vec![
            field("app_id", "Fake app id", FieldKind::Text),
            field("token", "Fake access token", FieldKind::Secret),
        ]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        let app_id = public
            .get("app_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string();
        if app_id.is_empty() || !app_id.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(FieldError::new("app_id", "lowercase letters only"));
        }
        public.clear();
        public.insert("app_id".into(), app_id.into());
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits::from_table(&[(ACCOUNTS_API, 50, Some(10))])
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            import: true,
            ..Capabilities::default()
        }
    }

    fn import_target(
        &self,
        conn: &Connection,
        limits: Limits,
    ) -> Result<Arc<dyn ImportTarget>, String> {
        conn.secret("token")
            .ok_or_else(|| Connection::missing("token"))?;
        let app_id = conn
            .text("app_id")
            .ok_or_else(|| Connection::missing("app_id"))?;
        Ok(Arc::new(FakeTarget {
            app_id: app_id.to_string(),
            limits,
            received: self.received.clone(),
        }))
    }
}

struct FakeTarget {
    app_id: String,
    limits: Limits,
    received: Received,
}

#[async_trait::async_trait]
impl ImportTarget for FakeTarget {
    fn rate_key(&self, api: &str) -> String {
        format!("fakeim:{}:{api}", self.app_id)
    }

    fn support(&self, phase: Phase) -> Support {
        match phase {
            Phase::Accounts => Support::Api {
                api: ACCOUNTS_API,
                batch: self.limits.batch(ACCOUNTS_API).unwrap_or(1),
                qps: self.limits.qps(ACCOUNTS_API).unwrap_or(1) as f64,
            },
            _ => Support::Skip(SKIP.into()),
        }
    }

    fn prepare(&self, _phase: Phase, items: &[Item]) -> Vec<Result<Prepared, Outcome>> {
        items
            .iter()
            .enumerate()
            .map(|(item, i)| {
                Ok(Prepared {
                    item,
                    part: i.record["id"].clone(),
                    sent: json!({}),
                })
            })
            .collect()
    }

    async fn send(
        &self,
        _phase: Phase,
        _key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Outcome>, Failure> {
        let mut received = self.received.lock().unwrap();
        for p in parts {
            received.push(p.part.as_str().unwrap_or_default().to_string());
        }
        Ok(vec![Outcome::Sent(json!({})); parts.len()])
    }

    async fn reconcile(
        &self,
        _phase: Phase,
        _key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Option<Outcome>>, Failure> {
        Ok(vec![None; parts.len()])
    }
}

/// A console whose registry has the fake beside the built-in providers.
async fn spawn(pool: PgPool) -> (TestApp, Received) {
    let fake = Fake::default();
    let received = fake.received.clone();
    let fake: Arc<dyn Provider> = Arc::new(fake);
    let app = TestApp::spawn_with(pool, |c| c.providers = Registry::builtin().with(fake)).await;
    (app, received)
}

async fn new_migration(b: &Browser) -> String {
    b.new_migration("Into the fake", "forced_upgrade", "self_built", "fakeim")
        .await
}

async fn put_target(b: &Browser, id: &str, fields: Value) -> reqwest::Response {
    b.api(
        Method::PUT,
        &format!("/api/v1/migrations/{id}/connections/target"),
        Some(json!({ "fields": fields })),
    )
    .await
}

async fn json_ok(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Asserts a 422 whose message names `field` (`"<field>: …"`).
async fn refused_naming(r: reqwest::Response, field: &str) {
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "validation", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{field}:")),
        "the error names `{field}`: {message}"
    );
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn a_provider_added_to_the_registry_appears_with_its_fields(pool: PgPool) {
    let (app, _) = spawn(pool).await;
    let owner = app.owner().await;

    let list = json_ok(owner.api(Method::GET, "/api/v1/providers", None).await).await;
    let fake = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "fakeim")
        .unwrap_or_else(|| panic!("the fake is listed: {list}"));
    assert_eq!(fake["label"], "Fake IM");
    assert_eq!(fake["target"], true);
    assert_eq!(fake["source"], false);
    // Built-in providers stay beside it.
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "self_built"));

    let id = new_migration(&owner).await;
    let m = json_ok(
        owner
            .api(Method::GET, &format!("/api/v1/migrations/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(m["target"], "fakeim");
    assert_eq!(m["keys_set"], false);

    let v = json_ok(
        owner
            .api(
                Method::GET,
                &format!("/api/v1/migrations/{id}/connections/target"),
                None,
            )
            .await,
    )
    .await;
    assert_eq!(v["provider"], "fakeim");
    assert_eq!(v["provider_label"], "Fake IM");
    let fields: Vec<(&str, &str, bool)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [("app_id", "text", true), ("token", "secret", true)]
    );
    assert_eq!(v["complete"], false);

    // The fake cannot be a source: the registry says so in words.
    let r = owner
        .api(
            Method::POST,
            "/api/v1/migrations",
            Some(json!({
                "name": "From the fake", "strategy": "forced_upgrade",
                "source": "fakeim", "target": "fakeim"
            })),
        )
        .await;
    refused_naming(r, "source").await;

    // The Connections page, rendered on the server, shows the fake's form.
    let r = owner.get(&format!("/migrations/{id}/connections")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for text in ["Fake IM", "Fake app id", "Fake access token"] {
        assert!(html.contains(text), "the Connections page shows {text:?}");
    }
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn its_fields_are_checked_by_the_provider(pool: PgPool) {
    let (app, _) = spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner).await;

    let r = put_target(&owner, &id, json!({"app_id": "Acme-1", "token": TOKEN})).await;
    refused_naming(r, "app_id").await;
    let r = put_target(&owner, &id, json!({"token": TOKEN})).await;
    refused_naming(r, "app_id").await;
    let r = put_target(&owner, &id, json!({"app_id": "acme"})).await;
    refused_naming(r, "token").await;
    let r = put_target(
        &owner,
        &id,
        json!({"app_id": "acme", "token": TOKEN, "region": "eu"}),
    )
    .await;
    refused_naming(r, "region").await;

    // Nothing refused was stored.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM connections")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    let v =
        json_ok(put_target(&owner, &id, json!({"app_id": " acme ", "token": TOKEN})).await).await;
    assert_eq!(
        v["values"]["app_id"], "acme",
        "stored as the provider's check left it"
    );
    assert_eq!(v["complete"], true);
    let m = json_ok(
        owner
            .api(Method::GET, &format!("/api/v1/migrations/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(m["keys_set"], true);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn its_secret_is_sealed_and_write_only(pool: PgPool) {
    let (app, _) = spawn(pool).await;
    let owner = app.owner().await;
    let viewer = app.member("viewer@example.com", Role::Viewer).await;
    let id = new_migration(&owner).await;
    let last4 = &TOKEN[TOKEN.len() - 4..];
    let mut bodies = String::new();

    let r = put_target(&viewer, &id, json!({"app_id": "acme", "token": TOKEN})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = put_target(&owner, &id, json!({"app_id": "acme", "token": TOKEN})).await;
    assert_eq!(r.status(), StatusCode::OK);
    bodies += &r.text().await.unwrap();
    // Leaving the secret out keeps it.
    let r = put_target(&owner, &id, json!({"app_id": "acmetwo"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    bodies += &r.text().await.unwrap();

    let path = format!("/api/v1/migrations/{id}/connections/target");
    let text = owner
        .api(Method::GET, &path, None)
        .await
        .text()
        .await
        .unwrap();
    bodies += &text;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["values"], json!({"app_id": "acmetwo"}));
    assert_eq!(v["secrets"]["token"]["last4"], last4);
    assert_eq!(v["secrets"]["token"]["set_by"], OWNER);
    assert_eq!(v["complete"], true);
    for path in [
        format!("/api/v1/migrations/{id}"),
        format!("/migrations/{id}/connections"),
        "/api/v1/audit?limit=500".to_string(),
    ] {
        bodies += &owner
            .api(Method::GET, &path, None)
            .await
            .text()
            .await
            .unwrap();
    }
    bodies += &viewer
        .api(Method::GET, &path, None)
        .await
        .text()
        .await
        .unwrap();

    let (field, sealed, stored_last4): (String, Vec<u8>, String) = sqlx::query_as(
        "SELECT field, sealed, last4 FROM connection_secrets
         WHERE migration_id = $1::uuid AND side = 'target'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((field.as_str(), stored_last4.as_str()), ("token", last4));
    assert!(!sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));

    let audit: Vec<Value> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|d| d["provider"] == "fakeim" && d["token"] == "rotated"),
        "the audit log says the token was set, not what it is: {audit:?}"
    );
    let rows = every_row(&app.pool).await;
    assert!(
        rows.contains("acmetwo"),
        "the dump of the database is complete"
    );
    let hex_token = hex::encode(TOKEN);
    for (what, text) in [
        ("a response", bodies.as_str()),
        ("the audit log", &format!("{audit:?}")),
        ("a database row", rows.as_str()),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
        assert!(
            !text.contains(&TOKEN[..16]),
            "part of the token leaked into {what}"
        );
        assert!(
            !text.contains(&hex_token),
            "the token leaked into {what} as bytes"
        );
    }
}

/// Every row of every table of the schema, as text.
async fn every_row(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = String::new();
    for t in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, E'\\n') FROM \"{t}\" t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out += &rows.unwrap_or_default();
        out.push('\n');
    }
    out
}

fn accounts(n: usize) -> (Vec<String>, Vec<u8>) {
    let ids: Vec<String> = (1..=n).map(|i| format!("user{i:02}")).collect();
    let mut dump = String::new();
    for id in &ids {
        dump += &json!({"kind": "account", "id": id, "nick": format!("Nick {id}")}).to_string();
        dump.push('\n');
    }
    (ids, dump.into_bytes())
}

async fn get(b: &Browser, path: &str) -> Value {
    json_ok(b.api(Method::GET, path, None).await).await
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn an_import_runs_through_its_import_target(pool: PgPool) {
    let (app, received) = spawn(pool).await;
    let owner = app.owner().await;
    let id = new_migration(&owner).await;
    let base = format!("/api/v1/migrations/{id}");
    json_ok(put_target(&owner, &id, json!({"app_id": "acme", "token": TOKEN})).await).await;

    // 25 accounts: three requests of at most 10 (the fake's batch).
    let (ids, dump) = accounts(25);
    stage_dump(&app, &owner, &id, "accounts.jsonl", dump).await;

    let pre = get(&owner, &format!("{base}/imports/preflight")).await;
    assert_eq!(pre["target"], "Fake IM", "{pre:#}");
    let accounts_phase = pre["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "accounts")
        .unwrap();
    assert_eq!(accounts_phase["api"], ACCOUNTS_API);
    assert_eq!(accounts_phase["requests"], 3, "{pre:#}");

    let r = owner
        .api(Method::POST, &format!("{base}/imports"), None)
        .await;
    let run = id_of(r, StatusCode::CREATED).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let r = get(&owner, &format!("{base}/imports/{run}")).await;
        let state = r["state"].as_str().unwrap();
        if state == "done" {
            break r;
        }
        assert!(
            !["failed", "paused", "cancelled"].contains(&state) && Instant::now() < deadline,
            "the run did not finish: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut got = received.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ids, "every account reached the fake exactly once");
    assert_eq!(run["sent"], 25, "{run:#}");
    assert_eq!(run["failed"], 0, "{run:#}");
    for p in run["phases"].as_array().unwrap() {
        if p["phase"] == "accounts" {
            assert_eq!(p["state"], "done", "{p:#}");
            assert_eq!(p["sent"], 25, "{p:#}");
            assert_eq!(p["requests"], 3, "{p:#}");
        } else {
            assert_eq!(p["state"], "skipped", "{p:#}");
            assert_eq!(p["note"], SKIP, "{p:#}");
        }
    }
}
