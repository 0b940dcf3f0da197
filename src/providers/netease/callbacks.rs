//! NetEase Yunxin's 消息抄送 (message copy) to the app server (reference §3): its signature
//! check and its eventType 1 bodies in the relay protocol's canonical words.
//!
//! A copy is `POST`ed as one JSON object whose values are all strings (§3.3), with headers
//! `CurTime` (milliseconds), `MD5` (hex MD5 of the exact body) and
//! `CheckSum = sha1(secret + MD5 + CurTime)` (§3.1); newer pages add `AppKey`.
//!
//! What is relayed: eventType 1 messages of `convType` PERSON and TEAM (text, picture, audio,
//! video, location, file, custom). Everything else (logins, chat rooms, team notifications,
//! custom system notifications, tips, calls) is acknowledged and not relayed. Recalls
//! (eventType 7 and 8) are acknowledged and not relayed either: their body shape is
//! UNCONFIRMED (no official page stored here names its fields).

use super::sign;
use crate::providers::{InboundEvent, ORIGIN};
use serde_json::{json, Map, Value};

/// A copy whose `CurTime` is further than this from now is a replay (the same 5 minutes as
/// the API's own window, §1.2; NetEase's page gives none for 抄送: UNCONFIRMED).
pub const MAX_SKEW_SECS: i64 = 300;

/// The key imshift's origin tag takes in a message's `ext` (a JSON object), like Tencent's
/// `CloudCustomData` tag: its value is the source event's key.
pub const TAG: &str = "imshift";

/// The headers of a copy, for [`verify`].
pub struct CopyHeaders<'a> {
    pub app_key: Option<&'a str>,
    pub cur_time: Option<&'a str>,
    pub md5: Option<&'a str>,
    pub checksum: Option<&'a str>,
}

impl<'a> CopyHeaders<'a> {
    pub fn of(headers: &'a http::HeaderMap) -> Self {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        CopyHeaders {
            app_key: h("AppKey"),
            cur_time: h("CurTime"),
            md5: h("MD5"),
            checksum: h("CheckSum"),
        }
    }
}

/// Checks one copy: `AppKey` (when sent) is this app's, `MD5` is the body's, `CheckSum` is
/// made with `secret`, and `CurTime` is within [`MAX_SKEW_SECS`] of `now_secs`. A replay's
/// reason starts with "stale" (the door counts those apart).
pub fn verify(
    secret: &str,
    app_key: &str,
    h: &CopyHeaders,
    body: &[u8],
    now_secs: i64,
) -> Result<(), String> {
    if let Some(given) = h.app_key.map(str::trim).filter(|k| !k.is_empty()) {
        if !given.eq_ignore_ascii_case(app_key) {
            return Err(format!(
                "the message copy is for App Key {given}, this connection is App Key {app_key}"
            ));
        }
    }
    let (Some(cur_time), Some(md5), Some(checksum)) = (h.cur_time, h.md5, h.checksum) else {
        let missing: Vec<&str> = [
            ("CurTime", h.cur_time.is_none()),
            ("MD5", h.md5.is_none()),
            ("CheckSum", h.checksum.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        return Err(format!(
            "the message copy has no {} header (NetEase signs every copy with CurTime, MD5 and CheckSum)",
            missing.join(", ")
        ));
    };
    let cur_ms: i64 = cur_time
        .trim()
        .parse()
        .map_err(|_| format!("the message copy's CurTime {cur_time:?} is not milliseconds"))?;
    let actual = sign::body_md5(body);
    if !sign::same_digest(&actual, md5.trim()) {
        return Err(format!(
            "the message copy's MD5 header {md5:?} is not the MD5 of its body ({actual}): the body was changed on the way"
        ));
    }
    let want = sign::checksum(secret, md5.trim(), cur_time.trim());
    if !sign::same_digest(&want, checksum.trim()) {
        return Err(
            "the message copy's CheckSum does not match sha1(secret + MD5 + CurTime): the App Secret (or the message copy secret) on this connection is not the one NetEase signs with"
                .into(),
        );
    }
    let skew = (now_secs * 1000 - cur_ms).abs() / 1000;
    if skew > MAX_SKEW_SECS {
        return Err(format!(
            "stale: the message copy's CurTime {cur_ms} is {skew} s away from now (at most {MAX_SKEW_SECS} s): a replay, or a clock that is off"
        ));
    }
    Ok(())
}

/// `msgType` of a PERSON/TEAM copy → the `sendMsg`/migration-line type number (§2.4, §3.3);
/// `None`: not a message imshift relays (notifications, tips, calls, data tunnels).
fn msg_type(name: &str) -> Option<i64> {
    Some(match name {
        "TEXT" => 0,
        "PICTURE" => 1,
        "AUDIO" => 2,
        "VIDEO" => 3,
        "LOCATION" => 4,
        "FILE" => 6,
        "CUSTOM" => 100,
        _ => return None,
    })
}

/// A field as text: copies send every value as a string (§3.3); numbers are taken too.
fn text_of(o: &Map<String, Value>, k: &str) -> Option<String> {
    match o.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The app's own `ext` with imshift's tag taken out, and whether the tag was there.
pub fn untagged(ext: Option<&str>) -> (Option<String>, bool) {
    let Some(s) = ext.map(str::trim).filter(|s| !s.is_empty()) else {
        return (None, false);
    };
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(mut o)) if o.contains_key(TAG) => {
            o.remove(TAG);
            let rest = (!o.is_empty()).then(|| Value::Object(o).to_string());
            (rest, true)
        }
        _ => (Some(s.to_string()), false),
    }
}

/// `ext` with imshift's tag added (`key`: the source event's key). An `ext` that is not a JSON
/// object cannot take a tag and goes as it is (the other guards still hold).
pub fn tagged(ext: Option<&str>, key: &str) -> String {
    match ext.map(str::trim).filter(|s| !s.is_empty()) {
        None => json!({ TAG: key }).to_string(),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(mut o)) => {
                o.insert(TAG.into(), key.into());
                Value::Object(o).to_string()
            }
            _ => s.to_string(),
        },
    }
}

