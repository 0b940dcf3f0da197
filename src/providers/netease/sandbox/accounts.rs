//! Accounts (reference §2.1) and relationships (§2.2): `user/*`, `friend/*`, the blacklist and
//! mute list.

use super::params::{check_new_accid, fold, Params, PARAM};
use super::{ok, rej, Account, Ctx, Data, Friend, Out, Reject};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The optional profile fields and their lengths (reference §2.1), shared by `create` and
/// `updateUinfo`.
const PROFILE: [(&str, usize); 7] = [
    ("name", 64),
    ("icon", 1024),
    ("sign", 256),
    ("email", 64),
    ("birth", 16),
    ("mobile", 32),
    ("ex", 1024),
];

fn profile_field<'a>(a: &'a mut Account, field: &str) -> &'a mut Option<String> {
    match field {
        "name" => &mut a.name,
        "icon" => &mut a.icon,
        "sign" => &mut a.sign,
        "email" => &mut a.email,
        "birth" => &mut a.birth,
        "mobile" => &mut a.mobile,
        _ => &mut a.ex,
    }
}

/// `gender` ∈ {0,1,2} else 414; empty counts as absent.
fn gender(p: &Params) -> Result<Option<i64>, Reject> {
    p.choice("gender", &[0, 1, 2])
}

/// `user/create`: accid folded to lower case and checked, a duplicate → 414 "already
/// registered", a token made when none is given.
pub(super) fn create(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = check_new_accid(p.req("accid")?)?;
    if data.accounts.contains_key(&accid) {
        return Err(rej(PARAM, format!("already registered: accid {accid:?}")));
    }
    let mut account = Account {
        created_ms: ctx.now_ms,
        ..Account::default()
    };
    for (field, max) in PROFILE {
        if let Some(v) = p.text(field, max)? {
            *profile_field(&mut account, field) = Some(v.to_string());
        }
    }
    account.props = p.text("props", 1024)?.map(String::from);
    account.gender = gender(p)?;
    account.token = match p.text("token", 128)? {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => new_token(),
    };
    let info = json!({
        "token": account.token,
        "accid": accid,
        "name": account.name.clone().unwrap_or_default(),
    });
    data.accounts.insert(accid, account);
    ok(json!({ "info": info }))
}

/// `user/updateUinfo`: any profile field, empty strings included.
pub(super) fn update_uinfo(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = fold(p.req("accid")?);
    data.account(&accid)?;
    // Check every field before changing any.
    let mut set = Vec::new();
    for (field, max) in PROFILE {
        if let Some(v) = p.text(field, max)? {
            set.push((field, v.to_string()));
        }
    }
    let g = gender(p)?;
    let account = data.accounts.get_mut(&accid).expect("checked above");
    for (field, v) in set {
        *profile_field(account, field) = Some(v);
    }
    if let Some(g) = g {
        account.gender = Some(g);
    }
    ok(json!({}))
}

/// `user/getUinfos`: at most 200 accids as a JSON array (malformed or too many → 414); accounts
/// that do not exist are left out (UNCONFIRMED).
pub(super) fn get_uinfos(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accids = p.req_list("accids")?;
    ctx.check_batch("user/getUinfos", "accids", accids.len(), 200)?;
    let uinfos: Vec<Value> = accids
        .iter()
        .map(|a| fold(a))
        .filter_map(|accid| {
            let a = data.accounts.get(&accid)?;
            let mut m = Map::new();
            m.insert("accid".into(), json!(accid));
            for (field, v) in [
                ("name", &a.name),
                ("icon", &a.icon),
                ("sign", &a.sign),
                ("email", &a.email),
                ("birth", &a.birth),
                ("mobile", &a.mobile),
                ("ex", &a.ex),
            ] {
                if let Some(v) = v {
                    m.insert(field.into(), json!(v));
                }
            }
            if let Some(g) = a.gender {
                m.insert("gender".into(), json!(g));
            }
            Some(Value::Object(m))
        })
        .collect();
    ok(json!({ "uinfos": uinfos }))
}

/// `user/refreshToken`: a new random token; the old one stops working.
pub(super) fn refresh_token(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = fold(p.req("accid")?);
    data.account(&accid)?;
    let token = new_token();
    data.accounts.get_mut(&accid).expect("checked above").token = token.clone();
    ok(json!({ "info": { "token": token, "accid": accid } }))
}

/// The two accounts of a relationship call, both existing (404 otherwise) and different.
fn pair(data: &Data, p: &Params, a: &str, b: &str) -> Result<(String, String), Reject> {
    let x = fold(p.req(a)?);
    let y = fold(p.req(b)?);
    data.account(&x)?;
    data.account(&y)?;
    if x == y {
        return Err(rej(PARAM, format!("{a} and {b} are the same account")));
    }
    Ok((x, y))
}

