//! The Tencent IM REST client: one generic `call` (envelope, UserSig, errors) and thin typed
//! wrappers per API. Field names follow the spec exactly (serde renames).

use super::errors::TencentError;
use super::usersig;
use super::Limits;
use crate::providers::outbound;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// retryable (spec §1.6), and never faster than `rate_limit_min_delay` after a throttle.
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

/// Run `f` until it succeeds, fails with a non-retryable error, or retries run out.
/// Only safe for idempotent requests: every import API is (Tencent dedupes them), sendmsg and
/// send_group_msg are within their dedupe windows when MsgRandom/Random stay the same.
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, f: F) -> Result<T, TencentError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, TencentError>>,
{
    use crate::providers::ErrorClass;
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    f.retry(backoff)
        .when(|e: &TencentError| e.class().is_retryable())
        .adjust(
            move |e: &TencentError, d: Option<Duration>| match (e.class(), d) {
                (ErrorClass::RateLimited, Some(d)) => Some(d.max(policy.rate_limit_min_delay)),
                (_, d) => d,
            },
        )
        .notify(|e: &TencentError, d: Duration| {
            tracing::warn!("Tencent IM: {e}; retrying in {d:?}");
        })
        .await
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

/// Response with nothing beyond the envelope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Empty {}

/// One element of `MsgBody`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsgElement {
    #[serde(rename = "MsgType")]
    pub msg_type: String,
    #[serde(rename = "MsgContent")]
    pub msg_content: Value,
}

impl MsgElement {
    pub fn text(text: &str) -> Self {
        MsgElement {
            msg_type: "TIMTextElem".into(),
            msg_content: serde_json::json!({ "Text": text }),
        }
    }
}

/// Suppress the app's message callbacks for one message (spec §4.4).
pub const FORBID_BEFORE_SEND: &str = "ForbidBeforeSendMsgCallback";
pub const FORBID_AFTER_SEND: &str = "ForbidAfterSendMsgCallback";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountImportRequest {
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "Nick", skip_serializing_if = "Option::is_none", default)]
    pub nick: Option<String>,
    #[serde(rename = "FaceUrl", skip_serializing_if = "Option::is_none", default)]
    pub face_url: Option<String>,
}

/// An entry of multiaccount_import's `AccountList` form.
pub type AccountItem = AccountImportRequest;

#[derive(Debug, Clone, Serialize)]
struct MultiAccountImportRequest {
    #[serde(rename = "AccountList")]
    account_list: Vec<AccountItem>,
}

#[derive(Debug, Clone, Deserialize)]
struct MultiAccountImportResponse {
    #[serde(rename = "FailAccounts", default)]
    fail_accounts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserIdItem {
    #[serde(rename = "UserID")]
    user_id: String,
}

#[derive(Debug, Clone, Serialize)]
struct AccountCheckRequest {
    #[serde(rename = "CheckItem")]
    check_item: Vec<UserIdItem>,
}

#[derive(Debug, Clone, Deserialize)]
struct AccountCheckResponse {
    #[serde(rename = "ResultItem", default)]
    result_item: Vec<AccountCheckResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    Imported,
    NotImported,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountCheckResult {
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "ResultCode", default)]
    pub result_code: i64,
    #[serde(rename = "ResultInfo", default)]
    pub result_info: String,
    #[serde(rename = "AccountStatus")]
    pub account_status: AccountStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagValue {
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "Value")]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortraitSetRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "ProfileItem")]
    pub profile_item: Vec<TagValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortraitGetRequest {
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
    #[serde(rename = "TagList")]
    pub tag_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfileItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ProfileItem", default)]
    pub profile_item: Vec<TagValue>,
    #[serde(rename = "ResultCode", default)]
    pub result_code: i64,
    #[serde(rename = "ResultInfo", default)]
    pub result_info: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortraitGetResponse {
    #[serde(rename = "UserProfileItem", default)]
    pub user_profile_item: Vec<UserProfileItem>,
    #[serde(rename = "Fail_Account", default)]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportFriendItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "AddSource")]
    pub add_source: String,
    #[serde(rename = "Remark", skip_serializing_if = "Option::is_none", default)]
    pub remark: Option<String>,
    #[serde(
        rename = "RemarkTime",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub remark_time: Option<u32>,
    #[serde(rename = "GroupName", skip_serializing_if = "Vec::is_empty", default)]
    pub group_name: Vec<String>,
    #[serde(
        rename = "AddWording",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub add_wording: Option<String>,
    #[serde(rename = "AddTime", skip_serializing_if = "Option::is_none", default)]
    pub add_time: Option<u32>,
    #[serde(rename = "CustomItem", skip_serializing_if = "Vec::is_empty", default)]
    pub custom_item: Vec<TagValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendImportRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "AddFriendItem")]
    pub add_friend_item: Vec<ImportFriendItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddFriendItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "AddSource")]
    pub add_source: String,
    #[serde(rename = "Remark", skip_serializing_if = "Option::is_none", default)]
    pub remark: Option<String>,
    /// One group only here (friend_import takes a list).
    #[serde(rename = "GroupName", skip_serializing_if = "Option::is_none", default)]
    pub group_name: Option<String>,
    #[serde(
        rename = "AddWording",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub add_wording: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendAddRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "AddFriendItem")]
    pub add_friend_item: Vec<AddFriendItem>,
    /// `Add_Type_Single` or `Add_Type_Both` (default).
    #[serde(rename = "AddType", skip_serializing_if = "Option::is_none", default)]
    pub add_type: Option<String>,
    #[serde(
        rename = "ForceAddFlags",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub force_add_flags: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlackListAddRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendResultItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ResultCode", default)]
    pub result_code: i64,
    #[serde(rename = "ResultInfo", default)]
    pub result_info: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendResultResponse {
    #[serde(rename = "ResultItem", default)]
    pub result_item: Vec<FriendResultItem>,
    #[serde(rename = "Fail_Account", default)]
    pub fail_account: Vec<String>,
}

