//! The Tencent IM REST client: one generic `call` (envelope, UserSig, errors) and thin typed
//! wrappers per API. The request and answer bodies are in `wire.rs`, re-exported here.

use super::errors::TencentError;
use super::usersig;
use super::Limits;
use crate::providers::{outbound, retry};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod wire;
pub use wire::*;

/// What the client needs to reach one Tencent IM app.
#[derive(Clone)]
pub struct TencentConfig {
    /// `https://console.tim.qq.com` (see `REGIONS`) or a custom URL; plain http only for
    /// loopback hosts (the sandbox).
    pub base_url: String,
    pub sdkappid: u64,
    /// An App admin identifier (e.g. `administrator`).
    pub admin: String,
    /// The app's secret key from the console.
    pub secret: SecretString,
    /// Validity of the generated UserSig; the spec recommends at least a day.
    pub usersig_ttl_secs: u64,
}

impl fmt::Debug for TencentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentConfig")
            .field("base_url", &self.base_url)
            .field("sdkappid", &self.sdkappid)
            .field("admin", &self.admin)
            .field("secret", &"<redacted>")
            .field("usersig_ttl_secs", &self.usersig_ttl_secs)
            .finish()
    }
}

struct CachedSig {
    sig: String,
    expires_at: u64,
}

pub struct TencentClient {
    http: reqwest::Client,
    base_url: String,
    sdkappid: u64,
    admin: String,
    secret: SecretString,
    ttl: u64,
    limits: Limits,
    sig: Mutex<Option<CachedSig>>,
}

