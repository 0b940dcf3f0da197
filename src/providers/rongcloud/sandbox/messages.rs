//! Messages (reference §2.5, §2.6) and reading them back (§2.7):
//! `message/private/publish`, `message/group/publish`, `statusmessage/*/publish`,
//! `v3/message/private|group/query`, `message/history` (the hourly log, when enabled).

use super::params::{check_group_id, check_user_id, Params, PARAM, TOO_LONG};
use super::users::beijing_time;
use super::{ok, rej, Channel, Ctx, Data, Message, Out, Reject, Shared, SERVER};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

pub(super) const TEXT: &str = "RC:TxtMsg";

/// The largest `content` (reference §2.5: 128 KB).
const CONTENT_MAX: usize = 128 * 1024;
/// The longest `objectName` (reference §4).
const OBJECT_NAME_MAX: usize = 32;

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Num,
    /// A string that must be an `http(s)://` URL (media must already be hosted: there is no
    /// upload API, §2.6).
    Url,
}

/// The built-in types and the fields each must carry (reference §2.6). Types listed with no
/// fields are accepted as any JSON object.
const BUILT_IN: &[(&str, &[(&str, Kind)])] = &[
    (TEXT, &[("content", Kind::Str)]),
    ("RC:ImgMsg", &[("imageUri", Kind::Url)]),
    ("RC:GIFMsg", &[("remoteUrl", Kind::Url)]),
    (
        "RC:HQVCMsg",
        &[("remoteUrl", Kind::Url), ("duration", Kind::Num)],
    ),
    (
        "RC:VcMsg",
        &[("content", Kind::Str), ("duration", Kind::Num)],
    ),
    (
        "RC:SightMsg",
        &[("sightUrl", Kind::Url), ("duration", Kind::Num)],
    ),
    (
        "RC:FileMsg",
        &[
            ("name", Kind::Str),
            ("size", Kind::Num),
            ("fileUrl", Kind::Url),
        ],
    ),
    (
        "RC:LBSMsg",
        &[("latitude", Kind::Num), ("longitude", Kind::Num)],
    ),
    (
        "RC:GrpNtf",
        &[("operatorUserId", Kind::Str), ("operation", Kind::Str)],
    ),
    ("RC:ReferenceMsg", &[]),
    ("RC:CombineMsg", &[]),
    ("RC:ImgTextMsg", &[]),
    ("RC:CmdMsg", &[]),
    ("RC:CmdNtf", &[]),
    ("RC:InfoNtf", &[]),
    ("RC:ContactNtf", &[]),
    ("RC:ProfileNtf", &[]),
    ("RC:TypSts", &[]),
    ("RC:ReadNtf", &[]),
];

/// Optional fields whose type is checked when present, in every built-in type.
const OPTIONAL: &[(&str, Kind)] = &[
    ("extra", Kind::Str),
    ("content", Kind::Str),
    ("size", Kind::Num),
    ("duration", Kind::Num),
    ("poi", Kind::Str),
    ("type", Kind::Str),
];

fn check_field(
    object_name: &str,
    c: &Map<String, Value>,
    field: &str,
    kind: Kind,
) -> Result<(), Reject> {
    let bad = |what: &str| {
        rej(
            PARAM,
            format!("content of {object_name}: {field} must be {what}"),
        )
    };
    match (kind, c.get(field)) {
        (_, None) => Err(rej(
            PARAM,
            format!("content of {object_name} needs {field}"),
        )),
        (Kind::Str, Some(Value::String(_))) => Ok(()),
        (Kind::Num, Some(Value::Number(_))) => Ok(()),
        (Kind::Url, Some(Value::String(u))) => {
            if u.starts_with("https://") || u.starts_with("http://") {
                Ok(())
            } else {
                Err(bad("an http(s) URL of media already hosted"))
            }
        }
        (Kind::Str, _) => Err(bad("a string")),
        (Kind::Num, _) => Err(bad("a number")),
        (Kind::Url, _) => Err(bad("an http(s) URL string")),
    }
}

