//! RongCloud's 全量消息路由 (message routing) to the app server (reference §3): its signature
//! check and its form bodies in the relay protocol's canonical words.
//!
//! A routed message is `POST`ed to the app server's URL with `?nonce=…&signTimestamp=…&
//! signature=…` added (`signature = hex(SHA1(AppSecret + nonce + signTimestamp))`,
//! `signTimestamp` in ms) and an `application/x-www-form-urlencoded` body: `fromUserId`,
//! `toUserId` (the group id for a group message), `objectName`, `content` (the §2.6 JSON),
//! `channelType`, `msgTimestamp`, `msgUID`, `sensitiveType`, `source`, … RongCloud wants
//! HTTP 200 back; a routed message is keyed by its `msgUID` (§3: the dedupe key).
//!
//! What is relayed: `PERSON` and `GROUP` messages whose `objectName` has a canonical body
//! (text, image, GIF, voice, short video, file, location, and custom types). Everything else
//! is acknowledged and not relayed: chatrooms, ultra groups, discussions; notifications and
//! commands (`RC:GrpNtf`, `RC:InfoNtf`, `RC:CmdMsg`, …); quotes, merged forwards and rich
//! text (`RC:ReferenceMsg`, `RC:CombineMsg`, `RC:ImgTextMsg`: no canonical body); a group
//! message targeted at some members (`groupUserIds`: relaying it would show it to the whole
//! group); a message whose sensitive words RongCloud blocked. Recalls (`RC:RcCmd`) are
//! acknowledged and not relayed either: neither §3 nor §2.6 says whether they are routed or
//! what their content holds (UNCONFIRMED), so imshift cannot name the message they recall.

use super::sign;
use crate::providers::{InboundEvent, ORIGIN};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A routed message signed further than this from now is a replay. RongCloud gives no window
/// for routing (§3, UNCONFIRMED): 5 minutes, the window the sandbox's API takes (§5.2).
pub const MAX_SKEW_SECS: i64 = 300;

/// The key imshift's origin tag takes in a message's `content.extra` (made a JSON object):
/// its value is the source event's key (§6.6 suggests the `content.extra` marker).
pub const TAG: &str = "imshift";

/// The objectName canonical `custom` bodies travel as, `{data, desc, extra}` (the same as
/// the history bundles'; custom names must not start with `RC:`, §4).
pub const CUSTOM_OBJECT_NAME: &str = "App:Custom";

/// A `RC:VcMsg` carries its AMR audio inline (§2.6): it travels as a `data:` URL.
pub const AMR_DATA_URL: &str = "data:audio/amr;base64,";

/// The signature fields of a routed message's query string.
pub struct RouteQuery<'a> {
    pub nonce: Option<&'a str>,
    /// Milliseconds (seconds in the old `rc-timestamp` form).
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    /// Sent by some deployments (UNCONFIRMED): checked when present.
    pub app_key: Option<&'a str>,
}

impl<'a> RouteQuery<'a> {
    /// From the query string; the very old names (`rc-nonce`, `rc-timestamp`,
    /// `rc-signature`, §3) are taken when the current ones are absent.
    pub fn of(q: &'a HashMap<String, String>) -> Self {
        let get = |a: &str, b: &str| q.get(a).or_else(|| q.get(b)).map(String::as_str);
        RouteQuery {
            nonce: get("nonce", "rc-nonce"),
            timestamp: get("signTimestamp", "rc-timestamp"),
            signature: get("signature", "rc-signature"),
            app_key: get("appKey", "appkey"),
        }
    }
}

