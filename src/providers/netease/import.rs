//! NetEase Yunxin as an import target, in seed 001's order (reference §7): accounts
//! (`user/create`, with the profile), friends (`friend/add` type 1), blacklists
//! (`user/setSpecialRelation`), teams (`team/create`, the team id NetEase assigns kept as the
//! group's `tid`), members (`team/add`, then `team/addManager`).
//!
//! History has no import API (§4): it goes to NetEase's staff as migration files, so the
//! history phases are skipped here with where to get them.
//!
//! `team/create` is the one call a repeat would duplicate (a new team each time), so every
//! team carries its old group id in `custom` and a repeat after a lost answer first looks for
//! it among the owner's teams (`team/joinTeams`).

use super::client::{json_list, NeteaseClient};
use super::errors::{classify, explain, NeteaseError};
use crate::import::plan::Phase;
use crate::import::target::{Failure, ImportTarget, Item, Outcome, Prepared, Support};
use crate::providers::ErrorClass;
use serde_json::{json, Map, Value};

/// The key in a team's `custom` JSON that names the group it was imported from.
pub const SOURCE_KEY: &str = "imshift_source_group";
/// `msg` is required on team calls (the invitation text); nobody sees it with `magree=0`.
pub(super) const TEAM_MSG: &str = "imported by imshift";

pub struct NeteaseImport {
    client: NeteaseClient,
}

impl NeteaseImport {
    pub fn new(client: NeteaseClient) -> Self {
        NeteaseImport { client }
    }

    fn api(phase: Phase) -> Option<&'static str> {
        Some(match phase {
            Phase::Accounts => "user/create",
            Phase::Friends => "friend/add",
            Phase::Blocks => "user/setSpecialRelation",
            Phase::Groups => "team/create",
            Phase::Members => "team/add",
            _ => return None,
        })
    }
}

fn failure(e: NeteaseError) -> Failure {
    Failure {
        class: e.class(),
        code: e.code(),
        ambiguous: e.ambiguous(),
        message: e.to_string(),
    }
}

fn code_failed(code: i64, desc: &str) -> Outcome {
    let said = if desc.is_empty() {
        String::new()
    } else {
        format!(" (server said: {desc})")
    };
    Outcome::failed(
        Some(code),
        format!("NetEase Yunxin code {code}: {}{said}", explain(code)),
    )
}

/// One record's answer: a permanent refusal is the record's; anything a retry or a person can
/// fix fails the request.
fn one(r: Result<Value, NeteaseError>, sent: Value) -> Result<Vec<Outcome>, Failure> {
    match r {
        Ok(_) => Ok(vec![Outcome::Sent(sent)]),
        Err(NeteaseError::Api { code, desc, .. }) if classify(code) == ErrorClass::Permanent => {
            Ok(vec![code_failed(code, &desc)])
        }
        Err(e) => Err(failure(e)),
    }
}

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// NetEase counts these limits in characters (§2): a longer value is refused, never cut.
fn within(field: &str, value: &str, max: usize) -> Result<(), Outcome> {
    let n = value.chars().count();
    if n > max {
        return Err(Outcome::failed(
            None,
            format!("`{field}` is {n} characters; NetEase Yunxin takes at most {max}: shorten it in the dump"),
        ));
    }
    Ok(())
}

/// An account id as NetEase stores it (§2.1: case-insensitive, kept in lower case).
pub fn accid(id: &str) -> String {
    id.to_lowercase()
}

fn part(item: usize, form: Map<String, Value>) -> Prepared {
    Prepared {
        item,
        part: Value::Object(form),
        sent: json!({}),
    }
}

