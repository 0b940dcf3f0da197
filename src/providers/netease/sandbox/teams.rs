//! Advanced teams (reference §2.3): `team/*`. Codes: 801 over the member limit (the whole
//! batch refused), 802 not allowed, 803 no such team, 804 not a member, 809 already members.

use super::params::{fold, Params, PARAM};
use super::{ok, rej, team_key, Ctx, Data, Out, Reject, Team};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The team a call names: a numeric tid (414 otherwise) that exists (803 otherwise).
fn tid(p: &Params) -> Result<u64, Reject> {
    let raw = p.req("tid")?;
    raw.parse()
        .map_err(|_| rej(PARAM, format!("tid {raw:?} is not a team id")))
}

fn team_mut(data: &mut Data, tid: u64) -> Result<&mut Team, Reject> {
    data.teams
        .get_mut(&tid)
        .ok_or_else(|| rej(803, format!("team {tid} does not exist")))
}

/// A list of accids, folded, without repeats, in the order given.
fn distinct(list: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    list.into_iter()
        .map(|a| fold(&a))
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

fn faccid(failed: &[String], why: &[&str]) -> Value {
    json!({ "accid": failed, "msg": why.join("; ") })
}

/// The settings create and update share, each `None` when not given.
struct Settings<'a> {
    tname: Option<&'a str>,
    announcement: Option<&'a str>,
    intro: Option<&'a str>,
    custom: Option<&'a str>,
    icon: Option<&'a str>,
    joinmode: Option<i64>,
    beinvitemode: Option<i64>,
    invitemode: Option<i64>,
    uptinfomode: Option<i64>,
    upcustommode: Option<i64>,
    member_limit: Option<u32>,
}

fn settings<'a>(ctx: &Ctx, p: &'a Params) -> Result<Settings<'a>, Reject> {
    let max = ctx.config.team_member_max;
    let member_limit = match p.int("teamMemberLimit")? {
        Some(n) if n < 2 || n > i64::from(max) => {
            return Err(rej(
                PARAM,
                format!("teamMemberLimit {n} must be from 2 to {max}"),
            ))
        }
        n => n.map(|n| n as u32),
    };
    Ok(Settings {
        tname: p.text("tname", 64)?,
        announcement: p.text("announcement", 1024)?,
        intro: p.text("intro", 512)?,
        custom: p.text("custom", 1024)?,
        icon: p.text("icon", 1024)?,
        joinmode: p.choice("joinmode", &[0, 1, 2])?,
        beinvitemode: p.choice("beinvitemode", &[0, 1])?,
        invitemode: p.choice("invitemode", &[0, 1])?,
        uptinfomode: p.choice("uptinfomode", &[0, 1])?,
        upcustommode: p.choice("upcustommode", &[0, 1])?,
        member_limit,
    })
}

fn apply(t: &mut Team, s: &Settings) {
    let set = |field: &mut String, v: Option<&str>| {
        if let Some(v) = v {
            *field = v.to_string();
        }
    };
    set(&mut t.tname, s.tname);
    set(&mut t.announcement, s.announcement);
    set(&mut t.intro, s.intro);
    set(&mut t.custom, s.custom);
    set(&mut t.icon, s.icon);
    for (field, v) in [
        (&mut t.joinmode, s.joinmode),
        (&mut t.beinvitemode, s.beinvitemode),
        (&mut t.invitemode, s.invitemode),
        (&mut t.uptinfomode, s.uptinfomode),
        (&mut t.upcustommode, s.upcustommode),
    ] {
        if let Some(v) = v {
            *field = v;
        }
    }
    if let Some(l) = s.member_limit {
        t.member_limit = l;
    }
}

