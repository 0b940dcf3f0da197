//! Reading NetEase Yunxin's history back (reference §2.6), to fill the gaps its message copy
//! (抄送) left while every console process was down (`crate::sync::gaps`).
//!
//! Each history message is rewritten as the copy NetEase would have sent for it (§3.3) and
//! read by [`callbacks::events`], so it becomes the very event its copy makes, keyed by its
//! `msgidServer`: a message whose copy did arrive is a duplicate, and one imshift sent keeps
//! its origin tag (an echo), as through the door.
//!
//! The history APIs have no cursor: a page is the window read oldest first from a send time,
//! and the next page starts at the last message's send time, leaving out the msgids already
//! read at that millisecond (several messages can share one).

use super::callbacks;
use super::client::{json_list, NeteaseClient};
use super::errors::NeteaseError;
use crate::providers::{InboundEvent, ReadBack, ReadPage};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const SESSION_API: &str = "history/querySessionMsg";
const TEAM_API: &str = "history/queryTeamMsg";
/// The most messages one history call answers (§2.6).
const MAX_LIMIT: usize = 100;
/// Tries of one call that failed for a passing reason (a 502, a throttle): the gap filler
/// reads each conversation once, so a blip would otherwise cost the whole conversation.
const TRIES: u32 = 3;

/// Reads one app's one-to-one and team history back.
pub struct NeteaseReader {
    client: NeteaseClient,
    /// A member of each team read, by tid: `queryTeamMsg` asks through one (found once).
    members: Mutex<HashMap<String, String>>,
}

impl NeteaseReader {
    pub fn new(client: NeteaseClient) -> Self {
        NeteaseReader {
            client,
            members: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, api: &str) -> usize {
        self.client
            .limits()
            .batch(api)
            .unwrap_or(MAX_LIMIT)
            .clamp(1, MAX_LIMIT)
    }

    /// One call, tried again after a pause when it failed for a passing reason.
    async fn call(&self, api: &str, form: &[(&str, String)]) -> Result<Value, NeteaseError> {
        let mut pause = Duration::from_millis(500);
        let mut tries = 1;
        loop {
            match self.client.call(api, form).await {
                Err(e) if tries < TRIES && e.class().is_retryable() => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tries += 1;
                }
                r => return r,
            }
        }
    }

    /// An account in team `tid` (its owner, else a manager, else a member): `team/query` with
    /// members (§2.3).
    async fn member(&self, tid: &str) -> Result<String, String> {
        if let Some(m) = self.lock().get(tid) {
            return Ok(m.clone());
        }
        let v = self
            .call(
                "team/query",
                &[("tids", json_list(&[tid])), ("ope", "1".into())],
            )
            .await
            .map_err(|e| format!("finding a member of team {tid} to read its history: {e}"))?;
        let info = v
            .get("tinfos")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .ok_or_else(|| {
                format!("team {tid} is not in NetEase Yunxin (dismissed?): its history cannot be read back")
            })?;
        let first = |k: &str| match info.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Array(l)) => l.iter().find_map(|a| a.as_str().map(str::to_string)),
            _ => None,
        };
        let member = first("owner")
            .or_else(|| first("admins"))
            .or_else(|| first("members"))
            .ok_or_else(|| {
                format!("team {tid} has no member NetEase Yunxin names, so its history cannot be read back")
            })?;
        self.lock().insert(tid.to_string(), member.clone());
        Ok(member)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A conversation whose history NetEase keeps.
#[derive(Clone, Copy)]
enum Chat<'a> {
    /// A team, by tid.
    Team(&'a str),
    /// A one-to-one chat, by its two accounts.
    Pair(&'a str, &'a str),
}

impl<'a> Chat<'a> {
    /// `group:<tid>` or `c2c:<a>:<b>` (`crate::sync::conversation`); `None`: a group id that
    /// is not a tid.
    fn of(conv: &'a str) -> Result<Option<Chat<'a>>, String> {
        if let Some(tid) = conv.strip_prefix("group:") {
            let is_tid = !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_digit());
            return Ok(is_tid.then_some(Chat::Team(tid)));
        }
        match conv.strip_prefix("c2c:").and_then(|p| p.split_once(':')) {
            Some((a, b)) => Ok(Some(Chat::Pair(a, b))),
            None => Err(format!(
                "{conv} is not a conversation NetEase Yunxin keeps history of (one-to-one or team)"
            )),
        }
    }

