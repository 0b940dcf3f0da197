//! Groups: groups themselves, their members and their messages.

use super::args::{batch, get_array, get_str, get_u32, get_u64, opt_str, opt_u64, string_list};
use super::messages::{check_msg_body, forbids_after, msg_size};
use super::{rej, Ctx, Data, Group, GroupMessage, Member, Out, Reject};
use crate::providers::tencent::convert::check_group_id;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Group imports state 8000 bytes.
const MAX_GROUP_MSG_BYTES: usize = 8000;
const GROUP_RANDOM_DEDUPE_SECS: u64 = 300;

const GROUP_TYPES: &[&str] = &["Private", "Public", "ChatRoom", "AVChatRoom", "Community"];

fn group_type(v: &Value) -> Result<String, Reject> {
    let t = get_str(v, "Type", 10004)?;
    // Work and Meeting are the newer names of Private and ChatRoom.
    let t = match t.as_str() {
        "Work" => "Private".to_string(),
        "Meeting" => "ChatRoom".to_string(),
        _ => t,
    };
    if !GROUP_TYPES.contains(&t.as_str()) {
        return Err(rej(
            10004,
            format!("group Type {t:?} is not one of {GROUP_TYPES:?}"),
        ));
    }
    Ok(t)
}

fn new_group_id(d: &mut Data, ty: &str) -> String {
    d.next_group_no += 1;
    let prefix = if ty == "Community" {
        "@TGS#_@TGS#"
    } else {
        "@TGS#"
    };
    format!("{prefix}2{:09X}", d.next_group_no)
}

fn check_custom_group_id(id: &str, ty: &str) -> Result<(), Reject> {
    if ty == "Community" {
        let rest = id.strip_prefix("@TGS#_").ok_or_else(|| {
            rej(
                10015,
                format!("Community group id {id:?} must start with @TGS#_"),
            )
        })?;
        if id.len() > 48 || rest.is_empty() || !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(rej(10015, format!("group id {id:?} is invalid")));
        }
        return Ok(());
    }
    check_group_id(id).map_err(|e| rej(10015, e))
}

/// Common fields of import_group and create_group. Returns (id, group) without inserting.
fn new_group(
    ctx: &Ctx,
    d: &mut Data,
    v: &Value,
    create_time: u64,
) -> Result<(String, Group), Reject> {
    let ty = group_type(v)?;
    let name = get_str(v, "Name", 10004)?;
    if name.is_empty() || name.len() > 30 {
        return Err(rej(10004, "Name must be 1 to 30 bytes"));
    }
    let owner = opt_str(v, "Owner_Account", 10004)?;
    if let Some(o) = &owner {
        if !ctx.account_exists(d, o) {
            return Err(rej(10019, format!("Owner_Account {o:?} does not exist")));
        }
    }
    let id = match opt_str(v, "GroupId", 10004)? {
        Some(id) => {
            check_custom_group_id(&id, &ty)?;
            if d.groups.contains_key(&id) {
                return Err(rej(10021, format!("group id {id:?} is already used")));
            }
            id
        }
        None => new_group_id(d, &ty),
    };
    let mut members = BTreeMap::new();
    if let Some(o) = &owner {
        members.insert(
            o.clone(),
            Member {
                role: "Owner".into(),
                join_time: create_time,
                unread: 0,
            },
        );
    }
    let group = Group {
        group_type: ty,
        name,
        owner,
        introduction: opt_str(v, "Introduction", 10004)?,
        notification: opt_str(v, "Notification", 10004)?,
        face_url: opt_str(v, "FaceUrl", 10004)?,
        max_member_count: opt_u64(v, "MaxMemberCount", 10004)?,
        apply_join_option: opt_str(v, "ApplyJoinOption", 10004)?,
        create_time,
        members,
        messages: Vec::new(),
    };
    Ok((id, group))
}

pub(super) fn import_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    if group_type(v)? == "AVChatRoom" {
        return Err(rej(
            10007,
            "AVChatRoom groups cannot be imported; use create_group",
        ));
    }
    let create_time = opt_u64(v, "CreateTime", 10004)?.unwrap_or(ctx.now);
    if create_time > ctx.now {
        return Err(rej(10004, "CreateTime is in the future"));
    }
    let (id, group) = new_group(ctx, d, v, create_time)?;
    d.groups.insert(id.clone(), group);
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    Ok(out)
}