/// The events of one copy's body. `Err` says what is malformed and where; a copy imshift
/// does not relay yields no events.
pub fn events(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the message copy's body is not JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("the message copy's body is not a JSON object".into());
    };
    let event_type = text_of(&o, "eventType")
        .ok_or("the message copy has no `eventType` (1 for a conversation message)")?;
    if event_type.trim() != "1" {
        // Logins, logouts, chat rooms, calls, and recalls (7, 8: shape UNCONFIRMED).
        return Ok(vec![]);
    }
    let conv_type =
        text_of(&o, "convType").ok_or("the eventType 1 copy has no `convType` (PERSON or TEAM)")?;
    let conv = match conv_type.as_str() {
        "PERSON" => "c2c",
        "TEAM" => "group",
        // Super teams, custom system notifications: not relayed.
        _ => return Ok(vec![]),
    };
    let kind_name = text_of(&o, "msgType").ok_or(format!(
        "the {conv_type} copy has no `msgType` (TEXT, PICTURE, …)"
    ))?;
    let Some(ty) = msg_type(&kind_name) else {
        return Ok(vec![]);
    };
    let need = |k: &str, what: &str| {
        text_of(&o, k)
            .filter(|s| !s.trim().is_empty())
            .ok_or(format!(
                "the {conv_type} {kind_name} copy has no `{k}` ({what})"
            ))
    };
    let id = need("msgidServer", "the server's message id")?;
    let from = need("fromAccount", "the sender")?;
    let to = need(
        "to",
        if conv == "group" {
            "the team id"
        } else {
            "the receiver"
        },
    )?;
    let at_raw = need("msgTimestamp", "the send time in ms")?;
    let at: i64 = at_raw.trim().parse().map_err(|_| {
        format!("the {conv_type} {kind_name} copy's `msgTimestamp` {at_raw:?} is not milliseconds")
    })?;
    let (ext, tag) = untagged(text_of(&o, "ext").as_deref());

    // The same record a NetEase migration line makes (dump.rs), so both read one way.
    let mut data = Map::new();
    data.insert("msgid".into(), id.clone().into());
    data.insert("from".into(), from.clone().into());
    if conv == "group" {
        data.insert("tid".into(), to.clone().into());
    } else {
        data.insert("to".into(), to.clone().into());
    }
    data.insert("createTime".into(), at.into());
    for k in ["body", "attach"] {
        if let Some(s) = text_of(&o, k).filter(|s| !s.is_empty()) {
            data.insert(k.into(), s.into());
        }
    }
    if let Some(c) = text_of(&o, "fromClientType") {
        data.insert("clientType".into(), c.into());
    }
    let line = json!({"type": ty, "data": data}).to_string();
    let record = super::dump::convert_line(&line)
        .map_err(|e| {
            format!(
                "the {conv_type} {kind_name} copy of message {id}: {} ({})",
                e.message.replace("data.", ""),
                e.code
            )
        })?
        .into_iter()
        .next()
        .ok_or(format!(
            "the {conv_type} {kind_name} copy of message {id} made no message"
        ))?;
    let Value::Object(mut m) = record else {
        return Err(format!("the copy of message {id} made no message object"));
    };
    m.remove("kind");
    match ext {
        Some(e) => m.insert("ext".into(), e.into()),
        None => m.remove("ext"),
    };
    Ok(vec![InboundEvent {
        key: id,
        kind: "message.sent".into(),
        at_ms: at,
        data: Value::Object(m),
        origin: tag.then(|| ORIGIN.to_string()),
        alias: None,
    }])
}

/// The answer NetEase expects within 5 s (§3.1: 200 means delivered).
pub fn ok_response() -> Value {
    json!({ "code": 200 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_goes_in_and_comes_out_leaving_the_apps_ext() {
        let t = tagged(Some(r#"{"a":1}"#), "k1");
        let (rest, tag) = untagged(Some(&t));
        assert!(tag);
        assert_eq!(rest.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(untagged(Some("plain")), (Some("plain".into()), false));
        assert_eq!(untagged(Some(&tagged(None, "k"))), (None, true));
    }

    #[test]
    fn other_event_types_are_acknowledged_without_events() {
        assert!(events(br#"{"eventType":"2","accid":"a"}"#)
            .unwrap()
            .is_empty());
        assert!(
            events(br#"{"eventType":"1","convType":"CUSTOM_PERSON","msgType":"FRIEND_ADD"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(events(b"not json").unwrap_err().contains("not JSON"));
    }
}
