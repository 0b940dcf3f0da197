//! Coexistence sync into RongCloud: the sink that applies the other side's events through the
//! IM Server API (reference §2.4, §2.5). The other way, RongCloud's message routing
//! (全量消息路由), is read in `callbacks.rs`.
//!
//! Echo guards, stacked: RongCloud does not route what the server API sends unless the app's
//! console says so (§3, §6.6), so imshift's sends do not come back
//! ([`EchoGuards::provider_flags`]: an app-wide switch, not a per-message flag, so the sink has
//! nothing to set for it); each message carries imshift's tag in its content's `extra`
//! ([`EchoGuards::origin_tag`]); and the `messageUID` RongCloud answers goes to the id map
//! (routing keys a message by that `msgUID`), so a message that does come back is known as
//! imshift's own.
//!
//! Applied: `message.sent` (one-to-one and group, as the original sender, `isIncludeSender=1`
//! so the sender's other devices and history have it, §2.5), and the group events RongCloud
//! keeps — membership and name only (§2.4): `group.created` (`group/create` with the old
//! group's id, which RongCloud keeps as it is), `group.members_joined` (`group/join`),
//! `group.members_left` (`group/quit`), `group.dismissed` (`group/dismiss`), `group.updated`
//! (`group/refresh` when the name changed). Other kinds fail permanently, saying so, and wait
//! as dead letters.
//!
//! Publish does not absorb a repeat (§6.5): after a try whose outcome is unknown, and before
//! any retry, the sink looks for the message in the v3 history (§2.7) first.

use super::callbacks::{tag_of, tagged, AMR_DATA_URL, CUSTOM_OBJECT_NAME};
use super::client::RongcloudClient;
use super::errors::RongcloudError;
use super::read_back::{content_of, history_page, msg_time};
use super::rules::{check_group_id, check_user_id};
use crate::providers::{Delivered, EchoGuards, ErrorClass, SyncEvent, SyncSink};
use serde_json::{json, Map, Value};

pub const PRIVATE: &str = "message/private/publish";
pub const GROUP: &str = "message/group/publish";

/// The largest `content` (§2.5: 128 KB).
const CONTENT_MAX: usize = 128 * 1024;
/// How far back a message an earlier try may have sent is looked for (a day, as the
/// NetEase sink does), and in how many pages at most.
const LOOK_BACK_MS: i64 = 24 * 3600 * 1000;
const LOOK_PAGES: usize = 10;
/// Members per `group/create`, `group/join` or `group/quit` call (§2.4).
const MEMBERS_PER_CALL: usize = 1000;

/// Applies the other side's events to one RongCloud app.
pub struct RongcloudSink {
    pub client: RongcloudClient,
    pub guards: EchoGuards,
}

impl RongcloudSink {
    pub fn new(client: RongcloudClient, guards: EchoGuards) -> Self {
        RongcloudSink { client, guards }
    }
}

fn refused(message: impl Into<String>) -> Delivered {
    Delivered::failed(ErrorClass::Permanent, None, message)
}

/// A RongCloud error as a delivery failure: its code when RongCloud answered one, in words.
fn failed(e: &RongcloudError) -> Delivered {
    let code = match e {
        RongcloudError::Api { code, .. } => code.to_string(),
        RongcloudError::Transport { .. } => return Delivered::unreachable(e.to_string()),
        RongcloudError::Http { status, .. } => format!("http_{status}"),
        RongcloudError::Blocked { .. } => "blocked".into(),
        RongcloudError::Redirect { .. } => "redirect".into(),
        RongcloudError::TooLarge { .. } | RongcloudError::Decode { .. } => {
            "unreadable_answer".into()
        }
        RongcloudError::Config(_) => "config".into(),
        RongcloudError::Invalid { .. } => "invalid".into(),
    };
    Delivered::failed(e.class(), Some(code), e.to_string())
}

fn s<'a>(d: &'a Value, k: &str) -> &'a str {
    d.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Milliseconds → whole seconds, rounded up (`duration` is seconds, §2.6).