/// `RC:TxtMsg`'s `mentionedInfo`: `type` 1 (@all) or 2 (@ the users of `userIdList`).
fn check_mentions(c: &Map<String, Value>) -> Result<(), Reject> {
    let Some(m) = c.get("mentionedInfo") else {
        return Ok(());
    };
    let bad = |why: &str| rej(PARAM, format!("content of RC:TxtMsg: mentionedInfo {why}"));
    let Value::Object(m) = m else {
        return Err(bad("must be an object"));
    };
    match m.get("type").and_then(Value::as_i64) {
        Some(1) => Ok(()),
        Some(2) => match m.get("userIdList") {
            Some(Value::Array(ids)) if !ids.is_empty() && ids.iter().all(Value::is_string) => {
                Ok(())
            }
            _ => Err(bad("type 2 needs userIdList, a non-empty list of user ids")),
        },
        _ => Err(bad("type must be 1 (@all) or 2 (@ listed users)")),
    }
}

/// `objectName` and `content` (reference §2.5, §2.6, §4): the name ≤32 characters, built-in
/// (`RC:`) or custom; the content ≤128 KB; a built-in's content a JSON object with its
/// fields (when [`super::SandboxConfig::check_content`]); a custom one any text.
fn check_content<'a>(ctx: &Ctx, p: &'a Params) -> Result<(&'a str, &'a str), Reject> {
    let object_name = p.req("objectName")?;
    let n = object_name.chars().count();
    if n > OBJECT_NAME_MAX {
        return Err(rej(
            TOO_LONG,
            format!("objectName is {n} characters; at most {OBJECT_NAME_MAX}"),
        ));
    }
    let content = p.req("content")?;
    if content.len() > CONTENT_MAX {
        return Err(rej(
            TOO_LONG,
            format!("content is {} bytes; at most {CONTENT_MAX}", content.len()),
        ));
    }
    if !object_name.starts_with("RC:") {
        return Ok((object_name, content));
    }
    let Some((_, required)) = BUILT_IN.iter().find(|(name, _)| *name == object_name) else {
        return Err(rej(
            PARAM,
            format!(
                "objectName {object_name:?} is not a built-in type; custom types must not start with RC:"
            ),
        ));
    };
    let Ok(Value::Object(c)) = serde_json::from_str::<Value>(content) else {
        return Err(rej(
            PARAM,
            format!("content of {object_name} must be a JSON object"),
        ));
    };
    if !ctx.config.check_content {
        return Ok((object_name, content));
    }
    for &(field, kind) in *required {
        check_field(object_name, &c, field, kind)?;
    }
    for &(field, kind) in OPTIONAL {
        if c.contains_key(field) && !required.iter().any(|(f, _)| *f == field) {
            check_field(object_name, &c, field, kind)?;
        }
    }
    if let Some(u) = c.get("user") {
        if !u.is_object() {
            return Err(rej(
                PARAM,
                format!("content of {object_name}: user must be an object"),
            ));
        }
    }
    if object_name == TEXT {
        check_mentions(&c)?;
    }
    Ok((object_name, content))
}

/// What a publish call asks besides its sender, targets and content.
struct Options {
    persisted: bool,
    include_sender: bool,
    counted: bool,
    mentioned: bool,
    disable_push: bool,
    disable_update_last_msg: bool,
    push_content: Option<String>,
    expansion: bool,
    extra_content: Option<String>,
    bus_channel: Option<String>,
}

/// The flags of reference §2.5 (unknown ones, and any time the caller gives, are ignored:
/// the server stamps the time).
fn options(p: &Params) -> Result<Options, Reject> {
    p.flag("contentAvailable", false)?;
    p.int("count")?;
    p.text("pushData", 8 * 1024)?;
    p.json_object("pushExt", 8 * 1024)?;
    Ok(Options {
        persisted: p.flag("isPersisted", true)?,
        include_sender: p.flag("isIncludeSender", false)?,
        counted: p.flag("isCounted", true)?,
        mentioned: p.flag("isMentioned", false)?,
        disable_push: p.boolean("disablePush", false)?,
        disable_update_last_msg: p.boolean("disableUpdateLastMsg", false)?,
        push_content: p.text("pushContent", 1024)?.map(String::from),
        expansion: p.boolean("expansion", false)?,
        extra_content: p
            .json_object("extraContent", CONTENT_MAX)?
            .map(String::from),
        bus_channel: p
            .text("busChannel", 20)?
            .filter(|b| !b.is_empty())
            .map(String::from),
    })
}

/// The sender of a publish: a valid id, registered when the sandbox requires it.
fn sender<'a>(ctx: &Ctx, data: &Data, p: &'a Params) -> Result<&'a str, Reject> {
    let from = p.req("fromUserId")?;
    check_user_id("fromUserId", from)?;
    data.known(ctx.config, "fromUserId", from)?;
    Ok(from)
}