    /// The copy's `to` for message `m`: the tid, or the receiver (history names it; else the
    /// pair's account that did not send it).
    fn to(self, m: &Map<String, Value>) -> String {
        match self {
            Chat::Team(tid) => tid.to_string(),
            Chat::Pair(a, b) => text(m.get("to")).unwrap_or_else(|| {
                let other = if text(m.get("from")).as_deref() == Some(a) {
                    b
                } else {
                    a
                };
                other.to_string()
            }),
        }
    }
}

/// Where a page starts: a send time (ms) and the msgids already read at that millisecond.
#[derive(Debug, Clone, Default, PartialEq)]
struct Cursor {
    at: i64,
    seen: Vec<String>,
    /// A full page all at `at`: the query cannot get past that millisecond.
    stuck: bool,
}

impl Cursor {
    /// `AT:ID,ID…`, or `AT!` when stuck.
    fn token(&self) -> String {
        if self.stuck {
            format!("{}!", self.at)
        } else {
            format!("{}:{}", self.at, self.seen.join(","))
        }
    }

    fn parse(token: &str) -> Result<Cursor, String> {
        let bad = || format!("the read-back page {token:?} is not one NetEase's reader made");
        if let Some(at) = token.strip_suffix('!') {
            return Ok(Cursor {
                at: at.parse().map_err(|_| bad())?,
                seen: vec![],
                stuck: true,
            });
        }
        let (at, seen) = token.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            at: at.parse().map_err(|_| bad())?,
            seen: seen
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            stuck: false,
        })
    }
}

/// A number or a string of one, as text (history sends ids and times as numbers, copies as
/// strings).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A history message with its send time (ms) and msgid.
type Read = (i64, String, Map<String, Value>);

/// The messages of one answer (oldest first) to a query from `from` that were not read yet,
/// and where the next page starts (`None`: the window is read). `full`: the answer holds as many as were asked for, so more may follow.
fn step(answer: Vec<Read>, from: &Cursor, full: bool) -> (Vec<Read>, Option<Cursor>) {
    let last = answer.iter().map(|(at, _, _)| *at).max();
    let fresh: Vec<_> = answer
        .into_iter()
        .filter(|(at, id, _)| !(*at == from.at && from.seen.contains(id)))
        .collect();
    let next = match last {
        _ if !full => None,
        None => None,
        // Every message asked for is at the page's first millisecond: the next query, from the
        // same time, would answer the same ones.
        Some(last) if last == from.at => Some(Cursor {
            at: last,
            seen: vec![],
            stuck: true,
        }),
        Some(last) => Some(Cursor {
            at: last,
            seen: fresh
                .iter()
                .filter(|(at, _, _)| *at == last)
                .map(|(_, id, _)| id.clone())
                .collect(),
            stuck: false,
        }),
    };
    (fresh, next)
}

/// History's `type` → the copy's `msgType` (§2.6, §3.3); `None`: a type with no copy name
/// imshift knows (robots), which the door would not relay either.
fn msg_type_name(t: i64) -> Option<&'static str> {
    Some(match t {
        0 => "TEXT",
        1 => "PICTURE",
        2 => "AUDIO",
        3 => "VIDEO",
        4 => "LOCATION",
        5 => "NOTIFICATION",
        6 => "FILE",
        10 => "TIPS",
        t if t >= 100 => "CUSTOM",
        _ => return None,
    })
}

