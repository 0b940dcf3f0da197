//! One canonical record → one NetEase migration line: the inverse of
//! [`crate::providers::netease::dump::convert_line`], spelled the way seed 001's examples spell
//! it (see the parent module's doc for every choice).

use super::FileKind;
use crate::dumps::formats::format_of;
use serde_json::{Map, Number, Value};
use std::fmt;

/// Why a canonical record cannot be written as a NetEase line: the canonical field and the reason.
/// The caller keeps the record aside with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The canonical field at fault, as a path: `body.type`, `to`, `changes.name`, …
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
        Self::new(field, format!("must be {want}, not {}", describe(got)))
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.reason)
    }
}

impl std::error::Error for LineError {}

fn describe(v: &Value) -> String {
    crate::dumps::formats::describe(v)
}

/// A record as a line, with what the writer needs to file and count it.
pub(super) struct Encoded {
    pub line: String,
    pub kind: FileKind,
    pub msg_type: i64,
    pub at: i64,
    /// Canonical fields the line has no place for (written without them), as paths.
    pub left_out: Vec<String>,
}

/// The NetEase line of one canonical record: a `message` (conv `c2c` or `group`) or a
/// `group_event` gives `Some(line)` (compact JSON, no newline); the kinds these files do not carry
/// (`account`, `friend`, `block`, `group`, `member`, `conversation`) give `None`.
///
/// `tids` maps an old group id to its NetEase team id (the map the import builds when it creates
/// the teams); a group it does not know is an error naming the group. A record NetEase's format
/// cannot express is an error naming the canonical field and why.
pub fn line_of(
    record: &Value,
    tids: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, LineError> {
    Ok(encode(record, tids)?.map(|e| e.line))
}

pub(super) fn encode(
    record: &Value,
    tids: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Encoded>, LineError> {
    let Some(o) = record.as_object() else {
        return Err(LineError::type_(
            "kind",
            "a canonical record (a JSON object)",
            record,
        ));
    };
    match o.get("kind") {
        Some(Value::String(k)) => match k.as_str() {
            "message" => message(o, tids).map(Some),
            "group_event" => group_event(o, tids).map(Some),
            "account" | "friend" | "block" | "group" | "member" | "conversation" => Ok(None),
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

/// A JSON object written key by key, in the order given (serde_json's map sorts its keys).
struct Obj(String);

impl Obj {
    fn new() -> Self {
        Obj(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&Value::from(key).to_string());
        self.0.push(':');
    }

    fn put(&mut self, key: &str, v: &Value) {
        self.key(key);
        self.0.push_str(&v.to_string());
    }

    fn opt(&mut self, key: &str, v: Option<Value>) {
        if let Some(v) = v {
            self.put(key, &v);
        }
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.0.push_str(json);
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Field readers. Records come from staging, normalised by the canonical parser; the readers still
// accept the lenient forms the canonical format accepts (digit strings for integers).

/// A canonical id: a non-empty string. NetEase readers trim ids, so one with spaces at either end
/// would come back different: it is refused rather than changed.
fn id_field(o: &Map<String, Value>, field: &str, why: &str) -> Result<String, LineError> {
    match o.get(field) {
        None | Some(Value::Null) => Err(LineError::missing(field, why)),
        Some(Value::String(s)) => plain_id(field, s).map(str::to_string),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(LineError::type_(field, "a string id", other)),
    }
}

fn plain_id<'a>(field: &str, s: &'a str) -> Result<&'a str, LineError> {
    if s.is_empty() {
        return Err(LineError::new(field, "is empty"));
    }
    if s.trim() != s {
        return Err(LineError::new(
            field,
            format!("= {s:?} has spaces at its ends, which a NetEase reader trims away"),
        ));
    }
    Ok(s)
}

/// An account as NetEase names it (reference §5: at most 32 characters of letters, digits and
/// `_ @ . -`). The account mapping of the import, if any, has been applied before.
fn accid(o: &Map<String, Value>, field: &str, why: &str) -> Result<String, LineError> {
    let id = id_field(o, field, why)?;
    check_accid(field, &id)?;
    Ok(id)
}

fn opt_accid(o: &Map<String, Value>, field: &str) -> Result<Option<String>, LineError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        _ => accid(o, field, "").map(Some),
    }
}

fn check_accid(field: &str, id: &str) -> Result<(), LineError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-');
    if id.chars().count() > 32 || !id.chars().all(ok_char) {
        return Err(LineError::new(
            field,
            format!(
                "= {id:?} is not a NetEase account id (at most 32 letters, digits, `_`, `@`, `.` or `-`); map it before writing the files"
            ),
        ));
    }
    Ok(())
}

/// An id as the seed writes ids (`"msgid":1`, `"tid":1`): a number when it is one written
/// plainly (digits, no leading zero) that fits NetEase's 64-bit ids, else the string. A reader
/// gives back the same text either way.
fn id_json(id: &str) -> Value {
    let plain = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    match id.parse::<i64>() {
        Ok(n) if plain => Value::from(n),
        _ => Value::from(id),
    }
}

/// An integer: a JSON integer, or a string of digits as canonical records allow.
fn int(o: &Map<String, Value>, key: &str, field: &str) -> Result<Option<i64>, LineError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None => Err(LineError::type_(
                field,
                "an integer",
                &Value::Number(n.clone()),
            )),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| LineError::type_(field, "an integer", &Value::String(s.clone()))),
        Some(other) => Err(LineError::type_(field, "an integer", other)),
    }
}

