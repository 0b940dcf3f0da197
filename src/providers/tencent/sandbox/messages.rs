//! One-to-one messages: importmsg, sendmsg, admin_getroammsg, admin_msgwithdraw, and the
//! message-body checks group messages share.

use super::args::{get_str, get_u32, get_u64, opt_str, opt_u64};
use super::{rej, C2cMessage, Ctx, Data, Out};
use serde_json::{json, Map, Value};

/// Largest message (MsgBody + CloudCustomData as JSON) Tencent accepts.
const MAX_MSG_BYTES: usize = 8 * 1024;
const SENDMSG_DEDUPE_SECS: u64 = 120;

fn conv_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}\n{b}")
    } else {
        format!("{b}\n{a}")
    }
}

/// Message elements (spec §3.7). Returns what is wrong, if anything.
pub(super) fn check_msg_body(body: &Value) -> Result<(), String> {
    let Value::Array(elems) = body else {
        return Err("MsgBody must be an array".into());
    };
    if elems.is_empty() {
        return Err("MsgBody is empty".into());
    }
    let mut customs = 0;
    for (i, e) in elems.iter().enumerate() {
        let ty = e.get("MsgType").and_then(Value::as_str).unwrap_or("");
        let Some(c) = e.get("MsgContent").filter(|c| c.is_object()) else {
            return Err(format!("MsgBody[{i}].MsgContent must be an object"));
        };
        let has_str = |f: &str| c.get(f).is_some_and(Value::is_string);
        let flag2 = |f: &str| c.get(f).and_then(Value::as_u64) == Some(2);
        let ok = match ty {
            "TIMTextElem" => has_str("Text"),
            "TIMLocationElem" => {
                c.get("Latitude").is_some_and(Value::is_number)
                    && c.get("Longitude").is_some_and(Value::is_number)
            }
            "TIMFaceElem" => c.get("Index").is_some_and(Value::is_number),
            "TIMCustomElem" => {
                customs += 1;
                true
            }
            "TIMSoundElem" => has_str("Url") && has_str("UUID") && flag2("Download_Flag"),
            "TIMFileElem" => has_str("Url") && has_str("UUID") && flag2("Download_Flag"),
            "TIMImageElem" => {
                has_str("UUID") && c.get("ImageInfoArray").is_some_and(Value::is_array)
            }
            "TIMVideoFileElem" => {
                has_str("VideoUrl") && flag2("VideoDownloadFlag") && flag2("ThumbDownloadFlag")
            }
            "TIMRelayElem" => true,
            other => {
                return Err(format!(
                    "MsgBody[{i}].MsgType {other:?} is not a known element type"
                ))
            }
        };
        if !ok {
            return Err(format!(
                "MsgBody[{i}] ({ty}) is missing required fields or Download_Flag is not 2"
            ));
        }
    }
    if customs > 1 {
        return Err("at most one TIMCustomElem per message".into());
    }
    Ok(())
}

pub(super) fn msg_size(body: &Value, cloud: Option<&str>) -> usize {
    body.to_string().len() + cloud.map_or(0, str::len)
}

pub(super) fn importmsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let sync = v.get("SyncFromOldSystem").and_then(Value::as_u64);
    let sync_ok = match sync {
        Some(2) | Some(5) => true,
        Some(1) => ctx.config.accept_sync_from_old_system_1,
        _ => false,
    };
    if !sync_ok {
        return Err(rej(
            90030,
            "SyncFromOldSystem must be 2 (history) or 5 (real-time)",
        ));
    }
    let from = get_str(v, "From_Account", 90008)?;
    let to = get_str(v, "To_Account", 90003)?;
    let seq = opt_u64(v, "MsgSeq", 90001)?.unwrap_or(0);
    let random = get_u32(v, "MsgRandom", 90005)?;
    let time = get_u32(v, "MsgTimeStamp", 90006)?;
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    if !body.is_array() {
        return Err(rej(90002, "MsgBody must be an array"));
    }
    check_msg_body(&body).map_err(|e| rej(90010, e))?;
    let cloud = opt_str(v, "CloudCustomData", 90001)?;
    if msg_size(&body, cloud.as_deref()) > MAX_MSG_BYTES {
        return Err(rej(93000, "the message is larger than 8 KB"));
    }
    if !ctx.account_exists(d, &from) {
        return Err(rej(90048, format!("From_Account {from:?} does not exist")));
    }
    if !ctx.account_exists(d, &to) {
        return Err(rej(90012, format!("To_Account {to:?} is not registered")));
    }
    let conv = conv_key(&from, &to);
    // First write wins; a duplicate still answers OK.
    if d.c2c_seen.insert((conv.clone(), seq, random, time)) {
        d.c2c.entry(conv).or_default().push(C2cMessage {
            from,
            to,
            seq,
            random,
            time,
            body,
            cloud_custom_data: cloud,
            recalled: false,
        });
    }
    Ok(Map::new())
}

