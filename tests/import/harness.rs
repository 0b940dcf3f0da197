//! A migration pointed at a sandbox, a generated dump staged, and waiting for runs.

use crate::common::*;
use imshift::dumps::fixtures::{self, Spec};
use imshift::providers::tencent::sandbox::{self, SandboxConfig, SandboxHandle};
use imshift::providers::tencent::Limits;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const APP: u64 = 1_400_000_777;
pub const KEY: &str = "import-sandbox-key-8c1f0e5a6b4d";

/// The APIs an import calls, for raising their quotas in tests.
pub const APIS: [&str; 9] = [
    "im_open_login_svc/multiaccount_import",
    "profile/portrait_set",
    "sns/friend_import",
    "sns/black_list_add",
    "openim/importmsg",
    "group_open_http_svc/import_group",
    "group_open_http_svc/import_group_member",
    "group_open_http_svc/import_group_msg",
    "group_open_http_svc/set_unread_msg_num",
];

pub async fn sandbox(tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut c = SandboxConfig::new(APP, KEY, "administrator");
    c.limits = Limits::default().with_all_qps(5000);
    tweak(&mut c);
    sandbox::spawn(c, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub fn small_spec() -> Spec {
    Spec {
        accounts: 1500,
        friends: 6,
        groups: 60,
        members: 20,
        messages: 12_000,
        seed: 7,
        ..Spec::default()
    }
}

pub fn dump(spec: &Spec) -> Vec<u8> {
    let mut out = Vec::new();
    fixtures::generate(spec, &mut out).unwrap();
    out
}

pub struct Migration {
    pub id: String,
    pub token: String,
}

impl Migration {
    pub fn path(&self, rest: &str) -> String {
        format!("/api/v1/migrations/{}{rest}", self.id)
    }
}

/// A migration whose keys point at `sb`, quotas at `qps` for every import API.
pub async fn migration(app: &TestApp, sb: &SandboxHandle, qps: u32) -> Migration {
    let owner = app.owner().await;
    let token = app.token(&owner).await;
    let r = app
        .with_token(Method::POST, "/api/v1/migrations", &token, Some(json!({
            "name": "import", "strategy": "forced_upgrade", "source": "self_built", "target": "tencent"
        })))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let m = Migration { id, token };
    let r = app
        .with_token(
            Method::PUT,
            &m.path("/keys"),
            &m.token,
            Some(json!({
                "sdkappid": APP, "region": "custom", "base_url": sb.base_url(),
                "admin_identifier": "administrator", "secret_key": KEY
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let limits: serde_json::Map<String, Value> = APIS
        .iter()
        .map(|a| (a.to_string(), json!({"qps": qps})))
        .collect();
    let r = app
        .with_token(
            Method::PUT,
            &m.path("/limits"),
            &m.token,
            Some(Value::Object(limits)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    m
}

pub async fn get(app: &TestApp, m: &Migration, rest: &str) -> Value {
    let r = app
        .with_token(Method::GET, &m.path(rest), &m.token, None)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{rest}: {}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

pub async fn post(app: &TestApp, m: &Migration, rest: &str) -> reqwest::Response {
    app.with_token(Method::POST, &m.path(rest), &m.token, None)
        .await
}

/// Uploads the dump and waits until it is staged and checked.
pub async fn stage(app: &TestApp, m: &Migration, bytes: Vec<u8>) {
    let r = app
        .anon()
        .post(format!(
            "{}{}",
            app.base,
            m.path("/dumps?file_name=dump.jsonl")
        ))
        .bearer_auth(&m.token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = get(app, m, "/dumps").await;
        let report = get(app, m, "/dumps/report").await;
        let state = list[0]["state"].as_str().unwrap().to_string();
        assert_ne!(state, "failed", "{list:#}");
        if state == "staged" && report["state"] == "current" {
            assert_eq!(
                report["errors"], 0,
                "the generated dump is clean: {report:#}"
            );
            return;
        }
        assert!(Instant::now() < deadline, "staging took too long: {list:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the run until it is in one of `states`.
pub async fn wait_for(
    app: &TestApp,
    m: &Migration,
    run: &str,
    states: &[&str],
    secs: u64,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = get(app, m, &format!("/imports/{run}")).await;
        if states.contains(&r["state"].as_str().unwrap()) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not reach {states:?}: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn launch(app: &TestApp, m: &Migration) -> String {
    let r = post(app, m, "/imports").await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
