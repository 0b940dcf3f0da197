//! Coexistence sync with Tencent IM: its callbacks in the relay protocol's canonical words,
//! and the sink that applies the other side's events through the REST API.
//!
//! Echo guards, stacked (spec §4): one-to-one messages go in through `importmsg` with
//! `SyncFromOldSystem: 5`, which fires no callback; group messages through `send_group_msg`
//! with `ForbidCallbackControl`; every message carries imshift's tag in `CloudCustomData`;
//! and the ids Tencent answers go to the id map. Randoms and sequence numbers derive from the
//! source event, so a resend within Tencent's dedupe window lands once.

use super::callbacks::CallbackEvent as E;
use super::client::{
    AccountImportRequest, AddGroupMemberRequest, CreateGroupRequest, CreateMember,
    DeleteGroupMemberRequest, GroupBase, MemberAccountItem, ModifyGroupBaseInfoRequest,
    SendGroupMsgRequest, SendMsgRequest, TencentClient,
};
use super::client::{
    AddFriendItem, CheckType, FriendAddRequest, FriendDeleteRequest, FriendResultResponse,
    GroupMsgRecallRequest, MsgSeqItem, MsgWithdrawRequest, PortraitSetRequest,
};
use super::client::{AdminGetRoamMsgRequest, GroupMsgGetSimpleRequest, RecentContactRequest};
use super::convert::{self, CanonicalMessage, MessageIdentity};
use super::TencentError;
use crate::providers::{
    ConversationsPage, Delivered, EchoGuards, ErrorClass, InboundEvent, Original, ReadBack,
    ReadPage, SyncEvent, SyncSink, ORIGIN,
};
use serde_json::{json, Map, Value};

/// The key imshift's tag takes in a message's `CloudCustomData` (a JSON object).
const TAG: &str = "imshift";

/// `CloudCustomData` with imshift's tag added: kept as the app's own data otherwise. Data that
/// is not a JSON object cannot take a tag and goes as it is (the other guards still hold).
fn tagged(ext: Option<&str>, key: &str) -> Option<String> {
    match ext.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(json!({ TAG: key }).to_string()),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(mut o)) => {
                o.insert(TAG.into(), key.into());
                Some(Value::Object(o).to_string())
            }
            _ => Some(s.to_string()),
        },
    }
}

/// (the app's own custom data, whether imshift's tag was on it).
fn untagged(cloud: Option<&str>) -> (Option<String>, bool) {
    let Some(s) = cloud.map(str::trim).filter(|s| !s.is_empty()) else {
        return (None, false);
    };
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(mut o)) if o.contains_key(TAG) => {
            o.remove(TAG);
            let rest = (!o.is_empty()).then(|| Value::Object(o).to_string());
            (rest, true)
        }
        _ => (Some(s.to_string()), false),
    }
}

/// Tencent `MsgBody` → a canonical body. One element of a known type maps field by field;
/// anything else travels whole as a custom body, so nothing is dropped.
pub fn canonical_body(elems: &[Value]) -> Value {
    let whole = || json!({"type": "custom", "data": elems, "desc": "Tencent IM MsgBody"});
    let [e] = elems else { return whole() };
    let c = &e["MsgContent"];
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let n = |k: &str| c.get(k).and_then(Value::as_u64);
    match e.get("MsgType").and_then(Value::as_str).unwrap_or_default() {
        "TIMTextElem" => json!({"type": "text", "text": s("Text").unwrap_or_default()}),
        "TIMImageElem" => {
            let info = &c["ImageInfoArray"][0];
            json!({"type": "image", "url": info["URL"], "size": info["Size"],
                   "width": info["Width"], "height": info["Height"]})
        }
        "TIMSoundElem" => json!({"type": "audio", "url": s("Url"), "size": n("Size"),
                                 "duration_ms": n("Second").map(|x| x * 1000)}),
        "TIMVideoFileElem" => json!({"type": "video", "url": s("VideoUrl"), "size": n("VideoSize"),
                                     "duration_ms": n("VideoSecond").map(|x| x * 1000),
                                     "format": s("VideoFormat"), "thumb_url": s("ThumbUrl")}),
        "TIMFileElem" => json!({"type": "file", "url": s("Url"), "name": s("FileName"),
                                "size": n("FileSize")}),
        "TIMLocationElem" => json!({"type": "location", "lat": c["Latitude"],
                                    "lng": c["Longitude"], "title": s("Desc")}),
        "TIMFaceElem" => json!({"type": "face", "index": c["Index"], "data": s("Data")}),
        "TIMCustomElem" => json!({"type": "custom", "data": s("Data"), "desc": s("Desc")}),
        _ => whole(),
    }
}

/// Canonical group type from Tencent's.
fn group_type(t: &str) -> &'static str {
    match t {
        "Public" => "public",
        "ChatRoom" | "Meeting" => "chatroom",
        "AVChatRoom" => "broadcast",
        _ => "private",
    }
}