fn member_names(g: &Group) -> Vec<Value> {
    g.members
        .keys()
        .map(|m| json!({"Member_Account": m}))
        .collect()
}

pub(super) fn create_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, mut group) = new_group(ctx, d, v, ctx.now)?;
    let list = match v.get("MemberList") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => get_array(v, "MemberList", 10004)?.clone(),
    };
    if group.group_type == "AVChatRoom" && !list.is_empty() {
        return Err(rej(10007, "AVChatRoom groups take no initial MemberList"));
    }
    batch(ctx, "group_open_http_svc/create_group", list.len(), 10005)?;
    for m in &list {
        let acc = get_str(m, "Member_Account", 10004)?;
        if !ctx.account_exists(d, &acc) {
            return Err(rej(10019, format!("account {acc:?} does not exist")));
        }
        let role = opt_str(m, "Role", 10004)?.unwrap_or_else(|| "Member".into());
        group.members.entry(acc).or_insert(Member {
            role,
            join_time: ctx.now,
            unread: 0,
        });
    }
    ctx.callback(
        "Group.CallbackAfterCreateGroup",
        json!({"GroupId": id, "Type": group.group_type, "Operator_Account": ctx.admin,
               "Owner_Account": group.owner.clone().unwrap_or_default(), "Name": group.name,
               "MemberList": member_names(&group), "UserDefinedDataList": []}),
    );
    let ty = group.group_type.clone();
    d.groups.insert(id.clone(), group);
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    out.insert("Type".into(), json!(ty));
    Ok(out)
}

fn group_mut<'d>(d: &'d mut Data, v: &Value) -> Result<(String, &'d mut Group), Reject> {
    let id = get_str(v, "GroupId", 10004)?;
    match d.groups.get_mut(&id) {
        Some(g) => Ok((id, g)),
        None => Err(rej(10010, format!("group {id:?} does not exist"))),
    }
}

pub(super) fn destroy_group(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, _) = group_mut(d, v)?;
    let g = d.groups.remove(&id).expect("checked above");
    d.group_random_seen
        .retain(|k, _| !k.starts_with(&format!("{id}\n")));
    ctx.callback(
        "Group.CallbackAfterGroupDestroyed",
        json!({"GroupId": id, "Type": g.group_type, "Owner_Account": g.owner.clone().unwrap_or_default(),
               "Name": g.name, "MemberList": member_names(&g)}),
    );
    Ok(Map::new())
}

pub(super) fn modify_group_base_info(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (id, g) = group_mut(d, v)?;
    let mut changed = json!({"GroupId": id, "Type": g.group_type, "Operator_Account": ctx.admin});
    if let Some(name) = opt_str(v, "Name", 10004)? {
        if name.is_empty() || name.len() > 30 {
            return Err(rej(10004, "Name must be 1 to 30 bytes"));
        }
        changed["Name"] = json!(name);
        g.name = name;
    }
    for (field, slot) in [
        ("Introduction", &mut g.introduction),
        ("Notification", &mut g.notification),
        ("FaceUrl", &mut g.face_url),
        ("ApplyJoinOption", &mut g.apply_join_option),
    ] {
        if let Some(x) = opt_str(v, field, 10004)? {
            if field != "ApplyJoinOption" {
                changed[field] = json!(x);
            }
            *slot = Some(x);
        }
    }
    if let Some(n) = opt_u64(v, "MaxMemberNum", 10004)? {
        g.max_member_count = Some(n);
    }
    ctx.callback("Group.CallbackAfterGroupInfoChanged", changed);
    Ok(Map::new())
}

fn member_accounts(v: &Value, field: &str) -> Result<Vec<String>, Reject> {
    get_array(v, field, 10004)?
        .iter()
        .map(|m| get_str(m, "Member_Account", 10004))
        .collect()
}

fn ensure_accounts(ctx: &Ctx, d: &Data, ids: &[String]) -> Result<(), Reject> {
    match ids.iter().find(|a| !ctx.account_exists(d, a)) {
        Some(a) => Err(rej(10019, format!("account {a:?} does not exist"))),
        None => Ok(()),
    }
}

