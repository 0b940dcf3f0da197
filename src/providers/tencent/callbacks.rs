//! Tencent IM third-party callbacks (spec §4): the `Sign` check and the event bodies imshift
//! listens to during cut-over.

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// Requests older or newer than this are replays (spec §4.2).
pub const MAX_SKEW_SECS: i64 = 60;

/// `Sign = lowercase_hex(sha256(token + RequestTime))`: plain concatenation, no HMAC.
pub fn sign(token: &str, request_time: i64) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(request_time.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackAuthError {
    #[error("the callback has no Sign or RequestTime")]
    Missing,
    #[error("the callback RequestTime {0:?} is not a number")]
    BadTime(String),
    #[error("the callback RequestTime {request_time} is more than 60 s away from now ({now})")]
    Stale { request_time: i64, now: i64 },
    #[error("the callback Sign does not match the token")]
    BadSign,
}

/// Check `Sign` and `RequestTime` from a callback's query string.
pub fn verify(
    token: &str,
    sign_param: Option<&str>,
    request_time: Option<&str>,
    now: i64,
) -> Result<(), CallbackAuthError> {
    let (Some(given), Some(rt)) = (sign_param, request_time) else {
        return Err(CallbackAuthError::Missing);
    };
    let t: i64 = rt
        .parse()
        .map_err(|_| CallbackAuthError::BadTime(rt.to_string()))?;
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(CallbackAuthError::Stale {
            request_time: t,
            now,
        });
    }
    let want = sign(token, t);
    // Constant-time: the Sign is a bearer credential for this second.
    let equal = want.len() == given.len()
        && want
            .bytes()
            .zip(given.to_ascii_lowercase().bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(CallbackAuthError::BadSign)
    }
}

/// `EventTime` is a number in most payloads and a quoted string in some samples.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(i64),
        S(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::N(n)) => Ok(Some(n)),
        Some(Either::S(s)) if s.is_empty() => Ok(None),
        Some(Either::S(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("EventTime {s:?} is not a number"))),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberAccount {
    #[serde(rename = "Member_Account")]
    pub member_account: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C2cAfterSendMsg {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgSeq", default)]
    pub msg_seq: u64,
    #[serde(rename = "MsgRandom", default)]
    pub msg_random: u64,
    #[serde(rename = "MsgTime", default)]
    pub msg_time: i64,
    #[serde(rename = "MsgKey", default)]
    pub msg_key: String,
    #[serde(rename = "OnlineOnlyFlag", default)]
    pub online_only_flag: i64,
    #[serde(rename = "SendMsgResult", default)]
    pub send_msg_result: i64,
    #[serde(rename = "ErrorInfo", default)]
    pub error_info: String,
    #[serde(rename = "UnreadMsgNum", default)]
    pub unread_msg_num: i64,
    #[serde(rename = "MsgBody", default)]
    pub msg_body: Vec<serde_json::Value>,
    #[serde(
        rename = "CloudCustomData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_custom_data: Option<String>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterSendMsg {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "From_Account", default)]
    pub from_account: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "Random", default)]
    pub random: u64,
    #[serde(rename = "MsgSeq", default)]
    pub msg_seq: u64,
    #[serde(rename = "MsgTime", default)]
    pub msg_time: i64,
    #[serde(rename = "OnlineOnlyFlag", default)]
    pub online_only_flag: i64,
    #[serde(rename = "MsgBody", default)]
    pub msg_body: Vec<serde_json::Value>,
    #[serde(
        rename = "CloudCustomData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_custom_data: Option<String>,
    #[serde(rename = "TopicId", default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterCreate {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "Owner_Account", default)]
    pub owner_account: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "MemberList", default)]
    pub member_list: Vec<MemberAccount>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterNewMemberJoin {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "JoinType", default)]
    pub join_type: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "NewMemberList", default)]
    pub new_member_list: Vec<MemberAccount>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterMemberExit {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "ExitType", default)]
    pub exit_type: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "ExitMemberList", default)]
    pub exit_member_list: Vec<MemberAccount>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterDestroyed {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "Owner_Account", default)]
    pub owner_account: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "MemberList", default)]
    pub member_list: Vec<MemberAccount>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterInfoChanged {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        rename = "Introduction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub introduction: Option<String>,
    #[serde(
        rename = "Notification",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notification: Option<String>,
    #[serde(rename = "FaceUrl", default, skip_serializing_if = "Option::is_none")]
    pub face_url: Option<String>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendPair {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "Initiator_Account", default)]
    pub initiator_account: String,
}