/// A callback's data in canonical words, and whether imshift's tag was on it.
pub fn canonical(event: &E) -> Option<(Value, bool)> {
    let accounts = |l: &[super::callbacks::MemberAccount]| {
        l.iter()
            .map(|m| m.member_account.clone())
            .collect::<Vec<_>>()
    };
    Some(match event {
        E::C2cAfterSendMsg(m) => {
            let (ext, tag) = untagged(m.cloud_custom_data.as_deref());
            let id = if m.msg_key.is_empty() {
                format!("{}_{}_{}", m.msg_seq, m.msg_random, m.msg_time)
            } else {
                m.msg_key.clone()
            };
            let data = json!({"id": id, "conv": "c2c", "from": m.from_account, "to": m.to_account,
                   "sent_at": m.msg_time * 1000, "body": canonical_body(&m.msg_body), "ext": ext});
            (data, tag)
        }
        E::GroupAfterSendMsg(m) => {
            let (ext, tag) = untagged(m.cloud_custom_data.as_deref());
            let data = json!({"id": format!("{}:{}", m.group_id, m.msg_seq), "conv": "group",
                   "from": m.from_account, "to": m.group_id, "sent_at": m.msg_time * 1000,
                   "body": canonical_body(&m.msg_body), "ext": ext});
            (data, tag)
        }
        E::GroupAfterCreate(g) => {
            let members: Vec<Value> = accounts(&g.member_list)
                .into_iter()
                .map(|a| {
                    let role = if a == g.owner_account {
                        "owner"
                    } else {
                        "member"
                    };
                    json!({"group": g.group_id, "account": a, "role": role})
                })
                .collect();
            let data = json!({"id": g.group_id, "type": group_type(&g.group_type), "name": g.name,
                   "owner": g.owner_account, "members": members});
            (data, false)
        }
        E::GroupAfterNewMemberJoin(g) => (
            json!({"group": g.group_id, "by": g.operator_account,
                   "accounts": accounts(&g.new_member_list)}),
            false,
        ),
        E::GroupAfterMemberExit(g) => (
            json!({"group": g.group_id, "by": g.operator_account,
                   "accounts": accounts(&g.exit_member_list), "kicked": g.exit_type == "Kicked"}),
            false,
        ),
        E::GroupAfterDestroyed(g) => (json!({"group": g.group_id, "by": g.owner_account}), false),
        E::GroupAfterInfoChanged(g) => {
            let mut changes = Map::new();
            for (k, v) in [
                ("name", &g.name),
                ("intro", &g.introduction),
                ("notice", &g.notification),
                ("avatar", &g.face_url),
            ] {
                if let Some(v) = v {
                    changes.insert(k.into(), v.clone().into());
                }
            }
            (
                json!({"group": g.group_id, "by": g.operator_account, "changes": changes}),
                false,
            )
        }
        E::ProfilePortraitSet(p) => {
            let mut data = convert::profile_fields(&p.profile_item);
            data.insert("id".into(), p.from_account.clone().into());
            (Value::Object(data), false)
        }
        E::SnsFriendAdd(_)
        | E::SnsFriendDelete(_)
        | E::C2cAfterMsgWithDraw(_)
        | E::GroupAfterRecallMsg(_)
        | E::Other => return None,
    })
}

/// A message's identity from its sender and random, which imshift chooses when it sends (so
/// the id map holds it before Tencent answers).
fn random_id(conv: &str, from: &str, to: &str, random: u64) -> String {
    format!("rnd:{conv}:{from}:{to}:{random}")
}

/// The alias of a callback: messages by sender and random.
pub fn alias(event: &E) -> Option<String> {
    match event {
        E::C2cAfterSendMsg(m) => Some(random_id(
            "c2c",
            &m.from_account,
            &m.to_account,
            m.msg_random,
        )),
        E::GroupAfterSendMsg(m) => Some(random_id("group", &m.from_account, &m.group_id, m.random)),
        _ => None,
    }
}

/// A one-to-one message's key, the same from its callback and from its history.
pub fn c2c_key(m: &super::callbacks::C2cAfterSendMsg) -> String {
    if m.msg_key.is_empty() {
        format!(
            "c2c:{}:{}:{}:{}:{}",
            m.from_account, m.to_account, m.msg_seq, m.msg_random, m.msg_time
        )
    } else {
        format!("c2c:{}", m.msg_key)
    }
}

/// A group message's key, the same from its callback and from its history.
pub fn group_key(group: &str, seq: u64) -> String {
    format!("group:{group}:{seq}")
}

/// The origin a callback's tag says, for [`crate::providers::InboundEvent::origin`].
pub fn origin(tagged: bool) -> Option<String> {
    tagged.then(|| ORIGIN.to_string())
}

/// Applies the other side's events to one Tencent app.
pub struct TencentSink {
    pub client: TencentClient,
    pub sdkappid: u64,
    pub guards: EchoGuards,
}

/// Tencent's answers meaning "that account is not registered here".
const NO_ACCOUNT: [i64; 5] = [90048, 90012, 20003, 10019, 30003];

/// friend_add's per-item answer for a friend already on the list (also its "bad parameter").
const FRIEND_ALREADY: i64 = 30001;
/// friend_delete's per-item answer for an account that is not a friend: Tencent's sns code
/// list names 31704 "not friends" for deletes; UNCONFIRMED against a live app.
const FRIEND_NOT: i64 = 31704;
/// admin_msgwithdraw: no such message / recalled already.
const WITHDRAW_UNKNOWN: i64 = 20022;
const WITHDRAW_DONE: i64 = 20023;

/// The `AddSource` of the friendships sync makes (Tencent wants the prefix
/// `AddSource_Type_`).
const ADD_SOURCE: &str = "AddSource_Type_imshift";

/// One `friend.added` (or `friend.removed`) for each pair a `Sns.CallbackFriendAdd` (or
/// `Sns.CallbackFriendDelete`) reports, keyed by the command, the pair and the event time.
/// Carrying the pair's fingerprint (see [`crate::sync::fingerprint`]), the callback of
/// imshift's own `friend_add` / `friend_delete` is an echo.
pub fn friend_events(
    f: &super::callbacks::SnsFriendPairs,
    added: bool,
    fallback_ms: i64,
) -> Vec<InboundEvent> {
    let at = f.event_time.unwrap_or(fallback_ms);
    let (command, kind) = if added {
        ("Sns.CallbackFriendAdd", "friend.added")
    } else {
        ("Sns.CallbackFriendDelete", "friend.removed")
    };
    f.pair_list
        .iter()
        .filter(|p| !p.from_account.is_empty() && !p.to_account.is_empty())
        .map(|p| InboundEvent {
            key: format!("{command}:{}:{}:{at}", p.from_account, p.to_account),
            kind: kind.into(),
            at_ms: at,
            data: json!({"owner": p.from_account, "friend": p.to_account}),
            origin: None,
            alias: None,
        })
        .collect()
}

