//! One canonical message → the message IMLib's local insert takes: objectName and content per
//! reference §2.6, the time in milliseconds, and a message UID derived from the message's
//! identity (see the parent module's doc for every choice).

use crate::dumps::formats::format_of;
use crate::providers::rongcloud::rules::{check_group_id, check_user_id};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// The objectName custom bodies are written under: the new app registers a message type of
/// this name (or rewrites these lines into its own types) before inserting them. It does not
/// start with `RC:` (reserved for RongCloud's own types, §4) and fits 32 characters.
pub const CUSTOM_OBJECT_NAME: &str = "App:Custom";

/// Every objectName a line can have, in the order the manifest counts them.
pub const OBJECT_NAMES: [&str; 8] = [
    "RC:TxtMsg",
    "RC:ImgMsg",
    "RC:GIFMsg",
    "RC:HQVCMsg",
    "RC:SightMsg",
    "RC:FileMsg",
    "RC:LBSMsg",
    CUSTOM_OBJECT_NAME,
];

/// IMLib's `ConversationType_PRIVATE` and `ConversationType_GROUP`.
pub const PRIVATE: u8 = 1;
pub const GROUP: u8 = 3;
/// IMLib's `MessageDirection_SEND` and `MessageDirection_RECEIVE`.
pub const SENT: u8 = 1;
pub const RECEIVED: u8 = 2;

/// Why a canonical record cannot go into the bundles: the canonical field at fault and why.
/// The build keeps the record aside with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// `body.type`, `from`, `to`, `sent_at`, …
    pub field: String,
    /// Why, in a sentence that reads after the field.
    pub reason: String,
}

impl LineError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        LineError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn missing(field: &str, why: &str) -> Self {
        Self::new(field, format!("is required: {why}"))
    }

    fn type_(field: &str, want: &str, got: &Value) -> Self {
        Self::new(
            field,
            format!(
                "must be {want}, not {}",
                crate::dumps::formats::describe(got)
            ),
        )
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.reason)
    }
}

impl std::error::Error for LineError {}

/// A message ready to be written: what every copy shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub group: bool,
    /// The sender's userId.
    pub from: String,
    /// The receiver's userId, or the RongCloud group id.
    pub to: String,
    /// Index into [`OBJECT_NAMES`].
    pub object: usize,
    /// The content object, serialised once for every copy.
    pub content: String,
    /// Milliseconds since 1970.
    pub sent_time: i64,
    pub uid: String,
    /// Canonical fields the message has no place for, as paths.
    pub left_out: Vec<String>,
}

impl Message {
    pub fn object_name(&self) -> &'static str {
        OBJECT_NAMES[self.object]
    }

    /// The line of this message in `owner`'s user file: `targetId` is the other account and
    /// the direction is `owner`'s. A message to oneself is sent, with oneself as target.
    pub fn user_line(&self, owner: &str) -> String {
        debug_assert!(!self.group);
        let (target, direction) = if owner == self.from {
            (&self.to, SENT)
        } else {
            (&self.from, RECEIVED)
        };
        self.line(PRIVATE, target, Some(direction))
    }

    /// The line of this message in its group's file: no direction, which depends on who reads
    /// it (the app compares `senderUserId` with the signed-in user).
    pub fn group_line(&self) -> String {
        debug_assert!(self.group);
        self.line(GROUP, &self.to, None)
    }

    fn line(&self, conversation_type: u8, target: &str, direction: Option<u8>) -> String {
        // Written key by key so that every line reads in the same order.
        let s = |v: &str| Value::from(v).to_string();
        let direction = direction
            .map(|d| format!(",\"messageDirection\":{d}"))
            .unwrap_or_default();
        format!(
            "{{\"conversationType\":{conversation_type},\"targetId\":{},\"senderUserId\":{}{direction},\"objectName\":{},\"content\":{},\"sentTime\":{},\"messageUId\":{}}}",
            s(target),
            s(&self.from),
            s(self.object_name()),
            self.content,
            self.sent_time,
            s(&self.uid),
        )
    }
}

