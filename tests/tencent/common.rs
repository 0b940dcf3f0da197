use imshift::providers::tencent::client::{AccountItem, TencentClient, TencentConfig};
use imshift::providers::tencent::sandbox::{self, SandboxConfig, SandboxHandle};
use imshift::providers::tencent::usersig;
use secrecy::SecretString;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

pub const APP: u64 = 1_400_000_123;
pub const KEY: &str = "sandbox-secret-key-5bd2850fff3ecb11";
pub const ADMIN: &str = "administrator";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub async fn sandbox_with(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config = SandboxConfig::new(APP, KEY, ADMIN);
    f(&mut config);
    sandbox::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

pub async fn sandbox() -> SandboxHandle {
    sandbox_with(|_| {}).await
}

pub fn config(h: &SandboxHandle) -> TencentConfig {
    TencentConfig {
        base_url: h.base_url(),
        sdkappid: APP,
        admin: ADMIN.into(),
        secret: SecretString::from(KEY.to_string()),
        usersig_ttl_secs: 86_400,
    }
}

pub fn client(h: &SandboxHandle) -> TencentClient {
    TencentClient::new(config(h)).expect("client config is valid")
}

pub async fn import_users(c: &TencentClient, ids: &[&str]) {
    let items: Vec<AccountItem> = ids
        .iter()
        .map(|id| AccountItem {
            user_id: id.to_string(),
            nick: Some(format!("Nick {id}")),
            face_url: None,
        })
        .collect();
    let failed = c.multiaccount_import(&items).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
}

/// A hand-made request, for what the typed client refuses to send.
pub async fn raw(
    h: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", h.base_url()))
        .query(query)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(KEY),
        "the secret key leaked into a response: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

/// The five query parameters of a valid admin request.
pub fn good_query() -> Vec<(&'static str, String)> {
    vec![
        ("sdkappid", APP.to_string()),
        ("identifier", ADMIN.to_string()),
        ("usersig", usersig::generate(APP, KEY, ADMIN, 86_400, now())),
        ("random", "12345".to_string()),
        ("contenttype", "json".to_string()),
    ]
}

pub fn code(v: &Value) -> i64 {
    v["ErrorCode"].as_i64().unwrap()
}