/// The key of a recall callback, and the id imshift expects its own recall to come back as.
fn recall_key_c2c(msg_key: &str) -> String {
    format!("recall:c2c:{msg_key}")
}

fn recall_key_group(group: &str, seq: u64) -> String {
    format!("recall:group:{group}:{seq}")
}

/// The `message.recalled` events of a recall callback: one-to-one by its `MsgKey`, one per
/// seq for a group. `refs` are the ids imshift's id map may hold for the message (what
/// `sendmsg` answered, the random imshift chose, a group message's seq): with them the
/// sender finds a message that came from the old system and recalls it there by its old id.
pub fn recall_events(event: &E, fallback_ms: i64) -> Vec<InboundEvent> {
    match event {
        E::C2cAfterMsgWithDraw(r) => {
            let mut parts = r.msg_key.split('_');
            let (random, secs) = (parts.nth(1), parts.next());
            let sent_at = secs.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0) * 1000;
            let mut refs = vec![format!("c2c:{}", r.msg_key)];
            if let Some(random) = random.and_then(|s| s.parse::<u64>().ok()) {
                refs.push(random_id("c2c", &r.from_account, &r.to_account, random));
            }
            vec![InboundEvent {
                key: recall_key_c2c(&r.msg_key),
                kind: "message.recalled".into(),
                at_ms: r.event_time.unwrap_or(fallback_ms),
                data: json!({"id": r.msg_key, "conv": "c2c", "from": r.from_account,
                             "to": r.to_account, "sent_at": sent_at, "by": r.from_account,
                             "refs": refs}),
                origin: None,
                alias: None,
            }]
        }
        E::GroupAfterRecallMsg(r) => r
            .msg_seq_list
            .iter()
            .map(|m| InboundEvent {
                key: recall_key_group(&r.group_id, m.msg_seq),
                kind: "message.recalled".into(),
                at_ms: r.event_time.unwrap_or(fallback_ms),
                // The callback names neither the sender nor the send time: the sender of
                // the recall fills them in from the message when it knows it.
                data: json!({"id": format!("{}:{}", r.group_id, m.msg_seq), "conv": "group",
                             "from": "", "to": r.group_id, "sent_at": 0,
                             "by": r.operator_account,
                             "refs": [group_key(&r.group_id, m.msg_seq)]}),
                origin: None,
                alias: None,
            })
            .collect(),
        _ => vec![],
    }
}

/// A recall's message: its canonical identity (`id`, `from`, `to`, `sent_at`) and its `conv`.
#[derive(serde::Deserialize)]
struct Recall {
    id: String,
    #[serde(default)]
    conv: String,
    from: String,
    to: String,
    sent_at: i64,
}

/// The MsgKey a one-to-one message imshift put in through `importmsg` has: the MsgSeq,
/// MsgRandom and send second `convert::import_c2c` derived from the source identity.
pub fn c2c_msg_key(ident: &MessageIdentity) -> Result<String, String> {
    let secs = ident.timestamp_secs().map_err(|e| e.0)?;
    Ok(format!("{}_{}_{}", ident.c2c_seq(), ident.random(), secs))
}

/// The accounts an event names (who acts and who it is about), for registering the ones
/// Tencent does not have yet.
/// Where a recall lands in Tencent.
#[derive(Debug, PartialEq)]
enum RecallTarget {
    /// A one-to-one message by its `MsgKey`.
    C2c(String),
    /// A group message (the recall's `to`) by its seq.
    Group(u64),
}

/// A message synced into Tencent is found by what Tencent answered for it (`original`); one
/// that was sent in Tencent is named by Tencent's own id (`Original::Theirs`); a one-to-one
/// message the import moved has the MsgKey its identity gives.
fn recall_target(r: &Recall, original: Option<&Original>) -> Result<RecallTarget, String> {
    let made = match original {
        Some(Original::Applied { made }) => made.as_deref(),
        _ => None,
    };
    let theirs = matches!(original, Some(Original::Theirs));
    if r.conv == "group" {
        let seq = match (made, theirs) {
            (Some(m), _) => m.strip_prefix(&format!("group:{}:", r.to)),
            (None, true) => r.id.strip_prefix(&format!("{}:", r.to)),
            (None, false) => None,
        };
        return seq
            .and_then(|s| s.parse::<u64>().ok())
            .map(RecallTarget::Group)
            .ok_or_else(|| {
                format!(
                    "message {} was never synced into Tencent IM group {}, so there is nothing there to recall",
                    r.id, r.to
                )
            });
    }
    // A message that went in by sendmsg (provider flags off) has the key Tencent answered.
    if let Some(k) = made.and_then(|m| m.strip_prefix("c2c:")) {
        return Ok(RecallTarget::C2c(k.to_string()));
    }
    if theirs {
        return Ok(RecallTarget::C2c(r.id.clone()));
    }
    let ident = MessageIdentity {
        id: &r.id,
        from: &r.from,
        to: &r.to,
        sent_at_ms: r.sent_at,
    };
    c2c_msg_key(&ident).map(RecallTarget::C2c)
}

fn accounts_named(e: &SyncEvent) -> Vec<String> {
    let d = &e.data;
    let mut out: Vec<String> = vec![];
    let mut add = |v: &Value| {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    };
    add(&d["from"]);
    if d["conv"] != "group" {
        add(&d["to"]);
    }
    add(&d["owner"]);
    add(&d["friend"]);
    for m in d["members"].as_array().into_iter().flatten() {
        add(&m["account"]);
    }
    for a in d["accounts"].as_array().into_iter().flatten() {
        add(a);
    }
    out
}

fn failed(e: &TencentError) -> Delivered {
    // Tencent's own code when it answered; else what kind of failure.
    let code = match e {
        TencentError::Api { code, .. } => code.to_string(),
        TencentError::Transport { .. } => return Delivered::unreachable(e.to_string()),
        TencentError::Http { status, .. } => format!("http_{status}"),
        TencentError::Blocked { .. } => "blocked".into(),
        TencentError::Redirect { .. } => "redirect".into(),
        TencentError::TooLarge { .. } | TencentError::Decode { .. } => "unreadable_answer".into(),
        TencentError::Config(_) | TencentError::Invalid { .. } | TencentError::UserSig(_) => {
            "config".into()
        }
    };
    Delivered::failed(e.class(), Some(code), e.to_string())
}

