use imshift::providers::netease::sandbox::{self, SandboxConfig, SandboxHandle};
use imshift::providers::netease::sign;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

pub const APP_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub const SECRET: &str = "sandbox-app-secret-7d41";

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
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

/// A caller of one app: its base URL (`…/nimserver`), key and secret.
pub struct Caller {
    pub base: String,
    pub app_key: String,
    pub secret: String,
    pub http: reqwest::Client,
}

impl Caller {
    pub fn new(base: &str, app_key: &str, secret: &str) -> Self {
        Caller {
            base: base.to_string(),
            app_key: app_key.to_string(),
            secret: secret.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn of(h: &SandboxHandle) -> Self {
        Caller::new(&h.base_url(), APP_KEY, SECRET)
    }

    /// A POST to `api` (`module/op`) signed with `secret` at `cur_time`, with `nonce`.
    pub async fn send_as(
        &self,
        api: &str,
        form: &[(&str, &str)],
        secret: &str,
        cur_time: u64,
        nonce: &str,
    ) -> reqwest::Response {
        let cur_time = cur_time.to_string();
        self.http
            .post(format!("{}/{api}.action", self.base))
            .header("AppKey", &self.app_key)
            .header("Nonce", nonce)
            .header("CurTime", &cur_time)
            .header("CheckSum", sign::checksum(secret, nonce, &cur_time))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A correctly signed POST; the raw response.
    pub async fn send(&self, api: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.try_send(api, form).await.unwrap()
    }

    /// A correctly signed POST that may fail in transport.
    pub async fn try_send(
        &self,
        api: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        let nonce = format!("{:032x}", rand_u128());
        let cur_time = now_secs().to_string();
        self.http
            .post(format!("{}/{api}.action", self.base))
            .header("AppKey", &self.app_key)
            .header("Nonce", &nonce)
            .header("CurTime", &cur_time)
            .header("CheckSum", sign::checksum(&self.secret, &nonce, &cur_time))
            .form(form)
            .send()
            .await
    }

    /// A correctly signed call; its JSON answer, which must come over HTTP 200.
    pub async fn call(&self, api: &str, form: &[(&str, &str)]) -> Value {
        answer(self.send(api, form).await).await
    }
}

/// The JSON of an answer that must be HTTP 200 JSON and must not echo the secret.
pub async fn answer(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status().as_u16(), 200, "NetEase answers HTTP 200");
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let text = resp.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    serde_json::from_str(&text).unwrap()
}

fn rand_u128() -> u128 {
    // Distinct enough for nonces without another dependency.
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    t ^ ((std::process::id() as u128) << 64)
}

pub fn code(v: &Value) -> i64 {
    v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

pub fn desc(v: &Value) -> &str {
    v["desc"].as_str().unwrap_or_default()
}

/// Registers accounts; each must succeed.
pub async fn create_accounts(c: &Caller, ids: &[&str]) {
    for id in ids {
        let v = c.call("user/create", &[("accid", id)]).await;
        assert_eq!(code(&v), 200, "{id}: {v}");
    }
}

/// Creates a team owned by `owner` with `members` (and extra fields); its tid.
pub async fn create_team(
    c: &Caller,
    owner: &str,
    members: &[&str],
    extra: &[(&str, &str)],
) -> String {
    let members = serde_json::to_string(members).unwrap();
    let mut form = vec![
        ("tname", "Team"),
        ("owner", owner),
        ("members", members.as_str()),
        ("msg", "join us"),
        ("magree", "0"),
        ("joinmode", "0"),
    ];
    form.extend_from_slice(extra);
    let v = c.call("team/create", &form).await;
    assert_eq!(code(&v), 200, "{v}");
    v["tid"].as_str().expect("tid is a string").to_string()
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
