//! Coexistence sync into NetEase Yunxin: the sink that applies the other side's events through
//! the V1 API (reference §2.4, §7.7). The other way, NetEase's message copy (抄送), is read in
//! `callbacks.rs`.
//!
//! Echo guards, stacked: messages go in with `option.route=false`, so NetEase does not copy
//! them back ([`EchoGuards::provider_flags`]); each carries imshift's tag in `ext`
//! ([`EchoGuards::origin_tag`]); and the msgid NetEase answers goes to the id map (the copy's
//! key is that msgid), so a copy that does come back is known as imshift's own.
//!
//! Applied: `message.sent`, and the group events (`group.created` through `team/create` with
//! the old group's id in `custom`, as the import makes teams; `group.updated`,
//! `group.dismissed`, `group.members_joined` and `group.members_left` as the team's owner).
//! Other kinds fail permanently, saying so, and wait as dead letters.

use super::callbacks::tagged;
use super::client::NeteaseClient;
use super::import::{accid, team_form, SOURCE_KEY, TEAM_MSG};
use super::NeteaseError;
use crate::providers::{Delivered, EchoGuards, ErrorClass, SyncEvent, SyncSink};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The API messages go through.
const SEND: &str = "msg/sendMsg";

/// A NetEase team as the sink knows it: its id and its owner (team calls name the operator,
/// and the owner may do every one of them).
#[derive(Clone)]
struct Team {
    tid: String,
    owner: String,
}
/// `ext` takes at most this many characters (§2.4).
const MAX_EXT: usize = 1024;

/// Applies the other side's events to one NetEase app.
pub struct NeteaseSink {
    pub client: NeteaseClient,
    pub guards: EchoGuards,
    /// Old group id → the team NetEase gave it and that team's owner, as found among a
    /// member's teams.
    teams: Mutex<HashMap<String, Team>>,
}

impl NeteaseSink {
    pub fn new(client: NeteaseClient, guards: EchoGuards) -> Self {
        NeteaseSink {
            client,
            guards,
            teams: Mutex::new(HashMap::new()),
        }
    }
}

fn refused(message: impl Into<String>) -> Delivered {
    Delivered::failed(ErrorClass::Permanent, None, message)
}

/// A NetEase error as a delivery failure: its code when NetEase answered one, in words.
fn failed(e: &NeteaseError) -> Delivered {
    let code = match e {
        NeteaseError::Api { code, .. } => code.to_string(),
        NeteaseError::Transport { .. } => return Delivered::unreachable(e.to_string()),
        NeteaseError::Http { status, .. } => format!("http_{status}"),
        NeteaseError::Blocked { .. } => "blocked".into(),
        NeteaseError::Redirect { .. } => "redirect".into(),
        NeteaseError::TooLarge { .. } | NeteaseError::Decode { .. } => "unreadable_answer".into(),
        NeteaseError::Config(_) | NeteaseError::Invalid { .. } => "config".into(),
    };
    Delivered::failed(e.class(), Some(code), e.to_string())
}

/// A canonical body as `sendMsg`'s `type` and `body` (§2.5). Media go by their URL; a body
/// NetEase has no type for (a face) goes as a custom message carrying it whole.
pub fn send_body(body: &Value) -> Result<(i64, Value), String> {
    let ty = body
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the message body has no `type`")?;
    let mut b = Map::new();
    let mut put = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            b.insert(k.into(), v.clone());
        }
    };
    let f = |k: &str| body.get(k);
    let n = match ty {
        "text" => {
            put(
                "msg",
                Some(f("text").unwrap_or(&Value::String(String::new()))),
            );
            0
        }
        "image" => {
            put("url", f("url"));
            put("name", f("name"));
            put("size", f("size"));
            put("w", f("width"));
            put("h", f("height"));
            put("ext", f("format"));
            1
        }
        "audio" => {
            put("url", f("url"));
            put("size", f("size"));
            put("dur", f("duration_ms"));
            put("ext", f("format"));
            2
        }
        "video" => {
            put("url", f("url"));
            put("size", f("size"));
            put("dur", f("duration_ms"));
            put("w", f("width"));
            put("h", f("height"));
            put("ext", f("format"));
            3
        }
        "location" => {
            put("title", f("title"));
            put("lat", f("lat"));
            put("lng", f("lng"));
            4
        }
        "file" => {
            put("url", f("url"));
            put("name", f("name"));
            put("size", f("size"));
            put("ext", f("format"));
            6
        }
        "custom" => {
            return Ok((
                100,
                match f("data") {
                    Some(Value::Object(o)) => Value::Object(o.clone()),
                    other => {
                        json!({"data": other.cloned().unwrap_or(Value::Null), "desc": f("desc")})
                    }
                },
            ))
        }
        "face" => return Ok((100, body.clone())),
        other => {
            return Err(format!(
                "a `{other}` message body has no NetEase Yunxin type"
            ))
        }
    };
    if matches!(n, 1 | 2 | 3 | 6) && !b.contains_key("url") {
        return Err(format!(
            "a {ty} message needs its file's `url` to go into NetEase Yunxin"
        ));
    }
    Ok((n, Value::Object(b)))
}