/// `Sns.CallbackFriendAdd` and `Sns.CallbackFriendDelete` (the delete's body is the add's
/// without `ForceFlag`: UNCONFIRMED beyond the command list, parsed leniently).
/// `Admin_Account` is present when the change came through the REST API (our own writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnsFriendPairs {
    #[serde(rename = "PairList", default)]
    pub pair_list: Vec<FriendPair>,
    #[serde(rename = "ClientCmd", default)]
    pub client_cmd: String,
    #[serde(
        rename = "Admin_Account",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub admin_account: Option<String>,
    #[serde(rename = "ForceFlag", default)]
    pub force_flag: i64,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

/// `C2C.CallbackAfterMsgWithDraw`: a one-to-one message recalled, named by its `MsgKey`
/// (`{MsgSeq}_{MsgRandom}_{MsgTime}`). The reference lists the command without its body;
/// these fields are the documented ones, UNCONFIRMED against a live app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C2cAfterMsgWithDraw {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgKey")]
    pub msg_key: String,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

/// `Group.CallbackAfterRecallMsg`: group messages recalled, by seq (UNCONFIRMED as above).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAfterRecallMsg {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "Type", default)]
    pub group_type: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "MsgSeqList", default)]
    pub msg_seq_list: Vec<super::client::MsgSeqItem>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

/// `Profile.CallbackPortraitSet`: an account's profile changed; `ProfileItem` holds the tags
/// set. Named in the command list, its body is not in the reference: these are the documented
/// fields, UNCONFIRMED against a live app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilePortraitSet {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "Operator_Account", default)]
    pub operator_account: String,
    #[serde(rename = "ProfileItem", default)]
    pub profile_item: Vec<super::client::TagValue>,
    #[serde(rename = "EventTime", default, deserialize_with = "number_or_string")]
    pub event_time: Option<i64>,
}

/// A callback body, told apart by its `CallbackCommand`. Commands imshift does not handle
/// land in `Other` so the receiver can answer OK and ignore them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "CallbackCommand")]
pub enum CallbackEvent {
    #[serde(rename = "C2C.CallbackAfterSendMsg")]
    C2cAfterSendMsg(C2cAfterSendMsg),
    #[serde(rename = "Group.CallbackAfterSendMsg")]
    GroupAfterSendMsg(GroupAfterSendMsg),
    #[serde(rename = "Group.CallbackAfterCreateGroup")]
    GroupAfterCreate(GroupAfterCreate),
    #[serde(rename = "Group.CallbackAfterNewMemberJoin")]
    GroupAfterNewMemberJoin(GroupAfterNewMemberJoin),
    #[serde(rename = "Group.CallbackAfterMemberExit")]
    GroupAfterMemberExit(GroupAfterMemberExit),
    #[serde(rename = "Group.CallbackAfterGroupDestroyed")]
    GroupAfterDestroyed(GroupAfterDestroyed),
    #[serde(rename = "Group.CallbackAfterGroupInfoChanged")]
    GroupAfterInfoChanged(GroupAfterInfoChanged),
    #[serde(rename = "Sns.CallbackFriendAdd")]
    SnsFriendAdd(SnsFriendPairs),
    #[serde(rename = "Sns.CallbackFriendDelete")]
    SnsFriendDelete(SnsFriendPairs),
    #[serde(rename = "C2C.CallbackAfterMsgWithDraw")]
    C2cAfterMsgWithDraw(C2cAfterMsgWithDraw),
    #[serde(rename = "Group.CallbackAfterRecallMsg")]
    GroupAfterRecallMsg(GroupAfterRecallMsg),
    #[serde(rename = "Profile.CallbackPortraitSet")]
    ProfilePortraitSet(ProfilePortraitSet),
    #[serde(other)]
    Other,
}