/// Stores one message of the server API and queues it for routing (which posts it only
/// when server-API messages are routed).
#[allow(clippy::too_many_arguments)]
fn store(
    ctx: &mut Ctx,
    data: &mut Data,
    channel: Channel,
    from: &str,
    to: &str,
    to_user_ids: Vec<String>,
    object_name: &str,
    content: &str,
    o: &Options,
    holders: BTreeSet<String>,
) -> String {
    let uid = data.new_uid();
    let msg_time = data.stamp(ctx.now_ms);
    let i = data.push_message(Message {
        uid: uid.clone(),
        msg_time,
        channel_type: channel,
        from_user_id: from.to_string(),
        to: to.to_string(),
        to_user_ids,
        object_name: object_name.to_string(),
        content: content.to_string(),
        is_persisted: o.persisted,
        is_include_sender: o.include_sender,
        is_counted: o.counted,
        is_mentioned: o.mentioned,
        disable_push: o.disable_push,
        disable_update_last_msg: o.disable_update_last_msg,
        push_content: o.push_content.clone(),
        expansion: o.expansion,
        extra_content: o.extra_content.clone(),
        bus_channel: o.bus_channel.clone(),
        holders: if o.persisted {
            holders
        } else {
            BTreeSet::new()
        },
        source: SERVER.to_string(),
    });
    ctx.to_route.push(i);
    uid
}

/// The recipients of a private publish: ≤1000 valid (and registered) ids.
fn recipients<'a>(
    ctx: &Ctx,
    data: &Data,
    p: &'a Params,
    api: &str,
) -> Result<Vec<&'a str>, Reject> {
    let to = p.all("toUserId");
    ctx.check_batch(api, "toUserId", to.len(), 1000)?;
    for id in &to {
        check_user_id("toUserId", id)?;
        data.known(ctx.config, "toUserId", id)?;
    }
    Ok(to)
}

/// `message/private/publish`: one message per recipient, each with its own UID and server
/// time. It lands in the recipient's history (when `isPersisted`, default 1) and the
/// sender's too with `isIncludeSender=1`. With `verifyBlacklist=1` a recipient who blocked
/// the sender gets nothing and is left out of `messageUIDs` (UNCONFIRMED).
pub(super) fn private_publish(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let from = sender(ctx, data, p)?;
    let to = recipients(ctx, data, p, "message/private/publish")?;
    let (object_name, content) = check_content(ctx, p)?;
    let o = options(p)?;
    let verify_blacklist = p.flag("verifyBlacklist", false)?;
    let mut uids = Vec::new();
    for r in to {
        let blocked = verify_blacklist && data.blacklists.get(r).is_some_and(|b| b.contains(from));
        if blocked {
            continue;
        }
        let mut holders = BTreeSet::from([r.to_string()]);
        if o.include_sender {
            holders.insert(from.to_string());
        }
        let uid = store(
            ctx,
            data,
            Channel::Person,
            from,
            r,
            Vec::new(),
            object_name,
            content,
            &o,
            holders,
        );
        uids.push(json!({ "userId": r, "messageUID": uid }));
    }
    let mut out = json!({ "messageUIDs": uids });
    if let [one] = uids.as_slice() {
        out["messageUID"] = one["messageUID"].clone();
    }
    ok(out)
}