/// A time in milliseconds (`createTime`). Seconds are refused: staged records are already in
/// milliseconds, so a 10-digit time is a record that was never normalised.
fn ms(o: &Map<String, Value>, field: &str) -> Result<i64, LineError> {
    match int(o, field, field)? {
        None => Err(LineError::missing(
            field,
            "NetEase's `createTime` is the time in milliseconds since 1970",
        )),
        Some(t) if t <= 0 => Err(LineError::new(
            field,
            format!("= {t}; a time must be positive milliseconds"),
        )),
        Some(t) if t < 10_000_000_000 => Err(LineError::new(
            field,
            format!("= {t} looks like seconds; `createTime` is milliseconds"),
        )),
        Some(t) => Ok(t),
    }
}

/// An optional string, trimmed; empty is absent (as a NetEase reader reads `name`, `title`).
fn text(o: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, LineError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(other) => Err(LineError::type_(field, "a string", other)),
    }
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
// Messages

/// `clientType` (reference §4.2): 1 AOS, 2 IOS, 4 PC, 8 WINPHONE, 16 WEB, 32 REST, 64 MAC.
fn client_type(client: &str) -> Option<u32> {
    Some(match client {
        "android" => 1,
        "ios" => 2,
        "pc" => 4,
        "winphone" => 8,
        "web" => 16,
        "server" => 32,
        "mac" => 64,
        _ => return None,
    })
}

/// What carries a message's content: the text in `body`, or `attach` as the JSON text of an
/// object (a string, as the seed's media examples give it) or as the object itself (as its custom
/// example does).
enum Content {
    Body(String),
    AttachText(String),
    AttachObject(Value),
}