pub(super) fn add_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let accounts = member_accounts(v, "MemberList")?;
    batch(
        ctx,
        "group_open_http_svc/add_group_member",
        accounts.len(),
        10005,
    )?;
    ensure_accounts(ctx, d, &accounts)?;
    let now = ctx.now;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(
            10007,
            "add_group_member does not apply to AVChatRoom groups",
        ));
    }
    let mut results = Vec::new();
    let mut joined = Vec::new();
    for a in accounts {
        let r = if g.members.contains_key(&a) {
            2
        } else {
            g.members.insert(
                a.clone(),
                Member {
                    role: "Member".into(),
                    join_time: now,
                    unread: 0,
                },
            );
            joined.push(json!({"Member_Account": a}));
            1
        };
        results.push(json!({"Member_Account": a, "Result": r}));
    }
    let ty = g.group_type.clone();
    if !joined.is_empty() {
        ctx.callback(
            "Group.CallbackAfterNewMemberJoin",
            json!({"GroupId": id, "Type": ty, "JoinType": "Invited",
                   "Operator_Account": ctx.admin, "NewMemberList": joined}),
        );
    }
    let mut out = Map::new();
    out.insert("MemberList".into(), Value::Array(results));
    Ok(out)
}

pub(super) fn delete_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let accounts = string_list(v, "MemberToDel_Account", 10004)?;
    batch(
        ctx,
        "group_open_http_svc/delete_group_member",
        accounts.len(),
        10005,
    )?;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(
            10004,
            "delete_group_member does not apply to AVChatRoom groups",
        ));
    }
    // Non-members "succeed" too.
    let left: Vec<Value> = accounts
        .iter()
        .filter(|a| g.members.remove(*a).is_some())
        .map(|a| json!({"Member_Account": a}))
        .collect();
    let ty = g.group_type.clone();
    if !left.is_empty() {
        ctx.callback(
            "Group.CallbackAfterMemberExit",
            json!({"GroupId": id, "Type": ty, "ExitType": "Kicked",
                   "Operator_Account": ctx.admin, "ExitMemberList": left}),
        );
    }
    Ok(Map::new())
}

pub(super) fn import_group_member(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let list = get_array(v, "MemberList", 10004)?.clone();
    batch(
        ctx,
        "group_open_http_svc/import_group_member",
        list.len(),
        10005,
    )?;
    let accounts: Vec<String> = list
        .iter()
        .map(|m| get_str(m, "Member_Account", 10004))
        .collect::<Result<_, _>>()?;
    ensure_accounts(ctx, d, &accounts)?;
    let now = ctx.now;
    let (_, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups cannot import members"));
    }
    let mut results = Vec::new();
    for (m, acc) in list.iter().zip(accounts) {
        let join = opt_u64(m, "JoinTime", 10004)?;
        let role = opt_str(m, "Role", 10004)?;
        let unread = opt_u64(m, "UnreadMsgNum", 10004)?.unwrap_or(0);
        let r = if g.members.contains_key(&acc) {
            2
        } else if join.is_some_and(|t| t <= g.create_time || t >= now)
            || role.as_deref().is_some_and(|r| r != "Admin")
        {
            0
        } else {
            g.members.insert(
                acc.clone(),
                Member {
                    role: role.unwrap_or_else(|| "Member".into()),
                    join_time: join.unwrap_or(now),
                    unread: unread.min(g.messages.len() as u64),
                },
            );
            1
        };
        results.push(json!({"Member_Account": acc, "Result": r}));
    }
    let mut out = Map::new();
    out.insert("MemberList".into(), Value::Array(results));
    Ok(out)
}