fn refused(message: String) -> Delivered {
    Delivered::failed(ErrorClass::Permanent, None, message)
}

impl TencentSink {
    fn api(&self, e: &SyncEvent) -> Option<&'static str> {
        Some(match e.kind.as_str() {
            "message.sent" if e.data["conv"] == "group" => "group_open_http_svc/send_group_msg",
            "message.sent" if self.guards.provider_flags => "openim/importmsg",
            "message.sent" => "openim/sendmsg",
            "account.upserted" => "im_open_login_svc/account_import",
            "group.created" => "group_open_http_svc/create_group",
            "group.updated" => "group_open_http_svc/modify_group_base_info",
            "group.dismissed" => "group_open_http_svc/destroy_group",
            "group.members_joined" => "group_open_http_svc/add_group_member",
            "group.members_left" => "group_open_http_svc/delete_group_member",
            "friend.added" => "sns/friend_add",
            "friend.removed" => "sns/friend_delete",
            "message.recalled" if e.data["conv"] == "group" => {
                "group_open_http_svc/group_msg_recall"
            }
            "message.recalled" => "openim/admin_msgwithdraw",
            _ => return None,
        })
    }

    async fn apply(&self, e: &SyncEvent) -> Delivered {
        let text = |k: &str| {
            e.data
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let accounts = || -> Vec<String> {
            e.data["accounts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let done = |r: Result<(), TencentError>| match r {
            Ok(()) => Delivered::Applied { made: None },
            Err(err) => failed(&err),
        };
        match e.kind.as_str() {
            "message.sent" => self.message(e).await,
            "account.upserted" => {
                // Nick and avatar with the account (registered if new), the rest of the
                // profile through portrait_set, as the import's profiles phase sends it.
                let tags = match convert::profile_tags(&e.data) {
                    Ok(t) => t,
                    Err(why) => return refused(format!("the profile of {}: {why}", text("id"))),
                };
                let imported = self
                    .client
                    .account_import(&AccountImportRequest {
                        user_id: text("id"),
                        nick: e.data["nick"].as_str().map(str::to_string),
                        face_url: e.data["avatar"].as_str().map(str::to_string),
                    })
                    .await;
                if imported.is_err() || tags.is_empty() {
                    return done(imported);
                }
                done(
                    self.client
                        .portrait_set(&PortraitSetRequest {
                            from_account: text("id"),
                            profile_item: tags,
                        })
                        .await,
                )
            }
            "group.created" => {
                let ty = match convert::group_type(e.data["type"].as_str().unwrap_or("private")) {
                    Ok(t) => t,
                    Err(err) => return refused(err.0),
                };
                let owner = e.data["owner"].as_str().map(str::to_string);
                let members = e.data["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["account"].as_str())
                    .filter(|a| Some(*a) != owner.as_deref())
                    .map(|a| CreateMember {
                        member_account: a.to_string(),
                        role: None,
                    })
                    .collect();
                let req = CreateGroupRequest {
                    base: GroupBase {
                        owner_account: owner,
                        group_type: ty.to_string(),
                        group_id: Some(text("id")),
                        name: text("name"),
                        introduction: e.data["intro"].as_str().map(str::to_string),
                        notification: e.data["notice"].as_str().map(str::to_string),
                        face_url: e.data["avatar"].as_str().map(str::to_string),
                        ..Default::default()
                    },
                    member_list: members,
                };
                match self.client.create_group(&req).await {
                    Ok(_) => Delivered::Applied { made: None },
                    // Created by an earlier attempt whose answer was lost.
                    Err(err) if err.code() == Some(10021) => Delivered::Applied { made: None },
                    Err(err) => failed(&err),
                }
            }
            "group.updated" => {
                let c = &e.data["changes"];
                let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
                done(
                    self.client
                        .modify_group_base_info(&ModifyGroupBaseInfoRequest {
                            group_id: text("group"),
                            name: s("name"),
                            introduction: s("intro"),
                            notification: s("notice"),
                            face_url: s("avatar"),
                            ..Default::default()
                        })
                        .await,
                )
            }
            "group.dismissed" => match self.client.destroy_group(&text("group")).await {
                // Already gone: what the event asked for holds.
                Err(err) if err.code() == Some(10010) => Delivered::Applied { made: None },
                r => done(r),
            },
            "group.members_joined" => done(
                self.client
                    .add_group_member(&AddGroupMemberRequest {
                        group_id: text("group"),
                        silence: Some(1),
                        member_list: accounts()
                            .into_iter()
                            .map(|a| MemberAccountItem { member_account: a })
                            .collect(),
                    })
                    .await
                    .map(|_| ()),
            ),
            "group.members_left" => done(
                self.client
                    .delete_group_member(&DeleteGroupMemberRequest {
                        group_id: text("group"),
                        silence: Some(1),
                        reason: None,
                        member_to_del_account: accounts(),
                    })
                    .await,
            ),
            "friend.added" | "friend.removed" => self.friend(e).await,
            "message.recalled" => self.recall(e).await,
            other => refused(format!(
                "{other} events are not applied to Tencent IM yet; the event is kept here"
            )),
        }
    }

    /// `friend.added` / `friend.removed`: both ways, as the old system's friendship is one.
    async fn friend(&self, e: &SyncEvent) -> Delivered {
        let s = |k: &str| e.data[k].as_str().unwrap_or_default().to_string();
        let (owner, friend) = (s("owner"), s("friend"));
        if owner.is_empty() || friend.is_empty() {
            return refused(format!(
                "{} needs data.owner and data.friend (got {})",
                e.kind, e.data
            ));
        }
        let added = e.kind == "friend.added";
        let answer = if added {
            self.client
                .friend_add(&FriendAddRequest {
                    from_account: owner.clone(),
                    add_friend_item: vec![AddFriendItem {
                        to_account: friend.clone(),
                        add_source: ADD_SOURCE.into(),
                        remark: None,
                        group_name: None,
                        add_wording: None,
                    }],
                    add_type: Some("Add_Type_Both".into()),
                    force_add_flags: Some(1),
                })
                .await
        } else {
            self.client
                .friend_delete(&FriendDeleteRequest {
                    from_account: owner.clone(),
                    to_account: vec![friend.clone()],
                    delete_type: Some("Delete_Type_Both".into()),
                })
                .await
        };
        let code = match answer {
            Ok(FriendResultResponse { result_item, .. }) => result_item
                .iter()
                .find(|i| i.to_account == friend)
                .map(|i| (i.result_code, i.result_info.clone())),
            Err(err) => return failed(&err),
        };
        match code {
            None | Some((0, _)) => Delivered::Applied { made: None },
            Some((FRIEND_NOT, _)) if !added => Delivered::Applied { made: None },
            // 30001 is also "bad parameter": it counts as applied only when friend_check
            // finds them friends both ways.
            Some((FRIEND_ALREADY, _)) if added => {
                match self
                    .client
                    .friend_check(&owner, std::slice::from_ref(&friend), CheckType::Both)
                    .await
                {
                    Ok(r) if r.info_item.iter().any(|i| {
                        i.to_account == friend && i.relation == super::client::RELATION_BOTH_WAY
                    }) =>
                    {
                        Delivered::Applied { made: None }
                    }
                    Ok(_) => Delivered::failed(
                        ErrorClass::Permanent,
                        Some(FRIEND_ALREADY.to_string()),
                        format!(
                            "Tencent IM refused to make {owner} and {friend} friends (30001, and friend_check does not find them friends both ways)"
                        ),
                    ),
                    Err(err) => failed(&err),
                }
            }
            Some((code, info)) => Delivered::failed(
                super::errors::classify(code),
                Some(code.to_string()),
                format!(
                    "{} of {owner} and {friend}: Tencent IM answered {code} {info}",
                    if added { "friend_add" } else { "friend_delete" }
                ),
            ),
        }
    }

    /// `message.recalled`: one-to-one by the MsgKey the message went in with, a group's by
    /// the seq `send_group_msg` answered (the sender hands it over in `original`).
    async fn recall(&self, e: &SyncEvent) -> Delivered {
        let r: Recall = match serde_json::from_value(e.data.clone()) {
            Ok(r) => r,
            Err(err) => {
                return refused(format!(
                    "the recall does not name its message (id, from, to, sent_at): {err}"
                ))
            }
        };
        let target = match recall_target(&r, e.original.as_ref()) {
            Ok(t) => t,
            Err(why) => return refused(why),
        };
        let key = match target {
            RecallTarget::Group(seq) => {
                let req = GroupMsgRecallRequest {
                    group_id: r.to.clone(),
                    msg_seq_list: vec![MsgSeqItem { msg_seq: seq }],
                };
                return match self.client.group_msg_recall(&req).await {
                    Ok(a) => match a.recall_ret_list.iter().find(|x| x.msg_seq == seq) {
                        None => Delivered::Applied { made: None },
                        Some(x) if x.ret_code == 0 => Delivered::Applied { made: None },
                        Some(x) => Delivered::failed(
                            super::errors::classify(x.ret_code),
                            Some(x.ret_code.to_string()),
                            format!(
                                "Tencent IM did not recall message {} (MsgSeq {seq}) in group {}: RetCode {} (no such message there any more: expired from roaming, or deleted)",
                                r.id, r.to, x.ret_code
                            ),
                        ),
                    },
                    Err(err) => failed(&err),
                };
            }
            RecallTarget::C2c(key) => key,
        };
        let req = MsgWithdrawRequest {
            from_account: r.from.clone(),
            to_account: r.to.clone(),
            msg_key: key.clone(),
        };
        match self.client.admin_msgwithdraw(&req).await {
            Ok(()) => Delivered::Applied { made: None },
            // Recalled by an earlier attempt whose answer was lost.
            Err(err) if err.code() == Some(WITHDRAW_DONE) => Delivered::Applied { made: None },
            Err(err) if err.code() == Some(WITHDRAW_UNKNOWN) => Delivered::failed(
                ErrorClass::Permanent,
                Some(WITHDRAW_UNKNOWN.to_string()),
                format!(
                    "message {} from {} to {} is not in Tencent IM (MsgKey {key}): it was {}, so there is nothing there to recall",
                    r.id,
                    r.from,
                    r.to,
                    match e.original {
                        Some(Original::Applied { .. }) =>
                            "synced but is gone from Tencent's roaming history",
                        Some(Original::Theirs) => "sent in Tencent IM but is gone from its roaming history",
                        _ => "never synced or imported there",
                    }
                ),
            ),
            Err(err) => failed(&err),
        }
    }

    async fn message(&self, e: &SyncEvent) -> Delivered {
        let msg: CanonicalMessage = match serde_json::from_value(e.data.clone()) {
            Ok(m) => m,
            Err(err) => return refused(format!("the message is not a canonical message: {err}")),
        };
        self.send(e, &msg).await
    }

    async fn send(&self, e: &SyncEvent, msg: &CanonicalMessage) -> Delivered {
        let ext = if self.guards.origin_tag {
            tagged(msg.ext.as_deref(), &e.key)
        } else {
            msg.ext.clone()
        };
        let ident: MessageIdentity = msg.identity();
        let forbid = if self.guards.provider_flags {
            vec![
                "ForbidBeforeSendMsgCallback".to_string(),
                "ForbidAfterSendMsgCallback".to_string(),
            ]
        } else {
            vec![]
        };
        if msg.conv == "group" {
            let req = SendGroupMsgRequest {
                group_id: msg.to.clone(),
                from_account: Some(msg.from.clone()),
                random: ident.random(),
                msg_body: convert::msg_body(&msg.body),
                cloud_custom_data: ext,
                online_only_flag: None,
                forbid_callback_control: forbid,
            };
            return match self.client.send_group_msg(&req).await {
                Ok(r) => Delivered::Applied {
                    made: Some(format!("group:{}:{}", msg.to, r.msg_seq)),
                },
                Err(err) => failed(&err),
            };
        }
        let mut req = match convert::import_c2c(msg, true) {
            Ok(r) => r,
            Err(err) => return refused(err.0),
        };
        req.cloud_custom_data = ext;
        if self.guards.provider_flags {
            // importmsg fires no callback: nothing comes back to map.
            return match self.client.importmsg(&req).await {
                Ok(()) => Delivered::Applied { made: None },
                Err(err) => failed(&err),
            };
        }
        let send = SendMsgRequest {
            sync_other_machine: Some(2),
            from_account: Some(req.from_account),
            to_account: req.to_account,
            msg_seq: req.msg_seq,
            msg_random: req.msg_random,
            msg_body: req.msg_body,
            cloud_custom_data: req.cloud_custom_data,
            msg_life_time: None,
            forbid_callback_control: vec![],
            send_msg_control: vec![],
        };
        match self.client.sendmsg(&send).await {
            Ok(r) => Delivered::Applied {
                made: Some(format!("c2c:{}", r.msg_key)),
            },
            Err(err) => failed(&err),
        }
    }
}

#[async_trait::async_trait]
impl SyncSink for TencentSink {
    fn pace(&self, event: &SyncEvent) -> Option<(String, f64)> {
        let api = self.api(event)?;
        let qps = self.client.limits().qps(api).unwrap_or(1) as f64;
        Some((format!("tencent:{}:{api}", self.sdkappid), qps))
    }

    fn expected_ids(&self, event: &SyncEvent) -> Vec<String> {
        if event.kind == "message.recalled" {
            // Tencent reports imshift's own recall back (admin_msgwithdraw and
            // group_msg_recall have no callback opt-out): under this key, an echo.
            return serde_json::from_value::<Recall>(event.data.clone())
                .ok()
                .and_then(|r| match recall_target(&r, event.original.as_ref()) {
                    Ok(RecallTarget::C2c(k)) => Some(recall_key_c2c(&k)),
                    Ok(RecallTarget::Group(seq)) => Some(recall_key_group(&r.to, seq)),
                    Err(_) => None,
                })
                .into_iter()
                .collect();
        }
        if event.kind != "message.sent" {
            return vec![];
        }
        match serde_json::from_value::<CanonicalMessage>(event.data.clone()) {
            Ok(m) => vec![random_id(
                if m.conv == "group" { "group" } else { "c2c" },
                &m.from,
                &m.to,
                u64::from(m.identity().random()),
            )],
            Err(_) => vec![],
        }
    }

    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let first = self.apply(e).await;
            // Accounts the old system has and Tencent does not yet (registered after the
            // import): register them, then apply once more.
            let missing = matches!(&first, Delivered::Failed { code: Some(c), .. }
                if NO_ACCOUNT.iter().any(|n| n.to_string() == *c));
            if !missing {
                out.push(first);
                continue;
            }
            let accounts: Vec<AccountImportRequest> = accounts_named(e)
                .into_iter()
                .map(|id| AccountImportRequest {
                    user_id: id,
                    nick: None,
                    face_url: None,
                })
                .collect();
            out.push(match self.client.multiaccount_import(&accounts).await {
                Ok(_) => self.apply(e).await,
                Err(err) => failed(&err),
            });
        }
        out
    }
}