fn message(
    o: &Map<String, Value>,
    tids: &dyn Fn(&str) -> Option<String>,
) -> Result<Encoded, LineError> {
    let mut left_out = Vec::new();
    others(
        o,
        &[
            "kind", "id", "conv", "from", "to", "sent_at", "client", "body", "ext",
        ],
        "",
        &mut left_out,
    );
    let id = id_field(o, "id", "it becomes the line's `msgid`")?;
    let group = match o.get("conv") {
        Some(Value::String(c)) if c == "c2c" => false,
        Some(Value::String(c)) if c == "group" => true,
        Some(Value::String(c)) => {
            return Err(LineError::new(
                "conv",
                format!("= {c:?}; NetEase's files hold c2c and group conversations only"),
            ))
        }
        None | Some(Value::Null) => {
            return Err(LineError::missing("conv", "c2c or group"));
        }
        Some(other) => return Err(LineError::type_("conv", "a string", other)),
    };
    let from = accid(o, "from", "the sender")?;
    let to = if group {
        tid_of(o, "to", tids)?
    } else {
        Value::from(accid(o, "to", "the receiver")?)
    };
    let at = ms(o, "sent_at")?;
    let client = match o.get("client") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(client_type(c).ok_or_else(|| {
            LineError::new(
                "client",
                format!("= {c:?} has no NetEase clientType; use android, ios, pc, winphone, web, server or mac"),
            )
        })?),
        Some(other) => return Err(LineError::type_("client", "a string", other)),
    };
    // The seed writes `ext` on every message ("ext.." or ""); a reader takes "" as none.
    let ext = match o.get("ext") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(LineError::type_("ext", "a string", other)),
    };
    let body = match o.get("body") {
        Some(Value::Object(b)) => b,
        None | Some(Value::Null) => {
            return Err(LineError::missing("body", "a message has a body"));
        }
        Some(other) => return Err(LineError::type_("body", "an object", other)),
    };
    let (msg_type, content) = body_of(body, &mut left_out)?;

    let (content_key, content_json) = match &content {
        Content::Body(t) => ("body", Value::from(t.as_str()).to_string()),
        Content::AttachText(t) => ("attach", Value::from(t.as_str()).to_string()),
        Content::AttachObject(v) => ("attach", v.to_string()),
    };
    let ext = Value::from(ext);
    let created = Value::from(at);
    let msgid = id_json(&id);
    let mut d = Obj::new();
    if group {
        // Seed, group messages: ext, createTime, clientType (a number), msgid, accid, body|attach, tid.
        d.put("ext", &ext);
        d.put("createTime", &created);
        d.opt("clientType", client.map(Value::from));
        d.put("msgid", &msgid);
        d.put("accid", &Value::from(from));
        d.raw(content_key, &content_json);
        d.put("tid", &to);
    } else if matches!(msg_type, 4 | 100) {
        // Seed, single-chat location and custom: attach, clientType, createTime, ext, msgid, from, to.
        d.raw(content_key, &content_json);
        d.opt("clientType", client.map(|c| Value::from(c.to_string())));
        d.put("createTime", &created);
        d.put("ext", &ext);
        d.put("msgid", &msgid);
        d.put("from", &Value::from(from));
        d.put("to", &to);
    } else {
        // Seed, other single-chat messages: ext, clientType (a string), createTime, msgid, from,
        // to, body|attach.
        d.put("ext", &ext);
        d.opt("clientType", client.map(|c| Value::from(c.to_string())));
        d.put("createTime", &created);
        d.put("msgid", &msgid);
        d.put("from", &Value::from(from));
        d.put("to", &to);
        d.raw(content_key, &content_json);
    }
    Ok(Encoded {
        line: top(d.end(), msg_type),
        kind: if group { FileKind::Team } else { FileKind::P2p },
        msg_type,
        at,
        left_out,
    })
}

fn top(data: String, msg_type: i64) -> String {
    format!("{{\"data\":{data},\"type\":{msg_type}}}")
}

/// The NetEase team id of the group named by `field`.
fn tid_of(
    o: &Map<String, Value>,
    field: &str,
    tids: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, LineError> {
    let group = id_field(o, field, "the group")?;
    let tid = tids(&group).ok_or_else(|| {
        LineError::new(
            field,
            format!("= {group:?}: the group has no NetEase team id (tid); create the team before writing its history"),
        )
    })?;
    let tid = plain_id(field, &tid).map_err(|e| {
        LineError::new(
            field,
            format!(
                "= {group:?}: its NetEase team id {tid:?} is unusable ({})",
                e.reason
            ),
        )
    })?;
    Ok(id_json(tid))
}

/// A media `url`: required, trimmed (a NetEase reader trims it).
fn url(b: &Map<String, Value>, what: &str) -> Result<Value, LineError> {
    match text(b, "url", "body.url")? {
        Some(u) => Ok(u.into()),
        None => Err(LineError::missing(
            "body.url",
            &format!("NetEase's {what} attachment is its file url"),
        )),
    }
}

/// `format` → `ext`, in the form a reader gives back ("jpg" from "JPG" or ".jpg"); a format that
/// is no file extension ("image/jpeg") has no place and is left out.
fn ext_of(b: &Map<String, Value>, left_out: &mut Vec<String>) -> Result<Option<Value>, LineError> {
    match b.get("format") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match format_of(s) {
            Some(f) => Ok(Some(f.into())),
            None => {
                if !s.trim().is_empty() {
                    left_out.push("body.format".into());
                }
                Ok(None)
            }
        },
        Some(other) => Err(LineError::type_("body.format", "a string", other)),
    }
}