pub(super) fn forbids_after(v: &Value) -> bool {
    v.get("ForbidCallbackControl")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str() == Some("ForbidAfterSendMsgCallback"))
        })
}

pub(super) fn sendmsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = opt_str(v, "From_Account", 90008)?.unwrap_or_else(|| ctx.admin.to_string());
    let to = get_str(v, "To_Account", 90003)?;
    let random = get_u32(v, "MsgRandom", 90005)?;
    if let Some(life) = opt_u64(v, "MsgLifeTime", 90044)? {
        if life > 604_800 {
            return Err(rej(90026, "MsgLifeTime is longer than 7 days"));
        }
    }
    let body = v.get("MsgBody").cloned().unwrap_or(Value::Null);
    if !body.is_array() {
        return Err(rej(90002, "MsgBody must be an array"));
    }
    check_msg_body(&body).map_err(|e| rej(90010, e))?;
    let cloud = opt_str(v, "CloudCustomData", 90001)?;
    if msg_size(&body, cloud.as_deref()) > MAX_MSG_BYTES {
        return Err(rej(93000, "the message is larger than 8 KB"));
    }
    for a in [&from, &to] {
        if !ctx.account_exists(d, a) {
            return Err(rej(20003, format!("account {a:?} does not exist")));
        }
    }
    let seq = match opt_u64(v, "MsgSeq", 90001)? {
        Some(s) => s,
        None => {
            d.next_c2c_seq += 1;
            d.next_c2c_seq
        }
    };
    let now = ctx.now;
    let dedupe = format!(
        "{from}\n{seq}\n{random}\n{}",
        crc32fast::hash(body.to_string().as_bytes())
    );
    d.sendmsg_seen
        .retain(|_, (at, _, _)| now.saturating_sub(*at) < SENDMSG_DEDUPE_SECS);
    let mut out = Map::new();
    if let Some((_, t, key)) = d.sendmsg_seen.get(&dedupe) {
        out.insert("MsgTime".into(), json!(t));
        out.insert("MsgKey".into(), json!(key));
        return Ok(out);
    }
    let msg = C2cMessage {
        from: from.clone(),
        to: to.clone(),
        seq,
        random,
        time: now,
        body: body.clone(),
        cloud_custom_data: cloud.clone(),
        recalled: false,
    };
    let key = msg.key();
    d.sendmsg_seen.insert(dedupe, (now, now, key.clone()));
    let conv = conv_key(&from, &to);
    d.c2c_seen.insert((conv.clone(), seq, random, now));
    d.c2c.entry(conv).or_default().push(msg);
    if !forbids_after(v) {
        ctx.callback(
            "C2C.CallbackAfterSendMsg",
            json!({"From_Account": from, "To_Account": to, "MsgSeq": seq, "MsgRandom": random,
                   "MsgTime": now, "MsgKey": key, "OnlineOnlyFlag": 0, "SendMsgResult": 0,
                   "ErrorInfo": "send msg succeed", "UnreadMsgNum": 1, "MsgBody": body,
                   "CloudCustomData": cloud.unwrap_or_default()}),
        );
    }
    out.insert("MsgTime".into(), json!(now));
    out.insert("MsgKey".into(), json!(key));
    Ok(out)
}

pub(super) fn admin_getroammsg(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let op = get_str(v, "Operator_Account", 90001)?;
    let peer = get_str(v, "Peer_Account", 90001)?;
    let max_cnt = get_u64(v, "MaxCnt", 90001)?.clamp(1, 100) as usize;
    let min_time = get_u64(v, "MinTime", 90001)?;
    let max_time = get_u64(v, "MaxTime", 90001)?;
    let last_key = opt_str(v, "LastMsgKey", 90001)?;
    for a in [&op, &peer] {
        if !ctx.account_exists(d, a) {
            return Err(rej(90048, format!("account {a:?} does not exist")));
        }
    }
    // Newest first; continue from just after LastMsgKey.
    let mut msgs: Vec<&C2cMessage> = d
        .c2c
        .get(&conv_key(&op, &peer))
        .map(|m| {
            m.iter()
                .filter(|m| m.time >= min_time && m.time <= max_time)
                .collect()
        })
        .unwrap_or_default();
    msgs.sort_by_key(|m| std::cmp::Reverse((m.time, m.seq, m.random)));
    let start = match &last_key {
        Some(k) => msgs.iter().position(|m| &m.key() == k).map_or(0, |i| i + 1),
        None => 0,
    };
    let page: Vec<&C2cMessage> = msgs.iter().skip(start).take(max_cnt).copied().collect();
    let complete = start + page.len() >= msgs.len();
    let list: Vec<Value> = page
        .iter()
        .map(|m| {
            json!({"From_Account": m.from, "To_Account": m.to, "MsgSeq": m.seq, "MsgRandom": m.random,
                   "MsgTimeStamp": m.time, "MsgFlagBits": if m.recalled { 8 } else { 0 }, "IsPeerRead": 0, "MsgKey": m.key(),
                   "MsgBody": m.body, "CloudCustomData": m.cloud_custom_data.clone().unwrap_or_default()})
        })
        .collect();
    let mut out = Map::new();
    out.insert("Complete".into(), json!(u8::from(complete)));
    out.insert("MsgCnt".into(), json!(list.len()));
    out.insert(
        "LastMsgTime".into(),
        json!(page.last().map_or(0, |m| m.time)),
    );
    out.insert(
        "LastMsgKey".into(),
        json!(page.last().map(|m| m.key()).unwrap_or_default()),
    );
    out.insert("MsgList".into(), Value::Array(list));
    Ok(out)
}

