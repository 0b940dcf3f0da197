//! RongCloud as an import target, in the order of reference §6.1: accounts
//! (`user/getToken`, with the push name and portrait), blacklists (`user/blacklist/add`, 20 a
//! call), friends only where the app uses RongCloud's hosted friends (`friend/add`,
//! `optType=2`), groups (`group/create` with the owner) and members (`group/join`, 1000 a call).
//!
//! RongCloud keeps ids of the app's choosing, so every id stays the old one (the id map stays
//! empty), and it holds a classic group's id, name and members only: the rest of a group stays
//! with the app server, and each group's result says what did.
//!
//! History has no server-side import (§2.8): the publish APIs would deliver old messages as new
//! ones, stamped now, so every history phase is skipped and says so.
//!
//! Every call here is safe to repeat (§6.5): getToken updates the same user, blacklists and
//! memberships are sets, group ids are the app's. What RongCloud answers a `group/create` of a
//! group that exists is UNCONFIRMED, so a repeat after a lost answer looks first.

use super::client::RongcloudClient;
use super::errors::RongcloudError;
use super::rules::{check_group_id, check_user_id};
use crate::import::plan::Phase;
use crate::import::target::{Failure, ImportTarget, Item, Outcome, Prepared, Support};
use crate::providers::ErrorClass;
use serde_json::{json, Value};

/// What each registered account's result says about its token.
pub const TOKEN_NOTE: &str = "registered with user/getToken; the token RongCloud answered was dropped unread: the app server gets each user's token itself (user/getToken at first sign-in)";

const HISTORY: &str = "RongCloud has no server API to import history; its publish APIs would deliver every old message as a new one, stamped with today's time, pushed and counted as unread, so imshift does not send them: build the history bundles on the Import tab for the new app to insert on the device (IMLib's local insert; nothing reaches RongCloud's servers)";

pub struct RongcloudImport {
    client: RongcloudClient,
    /// The app uses RongCloud's hosted friends (信息托管, enabled by ticket, §2.3).
    hosted_friends: bool,
}

impl RongcloudImport {
    pub fn new(client: RongcloudClient, hosted_friends: bool) -> Self {
        RongcloudImport {
            client,
            hosted_friends,
        }
    }

    fn api(&self, phase: Phase) -> Option<&'static str> {
        Some(match phase {
            Phase::Accounts => "user/getToken",
            Phase::Friends if self.hosted_friends => "friend/add",
            Phase::Blocks => "user/blacklist/add",
            Phase::Groups => "group/create",
            Phase::Members => "group/join",
            _ => return None,
        })
    }
}

fn failure(e: RongcloudError) -> Failure {
    Failure {
        class: e.class(),
        code: e.code(),
        ambiguous: e.ambiguous(),
        message: e.to_string(),
    }
}

