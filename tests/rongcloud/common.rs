use imshift::providers::rongcloud::sandbox::{self, SandboxConfig, SandboxHandle};
use serde_json::Value;
use sha1::{Digest, Sha1};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const APP_KEY: &str = "8luwapkvucoil";
pub const SECRET: &str = "sandbox-rc-secret-4b2";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `hex(SHA1(secret + nonce + timestamp))`, written here apart from the sandbox's own.
pub fn sign(secret: &str, nonce: &str, timestamp: &str) -> String {
    let mut h = Sha1::new();
    h.update(format!("{secret}{nonce}{timestamp}").as_bytes());
    hex::encode(h.finalize())
}

pub async fn sandbox_with(f: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config = SandboxConfig::new(APP_KEY, SECRET);
    f(&mut config);
    sandbox::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

pub async fn sandbox() -> SandboxHandle {
    sandbox_with(|_| {}).await
}

/// The headers of one request: names, values.
pub struct Sig {
    pub app_key: String,
    pub nonce: String,
    pub timestamp: String,
    pub signature: String,
}

impl Sig {
    /// Signed with `secret` now (milliseconds), with a fresh nonce.
    pub fn now(secret: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(1);
        let nonce = format!("{}", 100_000 + N.fetch_add(1, Ordering::Relaxed));
        let timestamp = now_ms().to_string();
        Sig {
            app_key: APP_KEY.into(),
            signature: sign(secret, &nonce, &timestamp),
            nonce,
            timestamp,
        }
    }
}

/// A caller of one app: the sandbox's base URL, and the secret it signs with.
pub struct Caller {
    pub base: String,
    pub secret: String,
    pub http: reqwest::Client,
}

impl Caller {
    pub fn of(h: &SandboxHandle) -> Self {
        Caller {
            base: h.base_url(),
            secret: SECRET.into(),
            http: reqwest::Client::new(),
        }
    }

    /// A POST to `/<api>.json` with these headers and a form body.
    pub async fn send_signed(
        &self,
        api: &str,
        sig: &Sig,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/{api}.json", self.base))
            .header("App-Key", &sig.app_key)
            .header("Nonce", &sig.nonce)
            .header("Timestamp", &sig.timestamp)
            .header("Signature", &sig.signature)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A correctly signed form POST that may fail in transport.
    pub async fn try_send(
        &self,
        api: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        let sig = Sig::now(&self.secret);
        self.http
            .post(format!("{}/{api}.json", self.base))
            .header("App-Key", &sig.app_key)
            .header("Nonce", &sig.nonce)
            .header("Timestamp", &sig.timestamp)
            .header("Signature", &sig.signature)
            .form(form)
            .send()
            .await
    }

    pub async fn send(&self, api: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.try_send(api, form).await.unwrap()
    }

    /// A correctly signed form call: (HTTP status, JSON answer).
    pub async fn call(&self, api: &str, form: &[(&str, &str)]) -> (u16, Value) {
        answer(self.send(api, form).await).await
    }

    /// A correctly signed form call that must succeed; its JSON.
    pub async fn ok(&self, api: &str, form: &[(&str, &str)]) -> Value {
        let (status, v) = self.call(api, form).await;
        assert_eq!((status, code(&v)), (200, 200), "{api}: {v}");
        v
    }

    /// A correctly signed JSON call (the v3 history queries).
    pub async fn call_json(&self, api: &str, body: &Value) -> (u16, Value) {
        let sig = Sig::now(&self.secret);
        let r = self
            .http
            .post(format!("{}/{api}.json", self.base))
            .header("App-Key", &sig.app_key)
            .header("Nonce", &sig.nonce)
            .header("Timestamp", &sig.timestamp)
            .header("Signature", &sig.signature)
            .json(body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }
}

/// The status and JSON of an answer that must be JSON and must not echo the secret.
pub async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ctype.starts_with("application/json"), "{status} {ctype}");
    let text = resp.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

pub fn code(v: &Value) -> i64 {
    v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

pub fn message(v: &Value) -> &str {
    v["errorMessage"].as_str().unwrap_or_default()
}

/// Registers users with `user/getToken`; each must succeed. Their tokens.
pub async fn register(c: &Caller, ids: &[&str]) -> Vec<String> {
    let mut tokens = Vec::new();
    for id in ids {
        let v = c.ok("user/getToken", &[("userId", id), ("name", id)]).await;
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    tokens
}

/// Creates group `gid` with `members`; must succeed.
pub async fn create_group(c: &Caller, gid: &str, members: &[&str]) {
    let mut form = vec![("groupId", gid), ("groupName", "Group")];
    form.extend(members.iter().map(|m| ("userId", *m)));
    c.ok("group/create", &form).await;
}

/// A text message's content JSON.
pub fn text(t: &str) -> String {
    serde_json::json!({ "content": t, "extra": "" }).to_string()
}

/// `GET /_sandbox/<what>`.
pub async fn inspect(h: &SandboxHandle, what: &str) -> Value {
    reqwest::get(format!("{}/_sandbox/{what}", h.root_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