/// See [`crate::providers::Provider::send_canary`].
pub async fn send_canary(
    conn: &crate::providers::Connection,
    from: &str,
    to: &str,
    text: &str,
) -> Result<String, String> {
    let (client, _, _) = super::provider::client_for(conn)?;
    let accounts: Vec<AccountImportRequest> = [from, to]
        .iter()
        .map(|id| AccountImportRequest {
            user_id: id.to_string(),
            nick: Some("imshift canary".into()),
            face_url: None,
        })
        .collect();
    client
        .multiaccount_import(&accounts)
        .await
        .map_err(|e| e.to_string())?;
    let req = SendMsgRequest {
        sync_other_machine: Some(2),
        from_account: Some(from.to_string()),
        to_account: to.to_string(),
        msg_life_time: None,
        msg_seq: None,
        msg_random: rand::random(),
        forbid_callback_control: vec![],
        send_msg_control: vec![],
        msg_body: convert::msg_body(&convert::CanonicalBody::Text {
            text: text.to_string(),
        }),
        cloud_custom_data: None,
    };
    client
        .sendmsg(&req)
        .await
        .map(|r| r.msg_key)
        .map_err(|e| e.to_string())
}

/// Reads one-to-one roaming messages (`admin_getroammsg`) and group history
/// (`group_msg_get_simple`) back as the events their callbacks would have been.
pub struct TencentReader {
    pub client: TencentClient,
    pub sdkappid: u64,
}