/// `team/create`: tname, owner, members, msg, magree and joinmode required; members + owner ≤
/// the team's limit (801); members that are not accounts are reported in `faccid`. Answers
/// the new tid as a string.
pub(super) fn create(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    p.req_text("tname", 64)?;
    let owner = fold(p.req("owner")?);
    let members = p.req_list("members")?;
    p.req_text("msg", 150)?;
    let magree = p.req_choice("magree", &[0, 1])?;
    p.req_choice("joinmode", &[0, 1, 2])?;
    let s = settings(ctx, p)?;
    data.account(&owner)?;
    let members: Vec<String> = distinct(members)
        .into_iter()
        .filter(|m| *m != owner)
        .collect();
    let limit = s.member_limit.unwrap_or(ctx.config.team_member_max);
    if members.len() + 1 > limit as usize {
        return Err(rej(
            801,
            format!(
                "{} members and the owner exceed the team's limit of {limit}",
                members.len()
            ),
        ));
    }
    ctx.check_batch("team/create", "members", members.len(), 199)?;
    let (known, unknown): (Vec<String>, Vec<String>) = members
        .into_iter()
        .partition(|m| data.accounts.contains_key(m));
    let tid = data.next_tid;
    data.next_tid += 1;
    let mut team = Team {
        tid,
        tname: String::new(),
        owner: owner.clone(),
        managers: BTreeSet::new(),
        members: BTreeMap::from([(owner, ctx.now_ms)]),
        invited: BTreeSet::new(),
        former: BTreeSet::new(),
        announcement: String::new(),
        intro: String::new(),
        custom: String::new(),
        icon: String::new(),
        joinmode: 0,
        beinvitemode: 0,
        invitemode: 0,
        uptinfomode: 0,
        upcustommode: 0,
        member_limit: limit,
        createtime: ctx.now_ms,
        updatetime: ctx.now_ms,
    };
    apply(&mut team, &s);
    for m in known {
        if magree == 0 {
            team.members.insert(m, ctx.now_ms);
        } else {
            team.invited.insert(m);
        }
    }
    data.teams.insert(tid, team);
    let mut out = json!({ "tid": tid.to_string() });
    if !unknown.is_empty() {
        out["faccid"] = faccid(&unknown, &["not registered"]);
    }
    ok(out)
}

/// `team/add`: at most 200 members per call (414); the operator must be the owner or a manager
/// (any member when `invitemode` is 1), else 802; a batch that would pass the member limit is
/// refused whole (801); members already in are reported in `faccid`, or 809 when every one is.
pub(super) fn add(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    let members = distinct(p.req_list("members")?);
    let magree = p.req_choice("magree", &[0, 1])?;
    p.req_text("msg", 150)?;
    p.text("attach", 512)?;
    ctx.check_batch("team/add", "members", members.len(), 200)?;
    let accounts = &data.accounts;
    let (known, unknown): (Vec<String>, Vec<String>) =
        members.into_iter().partition(|m| accounts.contains_key(m));
    let team = team_mut(data, tid)?;
    let may_invite =
        team.is_admin(&operator) || (team.invitemode == 1 && team.members.contains_key(&operator));
    if !may_invite {
        return Err(rej(
            802,
            format!("{operator:?} may not add members to team {tid}"),
        ));
    }
    let (already, new): (Vec<String>, Vec<String>) = known
        .into_iter()
        .partition(|m| team.members.contains_key(m));
    if new.is_empty() && !already.is_empty() {
        return Err(rej(809, format!("already in team {tid}: {already:?}")));
    }
    if team.members.len() + new.len() > team.member_limit as usize {
        return Err(rej(
            801,
            format!(
                "team {tid} has {} members; {} more exceed its limit of {}",
                team.members.len(),
                new.len(),
                team.member_limit
            ),
        ));
    }
    for m in new {
        team.former.remove(&m);
        if magree == 0 {
            team.invited.remove(&m);
            team.members.insert(m, ctx.now_ms);
        } else {
            team.invited.insert(m);
        }
    }
    team.updatetime = ctx.now_ms;
    let mut failed = unknown.clone();
    failed.extend(already.iter().cloned());
    let mut why = Vec::new();
    if !unknown.is_empty() {
        why.push("not registered");
    }
    if !already.is_empty() {
        why.push("already in the team");
    }
    let mut out = json!({});
    if !failed.is_empty() {
        out["faccid"] = faccid(&failed, &why);
    }
    ok(out)
}

