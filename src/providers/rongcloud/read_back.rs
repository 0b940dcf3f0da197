//! RongCloud's history read back (reference §2.7): `v3/message/private/query` and
//! `v3/message/group/query`, for the sink to find a message an earlier try may have sent
//! (publish does not absorb a repeat, §6.5) and for filling the gaps routing left.
//!
//! These two APIs take a JSON body (§1.2, §5.1): `RongcloudClient::call_json`.

use super::callbacks::{canonical_body, tag_of};
use super::client::RongcloudClient;
use super::errors::RongcloudError;
use crate::providers::{InboundEvent, ReadBack, ReadPage, ORIGIN};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

pub const PRIVATE_QUERY: &str = "v3/message/private/query";
pub const GROUP_QUERY: &str = "v3/message/group/query";
/// Messages a page asks for: the sandbox's largest (§2.7: the real maximum is UNCONFIRMED).
pub const PAGE_SIZE: usize = 100;
/// The working budget of the history APIs when the migration's limits name none (90% of
/// the documented default of 100/s, as §6.4 does for every API).
pub const QPS: u32 = 90;

/// One page of `user`'s history with `target` (an account, or a group when `group`), from
/// `start` towards `end` (ms; backwards when `start` is later, §2.7).
pub async fn history_page(
    client: &RongcloudClient,
    group: bool,
    user: &str,
    target: &str,
    (start, end): (i64, i64),
    include_start: bool,
) -> Result<Vec<Value>, RongcloudError> {
    let api = if group { GROUP_QUERY } else { PRIVATE_QUERY };
    let body = json!({
        "userId": user, "targetId": target, "startTime": start, "endTime": end,
        "pageSize": PAGE_SIZE, "includeStart": include_start,
    });
    let v = client.call_json(api, &body).await?;
    Ok(v.get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}
/// A history entry's `msgTime` (ms).
pub fn msg_time(h: &Value) -> Option<i64> {
    match h.get("msgTime")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn s<'a>(h: &'a Value, k: &str) -> &'a str {
    h.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// A history entry's content as JSON (it comes as the text that was sent).
pub fn content_of(h: &Value) -> Value {
    match h.get("content") {
        Some(Value::String(c)) => serde_json::from_str(c).unwrap_or(Value::String(c.clone())),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// Reads one app's history back for the gaps routing left, keyed by `messageUID` as routing
/// keys its messages (so what did arrive is a duplicate).
pub struct RongcloudReader {
    client: RongcloudClient,
    /// Group → a member to read it through (group history is read as one of its members).
    readers: Mutex<HashMap<String, String>>,
}

impl RongcloudReader {
    pub fn new(client: RongcloudClient) -> Self {
        RongcloudReader {
            client,
            readers: Mutex::new(HashMap::new()),
        }
    }

    async fn member_of(&self, group: &str) -> Result<Option<String>, String> {
        if let Some(m) = self
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
        {
            return Ok(Some(m.clone()));
        }
        let first = match self.client.group_members(group).await {
            Ok(m) => m.into_iter().next(),
            // No such group on RongCloud: nothing to read.
            Err(e) if e.class() == crate::providers::ErrorClass::Permanent => None,
            Err(e) => return Err(e.to_string()),
        };
        if let Some(m) = &first {
            self.readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(group.to_string(), m.clone());
        }
        Ok(first)
    }
}

/// One history entry as the event routing would have made of it; `None`: not relayed.
fn event_of(h: &Value, group: Option<&str>, user: &str, peer: &str) -> Option<InboundEvent> {
    let id = s(h, "messageUID");
    let from = s(h, "fromUserId");
    let at = msg_time(h)?;
    if id.is_empty() || from.is_empty() {
        return None;
    }
    let content = match h.get("content") {
        Some(Value::String(c)) => c.clone(),
        Some(v) => v.to_string(),
        None => return None,
    };
    let (body, extra) = canonical_body(s(h, "objectName"), &content).ok()??;
    let tagged = tag_of(&json!({ "extra": extra })).is_some();
    let (ext, _) = super::callbacks::untagged(extra.as_deref());
    let (conv, to) = match group {
        Some(g) => ("group", g.to_string()),
        None if from == user => ("c2c", peer.to_string()),
        None => ("c2c", user.to_string()),
    };
    let mut data =
        json!({"id": id, "conv": conv, "from": from, "to": to, "sent_at": at, "body": body});
    if let Some(e) = ext {
        data["ext"] = e.into();
    }
    Some(InboundEvent {
        key: id.to_string(),
        kind: "message.sent".into(),
        at_ms: at,
        data,
        origin: tagged.then(|| ORIGIN.to_string()),
        alias: None,
    })
}

#[async_trait::async_trait]
impl ReadBack for RongcloudReader {
    fn pace(&self, conv: &str) -> Option<(String, f64)> {
        let api = if conv.starts_with("group:") {
            GROUP_QUERY
        } else {
            PRIVATE_QUERY
        };
        let qps = self.client.limits().qps(api).unwrap_or(QPS) as f64;
        Some((format!("rongcloud:{}:{api}", self.client.app_key()), qps))
    }

    /// Forwards from `from_ms` (or the page's cursor: the last time read) to `to_ms`. A page
    /// starts at the last page's last time, included, so messages sharing that millisecond
    /// are not skipped; those already read are left out by their UIDs in the cursor.
    async fn read(
        &self,
        conv: &str,
        from_ms: i64,
        to_ms: i64,
        page: Option<String>,
    ) -> Result<ReadPage, String> {
        let (group, user, peer) = if let Some(g) = conv.strip_prefix("group:") {
            match self.member_of(g).await? {
                Some(m) => (Some(g.to_string()), m, String::new()),
                None => {
                    return Ok(ReadPage {
                        events: vec![],
                        next: None,
                    })
                }
            }
        } else {
            let rest = conv
                .strip_prefix("c2c:")
                .ok_or(format!("{conv} is not a conversation RongCloud keeps"))?;
            let (a, b) = rest
                .split_once(':')
                .ok_or(format!("{conv} does not name two accounts"))?;
            (None, a.to_string(), b.to_string())
        };
        // Cursor: `<ms>|<uid>,<uid>…` (the UIDs read at that millisecond).
        let (start, seen): (i64, Vec<String>) = match &page {
            None => (from_ms, vec![]),
            Some(p) => {
                let (ms, uids) = p.split_once('|').unwrap_or((p, ""));
                (
                    ms.parse().map_err(|_| format!("bad page cursor {p:?}"))?,
                    uids.split(',')
                        .filter(|u| !u.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
        };
        let target = group.as_deref().unwrap_or(&peer);
        let rows = history_page(
            &self.client,
            group.is_some(),
            &user,
            target,
            (start, to_ms),
            true,
        )
        .await
        .map_err(|e| e.to_string())?;
        let full = rows.len() >= PAGE_SIZE;
        let mut rows: Vec<&Value> = rows
            .iter()
            .filter(|h| !seen.iter().any(|u| u == s(h, "messageUID")))
            .collect();
        rows.sort_by_key(|h| msg_time(h).unwrap_or_default());
        let last = rows.last().and_then(|h| msg_time(h));
        let next = match last {
            Some(t) if full => {
                let at_last: Vec<&str> = rows
                    .iter()
                    .filter(|h| msg_time(h) == Some(t))
                    .map(|h| s(h, "messageUID"))
                    .collect();
                let mut uids = at_last.join(",");
                if t == start {
                    // Still the same millisecond: keep what was read at it before.
                    uids = seen.join(",") + "," + &uids;
                }
                Some(format!("{t}|{uids}"))
            }
            _ => None,
        };
        let events = rows
            .into_iter()
            .filter_map(|h| event_of(h, group.as_deref(), &user, &peer))
            .collect();
        Ok(ReadPage { events, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_entry_reads_as_the_routed_message_would() {
        let h = json!({"targetId": "bob", "fromUserId": "bob", "messageUID": "AAAA-BBBB-CCCC-DDDD",
                       "msgTime": 1_700_000_000_000i64, "objectName": "RC:TxtMsg",
                       "content": r#"{"content":"hi","extra":"{\"imshift\":\"old-1\"}"}"#});
        let e = event_of(&h, None, "alice", "bob").unwrap();
        assert_eq!(e.key, "AAAA-BBBB-CCCC-DDDD");
        assert_eq!(e.origin.as_deref(), Some(ORIGIN));
        assert_eq!(e.data["from"], "bob");
        assert_eq!(e.data["to"], "alice");
        assert_eq!(e.data["body"], json!({"type": "text", "text": "hi"}));
        assert!(e.data.get("ext").is_none());
        let g = event_of(&h, Some("g1"), "alice", "").unwrap();
        assert_eq!(
            (g.data["conv"].as_str(), g.data["to"].as_str()),
            (Some("group"), Some("g1"))
        );
        let ntf = json!({"fromUserId": "a", "messageUID": "X", "msgTime": 1, "objectName": "RC:GrpNtf", "content": "{}"});
        assert!(event_of(&ntf, Some("g1"), "a", "").is_none());
        assert_eq!(content_of(&h)["content"], "hi");
    }
}