/// `message/group/publish`: ≤3 existing groups (one message each), the sender need not be a
/// member; `toUserId` targets some members of a single group (and excludes `expansion`).
/// The message lands in the history of the members (or the targeted ones), and the
/// sender's with `isIncludeSender=1`.
pub(super) fn group_publish(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let from = sender(ctx, data, p)?;
    let groups = p.all("toGroupId");
    ctx.check_batch("message/group/publish", "toGroupId", groups.len(), 3)?;
    for g in &groups {
        check_group_id("toGroupId", g)?;
        if !data.groups.contains_key(*g) {
            return Err(rej(PARAM, format!("group {g:?} does not exist")));
        }
    }
    let targeted: Vec<String> = p.all("toUserId").into_iter().map(String::from).collect();
    let (object_name, content) = check_content(ctx, p)?;
    let o = options(p)?;
    if !targeted.is_empty() {
        if groups.len() != 1 {
            return Err(rej(
                PARAM,
                "toUserId (a targeted message) takes exactly one toGroupId",
            ));
        }
        if o.expansion {
            return Err(rej(
                PARAM,
                "a targeted message (toUserId) cannot use expansion",
            ));
        }
        let members = &data.groups[groups[0]].members;
        if let Some(t) = targeted.iter().find(|t| !members.contains_key(*t)) {
            return Err(rej(
                PARAM,
                format!("toUserId {t:?} is not in group {:?}", groups[0]),
            ));
        }
    }
    let mut uids = Vec::new();
    for g in groups {
        let mut holders: BTreeSet<String> = if targeted.is_empty() {
            data.groups[g].members.keys().cloned().collect()
        } else {
            targeted.iter().cloned().collect()
        };
        if o.include_sender {
            holders.insert(from.to_string());
        } else {
            holders.remove(from);
        }
        let uid = store(
            ctx,
            data,
            Channel::Group,
            from,
            g,
            targeted.clone(),
            object_name,
            content,
            &o,
            holders,
        );
        uids.push(json!({ "groupId": g, "messageUID": uid }));
    }
    let mut out = json!({ "messageUIDs": uids });
    if let [one] = uids.as_slice() {
        out["messageUID"] = one["messageUID"].clone();
    }
    ok(out)
}

/// `statusmessage/private/publish`: checked as a private message, delivered online only —
/// neither stored nor routed.
pub(super) fn status_private_publish(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    sender(ctx, data, p)?;
    let to = recipients(ctx, data, p, "statusmessage/private/publish")?;
    check_content(ctx, p)?;
    data.status_messages += to.len() as u64;
    ok(json!({}))
}

/// `statusmessage/group/publish`: as above for ≤3 existing groups.
pub(super) fn status_group_publish(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    sender(ctx, data, p)?;
    let groups = p.all("toGroupId");
    ctx.check_batch("statusmessage/group/publish", "toGroupId", groups.len(), 3)?;
    for g in &groups {
        check_group_id("toGroupId", g)?;
        if !data.groups.contains_key(*g) {
            return Err(rej(PARAM, format!("group {g:?} does not exist")));
        }
    }
    check_content(ctx, p)?;
    data.status_messages += groups.len() as u64;
    ok(json!({}))
}

/// A v3 query's window: `startTime` ≤ `endTime` reads forwards (oldest first), a
/// `startTime` after `endTime` backwards from `startTime` (newest first) — UNCONFIRMED, the
/// Java example suggests it; `includeStart` (default true) keeps a message exactly at `startTime`;
/// `pageSize` 1..=100 (default 20, UNCONFIRMED).
struct Window {
    start: u64,
    end: u64,
    include_start: bool,
    size: usize,
}

impl Window {
    fn of(ctx: &Ctx, p: &Params, api: &str) -> Result<Self, Reject> {
        let time = |k: &str| -> Result<u64, Reject> {
            let t = p.req_int(k)?;
            u64::try_from(t).map_err(|_| rej(PARAM, format!("{k} {t} must be epoch milliseconds")))
        };
        let start = time("startTime")?;
        let end = time("endTime")?;
        let max = ctx.batch(api, 100);
        let size = match p.int("pageSize")? {
            None => 20.min(max),
            Some(n) if n >= 1 && n as usize <= max => n as usize,
            Some(n) => return Err(rej(PARAM, format!("pageSize {n} must be from 1 to {max}"))),
        };
        Ok(Window {
            start,
            end,
            include_start: p.boolean("includeStart", true)?,
            size,
        })
    }

    fn pick<'a>(&self, matching: impl DoubleEndedIterator<Item = &'a Message>) -> Vec<&'a Message> {
        let (lo, hi) = (self.start.min(self.end), self.start.max(self.end));
        let inside = move |m: &&Message| {
            (lo..=hi).contains(&m.msg_time) && (self.include_start || m.msg_time != self.start)
        };
        if self.start <= self.end {
            matching.filter(inside).take(self.size).collect()
        } else {
            matching.rev().filter(inside).take(self.size).collect()
        }
    }
}

fn history_answer(ctx: &Ctx, target_of: impl Fn(&Message) -> String, picked: Vec<&Message>) -> Out {
    let data: Vec<Value> = picked
        .into_iter()
        .map(|m| {
            json!({
                "targetId": target_of(m),
                "fromUserId": m.from_user_id,
                "messageUID": m.uid,
                "msgTime": m.msg_time,
                "objectName": m.object_name,
                "content": m.content,
                "expansion": m.expansion,
                "extraContent": m.extra_content.clone().unwrap_or_default(),
                "busChannel": m.bus_channel.clone().unwrap_or_default(),
            })
        })
        .collect();
    ok(json!({ "code": ctx.config.history_success_code, "data": data }))
}