fn form_of(p: &Prepared) -> Vec<(&str, String)> {
    p.part
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.as_str(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn account_part(item: usize, r: &Value) -> Result<Prepared, Outcome> {
    let id = text(r, "id").ok_or_else(|| Outcome::failed(None, "the account has no `id`"))?;
    let mut f = Map::new();
    f.insert("accid".into(), accid(id).into());
    for (from, to, max) in [
        ("nick", "name", 64),
        ("avatar", "icon", 1024),
        ("signature", "sign", 256),
        ("birthday", "birth", 16),
    ] {
        if let Some(v) = text(r, from) {
            within(from, v, max)?;
            f.insert(to.into(), v.into());
        }
    }
    if let Some(g) = text(r, "gender") {
        let n = match g {
            "male" => "1",
            "female" => "2",
            _ => "0",
        };
        f.insert("gender".into(), n.into());
    }
    // NetEase has no location or custom profile fields: both ride in `ex`, as JSON.
    let mut ex = Map::new();
    if let Some(Value::Object(c)) = r.get("custom") {
        ex.extend(c.clone());
    }
    if let Some(l) = text(r, "location") {
        ex.insert("location".into(), l.into());
    }
    if !ex.is_empty() {
        let s = Value::Object(ex).to_string();
        within("custom (with location), as `ex`", &s, 1024)?;
        f.insert("ex".into(), s.into());
    }
    let mut p = part(item, f);
    p.sent = json!({ "source_id": id });
    Ok(p)
}

fn group_part(item: usize, r: &Value) -> Result<Prepared, Outcome> {
    let id = text(r, "id").ok_or_else(|| Outcome::failed(None, "the group has no `id`"))?;
    let owner = text(r, "owner").ok_or_else(|| {
        Outcome::failed(
            None,
            "the group has no `owner`: NetEase creates a team as its owner",
        )
    })?;
    let name = text(r, "name").unwrap_or(id);
    within("name", name, 64)?;
    let mut f = Map::new();
    f.insert("tname".into(), name.into());
    f.insert("owner".into(), accid(owner).into());
    f.insert("members".into(), "[]".into());
    f.insert("msg".into(), TEAM_MSG.into());
    f.insert("magree".into(), "0".into());
    // Who may join without an invitation: as the old group said, else by its type.
    let joinmode = match (text(r, "join"), text(r, "type")) {
        (Some("free"), _) => "0",
        (Some("need_permission"), _) => "1",
        (Some("disabled"), _) => "2",
        (_, Some("public")) | (_, Some("chatroom")) => "1",
        _ => "2",
    };
    f.insert("joinmode".into(), joinmode.into());
    // Members are pulled in by the owner (the importer) without their consent.
    f.insert("beinvitemode".into(), "1".into());
    for (from, to, max) in [
        ("intro", "intro", 512),
        ("notice", "announcement", 1024),
        ("avatar", "icon", 1024),
    ] {
        if let Some(v) = text(r, from) {
            within(from, v, max)?;
            f.insert(to.into(), v.into());
        }
    }
    if let Some(n) = r.get("max_members").and_then(Value::as_i64) {
        // Above the app's maximum (200 by default) NetEase refuses the team; leave it to the
        // app's own limit then.
        if (2..=200).contains(&n) {
            f.insert("teamMemberLimit".into(), n.to_string().into());
        }
    }
    let mut custom = match r.get("custom") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    custom.insert(SOURCE_KEY.into(), id.into());
    let custom = Value::Object(custom).to_string();
    within("custom (with imshift's source id)", &custom, 1024)?;
    f.insert("custom".into(), custom.into());
    Ok(part(item, f))
}

/// `team/create`'s form for a canonical group, as the import makes it (no members yet; the
/// old group's id in `custom`), for sync's `group.created`. `Err` says what NetEase refuses.
pub(super) fn team_form(group: &Value) -> Result<Vec<(String, String)>, String> {
    match group_part(0, group) {
        Ok(p) => Ok(form_of(&p)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()),
        Err(Outcome::Failed { message, .. } | Outcome::Skipped(message)) => Err(message),
        Err(Outcome::Sent(_)) => Err("the group cannot be made a team".into()),
    }
}

/// The team a Members item goes into: the `tid` the groups phase recorded for its group.
fn tid_of(item: &Item) -> Option<String> {
    item.context
        .get("group")
        .and_then(|g| g.get("tid"))
        .and_then(|t| {
            t.as_str()
                .map(str::to_string)
                .or_else(|| t.as_i64().map(|n| n.to_string()))
        })
}

/// The accounts in a `faccid` answer (invitees NetEase did not add) with its reason.
fn refused(v: &Value) -> (Vec<String>, String) {
    let f = v.get("faccid");
    let f = match f {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let accs = f
        .get("accid")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let msg = text(&f, "msg").unwrap_or("no reason given").to_string();
    (accs, msg)
}

impl NeteaseImport {
    async fn create_account(&self, p: &Prepared) -> Result<Vec<Outcome>, Failure> {
        let id = text(&p.part, "accid").unwrap_or_default().to_string();
        // The id map holds an account only where NetEase's id differs (its case).
        let changed = text(&p.sent, "source_id") != Some(id.as_str());
        let made = |note: Option<&str>| {
            let mut v = json!({});
            if changed {
                v["made"] = id.clone().into();
            }
            if let Some(n) = note {
                v["note"] = n.into();
            }
            Outcome::Sent(v)
        };
        match self.client.call("user/create", &form_of(p)).await {
            // The token NetEase made is dropped on purpose: imshift never holds login tokens.
            // The app server asks for a user's token itself (user/refreshToken), see README.
            Ok(_) => Ok(vec![made(None)]),
            // 414 is also NetEase's answer to an account registered already (an earlier run,
            // or a second old id differing only in case): look before calling it a failure.
            Err(NeteaseError::Api {
                code: 414, desc, ..
            }) => {
                let found = self
                    .client
                    .get_uinfos(std::slice::from_ref(&id))
                    .await
                    .map_err(failure)?;
                let there = found
                    .iter()
                    .any(|u| text(u, "accid").is_some_and(|a| a.eq_ignore_ascii_case(&id)));
                Ok(vec![if there {
                    made(Some("registered on NetEase already (code 414), found by user/getUinfos: its profile was not changed"))
                } else {
                    code_failed(414, &desc)
                }])
            }
            Err(e) => one(Err(e), json!({})),
        }
    }

    async fn add_friend(&self, p: &Prepared) -> Result<Vec<Outcome>, Failure> {
        match self.client.call("friend/add", &form_of(p)).await {
            Ok(_) => Ok(vec![Outcome::Sent(json!({}))]),
            // "Repeated operation": the two are friends already.
            Err(NeteaseError::Api { code: 417, .. }) => Ok(vec![Outcome::Sent(
                json!({"note": "already friends on NetEase (code 417)"}),
            )]),
            Err(e) => one(Err(e), json!({})),
        }
    }

    async fn create_team(&self, p: &Prepared) -> Result<Vec<Outcome>, Failure> {
        let v = match self.client.call("team/create", &form_of(p)).await {
            Ok(v) => v,
            Err(e) => return one(Err(e), json!({})),
        };
        let tid = match v.get("tid") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                // Created, but with no id to record: looking it up is the caller's next step.
                return Err(Failure {
                    class: ErrorClass::Retryable,
                    code: None,
                    message: "NetEase Yunxin team/create answered 200 with no `tid`".into(),
                    ambiguous: true,
                });
            }
        };
        Ok(vec![Outcome::Sent(json!({ "tid": tid, "made": tid }))])
    }

    /// The team imported from `source` among `owner`'s teams, if one is there.
    async fn find_team(&self, owner: &str, source: &str) -> Result<Option<String>, Failure> {
        let teams = self.client.join_teams(owner).await.map_err(failure)?;
        Ok(teams.iter().find_map(|t| {
            let custom: Value = match t.get("custom") {
                Some(Value::String(s)) => serde_json::from_str(s).ok()?,
                Some(v @ Value::Object(_)) => v.clone(),
                _ => return None,
            };
            (custom.get(SOURCE_KEY).and_then(Value::as_str) == Some(source)).then(|| {
                t.get("tid")
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default()
            })
        }))
    }

    async fn add_members(
        &self,
        tid: &str,
        owner: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Outcome>, Failure> {
        let accs: Vec<String> = parts
            .iter()
            .map(|p| text(&p.part, "accid").unwrap_or_default().to_string())
            .collect();
        self.client
            .check_batch("team/add", accs.len())
            .map_err(failure)?;
        let form = [
            ("tid", tid.to_string()),
            ("owner", owner.to_string()),
            ("members", json_list(&accs)),
            ("magree", "0".into()),
            ("msg", TEAM_MSG.into()),
        ];
        let mut outcomes: Vec<Outcome> = match self.client.call("team/add", &form).await {
            Ok(v) => {
                let (no, why) = refused(&v);
                accs.iter()
                    .map(|a| {
                        if no.contains(a) {
                            Outcome::failed(
                                None,
                                format!("NetEase Yunxin did not add this member: {why}"),
                            )
                        } else {
                            Outcome::Sent(json!({ "tid": tid }))
                        }
                    })
                    .collect()
            }
            // Every one of them is in the team already (a repeat after a lost answer).
            Err(NeteaseError::Api { code: 809, .. }) => accs
                .iter()
                .map(|_| {
                    Outcome::Sent(json!({ "tid": tid, "note": "a member already (code 809)" }))
                })
                .collect(),
            Err(NeteaseError::Api { code, desc, .. })
                if classify(code) == ErrorClass::Permanent =>
            {
                accs.iter().map(|_| code_failed(code, &desc)).collect()
            }
            Err(e) => return Err(failure(e)),
        };
        // Then the managers among those added, ten a call (§2.3).
        let managers: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                text(&p.part, "role") == Some("admin") && matches!(outcomes[*i], Outcome::Sent(_))
            })
            .map(|(i, _)| i)
            .collect();
        let per = self.client.limits().batch("team/addManager").unwrap_or(10);
        for chunk in managers.chunks(per.max(1)) {
            let names: Vec<&str> = chunk.iter().map(|&i| accs[i].as_str()).collect();
            let form = [
                ("tid", tid.to_string()),
                ("owner", owner.to_string()),
                ("members", json_list(&names)),
            ];
            match self.client.call("team/addManager", &form).await {
                Ok(_) => {
                    for &i in chunk {
                        outcomes[i] = Outcome::Sent(json!({ "tid": tid, "role": "manager" }));
                    }
                }
                Err(NeteaseError::Api { code, desc, .. })
                    if classify(code) == ErrorClass::Permanent =>
                {
                    for &i in chunk {
                        outcomes[i] = Outcome::failed(
                            Some(code),
                            format!(
                                "added to the team but not made a manager: NetEase Yunxin code {code}: {} (server said: {desc})",
                                explain(code)
                            ),
                        );
                    }
                }
                // Adding again is harmless (809), so the whole batch is sent again.
                Err(e) => return Err(failure(e)),
            }
        }
        Ok(outcomes)
    }
}