/// A request's answer for each of its `n` records: a permanent refusal is the records'; what a
/// retry or a person can fix fails the request.
fn answer(r: Result<(), RongcloudError>, n: usize, sent: Value) -> Result<Vec<Outcome>, Failure> {
    match r {
        Ok(()) => Ok(vec![Outcome::Sent(sent); n]),
        Err(e) if e.class() == ErrorClass::Permanent => {
            Ok(vec![Outcome::failed(e.code(), e.to_string()); n])
        }
        Err(e) => Err(failure(e)),
    }
}

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// RongCloud counts these limits in bytes (§4): a longer value is refused, never cut.
fn within_bytes(field: &str, value: &str, max: usize) -> Result<(), Outcome> {
    if value.len() > max {
        return Err(Outcome::failed(
            None,
            format!(
                "`{field}` is {} bytes; RongCloud takes at most {max}: shorten it in the dump",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn part(item: usize, v: Value) -> Prepared {
    Prepared {
        item,
        part: v,
        sent: json!({}),
    }
}

fn user_id<'a>(r: &'a Value, field: &str, what: &str) -> Result<&'a str, Outcome> {
    let id =
        text(r, field).ok_or_else(|| Outcome::failed(None, format!("{what} has no `{field}`")))?;
    check_user_id(id).map_err(|why| {
        Outcome::failed(
            None,
            format!("`{field}` = {id:?} is not a RongCloud userId: {why}"),
        )
    })?;
    Ok(id)
}

fn account_part(item: usize, r: &Value) -> Result<Prepared, Outcome> {
    let id = user_id(r, "id", "the account")?;
    // `name` is required by the older docs and shown in pushes: the id when there is no nick.
    let name = text(r, "nick").unwrap_or(id);
    within_bytes("nick", name, 128)?;
    let mut p = json!({ "userId": id, "name": name });
    if let Some(a) = text(r, "avatar") {
        within_bytes("avatar", a, 1024)?;
        p["portraitUri"] = a.into();
    }
    Ok(part(item, p))
}

/// A group's fields RongCloud does not keep (§2.4), for its result's note.
fn left_with_app_server(r: &Value) -> Vec<String> {
    r.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !["kind", "id", "name", "owner", "extra"].contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn group_part(item: usize, r: &Value) -> Result<Prepared, Outcome> {
    let id = text(r, "id").ok_or_else(|| Outcome::failed(None, "the group has no `id`"))?;
    check_group_id(id).map_err(|why| {
        Outcome::failed(
            None,
            format!("`id` = {id:?} is not a RongCloud groupId: {why}"),
        )
    })?;
    // RongCloud makes a group with at least one member: its owner, here.
    let owner = user_id(r, "owner", "the group")?;
    let name = text(r, "name").unwrap_or(id);
    let n = name.chars().count();
    if n > 64 {
        return Err(Outcome::failed(
            None,
            format!("`name` is {n} characters; RongCloud takes at most 64: shorten it in the dump"),
        ));
    }
    let mut rest = left_with_app_server(r);
    rest.insert(0, "its owner (a plain member on RongCloud)".into());
    let note = format!(
        "RongCloud keeps a group's id, name and members only: {} stay with your app server",
        rest.join(", ")
    );
    Ok(part(
        item,
        json!({ "groupId": id, "groupName": name, "owner": owner, "note": note }),
    ))
}

fn member_part(item: &Item, i: usize) -> Result<Prepared, Outcome> {
    let r = &item.record;
    let role = text(r, "role").unwrap_or("member");
    if role == "owner" {
        return Err(Outcome::Skipped(
            "the owner is in the group from its creation (group/create)".into(),
        ));
    }
    let account = user_id(r, "account", "a member record")?;
    let group = text(r, "group").unwrap_or(&item.key);
    let mut dropped = vec![];
    if role == "admin" {
        dropped.push("its admin role");
    }
    if text(r, "nick").is_some() {
        dropped.push("its group nickname");
    }
    if r.get("muted_until").is_some_and(|m| !m.is_null()) {
        dropped.push("its mute");
    }
    let mut p = json!({ "groupId": group, "userId": account });
    if !dropped.is_empty() {
        p["note"] = format!(
            "RongCloud classic groups keep members only: {} stay with your app server",
            dropped.join(", ")
        )
        .into();
    }
    Ok(part(i, p))
}

fn pair_part(i: usize, r: &Value, other: &str, what: &str) -> Result<Prepared, Outcome> {
    let owner = user_id(r, "owner", what)?;
    let target = user_id(r, other, what)?;
    Ok(part(i, json!({ "userId": owner, "targetId": target })))
}

fn s(p: &Prepared, k: &str) -> String {
    text(&p.part, k).unwrap_or_default().to_string()
}

fn noted(p: &Prepared) -> Value {
    match text(&p.part, "note") {
        Some(n) => json!({ "note": n }),
        None => json!({}),
    }
}

impl RongcloudImport {
    async fn register(&self, p: &Prepared) -> Result<Vec<Outcome>, Failure> {
        let r = self
            .client
            .register(&s(p, "userId"), &s(p, "name"), text(&p.part, "portraitUri"))
            .await;
        answer(r, 1, json!({ "note": TOKEN_NOTE }))
    }

    async fn block(&self, parts: &[&Prepared]) -> Result<Vec<Outcome>, Failure> {
        let owner = s(parts[0], "userId");
        let blocked: Vec<String> = parts.iter().map(|p| s(p, "targetId")).collect();
        answer(
            self.client.blacklist_add(&owner, &blocked).await,
            parts.len(),
            json!({}),
        )
    }

    async fn join(&self, parts: &[&Prepared]) -> Result<Vec<Outcome>, Failure> {
        let group = s(parts[0], "groupId");
        let members: Vec<String> = parts.iter().map(|p| s(p, "userId")).collect();
        match self.client.group_join(&group, None, &members).await {
            Ok(()) => Ok(parts.iter().map(|p| Outcome::Sent(noted(p))).collect()),
            Err(e) => answer(Err(e), parts.len(), json!({})),
        }
    }

    /// The groups' members as RongCloud lists them; `None` for a group it does not know.
    async fn members_of(&self, group: &str) -> Result<Option<Vec<String>>, Failure> {
        match self.client.group_members(group).await {
            Ok(m) => Ok(Some(m)),
            // No such group (RongCloud's code for it is UNCONFIRMED): not made yet.
            Err(e) if e.class() == ErrorClass::Permanent => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }
}

#[async_trait::async_trait]
impl ImportTarget for RongcloudImport {
    fn rate_key(&self, api: &str) -> String {
        // RongCloud limits each API on its own, per App Key (§1.5): one pace per key and API,
        // shared by every worker and every migration into the same app.
        format!("rongcloud:{}:{api}", self.client.app_key())
    }

    fn support(&self, phase: Phase) -> Support {
        let why = match phase {
            Phase::Profiles => "user/getToken carried each account's name and portrait (user/refresh would only set the same two again); RongCloud keeps no other profile field (gender, birthday, signature, location, custom) outside its ticket-enabled profile hosting, so those stay with your app server",
            Phase::Friends => "friendships stay with your app server, as in classic RongCloud apps: RongCloud stores none unless its profile hosting (enabled by ticket) is on. Import them into your app server from the dump, or set Friends to \"hosted by RongCloud\" on the target connection if your app uses RongCloud's hosted friends",
            Phase::C2cHistory | Phase::GroupHistory => HISTORY,
            Phase::GroupEvents => "group notifications are messages on RongCloud, and RongCloud has no server API to import history: they stay in the dump for your app server",
            Phase::Unread => "RongCloud has no server API to set unread counts; they start at zero after the move",
            Phase::Conversations => "RongCloud has no server API to write an account's conversation list: devices build it from the messages they receive, so it starts empty after the move (the records remain in your dump)",
            _ => "",
        };
        let Some(api) = self.api(phase) else {
            return Support::Skip(why.into());
        };
        let l = self.client.limits().get(api);
        // Blacklists and joins take lists; every other call carries one record.
        let batch = match phase {
            Phase::Blocks | Phase::Members => l.and_then(|l| l.batch).unwrap_or(1),
            _ => 1,
        };
        Support::Api {
            api,
            batch,
            qps: l.map(|l| l.qps as f64).unwrap_or(90.0),
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
                    Phase::Friends if self.hosted_friends => {
                        pair_part(i, r, "friend", "a friend record")
                    }
                    Phase::Blocks => pair_part(i, r, "blocked", "a block record"),
                    Phase::Groups => group_part(i, r),
                    Phase::Members => member_part(item, i),
                    _ => Err(Outcome::Skipped("not imported into RongCloud".into())),
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
        if !matches!(phase, Phase::Blocks | Phase::Members) && parts.len() > 1 {
            // One record a call (support() says batch 1): one outcome each all the same.
            let mut out = vec![];
            for p in parts {
                out.extend(self.send(phase, key, std::slice::from_ref(p)).await?);
            }
            return Ok(out);
        }
        match phase {
            Phase::Accounts => self.register(first).await,
            Phase::Friends if self.hosted_friends => answer(
                self.client
                    .friend_add(&s(first, "userId"), &s(first, "targetId"))
                    .await,
                1,
                json!({}),
            ),
            Phase::Blocks => self.block(parts).await,
            Phase::Groups => answer(
                self.client
                    .group_create(
                        &s(first, "groupId"),
                        &s(first, "groupName"),
                        &[s(first, "owner")],
                    )
                    .await,
                1,
                noted(first),
            ),
            Phase::Members => self.join(parts).await,
            _ => Ok(parts
                .iter()
                .map(|_| Outcome::Skipped("not imported into RongCloud".into()))
                .collect()),
        }
    }

    /// What already reached RongCloud, by reading it back: a group holding its owner, members
    /// in their group, blocked accounts on the owner's blacklist. Accounts and friends are not
    /// looked up: sending them again changes nothing.
    async fn reconcile(
        &self,
        phase: Phase,
        _key: &str,
        parts: &[&Prepared],
    ) -> Result<Vec<Option<Outcome>>, Failure> {
        let found = |note: &str| Some(Outcome::Sent(json!({ "note": note })));
        match phase {
            Phase::Groups => {
                let mut out = vec![];
                for p in parts {
                    let there = self
                        .members_of(&s(p, "groupId"))
                        .await?
                        .is_some_and(|m| m.contains(&s(p, "owner")));
                    out.push(if there {
                        found("created by an earlier request whose answer was lost: found with its owner (group/user/query)")
                    } else {
                        None
                    });
                }
                Ok(out)
            }
            Phase::Members => {
                let Some(first) = parts.first() else {
                    return Ok(vec![]);
                };
                let members = self
                    .members_of(&s(first, "groupId"))
                    .await?
                    .unwrap_or_default();
                Ok(parts
                    .iter()
                    .map(|p| {
                        members.contains(&s(p, "userId")).then(|| {
                            Outcome::Sent(json!({
                                "note": "joined by an earlier request whose answer was lost: found among the group's members (group/user/query)"
                            }))
                        })
                    })
                    .collect())
            }
            Phase::Blocks => {
                let Some(first) = parts.first() else {
                    return Ok(vec![]);
                };
                let list = self
                    .client
                    .blacklist(&s(first, "userId"))
                    .await
                    .map_err(failure)?;
                Ok(parts
                    .iter()
                    .map(|p| {
                        list.contains(&s(p, "targetId")).then(|| {
                            Outcome::Sent(json!({
                                "note": "on the blacklist already: found by user/blacklist/query"
                            }))
                        })
                    })
                    .collect())
            }
            _ => Ok(vec![None; parts.len()]),
        }
    }

    /// A `group/create` repeated for a group that exists may be refused (RongCloud's answer is
    /// UNCONFIRMED): after a lost answer, look for the group first.
    fn check_before_repeat(&self, phase: Phase) -> bool {
        phase == Phase::Groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::rongcloud::RongcloudConfig;
    use secrecy::SecretString;

    fn import(hosted_friends: bool) -> RongcloudImport {
        let c = RongcloudClient::new(RongcloudConfig::new(
            "https://api.rong-api.com",
            "appkey1",
            SecretString::from("s".to_string()),
        ))
        .unwrap();
        RongcloudImport::new(c, hosted_friends)
    }

    #[test]
    fn an_account_carries_name_and_portrait_and_never_a_cut_value() {
        let p = account_part(
            0,
            &json!({"id":"u1","avatar":"https://a/b.png","gender":"male"}),
        )
        .unwrap();
        assert_eq!(
            p.part,
            json!({"userId":"u1","name":"u1","portraitUri":"https://a/b.png"})
        );
        // 43 CJK characters are 129 bytes: over the 128-byte limit.
        let long = "名".repeat(43);
        let Err(Outcome::Failed { message, .. }) = account_part(0, &json!({"id":"a","nick": long}))
        else {
            panic!("a 129-byte name must be refused");
        };
        assert!(message.contains("at most 128"), "{message}");
        assert!(account_part(0, &json!({"id":"a@b"})).is_err());
    }

    #[test]
    fn a_group_keeps_its_id_and_name_and_says_what_stays_behind() {
        let p = group_part(
            0,
            &json!({"id":"g1","name":"Team","owner":"u1","intro":"x","max_members":50}),
        )
        .unwrap();
        assert_eq!(p.part["groupId"], "g1");
        assert_eq!(p.part["owner"], "u1");
        let note = p.part["note"].as_str().unwrap();
        assert!(
            note.contains("intro") && note.contains("max_members"),
            "{note}"
        );
        assert!(group_part(0, &json!({"id":"g_1","owner":"u1"})).is_err());
        assert!(group_part(0, &json!({"id":"g1"})).is_err(), "no owner");
        assert_eq!(
            group_part(0, &json!({"id":"g2","owner":"u"})).unwrap().part["groupName"],
            "g2"
        );
    }

    #[test]
    fn history_is_skipped_in_words_and_friends_follow_the_setting() {
        let i = import(false);
        for ph in [Phase::C2cHistory, Phase::GroupHistory] {
            let Support::Skip(why) = i.support(ph) else {
                panic!("{ph:?} must be skipped");
            };
            assert!(why.starts_with("RongCloud has no server API to import history"));
        }
        for ph in [
            Phase::Profiles,
            Phase::Unread,
            Phase::Conversations,
            Phase::GroupEvents,
        ] {
            assert!(matches!(i.support(ph), Support::Skip(_)), "{ph:?}");
        }
        assert!(matches!(i.support(Phase::Friends), Support::Skip(w) if w.contains("app server")));
        assert!(matches!(
            import(true).support(Phase::Friends),
            Support::Api {
                api: "friend/add",
                batch: 1,
                ..
            }
        ));
        assert!(matches!(
            i.support(Phase::Members),
            Support::Api {
                api: "group/join",
                batch: 1000,
                ..
            }
        ));
        assert!(matches!(
            i.support(Phase::Blocks),
            Support::Api {
                api: "user/blacklist/add",
                batch: 20,
                ..
            }
        ));
        assert_eq!(i.rate_key("group/join"), "rongcloud:appkey1:group/join");
        assert!(i.check_before_repeat(Phase::Groups));
        assert!(!i.check_before_repeat(Phase::Accounts));
    }

    #[test]
    fn the_owner_is_not_joined_again_and_a_manager_is_told_apart() {
        let item = |r: Value| Item {
            upload_id: uuid::Uuid::nil().into(),
            ord: 0,
            key: "g1".into(),
            record: r,
            context: Value::Null,
            done: false,
            tries_before: 0,
        };
        let i = import(false);
        let out = i.prepare(
            Phase::Members,
            &[
                item(json!({"group":"g1","account":"u1","role":"owner"})),
                item(json!({"group":"g1","account":"u2","role":"admin"})),
                item(json!({"group":"g1","account":"u3"})),
            ],
        );
        assert!(matches!(out[0], Err(Outcome::Skipped(_))));
        let admin = out[1].as_ref().unwrap();
        assert!(admin.part["note"].as_str().unwrap().contains("admin role"));
        assert!(out[2].as_ref().unwrap().part.get("note").is_none());
    }
}