/// admin_msgwithdraw (CN-38980): recalls one message by `MsgKey` (`{MsgSeq}_{MsgRandom}_{MsgTime}`)
/// between the two accounts. 90054 for a key of another shape, 20022 when there is no such
/// message, 20023 when it was recalled already. Read back with `MsgFlagBits` 8; fires
/// `C2C.CallbackAfterMsgWithDraw`.
pub(super) fn admin_msgwithdraw(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 90008)?;
    let to = get_str(v, "To_Account", 90003)?;
    let key = get_str(v, "MsgKey", 90054)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(90008, format!("From_Account {from:?} does not exist")));
    }
    if !ctx.account_exists(d, &to) {
        return Err(rej(90003, format!("To_Account {to:?} does not exist")));
    }
    let parts: Vec<&str> = key.split('_').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        return Err(rej(
            90054,
            format!("MsgKey {key:?} is not MsgSeq_MsgRandom_MsgTime"),
        ));
    }
    let msg = d
        .c2c
        .get_mut(&conv_key(&from, &to))
        .and_then(|l| l.iter_mut().find(|m| m.from == from && m.key() == key));
    let Some(msg) = msg else {
        return Err(rej(20022, format!("no message {key} from {from} to {to}")));
    };
    if msg.recalled {
        return Err(rej(20023, format!("message {key} was recalled already")));
    }
    msg.recalled = true;
    ctx.callback(
        "C2C.CallbackAfterMsgWithDraw",
        json!({"From_Account": from, "To_Account": to, "MsgKey": key, "UnreadMsgNum": 0}),
    );
    Ok(Map::new())
}

/// Conversations a page of `recentcontact/get_list` lists (Tencent pages by its own cursor).
const SESSIONS_PER_PAGE: usize = 100;

/// `recentcontact/get_list`: an account's conversations (one-to-one chats and groups it is in
/// with messages), the most recent first, paged by `StartIndex`. Top (pinned) conversations
/// are not kept here: the top cursor always comes back complete.
pub(super) fn recentcontact_get_list(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let account = get_str(v, "From_Account", 90001)?;
    let start = get_u64(v, "StartIndex", 90001)? as usize;
    get_u64(v, "TimeStamp", 90001)?;
    if !ctx.account_exists(d, &account) {
        return Err(rej(70107, format!("account {account:?} does not exist")));
    }
    let mut sessions: Vec<(u64, Value)> = d
        .c2c
        .iter()
        .filter_map(|(k, msgs)| {
            let (a, b) = k.split_once('\n')?;
            let peer = if a == account {
                b
            } else if b == account {
                a
            } else {
                return None;
            };
            let last = msgs.iter().map(|m| m.time).max()?;
            Some((
                last,
                json!({"Type": 1, "To_Account": peer, "MsgTime": last, "TopFlag": 0}),
            ))
        })
        .chain(d.groups.iter().filter_map(|(id, g)| {
            if !g.members.contains_key(&account) {
                return None;
            }
            let last = g.messages.iter().map(|m| m.time).max()?;
            Some((
                last,
                json!({"Type": 2, "GroupId": id, "MsgTime": last, "TopFlag": 0}),
            ))
        }))
        .collect();
    sessions.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    let page: Vec<Value> = sessions
        .iter()
        .skip(start)
        .take(SESSIONS_PER_PAGE)
        .map(|(_, s)| s.clone())
        .collect();
    let next = start + page.len();
    let mut out = Map::new();
    out.insert("SessionItem".into(), Value::Array(page));
    out.insert(
        "CompleteFlag".into(),
        json!(u8::from(next >= sessions.len())),
    );
    out.insert("TimeStamp".into(), json!(ctx.now));
    out.insert("StartIndex".into(), json!(next));
    out.insert("TopTimeStamp".into(), json!(ctx.now));
    out.insert("TopStartIndex".into(), json!(0));
    Ok(out)
}
