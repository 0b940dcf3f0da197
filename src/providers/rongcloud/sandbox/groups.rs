//! Classic groups (reference §2.4): RongCloud keeps only an id, a name and the membership —
//! no owner, no admins. `group/create|join|quit|dismiss|refresh|sync`, `group/user/query`,
//! `group/user/gag/add`.

use super::params::{check_group_id, check_user_id, Params, PARAM, TOO_LONG};
use super::{ok, rej, Ctx, Data, Group, Out, Reject};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Group names: ≤64 characters (reference §2.4).
const NAME_MAX: usize = 64;

fn group_name(p: &Params, required: bool) -> Result<Option<&str>, Reject> {
    let name = if required {
        Some(p.req("groupName")?)
    } else {
        p.get("groupName").filter(|n| !n.is_empty())
    };
    if let Some(n) = name {
        let chars = n.chars().count();
        if chars > NAME_MAX {
            return Err(rej(
                TOO_LONG,
                format!("groupName is {chars} characters; at most {NAME_MAX}"),
            ));
        }
    }
    Ok(name)
}

fn group_id(p: &Params) -> Result<&str, Reject> {
    let id = p.req("groupId")?;
    check_group_id("groupId", id)?;
    Ok(id)
}

/// The `userId`s of a membership call: ≤ the API's batch (1000), each a valid id of a
/// registered user (when the sandbox requires it), without repeats.
fn members<'a>(ctx: &Ctx, data: &Data, p: &'a Params, api: &str) -> Result<Vec<&'a str>, Reject> {
    let ids = p.all("userId");
    ctx.check_batch(api, "userId", ids.len(), 1000)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in ids {
        check_user_id("userId", id)?;
        data.known(ctx.config, "userId", id)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn missing(id: &str) -> Reject {
    rej(PARAM, format!("group {id:?} does not exist"))
}

/// Adds `ids` to group `gid` (made with `name` when it does not exist), refusing the whole
/// call when the group would pass its cap (UNCONFIRMED status and code, see
/// [`super::SandboxConfig::group_full`]). A name given renames the group.
fn add_members(
    ctx: &Ctx,
    data: &mut Data,
    gid: &str,
    name: Option<&str>,
    ids: &[&str],
) -> Result<usize, Reject> {
    let current = data.groups.get(gid);
    let new = ids
        .iter()
        .filter(|id| current.is_none_or(|g| !g.members.contains_key(**id)))
        .count();
    let after = current.map_or(0, |g| g.members.len()) + new;
    let max = ctx.config.group_member_max;
    if after > max {
        let (status, code) = ctx.config.group_full;
        return Err(super::Reject {
            code,
            status: Some(status),
            msg: format!("group {gid:?} would have {after} members; at most {max}"),
        });
    }
    let g = data.groups.entry(gid.to_string()).or_insert_with(|| Group {
        name: String::new(),
        members: BTreeMap::new(),
        gagged: BTreeMap::new(),
        created_ms: ctx.now_ms,
    });
    if let Some(n) = name {
        g.name = n.to_string();
    }
    for id in ids {
        g.members.entry(id.to_string()).or_insert(ctx.now_ms);
    }
    Ok(g.members.len())
}

/// `group/create`: `userId` (≤1000), `groupId`, `groupName`. An existing id takes the new
/// members and name (UNCONFIRMED: RongCloud treats create as an upsert).
pub(super) fn create(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let name = group_name(p, true)?;
    let ids = members(ctx, data, p, "group/create")?;
    add_members(ctx, data, gid, name, &ids)?;
    ok(json!({}))
}

/// `group/join`: `userId` (≤1000), `groupId`, `groupName`; an unknown group is made
/// (UNCONFIRMED). Members already in are left as they are.
pub(super) fn join(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let name = group_name(p, false)?;
    let ids = members(ctx, data, p, "group/join")?;
    add_members(ctx, data, gid, name, &ids)?;
    ok(json!({}))
}

/// `group/quit`: `userId` (≤1000), `groupId` of an existing group; users not in it are
/// ignored. A group left empty stays (UNCONFIRMED).
pub(super) fn quit(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let ids = p.all("userId");
    ctx.check_batch("group/quit", "userId", ids.len(), 1000)?;
    for id in &ids {
        check_user_id("userId", id)?;
    }
    let g = data.groups.get_mut(gid).ok_or_else(|| missing(gid))?;
    for id in ids {
        g.members.remove(id);
        g.gagged.remove(id);
    }
    ok(json!({}))
}

/// `group/dismiss`: `userId` (the operator, any user: no owner here) and `groupId`. An
/// unknown group is RongCloud's 1015 "data to delete does not exist", answered HTTP 200.
pub(super) fn dismiss(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let operator = p.req("userId")?;
    check_user_id("userId", operator)?;
    let gid = group_id(p)?;
    if data.groups.remove(gid).is_none() {
        return Err(rej(1015, format!("group {gid:?} does not exist")));
    }
    ok(json!({}))
}

/// `group/refresh`: renames an existing group.
pub(super) fn refresh(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let name = group_name(p, true)?.unwrap_or_default();
    let g = data.groups.get_mut(gid).ok_or_else(|| missing(gid))?;
    g.name = name.to_string();
    ok(json!({}))
}

/// `group/sync`: `userId` and `group[<groupId>]=<groupName>` pairs; the user joins each (made
/// when unknown). Groups not listed are left as they are (UNCONFIRMED: no removal).
pub(super) fn sync(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let user = p.req("userId")?;
    check_user_id("userId", user)?;
    data.known(ctx.config, "userId", user)?;
    let mut pairs = Vec::new();
    for (k, v) in &p.0 {
        let Some(gid) = k.strip_prefix("group[").and_then(|r| r.strip_suffix(']')) else {
            continue;
        };
        check_group_id(k, gid)?;
        let chars = v.chars().count();
        if chars > NAME_MAX {
            return Err(rej(
                TOO_LONG,
                format!("{k} names a group of {chars} characters; at most {NAME_MAX}"),
            ));
        }
        pairs.push((gid, v.as_str()));
    }
    if pairs.is_empty() {
        return Err(rej(PARAM, "group[<groupId>]=<groupName> is required"));
    }
    for (gid, name) in pairs {
        let name = Some(name).filter(|n| !n.is_empty());
        add_members(ctx, data, gid, name, &[user])?;
    }
    ok(json!({}))
}

/// `group/user/query`: the members of an existing group, as `users: [{"id"}]`.
pub(super) fn user_query(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let g = data.groups.get(gid).ok_or_else(|| missing(gid))?;
    let users: Vec<_> = g.members.keys().map(|id| json!({ "id": id })).collect();
    ok(json!({ "users": users }))
}

/// `group/user/gag/add`: mutes members (`userId` ≤20) of an existing group for `minute`
/// (1..=43200; 0 = for good, per the Go SDK).
pub(super) fn gag_add(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let gid = group_id(p)?;
    let ids = p.all("userId");
    ctx.check_batch("group/user/gag/add", "userId", ids.len(), 20)?;
    let minute = p.req_int("minute")?;
    if !(0..=43_200).contains(&minute) {
        return Err(rej(
            PARAM,
            format!("minute {minute} must be from 0 to 43200"),
        ));
    }
    let g = data.groups.get(gid).ok_or_else(|| missing(gid))?;
    for id in &ids {
        check_user_id("userId", id)?;
        if !g.members.contains_key(*id) {
            return Err(rej(PARAM, format!("userId {id:?} is not in group {gid:?}")));
        }
    }
    let until = if minute == 0 {
        0
    } else {
        ctx.now_ms + minute as u64 * 60_000
    };
    let g = data.groups.get_mut(gid).expect("checked above");
    for id in ids {
        g.gagged.insert(id.to_string(), until);
    }
    ok(json!({}))
}
