//! canonical-dump-v1: one JSON record per line. Parsing checks each line on its own (syntax,
//! required fields, types, values) and keeps what the cross-record checks need.

use super::{severity_of, Finding};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Account,
    Friend,
    Block,
    Group,
    Member,
    Message,
    GroupEvent,
    Conversation,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Account,
        Kind::Friend,
        Kind::Block,
        Kind::Group,
        Kind::Member,
        Kind::Message,
        Kind::GroupEvent,
        Kind::Conversation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Friend => "friend",
            Kind::Block => "block",
            Kind::Group => "group",
            Kind::Member => "member",
            Kind::Message => "message",
            Kind::GroupEvent => "group_event",
            Kind::Conversation => "conversation",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "account" => Kind::Account,
            "friend" => Kind::Friend,
            "block" => Kind::Block,
            "group" => Kind::Group,
            "member" => Kind::Member,
            "message" => Kind::Message,
            "group_event" => Kind::GroupEvent,
            "conversation" => Kind::Conversation,
            _ => return None,
        })
    }

    /// The fields the format defines for this kind (others are kept in `extra` with a warning).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Account => &[
                "id",
                "nick",
                "avatar",
                "gender",
                "birthday",
                "signature",
                "location",
                "created_at",
                "custom",
            ],
            Kind::Friend => &["owner", "friend", "remark", "groups", "source", "added_at"],
            Kind::Block => &["owner", "blocked", "at"],
            Kind::Group => &[
                "id",
                "type",
                "name",
                "owner",
                "intro",
                "notice",
                "avatar",
                "created_at",
                "max_members",
                "join",
                "muted",
                "custom",
            ],
            Kind::Member => &[
                "group",
                "account",
                "role",
                "joined_at",
                "nick",
                "muted_until",
                "unread",
            ],
            Kind::Message => &[
                "id", "conv", "from", "to", "sent_at", "client", "body", "ext",
            ],
            Kind::GroupEvent => &["id", "group", "actor", "target", "event", "at", "changes"],
            Kind::Conversation => &["owner", "conv", "peer", "last_at", "unread", "pinned"],
        }
    }
}

/// What cross-record validation needs from one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Refs {
    Account {
        id: String,
    },
    Friend {
        owner: String,
        friend: String,
    },
    Block {
        owner: String,
        blocked: String,
    },
    Group {
        id: String,
        owner: String,
        group_type: String,
    },
    Member {
        group: String,
        account: String,
        role: String,
        joined_at: Option<i64>,
    },
    Message {
        id: String,
        group: bool,
        from: String,
        to: String,
        sent_at: i64,
        /// The body's JSON size when it may exceed [`BODY_EXACT_ABOVE`]; else an upper bound.
        body_bytes: usize,
    },
    GroupEvent {
        group: String,
        actor: Option<String>,
        target: Option<String>,
        at: i64,
    },
    Conversation {
        owner: String,
        peer: String,
        group: bool,
    },
}

/// Message bodies are measured exactly only in lines longer than this (no target takes more).
pub const BODY_EXACT_ABOVE: usize = 8 * 1024;

/// Where findings go, and which unknown fields were already reported.
pub struct Sink<'a> {
    pub file: &'a str,
    pub findings: &'a mut Vec<Finding>,
    pub unknown_seen: &'a mut HashSet<(Kind, String)>,
}

impl Sink<'_> {
    fn push(&mut self, code: &'static str, line: u64, message: String) {
        self.findings.push(Finding {
            code,
            severity: severity_of(code),
            file: self.file.to_string(),
            line,
            message,
            excerpt: String::new(),
            converted: None,
        });
    }
}

/// A failed line: the finding is already recorded.
pub struct Rejected;

/// A line that parsed: what it is, what the cross-record checks need, and the canonical record
/// itself, normalised (digit strings and seconds became millisecond integers).
#[derive(Debug)]
pub struct Parsed<'a> {
    pub kind: Kind,
    pub refs: Refs,
    /// The record's JSON: the line as it was when nothing needed normalising.
    pub record: Cow<'a, str>,
    /// `body.type` of a message.
    pub body_type: Option<&'static str>,
    /// The user's own line when the record was converted from a vendor format (set by the
    /// reader, cut to a few KB); `None` for a canonical line, which is its record.
    pub raw: Option<Cow<'a, str>>,
}

/// A value the parser accepted in a lenient form and writes back in the canonical one.
struct Fix {
    in_body: bool,
    field: String,
    value: Value,
}