impl fmt::Debug for TencentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentClient")
            .field("base_url", &self.base_url)
            .field("sdkappid", &self.sdkappid)
            .field("admin", &self.admin)
            .field("secret", &"<redacted>")
            .field("usersig_ttl_secs", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Check and normalise a base URL (see `providers::outbound`): https to public addresses, http
/// only to this machine, no userinfo, hosts spelled canonically.
pub fn normalize_base_url(raw: &str) -> Result<String, TencentError> {
    outbound::check_url(raw, outbound::Policy::from_env())
        .map(|t| t.url)
        .map_err(|r| TencentError::Config(r.0))
}

/// A transport error in words, or the guard's refusal. `without_url`: the URL carries the
/// UserSig, which must not reach logs.
fn transport(api: &str, e: reqwest::Error) -> TencentError {
    let e = e.without_url();
    match outbound::refusal(&e) {
        Some(r) => TencentError::Blocked {
            api: api.into(),
            message: r.0.clone(),
        },
        None => TencentError::Transport {
            api: api.into(),
            message: outbound::chain(&e),
        },
    }
}

/// Where a redirect pointed, as scheme, host and port only (never its path or query).
fn redirect_origin(resp: &reqwest::Response) -> Option<String> {
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    let url = resp.url().join(location).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

impl TencentClient {
    pub fn new(config: TencentConfig) -> Result<Self, TencentError> {
        Self::with_policy(config, outbound::Policy::from_env())
    }

    /// A client whose target may also be what `policy` admits (tests; the console uses
    /// [`TencentClient::new`], which reads `IMSHIFT_ALLOW_PRIVATE_TARGETS`).
    pub fn with_policy(
        config: TencentConfig,
        policy: outbound::Policy,
    ) -> Result<Self, TencentError> {
        let target =
            outbound::check_url(&config.base_url, policy).map_err(|r| TencentError::Config(r.0))?;
        super::convert::check_user_id(&config.admin)
            .map_err(|e| TencentError::Config(format!("admin identifier: {e}")))?;
        if config.secret.expose_secret().is_empty() {
            return Err(TencentError::Config("the secret key is empty".into()));
        }
        if config.usersig_ttl_secs < 60 {
            return Err(TencentError::Config(format!(
                "usersig_ttl_secs {} is too short; use at least 60 (a day is recommended)",
                config.usersig_ttl_secs
            )));
        }
        let http = outbound::client(
            &target,
            policy,
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
        .map_err(|e| TencentError::Config(format!("HTTP client: {e}")))?;
        Ok(TencentClient {
            http,
            base_url: target.url,
            sdkappid: config.sdkappid,
            admin: config.admin,
            secret: config.secret,
            ttl: config.usersig_ttl_secs,
            limits: Limits::default(),
            sig: Mutex::new(None),
        })
    }

    /// Use other limits than the documented defaults (raised plans, changed batch sizes).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The cached UserSig, regenerated ~100 s before it expires or when `force`.
    fn usersig(&self, force: bool) -> String {
        let now = now_secs();
        let margin = 100.min(self.ttl / 2);
        let mut cached = self.sig.lock().unwrap_or_else(|p| p.into_inner());
        match cached.as_ref() {
            Some(c) if !force && now + margin < c.expires_at => c.sig.clone(),
            _ => {
                let sig = usersig::generate(
                    self.sdkappid,
                    self.secret.expose_secret(),
                    &self.admin,
                    self.ttl,
                    now,
                );
                *cached = Some(CachedSig {
                    sig: sig.clone(),
                    expires_at: now + self.ttl,
                });
                sig
            }
        }
    }

    /// Refuse an empty or oversized batch before sending it.
    fn check_batch(&self, path: &str, n: usize) -> Result<(), TencentError> {
        if n == 0 {
            return Err(TencentError::Invalid {
                api: path.into(),
                message: "the request has no items".into(),
            });
        }
        match self.limits.batch(path) {
            Some(max) if n > max => Err(TencentError::Invalid {
                api: path.into(),
                message: format!(
                    "{n} items in one request; Tencent IM takes at most {max} (split the batch)"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// POST one request and parse the envelope. Regenerates the UserSig and retries once on
    /// 70001/70052 (expired). Other errors are returned for the caller's retry policy.
    pub async fn call<Req, Resp>(
        &self,
        service: &str,
        command: &str,
        req: &Req,
    ) -> Result<Resp, TencentError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let api = format!("{service}/{command}");
        let url = format!("{}/v4/{service}/{command}", self.base_url);
        let mut force = false;
        loop {
            let sig = self.usersig(force);
            let result = self.send_once(&api, &url, &sig, req).await;
            match result {
                Err(TencentError::Api { code, .. })
                    if (code == 70001 || code == 70052) && !force =>
                {
                    tracing::debug!(api, code, "UserSig refused as expired; regenerating once");
                    force = true;
                }
                other => return other,
            }
        }
    }

    async fn send_once<Req, Resp>(
        &self,
        api: &str,
        url: &str,
        sig: &str,
        req: &Req,
    ) -> Result<Resp, TencentError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let random = rand::random::<u32>().to_string();
        let sdkappid = self.sdkappid.to_string();
        let resp = self
            .http
            .post(url)
            .query(&[
                ("sdkappid", sdkappid.as_str()),
                ("identifier", self.admin.as_str()),
                ("usersig", sig),
                ("random", random.as_str()),
                ("contenttype", "json"),
            ])
            .json(req)
            .send()
            .await
            .map_err(|e| transport(api, e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(TencentError::Redirect {
                api: api.into(),
                status: status.as_u16(),
                location: redirect_origin(&resp),
            });
        }
        let body = outbound::read_capped(resp, outbound::MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                outbound::BodyError::TooLarge { limit } => TencentError::TooLarge {
                    api: api.into(),
                    limit,
                },
                outbound::BodyError::Transport(e) => transport(api, e),
            })?;
        if status != reqwest::StatusCode::OK {
            // A gateway may carry Tencent IM's own error; anything else is described, not shown.
            return match serde_json::from_slice::<Envelope>(&body) {
                Ok(env) if env.error_code != 0 => Err(TencentError::Api {
                    api: api.into(),
                    code: env.error_code,
                    info: words(&env.error_info),
                }),
                _ => Err(TencentError::Http {
                    api: api.into(),
                    status: status.as_u16(),
                    bytes: body.len(),
                }),
            };
        }
        parse_envelope(api, &body)
    }

    // ---- accounts ----

    pub async fn account_import(&self, req: &AccountImportRequest) -> Result<(), TencentError> {
        self.call::<_, Empty>("im_open_login_svc", "account_import", req)
            .await
            .map(|_| ())
    }

    /// Import up to 100 accounts; returns the ids Tencent failed to import.
    pub async fn multiaccount_import(
        &self,
        accounts: &[AccountItem],
    ) -> Result<Vec<String>, TencentError> {
        self.check_batch("im_open_login_svc/multiaccount_import", accounts.len())?;
        let r: MultiAccountImportResponse = self
            .call(
                "im_open_login_svc",
                "multiaccount_import",
                &MultiAccountImportRequest {
                    account_list: accounts.to_vec(),
                },
            )
            .await?;
        Ok(r.fail_accounts)
    }

    /// Which of up to 100 accounts exist.
    pub async fn account_check(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<AccountCheckResult>, TencentError> {
        self.check_batch("im_open_login_svc/account_check", user_ids.len())?;
        let req = AccountCheckRequest {
            check_item: user_ids
                .iter()
                .map(|u| UserIdItem { user_id: u.clone() })
                .collect(),
        };
        let r: AccountCheckResponse = self
            .call("im_open_login_svc", "account_check", &req)
            .await?;
        Ok(r.result_item)
    }

    // ---- profile ----

    pub async fn portrait_set(&self, req: &PortraitSetRequest) -> Result<(), TencentError> {
        self.call::<_, Empty>("profile", "portrait_set", req)
            .await
            .map(|_| ())
    }

    pub async fn portrait_get(
        &self,
        req: &PortraitGetRequest,
    ) -> Result<PortraitGetResponse, TencentError> {
        self.check_batch("profile/portrait_get", req.to_account.len())?;
        self.call("profile", "portrait_get", req).await
    }

    // ---- relationships ----

    pub async fn friend_import(
        &self,
        req: &FriendImportRequest,
    ) -> Result<FriendResultResponse, TencentError> {
        self.check_batch("sns/friend_import", req.add_friend_item.len())?;
        self.call("sns", "friend_import", req).await
    }

    pub async fn friend_add(
        &self,
        req: &FriendAddRequest,
    ) -> Result<FriendResultResponse, TencentError> {
        self.check_batch("sns/friend_add", req.add_friend_item.len())?;
        self.call("sns", "friend_add", req).await
    }

    pub async fn friend_delete(
        &self,
        req: &FriendDeleteRequest,
    ) -> Result<FriendResultResponse, TencentError> {
        self.check_batch("sns/friend_delete", req.to_account.len())?;
        self.call("sns", "friend_delete", req).await
    }

    pub async fn black_list_add(
        &self,
        req: &BlackListAddRequest,
    ) -> Result<FriendResultResponse, TencentError> {
        self.check_batch("sns/black_list_add", req.to_account.len())?;
        self.call("sns", "black_list_add", req).await
    }

    /// Which of `to` are on `from`'s friend list (and, with [`CheckType::Both`], which have
    /// `from` on theirs). At most 1000 accounts a request.
    pub async fn friend_check(
        &self,
        from: &str,
        to: &[String],
        check: CheckType,
    ) -> Result<FriendCheckResponse, TencentError> {
        self.check_batch("sns/friend_check", to.len())?;
        self.call(
            "sns",
            "friend_check",
            &FriendCheckRequest {
                from_account: from.into(),
                to_account: to.to_vec(),
                check_type: check,
            },
        )
        .await
    }

    // ---- C2C messages ----

    pub async fn importmsg(&self, req: &ImportMsgRequest) -> Result<(), TencentError> {
        self.call::<_, Empty>("openim", "importmsg", req)
            .await
            .map(|_| ())
    }

    pub async fn sendmsg(&self, req: &SendMsgRequest) -> Result<SendMsgResponse, TencentError> {
        self.call("openim", "sendmsg", req).await
    }

    pub async fn admin_getroammsg(
        &self,
        req: &AdminGetRoamMsgRequest,
    ) -> Result<AdminGetRoamMsgResponse, TencentError> {
        self.call("openim", "admin_getroammsg", req).await
    }

    /// One page of an account's conversations, the most recent first.
    pub async fn recentcontact_get_list(
        &self,
        req: &RecentContactRequest,
    ) -> Result<RecentContactResponse, TencentError> {
        self.call("recentcontact", "get_list", req).await
    }

    /// Recalls a one-to-one message by its MsgKey.
    pub async fn admin_msgwithdraw(&self, req: &MsgWithdrawRequest) -> Result<(), TencentError> {
        self.call::<_, Empty>("openim", "admin_msgwithdraw", req)
            .await
            .map(|_| ())
    }

    // ---- groups ----

    /// Returns the GroupId (the custom one, or the one Tencent assigned).
    pub async fn import_group(&self, req: &ImportGroupRequest) -> Result<String, TencentError> {
        let r: GroupIdResponse = self
            .call("group_open_http_svc", "import_group", req)
            .await?;
        Ok(r.group_id)
    }

    pub async fn import_group_member(
        &self,
        req: &ImportGroupMemberRequest,
    ) -> Result<Vec<MemberResult>, TencentError> {
        self.check_batch(
            "group_open_http_svc/import_group_member",
            req.member_list.len(),
        )?;
        let r: MemberListResponse = self
            .call("group_open_http_svc", "import_group_member", req)
            .await?;
        Ok(r.member_list)
    }

    pub async fn import_group_msg(
        &self,
        req: &ImportGroupMsgRequest,
    ) -> Result<Vec<ImportGroupMsgResult>, TencentError> {
        self.check_batch("group_open_http_svc/import_group_msg", req.msg_list.len())?;
        let r: ImportGroupMsgResponse = self
            .call("group_open_http_svc", "import_group_msg", req)
            .await?;
        Ok(r.import_msg_result)
    }

    pub async fn set_unread_msg_num(
        &self,
        req: &SetUnreadMsgNumRequest,
    ) -> Result<(), TencentError> {
        self.call::<_, Empty>("group_open_http_svc", "set_unread_msg_num", req)
            .await
            .map(|_| ())
    }

    pub async fn create_group(&self, req: &CreateGroupRequest) -> Result<String, TencentError> {
        if !req.member_list.is_empty() {
            self.check_batch("group_open_http_svc/create_group", req.member_list.len())?;
        }
        let r: GroupIdResponse = self
            .call("group_open_http_svc", "create_group", req)
            .await?;
        Ok(r.group_id)
    }

    pub async fn destroy_group(&self, group_id: &str) -> Result<(), TencentError> {
        let req = GroupIdRequest {
            group_id: group_id.into(),
        };
        self.call::<_, Empty>("group_open_http_svc", "destroy_group", &req)
            .await
            .map(|_| ())
    }

    pub async fn modify_group_base_info(
        &self,
        req: &ModifyGroupBaseInfoRequest,
    ) -> Result<(), TencentError> {
        self.call::<_, Empty>("group_open_http_svc", "modify_group_base_info", req)
            .await
            .map(|_| ())
    }

    pub async fn add_group_member(
        &self,
        req: &AddGroupMemberRequest,
    ) -> Result<Vec<MemberResult>, TencentError> {
        self.check_batch(
            "group_open_http_svc/add_group_member",
            req.member_list.len(),
        )?;
        let r: MemberListResponse = self
            .call("group_open_http_svc", "add_group_member", req)
            .await?;
        Ok(r.member_list)
    }

    pub async fn delete_group_member(
        &self,
        req: &DeleteGroupMemberRequest,
    ) -> Result<(), TencentError> {
        self.check_batch(
            "group_open_http_svc/delete_group_member",
            req.member_to_del_account.len(),
        )?;
        self.call::<_, Empty>("group_open_http_svc", "delete_group_member", req)
            .await
            .map(|_| ())
    }

    pub async fn send_group_msg(
        &self,
        req: &SendGroupMsgRequest,
    ) -> Result<SendGroupMsgResponse, TencentError> {
        self.call("group_open_http_svc", "send_group_msg", req)
            .await
    }

    /// Recalls group messages by their MsgSeq; one answer per seq.
    pub async fn group_msg_recall(
        &self,
        req: &GroupMsgRecallRequest,
    ) -> Result<GroupMsgRecallResponse, TencentError> {
        self.check_batch(
            "group_open_http_svc/group_msg_recall",
            req.msg_seq_list.len(),
        )?;
        self.call("group_open_http_svc", "group_msg_recall", req)
            .await
    }

    pub async fn group_msg_get_simple(
        &self,
        req: &GroupMsgGetSimpleRequest,
    ) -> Result<GroupMsgGetSimpleResponse, TencentError> {
        self.check_batch(
            "group_open_http_svc/group_msg_get_simple",
            req.req_msg_number as usize,
        )?;
        self.call("group_open_http_svc", "group_msg_get_simple", req)
            .await
    }
}

/// How [`with_retry`] retries: exponential backoff with jitter, only for errors whose class is
/// retryable (spec §1.6), and `rate_limit_min_delay` after a throttle. The decision is the
/// shared [`retry::Policy`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub rate_limit_min_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            rate_limit_min_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The shared policy with these numbers. `max_retries` bounds every retry, throttled or
    /// not, so [`with_retry`] passes the failures so far as both counts.
    fn shared(self) -> retry::Policy {
        retry::Policy {
            max_attempts: self.max_retries.saturating_add(1),
            max_throttles: self.max_retries,
            // The first retry waits between min_delay and twice that.
            base_delay: self.min_delay / 2,
            max_delay: self.max_delay,
            after_throttle: self.rate_limit_min_delay,
        }
    }
}

/// Run `f` until it succeeds, fails with a non-retryable error, or retries run out.
/// Only safe for idempotent requests: every import API is (Tencent dedupes them), sendmsg and
/// send_group_msg are within their dedupe windows when MsgRandom/Random stay the same.
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut f: F) -> Result<T, TencentError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, TencentError>>,
{
    let policy = policy.shared();
    let mut failures = 0;
    loop {
        let e = match f().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        failures += 1;
        match policy.decide(e.class(), failures, failures) {
            retry::Decision::Wait(d) => {
                tracing::warn!("Tencent IM: {e}; retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
            retry::Decision::GiveUp | retry::Decision::NeedsPerson => return Err(e),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "ActionStatus", default)]
    action_status: String,
    #[serde(rename = "ErrorCode", default)]
    error_code: i64,
    #[serde(rename = "ErrorInfo", default)]
    error_info: String,
}

/// Parse Tencent's envelope; a FAIL or non-zero code becomes `TencentError::Api`.
pub fn parse_envelope<Resp: DeserializeOwned>(
    api: &str,
    body: &[u8],
) -> Result<Resp, TencentError> {
    // An unknown answer is described by its size, never shown: the target may be something
    // other than Tencent IM, and its words are not the console's to repeat.
    let not_json = || TencentError::Decode {
        api: api.into(),
        message: format!(
            "the target answered HTTP 200 with a body that is not Tencent IM's JSON ({} bytes)",
            body.len()
        ),
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| not_json())?;
    let env: Envelope = serde_json::from_value(value.clone()).map_err(|_| not_json())?;
    if env.error_code != 0 || env.action_status != "OK" {
        return Err(TencentError::Api {
            api: api.into(),
            // A FAIL without a code should not read as success.
            code: if env.error_code == 0 {
                -1
            } else {
                env.error_code
            },
            info: words(&env.error_info),
        });
    }
    serde_json::from_value(value).map_err(|e| {
        // serde quotes the offending value, so the detail goes to the debug log only.
        tracing::debug!(api, error = %e, "Tencent IM answer has unexpected fields");
        TencentError::Decode {
            api: api.into(),
            message: format!(
                "the answer is Tencent IM's envelope but its fields are not the documented ones \
                 ({} bytes)",
                body.len()
            ),
        }
    })
}

/// The provider's `ErrorInfo`, kept to one short line.
fn words(info: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = info
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if info.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: &str) -> TencentConfig {
        TencentConfig {
            base_url: base.into(),
            sdkappid: 1_400_000_000,
            admin: "administrator".into(),
            secret: SecretString::from("very-secret-key".to_string()),
            usersig_ttl_secs: 86_400,
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            normalize_base_url("https://console.tim.qq.com/").unwrap(),
            "https://console.tim.qq.com"
        );
        assert!(normalize_base_url("http://127.0.0.1:9100").is_ok());
        assert!(normalize_base_url("http://localhost:9100").is_ok());
        assert!(normalize_base_url("http://[::1]:9100").is_ok());
        let e = normalize_base_url("http://console.tim.qq.com").unwrap_err();
        assert!(e.to_string().contains("plain http"));
        assert!(normalize_base_url("ftp://x").is_err());
        assert!(normalize_base_url("not a url").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = TencentClient::new(config("https://console.tim.qq.com")).unwrap();
        let d = format!("{c:?} {:?}", config("https://x"));
        assert!(!d.contains("very-secret-key"), "{d}");
        assert!(d.contains("redacted"));
    }

    #[test]
    fn usersig_is_cached_and_valid() {
        let c = TencentClient::new(config("https://console.tim.qq.com")).unwrap();
        let a = c.usersig(false);
        assert_eq!(a, c.usersig(false));
        usersig::verify(
            &a,
            1_400_000_000,
            "very-secret-key",
            "administrator",
            now_secs(),
        )
        .unwrap();
    }

    #[test]
    fn envelope_errors() {
        let e = parse_envelope::<Empty>(
            "x/y",
            br#"{"ActionStatus":"FAIL","ErrorCode":70009,"ErrorInfo":"bad","New":1}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some(70009));
        assert!(
            parse_envelope::<Empty>("x/y", br#"{"ActionStatus":"OK","ErrorCode":0,"X":[1]}"#)
                .is_ok()
        );
        assert!(matches!(
            parse_envelope::<Empty>("x/y", b"<html>"),
            Err(TencentError::Decode { .. })
        ));
    }
}
