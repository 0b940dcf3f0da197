//! Tencent IM as an import target: which API takes each phase, the request part of each
//! staged record (built only from the record, so a repeat is absorbed by Tencent's dedupe),
//! one request per batch, and reading group history back to see what a lost answer did.

use super::client::{
    AccountItem, BlackListAddRequest, CheckType, FriendImportRequest, GroupMsgGetSimpleRequest,
    GroupMsgItem, ImportFriendItem, ImportGroupMemberRequest, ImportGroupMsgRequest,
    ImportGroupRequest, ImportMember, ImportMsgRequest, PortraitSetRequest, SetUnreadMsgNumRequest,
    TencentClient,
};
use super::convert::{self, CanonicalGroup, CanonicalMessage};
use super::errors::{explain, TencentError};
use crate::import::plan::Phase;
use crate::import::target::{Failure, ImportTarget, Item, Outcome, Prepared, Support};
use serde_json::{json, Value};
use std::collections::HashSet;

pub struct TencentImport {
    client: TencentClient,
    sdkappid: u64,
}

impl TencentImport {
    pub fn new(client: TencentClient, sdkappid: u64) -> Self {
        TencentImport { client, sdkappid }
    }

    fn api(phase: Phase) -> Option<&'static str> {
        Some(match phase {
            Phase::Accounts => "im_open_login_svc/multiaccount_import",
            Phase::Profiles => "profile/portrait_set",
            Phase::Friends => "sns/friend_import",
            Phase::Blocks => "sns/black_list_add",
            Phase::C2cHistory => "openim/importmsg",
            Phase::Groups => "group_open_http_svc/import_group",
            Phase::Members => "group_open_http_svc/import_group_member",
            Phase::GroupHistory => "group_open_http_svc/import_group_msg",
            Phase::Unread => "group_open_http_svc/set_unread_msg_num",
            Phase::Conversations | Phase::GroupEvents => return None,
        })
    }
}

/// The account a friend or block part is about.
fn to_of(p: &Prepared) -> String {
    p.part
        .get("To_Account")
        .and_then(Value::as_str)
        .or_else(|| p.part.as_str())
        .unwrap_or_default()
        .to_string()
}

fn failure(e: TencentError) -> Failure {
    let ambiguous = match &e {
        TencentError::Transport { .. } | TencentError::Decode { .. } => true,
        TencentError::Http { status, .. } => *status >= 500,
        _ => false,
    };
    Failure {
        class: e.class(),
        code: e.code(),
        message: e.to_string(),
        ambiguous,
    }
}

/// A single-record request's answer: a refusal of this record is its failure; anything a
/// retry or a person can fix fails the request.
fn single<T>(r: Result<T, TencentError>) -> Result<Vec<Outcome>, Failure> {
    match r {
        Ok(_) => Ok(vec![Outcome::Sent(json!({}))]),
        Err(TencentError::Api { code, .. })
            if super::classify(code) == crate::providers::ErrorClass::Permanent =>
        {
            Ok(vec![code_failed(code)])
        }
        Err(e) => Err(failure(e)),
    }
}

/// A record the answer refused with `code`. Per-record answers are final in a run, even for
/// codes that are transient: the words say so.
fn code_failed(code: i64) -> Outcome {
    let next = if super::classify(code).is_retryable() {
        " This run does not send it again: Retry sends it again."
    } else {
        ""
    };
    Outcome::failed(
        Some(code),
        format!("Tencent IM error {code}: {}{next}", explain(code)),
    )
}