struct Rec<'a> {
    obj: &'a Map<String, Value>,
    kind: Kind,
    line: u64,
    in_body: bool,
    fixes: &'a RefCell<Vec<Fix>>,
}

impl Rec<'_> {
    fn fix(&self, field: &str, value: Value) {
        self.fixes.borrow_mut().push(Fix {
            in_body: self.in_body,
            field: field.to_string(),
            value,
        });
    }

    fn err(&self, sink: &mut Sink, code: &'static str, msg: String) -> Rejected {
        sink.push(code, self.line, format!("{}: {msg}", self.kind.as_str()));
        Rejected
    }

    fn id(&self, sink: &mut Sink, field: &str, required: bool) -> Result<Option<String>, Rejected> {
        match self.obj.get(field) {
            None | Some(Value::Null) if required => {
                Err(self.err(sink, "field.missing", format!("`{field}` is required")))
            }
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                if s.is_empty() || s.len() > 64 || s.chars().any(char::is_control) {
                    Err(self.err(
                        sink,
                        "id.invalid",
                        format!(
                            "`{field}` = {s:?}: an id is 1 to 64 bytes with no control characters"
                        ),
                    ))
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some(Value::Number(n)) => Err(self.err(
                sink,
                "field.type",
                format!("`{field}` is the number {n}; ids are strings (write \"{n}\")"),
            )),
            Some(other) => Err(self.err(
                sink,
                "field.type",
                format!("`{field}` must be a string id, not {}", type_name(other)),
            )),
        }
    }

    fn req_id(&self, sink: &mut Sink, field: &str) -> Result<String, Rejected> {
        Ok(self.id(sink, field, true)?.unwrap_or_default())
    }

    fn string(&self, sink: &mut Sink, field: &str) -> Result<Option<String>, Rejected> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(
                sink,
                "field.type",
                format!("`{field}` must be a string, not {}", type_name(other)),
            )),
        }
    }

    fn one_of(
        &self,
        sink: &mut Sink,
        field: &str,
        allowed: &[&str],
        required: bool,
    ) -> Result<Option<String>, Rejected> {
        match self.string(sink, field)? {
            None if required => Err(self.err(
                sink,
                "field.missing",
                format!("`{field}` is required (one of {})", allowed.join(", ")),
            )),
            None => Ok(None),
            Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
            Some(v) => Err(self.err(
                sink,
                "field.value",
                format!("`{field}` = {v:?}; use one of {}", allowed.join(", ")),
            )),
        }
    }

    fn int(&self, sink: &mut Sink, field: &str) -> Result<Option<i64>, Rejected> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::String(s))
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() < 19 =>
            {
                let v: Option<i64> = s.parse().ok();
                if let Some(v) = v {
                    self.fix(field, Value::from(v));
                }
                Ok(v)
            }
            Some(other) => Err(self.err(
                sink,
                "field.type",
                format!("`{field}` must be an integer, not {}", type_name(other)),
            )),
        }
    }

    /// Milliseconds; digit strings are accepted, 10-digit seconds are converted with a warning.
    fn ms(&self, sink: &mut Sink, field: &str, required: bool) -> Result<Option<i64>, Rejected> {
        let v = match self.int(sink, field)? {
            None if required => {
                return Err(self.err(
                    sink,
                    "field.missing",
                    format!("`{field}` is required (milliseconds since 1970)"),
                ))
            }
            None => return Ok(None),
            Some(v) => v,
        };
        if v <= 0 {
            return Err(self.err(
                sink,
                "field.value",
                format!("`{field}` = {v}; a time must be positive milliseconds"),
            ));
        }
        if v < 10_000_000_000 {
            sink.push(
                "time.seconds",
                self.line,
                format!(
                    "{}: `{field}` = {v} looks like seconds; read as {} ms",
                    self.kind.as_str(),
                    v * 1000
                ),
            );
            self.fix(field, Value::from(v * 1000));
            return Ok(Some(v * 1000));
        }
        if v > 32_503_680_000_000 {
            return Err(self.err(
                sink,
                "field.value",
                format!("`{field}` = {v} is after the year 3000; check the unit"),
            ));
        }
        Ok(Some(v))
    }

    fn typed(
        &self,
        sink: &mut Sink,
        field: &str,
        want: fn(&Value) -> bool,
        what: &str,
    ) -> Result<(), Rejected> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(()),
            Some(v) if want(v) => Ok(()),
            Some(v) => Err(self.err(
                sink,
                "field.type",
                format!("`{field}` must be {what}, not {}", type_name(v)),
            )),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.values().all(Value::is_string))
}