/// `v3/message/private/query` (JSON body): the messages between `userId` and `targetId` that
/// are in `userId`'s history.
pub(super) fn private_query(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let user = p.req("userId")?;
    check_user_id("userId", user)?;
    let target = p.req("targetId")?;
    check_user_id("targetId", target)?;
    let w = Window::of(ctx, p, "v3/message/private/query")?;
    let matching = data.messages.iter().filter(|m| {
        m.channel_type == Channel::Person
            && m.holders.contains(user)
            && ((m.from_user_id == user && m.to == target)
                || (m.from_user_id == target && m.to == user))
    });
    let picked = w.pick(matching);
    history_answer(ctx, |_| target.to_string(), picked)
}

/// `v3/message/group/query` (JSON body): group `targetId`'s messages in `userId`'s history.
pub(super) fn group_query(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let user = p.req("userId")?;
    check_user_id("userId", user)?;
    let target = p.req("targetId")?;
    check_group_id("targetId", target)?;
    let w = Window::of(ctx, p, "v3/message/group/query")?;
    let matching = data
        .messages
        .iter()
        .filter(|m| m.channel_type == Channel::Group && m.to == target && m.holders.contains(user));
    let picked = w.pick(matching);
    history_answer(ctx, |m| m.to.clone(), picked)
}

/// The Beijing-time hour (`YYYYMMDDHH`) a time (ms) falls in.
fn hour_of(ms: u64) -> String {
    let t = beijing_time(ms);
    // "YYYY-MM-DD HH:MM:SS" → "YYYYMMDDHH".
    t.chars().filter(char::is_ascii_digit).take(10).collect()
}

/// `date` must be `YYYYMMDDHH`.
fn check_date(date: &str) -> Result<(), Reject> {
    let digits = date.len() == 10 && date.bytes().all(|b| b.is_ascii_digit());
    let hour = date.get(8..10).and_then(|h| h.parse::<u32>().ok());
    if !digits || hour.is_none_or(|h| h > 23) {
        return Err(rej(
            PARAM,
            format!("date {date:?} must be YYYYMMDDHH (one hour, Beijing time)"),
        ));
    }
    Ok(())
}

/// `message/history`: the URL of the hour's log (1009 unless
/// [`super::SandboxConfig::history_log`]). The file is the sandbox's own format (see
/// [`history_log_file`]); it is there at once, not an hour later.
pub(super) fn history_log(ctx: &mut Ctx, _data: &mut Data, p: &Params) -> Out {
    if !ctx.config.history_log {
        return Err(rej(
            1009,
            "the history log (消息历史记录下载) is not enabled for this app",
        ));
    }
    let date = p.req("date")?;
    check_date(date)?;
    ok(json!({
        "url": format!("{}/_sandbox/history_log/{date}", ctx.base_url),
        "date": date,
    }))
}

/// `GET /_sandbox/history_log/{YYYYMMDDHH}`: the hour's persisted messages as JSON lines
/// (emulator-specific schema: `dateTime`, `msgUID`, `channelType`, `fromUserId`,
/// `targetId`, `objectName`, `content`, `source`).
pub(super) async fn history_log_file(
    State(sh): State<Arc<Shared>>,
    Path(date): Path<String>,
) -> Response {
    if check_date(&date).is_err() {
        return (StatusCode::NOT_FOUND, "no such log").into_response();
    }
    let d = sh.data.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    for m in d
        .messages
        .iter()
        .filter(|m| m.is_persisted && hour_of(m.msg_time) == date)
    {
        let line = json!({
            "dateTime": format!("{}.{:03}", beijing_time(m.msg_time), m.msg_time % 1000),
            "msgUID": m.uid,
            "channelType": m.channel_type,
            "fromUserId": m.from_user_id,
            "targetId": m.to,
            "objectName": m.object_name,
            "content": m.content,
            "source": m.source,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_beijing_hours() {
        // 2018-03-02 02:30 UTC is 10:30 in Beijing.
        assert_eq!(hour_of(1_519_957_800_000), "2018030210");
        assert!(check_date("2018030210").is_ok());
        assert!(check_date("2018030224").is_err());
        assert!(check_date("20180302").is_err());
    }
}