fn secs(ms: i64) -> u64 {
    (ms.max(0) / 1000) as u64
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn part<T: serde::Serialize>(item: usize, p: &T, sent: Value) -> Result<Prepared, Outcome> {
    Ok(Prepared {
        item,
        part: serde_json::to_value(p)
            .map_err(|e| Outcome::failed(None, format!("imshift: {e}")))?,
        sent,
    })
}

fn from_part<T: serde::de::DeserializeOwned>(p: &Prepared) -> Result<T, Failure> {
    serde_json::from_value(p.part.clone()).map_err(|e| Failure {
        class: crate::providers::ErrorClass::Permanent,
        code: None,
        message: format!("imshift could not rebuild a request part: {e}"),
        ambiguous: false,
    })
}

/// Tencent's AddSource must read `AddSource_Type_<letters>`.
fn add_source(source: Option<&str>) -> String {
    let s: String = source
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    format!(
        "AddSource_Type_{}",
        if s.is_empty() { "Import".into() } else { s }
    )
}

fn message(r: &Value) -> Result<CanonicalMessage, Outcome> {
    serde_json::from_value(r.clone())
        .map_err(|e| Outcome::failed(None, format!("the message does not read as canonical: {e}")))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TencentImport {
    /// Which of `to` are on `from`'s friend list, asked with friend_check (its batch at most a
    /// request).
    async fn on_friend_list(
        &self,
        from: &str,
        to: &[String],
    ) -> Result<HashSet<String>, TencentError> {
        let batch = self
            .client
            .limits()
            .batch("sns/friend_check")
            .unwrap_or(1000)
            .max(1);
        let mut found = HashSet::new();
        for chunk in to.chunks(batch) {
            let r = self
                .client
                .friend_check(from, chunk, CheckType::Single)
                .await?;
            found.extend(
                r.info_item
                    .into_iter()
                    .filter(|i| i.on_from_list())
                    .map(|i| i.to_account),
            );
        }
        Ok(found)
    }

    fn prepare_one(&self, phase: Phase, i: usize, item: &Item) -> Result<Prepared, Outcome> {
        let r = &item.record;
        let conv = |e: convert::ConvertError| Outcome::failed(None, e.0);
        match phase {
            Phase::Accounts => {
                let id = item.key.clone();
                convert::check_user_id(&id).map_err(|e| Outcome::failed(None, e))?;
                part(
                    i,
                    &AccountItem {
                        user_id: id,
                        nick: str_field(r, "nick").map(Into::into),
                        face_url: str_field(r, "avatar").map(Into::into),
                    },
                    json!({}),
                )
            }
            Phase::Profiles => {
                let tags = convert::profile_tags(r).map_err(|e| Outcome::failed(None, e))?;
                if tags.is_empty() {
                    return Err(Outcome::Skipped(
                        "nothing beyond the nick and avatar, which the accounts phase set".into(),
                    ));
                }
                part(
                    i,
                    &PortraitSetRequest {
                        from_account: item.key.clone(),
                        profile_item: tags,
                    },
                    json!({}),
                )
            }
            Phase::Friends => {
                let to = str_field(r, "friend").unwrap_or_default().to_string();
                let groups = r
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let added = r.get("added_at").and_then(Value::as_i64).map(secs);
                part(
                    i,
                    &ImportFriendItem {
                        to_account: to,
                        add_source: add_source(str_field(r, "source")),
                        remark: str_field(r, "remark").map(Into::into),
                        remark_time: None,
                        group_name: groups,
                        add_wording: None,
                        add_time: added.map(|s| s.min(u32::MAX as u64) as u32),
                        custom_item: vec![],
                    },
                    json!({}),
                )
            }
            Phase::Blocks => part(
                i,
                &json!(str_field(r, "blocked").unwrap_or_default()),
                json!({}),
            ),
            Phase::C2cHistory => {
                let m = message(r)?;
                let req = convert::import_c2c(&m, false).map_err(conv)?;
                let sent = json!({"MsgSeq": req.msg_seq, "MsgRandom": req.msg_random, "MsgTimeStamp": req.msg_time_stamp});
                part(i, &req, sent)
            }
            Phase::Groups => {
                let mut g = r.clone();
                // Tencent requires a name; a dump may leave it out.
                if str_field(&g, "name").is_none() {
                    g["name"] = json!(item.key);
                }
                if str_field(&g, "type").is_none() {
                    g["type"] = json!("private");
                }
                let mut g: CanonicalGroup = serde_json::from_value(g).map_err(|e| {
                    Outcome::failed(None, format!("the group does not read as canonical: {e}"))
                })?;
                // History must come after the group's creation: create it before its first
                // message and its first member.
                if let Some(first) = item.context.get("first_activity").and_then(Value::as_i64) {
                    let before = first - 1000;
                    g.created_at = Some(g.created_at.map_or(before, |c| c.min(before)));
                }
                let mut req: ImportGroupRequest = convert::import_group(&g).map_err(conv)?;
                if req.create_time.is_none() {
                    req.create_time = Some(now_secs().saturating_sub(1));
                }
                let sent = json!({"CreateTime": req.create_time});
                part(i, &req, sent)
            }
            Phase::Members => {
                let role = str_field(r, "role").unwrap_or("member");
                let joined = r.get("joined_at").and_then(Value::as_i64);
                match convert::import_member(
                    str_field(r, "account").unwrap_or_default(),
                    role,
                    joined,
                    None,
                )
                .map_err(conv)?
                {
                    Some(m) => part(i, &m, json!({})),
                    None => Err(Outcome::Skipped(
                        "the owner joined with the group (import_group)".into(),
                    )),
                }
            }
            Phase::Unread => part(
                i,
                &SetUnreadMsgNumRequest {
                    group_id: item.key.clone(),
                    member_account: str_field(r, "account").unwrap_or_default().into(),
                    unread_msg_num: r
                        .get("unread")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .min(u32::MAX as u64) as u32,
                },
                json!({}),
            ),
            Phase::GroupHistory | Phase::Conversations | Phase::GroupEvents => {
                Err(Outcome::Skipped("handled elsewhere".into()))
            }
        }
    }

    /// Group history: one group's messages in time order. Tencent wants strictly increasing
    /// send times in seconds after the group's creation, so each message takes
    /// max(its own second, the previous one's + 1, creation + 1): the order survives, and
    /// messages that shared a second move forward by as little as needed.
    fn prepare_history(&self, items: &[Item]) -> Vec<Result<Prepared, Outcome>> {
        let now = now_secs();
        let mut last: Option<u64> = None;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let Some(created) = item.context.get("create_time").and_then(Value::as_u64) else {
                    return Err(Outcome::failed(
                        None,
                        format!("the group {} was not imported (see the Groups phase)", item.key),
                    ));
                };
                let m = message(&item.record)?;
                let own = secs(m.sent_at);
                let t = own.max(created + 1).max(last.map_or(0, |l| l + 1));
                last = Some(t);
                if t >= now {
                    return Err(Outcome::failed(
                        Some(10004),
                        format!("its send time moved to {t} to keep the group's order, which is not in the past yet; Tencent refuses times from the future (10004)"),
                    ));
                }
                let mut it: GroupMsgItem = convert::import_group_msg_item(&m)
                    .map_err(|e| Outcome::failed(None, e.0))?;
                it.send_time = t;
                let sent = json!({"SendTime": t, "Random": it.random, "moved_secs": t - own.min(t),
                                  "made_for": crate::import::id_map::group_message_key(&item.key, &m.id)});
                part(i, &it, sent)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl ImportTarget for TencentImport {
    fn rate_key(&self, api: &str) -> String {
        format!("tencent:{}:{api}", self.sdkappid)
    }

    fn support(&self, phase: Phase) -> Support {
        match Self::api(phase) {
            Some(api) => {
                let limits = self.client.limits();
                Support::Api {
                    api,
                    batch: limits.batch(api).unwrap_or(1),
                    qps: limits.qps(api).unwrap_or(1) as f64,
                }
            }
            None if phase == Phase::Conversations => Support::Skip(
                "Tencent IM rebuilds each account's recent conversations from the imported history; pinning and per-conversation unread counts have no import API".into(),
            ),
            None => Support::Skip(
                "Tencent IM has no API to import group tips; the group's state after these events is what the groups and members phases import".into(),
            ),
        }
    }

    fn prepare(&self, phase: Phase, items: &[Item]) -> Vec<Result<Prepared, Outcome>> {
        if phase == Phase::GroupHistory {
            return self.prepare_history(items);
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.prepare_one(phase, i, item))
            .collect()
    }

    async fn send(
        &self,
        phase: Phase,
        key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Outcome>, Failure> {
        let c = &self.client;
        match phase {
            Phase::Accounts => {
                let items: Vec<AccountItem> = parts
                    .iter()
                    .map(|p| from_part(p))
                    .collect::<Result<_, _>>()?;
                let fails = c.multiaccount_import(&items).await.map_err(failure)?;
                Ok(items
                    .iter()
                    .map(|a| {
                        if fails.contains(&a.user_id) {
                            Outcome::failed(None, "Tencent IM listed this account in FailAccounts (not imported); retry it")
                        } else {
                            Outcome::Sent(json!({}))
                        }
                    })
                    .collect())
            }
            Phase::Profiles => {
                let req: PortraitSetRequest = from_part(parts[0])?;
                single(c.portrait_set(&req).await)
            }
            Phase::Friends | Phase::Blocks => {
                let r = if phase == Phase::Friends {
                    let items: Vec<ImportFriendItem> = parts
                        .iter()
                        .map(|p| from_part(p))
                        .collect::<Result<_, _>>()?;
                    c.friend_import(&FriendImportRequest {
                        from_account: key.into(),
                        add_friend_item: items,
                    })
                    .await
                } else {
                    let to: Vec<String> = parts
                        .iter()
                        .map(|p| from_part(p))
                        .collect::<Result<_, _>>()?;
                    c.black_list_add(&BlackListAddRequest {
                        from_account: key.into(),
                        to_account: to,
                    })
                    .await
                }
                .map_err(failure)?;
                // friend_import answers 30001 both for a bad parameter and for a friend already
                // on the list (a repeat after a lost answer or a crash): friend_check tells
                // which. If the check itself fails, the whole request goes again.
                let refused: Vec<String> = r
                    .result_item
                    .iter()
                    .filter(|x| x.result_code == 30001)
                    .map(|x| x.to_account.clone())
                    .collect();
                let already = if phase == Phase::Friends && !refused.is_empty() {
                    self.on_friend_list(key, &refused).await.map_err(failure)?
                } else {
                    HashSet::new()
                };
                Ok(parts
                    .iter()
                    .map(|p| {
                        let to = to_of(p);
                        match r.result_item.iter().find(|x| x.to_account == to) {
                            Some(x) if x.result_code == 0 => Outcome::Sent(json!({})),
                            Some(x) if x.result_code == 30001 && already.contains(&to) => {
                                Outcome::Sent(json!({"note": "already on the friend list on the target (30001, checked with friend_check)"}))
                            }
                            Some(x) if x.result_code == 30001 && phase == Phase::Friends => Outcome::failed(
                                Some(30001),
                                "Tencent IM error 30001: a friend request parameter is invalid; friend_check found the friend is not on the list, so it is not a repeat",
                            ),
                            Some(x) => code_failed(x.result_code),
                            None if r.fail_account.contains(&to) => {
                                Outcome::failed(None, "Tencent IM listed it in Fail_Account")
                            }
                            None => Outcome::Sent(json!({})),
                        }
                    })
                    .collect())
            }
            Phase::C2cHistory => {
                let req: ImportMsgRequest = from_part(parts[0])?;
                single(c.importmsg(&req).await)
            }
            Phase::Groups => {
                let req: ImportGroupRequest = from_part(parts[0])?;
                match c.import_group(&req).await {
                    // Imported by an earlier attempt whose answer was lost.
                    Err(TencentError::Api { code: 10021, .. }) => Ok(vec![Outcome::Sent(
                        json!({"note": "the group id was already taken on the target (10021): kept as imported"}),
                    )]),
                    other => single(other),
                }
            }
            Phase::Members => {
                let list: Vec<ImportMember> = parts
                    .iter()
                    .map(|p| from_part(p))
                    .collect::<Result<_, _>>()?;
                let results = c
                    .import_group_member(&ImportGroupMemberRequest {
                        group_id: key.into(),
                        member_list: list.clone(),
                    })
                    .await
                    .map_err(failure)?;
                Ok(list
                    .iter()
                    .map(|m| match results.iter().find(|r| r.member_account == m.member_account) {
                        Some(r) if r.result == 1 => Outcome::Sent(json!({})),
                        Some(r) if r.result == 2 => Outcome::Sent(json!({"note": "already a member"})),
                        _ => Outcome::failed(None, "Tencent IM did not add this member (Result 0): its JoinTime must be after the group's creation and before now, and the account must exist"),
                    })
                    .collect())
            }
            Phase::GroupHistory => {
                let list: Vec<GroupMsgItem> = parts
                    .iter()
                    .map(|p| from_part(p))
                    .collect::<Result<_, _>>()?;
                let results = c
                    .import_group_msg(&ImportGroupMsgRequest {
                        group_id: key.into(),
                        recent_contact_flag: Some(1),
                        msg_list: list,
                    })
                    .await
                    .map_err(failure)?;
                Ok((0..parts.len())
                    .map(|i| match results.get(i) {
                        // The seq Tencent gave goes to the id map: what a recall from the old
                        // system during coexistence needs to find the message.
                        Some(r) if r.result == 0 => Outcome::Sent(json!({
                            "MsgSeq": r.msg_seq,
                            "made": crate::providers::tencent::sync::group_key(key, r.msg_seq),
                            "made_for": parts[i].sent.get("made_for"),
                        })),
                        Some(r) => code_failed(r.result),
                        None => Outcome::failed(None, "Tencent IM gave no result for this message"),
                    })
                    .collect())
            }
            Phase::Unread => {
                let req: SetUnreadMsgNumRequest = from_part(parts[0])?;
                single(c.set_unread_msg_num(&req).await)
            }
            Phase::Conversations | Phase::GroupEvents => Ok(parts
                .iter()
                .map(|_| Outcome::Skipped("not imported on Tencent IM".into()))
                .collect()),
        }
    }

    async fn reconcile(
        &self,
        phase: Phase,
        key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Option<Outcome>>, Failure> {
        if phase == Phase::Friends {
            // A repeat would be refused with 30001: ask which friends are already there.
            let to: Vec<String> = parts.iter().map(|p| to_of(p)).collect();
            let found = self.on_friend_list(key, &to).await.map_err(failure)?;
            return Ok(to
                .iter()
                .map(|t| {
                    found.contains(t).then(|| {
                        Outcome::Sent(json!({"note": "found on the target's friend list after an uncertain answer (friend_check)"}))
                    })
                })
                .collect());
        }
        if phase != Phase::GroupHistory {
            // Every other import is idempotent on Tencent: a repeat changes nothing.
            return Ok(vec![None; parts.len()]);
        }
        // Tencent drops a repeated Random only within 5 minutes: after a crash, look at the
        // group's newest messages to see which of these already arrived.
        let page = self
            .client
            .group_msg_get_simple(&GroupMsgGetSimpleRequest {
                group_id: key.into(),
                req_msg_number: 20,
                req_msg_seq: None,
            })
            .await;
        let page = match page {
            Ok(p) => p,
            // No such group yet: nothing arrived.
            Err(TencentError::Api { code: 10010, .. }) => return Ok(vec![None; parts.len()]),
            Err(e) => return Err(failure(e)),
        };
        Ok(parts
            .iter()
            .map(|p| {
                let random = p.sent.get("Random").and_then(Value::as_u64);
                let time = p.sent.get("SendTime").and_then(Value::as_u64);
                page.rsp_msg_list
                    .iter()
                    .find(|m| Some(m.msg_random) == random && Some(m.msg_time_stamp) == time)
                    .map(|m| Outcome::Sent(json!({"MsgSeq": m.msg_seq, "note": "found on the target after a lost answer"})))
            })
            .collect())
    }
}