/// `team/kick`: `member`, or `members` (at most 200); only the owner or a manager, a manager
/// only normal members, never the owner (802); anyone not in the team → 804, whole call.
pub(super) fn kick(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    p.text("attach", 512)?;
    let targets = match p.get("member").filter(|m| !m.is_empty()) {
        Some(m) => vec![fold(m)],
        None => distinct(p.req_list("members")?),
    };
    ctx.check_batch("team/kick", "members", targets.len(), 200)?;
    let team = team_mut(data, tid)?;
    if !team.is_admin(&operator) {
        return Err(rej(802, format!("{operator:?} may not kick in team {tid}")));
    }
    for t in &targets {
        if !team.members.contains_key(t) {
            return Err(rej(804, format!("{t:?} is not in team {tid}")));
        }
        if *t == team.owner || (operator != team.owner && team.managers.contains(t)) {
            return Err(rej(802, format!("{operator:?} may not kick {t:?}")));
        }
    }
    for t in targets {
        team.members.remove(&t);
        team.managers.remove(&t);
        team.former.insert(t);
    }
    team.updatetime = ctx.now_ms;
    ok(json!({}))
}

/// add/removeManager: only the owner (802), at most 10 per call (414), members only (804).
fn managers(ctx: &mut Ctx, data: &mut Data, p: &Params, add: bool) -> Out {
    let api = if add {
        "team/addManager"
    } else {
        "team/removeManager"
    };
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    let members = distinct(p.req_list("members")?);
    ctx.check_batch(api, "members", members.len(), 10)?;
    let team = team_mut(data, tid)?;
    if operator != team.owner {
        return Err(rej(
            802,
            format!("only the owner of team {tid} may change its managers"),
        ));
    }
    for m in &members {
        if !team.members.contains_key(m) {
            return Err(rej(804, format!("{m:?} is not in team {tid}")));
        }
        if *m == team.owner {
            return Err(rej(PARAM, "the owner cannot be a manager"));
        }
    }
    for m in members {
        if add {
            team.managers.insert(m);
        } else {
            team.managers.remove(&m);
        }
    }
    team.updatetime = ctx.now_ms;
    ok(json!({}))
}

pub(super) fn add_manager(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    managers(ctx, data, p, true)
}

pub(super) fn remove_manager(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    managers(ctx, data, p, false)
}

/// `team/changeOwner`: only the owner (802); the new owner must be a member (804); `leave` 1
/// (the old owner leaves) or 2 (stays as a member), else 414.
pub(super) fn change_owner(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    let new_owner = fold(p.req("newowner")?);
    let leave = p.req_choice("leave", &[1, 2])?;
    p.text("attach", 512)?;
    let team = team_mut(data, tid)?;
    if operator != team.owner {
        return Err(rej(802, format!("{operator:?} does not own team {tid}")));
    }
    if !team.members.contains_key(&new_owner) {
        return Err(rej(804, format!("{new_owner:?} is not in team {tid}")));
    }
    if new_owner == operator {
        return Err(rej(PARAM, "newowner is already the owner"));
    }
    team.managers.remove(&new_owner);
    team.owner = new_owner;
    if leave == 1 {
        team.members.remove(&operator);
        team.former.insert(operator);
    }
    team.updatetime = ctx.now_ms;
    ok(json!({}))
}