/// The RongCloud-shaped message UID of a canonical message (`XXXX-XXXX-XXXX-XXXX`, as
/// RongCloud's own look, §2.5): the first 80 bits of SHA-256 over the message's canonical
/// identity (conv, id, from, to, sent_at: two records with the same five are one message), in
/// RFC 4648 base32. Stable across builds, and the same in both participants' files.
pub fn message_uid(conv: &str, id: &str, from: &str, to: &str, sent_at: i64) -> String {
    let mut h = Sha256::new();
    for part in ["imshift-rongcloud-uid", conv, id, from, to] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(sent_at.to_string().as_bytes());
    let digest = h.finalize();
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // 10 bytes = 80 bits = 16 base32 digits of 5 bits.
    let bits = digest[..10]
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let d = (bits >> (75 - 5 * i)) & 31;
        out.push(ALPHABET[d as usize] as char);
    }
    out
}

/// The message of one canonical record: a `message` gives `Some`; a `group_event` and the
/// kinds that are no history give `None` (the bundles do not carry them). `group_ids` maps an
/// old group id to the RongCloud one where the import chose another (RongCloud keeps the old
/// ids, so it usually knows none).
pub fn encode(
    record: &Value,
    group_ids: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Message>, LineError> {
    let Some(o) = record.as_object() else {
        return Err(LineError::type_(
            "kind",
            "a canonical record (a JSON object)",
            record,
        ));
    };
    match o.get("kind") {
        Some(Value::String(k)) => match k.as_str() {
            "message" => message(o, group_ids).map(Some),
            "group_event" | "account" | "friend" | "block" | "group" | "member"
            | "conversation" => Ok(None),
            other => Err(LineError::new(
                "kind",
                format!("= {other:?} is not a canonical kind"),
            )),
        },
        None | Some(Value::Null) => Err(LineError::missing(
            "kind",
            "a canonical record says what it is",
        )),
        Some(other) => Err(LineError::type_("kind", "a string", other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Field readers: records come from staging, normalised by the canonical parser; digit strings
// for integers are still accepted, as the canonical format accepts them.

fn string<'a>(
    o: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a str>, LineError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(LineError::type_(path, "a string", other)),
    }
}

fn id_field(o: &Map<String, Value>, field: &str, why: &str) -> Result<String, LineError> {
    match o.get(field) {
        None | Some(Value::Null) => Err(LineError::missing(field, why)),
        Some(Value::String(s)) if s.is_empty() => Err(LineError::new(field, "is empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(LineError::type_(field, "a string id", other)),
    }
}

/// An account as RongCloud names it (§2.1). The import registered accounts under their old
/// ids; one RongCloud refuses was never registered, so no device signs in as it.
fn user_id(o: &Map<String, Value>, field: &str, why: &str) -> Result<String, LineError> {
    let id = id_field(o, field, why)?;
    check_user_id(&id).map_err(|e| {
        LineError::new(
            field,
            format!("= {id:?} is not a RongCloud userId ({e}): the import could not register it, so no device of it inserts this message; map the id and import again"),
        )
    })?;
    Ok(id)
}

fn int(b: &Map<String, Value>, key: &str) -> Result<Option<i64>, LineError> {
    let path = format!("body.{key}");
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| LineError::type_(&path, "an integer", &Value::Number(n.clone()))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| LineError::type_(&path, "an integer", &Value::String(s.clone()))),
        Some(other) => Err(LineError::type_(&path, "an integer", other)),
    }
}

fn number(b: &Map<String, Value>, key: &str, limit: f64) -> Result<f64, LineError> {
    let path = format!("body.{key}");
    let n = match b.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        None | Some(Value::Null) => {
            return Err(LineError::missing(&path, "a location needs lat and lng"))
        }
        Some(other) => return Err(LineError::type_(&path, "a number", other)),
    };
    match n {
        Some(n) if (-limit..=limit).contains(&n) => Ok(n),
        Some(n) => Err(LineError::new(
            path,
            format!("= {n} is outside [-{limit}, {limit}] degrees"),
        )),
        None => Err(LineError::type_(&path, "a number", &b[key])),
    }
}

/// `sentTime`: milliseconds. IMLib places an inserted message by it, so a time that looks like
/// seconds (before April 1970 in milliseconds) is refused rather than shown in 1970.
fn sent_time(o: &Map<String, Value>) -> Result<i64, LineError> {
    let t = match o.get("sent_at") {
        None | Some(Value::Null) => {
            return Err(LineError::missing(
                "sent_at",
                "IMLib's insert needs the message's sentTime in milliseconds",
            ))
        }
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| LineError::type_("sent_at", "an integer", &o["sent_at"]))?;
    if t < 10_000_000_000 {
        return Err(LineError::new(
            "sent_at",
            format!("= {t} looks like seconds; sentTime is milliseconds since 1970"),
        ));
    }
    Ok(t)
}

/// Keys of `o` outside `known`, as paths under `prefix`.
fn others(o: &Map<String, Value>, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    out.extend(
        o.keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| format!("{prefix}{k}")),
    );
}

// ---------------------------------------------------------------------------------------------

fn message(
    o: &Map<String, Value>,
    group_ids: &dyn Fn(&str) -> Option<String>,
) -> Result<Message, LineError> {
    let mut left_out = Vec::new();
    // `client`: a local message has no sending platform.
    others(
        o,
        &["kind", "id", "conv", "from", "to", "sent_at", "body", "ext"],
        "",
        &mut left_out,
    );
    let id = id_field(o, "id", "the message UID is derived from it")?;
    let conv = match o.get("conv") {
        Some(Value::String(c)) if c == "c2c" || c == "group" => c.as_str(),
        Some(Value::String(c)) => {
            return Err(LineError::new(
                "conv",
                format!("= {c:?}; the bundles hold c2c and group conversations only"),
            ))
        }
        None | Some(Value::Null) => return Err(LineError::missing("conv", "c2c or group")),
        Some(other) => return Err(LineError::type_("conv", "a string", other)),
    };
    let group = conv == "group";
    let from = user_id(o, "from", "the sender (senderUserId)")?;
    let old_to = id_field(o, "to", "the receiver or the group")?;
    let to = if group {
        // RongCloud keeps the app's group ids, so the import kept the old one unless it
        // recorded another.
        let g = group_ids(&old_to).unwrap_or_else(|| old_to.clone());
        check_group_id(&g).map_err(|e| {
            LineError::new(
                "to",
                format!("= {old_to:?}: {g:?} is not a RongCloud groupId ({e}), so the import could not create the group and no device has the conversation"),
            )
        })?;
        g
    } else {
        user_id(o, "to", "the receiver")?
    };
    let sent_time = sent_time(o)?;
    let ext = string(o, "ext", "ext")?.filter(|e| !e.is_empty());
    let body = match o.get("body") {
        Some(Value::Object(b)) => b,
        None | Some(Value::Null) => return Err(LineError::missing("body", "a message has a body")),
        Some(other) => return Err(LineError::type_("body", "an object", other)),
    };
    let (object, mut content) = content_of(body, &mut left_out)?;
    // Every content struct carries `extra` (§2.6): the record's `ext` goes there.
    if let Some(ext) = ext {
        content.insert("extra".into(), ext.into());
    }
    Ok(Message {
        group,
        uid: message_uid(conv, &id, &from, &old_to, sent_time),
        from,
        to,
        object,
        content: Value::Object(content).to_string(),
        sent_time,
        left_out,
    })
}

/// The last path segment of a URL, as a file name a media message can show.
fn file_name_of(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .next()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .map(str::to_string)
}

/// Milliseconds → whole seconds, rounded up: RongCloud's `duration` is seconds (§2.6), and a
/// 300 ms clip is 1 s, not 0.
fn seconds(ms: i64) -> i64 {
    (ms.max(0) + 999) / 1000
}

fn content_of(
    b: &Map<String, Value>,
    left_out: &mut Vec<String>,
) -> Result<(usize, Map<String, Value>), LineError> {
    let t = match b.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None | Some(Value::Null) => {
            return Err(LineError::missing(
                "body.type",
                "what kind of message it is",
            ))
        }
        Some(other) => return Err(LineError::type_("body.type", "a string", other)),
    };
    let url = |what: &str| -> Result<String, LineError> {
        match string(b, "url", "body.url")?.map(str::trim) {
            Some(u) if !u.is_empty() => Ok(u.to_string()),
            _ => Err(LineError::missing(
                "body.url",
                &format!("a RongCloud {what} message points at its file"),
            )),
        }
    };
    let mut c = Map::new();
    let (object, known): (&str, &[&str]) = match t {
        "text" => {
            let text = string(b, "text", "body.text")?.ok_or_else(|| {
                LineError::missing("body.text", "RC:TxtMsg carries the text in `content`")
            })?;
            c.insert("content".into(), text.into());
            ("RC:TxtMsg", &["type", "text"])
        }
        "image" => {
            let url = url("image")?;
            let gif = string(b, "format", "body.format")?
                .and_then(format_of)
                .is_some_and(|f| f == "gif");
            if gif {
                // RC:GIFMsg keeps the size and dimensions an image has (§2.6).
                c.insert("remoteUrl".into(), url.into());
                for (from, to) in [("size", "gifDataSize"), ("width", "width"), ("height", "height")] {
                    if let Some(n) = int(b, from)? {
                        c.insert(to.into(), n.into());
                    }
                }
                ("RC:GIFMsg", &["type", "url", "size", "width", "height", "format"])
            } else {
                // `content` is a base64 thumbnail, which imshift does not make (it never
                // fetches media): empty, and the app loads the image from `imageUri`.
                c.insert("content".into(), "".into());
                c.insert("imageUri".into(), url.into());
                ("RC:ImgMsg", &["type", "url"])
            }
        }
        "audio" => {
            // RC:HQVCMsg, the current voice message, plays from a URL; RC:VcMsg would need the
            // audio itself in base64.
            c.insert("remoteUrl".into(), url("voice")?.into());
            if let Some(ms) = int(b, "duration_ms")? {
                c.insert("duration".into(), seconds(ms).into());
            }
            ("RC:HQVCMsg", &["type", "url", "duration_ms"])
        }
        "video" => {
            let url = url("short video (RC:SightMsg)")?;
            // `content` is a base64 thumbnail: empty, as for images (`thumb_url` has no place).
            c.insert("content".into(), "".into());
            if let Some(n) = file_name_of(&url) {
                c.insert("name".into(), n.into());
            }
            c.insert("sightUrl".into(), url.into());
            if let Some(ms) = int(b, "duration_ms")? {
                c.insert("duration".into(), seconds(ms).into());
            }
            if let Some(n) = int(b, "size")? {
                c.insert("size".into(), n.into());
            }
            ("RC:SightMsg", &["type", "url", "duration_ms", "size"])
        }
        "file" => {
            let url = url("file")?;
            let name = string(b, "name", "body.name")?
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .or_else(|| file_name_of(&url));
            // `type` is the extension: the record's format, else the name's.
            let ext = string(b, "format", "body.format")?
                .and_then(format_of)
                .or_else(|| name.as_deref().filter(|n| n.contains('.')).and_then(format_of));
            if let Some(n) = name {
                c.insert("name".into(), n.into());
            }
            if let Some(n) = int(b, "size")? {
                c.insert("size".into(), n.into());
            }
            if let Some(e) = ext {
                c.insert("type".into(), e.into());
            }
            c.insert("fileUrl".into(), url.into());
            ("RC:FileMsg", &["type", "url", "name", "size", "format"])
        }
        "location" => {
            let lat = number(b, "lat", 90.0)?;
            let lng = number(b, "lng", 180.0)?;
            // `content` is a base64 map thumbnail: empty (imshift draws no maps).
            c.insert("content".into(), "".into());
            c.insert("latitude".into(), json!(lat));
            c.insert("longitude".into(), json!(lng));
            let poi = string(b, "title", "body.title")?.unwrap_or_default();
            c.insert("poi".into(), poi.into());
            ("RC:LBSMsg", &["type", "lat", "lng", "title"])
        }
        "custom" => {
            // The app's own payload, under the objectName the new app registers for it: the
            // payload whole in `data` (any JSON), and `desc` beside it.
            c.insert(
                "data".into(),
                b.get("data").cloned().unwrap_or(Value::Null),
            );
            if let Some(d) = string(b, "desc", "body.desc")? {
                c.insert("desc".into(), d.into());
            }
            (CUSTOM_OBJECT_NAME, &["type", "data", "desc"])
        }
        "face" => {
            return Err(LineError::new(
                "body.type",
                "= \"face\": RongCloud has no built-in message type for a face (a sticker by index, with no image URL; reference §2.6 lists none), so IMLib cannot insert it; the app may send stickers as a custom type of its own",
            ))
        }
        other => {
            return Err(LineError::new(
                "body.type",
                format!("= {other:?} is not a canonical body type RongCloud has a message type for"),
            ))
        }
    };
    others(b, known, "body.", left_out);
    let index = OBJECT_NAMES
        .iter()
        .position(|n| *n == object)
        .expect("every objectName is listed");
    Ok((index, c))
}