/// Parses one line. `Ok(None)` for a blank line.
pub fn parse_line<'a>(
    bytes: &'a [u8],
    line: u64,
    sink: &mut Sink,
) -> Result<Option<Parsed<'a>>, Rejected> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            sink.push(
                "utf8.invalid",
                line,
                format!("byte {} of the line is not UTF-8", e.valid_up_to() + 1),
            );
            return Err(Rejected);
        }
    };
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let excerpt: String = text.chars().take(80).collect();
            sink.push(
                "json.syntax",
                line,
                format!("{e} (line starts: {excerpt:?})"),
            );
            return Err(Rejected);
        }
    };
    let Some(obj) = value.as_object() else {
        sink.push(
            "json.syntax",
            line,
            format!("the line is {}, not a JSON object", type_name(&value)),
        );
        return Err(Rejected);
    };
    let kind = match obj.get("kind") {
        None => {
            sink.push("record.kind_missing", line, "no `kind` field".into());
            return Err(Rejected);
        }
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(kind) => kind,
            None => {
                sink.push("record.kind_unknown", line, format!("kind {k:?} is not one of account, friend, block, group, member, message, group_event, conversation"));
                return Err(Rejected);
            }
        },
        Some(other) => {
            sink.push(
                "record.kind_unknown",
                line,
                format!("`kind` must be a string, not {}", type_name(other)),
            );
            return Err(Rejected);
        }
    };
    for field in obj.keys() {
        if field != "kind"
            && !kind.fields().contains(&field.as_str())
            && sink.unknown_seen.insert((kind, field.clone()))
        {
            sink.push("field.unknown", line, format!(
                "{}: `{field}` is not a field of this kind; it is kept in `extra` (reported once)", kind.as_str()
            ));
        }
    }
    let fixes = RefCell::new(Vec::new());
    let r = Rec {
        obj,
        kind,
        line,
        in_body: false,
        fixes: &fixes,
    };
    let mut body_type = None;
    let refs = match kind {
        Kind::Account => {
            let id = r.req_id(sink, "id")?;
            r.one_of(sink, "gender", &["male", "female", "unknown"], false)?;
            for f in ["nick", "avatar", "birthday", "signature", "location"] {
                r.string(sink, f)?;
            }
            r.ms(sink, "created_at", false)?;
            r.typed(sink, "custom", is_string_map, "an object of strings")?;
            Refs::Account { id }
        }
        Kind::Friend => {
            let owner = r.req_id(sink, "owner")?;
            let friend = r.req_id(sink, "friend")?;
            r.string(sink, "remark")?;
            r.string(sink, "source")?;
            r.typed(
                sink,
                "groups",
                |v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                "an array of strings",
            )?;
            r.ms(sink, "added_at", false)?;
            Refs::Friend { owner, friend }
        }
        Kind::Block => {
            let owner = r.req_id(sink, "owner")?;
            let blocked = r.req_id(sink, "blocked")?;
            r.ms(sink, "at", false)?;
            Refs::Block { owner, blocked }
        }
        Kind::Group => {
            let id = r.req_id(sink, "id")?;
            let owner = r.req_id(sink, "owner")?;
            let group_type = r
                .one_of(
                    sink,
                    "type",
                    &["private", "public", "chatroom", "broadcast"],
                    false,
                )?
                .unwrap_or_else(|| "private".into());
            r.one_of(
                sink,
                "join",
                &["free", "need_permission", "disabled"],
                false,
            )?;
            for f in ["name", "intro", "notice", "avatar"] {
                r.string(sink, f)?;
            }
            r.ms(sink, "created_at", false)?;
            if let Some(m) = r.int(sink, "max_members")? {
                if m <= 0 {
                    return Err(r.err(
                        sink,
                        "field.value",
                        format!("`max_members` = {m}; it must be positive"),
                    ));
                }
            }
            r.typed(sink, "muted", Value::is_boolean, "true or false")?;
            r.typed(sink, "custom", is_string_map, "an object of strings")?;
            Refs::Group {
                id,
                owner,
                group_type,
            }
        }
        Kind::Member => {
            let group = r.req_id(sink, "group")?;
            let account = r.req_id(sink, "account")?;
            let role = r
                .one_of(sink, "role", &["owner", "admin", "member"], false)?
                .unwrap_or_else(|| "member".into());
            let joined_at = r.ms(sink, "joined_at", false)?;
            r.ms(sink, "muted_until", false)?;
            r.string(sink, "nick")?;
            if let Some(u) = r.int(sink, "unread")? {
                if u < 0 {
                    return Err(r.err(
                        sink,
                        "field.value",
                        format!("`unread` = {u}; it cannot be negative"),
                    ));
                }
            }
            Refs::Member {
                group,
                account,
                role,
                joined_at,
            }
        }
        Kind::Message => {
            let id = r.req_id(sink, "id")?;
            let conv = r
                .one_of(sink, "conv", &["c2c", "group"], true)?
                .unwrap_or_default();
            let from = r.req_id(sink, "from")?;
            let to = r.req_id(sink, "to")?;
            let sent_at = r.ms(sink, "sent_at", true)?.unwrap_or_default();
            r.one_of(
                sink,
                "client",
                &["android", "ios", "pc", "web", "server", "mac", "winphone"],
                false,
            )?;
            r.string(sink, "ext")?;
            let body = match obj.get("body") {
                Some(Value::Object(b)) => b,
                None | Some(Value::Null) => {
                    return Err(r.err(sink, "field.missing", "`body` is required".into()))
                }
                Some(other) => {
                    return Err(r.err(
                        sink,
                        "field.type",
                        format!("`body` must be an object, not {}", type_name(other)),
                    ))
                }
            };
            body_type = Some(check_body(&r, body, sink)?);
            // Serialising the body is costly; only a line over the limit can hold a body over it,
            // so shorter lines carry the line's length (an upper bound) instead.
            let body_bytes = if text.len() <= BODY_EXACT_ABOVE {
                text.len()
            } else {
                obj.get("body").map(|b| b.to_string().len()).unwrap_or(0)
            };
            Refs::Message {
                id,
                group: conv == "group",
                from,
                to,
                sent_at,
                body_bytes,
            }
        }
        Kind::GroupEvent => {
            r.req_id(sink, "id")?;
            let group = r.req_id(sink, "group")?;
            let actor = r.id(sink, "actor", false)?;
            let target = r.id(sink, "target", false)?;
            r.one_of(
                sink,
                "event",
                &[
                    "member_invited",
                    "member_kicked",
                    "member_muted",
                    "member_unmuted",
                    "admin_added",
                    "admin_removed",
                    "info_changed",
                    "owner_transferred",
                    "member_left",
                    "dismissed",
                ],
                true,
            )?;
            let at = r.ms(sink, "at", true)?.unwrap_or_default();
            r.typed(sink, "changes", Value::is_object, "an object")?;
            Refs::GroupEvent {
                group,
                actor,
                target,
                at,
            }
        }
        Kind::Conversation => {
            let owner = r.req_id(sink, "owner")?;
            let conv = r
                .one_of(sink, "conv", &["c2c", "group"], true)?
                .unwrap_or_default();
            let peer = r.req_id(sink, "peer")?;
            r.ms(sink, "last_at", false)?;
            r.int(sink, "unread")?;
            r.typed(sink, "pinned", Value::is_boolean, "true or false")?;
            Refs::Conversation {
                owner,
                peer,
                group: conv == "group",
            }
        }
    };
    let fixes = fixes.into_inner();
    let record = if fixes.is_empty() {
        Cow::Borrowed(text)
    } else {
        let mut obj = obj.clone();
        for f in fixes {
            let target = if f.in_body {
                match obj.get_mut("body") {
                    Some(Value::Object(b)) => b,
                    _ => continue,
                }
            } else {
                &mut obj
            };
            target.insert(f.field, f.value);
        }
        Cow::Owned(Value::Object(obj).to_string())
    };
    Ok(Some(Parsed {
        kind,
        refs,
        record,
        body_type,
        raw: None,
    }))
}