impl CallbackEvent {
    pub fn command(&self) -> &'static str {
        match self {
            CallbackEvent::C2cAfterSendMsg(_) => "C2C.CallbackAfterSendMsg",
            CallbackEvent::GroupAfterSendMsg(_) => "Group.CallbackAfterSendMsg",
            CallbackEvent::GroupAfterCreate(_) => "Group.CallbackAfterCreateGroup",
            CallbackEvent::GroupAfterNewMemberJoin(_) => "Group.CallbackAfterNewMemberJoin",
            CallbackEvent::GroupAfterMemberExit(_) => "Group.CallbackAfterMemberExit",
            CallbackEvent::GroupAfterDestroyed(_) => "Group.CallbackAfterGroupDestroyed",
            CallbackEvent::GroupAfterInfoChanged(_) => "Group.CallbackAfterGroupInfoChanged",
            CallbackEvent::SnsFriendAdd(_) => "Sns.CallbackFriendAdd",
            CallbackEvent::SnsFriendDelete(_) => "Sns.CallbackFriendDelete",
            CallbackEvent::C2cAfterMsgWithDraw(_) => "C2C.CallbackAfterMsgWithDraw",
            CallbackEvent::GroupAfterRecallMsg(_) => "Group.CallbackAfterRecallMsg",
            CallbackEvent::ProfilePortraitSet(_) => "Profile.CallbackPortraitSet",
            CallbackEvent::Other => "Other",
        }
    }
}

/// The answer Tencent expects from a callback receiver.
pub fn ok_response() -> serde_json::Value {
    serde_json::json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_the_worked_example() {
        assert_eq!(
            sign("xxxxyyyy", 1_669_872_112),
            "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
        );
        let s = sign("xxxxyyyy", 1_669_872_112);
        verify("xxxxyyyy", Some(&s), Some("1669872112"), 1_669_872_112 + 60).unwrap();
        verify("xxxxyyyy", Some(&s), Some("1669872112"), 1_669_872_112 - 60).unwrap();
        assert!(matches!(
            verify("xxxxyyyy", Some(&s), Some("1669872112"), 1_669_872_112 + 61),
            Err(CallbackAuthError::Stale { .. })
        ));
        assert_eq!(
            verify("xxxyyy", Some(&s), Some("1669872112"), 1_669_872_112),
            Err(CallbackAuthError::BadSign)
        );
        assert_eq!(
            verify("xxxxyyyy", None, Some("1669872112"), 1_669_872_112),
            Err(CallbackAuthError::Missing)
        );
    }

    #[test]
    fn bodies_parse_with_number_or_string_event_time() {
        let c2c = r#"{"CallbackCommand":"C2C.CallbackAfterSendMsg","From_Account":"jared","To_Account":"Jonh","MsgSeq":48374,"MsgRandom":2837546,
 "MsgTime":1557481126,"MsgKey":"48374_2837546_1557481126","OnlineOnlyFlag":1,"SendMsgResult":0,"ErrorInfo":"send msg succeed",
 "UnreadMsgNum":7,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"red packet"}}],"CloudCustomData":"x","EventTime":1670574414123,"MsgId":"new"}"#;
        let CallbackEvent::C2cAfterSendMsg(e) = serde_json::from_str(c2c).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(e.msg_key, "48374_2837546_1557481126");
        assert_eq!(e.event_time, Some(1_670_574_414_123));

        let group = r#"{"CallbackCommand":"Group.CallbackAfterSendMsg","GroupId":"@TGS#2J4SZEAEL","Type":"Public","From_Account":"jared","Operator_Account":"admin",
 "Random":123456,"MsgSeq":123,"MsgTime":1490686222,"OnlineOnlyFlag":1,"MsgBody":[],"CloudCustomData":"c","EventTime":"1670574414123"}"#;
        let CallbackEvent::GroupAfterSendMsg(g) = serde_json::from_str(group).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(g.event_time, Some(1_670_574_414_123));
        assert_eq!(g.msg_seq, 123);

        let exit = r#"{"CallbackCommand":"Group.CallbackAfterMemberExit","GroupId":"g","Type":"Public","ExitType":"Kicked","Operator_Account":"admin","ExitMemberList":[{"Member_Account":"a"}],"EventTime":1}"#;
        assert!(matches!(
            serde_json::from_str::<CallbackEvent>(exit).unwrap(),
            CallbackEvent::GroupAfterMemberExit(_)
        ));
        let other = r#"{"CallbackCommand":"State.StateChange","EventTime":1}"#;
        assert_eq!(
            serde_json::from_str::<CallbackEvent>(other).unwrap(),
            CallbackEvent::Other
        );
    }
}
