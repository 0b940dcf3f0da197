//! RongCloud's IM Server API (reference §1): every call a `POST` of a form to
//! `{base}/{path}.json`, signed with `App-Key`, `Nonce`, `Timestamp` and
//! `Signature = SHA1(AppSecret + Nonce + Timestamp)`, answered `{"code":200,…}`; errors come
//! with a non-200 status and `{"code":N,"errorMessage":…}`.
//!
//! The client sends once and says what happened; retrying is the caller's (an import run's
//! pacer and backoff). After a network error or a 5xx it points the *next* call at the data
//! centre's backup domain, as RongCloud's SDKs do (§1.1), at most once per 30 seconds.
//!
//! User tokens never leave this file: `user/getToken` answers one, and [`RongcloudClient::register`]
//! drops it before returning.

use super::errors::RongcloudError;
use super::sign;
use crate::providers::{outbound, Limits};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The unit of the `Timestamp` header. The docs say milliseconds; the Java and Go SDKs send
/// seconds and the service evidently takes both (§1.2, UNCONFIRMED which it prefers), so it is
/// a setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimestampUnit {
    #[default]
    Millis,
    Seconds,
}

#[derive(Clone)]
pub struct RongcloudConfig {
    /// The domain alone, such as `https://api.rong-api.com` (or the sandbox's).
    pub base_url: String,
    /// The data centre's backup domain (§1.1), none for a custom URL.
    pub backup_url: Option<String>,
    pub app_key: String,
    pub app_secret: SecretString,
    pub timestamp_unit: TimestampUnit,
}

impl RongcloudConfig {
    /// A connection to `base_url` (its backup picked from [`super::DATA_CENTRES`]).
    pub fn new(base_url: &str, app_key: &str, app_secret: SecretString) -> Self {
        RongcloudConfig {
            base_url: base_url.into(),
            backup_url: super::backup_of(base_url).map(str::to_string),
            app_key: app_key.into(),
            app_secret,
            timestamp_unit: TimestampUnit::default(),
        }
    }
}

impl std::fmt::Debug for RongcloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RongcloudConfig")
            .field("base_url", &self.base_url)
            .field("backup_url", &self.backup_url)
            .field("app_key", &self.app_key)
            .field("timestamp_unit", &self.timestamp_unit)
            .finish_non_exhaustive()
    }
}

/// One domain and the guarded HTTP client that reaches it (the guard pins the host).
struct Domain {
    url: String,
    http: reqwest::Client,
}

/// What a call carries: a form, as nearly every API takes, or JSON (the v3 APIs).
#[derive(Clone, Copy)]
enum Payload<'a, 'b> {
    Form(&'a [(&'b str, String)]),
    Json(&'a Value),
}

pub struct RongcloudClient {
    primary: Domain,
    backup: Option<Domain>,
    on_backup: AtomicBool,
    last_switch: Mutex<Option<Instant>>,
    app_key: String,
    secret: SecretString,
    timestamp_unit: TimestampUnit,
    limits: Limits,
}

impl std::fmt::Debug for RongcloudClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RongcloudClient")
            .field("base_url", &self.primary.url)
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

/// Switch domains at most this often (the Go SDK's figure, §1.1).
const SWITCH_EVERY: Duration = Duration::from_secs(30);

fn transport(api: &str, e: reqwest::Error) -> RongcloudError {
    let e = e.without_url();
    match outbound::refusal(&e) {
        Some(r) => RongcloudError::Blocked {
            api: api.into(),
            message: r.0.clone(),
        },
        None => RongcloudError::Transport {
            api: api.into(),
            message: outbound::chain(&e),
        },
    }
}

fn domain(raw: &str, policy: outbound::Policy) -> Result<Domain, RongcloudError> {
    let target = outbound::check_url(raw, policy).map_err(|r| RongcloudError::Config(r.0))?;
    let http = outbound::client(
        &target,
        policy,
        Duration::from_secs(30),
        Duration::from_secs(10),
    )
    .map_err(|e| RongcloudError::Config(format!("HTTP client: {e}")))?;
    Ok(Domain {
        url: target.url.trim_end_matches('/').to_string(),
        http,
    })
}