/// friend_check's `CheckType`: one direction (is B on A's list) or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckType {
    #[serde(rename = "CheckResult_Type_Single")]
    Single,
    #[serde(rename = "CheckResult_Type_Both")]
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendCheckRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
    #[serde(rename = "CheckType")]
    pub check_type: CheckType,
}

/// `Relation` of a friend_check item.
pub const RELATION_A_WITH_B: &str = "CheckResult_Type_AWithB";
pub const RELATION_BOTH_WAY: &str = "CheckResult_Type_BothWay";
pub const RELATION_B_WITH_A: &str = "CheckResult_Type_BWithA";
pub const RELATION_NONE: &str = "CheckResult_Type_NoRelation";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendCheckItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "Relation", default)]
    pub relation: String,
    #[serde(rename = "ResultCode", default)]
    pub result_code: i64,
    #[serde(rename = "ResultInfo", default)]
    pub result_info: String,
}

impl FriendCheckItem {
    /// B (`To_Account`) is on A's (`From_Account`'s) friend list.
    pub fn on_from_list(&self) -> bool {
        self.result_code == 0
            && (self.relation == RELATION_A_WITH_B || self.relation == RELATION_BOTH_WAY)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendCheckResponse {
    #[serde(rename = "InfoItem", default)]
    pub info_item: Vec<FriendCheckItem>,
    #[serde(rename = "Fail_Account", default)]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportMsgRequest {
    /// 2 = history, 5 = live cut-over.
    #[serde(rename = "SyncFromOldSystem")]
    pub sync_from_old_system: u8,
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgSeq", skip_serializing_if = "Option::is_none", default)]
    pub msg_seq: Option<u32>,
    #[serde(rename = "MsgRandom")]
    pub msg_random: u32,
    #[serde(rename = "MsgTimeStamp")]
    pub msg_time_stamp: u32,
    #[serde(rename = "MsgBody")]
    pub msg_body: Vec<MsgElement>,
    #[serde(
        rename = "CloudCustomData",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cloud_custom_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMsgRequest {
    /// 1 = sync to the sender's devices, 2 = do not.
    #[serde(
        rename = "SyncOtherMachine",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub sync_other_machine: Option<u8>,
    /// Omitted = the admin sends.
    #[serde(
        rename = "From_Account",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub from_account: Option<String>,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(
        rename = "MsgLifeTime",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub msg_life_time: Option<u32>,
    #[serde(rename = "MsgSeq", skip_serializing_if = "Option::is_none", default)]
    pub msg_seq: Option<u32>,
    #[serde(rename = "MsgRandom")]
    pub msg_random: u32,
    #[serde(
        rename = "ForbidCallbackControl",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub forbid_callback_control: Vec<String>,
    #[serde(
        rename = "SendMsgControl",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub send_msg_control: Vec<String>,
    #[serde(rename = "MsgBody")]
    pub msg_body: Vec<MsgElement>,
    #[serde(
        rename = "CloudCustomData",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cloud_custom_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMsgResponse {
    #[serde(rename = "MsgTime", default)]
    pub msg_time: u64,
    #[serde(rename = "MsgKey", default)]
    pub msg_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminGetRoamMsgRequest {
    #[serde(rename = "Operator_Account")]
    pub operator_account: String,
    #[serde(rename = "Peer_Account")]
    pub peer_account: String,
    #[serde(rename = "MaxCnt")]
    pub max_cnt: u32,
    #[serde(rename = "MinTime")]
    pub min_time: u64,
    #[serde(rename = "MaxTime")]
    pub max_time: u64,
    #[serde(
        rename = "LastMsgKey",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub last_msg_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoamMsg {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgSeq", default)]
    pub msg_seq: u64,
    #[serde(rename = "MsgRandom", default)]
    pub msg_random: u64,
    #[serde(rename = "MsgTimeStamp", default)]
    pub msg_time_stamp: u64,
    #[serde(rename = "MsgFlagBits", default)]
    pub msg_flag_bits: u64,
    #[serde(rename = "MsgKey", default)]
    pub msg_key: String,
    #[serde(rename = "MsgBody", default)]
    pub msg_body: Vec<MsgElement>,
    #[serde(rename = "CloudCustomData", default)]
    pub cloud_custom_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminGetRoamMsgResponse {
    /// 1 = no more, 0 = continue with `MaxTime = LastMsgTime` and `LastMsgKey`.
    #[serde(rename = "Complete", default)]
    pub complete: u8,
    #[serde(rename = "MsgCnt", default)]
    pub msg_cnt: u32,
    #[serde(rename = "LastMsgTime", default)]
    pub last_msg_time: u64,
    #[serde(rename = "LastMsgKey", default)]
    pub last_msg_key: String,
    #[serde(rename = "MsgList", default)]
    pub msg_list: Vec<RoamMsg>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// The fields `import_group` and `create_group` share.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupBase {
    #[serde(
        rename = "Owner_Account",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub owner_account: Option<String>,
    #[serde(rename = "Type")]
    pub group_type: String,
    #[serde(rename = "GroupId", skip_serializing_if = "Option::is_none", default)]
    pub group_id: Option<String>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(
        rename = "Introduction",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub introduction: Option<String>,
    #[serde(
        rename = "Notification",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub notification: Option<String>,
    #[serde(rename = "FaceUrl", skip_serializing_if = "Option::is_none", default)]
    pub face_url: Option<String>,
    #[serde(
        rename = "MaxMemberCount",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub max_member_count: Option<u32>,
    #[serde(
        rename = "ApplyJoinOption",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub apply_join_option: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImportGroupRequest {
    #[serde(flatten)]
    pub base: GroupBase,
    #[serde(
        rename = "CreateTime",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub create_time: Option<u64>,
    #[serde(
        rename = "AppDefinedData",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub app_defined_data: Vec<KeyValue>,
}

#[derive(Debug, Clone, Deserialize)]
struct GroupIdResponse {
    #[serde(rename = "GroupId")]
    group_id: String,
}

#[derive(Debug, Clone, Serialize)]
struct GroupIdRequest {
    #[serde(rename = "GroupId")]
    group_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportMember {
    #[serde(rename = "Member_Account")]
    pub member_account: String,
    /// Only `Admin` is accepted; omit for a plain member.
    #[serde(rename = "Role", skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    #[serde(rename = "JoinTime", skip_serializing_if = "Option::is_none", default)]
    pub join_time: Option<u64>,
    #[serde(
        rename = "UnreadMsgNum",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub unread_msg_num: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportGroupMemberRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "MemberList")]
    pub member_list: Vec<ImportMember>,
}

/// `Result`: 0 failed, 1 added, 2 already a member (3 = invitation pending, add only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberResult {
    #[serde(rename = "Member_Account")]
    pub member_account: String,
    #[serde(rename = "Result")]
    pub result: u8,
}

#[derive(Debug, Clone, Deserialize)]
struct MemberListResponse {
    #[serde(rename = "MemberList", default)]
    member_list: Vec<MemberResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsgItem {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "SendTime")]
    pub send_time: u64,
    #[serde(rename = "Random", skip_serializing_if = "Option::is_none", default)]
    pub random: Option<u32>,
    #[serde(rename = "MsgBody")]
    pub msg_body: Vec<MsgElement>,
    #[serde(
        rename = "CloudCustomData",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cloud_custom_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportGroupMsgRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(
        rename = "RecentContactFlag",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub recent_contact_flag: Option<u8>,
    #[serde(rename = "MsgList")]
    pub msg_list: Vec<GroupMsgItem>,
}

/// `Result`: 0 ok, 10004 bad send time, 80001 filtered, 80002 too large.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportGroupMsgResult {
    #[serde(rename = "MsgSeq", default)]
    pub msg_seq: u64,
    #[serde(rename = "MsgTime", default)]
    pub msg_time: u64,
    #[serde(rename = "Result", default)]
    pub result: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct ImportGroupMsgResponse {
    #[serde(rename = "ImportMsgResult", default)]
    import_msg_result: Vec<ImportGroupMsgResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetUnreadMsgNumRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Member_Account")]
    pub member_account: String,
    #[serde(rename = "UnreadMsgNum")]
    pub unread_msg_num: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateMember {
    #[serde(rename = "Member_Account")]
    pub member_account: String,
    #[serde(rename = "Role", skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateGroupRequest {
    #[serde(flatten)]
    pub base: GroupBase,
    #[serde(rename = "MemberList", skip_serializing_if = "Vec::is_empty", default)]
    pub member_list: Vec<CreateMember>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModifyGroupBaseInfoRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(
        rename = "Introduction",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub introduction: Option<String>,
    #[serde(
        rename = "Notification",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub notification: Option<String>,
    #[serde(rename = "FaceUrl", skip_serializing_if = "Option::is_none", default)]
    pub face_url: Option<String>,
    #[serde(
        rename = "MaxMemberNum",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub max_member_num: Option<u32>,
    #[serde(
        rename = "ApplyJoinOption",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub apply_join_option: Option<String>,
    #[serde(
        rename = "MuteAllMember",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub mute_all_member: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberAccountItem {
    #[serde(rename = "Member_Account")]
    pub member_account: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddGroupMemberRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Silence", skip_serializing_if = "Option::is_none", default)]
    pub silence: Option<u8>,
    #[serde(rename = "MemberList")]
    pub member_list: Vec<MemberAccountItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteGroupMemberRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Silence", skip_serializing_if = "Option::is_none", default)]
    pub silence: Option<u8>,
    #[serde(rename = "Reason", skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(rename = "MemberToDel_Account")]
    pub member_to_del_account: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendGroupMsgRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(
        rename = "From_Account",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub from_account: Option<String>,
    #[serde(rename = "Random")]
    pub random: u32,
    #[serde(rename = "MsgBody")]
    pub msg_body: Vec<MsgElement>,
    #[serde(
        rename = "CloudCustomData",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cloud_custom_data: Option<String>,
    #[serde(
        rename = "OnlineOnlyFlag",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub online_only_flag: Option<u8>,
    #[serde(
        rename = "ForbidCallbackControl",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub forbid_callback_control: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendGroupMsgResponse {
    #[serde(rename = "MsgTime", default)]
    pub msg_time: u64,
    #[serde(rename = "MsgSeq", default)]
    pub msg_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsgGetSimpleRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "ReqMsgNumber")]
    pub req_msg_number: u32,
    /// Omit for the newest; next page is `min(returned MsgSeq) - 1`.
    #[serde(rename = "ReqMsgSeq", skip_serializing_if = "Option::is_none", default)]
    pub req_msg_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsg {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "IsPlaceMsg", default)]
    pub is_place_msg: u8,
    #[serde(rename = "MsgRandom", default)]
    pub msg_random: u64,
    #[serde(rename = "MsgSeq")]
    pub msg_seq: u64,
    #[serde(rename = "MsgTimeStamp", default)]
    pub msg_time_stamp: u64,
    #[serde(rename = "MsgBody", default)]
    pub msg_body: Vec<MsgElement>,
    #[serde(rename = "CloudCustomData", default)]
    pub cloud_custom_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsgGetSimpleResponse {
    #[serde(rename = "GroupId", default)]
    pub group_id: String,
    /// 1 = all returned, 0 = more remain, 2 = more remain but expired.
    #[serde(rename = "IsFinished", default)]
    pub is_finished: u8,
    #[serde(rename = "RspMsgList", default)]
    pub rsp_msg_list: Vec<GroupMsg>,
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