fn s<'a>(d: &'a Value, k: &str) -> &'a str {
    d.get(k).and_then(Value::as_str).unwrap_or_default()
}

impl NeteaseSink {
    /// The team NetEase gave old group `group`: imported (and synced) teams carry the group's
    /// id in their `custom`, found among `member`'s teams (`team/joinTeams`).
    async fn team(&self, group: &str, member: &str) -> Result<Option<Team>, NeteaseError> {
        if let Some(t) = self
            .teams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
        {
            return Ok(Some(t.clone()));
        }
        let teams = self.client.join_teams(member).await?;
        let found = teams.iter().find_map(|t| {
            let custom: Value = match t.get("custom") {
                Some(Value::String(c)) => serde_json::from_str(c).ok()?,
                Some(v) => v.clone(),
                None => return None,
            };
            if custom.get(SOURCE_KEY).and_then(Value::as_str) != Some(group) {
                return None;
            }
            let tid = match t.get("tid") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return None,
            };
            Some(Team {
                tid,
                owner: s(t, "owner").to_string(),
            })
        });
        if let Some(t) = &found {
            self.teams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(group.to_string(), t.clone());
        }
        Ok(found)
    }

    /// [`Self::team`], looked for among the teams of each account in turn (the actor first):
    /// the first one NetEase knows in the team finds it.
    async fn team_via(
        &self,
        group: &str,
        accounts: &[String],
    ) -> Result<Option<Team>, NeteaseError> {
        for a in accounts.iter().filter(|a| !a.is_empty()) {
            match self.team(group, a).await {
                Ok(Some(t)) => return Ok(Some(t)),
                Ok(None) => {}
                // An account NetEase does not have cannot be in the team.
                Err(e) if matches!(e.code(), Some(404 | 414)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Registers accounts NetEase does not have yet (an account created on the old side after
    /// the import); one that exists already (414) is fine.
    async fn register(&self, accounts: &[String]) -> Result<(), NeteaseError> {
        for a in accounts {
            match self
                .client
                .call("user/create", &[("accid", a.clone())])
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some(414) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn message(&self, e: &SyncEvent) -> Delivered {
        let d = &e.data;
        let (from, to_raw) = (accid(s(d, "from")), s(d, "to"));
        if from.is_empty() || to_raw.is_empty() {
            return refused(format!(
                "the message has no `from` or `to` (got {})",
                d.get("id").cloned().unwrap_or(Value::Null)
            ));
        }
        let group = s(d, "conv") == "group";
        let (ty, body) = match send_body(d.get("body").unwrap_or(&Value::Null)) {
            Ok(x) => x,
            Err(why) => return refused(why),
        };
        let to = if group {
            match self.team_via(to_raw, std::slice::from_ref(&from)).await {
                Ok(Some(t)) => t.tid,
                Ok(None) => {
                    return refused(format!(
                        "group {to_raw} has no NetEase Yunxin team known to imshift: none of {from}'s teams carries it (imported teams do, in `custom`); import the group before syncing its messages"
                    ))
                }
                Err(err) => return failed(&err),
            }
        } else {
            accid(to_raw)
        };
        let app_ext = d.get("ext").and_then(Value::as_str);
        let ext = if self.guards.origin_tag {
            Some(tagged(app_ext, &e.key))
        } else {
            app_ext.map(str::to_string)
        };
        if let Some(x) = &ext {
            if x.chars().count() > MAX_EXT {
                return refused(format!(
                    "the message's ext (with imshift's tag) is {} characters; NetEase Yunxin takes at most {MAX_EXT}",
                    x.chars().count()
                ));
            }
        }
        let mut form: Vec<(&str, String)> = vec![
            ("from", from.clone()),
            ("ope", if group { "1" } else { "0" }.into()),
            ("to", to.clone()),
            ("type", ty.to_string()),
            ("body", body.to_string()),
        ];
        if self.guards.provider_flags {
            form.push(("option", json!({"route": false}).to_string()));
        }
        if let Some(x) = ext {
            form.push(("ext", x));
        }
        // `sendMsg` does not absorb a repeat: after a try whose result is unknown, look in
        // the conversation's history before sending again (reference §7.3).
        let sent = Sent {
            key: &e.key,
            from: &from,
            to: &to,
            group,
            ty,
            body: &body,
        };
        if e.attempts > 0 {
            match self.find_sent(&sent).await {
                Ok(Some(msgid)) => return Delivered::Applied { made: Some(msgid) },
                Ok(None) => {}
                Err(err) => return failed(&err),
            }
        }
        let mut answer = self.client.call(SEND, &form).await;
        // An account the old system has and NetEase does not yet: register it, send again.
        if matches!(&answer, Err(err) if err.code() == Some(404)) {
            let mut accounts = vec![from.clone()];
            if !group {
                accounts.push(to.clone());
            }
            answer = match self.register(&accounts).await {
                Ok(()) => self.client.call(SEND, &form).await,
                Err(err) => Err(err),
            };
        }
        match answer {
            Ok(v) => match v.pointer("/data/msgid") {
                Some(Value::Number(n)) => Delivered::Applied {
                    made: Some(n.to_string()),
                },
                Some(Value::String(m)) => Delivered::Applied {
                    made: Some(m.clone()),
                },
                _ => Delivered::Applied { made: None },
            },
            // Maybe applied, its answer lost: found in the history, it was.
            Err(err) if err.ambiguous() => match self.find_sent(&sent).await {
                Ok(Some(msgid)) => Delivered::Applied { made: Some(msgid) },
                _ => failed(&err),
            },
            Err(err) => failed(&err),
        }
    }

    /// The message an earlier try sent, among the conversation's last 100 of the past day:
    /// by imshift's tag naming this event when the tag is on, else by sender, type and body.
    async fn find_sent(&self, m: &Sent<'_>) -> Result<Option<String>, NeteaseError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let window = [
            ("begintime", (now - 24 * 3600 * 1000).to_string()),
            ("endtime", (now + 60_000).to_string()),
            ("limit", "100".to_string()),
            ("reverse", "2".to_string()),
        ];
        let v = if m.group {
            let mut form = vec![("tid", m.to.to_string()), ("accid", m.from.to_string())];
            form.extend(window);
            self.client.call("history/queryTeamMsg", &form).await?
        } else {
            let mut form = vec![("from", m.from.to_string()), ("to", m.to.to_string())];
            form.extend(window);
            self.client.call("history/querySessionMsg", &form).await?
        };
        let found = v
            .get("msgs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|h| {
                if s(h, "from") != m.from || h.get("type").and_then(Value::as_i64) != Some(m.ty) {
                    return false;
                }
                let ext = h.get("ext").and_then(Value::as_str);
                if self.guards.origin_tag {
                    return ext
                        .and_then(|x| serde_json::from_str::<Value>(x).ok())
                        .is_some_and(|x| {
                            x.get(super::callbacks::TAG).and_then(Value::as_str) == Some(m.key)
                        });
                }
                let body = match h.get("body") {
                    Some(Value::String(b)) => serde_json::from_str(b).unwrap_or(Value::Null),
                    Some(b) => b.clone(),
                    None => Value::Null,
                };
                body == *m.body
            });
        Ok(found.and_then(|h| match h.get("msgid") {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(x)) => Some(x.clone()),
            _ => None,
        }))
    }
}

/// What a `sendMsg` try sent, to find it again.
struct Sent<'a> {
    key: &'a str,
    from: &'a str,
    to: &'a str,
    group: bool,
    ty: i64,
    body: &'a Value,
}

/// The accounts of a group event's `accounts`, as NetEase ids.
fn accounts_of(d: &Value) -> Vec<String> {
    d.get("accounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(accid)
        .collect()
}

fn done(r: Result<Value, NeteaseError>) -> Delivered {
    match r {
        Ok(_) => Delivered::Applied { made: None },
        Err(e) => failed(&e),
    }
}

impl NeteaseSink {
    /// `group.created`: `team/create` as the owner with the members (≤199; more through
    /// `team/add`). A team already carrying the group's id (an earlier attempt whose answer
    /// was lost) is taken instead of made twice.
    async fn create_team(&self, d: &Value) -> Delivered {
        let group = s(d, "id");
        let owner = accid(s(d, "owner"));
        if group.is_empty() || owner.is_empty() {
            return refused(format!(
                "group.created needs data.id and data.owner (got {d})"
            ));
        }
        let members: Vec<String> = d
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("account").and_then(Value::as_str))
            .map(accid)
            .filter(|a| *a != owner)
            .collect();
        let mut everyone = vec![owner.clone()];
        everyone.extend(members.iter().cloned());
        if let Err(e) = self.register(&everyone).await {
            return failed(&e);
        }
        let tid = match self.team(group, &owner).await {
            Ok(Some(t)) => t.tid,
            Ok(None) => {
                let mut form = match team_form(d) {
                    Ok(f) => f,
                    Err(why) => return refused(why),
                };
                let first: Vec<&String> = members.iter().take(199).collect();
                for (k, v) in form.iter_mut() {
                    if k == "members" {
                        *v = json!(first).to_string();
                    }
                }
                let form: Vec<(&str, String)> =
                    form.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                match self.client.call("team/create", &form).await {
                    Ok(v) => match v.get("tid") {
                        Some(Value::String(t)) => t.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => {
                            return Delivered::failed(
                                ErrorClass::Retryable,
                                None,
                                "NetEase Yunxin team/create answered 200 with no `tid`; the next attempt looks for the team first",
                            )
                        }
                    },
                    Err(e) => return failed(&e),
                }
            }
            Err(e) => return failed(&e),
        };
        self.teams.lock().unwrap_or_else(|p| p.into_inner()).insert(
            group.to_string(),
            Team {
                tid: tid.clone(),
                owner: owner.clone(),
            },
        );
        for chunk in members[members.len().min(199)..].chunks(200) {
            if let Err(e) = self.add_members(&tid, &owner, chunk).await {
                return failed(&e);
            }
        }
        Delivered::Applied { made: Some(tid) }
    }

    /// `team/add` as the owner; members already in (809) are fine.
    async fn add_members(
        &self,
        tid: &str,
        owner: &str,
        accounts: &[String],
    ) -> Result<(), NeteaseError> {
        let form = [
            ("tid", tid.to_string()),
            ("owner", owner.to_string()),
            ("members", json!(accounts).to_string()),
            ("magree", "0".into()),
            ("msg", TEAM_MSG.into()),
        ];
        match self.client.call("team/add", &form).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(809) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The team of a group event, looked for through its actor and then its accounts.
    async fn team_of(&self, e: &SyncEvent) -> Result<Team, Delivered> {
        let group = s(&e.data, "group");
        if group.is_empty() {
            return Err(refused(format!(
                "{} needs data.group (got {})",
                e.kind, e.data
            )));
        }
        let mut via = vec![accid(s(&e.data, "by"))];
        via.extend(accounts_of(&e.data));
        match self.team_via(group, &via).await {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(refused(format!(
                "group {group} has no NetEase Yunxin team known to imshift: none of the teams of {} carries it; import or create the group first, then replay",
                via.iter().filter(|a| !a.is_empty()).cloned().collect::<Vec<_>>().join(", ")
            ))),
            Err(err) => Err(failed(&err)),
        }
    }

    async fn group_event(&self, e: &SyncEvent) -> Delivered {
        let team = match self.team_of(e).await {
            Ok(t) => t,
            Err(d) => return d,
        };
        let base = [("tid", team.tid.clone()), ("owner", team.owner.clone())];
        match e.kind.as_str() {
            "group.updated" => {
                let c = &e.data["changes"];
                let mut form: Vec<(&str, String)> = base.to_vec();
                for (from, to) in [
                    ("name", "tname"),
                    ("intro", "intro"),
                    ("notice", "announcement"),
                    ("avatar", "icon"),
                ] {
                    if let Some(v) = c.get(from).and_then(Value::as_str) {
                        form.push((to, v.to_string()));
                    }
                }
                if form.len() == base.len() {
                    // Nothing NetEase keeps changed (a field it has no place for).
                    return Delivered::Applied { made: None };
                }
                done(self.client.call("team/update", &form).await)
            }
            "group.dismissed" => match self.client.call("team/remove", &base).await {
                Ok(_) => {
                    self.teams
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(s(&e.data, "group"));
                    Delivered::Applied { made: None }
                }
                // Gone already: what the event asked for holds.
                Err(err) if err.code() == Some(803) => Delivered::Applied { made: None },
                Err(err) => failed(&err),
            },
            "group.members_joined" => {
                let accounts = accounts_of(&e.data);
                if let Err(err) = self.register(&accounts).await {
                    return failed(&err);
                }
                for chunk in accounts.chunks(200) {
                    if let Err(err) = self.add_members(&team.tid, &team.owner, chunk).await {
                        return failed(&err);
                    }
                }
                Delivered::Applied { made: None }
            }
            // Leaving and being removed both end as not in the team: the owner kicks.
            "group.members_left" => {
                let accounts: Vec<String> = accounts_of(&e.data)
                    .into_iter()
                    .filter(|a| *a != team.owner)
                    .collect();
                for a in accounts {
                    let form = [
                        ("tid", team.tid.clone()),
                        ("owner", team.owner.clone()),
                        ("member", a),
                    ];
                    match self.client.call("team/kick", &form).await {
                        // Not in the team (804): gone already.
                        Ok(_) => {}
                        Err(err) if err.code() == Some(804) => {}
                        Err(err) => return failed(&err),
                    }
                }
                Delivered::Applied { made: None }
            }
            other => refused(format!("{other} is not a group event")),
        }
    }
}

fn api_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "message.sent" => SEND,
        "group.created" => "team/create",
        "group.updated" => "team/update",
        "group.dismissed" => "team/remove",
        "group.members_joined" => "team/add",
        "group.members_left" => "team/kick",
        _ => return None,
    })
}