/// Checks one routed message: `appKey` (when sent) is this app's, `signature` is made with
/// `secret`, and `signTimestamp` is within [`MAX_SKEW_SECS`] of `now_secs`. A replay's reason
/// starts with "stale" (the door counts those apart).
pub fn verify(secret: &str, app_key: &str, q: &RouteQuery, now_secs: i64) -> Result<(), String> {
    if let Some(given) = q.app_key.map(str::trim).filter(|k| !k.is_empty()) {
        if given != app_key {
            return Err(format!(
                "the routed message is for App Key {given}, this connection is App Key {app_key}"
            ));
        }
    }
    let (Some(nonce), Some(ts), Some(signature)) = (q.nonce, q.timestamp, q.signature) else {
        let missing: Vec<&str> = [
            ("nonce", q.nonce.is_none()),
            ("signTimestamp", q.timestamp.is_none()),
            ("signature", q.signature.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        return Err(format!(
            "the routed message has no {} in its URL (RongCloud signs every routed message with nonce, signTimestamp and signature)",
            missing.join(", ")
        ));
    };
    let stamp: i64 = ts
        .trim()
        .parse()
        .map_err(|_| format!("the routed message's signTimestamp {ts:?} is not a number"))?;
    let want = sign::signature(secret, nonce, ts.trim());
    if !sign::same_digest(&want, signature.trim()) {
        return Err(
            "the routed message's signature does not match sha1(App Secret + nonce + signTimestamp): the App Secret on this connection is not the one RongCloud signs with"
                .into(),
        );
    }
    // Values below 10^11 are seconds (the old `rc-timestamp`), as the API takes both (§5.2).
    let ms = if stamp < 100_000_000_000 {
        stamp * 1000
    } else {
        stamp
    };
    let skew = (now_secs * 1000 - ms).abs() / 1000;
    if skew > MAX_SKEW_SECS {
        return Err(format!(
            "stale: the routed message's signTimestamp {stamp} is {skew} s away from now (at most {MAX_SKEW_SECS} s): a replay, or a clock that is off"
        ));
    }
    Ok(())
}

/// The app's own `extra` with imshift's tag taken out, and whether the tag was there.
pub fn untagged(extra: Option<&str>) -> (Option<String>, bool) {
    let Some(s) = extra.map(str::trim).filter(|s| !s.is_empty()) else {
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

/// `extra` with imshift's tag added (`key`: the source event's key). An `extra` that is not
/// a JSON object cannot take a tag and goes as it is (the id map still catches an echo).
pub fn tagged(extra: Option<&str>, key: &str) -> String {
    match extra.map(str::trim).filter(|s| !s.is_empty()) {
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

/// The tag's value in a content's `extra` (the key of the event it was sent for).
pub fn tag_of(content: &Value) -> Option<String> {
    let extra = content.get("extra")?.as_str()?;
    let v: Value = serde_json::from_str(extra).ok()?;
    v.get(TAG)?.as_str().map(str::to_string)
}

/// A number of a content, also when it came as a string of digits.
fn num(c: &Value, k: &str) -> Option<f64> {
    match c.get(k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn int(c: &Value, k: &str) -> Option<i64> {
    num(c, k).map(|n| n as i64)
}

fn text<'a>(c: &'a Value, k: &str) -> Option<&'a str> {
    c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A routed or stored message's `objectName` and `content` as a canonical body (§2.6 →
/// `canonical-dump-v1` bodies), with the content's `extra`. `Ok(None)`: a kind imshift does
/// not relay; `Err`: a relayed kind whose content is broken, said with what is missing.
pub fn canonical_body(
    object_name: &str,
    content: &str,
) -> Result<Option<(Value, Option<String>)>, String> {
    let relayed = matches!(
        object_name,
        "RC:TxtMsg"
            | "RC:ImgMsg"
            | "RC:GIFMsg"
            | "RC:HQVCMsg"
            | "RC:VcMsg"
            | "RC:SightMsg"
            | "RC:FileMsg"
            | "RC:LBSMsg"
    ) || !object_name.starts_with("RC:");
    if !relayed {
        return Ok(None);
    }
    let parsed: Option<Value> = serde_json::from_str(content).ok();
    if !object_name.starts_with("RC:") {
        // A custom type: its content is the app's own (any text, JSON recommended, §2.6).
        let c = parsed.unwrap_or_else(|| Value::String(content.to_string()));
        let extra = text(&c, "extra").map(str::to_string);
        let body = match (&c, object_name) {
            (Value::Object(o), CUSTOM_OBJECT_NAME) if o.contains_key("data") => {
                let mut b = json!({"type": "custom", "data": o["data"].clone()});
                if let Some(d) = text(&c, "desc") {
                    b["desc"] = d.into();
                }
                b
            }
            _ => json!({"type": "custom", "data": c, "desc": object_name}),
        };
        return Ok(Some((body, extra)));
    }
    let c = match parsed {
        Some(c @ Value::Object(_)) => c,
        _ => return Err(format!("the {object_name} content is not a JSON object")),
    };
    let need = |k: &str| {
        text(&c, k)
            .map(str::to_string)
            .ok_or(format!("the {object_name} content has no `{k}`"))
    };
    let mut b = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            b.insert(k.into(), v);
        }
    };
    let duration_ms = num(&c, "duration").map(|s| json!((s * 1000.0).round() as i64));
    match object_name {
        "RC:TxtMsg" => {
            // An empty text is a text still.
            let t = c.get("content").and_then(Value::as_str).ok_or(format!(
                "the {object_name} content has no `content` (the text)"
            ))?;
            put("type", Some("text".into()));
            put("text", Some(t.into()));
        }
        "RC:ImgMsg" => {
            put("type", Some("image".into()));
            put("url", Some(need("imageUri")?.into()));
        }
        "RC:GIFMsg" => {
            put("type", Some("image".into()));
            put("url", Some(need("remoteUrl")?.into()));
            put("size", int(&c, "gifDataSize").map(Value::from));
            put("width", int(&c, "width").map(Value::from));
            put("height", int(&c, "height").map(Value::from));
            put("format", Some("gif".into()));
        }
        "RC:HQVCMsg" => {
            put("type", Some("audio".into()));
            put("url", Some(need("remoteUrl")?.into()));
            put("duration_ms", duration_ms);
        }
        "RC:VcMsg" => {
            put("type", Some("audio".into()));
            put(
                "url",
                Some(format!("{AMR_DATA_URL}{}", need("content")?).into()),
            );
            put("duration_ms", duration_ms);
            put("format", Some("amr".into()));
        }
        "RC:SightMsg" => {
            put("type", Some("video".into()));
            put("url", Some(need("sightUrl")?.into()));
            put("size", int(&c, "size").map(Value::from));
            put("duration_ms", duration_ms);
        }
        "RC:FileMsg" => {
            put("type", Some("file".into()));
            put("url", Some(need("fileUrl")?.into()));
            put("name", text(&c, "name").map(Value::from));
            put("size", int(&c, "size").map(Value::from));
            put("format", text(&c, "type").map(Value::from));
        }
        // RC:LBSMsg
        _ => {
            let (Some(lat), Some(lng)) = (num(&c, "latitude"), num(&c, "longitude")) else {
                return Err(format!(
                    "the {object_name} content has no numeric `latitude` and `longitude`"
                ));
            };
            put("type", Some("location".into()));
            put("lat", Some(json!(lat)));
            put("lng", Some(json!(lng)));
            put("title", text(&c, "poi").map(Value::from));
        }
    }
    Ok(Some((
        Value::Object(b),
        text(&c, "extra").map(str::to_string),
    )))
}

/// RongCloud's sending platform (§3 `source`) as a canonical `client`; `None` when unknown.
fn client_of(source: &str) -> Option<&'static str> {
    Some(match source.to_ascii_lowercase().as_str() {
        "android" => "android",
        "ios" | "iphone" | "ipad" => "ios",
        "pc" | "windows" | "electron" => "pc",
        "websocket" | "web" | "h5" | "miniprogram" => "web",
        "mac" | "macos" => "mac",
        "server" => "server",
        _ => return None,
    })
}

/// The fields of a form body, first value of each key.
pub fn form(body: &[u8]) -> Result<HashMap<String, String>, String> {
    // The sandbox's parser is RongCloud's form encoding (repeated keys, `+`, `%XX`).
    let pairs = super::sandbox::parse_form(body)
        .map_err(|e| format!("the routed message's body is not a form: {e}"))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        out.entry(k).or_insert(v);
    }
    Ok(out)
}

/// The events of one routed message's body. `Err` says what is malformed and where; a
/// message imshift does not relay yields no events.
pub fn events(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let f = form(body)?;
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let channel = get("channelType");
    let conv = match channel {
        "PERSON" => "c2c",
        "GROUP" => "group",
        "" => return Err("the routed message has no `channelType` (PERSON or GROUP)".into()),
        // Chatrooms, ultra groups, discussions, customer service: not relayed.
        _ => return Ok(vec![]),
    };
    let object_name = get("objectName");
    if object_name.is_empty() {
        return Err(format!("the {channel} routed message has no `objectName`"));
    }
    // 1: sensitive words blocked, so nobody on RongCloud saw it (RongCloud's docs give 0
    // clean, 1 blocked, 2 replaced; §3 marks the values UNCONFIRMED).
    if get("sensitiveType").trim() == "1" {
        return Ok(vec![]);
    }
    // A group message targeted at some members only cannot go to the whole group.
    if conv == "group" && !get("groupUserIds").trim().is_empty() {
        return Ok(vec![]);
    }
    let need = |k: &str, what: &str| {
        Some(get(k).trim())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(format!(
                "the {channel} {object_name} routed message has no `{k}` ({what})"
            ))
    };
    let id = need("msgUID", "RongCloud's message id")?;
    let from = need("fromUserId", "the sender")?;
    let to = need(
        "toUserId",
        if conv == "group" {
            "the group id"
        } else {
            "the receiver"
        },
    )?;
    let at_raw = need("msgTimestamp", "the send time in ms")?;
    let at: i64 = at_raw.parse().map_err(|_| {
        format!("the {channel} {object_name} routed message's `msgTimestamp` {at_raw:?} is not milliseconds")
    })?;
    let Some((body, extra)) = canonical_body(object_name, get("content"))
        .map_err(|e| format!("routed message {id}: {e}"))?
    else {
        return Ok(vec![]);
    };
    let (ext, tag) = untagged(extra.as_deref());
    let mut data = json!({
        "id": id, "conv": conv, "from": from, "to": to, "sent_at": at, "body": body,
    });
    if let Some(c) = client_of(get("source")) {
        data["client"] = c.into();
    }
    if let Some(e) = ext {
        data["ext"] = e.into();
    }
    Ok(vec![InboundEvent {
        key: id,
        kind: "message.sent".into(),
        at_ms: at,
        data,
        origin: tag.then(|| ORIGIN.to_string()),
        alias: None,
    }])
}

/// The answer: RongCloud wants HTTP 200 (§3); the body is not read (UNCONFIRMED), so it is
/// RongCloud's own success shape.
pub fn ok_response() -> Value {
    json!({ "code": 200 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(nonce: &str, ts: &str, sig: &str) -> HashMap<String, String> {
        HashMap::from([
            ("nonce".to_string(), nonce.to_string()),
            ("signTimestamp".to_string(), ts.to_string()),
            ("signature".to_string(), sig.to_string()),
        ])
    }

    #[test]
    fn the_signature_is_sha1_of_secret_nonce_and_timestamp_and_fresh() {
        let now = 1_700_000_000;
        let ts = (now * 1000).to_string();
        let good = sign::signature("s3cret", "123", &ts);
        let q = query("123", &ts, &good);
        assert_eq!(verify("s3cret", "k", &RouteQuery::of(&q), now), Ok(()));
        // Upper-case hex is the same digest.
        let q = query("123", &ts, &good.to_uppercase());
        assert!(verify("s3cret", "k", &RouteQuery::of(&q), now).is_ok());
        // Another secret.
        let q = query("123", &ts, &good);
        let e = verify("other", "k", &RouteQuery::of(&q), now).unwrap_err();
        assert!(e.contains("App Secret"), "{e}");
        assert!(!e.contains("s3cret"), "the secret is never said: {e}");
        // Too old, signed right: stale.
        let old = ((now - MAX_SKEW_SECS - 5) * 1000).to_string();
        let q = query("123", &old, &sign::signature("s3cret", "123", &old));
        let e = verify("s3cret", "k", &RouteQuery::of(&q), now).unwrap_err();
        assert!(e.starts_with("stale"), "{e}");
        // The old names, in seconds.
        let secs = now.to_string();
        let q = HashMap::from([
            ("rc-nonce".to_string(), "9".to_string()),
            ("rc-timestamp".to_string(), secs.clone()),
            (
                "rc-signature".to_string(),
                sign::signature("s3cret", "9", &secs),
            ),
        ]);
        assert!(verify("s3cret", "k", &RouteQuery::of(&q), now).is_ok());
        // Nothing signed, or another app.
        let e = verify("s3cret", "k", &RouteQuery::of(&HashMap::new()), now).unwrap_err();
        assert!(e.contains("nonce, signTimestamp, signature"), "{e}");
        let mut q = query("123", &ts, &good);
        q.insert("appKey".into(), "other".into());
        assert!(verify("s3cret", "k", &RouteQuery::of(&q), now)
            .unwrap_err()
            .contains("App Key other"));
    }

    fn body(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut base: Vec<(&str, &str)> = vec![
            ("fromUserId", "alice"),
            ("toUserId", "bob"),
            ("channelType", "PERSON"),
            ("msgTimestamp", "1700000000123"),
            ("msgUID", "CH2C-A072-OGM5-E3HL"),
            ("sensitiveType", "0"),
            ("source", "Android"),
            ("clientIp", "10.0.0.1:5000"),
        ];
        for (k, v) in fields {
            base.retain(|(b, _)| b != k);
            base.push((k, v));
        }
        base.iter()
            .map(|(k, v)| {
                let enc: String = v
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        b' ' => "+".into(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("{k}={enc}")
            })
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    }

    #[test]
    fn a_routed_text_is_one_canonical_message_keyed_by_its_uid() {
        let b = body(&[
            ("objectName", "RC:TxtMsg"),
            ("content", r#"{"content":"hi there & more","extra":""}"#),
        ]);
        let e = events(&b).unwrap();
        assert_eq!(e.len(), 1);
        let e = &e[0];
        assert_eq!(e.key, "CH2C-A072-OGM5-E3HL");
        assert_eq!(e.kind, "message.sent");
        assert_eq!(e.at_ms, 1_700_000_000_123);
        assert_eq!(e.origin, None);
        assert_eq!(
            e.data,
            json!({"id": "CH2C-A072-OGM5-E3HL", "conv": "c2c", "from": "alice", "to": "bob",
                   "sent_at": 1_700_000_000_123i64, "client": "android",
                   "body": {"type": "text", "text": "hi there & more"}})
        );
    }

    #[test]
    fn imshifts_tag_marks_the_origin_and_leaves_the_apps_extra() {
        let extra = tagged(Some(r#"{"a":1}"#), "old-1");
        let content = json!({"content": "x", "extra": extra}).to_string();
        let b = body(&[
            ("objectName", "RC:TxtMsg"),
            ("content", &content),
            ("channelType", "GROUP"),
            ("toUserId", "g1"),
            ("source", "Server"),
        ]);
        let e = events(&b).unwrap().pop().unwrap();
        assert_eq!(e.origin.as_deref(), Some(ORIGIN));
        assert_eq!(e.data["ext"], r#"{"a":1}"#);
        assert_eq!(e.data["conv"], "group");
        assert_eq!(e.data["client"], "server");
        assert_eq!(tag_of(&json!({"extra": extra})).as_deref(), Some("old-1"));
        assert_eq!(untagged(Some("plain")), (Some("plain".into()), false));
        assert_eq!(untagged(Some(&tagged(None, "k"))), (None, true));
    }

    #[test]
    fn media_and_custom_contents_become_canonical_bodies() {
        let b = |o: &str, c: Value| canonical_body(o, &c.to_string()).unwrap().unwrap().0;
        assert_eq!(
            b(
                "RC:ImgMsg",
                json!({"content": "", "imageUri": "https://x/a.jpg"})
            ),
            json!({"type": "image", "url": "https://x/a.jpg"})
        );
        assert_eq!(
            b(
                "RC:HQVCMsg",
                json!({"remoteUrl": "https://x/a.aac", "duration": 3})
            ),
            json!({"type": "audio", "url": "https://x/a.aac", "duration_ms": 3000})
        );
        assert_eq!(
            b("RC:VcMsg", json!({"content": "QU1S", "duration": 2}))["url"],
            "data:audio/amr;base64,QU1S"
        );
        assert_eq!(
            b(
                "RC:FileMsg",
                json!({"name": "a.pdf", "size": 10, "type": "pdf", "fileUrl": "https://x/a.pdf"})
            ),
            json!({"type": "file", "url": "https://x/a.pdf", "name": "a.pdf", "size": 10, "format": "pdf"})
        );
        assert_eq!(
            b(
                "RC:LBSMsg",
                json!({"latitude": 39.9, "longitude": "116.4", "poi": "here"})
            ),
            json!({"type": "location", "lat": 39.9, "lng": 116.4, "title": "here"})
        );
        assert_eq!(
            b(
                "RC:SightMsg",
                json!({"sightUrl": "https://x/v.mp4", "duration": 1, "size": 5})
            ),
            json!({"type": "video", "url": "https://x/v.mp4", "size": 5, "duration_ms": 1000})
        );
        assert_eq!(
            b(CUSTOM_OBJECT_NAME, json!({"data": {"k": 1}, "desc": "d"})),
            json!({"type": "custom", "data": {"k": 1}, "desc": "d"})
        );
        assert_eq!(
            b("App:Card", json!({"card": 7})),
            json!({"type": "custom", "data": {"card": 7}, "desc": "App:Card"})
        );
        // Not relayed, or broken.
        assert_eq!(canonical_body("RC:GrpNtf", "{}").unwrap(), None);
        assert_eq!(canonical_body("RC:RcCmd", "{}").unwrap(), None);
        assert!(canonical_body("RC:ImgMsg", "{}")
            .unwrap_err()
            .contains("imageUri"));
        assert!(canonical_body("RC:TxtMsg", "not json")
            .unwrap_err()
            .contains("JSON"));
    }

    #[test]
    fn other_channels_targeted_and_blocked_messages_are_acknowledged_without_events() {
        let txt = r#"{"content":"x"}"#;
        for extra in [
            vec![("channelType", "CHATROOM")],
            vec![("channelType", "ULTRAGROUP")],
            vec![("objectName", "RC:RcCmd")],
            vec![("sensitiveType", "1")],
            vec![
                ("channelType", "GROUP"),
                ("toUserId", "g1"),
                ("groupUserIds", "bob"),
            ],
        ] {
            let mut f = vec![("objectName", "RC:TxtMsg"), ("content", txt)];
            f.extend(extra.iter().copied());
            assert!(events(&body(&f)).unwrap().is_empty(), "{extra:?}");
        }
        // Malformed: said with the field.
        let e = events(&body(&[
            ("objectName", "RC:TxtMsg"),
            ("content", txt),
            ("msgUID", ""),
        ]))
        .unwrap_err();
        assert!(e.contains("msgUID"), "{e}");
        let e = events(&body(&[
            ("objectName", "RC:TxtMsg"),
            ("content", txt),
            ("msgTimestamp", "soon"),
        ]))
        .unwrap_err();
        assert!(e.contains("msgTimestamp"), "{e}");
        assert!(events(b"channelType=PERSON")
            .unwrap_err()
            .contains("objectName"));
    }
}