/// The ids in a list answer: strings, or objects with `id` (`group/user/query`, §2.4).
fn ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    o => o
                        .get("id")
                        .or_else(|| o.get("userId"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl RongcloudClient {
    pub fn new(config: RongcloudConfig) -> Result<Self, RongcloudError> {
        Self::with_policy(config, outbound::Policy::from_env())
    }

    /// A client whose target may also be what `policy` admits (tests).
    pub fn with_policy(
        config: RongcloudConfig,
        policy: outbound::Policy,
    ) -> Result<Self, RongcloudError> {
        let primary = domain(&config.base_url, policy)?;
        let backup = match config.backup_url.as_deref() {
            Some(b) if b.trim_end_matches('/') != primary.url => Some(domain(b, policy)?),
            _ => None,
        };
        if config.app_key.trim().is_empty() {
            return Err(RongcloudError::Config("the App Key is empty".into()));
        }
        if config.app_secret.expose_secret().is_empty() {
            return Err(RongcloudError::Config("the App Secret is empty".into()));
        }
        Ok(RongcloudClient {
            primary,
            backup,
            on_backup: AtomicBool::new(false),
            last_switch: Mutex::new(None),
            app_key: config.app_key,
            secret: config.app_secret,
            timestamp_unit: config.timestamp_unit,
            limits: Limits::from_table(super::LIMITS),
        })
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn app_key(&self) -> &str {
        &self.app_key
    }

    /// The domain the next call goes to.
    pub fn base_url(&self) -> &str {
        &self.current().url
    }

    fn current(&self) -> &Domain {
        match &self.backup {
            Some(b) if self.on_backup.load(Ordering::Relaxed) => b,
            _ => &self.primary,
        }
    }

    /// Points the next calls at the other domain, unless it switched less than
    /// [`SWITCH_EVERY`] ago (every worker failing at once switches once, not back and forth).
    fn switch_domain(&self) {
        if self.backup.is_none() {
            return;
        }
        let mut last = self.last_switch.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < SWITCH_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let was = self.on_backup.load(Ordering::Relaxed);
        self.on_backup.store(!was, Ordering::Relaxed);
        tracing::warn!(
            app_key = %self.app_key,
            to = %self.current().url,
            "RongCloud: switching to the other domain after a network error or 5xx"
        );
    }

    fn timestamp(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match self.timestamp_unit {
            TimestampUnit::Millis => now.as_millis().to_string(),
            TimestampUnit::Seconds => now.as_secs().to_string(),
        }
    }

    /// Refuses an empty list or one longer than `api` takes, before sending.
    pub fn check_batch(&self, api: &str, n: usize) -> Result<(), RongcloudError> {
        if n == 0 {
            return Err(RongcloudError::Invalid {
                api: api.into(),
                message: "the request has no items".into(),
            });
        }
        match self.limits.batch(api) {
            Some(max) if n > max => Err(RongcloudError::Invalid {
                api: api.into(),
                message: format!(
                    "{n} items in one request; RongCloud takes at most {max} (split the batch)"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// One signed call of `api` (its path without `.json`); the whole answer when its code is
    /// 200. Repeated keys in `form` travel as repeated fields (`userId=a&userId=b`, §1.2).
    pub async fn call(&self, api: &str, form: &[(&str, String)]) -> Result<Value, RongcloudError> {
        self.send(api, Payload::Form(form)).await
    }

    /// One signed call of `api` with a JSON body, as the v3 history APIs take (§2.7); their
    /// success code may be 200 or 10000 (§1.3, UNCONFIRMED): both are taken.
    pub async fn call_json(&self, api: &str, body: &Value) -> Result<Value, RongcloudError> {
        self.send(api, Payload::Json(body)).await
    }

    async fn send(&self, api: &str, payload: Payload<'_, '_>) -> Result<Value, RongcloudError> {
        let r = self.call_once(api, payload).await;
        if let Err(e) = &r {
            if e.switch_domain() {
                self.switch_domain();
            }
        }
        r
    }

    async fn call_once(
        &self,
        api: &str,
        payload: Payload<'_, '_>,
    ) -> Result<Value, RongcloudError> {
        let d = self.current();
        let url = format!("{}/{api}.json", d.url);
        let nonce = sign::nonce();
        let timestamp = self.timestamp();
        let signature = sign::signature(self.secret.expose_secret(), &nonce, &timestamp);
        let req = d
            .http
            .post(&url)
            .header("App-Key", &self.app_key)
            .header("Nonce", &nonce)
            .header("Timestamp", &timestamp)
            .header("Signature", signature);
        let req = match payload {
            Payload::Form(form) => req.form(form),
            Payload::Json(body) => req.json(body),
        };
        let resp = req.send().await.map_err(|e| transport(api, e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(RongcloudError::Redirect {
                api: api.into(),
                status: status.as_u16(),
            });
        }
        let body = outbound::read_capped(resp, outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                outbound::BodyError::TooLarge { limit } => RongcloudError::TooLarge {
                    api: api.into(),
                    limit,
                },
                outbound::BodyError::Transport(e) => transport(api, e),
            })?;
        let status = status.as_u16();
        let v: Option<Value> = serde_json::from_slice(&body).ok();
        let code = v.as_ref().and_then(|v| v.get("code")).and_then(|c| {
            c.as_i64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        });
        let (Some(v), Some(code)) = (v, code) else {
            return Err(if status == 200 {
                RongcloudError::Decode {
                    api: api.into(),
                    message: "not RongCloud's JSON (no `code`)".into(),
                }
            } else {
                RongcloudError::Http {
                    api: api.into(),
                    status,
                    bytes: body.len(),
                }
            });
        };
        let json = matches!(payload, Payload::Json(_));
        if status == 200 && (code == 200 || (json && code == 10000)) {
            return Ok(v);
        }
        // Only the server's words, cut short: the body is never echoed whole.
        let message = v
            .get("errorMessage")
            .or_else(|| v.get("msg"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Err(RongcloudError::Api {
            api: api.into(),
            status,
            code,
            message,
        })
    }

    // ---- the calls imshift makes, one each ----

    /// `user/getToken` (§2.1): registers `user_id` with its push name and portrait, or updates
    /// them. The token RongCloud answers is dropped here, unread: imshift never holds a login
    /// token; the app server gets its users' tokens itself (getToken again at first sign-in).
    pub async fn register(
        &self,
        user_id: &str,
        name: &str,
        portrait: Option<&str>,
    ) -> Result<(), RongcloudError> {
        let mut form = vec![("userId", user_id.to_string()), ("name", name.to_string())];
        if let Some(p) = portrait {
            form.push(("portraitUri", p.to_string()));
        }
        self.call("user/getToken", &form).await.map(drop)
    }

    /// `user/info` (§2.1): the account's name and portrait as RongCloud holds them.
    pub async fn user_info(&self, user_id: &str) -> Result<Value, RongcloudError> {
        let mut v = self
            .call("user/info", &[("userId", user_id.to_string())])
            .await?;
        if let Some(o) = v.as_object_mut() {
            o.remove("token");
        }
        Ok(v)
    }

    /// `user/blacklist/add` (§2.2): `user_id` blocks up to 20 accounts (one way).
    pub async fn blacklist_add(
        &self,
        user_id: &str,
        blocked: &[String],
    ) -> Result<(), RongcloudError> {
        self.check_batch("user/blacklist/add", blocked.len())?;
        let mut form = vec![("userId", user_id.to_string())];
        form.extend(blocked.iter().map(|b| ("blackUserId", b.clone())));
        self.call("user/blacklist/add", &form).await.map(drop)
    }

    /// `user/blacklist/query` (§2.2): everyone `user_id` blocks, every page.
    pub async fn blacklist(&self, user_id: &str) -> Result<Vec<String>, RongcloudError> {
        let mut out = vec![];
        let mut page: Option<String> = None;
        // A bound on pages: 3000 is the largest list any plan keeps (§2.2).
        for _ in 0..10 {
            let mut form = vec![("userId", user_id.to_string()), ("size", "1000".into())];
            if let Some(p) = &page {
                form.push(("pageToken", p.clone()));
            }
            let v = self.call("user/blacklist/query", &form).await?;
            out.extend(ids(v.get("users")));
            page = v
                .get("next")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            if page.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// `friend/add` with `optType=2` (§2.3, hosted friends only): `user_id` adds `friend`
    /// directly, without a request to accept.
    pub async fn friend_add(&self, user_id: &str, friend: &str) -> Result<(), RongcloudError> {
        let form = [
            ("userId", user_id.to_string()),
            ("targetId", friend.to_string()),
            ("optType", "2".to_string()),
        ];
        self.call("friend/add", &form).await.map(drop)
    }

    /// `group/create` (§2.4): the group of the app's choosing, with up to 1000 members.
    pub async fn group_create(
        &self,
        group_id: &str,
        name: &str,
        members: &[String],
    ) -> Result<(), RongcloudError> {
        self.group_call("group/create", group_id, Some(name), members)
            .await
    }

    /// `group/join` (§2.4): up to 1000 accounts into the group. `groupName` is sent only when
    /// given: the name was set by `group/create`.
    pub async fn group_join(
        &self,
        group_id: &str,
        name: Option<&str>,
        members: &[String],
    ) -> Result<(), RongcloudError> {
        self.group_call("group/join", group_id, name, members).await
    }

    async fn group_call(
        &self,
        api: &str,
        group_id: &str,
        name: Option<&str>,
        members: &[String],
    ) -> Result<(), RongcloudError> {
        self.check_batch(api, members.len())?;
        let mut form: Vec<(&str, String)> = members.iter().map(|m| ("userId", m.clone())).collect();
        form.push(("groupId", group_id.to_string()));
        if let Some(n) = name {
            form.push(("groupName", n.to_string()));
        }
        self.call(api, &form).await.map(drop)
    }

    /// `group/user/query` (§2.4): the group's members.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<String>, RongcloudError> {
        let v = self
            .call("group/user/query", &[("groupId", group_id.to_string())])
            .await?;
        Ok(ids(v.get("users")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, key: &str, secret: &str) -> RongcloudConfig {
        RongcloudConfig::new(url, key, SecretString::from(secret.to_string()))
    }

    #[test]
    fn a_client_refuses_plain_http_to_a_public_host_and_empty_keys() {
        assert!(matches!(
            RongcloudClient::new(cfg("http://api.rong-api.com", "k", "s")),
            Err(RongcloudError::Config(_))
        ));
        assert!(matches!(
            RongcloudClient::new(cfg("https://api.rong-api.com", "", "s")),
            Err(RongcloudError::Config(_))
        ));
        assert!(matches!(
            RongcloudClient::new(cfg("https://api.rong-api.com", "k", "")),
            Err(RongcloudError::Config(_))
        ));
        let c = RongcloudClient::new(cfg("https://api.rong-api.com/", "k", "hush")).unwrap();
        assert_eq!(c.base_url(), "https://api.rong-api.com");
        assert!(c.check_batch("user/blacklist/add", 21).is_err());
        assert!(c.check_batch("user/blacklist/add", 20).is_ok());
        assert!(c.check_batch("group/join", 0).is_err());
        assert!(!format!("{:?}", cfg("https://x", "k", "hush")).contains("hush"));
        assert!(!format!("{c:?}").contains("hush"));
    }

    #[test]
    fn a_network_error_or_5xx_moves_the_next_call_to_the_backup_once() {
        let c = RongcloudClient::new(cfg("https://api.rong-api.com", "k", "s")).unwrap();
        c.switch_domain();
        assert_eq!(c.base_url(), "https://api-b.rong-api.com");
        // Within 30 s a second failure does not switch back.
        c.switch_domain();
        assert_eq!(c.base_url(), "https://api-b.rong-api.com");
        // A custom URL has no backup: it stays.
        let c = RongcloudClient::new(cfg("https://im.example.com", "k", "s")).unwrap();
        c.switch_domain();
        assert_eq!(c.base_url(), "https://im.example.com");
    }

    #[test]
    fn list_answers_read_strings_or_objects_with_id() {
        let v = serde_json::json!({"users":[{"id":"a"},"b",{"userId":"c"},{"x":1}]});
        assert_eq!(ids(v.get("users")), vec!["a", "b", "c"]);
        assert!(ids(None).is_empty());
    }
}