#[async_trait::async_trait]
impl SyncSink for NeteaseSink {
    fn pace(&self, event: &SyncEvent) -> Option<(String, f64)> {
        let api = api_of(&event.kind)?;
        let qps = self.client.limits().qps(api).unwrap_or(1) as f64;
        // The import's key for the same category (`NeteaseImport::rate_key`): one pace.
        Some((
            format!("netease:{}:{}", self.client.app_key(), super::category(api)),
            qps,
        ))
    }

    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(match e.kind.as_str() {
                "message.sent" => self.message(e).await,
                "group.created" => self.create_team(&e.data).await,
                "group.updated" | "group.dismissed" | "group.members_joined"
                | "group.members_left" => self.group_event(e).await,
                other => refused(format!(
                    "{other} events are not sent into NetEase Yunxin yet (messages and group changes are); the event is kept here"
                )),
            });
        }
        out
    }
}

/// See [`crate::providers::Provider::send_canary`]: `from` writes `text` to `to` through
/// `sendMsg` with the copy on and no tag, so NetEase reports it like a user's message.
pub async fn send_canary(
    client: NeteaseClient,
    from: &str,
    to: &str,
    text: &str,
) -> Result<String, String> {
    let sink = NeteaseSink::new(client, EchoGuards::default());
    let (from, to) = (accid(from), accid(to));
    sink.register(&[from.clone(), to.clone()])
        .await
        .map_err(|e| e.to_string())?;
    let v = sink
        .client
        .call(
            SEND,
            &[
                ("from", from),
                ("ope", "0".into()),
                ("to", to),
                ("type", "0".into()),
                ("body", json!({ "msg": text }).to_string()),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(match v.pointer("/data/msgid") {
        Some(Value::String(m)) => m.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bodies_become_send_msg_types() {
        assert_eq!(
            send_body(&json!({"type":"text","text":"hi"})).unwrap(),
            (0, json!({"msg":"hi"}))
        );
        let (t, b) =
            send_body(&json!({"type":"image","url":"u","width":3,"height":4,"format":"png"}))
                .unwrap();
        assert_eq!((t, b), (1, json!({"url":"u","w":3,"h":4,"ext":"png"})));
        assert_eq!(
            send_body(&json!({"type":"custom","data":{"k":1}})).unwrap(),
            (100, json!({"k":1}))
        );
        assert!(send_body(&json!({"type":"file"})).is_err());
        assert!(send_body(&json!({"type":"hologram"})).is_err());
    }
}