fn befriend(ctx: &Ctx, data: &mut Data, a: &str, b: &str, serverex: Option<&str>) {
    let edge = data
        .friends
        .entry(a.to_string())
        .or_default()
        .entry(b.to_string())
        .or_insert_with(|| Friend {
            createtime: ctx.now_ms,
            updatetime: ctx.now_ms,
            alias: None,
            serverex: None,
        });
    if let Some(s) = serverex {
        edge.serverex = Some(s.to_string());
        edge.updatetime = ctx.now_ms;
    }
}

/// `friend/add`: type 1 adds directly (both directions unless `mutual_friends` is off), 2
/// records a request, 3 agrees to one (404 when there is none: UNCONFIRMED), 4 rejects it.
/// Adding an existing friend again is a success (UNCONFIRMED: NetEase may answer 417).
pub(super) fn friend_add(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let kind = p.req_choice("type", &[1, 2, 3, 4])?;
    let (accid, faccid) = pair(data, p, "accid", "faccid")?;
    p.text("msg", 256)?;
    let serverex = p.text("serverex", 256)?;
    match kind {
        1 => {
            befriend(ctx, data, &accid, &faccid, serverex);
            if ctx.config.mutual_friends {
                befriend(ctx, data, &faccid, &accid, None);
            }
        }
        2 => {
            data.friend_requests.insert((accid, faccid));
        }
        3 => {
            if !data
                .friend_requests
                .remove(&(faccid.clone(), accid.clone()))
            {
                return Err(rej(
                    404,
                    format!("no friend request from {faccid:?} to {accid:?}"),
                ));
            }
            befriend(ctx, data, &accid, &faccid, serverex);
            befriend(ctx, data, &faccid, &accid, None);
        }
        _ => {
            data.friend_requests.remove(&(faccid, accid));
        }
    }
    ok(json!({}))
}

/// `friend/get`: the friends of `accid` updated at or after `updatetime` (ms; UNCONFIRMED
/// whether the bound is inclusive).
pub(super) fn friend_get(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = fold(p.req("accid")?);
    data.account(&accid)?;
    let since = p.req_int("updatetime")?;
    let friends: Vec<Value> = data
        .friends
        .get(&accid)
        .into_iter()
        .flatten()
        .filter(|(_, f)| f.updatetime as i64 >= since)
        .map(|(faccid, f)| {
            let back = data
                .friends
                .get(faccid)
                .is_some_and(|m| m.contains_key(&accid));
            let mut v = json!({
                "faccid": faccid,
                "createtime": f.createtime,
                "updatetime": f.updatetime,
                "bidirection": back,
            });
            if let Some(a) = &f.alias {
                v["alias"] = json!(a);
            }
            if let Some(s) = &f.serverex {
                v["serverex"] = json!(s);
            }
            v
        })
        .collect();
    ok(json!({ "size": friends.len(), "friends": friends }))
}

/// `friend/delete`: removes the friendship (both directions when friends are mutual); not
/// being friends is a success (UNCONFIRMED).
pub(super) fn friend_delete(ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let (accid, faccid) = pair(data, p, "accid", "faccid")?;
    p.boolean("isDeleteAlias")?;
    if let Some(m) = data.friends.get_mut(&accid) {
        m.remove(&faccid);
    }
    if ctx.config.mutual_friends {
        if let Some(m) = data.friends.get_mut(&faccid) {
            m.remove(&accid);
        }
    }
    data.friends.retain(|_, m| !m.is_empty());
    ok(json!({}))
}

/// `user/setSpecialRelation`: relationType 1 blacklist / 2 mute list, value 1 add / 0 remove.
pub(super) fn set_special_relation(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let relation = p.req_choice("relationType", &[1, 2])?;
    let value = p.req_choice("value", &[0, 1])?;
    let (accid, target) = pair(data, p, "accid", "targetAcc")?;
    let list = if relation == 1 {
        &mut data.blacklist
    } else {
        &mut data.mutelist
    };
    if value == 1 {
        list.entry(accid).or_default().insert(target);
    } else if let Some(s) = list.get_mut(&accid) {
        s.remove(&target);
        if s.is_empty() {
            list.remove(&accid);
        }
    }
    ok(json!({}))
}

/// `user/listBlackAndMuteList`: `{"blacklist":[…],"mutelist":[…]}`.
pub(super) fn list_black_and_mute(_ctx: &mut Ctx, data: &mut Data, p: &Params) -> Out {
    let accid = fold(p.req("accid")?);
    data.account(&accid)?;
    let empty = BTreeSet::new();
    ok(json!({
        "blacklist": data.blacklist.get(&accid).unwrap_or(&empty),
        "mutelist": data.mutelist.get(&accid).unwrap_or(&empty),
    }))
}