/// `team/update`: the owner or a manager; any member for the name/intro/announcement/icon when
/// `uptinfomode` is 1 and for `custom` when `upcustommode` is 1; else 802. A member limit
/// below the team's size → 414.
pub(super) fn update(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    p.text("attach", 512)?;
    let s = settings(ctx, p)?;
    let team = team_mut(data, tid)?;
    if !team.is_admin(&operator) {
        let info =
            s.tname.is_some() || s.announcement.is_some() || s.intro.is_some() || s.icon.is_some();
        let modes = s.joinmode.is_some()
            || s.beinvitemode.is_some()
            || s.invitemode.is_some()
            || s.uptinfomode.is_some()
            || s.upcustommode.is_some()
            || s.member_limit.is_some();
        let allowed = team.members.contains_key(&operator)
            && !modes
            && (!info || team.uptinfomode == 1)
            && (s.custom.is_none() || team.upcustommode == 1);
        if !allowed {
            return Err(rej(802, format!("{operator:?} may not update team {tid}")));
        }
    }
    if let Some(l) = s.member_limit {
        if (l as usize) < team.members.len() {
            return Err(rej(
                PARAM,
                format!(
                    "teamMemberLimit {l} is below the team's {} members",
                    team.members.len()
                ),
            ));
        }
    }
    apply(team, &s);
    team.updatetime = ctx.now_ms;
    ok(json!({}))
}

/// `team/remove`: only the owner (802); later calls naming the team → 803.
pub(super) fn remove(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let tid = tid(p)?;
    let operator = fold(p.req("owner")?);
    let team = team_mut(data, tid)?;
    if operator != team.owner {
        return Err(rej(802, format!("{operator:?} does not own team {tid}")));
    }
    data.teams.remove(&tid);
    data.sessions.remove(&team_key(tid));
    ok(json!({}))
}

/// A team as `team/query` and `team/joinTeams` describe it (tid as a number, as the official
/// SDK reads it).
fn info(t: &Team, with_members: bool) -> Value {
    let mut v = json!({
        "tid": t.tid,
        "tname": t.tname,
        "owner": t.owner,
        "maxusers": t.member_limit,
        "size": t.members.len(),
        "announcement": t.announcement,
        "intro": t.intro,
        "custom": t.custom,
        "icon": t.icon,
        "joinmode": t.joinmode,
        "beinvitemode": t.beinvitemode,
        "invitemode": t.invitemode,
        "uptinfomode": t.uptinfomode,
        "upcustommode": t.upcustommode,
        "mute": false,
        "createtime": t.createtime,
        "updatetime": t.updatetime,
    });
    if with_members {
        // UNCONFIRMED: `members` lists neither the owner nor the managers (`admins`).
        v["admins"] = json!(t.managers);
        v["members"] = json!(t
            .members
            .keys()
            .filter(|m| !t.is_admin(m))
            .collect::<Vec<_>>());
    }
    v
}

/// `team/query`: `tids` a JSON array, `ope` 1 with members, 0 without (else 414). Teams that
/// do not exist are left out.
pub(super) fn query(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let raw = p.req("tids")?;
    let ope = p.req_choice("ope", &[0, 1])?;
    let bad = || rej(PARAM, "tids must be a JSON array of team ids");
    let Ok(Value::Array(tids)) = serde_json::from_str::<Value>(raw) else {
        return Err(bad());
    };
    let mut tinfos = Vec::new();
    for v in tids {
        // Strings or numbers: clients send either.
        let tid = match &v {
            Value::String(s) => s.parse::<u64>().ok(),
            v => v.as_u64(),
        }
        .ok_or_else(bad)?;
        if let Some(t) = data.teams.get(&tid) {
            tinfos.push(info(t, ope == 1));
        }
    }
    ok(json!({ "tinfos": tinfos }))
}

/// `team/joinTeams`: the teams `accid` is in (owner included).
pub(super) fn join_teams(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = fold(p.req("accid")?);
    data.account(&accid)?;
    let infos: Vec<Value> = data
        .teams
        .values()
        .filter(|t| t.members.contains_key(&accid))
        .map(|t| info(t, false))
        .collect();
    ok(json!({ "count": infos.len(), "infos": infos }))
}