fn int_value(b: &Map<String, Value>, key: &str) -> Result<Option<Value>, LineError> {
    Ok(int(b, key, &format!("body.{key}"))?.map(Value::from))
}

/// A coordinate, as the seed writes it: the decimal number as a string (`"lat":"39.89611"`).
fn coordinate(b: &Map<String, Value>, key: &str, limit: f64) -> Result<Value, LineError> {
    let field = format!("body.{key}");
    let n = match b.get(key) {
        Some(Value::Number(n)) => n.clone(),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .ok_or_else(|| LineError::type_(&field, "a number", &Value::String(s.clone())))?,
        None | Some(Value::Null) => {
            return Err(LineError::missing(&field, "a location needs lat and lng"))
        }
        Some(other) => return Err(LineError::type_(&field, "a number", other)),
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !(-limit..=limit).contains(&f) {
        return Err(LineError::new(
            field,
            format!("= {n} is outside [-{limit}, {limit}] degrees"),
        ));
    }
    Ok(Value::from(n.to_string()))
}

fn body_of(
    b: &Map<String, Value>,
    left_out: &mut Vec<String>,
) -> Result<(i64, Content), LineError> {
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
    let known: &[&str] = match t {
        "text" => &["type", "text"],
        "image" => &["type", "url", "name", "size", "width", "height", "format"],
        "audio" => &["type", "url", "size", "duration_ms", "format"],
        // NetEase's video attachment has no thumbnail (reference §2.5): `thumb_url` is left out
        // with the other fields a body has no place for.
        "video" => &["type", "url", "size", "duration_ms", "width", "height", "format"],
        "file" => &["type", "url", "name", "size", "format"],
        "location" => &["type", "lat", "lng", "title"],
        "custom" => &["type", "data", "desc"],
        "face" => {
            return Err(LineError::new(
                "body.type",
                "= \"face\": NetEase's files have no message type for a face (sticker); their types are 0 text, 1 image, 2 audio, 3 video, 4 location, 6 file and 100 custom",
            ))
        }
        other => {
            return Err(LineError::new(
                "body.type",
                format!("= {other:?} is not a canonical body type NetEase has a message type for"),
            ))
        }
    };
    others(b, known, "body.", left_out);
    // Attachment keys in the order of the seed's example of each type.
    let mut a = Obj::new();
    let msg_type = match t {
        "text" => {
            return match b.get("text") {
                Some(Value::String(s)) => Ok((0, Content::Body(s.clone()))),
                None | Some(Value::Null) => Err(LineError::missing(
                    "body.text",
                    "a text message (type 0) carries its text in `body`",
                )),
                Some(other) => Err(LineError::type_("body.text", "a string", other)),
            };
        }
        "image" => {
            // h, ext, size, w, name, url
            let url = url(b, "image")?;
            a.opt("h", int_value(b, "height")?);
            a.opt("ext", ext_of(b, left_out)?);
            a.opt("size", int_value(b, "size")?);
            a.opt("w", int_value(b, "width")?);
            a.opt("name", text(b, "name", "body.name")?.map(Value::from));
            a.put("url", &url);
            1
        }
        "audio" => {
            // size, ext, dur, url; `dur` is milliseconds.
            let url = url(b, "audio")?;
            a.opt("size", int_value(b, "size")?);
            a.opt("ext", ext_of(b, left_out)?);
            a.opt("dur", int_value(b, "duration_ms")?);
            a.put("url", &url);
            2
        }
        "video" => {
            // h, w, size, ext, dur, url
            let url = url(b, "video")?;
            a.opt("h", int_value(b, "height")?);
            a.opt("w", int_value(b, "width")?);
            a.opt("size", int_value(b, "size")?);
            a.opt("ext", ext_of(b, left_out)?);
            a.opt("dur", int_value(b, "duration_ms")?);
            a.put("url", &url);
            3
        }
        "location" => {
            // lng, title, lat: the coordinates as strings, as the seed writes them.
            let lat = coordinate(b, "lat", 90.0)?;
            let lng = coordinate(b, "lng", 180.0)?;
            a.put("lng", &lng);
            a.opt("title", text(b, "title", "body.title")?.map(Value::from));
            a.put("lat", &lat);
            4
        }
        "file" => {
            // size, ext, url in the seed (which has no name; it goes before url, as an image's).
            let url = url(b, "file")?;
            a.opt("size", int_value(b, "size")?);
            a.opt("ext", ext_of(b, left_out)?);
            a.opt("name", text(b, "name", "body.name")?.map(Value::from));
            a.put("url", &url);
            6
        }
        _ => {
            // custom: the app's payload is `attach`, whole. An object is written as the object (the
            // seed's example); any other value as its JSON text, which a reader parses back to it.
            let data = match b.get("data") {
                Some(v) if !v.is_null() => v,
                _ => {
                    return Err(LineError::missing(
                        "body.data",
                        "a custom message (type 100) carries its payload in `attach`, and null cannot be told from no payload",
                    ))
                }
            };
            // NetEase has no field for `desc` of its own: a reader takes it from the payload's
            // `desc`. Another one is left out.
            if let Some(desc) = b.get("desc").filter(|d| !d.is_null()) {
                if data.get("desc") != Some(desc) {
                    left_out.push("body.desc".into());
                }
            }
            let content = match data {
                Value::Object(_) => Content::AttachObject(data.clone()),
                other => Content::AttachText(other.to_string()),
            };
            return Ok((100, content));
        }
    };
    Ok((msg_type, Content::AttachText(a.end())))
}

// ---------------------------------------------------------------------------------------------
// Group events → team notifications 101–110

fn group_event(
    o: &Map<String, Value>,
    tids: &dyn Fn(&str) -> Option<String>,
) -> Result<Encoded, LineError> {
    let mut left_out = Vec::new();
    others(
        o,
        &[
            "kind", "id", "group", "actor", "target", "event", "at", "changes",
        ],
        "",
        &mut left_out,
    );
    let id = id_field(o, "id", "it becomes the line's `msgid`")?;
    let event = match o.get("event") {
        Some(Value::String(e)) => e.as_str(),
        None | Some(Value::Null) => {
            return Err(LineError::missing("event", "what happened in the group"))
        }
        Some(other) => return Err(LineError::type_("event", "a string", other)),
    };
    // (type, whether a target is required)
    let (msg_type, with_target) = match event {
        "member_invited" => (101, true),
        "member_kicked" => (102, true),
        "member_muted" => (103, true),
        "member_unmuted" => (104, true),
        "admin_added" => (105, true),
        "admin_removed" => (106, true),
        "info_changed" => (107, false),
        "owner_transferred" => (108, true),
        "member_left" => (109, false),
        "dismissed" => (110, false),
        other => {
            return Err(LineError::new(
                "event",
                format!("= {other:?} has no NetEase team notification type (101–110)"),
            ))
        }
    };
    let tid = tid_of(o, "group", tids)?;
    let at = ms(o, "at")?;
    let actor = accid(
        o,
        "actor",
        "a NetEase team notification names who did it (`accid`)",
    )?;
    let target = opt_accid(o, "target")?;
    let (accid, accid2) = if with_target {
        let target = target.ok_or_else(|| {
            LineError::missing(
                "target",
                &format!("a NetEase {event} notification ({msg_type}) names the member it concerns in `accid2`"),
            )
        })?;
        if msg_type == 101 {
            // The seed's 101 ("B 被 A 拉进群"): `accid` is the invited member, `accid2` the inviter.
            (target, Some(actor))
        } else {
            (actor, Some(target))
        }
    } else {
        if target.is_some() {
            left_out.push("target".into());
        }
        (actor, None)
    };
    let tinfo = if msg_type == 107 {
        Some(tinfo(o.get("changes"), &tid)?)
    } else {
        if o.get("changes").is_some_and(|c| !c.is_null()) {
            left_out.push("changes".into());
        }
        None
    };
    // Seed order: accid2, createTime, clientType, tinfo, msgid, accid, tid. A group event has no
    // client, so no clientType.
    let mut d = Obj::new();
    d.opt("accid2", accid2.map(Value::from));
    d.put("createTime", &Value::from(at));
    if let Some(t) = tinfo {
        d.raw("tinfo", &t);
    }
    d.put("msgid", &id_json(&id));
    d.put("accid", &Value::from(accid));
    d.put("tid", &tid);
    Ok(Encoded {
        line: top(d.end(), msg_type),
        kind: FileKind::TeamNotification,
        msg_type,
        at,
        left_out,
    })
}

/// `changes` → `tinfo`: the keys "14".."24" in order, values as strings (the seed's
/// `{"16":"0","tid":1}`), then `tid`, which NetEase requires.
fn tinfo(changes: Option<&Value>, tid: &Value) -> Result<String, LineError> {
    let changes = match changes {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(other) => return Err(LineError::type_("changes", "an object", other)),
    };
    let mut keyed: Vec<(u32, String)> = Vec::new();
    for (name, v) in &changes {
        let field = format!("changes.{name}");
        let text = || -> Result<String, LineError> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(LineError::type_(&field, "a string", other)),
            }
        };
        let pick = |names: &[&str]| -> Result<String, LineError> {
            let s = match v {
                Value::String(s) => s.as_str(),
                Value::Bool(true) if names == ["false", "true"] => "true",
                Value::Bool(false) if names == ["false", "true"] => "false",
                other => return Err(LineError::type_(&field, "a string", other)),
            };
            names
                .iter()
                .position(|n| *n == s)
                .map(|i| i.to_string())
                .ok_or_else(|| {
                    LineError::new(
                        &field,
                        format!("= {s:?}; NetEase's tinfo takes {}", names.join(", ")),
                    )
                })
        };
        let (key, value) = match name.as_str() {
            "intro" => (14, text()?),
            "notice" => (15, text()?),
            "join" => (16, pick(&["free", "need_permission", "disabled"])?),
            "muted" => (17, pick(&["false", "true"])?),
            "custom" => (18, text()?),
            "server_custom" => (19, text()?),
            "avatar" => (20, text()?),
            "invitee_consent" => (21, pick(&["required", "not_required"])?),
            "invite_by" => (22, pick(&["admin", "all"])?),
            "edit_info_by" => (23, pick(&["admin", "all"])?),
            "edit_custom_by" => (24, pick(&["admin", "all"])?),
            other => match other.strip_prefix("netease.").map(|k| (k, k.parse::<u32>())) {
                // A key a NetEase reader kept under its number goes back under it.
                Some((k, Ok(n))) if !(14..=24).contains(&n) && k == n.to_string() => {
                    (n, text()?)
                }
                _ => {
                    return Err(LineError::new(
                        field,
                        "has no key in NetEase's tinfo (\"14\" intro, \"15\" notice, \"16\" join, \"17\" muted, \"18\" custom, \"19\" server_custom, \"20\" avatar, \"21\" invitee_consent, \"22\" invite_by, \"23\" edit_info_by, \"24\" edit_custom_by)",
                    ))
                }
            },
        };
        keyed.push((key, value));
    }
    keyed.sort_by_key(|(k, _)| *k);
    let mut t = Obj::new();
    for (k, v) in keyed {
        t.put(&k.to_string(), &Value::from(v));
    }
    t.put("tid", tid);
    Ok(t.end())
}
