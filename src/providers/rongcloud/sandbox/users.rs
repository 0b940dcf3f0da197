//! Users and tokens (reference §2.1), the blacklist (§2.2) and hosted friends (§2.3, only
//! with [`super::SandboxConfig::entrust`]).

use super::params::{check_user_id, Params, PARAM};
use super::{ok, rej, Ctx, Data, FriendEdge, Out, Reject, Token, User};
use base64::Engine;
use secrecy::SecretString;
use serde_json::json;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A new token, shaped as RongCloud's (base64 text with a navigation suffix).
fn new_token() -> String {
    let raw: [u8; 36] = rand::random();
    format!(
        "{}@sbx.rongnav.local;sbx.rongcfg.local",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `createTime` as `user/info` shows it: Beijing time, `YYYY-MM-DD HH:MM:SS` (UNCONFIRMED
/// format).
pub(super) fn beijing_time(ms: u64) -> String {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// The user id a call names, checked (1002/1005).
fn user_id<'a>(p: &'a Params, field: &str) -> Result<&'a str, Reject> {
    let id = p.req(field)?;
    check_user_id(field, id)?;
    Ok(id)
}

/// `user/getToken`: registers `userId` (or updates its name and portrait) and hands out a
/// new token; earlier ones stay valid. `name` ≤128 bytes, `portraitUri` ≤1024 bytes.
pub(super) fn get_token(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let id = user_id(p, "userId")?;
    let name = p.text("name", 128)?;
    let portrait = p.text("portraitUri", 1024)?;
    if !data.users.contains_key(id) {
        if let Some(cap) = ctx.config.dev_user_cap {
            if data.users.len() >= cap {
                return Err(rej(
                    2007,
                    format!("a development app registers at most {cap} users"),
                ));
            }
        }
    }
    let user = data.users.entry(id.to_string()).or_insert_with(|| User {
        name: String::new(),
        portrait: String::new(),
        created_ms: ctx.now_ms,
        tokens_issued: 0,
        tokens_void_before: 0,
        tokens: Vec::new(),
    });
    if let Some(n) = name {
        user.name = n.to_string();
    }
    if let Some(u) = portrait {
        user.portrait = u.to_string();
    }
    let token = new_token();
    user.tokens.push(Token {
        value: SecretString::from(token.clone()),
        issued_ms: ctx.now_ms,
    });
    user.tokens_issued += 1;
    ok(json!({ "userId": id, "token": token }))
}

/// `user/refresh`: a registered user's name and/or portrait.
pub(super) fn refresh(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let id = user_id(p, "userId")?;
    let name = p.text("name", 128)?;
    let portrait = p.text("portraitUri", 1024)?;
    data.user("userId", id)?;
    let user = data.users.get_mut(id).expect("checked above");
    if let Some(n) = name {
        user.name = n.to_string();
    }
    if let Some(u) = portrait {
        user.portrait = u.to_string();
    }
    ok(json!({}))
}

/// `user/info`: `userName`, `userPortrait`, `createTime` of a registered user.
pub(super) fn info(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let id = user_id(p, "userId")?;
    let u = data.user("userId", id)?;
    ok(json!({
        "userName": u.name,
        "userPortrait": u.portrait,
        "createTime": beijing_time(u.created_ms),
    }))
}

/// `user/token/expire`: ≤20 `userId`s; every token obtained before `time` (ms) is void.
pub(super) fn token_expire(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let ids = p.all("userId");
    ctx.check_batch("user/token/expire", "userId", ids.len(), 20)?;
    let time = p.req_int("time")?;
    if time < 0 {
        return Err(rej(
            PARAM,
            format!("time {time} must be epoch milliseconds"),
        ));
    }
    for id in &ids {
        check_user_id("userId", id)?;
        data.user("userId", id)?;
    }
    for id in ids {
        let u = data.users.get_mut(id).expect("checked above");
        u.tokens_void_before = u.tokens_void_before.max(time as u64);
    }
    ok(json!({}))
}

/// The owner and the listed users of a blacklist call, checked: ≤20 `blackUserId`s, none
/// the owner, registered (when the sandbox requires it and `adding`: removing a user who
/// never was is harmless).
fn blacklist_args<'a>(
    ctx: &Ctx,
    data: &Data,
    p: &'a Params,
    api: &str,
    adding: bool,
) -> Result<(&'a str, Vec<&'a str>), Reject> {
    let owner = user_id(p, "userId")?;
    let listed = p.all("blackUserId");
    ctx.check_batch(api, "blackUserId", listed.len(), 20)?;
    data.known(ctx.config, "userId", owner)?;
    for b in &listed {
        check_user_id("blackUserId", b)?;
        if *b == owner {
            return Err(rej(PARAM, format!("userId {owner:?} cannot block itself")));
        }
        if adding {
            data.known(ctx.config, "blackUserId", b)?;
        }
    }
    Ok((owner, listed))
}

/// `user/blacklist/add`: one-way (the owner stops receiving from the listed users); at most
/// [`super::SandboxConfig::blacklist_max`] per owner.
pub(super) fn blacklist_add(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let (owner, listed) = blacklist_args(ctx, data, p, "user/blacklist/add", true)?;
    let list = data.blacklists.entry(owner.to_string()).or_default();
    let after = listed.iter().filter(|b| !list.contains(**b)).count() + list.len();
    let max = ctx.config.blacklist_max;
    if after > max {
        let n = list.len();
        if n == 0 {
            data.blacklists.remove(owner);
        }
        return Err(rej(
            PARAM,
            format!("userId {owner:?} would block {after} users; at most {max} (has {n})"),
        ));
    }
    list.extend(listed.into_iter().map(String::from));
    ok(json!({}))
}

/// `user/blacklist/remove`: removing a user not listed is a success.
pub(super) fn blacklist_remove(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let (owner, listed) = blacklist_args(ctx, data, p, "user/blacklist/remove", false)?;
    if let Some(list) = data.blacklists.get_mut(owner) {
        for b in listed {
            list.remove(b);
        }
        if list.is_empty() {
            data.blacklists.remove(owner);
        }
    }
    ok(json!({}))
}

/// `user/blacklist/query`: `size` ≤1000 (default 1000) from `pageToken` (the last id of the
/// page before); `next` is the page token of what follows, empty at the end.
pub(super) fn blacklist_query(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let owner = user_id(p, "userId")?;
    data.known(ctx.config, "userId", owner)?;
    let max = ctx.batch("user/blacklist/query", 1000);
    let size = match p.int("size")? {
        None => max,
        Some(n) if n >= 1 && n as usize <= max => n as usize,
        Some(n) => return Err(rej(PARAM, format!("size {n} must be from 1 to {max}"))),
    };
    let after = p.get("pageToken").unwrap_or_default();
    let page: Vec<&String> = data
        .blacklists
        .get(owner)
        .into_iter()
        .flatten()
        .filter(|b| after.is_empty() || b.as_str() > after)
        .take(size + 1)
        .collect();
    let more = page.len() > size;
    let users: Vec<&String> = page.into_iter().take(size).collect();
    let next = if more {
        users.last().map(|s| s.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    ok(json!({ "users": users, "next": next }))
}

/// Hosted friends need 信息托管 enabled (by ticket): 1009 otherwise. Their users must be
/// registered when the sandbox requires it.
fn entrust(ctx: &Ctx) -> Result<(), Reject> {
    if ctx.config.entrust {
        Ok(())
    } else {
        Err(rej(
            1009,
            "friend APIs need 信息托管 (profile hosting) enabled for this app",
        ))
    }
}

/// `friend/add`: `optType` 2 adds directly (both ways: UNCONFIRMED); 1 follows the target's
/// verification setting, which the sandbox takes as "no verification" too. `extra` ≤128.
pub(super) fn friend_add(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    entrust(ctx)?;
    let a = user_id(p, "userId")?;
    let b = user_id(p, "targetId")?;
    match p.int("optType")? {
        None | Some(1) | Some(2) => {}
        Some(n) => return Err(rej(PARAM, format!("optType {n} must be 1 or 2"))),
    }
    let extra = p.text("extra", 128)?.unwrap_or_default();
    data.known(ctx.config, "userId", a)?;
    data.known(ctx.config, "targetId", b)?;
    if a == b {
        return Err(rej(PARAM, "userId and targetId are the same user"));
    }
    for (x, y) in [(a, b), (b, a)] {
        data.friends
            .entry(x.to_string())
            .or_default()
            .entry(y.to_string())
            .or_insert_with(|| FriendEdge {
                extra: extra.to_string(),
                time_ms: ctx.now_ms,
            });
    }
    ok(json!({}))
}

/// `friend/delete`: `targetIds` comma-joined; both directions go.
pub(super) fn friend_delete(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    entrust(ctx)?;
    let a = user_id(p, "userId")?;
    let targets: Vec<&str> = p
        .req("targetIds")?
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    ctx.check_batch("friend/delete", "targetIds", targets.len(), 100)?;
    data.known(ctx.config, "userId", a)?;
    for b in targets {
        if let Some(m) = data.friends.get_mut(a) {
            m.remove(b);
        }
        if let Some(m) = data.friends.get_mut(b) {
            m.remove(a);
        }
    }
    data.friends.retain(|_, m| !m.is_empty());
    ok(json!({}))
}

/// `friend/get`: `size` ≤100 from `pageToken` (the last id of the page before).
pub(super) fn friend_get(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    entrust(ctx)?;
    let a = user_id(p, "userId")?;
    data.known(ctx.config, "userId", a)?;
    let max = ctx.batch("friend/get", 100);
    let size = match p.int("size")? {
        None => max,
        Some(n) if n >= 1 && n as usize <= max => n as usize,
        Some(n) => return Err(rej(PARAM, format!("size {n} must be from 1 to {max}"))),
    };
    let after = p.get("pageToken").unwrap_or_default();
    let all = data.friends.get(a);
    let total = all.map_or(0, |m| m.len());
    let page: Vec<_> = all
        .into_iter()
        .flatten()
        .filter(|(id, _)| after.is_empty() || id.as_str() > after)
        .take(size + 1)
        .collect();
    let more = page.len() > size;
    let list: Vec<_> = page
        .iter()
        .take(size)
        .map(|(id, e)| {
            let name = data
                .users
                .get(*id)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            json!({
                "userId": id,
                "name": name,
                "remarkName": "",
                "friendExtProfile": {},
                "time": e.time_ms,
                "extra": e.extra,
            })
        })
        .collect();
    let token = if more {
        page.get(size - 1)
            .map(|(id, _)| id.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    ok(json!({ "totalCount": total, "pageToken": token, "friendList": list }))
}
