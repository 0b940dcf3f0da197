//! NetEase Yunxin's V1 server API (reference §1): every call a `POST` of a form to
//! `{base}/{module}/{op}.action`, signed with `AppKey`, `Nonce`, `CurTime` and
//! `CheckSum = SHA1(AppSecret + Nonce + CurTime)`, answered `{"code":200,…}`.
//!
//! The client sends once and says what happened; retrying is the caller's (an import run's
//! pacer and backoff, or sync's).

use super::errors::NeteaseError;
use super::sign;
use crate::providers::{outbound, Limits};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub struct NeteaseConfig {
    /// Ends with `/nimserver` (the documented bases and the sandbox's).
    pub base_url: String,
    pub app_key: String,
    pub app_secret: SecretString,
}

impl std::fmt::Debug for NeteaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeteaseConfig")
            .field("base_url", &self.base_url)
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

pub struct NeteaseClient {
    http: reqwest::Client,
    base_url: String,
    app_key: String,
    secret: SecretString,
    limits: Limits,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn transport(api: &str, e: reqwest::Error) -> NeteaseError {
    let e = e.without_url();
    match outbound::refusal(&e) {
        Some(r) => NeteaseError::Blocked {
            api: api.into(),
            message: r.0.clone(),
        },
        None => NeteaseError::Transport {
            api: api.into(),
            message: outbound::chain(&e),
        },
    }
}

/// A list parameter: NetEase takes it as a JSON array inside one form field (§1.2).
pub fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String(s.as_ref().to_string()))
            .collect(),
    )
    .to_string()
}

impl NeteaseClient {
    pub fn new(config: NeteaseConfig) -> Result<Self, NeteaseError> {
        Self::with_policy(config, outbound::Policy::from_env())
    }

    /// A client whose target may also be what `policy` admits (tests).
    pub fn with_policy(
        config: NeteaseConfig,
        policy: outbound::Policy,
    ) -> Result<Self, NeteaseError> {
        let target =
            outbound::check_url(&config.base_url, policy).map_err(|r| NeteaseError::Config(r.0))?;
        if config.app_key.trim().is_empty() {
            return Err(NeteaseError::Config("the App Key is empty".into()));
        }
        if config.app_secret.expose_secret().is_empty() {
            return Err(NeteaseError::Config("the App Secret is empty".into()));
        }
        let http = outbound::client(
            &target,
            policy,
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
        .map_err(|e| NeteaseError::Config(format!("HTTP client: {e}")))?;
        Ok(NeteaseClient {
            http,
            base_url: target.url.trim_end_matches('/').to_string(),
            app_key: config.app_key,
            secret: config.app_secret,
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

    /// Refuses an empty list or one longer than `api` takes, before sending.
    pub fn check_batch(&self, api: &str, n: usize) -> Result<(), NeteaseError> {
        if n == 0 {
            return Err(NeteaseError::Invalid {
                api: api.into(),
                message: "the request has no items".into(),
            });
        }
        match self.limits.batch(api) {
            Some(max) if n > max => Err(NeteaseError::Invalid {
                api: api.into(),
                message: format!(
                    "{n} items in one request; NetEase Yunxin takes at most {max} (split the batch)"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// One signed call of `api` (`module/op`); the whole answer when its code is 200.
    pub async fn call(&self, api: &str, form: &[(&str, String)]) -> Result<Value, NeteaseError> {
        let url = format!("{}/{api}.action", self.base_url);
        let nonce = format!("{:032x}", rand::random::<u128>());
        let cur_time = now_secs().to_string();
        let check = sign::checksum(self.secret.expose_secret(), &nonce, &cur_time);
        let resp = self
            .http
            .post(&url)
            .header("AppKey", &self.app_key)
            .header("Nonce", &nonce)
            .header("CurTime", &cur_time)
            .header("CheckSum", check)
            .form(form)
            .send()
            .await
            .map_err(|e| transport(api, e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(NeteaseError::Redirect {
                api: api.into(),
                status: status.as_u16(),
            });
        }
        let body = outbound::read_capped(resp, outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                outbound::BodyError::TooLarge { limit } => NeteaseError::TooLarge {
                    api: api.into(),
                    limit,
                },
                outbound::BodyError::Transport(e) => transport(api, e),
            })?;
        if status != reqwest::StatusCode::OK {
            return Err(NeteaseError::Http {
                api: api.into(),
                status: status.as_u16(),
                bytes: body.len(),
            });
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| NeteaseError::Decode {
            api: api.into(),
            message: format!("not JSON ({e})"),
        })?;
        let code = v
            .get("code")
            .and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| NeteaseError::Decode {
                api: api.into(),
                message: "no `code` in the answer".into(),
            })?;
        if code != 200 {
            let desc = v
                .get("desc")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(NeteaseError::Api {
                api: api.into(),
                code,
                desc,
            });
        }
        Ok(v)
    }

    // ---- the calls imshift makes, one each ----

    /// `user/getUinfos`: the profiles of up to 200 accounts that exist (others are absent).
    pub async fn get_uinfos(&self, accids: &[String]) -> Result<Vec<Value>, NeteaseError> {
        self.check_batch("user/getUinfos", accids.len())?;
        let v = self
            .call("user/getUinfos", &[("accids", json_list(accids))])
            .await?;
        Ok(v.get("uinfos")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `team/joinTeams`: the teams `accid` is in, as NetEase lists them.
    pub async fn join_teams(&self, accid: &str) -> Result<Vec<Value>, NeteaseError> {
        let v = self
            .call("team/joinTeams", &[("accid", accid.to_string())])
            .await?;
        Ok(v.get("infos")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `friend/get`: `accid`'s friends (every one, `updatetime` 0).
    pub async fn friends_of(&self, accid: &str) -> Result<Vec<String>, NeteaseError> {
        let v = self
            .call(
                "friend/get",
                &[("accid", accid.to_string()), ("updatetime", "0".into())],
            )
            .await?;
        Ok(v.get("friends")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("faccid").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_travel_as_one_json_array_field() {
        assert_eq!(json_list(&["a", "b\"c"]), r#"["a","b\"c"]"#);
    }

    #[test]
    fn a_client_refuses_plain_http_to_a_public_host_and_empty_keys() {
        let cfg = |url: &str, key: &str, secret: &str| NeteaseConfig {
            base_url: url.into(),
            app_key: key.into(),
            app_secret: SecretString::from(secret.to_string()),
        };
        assert!(matches!(
            NeteaseClient::new(cfg("http://api.netease.im/nimserver", "k", "s")),
            Err(NeteaseError::Config(_))
        ));
        assert!(matches!(
            NeteaseClient::new(cfg("https://api.netease.im/nimserver", "", "s")),
            Err(NeteaseError::Config(_))
        ));
        assert!(matches!(
            NeteaseClient::new(cfg("https://api.netease.im/nimserver", "k", "")),
            Err(NeteaseError::Config(_))
        ));
        let c = NeteaseClient::new(cfg("https://api.netease.im/nimserver/", "k", "s")).unwrap();
        assert!(c.check_batch("user/getUinfos", 201).is_err());
        assert!(c.check_batch("user/getUinfos", 200).is_ok());
        assert!(c.check_batch("user/getUinfos", 0).is_err());
        assert!(!format!("{:?}", cfg("https://x", "k", "hush")).contains("hush"));
    }
}