/// History's `fromclienttype` → the copy's `fromClientType` (§2.6, §3.3); a number NetEase
/// added later goes as the number, which reads the same (no known client).
fn client_name(t: &Value) -> Option<String> {
    let n = match t {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    Some(match n {
        Some(1) => "AOS".into(),
        Some(2) => "IOS".into(),
        Some(4) => "PC".into(),
        Some(8) => "WINPHONE".into(),
        Some(16) => "WEB".into(),
        Some(32) => "REST".into(),
        Some(64) => "MAC".into(),
        _ => text(Some(t))?,
    })
}

/// A text's text: history gives the `sendMsg` body `{"msg":…}` as an object or as JSON text
/// (UNCONFIRMED which); a copy carries the text itself (§3.3).
fn text_of_body(body: &Value) -> Option<String> {
    let msg = |o: &Map<String, Value>| o.get("msg").and_then(Value::as_str).map(str::to_string);
    match body {
        Value::Object(o) => msg(o),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => msg(&o),
            _ => Some(s.clone()),
        },
        _ => None,
    }
}

/// The eventType 1 copy NetEase sends for history message `m` (§3.3: every value a string),
/// `conv_type` PERSON or TEAM, `to` the peer or the tid. `None`: a type no copy is relayed of.
fn copy_of(m: &Map<String, Value>, conv_type: &str, to: &str) -> Option<Value> {
    let ty = m.get("type").and_then(|t| match t {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })?;
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            o.insert(k.into(), Value::String(v));
        }
    };
    put("eventType", Some("1".into()));
    put("convType", Some(conv_type.into()));
    put("msgType", Some(msg_type_name(ty)?.into()));
    put("fromAccount", text(m.get("from")));
    put("to", Some(to.into()));
    put("msgTimestamp", text(m.get("sendtime")));
    put("msgidServer", text(m.get("msgid")));
    put("msgidClient", text(m.get("msgidclient")));
    put(
        "fromClientType",
        m.get("fromclienttype").and_then(client_name),
    );
    // A text's text in `body`; any other type's JSON in `attach` (as the copy carries them).
    match m.get("body") {
        Some(b) if ty == 0 => put("body", text_of_body(b)),
        Some(Value::String(s)) => put("attach", Some(s.clone())),
        Some(b) if !b.is_null() => put("attach", Some(b.to_string())),
        _ => {}
    }
    put(
        "ext",
        match m.get("ext") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) if !v.is_null() => Some(v.to_string()),
            _ => None,
        },
    );
    Some(Value::Object(o))
}

/// The events of one history message, exactly as its copy's. A message the door would refuse
/// is logged and left out, as its copy would have been; the others still go on.
fn events_of(m: &Map<String, Value>, conv: &str, conv_type: &str, to: &str) -> Vec<InboundEvent> {
    let Some(copy) = copy_of(m, conv_type, to) else {
        return vec![];
    };
    match callbacks::events(copy.to_string().as_bytes()) {
        Ok(events) => events,
        Err(why) => {
            tracing::warn!(conv, reason = %why, "NetEase read-back: a history message cannot be relayed; left out");
            vec![]
        }
    }
}

#[async_trait::async_trait]
impl ReadBack for NeteaseReader {
    /// The history category's pace, the key imports and the sink use (`netease:APP:category`).
    fn pace(&self, conv: &str) -> Option<(String, f64)> {
        let api = if conv.starts_with("group:") {
            TEAM_API
        } else {
            SESSION_API
        };
        let qps = self.client.limits().qps(api).unwrap_or(1) as f64;
        Some((
            format!("netease:{}:{}", self.client.app_key(), super::category(api)),
            qps,
        ))
    }