#[async_trait::async_trait]
impl ImportTarget for NeteaseImport {
    fn rate_key(&self, api: &str) -> String {
        // NetEase limits per App Key and category, so APIs of a category share one pace.
        format!("netease:{}:{}", self.client.app_key(), super::category(api))
    }

    fn support(&self, phase: Phase) -> Support {
        let why = match phase {
            Phase::Profiles => "user/create carried each account's profile with it (nickname, avatar, gender, birthday, signature; location and custom fields in `ex`)",
            Phase::C2cHistory | Phase::GroupHistory => "NetEase Yunxin has no API to import history: its staff import it from migration files. Download them under NetEase history files on this tab and attach them to your history import request to NetEase",
            Phase::Unread => "NetEase Yunxin has no API to set unread counts; they start at zero after the move",
            Phase::Conversations => "NetEase Yunxin has no API to write an account's recent conversations: as its migration guide says (§5), NetEase builds them from the offline and roaming messages it delivers, the imported history included; conversations older than what it keeps stay in your app's own list (the records remain in your dump)",
            Phase::GroupEvents => "group notifications go in NetEase's migration files with the group history, not through an API",
            _ => "",
        };
        let Some(api) = Self::api(phase) else {
            return Support::Skip(why.into());
        };
        let l = self.client.limits().get(api);
        // Only team/add takes a list; every other call carries one record.
        let batch = match phase {
            Phase::Members => l.and_then(|l| l.batch).unwrap_or(1),
            _ => 1,
        };
        Support::Api {
            api,
            batch,
            qps: l.map(|l| l.qps as f64).unwrap_or(100.0),
        }
    }