/// Checks a message body; returns its type.
fn check_body(
    r: &Rec,
    body: &Map<String, Value>,
    sink: &mut Sink,
) -> Result<&'static str, Rejected> {
    let b = Rec {
        obj: body,
        kind: r.kind,
        line: r.line,
        in_body: true,
        fixes: r.fixes,
    };
    let t =
        match body.get("type") {
            Some(Value::String(t)) => t.as_str(),
            _ => return Err(r.err(
                sink,
                "field.missing",
                "`body.type` is required (text, image, audio, video, file, location, face, custom)"
                    .into(),
            )),
        };
    let need_str = |sink: &mut Sink, f: &str| -> Result<(), Rejected> {
        match b.string(sink, f)? {
            Some(_) => Ok(()),
            None => Err(r.err(
                sink,
                "field.missing",
                format!("`body.{f}` is required for a {t} message"),
            )),
        }
    };
    let ints = |sink: &mut Sink, fs: &[&str]| -> Result<(), Rejected> {
        for f in fs {
            b.int(sink, f)?;
        }
        Ok(())
    };
    let ty: &'static str = match t {
        "text" => "text",
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        "file" => "file",
        "location" => "location",
        "face" => "face",
        "custom" => "custom",
        other => {
            return Err(r.err(
                sink,
                "field.value",
                format!(
                    "`body.type` = {other:?}; use text, image, audio, video, file, location, face or custom"
                ),
            ))
        }
    };
    match ty {
        "text" => need_str(sink, "text"),
        "image" => {
            need_str(sink, "url")?;
            ints(sink, &["size", "width", "height"])
        }
        "audio" => {
            need_str(sink, "url")?;
            ints(sink, &["size", "duration_ms"])
        }
        "video" => {
            need_str(sink, "url")?;
            ints(sink, &["size", "duration_ms", "width", "height"])
        }
        "file" => {
            need_str(sink, "url")?;
            ints(sink, &["size"])
        }
        "location" => {
            for (f, limit) in [("lat", 90.0), ("lng", 180.0)] {
                let n = match body.get(f) {
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(Value::String(s)) => {
                        match s.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                            Some(n) => {
                                b.fix(f, Value::Number(n.clone()));
                                n.as_f64()
                            }
                            None => None,
                        }
                    }
                    _ => None,
                };
                let Some(n) = n else {
                    return Err(r.err(
                        sink,
                        "field.type",
                        format!("`body.{f}` must be a number (or a string of one) for a location"),
                    ));
                };
                // Targets store WGS 84 degrees; a value outside the globe is a broken record
                // (often lat and lng swapped, or micro-degrees).
                if !(-limit..=limit).contains(&n) {
                    return Err(r.err(
                        sink,
                        "field.value",
                        format!("`body.{f}` = {n} is outside [-{limit}, {limit}] degrees"),
                    ));
                }
            }
            Ok(())
        }
        "face" => match b.int(sink, "index")? {
            Some(_) => Ok(()),
            None => Err(r.err(
                sink,
                "field.missing",
                "`body.index` is required for a face message".into(),
            )),
        },
        _ => match body.get("data") {
            Some(_) => Ok(()),
            None => Err(r.err(
                sink,
                "field.missing",
                "`body.data` is required for a custom message".into(),
            )),
        },
    }?;
    Ok(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of one canonical line.
    fn findings(line: &str) -> Vec<Finding> {
        let mut findings = vec![];
        let mut seen = HashSet::new();
        let mut sink = Sink {
            file: "messages.jsonl",
            findings: &mut findings,
            unknown_seen: &mut seen,
        };
        let _ = parse_line(line.as_bytes(), 7, &mut sink);
        findings
    }

    fn location(lat: &str, lng: &str) -> String {
        format!(
            r#"{{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"body":{{"type":"location","lat":{lat},"lng":{lng},"title":"here"}}}}"#
        )
    }

    #[test]
    fn locations_on_the_globe_pass() {
        for (lat, lng) in [
            ("39.9053", "116.36302"),
            ("-90", "-180"),
            ("90", "180"),
            ("0", "0"),
            ("\"-33.8688\"", "\"151.2093\""),
        ] {
            let f = findings(&location(lat, lng));
            assert!(f.is_empty(), "{lat},{lng}: {f:?}");
        }
    }

    #[test]
    fn locations_off_the_globe_are_errors_on_their_line() {
        for (lat, lng, field) in [
            ("90.0001", "0", "body.lat"),
            ("-91", "0", "body.lat"),
            ("116.36302", "39.9053", "body.lat"),
            ("0", "180.5", "body.lng"),
            ("0", "-181", "body.lng"),
            ("39905300", "116363020", "body.lat"),
            ("\"95\"", "0", "body.lat"),
            ("0", "\"200\"", "body.lng"),
        ] {
            let f = findings(&location(lat, lng));
            assert_eq!(f.len(), 1, "{lat},{lng}: {f:?}");
            assert_eq!(f[0].code, "field.value", "{lat},{lng}: {f:?}");
            assert_eq!(f[0].line, 7);
            assert_eq!(f[0].severity, crate::dumps::Severity::Error);
            assert!(
                f[0].message.contains(&format!("`{field}`")) && f[0].message.contains("outside"),
                "{lat},{lng}: {}",
                f[0].message
            );
        }
    }
}