    async fn read(
        &self,
        conv: &str,
        from_ms: i64,
        to_ms: i64,
        page: Option<String>,
    ) -> Result<ReadPage, String> {
        let done = || ReadPage {
            events: vec![],
            next: None,
        };
        let cursor = match page {
            None => Cursor {
                at: from_ms,
                ..Cursor::default()
            },
            Some(p) => Cursor::parse(&p)?,
        };
        let chat = match Chat::of(conv)? {
            Some(chat) => chat,
            // The other side's id of a group (NetEase's tids are numbers): its team is read
            // under its tid, a conversation of its own.
            None => return Ok(done()),
        };
        let (api, conv_type, mut form) = match chat {
            Chat::Team(tid) => (
                TEAM_API,
                "TEAM",
                vec![("tid", tid.to_string()), ("accid", self.member(tid).await?)],
            ),
            Chat::Pair(a, b) => (
                SESSION_API,
                "PERSON",
                vec![("from", a.to_string()), ("to", b.to_string())],
            ),
        };
        let limit = self.limit(api);
        if cursor.stuck {
            return Err(format!(
                "{limit} or more messages share the millisecond {} in NetEase Yunxin's history, which has no cursor to page past them: the rest of that millisecond and what followed it could not be read back",
                cursor.at
            ));
        }
        if cursor.at > to_ms {
            return Ok(done());
        }
        form.extend([
            ("begintime", cursor.at.to_string()),
            // NetEase wants the end after the start (414 "bad time").
            ("endtime", to_ms.max(cursor.at + 1).to_string()),
            ("limit", limit.to_string()),
            // Oldest first.
            ("reverse", "1".to_string()),
        ]);
        let mut v = self.call(api, &form).await.map_err(|e| e.to_string())?;
        let msgs = match v.get_mut("msgs").map(Value::take) {
            Some(Value::Array(l)) => l,
            _ => vec![],
        };
        let full = msgs.len() >= limit;
        let mut answer = Vec::with_capacity(msgs.len());
        for m in msgs {
            let Value::Object(m) = m else {
                return Err(format!(
                    "NetEase Yunxin {api} answered a message that is not a JSON object"
                ));
            };
            let (Some(at), Some(id)) = (
                text(m.get("sendtime")).and_then(|t| t.parse::<i64>().ok()),
                text(m.get("msgid")),
            ) else {
                let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                return Err(format!(
                    "NetEase Yunxin {api} answered a message without a `sendtime` in ms or a `msgid` (it has {})",
                    keys.join(", ")
                ));
            };
            answer.push((at, id, m));
        }
        let (fresh, next) = step(answer, &cursor, full);
        let events = fresh
            .iter()
            .flat_map(|(_, _, m)| events_of(m, conv, conv_type, &chat.to(m)))
            .collect();
        Ok(ReadPage {
            events,
            next: next.map(|c| c.token()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_history_message_and_its_copy_make_the_same_event() {
        // The copy NetEase sends (§3.3) and the history record of the same text message.
        let copy = json!({"eventType": "1", "convType": "PERSON", "to": "alice",
            "fromAccount": "bob", "fromClientType": "AOS", "fromDeviceId": "d1",
            "fromNick": "Bob", "msgTimestamp": "1700000000123", "msgType": "TEXT",
            "msgidClient": "c1", "msgidServer": "9001", "resendFlag": "0", "body": "hi",
            "ext": r#"{"vip":1}"#});
        let history = msg(json!({"from": "bob", "to": "alice", "msgid": 9001,
            "msgidclient": "c1", "sendtime": 1_700_000_000_123i64, "type": 0,
            "fromclienttype": 1, "body": {"msg": "hi"}, "ext": r#"{"vip":1}"#}));
        let from_copy = callbacks::events(copy.to_string().as_bytes()).unwrap();
        let read = events_of(&history, "c2c:alice:bob", "PERSON", "alice");
        assert_eq!(from_copy.len(), 1);
        assert_eq!(read, from_copy);
        assert_eq!(read[0].key, "9001");

        // A team picture (its JSON in the copy's `attach`), sent by imshift (its origin tag).
        let tagged = callbacks::tagged(None, "old-1");
        let attach = r#"{"name":"a.jpg","md5":"ab","url":"https://x/a.jpg","ext":"jpg","w":10,"h":20,"size":30}"#;
        let copy = json!({"eventType": "1", "convType": "TEAM", "to": "77",
            "fromAccount": "bob", "fromClientType": "REST", "msgTimestamp": "1700000000999",
            "msgType": "PICTURE", "msgidServer": "9002", "body": "", "attach": attach,
            "ext": tagged});
        let history = msg(json!({"from": "bob", "to": "77", "msgid": 9002,
            "sendtime": 1_700_000_000_999i64, "type": 1, "fromclienttype": 32,
            "body": serde_json::from_str::<Value>(attach).unwrap(), "ext": tagged}));
        let from_copy = callbacks::events(copy.to_string().as_bytes()).unwrap();
        let read = events_of(&history, "group:77", "TEAM", "77");
        assert_eq!(read, from_copy);
        assert_eq!(read[0].origin.as_deref(), Some(crate::providers::ORIGIN));

        // Notifications and tips are no more relayed read back than copied.
        let tip = msg(json!({"from": "bob", "msgid": 1, "sendtime": 1, "type": 10, "body": "x"}));
        assert!(events_of(&tip, "group:77", "TEAM", "77").is_empty());
    }

    fn at(ms: i64, id: &str) -> Read {
        (ms, id.to_string(), Map::new())
    }

    fn ids(page: &[Read]) -> Vec<&str> {
        page.iter().map(|(_, id, _)| id.as_str()).collect()
    }

    #[test]
    fn pages_move_the_window_past_what_was_read_even_within_one_millisecond() {
        let start = Cursor {
            at: 10,
            ..Cursor::default()
        };
        // A full page ending with two messages at 12: the next starts at 12 without them.
        let (got, next) = step(vec![at(10, "1"), at(12, "2"), at(12, "3")], &start, true);
        assert_eq!(ids(&got), ["1", "2", "3"]);
        let next = next.unwrap();
        assert_eq!(Cursor::parse(&next.token()).unwrap(), next);
        assert_eq!(next.token(), "12:2,3");
        let (got, next) = step(vec![at(12, "2"), at(12, "3"), at(12, "4")], &next, true);
        // All three at the page's first millisecond: no query from 12 gets past them.
        assert_eq!(ids(&got), ["4"]);
        let stuck = next.unwrap();
        assert!(stuck.stuck);
        assert_eq!(Cursor::parse(&stuck.token()).unwrap(), stuck);
        // A page that is not full is the last.
        let from = Cursor::parse("12:2,3").unwrap();
        let (got, next) = step(vec![at(12, "3"), at(13, "5")], &from, false);
        assert_eq!(ids(&got), ["5"]);
        assert!(next.is_none());
        assert!(Cursor::parse("twelve").unwrap_err().contains("twelve"));
    }

    #[tokio::test]
    async fn a_conversation_is_read_back_whole_page_after_page_oldest_first() {
        use super::super::sandbox::{spawn, SandboxConfig};
        use crate::providers::RunningSandbox;
        let sandbox = spawn(
            SandboxConfig::new("readbackkey", "secret"),
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .unwrap();
        let mut limits = crate::providers::Limits::from_table(super::super::LIMITS);
        limits.set_batch(SESSION_API, 3);
        limits.set_batch(TEAM_API, 3);
        let client = NeteaseClient::new(super::super::NeteaseConfig {
            base_url: sandbox.base_url(),
            app_key: "readbackkey".into(),
            app_secret: secrecy::SecretString::from("secret".to_string()),
        })
        .unwrap()
        .with_limits(limits);
        let reader = NeteaseReader::new(client);
        let from = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
        // In twos: a pair shares a millisecond (the sandbox stamps the same one), and pages of
        // three end between the two of a pair.
        let mut sent = vec![];
        for i in 0..20 {
            let (a, b) = if i % 2 == 0 {
                ("alice", "bob")
            } else {
                ("bob", "alice")
            };
            sent.push(
                sandbox
                    .user_message(a, b, false, &format!("m{i}"))
                    .await
                    .unwrap(),
            );
            if i % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let to = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 1000;
        let (mut got, mut page, mut pages) = (vec![], None, 0);
        loop {
            let p = reader.read("c2c:alice:bob", from, to, page).await.unwrap();
            got.extend(p.events.into_iter().map(|e| e.key));
            pages += 1;
            match p.next {
                Some(n) => page = Some(n),
                None => break,
            }
        }
        assert_eq!(got, sent, "each once, in order");
        assert!(pages >= 7, "{pages} pages of 3");
        // The other side's id of a group is not a team here: nothing to read, no error.
        let p = reader.read("group:g1", from, to, None).await.unwrap();
        assert!(p.events.is_empty() && p.next.is_none());
        assert!(reader
            .read("group:424242", from, to, None)
            .await
            .err()
            .expect("a team NetEase lacks is a problem")
            .contains("424242"));
        assert_eq!(
            reader.pace("group:1").unwrap(),
            reader.pace("c2c:a:b").unwrap(),
            "both history APIs count against one category"
        );
    }
}