    fn prepare(&self, phase: Phase, items: &[Item]) -> Vec<Result<Prepared, Outcome>> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let r = &item.record;
                match phase {
                    Phase::Accounts => account_part(i, r),
                    Phase::Friends => {
                        let (Some(owner), Some(friend)) = (text(r, "owner"), text(r, "friend"))
                        else {
                            return Err(Outcome::failed(None, "a friend record needs `owner` and `friend`"));
                        };
                        let mut f = Map::new();
                        f.insert("accid".into(), accid(owner).into());
                        f.insert("faccid".into(), accid(friend).into());
                        // 1: added directly, no request to accept.
                        f.insert("type".into(), "1".into());
                        Ok(part(i, f))
                    }
                    Phase::Blocks => {
                        let (Some(owner), Some(blocked)) = (text(r, "owner"), text(r, "blocked"))
                        else {
                            return Err(Outcome::failed(None, "a block record needs `owner` and `blocked`"));
                        };
                        let mut f = Map::new();
                        f.insert("accid".into(), accid(owner).into());
                        f.insert("targetAcc".into(), accid(blocked).into());
                        // 1: blacklist; value 1: add.
                        f.insert("relationType".into(), "1".into());
                        f.insert("value".into(), "1".into());
                        Ok(part(i, f))
                    }
                    Phase::Groups => group_part(i, r),
                    Phase::Members => {
                        if text(r, "role") == Some("owner") {
                            return Err(Outcome::Skipped(
                                "the owner is in the team from its creation (team/create)".into(),
                            ));
                        }
                        let Some(account) = text(r, "account") else {
                            return Err(Outcome::failed(None, "a member record needs `account`"));
                        };
                        let Some(tid) = tid_of(item) else {
                            return Err(Outcome::failed(None, "its group has no NetEase team id: the groups phase did not record one for it"));
                        };
                        let Some(owner) = item.context.get("group").and_then(|g| text(g, "owner"))
                        else {
                            return Err(Outcome::failed(None, "its group's owner is not known"));
                        };
                        let mut f = Map::new();
                        f.insert("accid".into(), accid(account).into());
                        f.insert(
                            "role".into(),
                            text(r, "role").unwrap_or("member").into(),
                        );
                        f.insert("tid".into(), tid.into());
                        f.insert("owner".into(), accid(owner).into());
                        Ok(part(i, f))
                    }
                    _ => Err(Outcome::Skipped("not imported into NetEase Yunxin".into())),
                }
            })
            .collect()
    }

    async fn send(
        &self,
        phase: Phase,
        key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Outcome>, Failure> {
        let Some(first) = parts.first() else {
            return Ok(vec![]);
        };
        if phase != Phase::Members && parts.len() > 1 {
            // One record a call (support() says batch 1): one outcome each all the same.
            let mut out = vec![];
            for p in parts {
                out.extend(self.send(phase, key, std::slice::from_ref(p)).await?);
            }
            return Ok(out);
        }
        match phase {
            Phase::Accounts => self.create_account(first).await,
            Phase::Friends => self.add_friend(first).await,
            Phase::Blocks => one(
                self.client
                    .call("user/setSpecialRelation", &form_of(first))
                    .await,
                json!({}),
            ),
            Phase::Groups => self.create_team(first).await,
            Phase::Members => {
                let tid = text(&first.part, "tid").unwrap_or_default().to_string();
                let owner = text(&first.part, "owner").unwrap_or_default().to_string();
                self.add_members(&tid, &owner, parts).await
            }
            _ => Ok(parts
                .iter()
                .map(|_| Outcome::Skipped("not imported into NetEase Yunxin".into()))
                .collect()),
        }
    }

    async fn reconcile(
        &self,
        phase: Phase,
        _key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Option<Outcome>>, Failure> {
        if phase != Phase::Groups {
            // Every other call is harmless to repeat: an account registered already is found
            // (414 → getUinfos), friends and blacklists are set, members already in a team
            // answer 809.
            return Ok(vec![None; parts.len()]);
        }
        let mut out = vec![];
        for p in parts {
            let owner = text(&p.part, "owner").unwrap_or_default();
            let source = text(&p.part, "custom")
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .and_then(|c| {
                    c.get(SOURCE_KEY)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            out.push(self.find_team(owner, &source).await?.map(|tid| {
                Outcome::Sent(json!({
                    "tid": tid,
                    "made": tid,
                    "note": "created by an earlier request whose answer was lost: found among the owner's teams (team/joinTeams)",
                }))
            }));
        }
        Ok(out)
    }

    fn check_before_repeat(&self, phase: Phase) -> bool {
        phase == Phase::Groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_carries_its_profile_and_never_a_cut_value() {
        let p = account_part(
            0,
            &json!({"id":"Alice@X","nick":"Al","gender":"female","location":"HZ","custom":{"lv":"3"}}),
        )
        .unwrap();
        assert_eq!(p.part["accid"], "alice@x");
        assert_eq!(p.part["gender"], "2");
        let ex: Value = serde_json::from_str(p.part["ex"].as_str().unwrap()).unwrap();
        assert_eq!(ex, json!({"lv":"3","location":"HZ"}));
        let long = "n".repeat(65);
        let Err(Outcome::Failed { message, .. }) = account_part(0, &json!({"id":"a","nick": long}))
        else {
            panic!("a 65-character nickname must be refused");
        };
        assert!(message.contains("at most 64"), "{message}");
    }

    #[test]
    fn a_team_names_its_old_group_and_joins_as_the_group_did() {
        let p = group_part(
            0,
            &json!({"id":"g1","owner":"U1","type":"private","custom":{"k":"v"},"max_members":500}),
        )
        .unwrap();
        assert_eq!(p.part["tname"], "g1");
        assert_eq!(p.part["owner"], "u1");
        assert_eq!(p.part["joinmode"], "2");
        assert_eq!(p.part["magree"], "0");
        assert!(p.part.get("teamMemberLimit").is_none());
        let custom: Value = serde_json::from_str(p.part["custom"].as_str().unwrap()).unwrap();
        assert_eq!(custom, json!({"k":"v", SOURCE_KEY: "g1"}));
        let p = group_part(
            0,
            &json!({"id":"g2","owner":"u","join":"free","max_members":50}),
        )
        .unwrap();
        assert_eq!(p.part["joinmode"], "0");
        assert_eq!(p.part["teamMemberLimit"], "50");
    }

    #[test]
    fn refused_invitees_are_read_from_faccid_as_object_or_string() {
        let (a, why) = refused(&json!({"faccid":{"accid":["B"],"msg":"full"}}));
        assert_eq!((a, why.as_str()), (vec!["b".to_string()], "full"));
        let (a, _) = refused(&json!({"faccid":"{\"accid\":[\"c\"]}"}));
        assert_eq!(a, vec!["c".to_string()]);
        assert!(refused(&json!({})).0.is_empty());
    }
}
