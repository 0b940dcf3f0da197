//! Coexistence sync into NetEase Yunxin: the sink that applies the other side's events through
//! the V1 API (reference §2.4, §7.7). The other way, NetEase's message copy (抄送), is read in
//! `callbacks.rs`.
//!
//! Echo guards, stacked: messages go in with `option.route=false`, so NetEase does not copy
//! them back ([`EchoGuards::provider_flags`]); each carries imshift's tag in `ext`
//! ([`EchoGuards::origin_tag`]); and the msgid NetEase answers goes to the id map (the copy's
//! key is that msgid), so a copy that does come back is known as imshift's own.
//!
//! Only `message.sent` is applied so far; other kinds fail permanently, saying so.

use super::callbacks::tagged;
use super::client::NeteaseClient;
use super::import::{accid, SOURCE_KEY};
use super::NeteaseError;
use crate::providers::{Delivered, EchoGuards, ErrorClass, SyncEvent, SyncSink};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The API messages go through.
const SEND: &str = "msg/sendMsg";
/// `ext` takes at most this many characters (§2.4).
const MAX_EXT: usize = 1024;

/// Applies the other side's events to one NetEase app.
pub struct NeteaseSink {
    pub client: NeteaseClient,
    pub guards: EchoGuards,
    /// Old group id → the team id NetEase gave it, as found among the sender's teams.
    tids: Mutex<HashMap<String, String>>,
}

impl NeteaseSink {
    pub fn new(client: NeteaseClient, guards: EchoGuards) -> Self {
        NeteaseSink {
            client,
            guards,
            tids: Mutex::new(HashMap::new()),
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
    /// The team NetEase gave old group `group`: imported teams carry the group's id in their
    /// `custom` (`import.rs`), found among the sender's teams (`team/joinTeams`).
    async fn tid(&self, group: &str, member: &str) -> Result<Option<String>, NeteaseError> {
        if let Some(t) = self
            .tids
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
            (custom.get(SOURCE_KEY).and_then(Value::as_str) == Some(group)).then(|| {
                match t.get("tid") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                }
            })
        });
        let found = found.filter(|t| !t.is_empty());
        if let Some(t) = &found {
            self.tids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(group.to_string(), t.clone());
        }
        Ok(found)
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
            match self.tid(to_raw, &from).await {
                Ok(Some(t)) => t,
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
            Err(err) => failed(&err),
        }
    }
}

#[async_trait::async_trait]
impl SyncSink for NeteaseSink {
    fn pace(&self, event: &SyncEvent) -> Option<(String, f64)> {
        if event.kind != "message.sent" {
            return None;
        }
        let qps = self.client.limits().qps(SEND).unwrap_or(1) as f64;
        // The import's key for the same category (`NeteaseImport::rate_key`): one pace.
        Some((
            format!(
                "netease:{}:{}",
                self.client.app_key(),
                super::category(SEND)
            ),
            qps,
        ))
    }

    async fn deliver(&self, events: &[SyncEvent]) -> Vec<Delivered> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(match e.kind.as_str() {
                "message.sent" => self.message(e).await,
                other => refused(format!(
                    "{other} events are not sent into NetEase Yunxin yet (only message.sent is); the event is kept here"
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