const ROAM_API: &str = "openim/admin_getroammsg";
const GROUP_API: &str = "group_open_http_svc/group_msg_get_simple";
const LIST_API: &str = "recentcontact/get_list";

fn event_of(e: E, key: String, at_ms: i64) -> Option<InboundEvent> {
    let (data, tag) = canonical(&e)?;
    Some(InboundEvent {
        key,
        kind: "message.sent".into(),
        at_ms,
        alias: alias(&e),
        data,
        origin: origin(tag),
    })
}

fn bodies(elems: &[super::client::MsgElement]) -> Vec<Value> {
    elems
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect()
}

#[async_trait::async_trait]
impl ReadBack for TencentReader {
    fn pace(&self, conv: &str) -> Option<(String, f64)> {
        let api = if conv.starts_with("group:") {
            GROUP_API
        } else {
            ROAM_API
        };
        let qps = self.client.limits().qps(api).unwrap_or(1) as f64;
        Some((format!("tencent:{}:{api}", self.sdkappid), qps))
    }

    async fn read(
        &self,
        conv: &str,
        from_ms: i64,
        to_ms: i64,
        page: Option<String>,
    ) -> Result<ReadPage, String> {
        let (from_s, to_s) = (from_ms.div_euclid(1000), to_ms.div_euclid(1000) + 1);
        if let Some(group) = conv.strip_prefix("group:") {
            let req = GroupMsgGetSimpleRequest {
                group_id: group.to_string(),
                req_msg_number: 20,
                req_msg_seq: page.and_then(|p| p.parse().ok()),
            };
            let r = self
                .client
                .group_msg_get_simple(&req)
                .await
                .map_err(|e| e.to_string())?;
            // Newest first: the page ends the reading once it reaches before the window.
            let oldest = r.rsp_msg_list.iter().map(|m| m.msg_seq).min();
            let reached_start = r
                .rsp_msg_list
                .iter()
                .any(|m| (m.msg_time_stamp as i64) < from_s);
            let mut list = r.rsp_msg_list;
            list.sort_by_key(|m| m.msg_seq);
            let events = list
                .into_iter()
                .filter(|m| m.is_place_msg == 0)
                .filter(|m| (from_s..=to_s).contains(&(m.msg_time_stamp as i64)))
                .filter_map(|m| {
                    let key = group_key(group, m.msg_seq);
                    let at = m.msg_time_stamp as i64 * 1000;
                    event_of(
                        E::GroupAfterSendMsg(super::callbacks::GroupAfterSendMsg {
                            group_id: group.to_string(),
                            group_type: String::new(),
                            from_account: m.from_account,
                            operator_account: String::new(),
                            random: m.msg_random,
                            msg_seq: m.msg_seq,
                            msg_time: m.msg_time_stamp as i64,
                            online_only_flag: 0,
                            msg_body: bodies(&m.msg_body),
                            cloud_custom_data: m.cloud_custom_data,
                            topic_id: None,
                            event_time: None,
                        }),
                        key,
                        at,
                    )
                })
                .collect();
            let next = match oldest {
                Some(seq) if seq > 1 && !reached_start && r.is_finished != 1 => {
                    Some((seq - 1).to_string())
                }
                _ => None,
            };
            return Ok(ReadPage { events, next });
        }
        let mut parts = conv.strip_prefix("c2c:").unwrap_or(conv).splitn(2, ':');
        let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "{conv} is not a conversation Tencent IM keeps history of"
            ));
        };
        let req = AdminGetRoamMsgRequest {
            operator_account: a.to_string(),
            peer_account: b.to_string(),
            max_cnt: 100,
            min_time: from_s.max(0) as u64,
            max_time: to_s.max(0) as u64,
            last_msg_key: page,
        };
        let r = self
            .client
            .admin_getroammsg(&req)
            .await
            .map_err(|e| e.to_string())?;
        let mut list = r.msg_list;
        list.sort_by_key(|m| (m.msg_time_stamp, m.msg_seq));
        let events = list
            .into_iter()
            // Recalled (MsgFlagBits 8): nothing to relay.
            .filter(|m| m.msg_flag_bits & 8 == 0)
            .filter_map(|m| {
                let cb = super::callbacks::C2cAfterSendMsg {
                    from_account: m.from_account,
                    to_account: m.to_account,
                    msg_seq: m.msg_seq,
                    msg_random: m.msg_random,
                    msg_time: m.msg_time_stamp as i64,
                    msg_key: m.msg_key,
                    online_only_flag: 0,
                    send_msg_result: 0,
                    error_info: String::new(),
                    unread_msg_num: 0,
                    msg_body: bodies(&m.msg_body),
                    cloud_custom_data: m.cloud_custom_data,
                    event_time: None,
                };
                let key = c2c_key(&cb);
                let at = cb.msg_time * 1000;
                event_of(E::C2cAfterSendMsg(cb), key, at)
            })
            .collect();
        let next = (r.complete != 1 && !r.last_msg_key.is_empty()).then_some(r.last_msg_key);
        Ok(ReadPage { events, next })
    }

    fn pace_listing(&self) -> Option<(String, f64)> {
        let qps = self.client.limits().qps(LIST_API).unwrap_or(1) as f64;
        Some((format!("tencent:{}:{LIST_API}", self.sdkappid), qps))
    }

    async fn conversations_of(
        &self,
        account: &str,
        since_ms: i64,
        page: Option<String>,
    ) -> Option<Result<ConversationsPage, String>> {
        Some(self.list(account, since_ms, page).await)
    }
}