pub(super) fn import_group_msg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let list = get_array(v, "MsgList", 10004)?.clone();
    batch(
        ctx,
        "group_open_http_svc/import_group_msg",
        list.len(),
        10005,
    )?;
    let senders: Vec<String> = list
        .iter()
        .map(|m| get_str(m, "From_Account", 10004))
        .collect::<Result<_, _>>()?;
    ensure_accounts(ctx, d, &senders)?;
    for m in &list {
        get_u64(m, "SendTime", 10004)?;
        check_msg_body(m.get("MsgBody").unwrap_or(&Value::Null)).map_err(|e| rej(10004, e))?;
    }
    let now = ctx.now;
    let allow_equal = ctx.config.allow_equal_group_send_time;
    let (id, _) = group_mut(d, v)?;
    let Data {
        groups,
        group_random_seen,
        ..
    } = d;
    let g = groups.get_mut(&id).expect("checked above");
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups cannot import messages"));
    }
    group_random_seen.retain(|_, (at, _, _)| now.saturating_sub(*at) < GROUP_RANDOM_DEDUPE_SECS);
    let mut results = Vec::new();
    let mut imported = false;
    for (m, from) in list.iter().zip(senders) {
        let time = get_u64(m, "SendTime", 10004)?;
        let random = opt_u64(m, "Random", 10004)?;
        let body = m.get("MsgBody").cloned().unwrap_or(Value::Null);
        let cloud = opt_str(m, "CloudCustomData", 10004)?;
        let dedupe = random.map(|r| format!("{id}\n{r}"));
        if let Some((_, seq, t)) = dedupe.as_ref().and_then(|k| group_random_seen.get(k)) {
            // A replay within 5 minutes is dropped; answer as the first time.
            results.push(json!({"MsgSeq": seq, "MsgTime": t, "Result": 0}));
            continue;
        }
        let last = g.messages.last().map_or(0, |x| x.time);
        let after_last = if allow_equal {
            time >= last
        } else {
            time > last
        };
        let result = if msg_size(&body, cloud.as_deref()) > MAX_GROUP_MSG_BYTES {
            80002
        } else if time >= now || time <= g.create_time || !after_last {
            10004
        } else {
            0
        };
        if result != 0 {
            results.push(json!({"MsgSeq": 0, "MsgTime": time, "Result": result}));
            continue;
        }
        let seq = g.messages.last().map_or(0, |x| x.seq) + 1;
        g.messages.push(GroupMessage {
            seq,
            from,
            time,
            random: random.unwrap_or(0),
            body,
            cloud_custom_data: cloud,
            recalled: false,
        });
        if let Some(k) = dedupe {
            group_random_seen.insert(k, (now, seq, time));
        }
        imported = true;
        results.push(json!({"MsgSeq": seq, "MsgTime": time, "Result": 0}));
    }
    if imported {
        // Importing messages zeroes every member's unread count (spec §3.5).
        for m in g.members.values_mut() {
            m.unread = 0;
        }
    }
    let mut out = Map::new();
    out.insert("ImportMsgResult".into(), Value::Array(results));
    Ok(out)
}

pub(super) fn set_unread_msg_num(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let acc = get_str(v, "Member_Account", 10004)?;
    let unread = get_u64(v, "UnreadMsgNum", 10004)?;
    if !ctx.account_exists(d, &acc) {
        return Err(rej(10019, format!("account {acc:?} does not exist")));
    }
    let (id, g) = group_mut(d, v)?;
    let count = g.messages.len() as u64;
    let tracks_unread = !matches!(g.group_type.as_str(), "ChatRoom" | "AVChatRoom");
    let Some(m) = g.members.get_mut(&acc) else {
        return Err(rej(10004, format!("{acc:?} is not a member of {id:?}")));
    };
    // ChatRoom and AVChatRoom have no unread counts; the call succeeds without effect.
    if tracks_unread {
        m.unread = unread.min(count);
    }
    Ok(Map::new())
}

pub(super) fn send_group_msg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let random = get_u32(v, "Random", 10004)?;
    let from = opt_str(v, "From_Account", 10004)?.unwrap_or_else(|| ctx.admin.to_string());
    if !ctx.account_exists(d, &from) {
        return Err(rej(10019, format!("account {from:?} does not exist")));
    }
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    check_msg_body(&body).map_err(|e| rej(10004, e))?;
    let cloud = opt_str(v, "CloudCustomData", 10004)?;
    if msg_size(&body, cloud.as_deref()) > MAX_GROUP_MSG_BYTES {
        return Err(rej(80002, "the message is larger than 8000 bytes"));
    }
    let now = ctx.now;
    let (id, _) = group_mut(d, v)?;
    let Data {
        groups,
        group_random_seen,
        ..
    } = d;
    let g = groups.get_mut(&id).expect("checked above");
    group_random_seen.retain(|_, (at, _, _)| now.saturating_sub(*at) < GROUP_RANDOM_DEDUPE_SECS);
    let dedupe = format!(
        "{id}\n{random}\n{}",
        crc32fast::hash(body.to_string().as_bytes())
    );
    let mut out = Map::new();
    if let Some((_, seq, t)) = group_random_seen.get(&dedupe) {
        out.insert("MsgTime".into(), json!(t));
        out.insert("MsgSeq".into(), json!(seq));
        return Ok(out);
    }
    let seq = g.messages.last().map_or(0, |x| x.seq) + 1;
    g.messages.push(GroupMessage {
        seq,
        from: from.clone(),
        time: now,
        random,
        body: body.clone(),
        cloud_custom_data: cloud.clone(),
        recalled: false,
    });
    for (name, m) in g.members.iter_mut() {
        if *name != from {
            m.unread += 1;
        }
    }
    group_random_seen.insert(dedupe, (now, seq, now));
    if !forbids_after(v) {
        let ty = g.group_type.clone();
        ctx.callback(
            "Group.CallbackAfterSendMsg",
            json!({"GroupId": id, "Type": ty, "From_Account": from, "Operator_Account": ctx.admin,
                   "Random": random, "MsgSeq": seq, "MsgTime": now, "OnlineOnlyFlag": 0,
                   "MsgBody": body, "CloudCustomData": cloud.unwrap_or_default()}),
        );
    }
    out.insert("MsgTime".into(), json!(now));
    out.insert("MsgSeq".into(), json!(seq));
    Ok(out)
}