fn seconds(d: &Value) -> i64 {
    d.as_i64().map_or(0, |ms| (ms.max(0) + 999) / 1000)
}

/// A canonical body as an `objectName` and its content (§2.6), `extra` added when given.
/// Media go by their URL (RongCloud has no upload API); the base64 thumbnails are left
/// empty: imshift never fetches media. A face has no RongCloud type and goes as a custom
/// message carrying it whole.
pub fn content(body: &Value, extra: Option<&str>) -> Result<(&'static str, Value), String> {
    let ty = body
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the message body has no `type`")?;
    let f = |k: &str| body.get(k).filter(|v| !v.is_null());
    let url = || {
        f("url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(format!(
                "a {ty} message needs its file's `url` to go into RongCloud (it has no upload API)"
            ))
    };
    let mut c = Map::new();
    let name = match ty {
        "text" => {
            c.insert("content".into(), f("text").cloned().unwrap_or(json!("")));
            "RC:TxtMsg"
        }
        "image" if f("format").and_then(Value::as_str) == Some("gif") => {
            c.insert("remoteUrl".into(), url()?.into());
            for (from, to) in [
                ("size", "gifDataSize"),
                ("width", "width"),
                ("height", "height"),
            ] {
                c.insert(to.into(), f(from).cloned().unwrap_or(json!(0)));
            }
            "RC:GIFMsg"
        }
        "image" => {
            c.insert("content".into(), "".into());
            c.insert("imageUri".into(), url()?.into());
            "RC:ImgMsg"
        }
        "audio" => {
            let u = url()?;
            let duration = seconds(f("duration_ms").unwrap_or(&Value::Null));
            c.insert("duration".into(), duration.into());
            // An AMR voice that came from RongCloud inline goes back the same way.
            if let Some(b64) = u.strip_prefix(AMR_DATA_URL) {
                c.insert("content".into(), b64.into());
                "RC:VcMsg"
            } else {
                c.insert("remoteUrl".into(), u.into());
                "RC:HQVCMsg"
            }
        }
        "video" => {
            c.insert("sightUrl".into(), url()?.into());
            c.insert("content".into(), "".into());
            c.insert(
                "duration".into(),
                seconds(f("duration_ms").unwrap_or(&Value::Null)).into(),
            );
            c.insert("size".into(), f("size").cloned().unwrap_or(json!(0)));
            c.insert("name".into(), f("name").cloned().unwrap_or(json!("")));
            "RC:SightMsg"
        }
        "file" => {
            c.insert("name".into(), f("name").cloned().unwrap_or(json!("file")));
            c.insert("size".into(), f("size").cloned().unwrap_or(json!(0)));
            c.insert("type".into(), f("format").cloned().unwrap_or(json!("")));
            c.insert("fileUrl".into(), url()?.into());
            "RC:FileMsg"
        }
        "location" => {
            let (Some(lat), Some(lng)) = (
                f("lat").and_then(Value::as_f64),
                f("lng").and_then(Value::as_f64),
            ) else {
                return Err("a location message needs numeric `lat` and `lng`".into());
            };
            c.insert("content".into(), "".into());
            c.insert("latitude".into(), lat.into());
            c.insert("longitude".into(), lng.into());
            c.insert("poi".into(), f("title").cloned().unwrap_or(json!("")));
            "RC:LBSMsg"
        }
        "custom" => {
            c.insert("data".into(), f("data").cloned().unwrap_or(Value::Null));
            if let Some(d) = f("desc") {
                c.insert("desc".into(), d.clone());
            }
            CUSTOM_OBJECT_NAME
        }
        "face" => {
            c.insert("data".into(), body.clone());
            c.insert("desc".into(), "face".into());
            CUSTOM_OBJECT_NAME
        }
        other => return Err(format!("a `{other}` message body has no RongCloud type")),
    };
    if let Some(x) = extra {
        c.insert("extra".into(), x.into());
    }
    Ok((name, Value::Object(c)))
}