impl TencentReader {
    /// A page of `recentcontact/get_list`; the cursor is the answer's four numbers.
    async fn list(
        &self,
        account: &str,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<ConversationsPage, String> {
        let cursor: Vec<u64> = page
            .as_deref()
            .unwrap_or("0:0:0:0")
            .split(':')
            .filter_map(|n| n.parse().ok())
            .collect();
        let [time_stamp, start_index, top_time_stamp, top_start_index] = cursor[..] else {
            return Err(format!("{page:?} is not a conversation list cursor"));
        };
        let r = self
            .client
            .recentcontact_get_list(&RecentContactRequest {
                from_account: account.to_string(),
                time_stamp,
                start_index,
                top_time_stamp,
                top_start_index,
                assist_flags: 63,
            })
            .await
            .map_err(|e| e.to_string())?;
        let since_s = since_ms.div_euclid(1000);
        let conversations = r
            .sessions
            .iter()
            .filter(|s| s.msg_time as i64 >= since_s)
            .filter_map(|s| match (s.kind, &s.to_account, &s.group_id) {
                (1, Some(peer), _) => Some(crate::sync::conversation(
                    "message.sent",
                    &json!({"from": account, "to": peer}),
                )),
                (2, _, Some(group)) => Some(format!("group:{group}")),
                _ => None,
            })
            .collect();
        // Past the last page, or a page that moved no cursor (nothing more to ask).
        let next = (r.complete != 1
            && [
                r.time_stamp,
                r.start_index,
                r.top_time_stamp,
                r.top_start_index,
            ] != [time_stamp, start_index, top_time_stamp, top_start_index])
        .then(|| {
            format!(
                "{}:{}:{}:{}",
                r.time_stamp, r.start_index, r.top_time_stamp, r.top_start_index
            )
        });
        Ok(ConversationsPage {
            conversations,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_rides_along_the_apps_own_custom_data_and_comes_off_again() {
        let t = tagged(None, "c2c:k1").unwrap();
        assert_eq!(untagged(Some(&t)), (None, true));
        let t = tagged(Some(r#"{"vip":true}"#), "k2").unwrap();
        assert_eq!(untagged(Some(&t)), (Some(r#"{"vip":true}"#.into()), true));
        // Data that is not an object cannot carry the tag; it is kept as it was.
        assert_eq!(tagged(Some("plain"), "k3").as_deref(), Some("plain"));
        assert_eq!(untagged(Some("plain")), (Some("plain".into()), false));
    }

    #[test]
    fn a_friend_add_callback_is_one_friend_added_per_pair_with_the_pairs_fingerprint() {
        let cb: E = serde_json::from_value(json!({
            "CallbackCommand": "Sns.CallbackFriendAdd", "ClientCmd": "friend_add",
            "PairList": [{"From_Account": "b", "To_Account": "a", "Initiator_Account": "b"},
                         {"From_Account": "a", "To_Account": "b", "Initiator_Account": "b"}],
            "Admin_Account": "admin", "ForceFlag": 1, "EventTime": 1_700_000_000_000i64
        }))
        .unwrap();
        let E::SnsFriendAdd(f) = cb else {
            panic!("wrong variant")
        };
        let events = friend_events(&f, true, 0);
        assert_eq!(events.len(), 2);
        assert_ne!(events[0].key, events[1].key);
        assert_eq!(events[0].kind, "friend.added");
        assert_eq!(events[0].at_ms, 1_700_000_000_000);
        assert_eq!(events[0].data, json!({"owner": "b", "friend": "a"}));
        // What the sink writes to the id map before its friend_add, for either pair.
        let sent = crate::sync::fingerprint("friend.added", &json!({"owner": "a", "friend": "b"}));
        for e in &events {
            assert_eq!(crate::sync::fingerprint(&e.kind, &e.data), sent);
        }
    }

    #[test]
    fn a_recall_callback_names_the_message_as_its_send_did_and_every_id_the_id_map_may_hold() {
        let cb: E = serde_json::from_value(json!({
            "CallbackCommand": "C2C.CallbackAfterMsgWithDraw", "From_Account": "a",
            "To_Account": "b", "MsgKey": "7_42_1700000000", "UnreadMsgNum": 0,
            "EventTime": 1_700_000_001_000i64
        }))
        .unwrap();
        let [e] = &recall_events(&cb, 0)[..] else {
            panic!("one event")
        };
        assert_eq!(e.kind, "message.recalled");
        assert_eq!(e.data["id"], "7_42_1700000000");
        assert_eq!(e.data["sent_at"], 1_700_000_000_000i64);
        // What sendmsg answered, and the random the sink chose when imshift sent it.
        assert_eq!(
            e.data["refs"],
            json!(["c2c:7_42_1700000000", random_id("c2c", "a", "b", 42)])
        );
        let cb: E = serde_json::from_value(json!({
            "CallbackCommand": "Group.CallbackAfterRecallMsg", "GroupId": "g", "Type": "Public",
            "Operator_Account": "a", "MsgSeqList": [{"MsgSeq": 3}, {"MsgSeq": 4}]
        }))
        .unwrap();
        let events = recall_events(&cb, 5);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data["id"], "g:4");
        assert_eq!(events[1].key, recall_key_group("g", 4));
        // imshift's own recall of the same message expects exactly that key back.
        let r: Recall = serde_json::from_value(events[1].data.clone()).unwrap();
        assert_eq!(
            recall_target(&r, Some(&Original::Theirs)),
            Ok(RecallTarget::Group(4))
        );
        assert!(recall_target(&r, Some(&Original::Unknown)).is_err());
    }

    #[test]
    fn a_recall_finds_the_msgkey_importmsg_gave_the_message() {
        let msg: CanonicalMessage = serde_json::from_value(json!({
            "id": "m1", "conv": "c2c", "from": "a", "to": "b", "sent_at": 1_700_000_000_456i64,
            "body": {"type": "text", "text": "x"}
        }))
        .unwrap();
        let req = convert::import_c2c(&msg, true).unwrap();
        assert_eq!(
            c2c_msg_key(&msg.identity()).unwrap(),
            format!(
                "{}_{}_{}",
                req.msg_seq.unwrap(),
                req.msg_random,
                req.msg_time_stamp
            )
        );
    }

    #[test]
    fn callbacks_read_as_canonical_messages() {
        let cb: E = serde_json::from_value(json!({
            "CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": "a", "To_Account": "b",
            "MsgSeq": 1, "MsgRandom": 2, "MsgTime": 1_700_000_000, "MsgKey": "K",
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
            "CloudCustomData": "{\"imshift\":\"x\"}"
        }))
        .unwrap();
        let (data, tag) = canonical(&cb).unwrap();
        assert!(tag);
        assert_eq!(data["id"], "K");
        assert_eq!(data["sent_at"], 1_700_000_000_000i64);
        assert_eq!(data["body"], json!({"type": "text", "text": "hi"}));
        assert_eq!(data["ext"], Value::Null);
        let msg: CanonicalMessage = serde_json::from_value(data).unwrap();
        assert_eq!(msg.from, "a");
        // Two elements travel whole.
        let two = [
            json!({"MsgType": "TIMTextElem"}),
            json!({"MsgType": "TIMFaceElem"}),
        ];
        assert_eq!(canonical_body(&two)["type"], "custom");
    }
}
