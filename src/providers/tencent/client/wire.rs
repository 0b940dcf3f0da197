//! Tencent IM's request and answer bodies as serde types. Field names follow the spec exactly
//! (serde renames).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
pub(super) struct MultiAccountImportRequest {
    #[serde(rename = "AccountList")]
    pub(super) account_list: Vec<AccountItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct MultiAccountImportResponse {
    #[serde(rename = "FailAccounts", default)]
    pub(super) fail_accounts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UserIdItem {
    #[serde(rename = "UserID")]
    pub(super) user_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct AccountCheckRequest {
    #[serde(rename = "CheckItem")]
    pub(super) check_item: Vec<UserIdItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct AccountCheckResponse {
    #[serde(rename = "ResultItem", default)]
    pub(super) result_item: Vec<AccountCheckResult>,
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

/// sns/friend_delete (CN-1644): `DeleteType` `Delete_Type_Single` or `Delete_Type_Both`;
/// at most 1000 `To_Account`. Answers `ResultItem[]` like friend_add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendDeleteRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
    #[serde(
        rename = "DeleteType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub delete_type: Option<String>,
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

/// `recentcontact/get_list` (CN-62118): one page of an account's conversations. The two
/// cursors (ordinary and pinned conversations) come back in the answer for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentContactRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "TimeStamp")]
    pub time_stamp: u64,
    #[serde(rename = "StartIndex")]
    pub start_index: u64,
    #[serde(rename = "TopTimeStamp")]
    pub top_time_stamp: u64,
    #[serde(rename = "TopStartIndex")]
    pub top_start_index: u64,
    /// The current documentation says to send 63 ("the full conversation data"); older pages
    /// explain bits 0-2 (pinned conversations, empty ones, paging the pinned).
    #[serde(rename = "AssistFlags")]
    pub assist_flags: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    /// 1 one-to-one, 2 group.
    #[serde(rename = "Type", default)]
    pub kind: u8,
    #[serde(rename = "To_Account", default)]
    pub to_account: Option<String>,
    #[serde(rename = "GroupId", default)]
    pub group_id: Option<String>,
    /// The conversation's last message, Unix seconds.
    #[serde(rename = "MsgTime", default)]
    pub msg_time: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentContactResponse {
    #[serde(rename = "SessionItem", default)]
    pub sessions: Vec<SessionItem>,
    /// 1: no more pages.
    #[serde(rename = "CompleteFlag", default)]
    pub complete: u8,
    #[serde(rename = "TimeStamp", default)]
    pub time_stamp: u64,
    #[serde(rename = "StartIndex", default)]
    pub start_index: u64,
    #[serde(rename = "TopTimeStamp", default)]
    pub top_time_stamp: u64,
    #[serde(rename = "TopStartIndex", default)]
    pub top_start_index: u64,
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
pub(super) struct GroupIdResponse {
    #[serde(rename = "GroupId")]
    pub(super) group_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct GroupIdRequest {
    #[serde(rename = "GroupId")]
    pub(super) group_id: String,
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
pub(super) struct MemberListResponse {
    #[serde(rename = "MemberList", default)]
    pub(super) member_list: Vec<MemberResult>,
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
pub(super) struct ImportGroupMsgResponse {
    #[serde(rename = "ImportMsgResult", default)]
    pub(super) import_msg_result: Vec<ImportGroupMsgResult>,
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

/// openim/admin_msgwithdraw (CN-38980 / INTL-35015). Request shape as Tencent documents it;
/// UNCONFIRMED against a live app (no callback or answer captured here). Answers the bare
/// envelope; 20022 the message does not exist, 20023 it was recalled already, 90054 bad MsgKey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsgWithdrawRequest {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// `{MsgSeq}_{MsgRandom}_{MsgTime}`.
    #[serde(rename = "MsgKey")]
    pub msg_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsgSeqItem {
    #[serde(rename = "MsgSeq")]
    pub msg_seq: u64,
}

/// group_open_http_svc/group_msg_recall (CN-12341 / INTL-34965): at most 10 seqs a request.
/// Request shape as Tencent documents it; UNCONFIRMED against a live app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsgRecallRequest {
    #[serde(rename = "GroupId")]
    pub group_id: String,
    #[serde(rename = "MsgSeqList")]
    pub msg_seq_list: Vec<MsgSeqItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallRet {
    #[serde(rename = "MsgSeq")]
    pub msg_seq: u64,
    /// 0 recalled; otherwise why not (the documented sample shows 10030, its meaning is
    /// UNCONFIRMED: taken as "no such message").
    #[serde(rename = "RetCode", default)]
    pub ret_code: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMsgRecallResponse {
    #[serde(rename = "RecallRetList", default)]
    pub recall_ret_list: Vec<RecallRet>,
}