/// What a publish try sent, to find it again.
struct Sent<'a> {
    key: &'a str,
    from: &'a str,
    to: &'a str,
    group: bool,
    object_name: &'a str,
    content: &'a Value,
}

/// The `messageUID` of a publish answer: `messageUID`, else the first of `messageUIDs`
/// (§2.5: older answers carry neither).
fn uid_of(v: &Value) -> Option<String> {
    v.get("messageUID")
        .or_else(|| v.pointer("/messageUIDs/0/messageUID"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

impl RongcloudSink {
    /// Registers, with `user/getToken`, the accounts RongCloud does not know (`user/info`
    /// refuses them): an account the old system made after the import. The token is dropped
    /// (`RongcloudClient::register`); the push name is the id until the app server sets one.
    /// An account RongCloud knows is left alone (getToken would overwrite its name, §2.1).
    async fn register_missing(&self, accounts: &[String]) -> Result<(), RongcloudError> {
        for a in accounts {
            match self.client.user_info(a).await {
                Ok(_) => {}
                Err(e) if e.class() == ErrorClass::Permanent => {
                    self.client.register(a, a, None).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The group's members, `None` when RongCloud has no such group (it refuses the query;
    /// its code for that is UNCONFIRMED).
    async fn members(&self, group: &str) -> Result<Option<Vec<String>>, RongcloudError> {
        match self.client.group_members(group).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.class() == ErrorClass::Permanent => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn message(&self, e: &SyncEvent) -> Delivered {
        let d = &e.data;
        let (from, to) = (s(d, "from"), s(d, "to"));
        if from.is_empty() || to.is_empty() {
            return refused(format!(
                "the message has no `from` or `to` (got {})",
                d.get("id").cloned().unwrap_or(Value::Null)
            ));
        }
        let group = s(d, "conv") == "group";
        if let Err(why) = check_user_id(from) {
            return refused(format!("sender {from:?} is not a RongCloud userId: {why}"));
        }
        let to_ok = if group {
            check_group_id(to)
        } else {
            check_user_id(to)
        };
        if let Err(why) = to_ok {
            return refused(format!(
                "{} {to:?} is not a RongCloud {}: {why}",
                if group { "group" } else { "receiver" },
                if group { "groupId" } else { "userId" }
            ));
        }
        let app_extra = d.get("ext").and_then(Value::as_str);
        let extra = if self.guards.origin_tag {
            Some(tagged(app_extra, &e.key))
        } else {
            app_extra.map(str::to_string)
        };
        let (object_name, content) =
            match content(d.get("body").unwrap_or(&Value::Null), extra.as_deref()) {
                Ok(x) => x,
                Err(why) => return refused(why),
            };
        let text = content.to_string();
        if text.len() > CONTENT_MAX {
            return refused(format!(
                "the message's content is {} bytes; RongCloud takes at most {CONTENT_MAX}",
                text.len()
            ));
        }
        let api = if group { GROUP } else { PRIVATE };
        let form: Vec<(&str, String)> = vec![
            ("fromUserId", from.to_string()),
            (if group { "toGroupId" } else { "toUserId" }, to.to_string()),
            ("objectName", object_name.to_string()),
            ("content", text),
            // In the sender's history and on their other devices too (§2.5): it is their
            // message, sent from the old app.
            ("isIncludeSender", "1".to_string()),
        ];
        let sent = Sent {
            key: &e.key,
            from,
            to,
            group,
            object_name,
            content: &content,
        };
        if e.attempts > 0 {
            match self.find_sent(&sent).await {
                Ok(Some(uid)) => return Delivered::Applied { made: Some(uid) },
                Ok(None) => {}
                Err(err) => return failed(&err),
            }
        }
        let mut answer = self.client.call(api, &form).await;
        if let Err(err) = &answer {
            if err.class() == ErrorClass::Permanent && !err.ambiguous() {
                if group {
                    match self.members(to).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return refused(format!(
                                "group {to} does not exist in RongCloud: import the group (or create it on the old side, which sync relays), then replay this message ({err})"
                            ))
                        }
                        Err(e2) => return failed(&e2),
                    }
                }
                let mut accounts = vec![from.to_string()];
                if !group {
                    accounts.push(to.to_string());
                }
                // An account RongCloud does not have yet: registered, then sent once more. Sent
                // again even when none was missing here: another event may have registered it
                // meanwhile, and a refused call was not applied, so a repeat cannot double it.
                match self.register_missing(&accounts).await {
                    Ok(()) => answer = self.client.call(api, &form).await,
                    Err(e2) => return failed(&e2),
                }
            }
        }
        match answer {
            Ok(v) => Delivered::Applied { made: uid_of(&v) },
            // Maybe applied, its answer lost: found in the history, it was.
            Err(err) if err.ambiguous() => match self.find_sent(&sent).await {
                Ok(Some(uid)) => Delivered::Applied { made: Some(uid) },
                _ => failed(&err),
            },
            Err(err) => failed(&err),
        }
    }

    /// The message an earlier try sent, among the conversation's messages of the past day,
    /// newest first: by imshift's tag naming this event when the tag is on, else by sender,
    /// objectName and content. A one-to-one message is read in the receiver's history
    /// (always theirs), a group one in the sender's (`isIncludeSender=1`).
    async fn find_sent(&self, m: &Sent<'_>) -> Result<Option<String>, RongcloudError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let (user, target) = if m.group {
            (m.from, m.to)
        } else {
            (m.to, m.from)
        };
        let oldest = now - LOOK_BACK_MS;
        let mut start = now + 60_000;
        let mut include_start = true;
        for _ in 0..LOOK_PAGES {
            let page = history_page(
                &self.client,
                m.group,
                user,
                target,
                (start, oldest),
                include_start,
            )
            .await?;
            let found = page.iter().find(|h| {
                if h.get("fromUserId").and_then(Value::as_str) != Some(m.from)
                    || h.get("objectName").and_then(Value::as_str) != Some(m.object_name)
                {
                    return false;
                }
                let c = content_of(h);
                if self.guards.origin_tag {
                    tag_of(&c).as_deref() == Some(m.key)
                } else {
                    c == *m.content
                }
            });
            if let Some(h) = found {
                return Ok(h
                    .get("messageUID")
                    .and_then(Value::as_str)
                    .map(str::to_string));
            }
            if page.len() < super::read_back::PAGE_SIZE {
                break;
            }
            // On from the oldest of this page (a message sharing its millisecond may be read
            // twice, never skipped).
            match page.iter().filter_map(msg_time).min() {
                Some(t) if t < start => {
                    start = t;
                    include_start = true;
                }
                _ => break,
            }
        }
        Ok(None)
    }
}

fn accounts_of(d: &Value) -> Vec<String> {
    d.get("accounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The first account of `accounts` that is not a RongCloud userId, said.
fn bad_account(accounts: &[String]) -> Option<String> {
    accounts.iter().find_map(|a| {
        check_user_id(a)
            .err()
            .map(|why| format!("account {a:?} is not a RongCloud userId: {why}"))
    })
}

impl RongcloudSink {
    /// A membership call (`group/create`, `group/join`, `group/quit`) in chunks of 1000;
    /// after a refusal the accounts RongCloud lacks are registered and the chunk sent again
    /// once. `name`: sent with the first chunk only (create needs it, §2.4).
    async fn membership(
        &self,
        api: &str,
        group: &str,
        name: Option<&str>,
        accounts: &[String],
    ) -> Result<(), RongcloudError> {
        for (i, chunk) in accounts.chunks(MEMBERS_PER_CALL).enumerate() {
            // Only the first chunk creates; the next ones join.
            let api = if i > 0 && api == "group/create" {
                "group/join"
            } else {
                api
            };
            let mut form: Vec<(&str, String)> =
                chunk.iter().map(|m| ("userId", m.clone())).collect();
            form.push(("groupId", group.to_string()));
            if let Some(n) = name.filter(|_| i == 0) {
                form.push(("groupName", n.to_string()));
            }
            match self.client.call(api, &form).await {
                Ok(_) => {}
                Err(e)
                    if api != "group/quit"
                        && e.class() == ErrorClass::Permanent
                        && !e.ambiguous() =>
                {
                    // As for messages: registered, then sent once more (a refusal was not
                    // applied).
                    self.register_missing(chunk).await?;
                    self.client.call(api, &form).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `group.created`: `group/create` with the owner and members, under the old group's id
    /// (RongCloud keeps the app's ids, §2.4). A retry looks first: a group already holding
    /// its owner (an earlier try whose answer was lost) only takes the members again, with
    /// `group/join`, which is a set.
    async fn create_group(&self, e: &SyncEvent) -> Delivered {
        let d = &e.data;
        let (group, owner) = (s(d, "id"), s(d, "owner"));
        if group.is_empty() || owner.is_empty() {
            return refused(format!(
                "group.created needs data.id and data.owner (got {d})"
            ));
        }
        if let Err(why) = check_group_id(group) {
            return refused(format!("group {group:?} is not a RongCloud groupId: {why}"));
        }
        let name = Some(s(d, "name"))
            .filter(|n| !n.is_empty())
            .unwrap_or(group);
        let n = name.chars().count();
        if n > 64 {
            return refused(format!(
                "group {group}'s name is {n} characters; RongCloud takes at most 64"
            ));
        }
        let mut everyone = vec![owner.to_string()];
        for m in d
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("account").and_then(Value::as_str))
        {
            if !everyone.iter().any(|a| a == m) {
                everyone.push(m.to_string());
            }
        }
        if let Some(why) = bad_account(&everyone) {
            return refused(why);
        }
        let mut api = "group/create";
        if e.attempts > 0 {
            match self.members(group).await {
                Ok(Some(m)) if m.iter().any(|a| a == owner) => api = "group/join",
                Ok(_) => {}
                Err(err) => return failed(&err),
            }
        }
        match self.membership(api, group, Some(name), &everyone).await {
            // RongCloud keeps the old id: nothing to map back.
            Ok(()) => Delivered::Applied { made: None },
            Err(err) => failed(&err),
        }
    }

    /// A group event on a group RongCloud must have: refused in words when it has none.
    async fn existing(&self, e: &SyncEvent) -> Result<(String, Vec<String>), Delivered> {
        let group = s(&e.data, "group");
        if group.is_empty() {
            return Err(refused(format!(
                "{} needs data.group (got {})",
                e.kind, e.data
            )));
        }
        match self.members(group).await {
            Ok(Some(m)) => Ok((group.to_string(), m)),
            Ok(None) => Err(refused(format!(
                "group {group} does not exist in RongCloud: import the group (or create it on the old side, which sync relays), then replay"
            ))),
            Err(err) => Err(failed(&err)),
        }
    }

    async fn group_event(&self, e: &SyncEvent) -> Delivered {
        let d = &e.data;
        match e.kind.as_str() {
            "group.members_joined" => {
                let accounts = accounts_of(d);
                if let Some(why) = bad_account(&accounts) {
                    return refused(why);
                }
                // Looked for first: `group/join` would make a group RongCloud lacks
                // (UNCONFIRMED), with only these members.
                let group = match self.existing(e).await {
                    Ok((g, _)) => g,
                    Err(d) => return d,
                };
                if accounts.is_empty() {
                    return Delivered::Applied { made: None };
                }
                match self.membership("group/join", &group, None, &accounts).await {
                    Ok(()) => Delivered::Applied { made: None },
                    Err(err) => failed(&err),
                }
            }
            // Leaving and being removed both end as not in the group.
            "group.members_left" => {
                let (group, members) = match self.existing(e).await {
                    Ok(x) => x,
                    Err(d) => return d,
                };
                let leaving: Vec<String> = accounts_of(d)
                    .into_iter()
                    .filter(|a| members.contains(a))
                    .collect();
                if leaving.is_empty() {
                    return Delivered::Applied { made: None };
                }
                match self.membership("group/quit", &group, None, &leaving).await {
                    Ok(()) => Delivered::Applied { made: None },
                    Err(err) => failed(&err),
                }
            }
            "group.dismissed" => {
                let group = s(d, "group");
                if group.is_empty() {
                    return refused(format!("group.dismissed needs data.group (got {d})"));
                }
                // The operator: who dismissed it, else any member (classic groups have no
                // owner, §2.4).
                let by = match Some(s(d, "by")).filter(|b| !b.is_empty()) {
                    Some(b) => b.to_string(),
                    None => match self.members(group).await {
                        Ok(Some(m)) if !m.is_empty() => m[0].clone(),
                        Ok(_) => return Delivered::Applied { made: None },
                        Err(err) => return failed(&err),
                    },
                };
                let form = [("userId", by), ("groupId", group.to_string())];
                match self.client.call("group/dismiss", &form).await {
                    Ok(_) => Delivered::Applied { made: None },
                    // 1015: no such group, so what the event asked for holds.
                    Err(err) if err.class() == ErrorClass::Ok => Delivered::Applied { made: None },
                    Err(err) => failed(&err),
                }
            }
            "group.updated" => {
                let Some(name) = d.pointer("/changes/name").and_then(Value::as_str) else {
                    // Nothing RongCloud keeps changed (it keeps a group's name only).
                    return Delivered::Applied { made: None };
                };
                let group = s(d, "group");
                let n = name.chars().count();
                if n > 64 {
                    return refused(format!(
                        "group {group}'s new name is {n} characters; RongCloud takes at most 64"
                    ));
                }
                let group = match self.existing(e).await {
                    Ok((g, _)) => g,
                    Err(d) => return d,
                };
                let form = [("groupId", group), ("groupName", name.to_string())];
                match self.client.call("group/refresh", &form).await {
                    Ok(_) => Delivered::Applied { made: None },
                    Err(err) => failed(&err),
                }
            }
            other => refused(format!("{other} is not a group event")),
        }
    }
}

fn api_of(e: &SyncEvent) -> Option<&'static str> {
    Some(match e.kind.as_str() {
        "message.sent" if s(&e.data, "conv") == "group" => GROUP,
        "message.sent" => PRIVATE,
        "group.created" => "group/create",
        "group.updated" => "group/refresh",
        "group.dismissed" => "group/dismiss",
        "group.members_joined" => "group/join",
        "group.members_left" => "group/quit",
        _ => return None,
    })
}

#[async_trait::async_trait]
impl SyncSink for RongcloudSink {
    fn pace(&self, event: &SyncEvent) -> Option<(String, f64)> {
        let api = api_of(event)?;
        let qps = self
            .client
            .limits()
            .qps(api)
            // Every API sync calls has a row in the quota table (`super::LIMITS`).
            .unwrap_or(90);
        // The import's key (`RongcloudImport::rate_key`): one pace per App Key and API.
        Some((
            format!("rongcloud:{}:{api}", self.client.app_key()),
            qps as f64,
        ))
    }

    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(match e.kind.as_str() {
                "message.sent" => self.message(e).await,
                "group.created" => self.create_group(e).await,
                "group.updated" | "group.dismissed" | "group.members_joined"
                | "group.members_left" => self.group_event(e).await,
                other => refused(format!(
                    "{other} events are not sent into RongCloud (messages and group membership and names are): RongCloud's server API has no place for them or routing says nothing of them; the event is kept here"
                )),
            });
        }
        out
    }
}

/// Why imshift sends no canary into a RongCloud app that is not a sandbox of this console.
pub const NO_CANARY: &str = "RongCloud routes to imshift only what app users send: a message sent through its server API is not routed while the app keeps \"route server API messages\" off, which is what keeps imshift's own sends from coming back. So imshift cannot send a canary as a RongCloud user; send a message from the new app to see the round trip (a sandbox of this console sends its canary as a user)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bodies_become_contents_per_object_name() {
        assert_eq!(
            content(&json!({"type":"text","text":"hi"}), Some("x")).unwrap(),
            ("RC:TxtMsg", json!({"content":"hi","extra":"x"}))
        );
        assert_eq!(
            content(&json!({"type":"image","url":"https://x/a.png"}), None).unwrap(),
            (
                "RC:ImgMsg",
                json!({"content":"","imageUri":"https://x/a.png"})
            )
        );
        assert_eq!(
            content(&json!({"type":"image","url":"https://x/a.gif","format":"gif","size":3,"width":1,"height":2}), None)
                .unwrap(),
            ("RC:GIFMsg", json!({"remoteUrl":"https://x/a.gif","gifDataSize":3,"width":1,"height":2}))
        );
        assert_eq!(
            content(
                &json!({"type":"audio","url":"https://x/a.aac","duration_ms":1500}),
                None
            )
            .unwrap(),
            (
                "RC:HQVCMsg",
                json!({"remoteUrl":"https://x/a.aac","duration":2})
            )
        );
        assert_eq!(
            content(
                &json!({"type":"audio","url":"data:audio/amr;base64,QU1S","duration_ms":1000}),
                None
            )
            .unwrap(),
            ("RC:VcMsg", json!({"content":"QU1S","duration":1}))
        );
        let (n, c) = content(
            &json!({"type":"file","url":"https://x/a.pdf","name":"a.pdf","size":9,"format":"pdf"}),
            None,
        )
        .unwrap();
        assert_eq!(n, "RC:FileMsg");
        assert_eq!(c["type"], "pdf");
        let (n, c) = content(
            &json!({"type":"location","lat":1.5,"lng":2.5,"title":"t"}),
            None,
        )
        .unwrap();
        assert_eq!(
            (n, c["latitude"].as_f64(), c["poi"].as_str()),
            ("RC:LBSMsg", Some(1.5), Some("t"))
        );
        assert_eq!(
            content(&json!({"type":"custom","data":{"k":1},"desc":"d"}), None).unwrap(),
            (CUSTOM_OBJECT_NAME, json!({"data":{"k":1},"desc":"d"}))
        );
        assert_eq!(
            content(&json!({"type":"face","index":3}), None).unwrap().0,
            CUSTOM_OBJECT_NAME
        );
        assert!(content(&json!({"type":"video"}), None)
            .unwrap_err()
            .contains("url"));
        assert!(content(&json!({"type":"hologram"}), None).is_err());
    }

    #[test]
    fn what_goes_in_comes_back_as_the_same_canonical_body() {
        for body in [
            json!({"type":"text","text":"hi"}),
            json!({"type":"image","url":"https://x/a.png"}),
            json!({"type":"audio","url":"https://x/a.aac","duration_ms":2000}),
            json!({"type":"file","url":"https://x/a.pdf","name":"a.pdf","size":9,"format":"pdf"}),
            json!({"type":"location","lat":1.5,"lng":2.5,"title":"t"}),
            json!({"type":"custom","data":{"k":1},"desc":"d"}),
        ] {
            let (name, c) = content(&body, Some(&tagged(None, "k"))).unwrap();
            let (back, extra) = super::super::callbacks::canonical_body(name, &c.to_string())
                .unwrap()
                .unwrap();
            assert_eq!(back, body, "{name}");
            assert_eq!(tag_of(&json!({"extra": extra})).as_deref(), Some("k"));
        }
    }

    #[test]
    fn publish_answers_give_their_uid() {
        assert_eq!(
            uid_of(&json!({"code":200,"messageUID":"A-B"})).as_deref(),
            Some("A-B")
        );
        assert_eq!(
            uid_of(&json!({"code":200,"messageUIDs":[{"userId":"b","messageUID":"C-D"}]}))
                .as_deref(),
            Some("C-D")
        );
        assert_eq!(uid_of(&json!({"code":200})), None);
    }
}