pub(super) fn group_msg_get_simple(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let n = get_u64(v, "ReqMsgNumber", 10004)?;
    if n == 0 {
        return Err(rej(10004, "ReqMsgNumber must be at least 1"));
    }
    batch(
        ctx,
        "group_open_http_svc/group_msg_get_simple",
        n as usize,
        10005,
    )?;
    let from_seq = opt_u64(v, "ReqMsgSeq", 10004)?;
    let (id, g) = group_mut(d, v)?;
    if g.group_type == "AVChatRoom" {
        return Err(rej(10007, "AVChatRoom groups keep no history"));
    }
    let page: Vec<&GroupMessage> = g
        .messages
        .iter()
        .rev()
        .filter(|m| from_seq.is_none_or(|s| m.seq <= s))
        .take(n as usize)
        .collect();
    let oldest = g.messages.first().map(|m| m.seq);
    let finished = page.last().map(|m| m.seq) == oldest || page.is_empty();
    let list: Vec<Value> = page
        .iter()
        .map(|m| {
            json!({"From_Account": m.from, "IsPlaceMsg": if m.recalled { 2 } else { 0 }, "MsgPriority": 1, "MsgRandom": m.random,
                   "MsgSeq": m.seq, "MsgTimeStamp": m.time, "MsgBody": m.body,
                   "CloudCustomData": m.cloud_custom_data.clone().unwrap_or_default()})
        })
        .collect();
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(id));
    out.insert("IsFinished".into(), json!(u8::from(finished)));
    out.insert("RspMsgList".into(), Value::Array(list));
    Ok(out)
}

/// group_msg_recall (CN-12341): recalls up to 10 messages by `MsgSeq`, one `RecallRetList`
/// answer each. A seq the group does not have answers 10030 (the code the documented sample
/// shows; its meaning is UNCONFIRMED); one recalled already answers 0 again (UNCONFIRMED).
/// Read back with `IsPlaceMsg` 2; fires `Group.CallbackAfterRecallMsg` for what it recalled.
pub(super) fn group_msg_recall(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let list = get_array(v, "MsgSeqList", 10004)?.clone();
    if list.is_empty() {
        return Err(rej(10004, "MsgSeqList is empty"));
    }
    batch(
        ctx,
        "group_open_http_svc/group_msg_recall",
        list.len(),
        10004,
    )?;
    let mut seqs = vec![];
    for item in &list {
        seqs.push(get_u64(item, "MsgSeq", 10004)?);
    }
    let (id, g) = group_mut(d, v)?;
    let (mut rets, mut recalled) = (vec![], vec![]);
    for seq in seqs {
        let code = match g.messages.iter_mut().find(|m| m.seq == seq) {
            Some(m) => {
                if !m.recalled {
                    m.recalled = true;
                    recalled.push(json!({"MsgSeq": seq}));
                }
                0
            }
            None => 10030,
        };
        rets.push(json!({"MsgSeq": seq, "RetCode": code}));
    }
    if !recalled.is_empty() {
        let ty = g.group_type.clone();
        ctx.callback(
            "Group.CallbackAfterRecallMsg",
            json!({"GroupId": id, "Type": ty, "Operator_Account": ctx.admin,
                   "MsgSeqList": recalled}),
        );
    }
    let mut out = Map::new();
    out.insert("RecallRetList".into(), Value::Array(rets));
    Ok(out)
}
