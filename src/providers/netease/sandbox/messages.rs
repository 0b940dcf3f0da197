//! Messages (reference §2.4) and their history (§2.6): `msg/sendMsg`,
//! `history/querySessionMsg`, `history/queryTeamMsg`.

use super::params::{fold, Params, PARAM};
use super::{ok, p2p_key, rej, team_key, Ctx, Data, Message, Out, Reject};
use serde_json::{json, Value};

/// The `type`s `sendMsg` takes: text, image, audio, video, location, file, tip, custom.
const SENDABLE: [i64; 8] = [0, 1, 2, 3, 4, 6, 10, 100];

/// `sendMsg`'s body limit, in characters.
const MAX_BODY: usize = 5000;

/// `msg/sendMsg`: `ope` 0 (P2P, `to` an accid) or 1 (team, `to` a tid); `type` one of
/// [`SENDABLE`]; `body` valid JSON of at most 5000 characters; the sender must exist (404)
/// and, in a team, be a member (804). The sandbox stamps its own msgid and time (ms): no
/// parameter sets either.
pub(super) fn send_msg(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let from = fold(p.req("from")?);
    let ope = p.req_choice("ope", &[0, 1])?;
    let to_raw = p.req("to")?;
    let msg_type = p.req_choice("type", &SENDABLE)?;
    let body = p.req_text("body", MAX_BODY)?;
    if serde_json::from_str::<Value>(body).is_err() {
        return Err(rej(PARAM, "body is not valid JSON"));
    }
    let option = p.get("option").filter(|o| !o.is_empty());
    let route = match option.map(serde_json::from_str::<Value>) {
        None => true,
        Some(Ok(Value::Object(o))) => o.get("route").and_then(Value::as_bool).unwrap_or(true),
        Some(_) => return Err(rej(PARAM, "option must be a JSON object")),
    };
    let ext = p.text("ext", 1024)?;
    let pushcontent = p.text("pushcontent", 500)?;
    let payload = p.text("payload", 2048)?;
    data.account(&from)?;
    let (to, key) = if ope == 0 {
        let to = fold(to_raw);
        data.account(&to)?;
        let key = p2p_key(&from, &to);
        (to, key)
    } else {
        let tid: u64 = to_raw
            .parse()
            .map_err(|_| rej(PARAM, format!("to {to_raw:?} is not a team id")))?;
        let team = data
            .teams
            .get(&tid)
            .ok_or_else(|| rej(803, format!("team {tid} does not exist")))?;
        if !team.members.contains_key(&from) {
            return Err(rej(804, format!("{from:?} is not in team {tid}")));
        }
        (tid.to_string(), team_key(tid))
    };
    let msgid = data.next_msgid;
    data.next_msgid += 1;
    let timetag = ctx.now_ms.max(data.last_timetag);
    data.last_timetag = timetag;
    data.sessions
        .entry(key)
        .or_default()
        .push(data.messages.len());
    data.messages.push(Message {
        msgid,
        msgidclient: uuid::Uuid::new_v4().simple().to_string(),
        timetag,
        from,
        ope,
        to,
        msg_type,
        body: body.to_string(),
        option: option.map(String::from),
        route,
        ext: ext.map(String::from),
        pushcontent: pushcontent.map(String::from),
        payload: payload.map(String::from),
        fromclienttype: 32,
    });
    ok(json!({ "data": { "msgid": msgid, "timetag": timetag, "antispam": false } }))
}

/// The window, size, order and types of a history query (shared by both queries).
struct Window {
    begin: i64,
    end: i64,
    limit: usize,
    newest_first: bool,
    types: Option<Vec<i64>>,
}

fn window(ctx: &Ctx, p: &Params, api: &str) -> Result<Window, Reject> {
    let begin = p.req_int("begintime")?;
    let end = p.req_int("endtime")?;
    if begin >= end {
        return Err(rej(PARAM, "bad time"));
    }
    let max = ctx.batch(api, 100) as i64;
    let limit = p.req_int("limit")?;
    if !(1..=max).contains(&limit) {
        return Err(rej(PARAM, format!("limit {limit} must be from 1 to {max}")));
    }
    let newest_first = p.choice("reverse", &[1, 2])?.unwrap_or(2) == 2;
    let types = match p.get("type").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            t.split(',')
                .map(|x| x.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| rej(PARAM, format!("type {t:?} is not a comma list of types")))?,
        ),
    };
    Ok(Window {
        begin,
        end,
        limit: limit as usize,
        newest_first,
        types,
    })
}

/// The messages of one conversation inside `w`, as history answers them.
fn select(data: &Data, key: &str, w: &Window) -> Out {
    let indexes = data.sessions.get(key).map(Vec::as_slice).unwrap_or(&[]);
    let matching = indexes.iter().map(|&i| &data.messages[i]).filter(|m| {
        (w.begin..=w.end).contains(&(m.timetag as i64))
            && w.types.as_ref().is_none_or(|t| t.contains(&m.msg_type))
    });
    let picked: Vec<&Message> = if w.newest_first {
        matching.rev().take(w.limit).collect()
    } else {
        matching.take(w.limit).collect()
    };
    let msgs: Vec<Value> = picked
        .into_iter()
        .map(|m| {
            let mut v = json!({
                "from": m.from,
                "to": m.to,
                "msgid": m.msgid,
                "msgidclient": m.msgidclient,
                "sendtime": m.timetag,
                "type": m.msg_type,
                "fromclienttype": m.fromclienttype,
                // UNCONFIRMED: the body as a JSON value (the official SDK reads an object or a
                // string).
                "body": serde_json::from_str::<Value>(&m.body).unwrap_or(Value::Null),
            });
            if let Some(ext) = &m.ext {
                v["ext"] = json!(ext);
            }
            v
        })
        .collect();
    ok(json!({ "size": msgs.len(), "msgs": msgs }))
}

/// `history/querySessionMsg`: both directions between `from` and `to`, inside
/// [begintime, endtime] (ms, begintime < endtime else 414 "bad time"), `limit` 1..=100,
/// `reverse` 1 oldest first / 2 newest first (default).
pub(super) fn query_session_msg(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let from = fold(p.req("from")?);
    let to = fold(p.req("to")?);
    let w = window(ctx, p, "history/querySessionMsg")?;
    select(data, &p2p_key(&from, &to), &w)
}

/// `history/queryTeamMsg`: as above for a team; `accid` must be a member (804), or a former
/// one with `checkTeamValid=false`; a team that does not exist (or was removed) → 803.
pub(super) fn query_team_msg(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let raw = p.req("tid")?;
    let tid: u64 = raw
        .parse()
        .map_err(|_| rej(PARAM, format!("tid {raw:?} is not a team id")))?;
    let accid = fold(p.req("accid")?);
    let check_valid = p.boolean("checkTeamValid")?.unwrap_or(true);
    let w = window(ctx, p, "history/queryTeamMsg")?;
    let team = data
        .teams
        .get(&tid)
        .ok_or_else(|| rej(803, format!("team {tid} does not exist")))?;
    let allowed =
        team.members.contains_key(&accid) || (!check_valid && team.former.contains(&accid));
    if !allowed {
        return Err(rej(804, format!("{accid:?} is not in team {tid}")));
    }
    select(data, &team_key(tid), &w)
}
