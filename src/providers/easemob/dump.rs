//! Easemob (环信) chat-history export (`GET /{org}/{app}/chatmessages/{yyyyMMddHH}`): hourly
//! files, one JSON record per line:
//! `{"msg_id","timestamp","from","to","chat_type","payload":{"bodies":[…],"ext":{…},"from","to"}}`.
//! The top-level `from`/`to` are internal JIDs; the ids are `payload.from`/`payload.to`
//! (fixtures under `tests/fixtures/easemob/`).
//!
//! `chat_type` `chat` is one to one; `groupchat` and `chatroom` are group conversations. A record
//! with several bodies becomes several canonical messages, `msg_id`, `msg_id#2`, … (numbered by
//! the body's position, so ids stay stable). `cmd` bodies are commands, not chat history.

use crate::dumps::formats::{
    float_of, format_of, id_of, int_of, ms_of, parse_object, put, ConvertError, FirstLine,
    VendorFormat,
};
use serde_json::{Map, Value};

/// Converts one Easemob history line into zero or more canonical messages.
pub fn convert_line(line: &str) -> Result<Vec<Value>, ConvertError> {
    let rec = parse_object(line)?;
    let id = id_of(rec.get("msg_id"), "msg_id", "the message id")?;
    let sent_at = ms_of(rec.get("timestamp"), "timestamp")?;
    let payload = match rec.get("payload") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                "payload",
                "the message content (`payload.bodies`)",
            ))
        }
        Some(other) => return Err(ConvertError::type_("payload", "an object", other)),
    };
    let from = party(&rec, payload, "from", "the sender's user ID")?;
    let to = party(
        &rec,
        payload,
        "to",
        "the receiver's user ID, or the group or chat-room ID",
    )?;
    let conv = match rec.get("chat_type").or_else(|| payload.get("chat_type")) {
        Some(Value::String(t)) => match t.to_ascii_lowercase().as_str() {
            "chat" => "c2c",
            "groupchat" | "chatroom" => "group",
            _ => {
                return Err(ConvertError::value(
                    "chat_type",
                    format!("= {t:?}; Easemob exports use chat, groupchat or chatroom"),
                ))
            }
        },
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                "chat_type",
                "chat, groupchat or chatroom",
            ))
        }
        Some(other) => return Err(ConvertError::type_("chat_type", "a string", other)),
    };
    let bodies = match payload.get("bodies") {
        Some(Value::Array(b)) if !b.is_empty() => b,
        Some(Value::Array(_)) => {
            return Err(ConvertError::value(
                "payload.bodies",
                "is empty; a message has at least one body",
            ))
        }
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                "payload.bodies",
                "the list of message bodies",
            ))
        }
        Some(other) => return Err(ConvertError::type_("payload.bodies", "an array", other)),
    };
    let ext = match payload.get("ext") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(Value::String(s.clone())),
        Some(other) => Some(Value::String(other.to_string())),
    };

    let mut out = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let field = format!("payload.bodies[{i}]");
        let b = b
            .as_object()
            .ok_or_else(|| ConvertError::type_(&field, "an object", b))?;
        let Some(body) = body(b, &field)? else {
            continue;
        };
        let mut m = Map::new();
        m.insert("kind".into(), "message".into());
        m.insert(
            "id".into(),
            if i == 0 {
                id.clone()
            } else {
                format!("{id}#{}", i + 1)
            }
            .into(),
        );
        m.insert("conv".into(), conv.into());
        m.insert("from".into(), from.clone().into());
        m.insert("to".into(), to.clone().into());
        m.insert("sent_at".into(), sent_at.into());
        m.insert("body".into(), body);
        put(&mut m, "ext", ext.clone());
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// The sender or receiver. Easemob's hourly export documents the top-level `from`/`to` as
/// internal fields to ignore (they hold JIDs such as `org#app_alice@easemob.com` or
/// `…@conference.easemob.com`); `payload.from`/`payload.to` carry the user, group or chat-room
/// ID. Old exports without them had plain ids at the top level, which are still read; a JID is
/// never taken apart to guess an id.
fn party(
    rec: &Map<String, Value>,
    payload: &Map<String, Value>,
    key: &str,
    why: &str,
) -> Result<String, ConvertError> {
    let field = format!("payload.{key}");
    match payload.get(key) {
        Some(v) if !v.is_null() => id_of(Some(v), &field, why),
        _ => match rec.get(key) {
            Some(Value::String(jid)) if jid.contains('@') => Err(ConvertError::missing(
                &field,
                &format!(
                    "{why}; the top-level `{key}` ({jid:?}) is Easemob's internal address, which \
                     the export says to ignore"
                ),
            )),
            Some(v) if !v.is_null() => id_of(Some(v), key, why),
            _ => Err(ConvertError::missing(&field, why)),
        },
    }
}

fn s<'a>(b: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    b.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// One body; `None` for a `cmd` body, which is a command and not history.
fn body(b: &Map<String, Value>, field: &str) -> Result<Option<Value>, ConvertError> {
    let t = match b.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                &format!("{field}.type"),
                "txt, img, audio, video, file, loc, custom or cmd",
            ))
        }
        Some(other) => {
            return Err(ConvertError::type_(
                &format!("{field}.type"),
                "a string",
                other,
            ))
        }
    };
    let f = |k: &str| format!("{field}.{k}");
    let url = |what: &str| -> Result<Value, ConvertError> {
        s(b, "url").map(Value::from).ok_or_else(|| {
            ConvertError::missing(
                &f("url"),
                &format!("a {what} message without a file url cannot be moved"),
            )
        })
    };
    let int = |k: &str| -> Result<Option<Value>, ConvertError> {
        Ok(int_of(b.get(k), &f(k))?.map(Value::from))
    };
    let size = |k: &str| -> Result<Option<Value>, ConvertError> {
        Ok(match b.get("size") {
            Some(Value::Object(o)) => int_of(o.get(k), &f(&format!("size.{k}")))?.map(Value::from),
            _ => None,
        })
    };
    // Easemob's `length` is seconds.
    let duration = || -> Result<Option<Value>, ConvertError> {
        Ok(match float_of(b.get("length"), &f("length"))? {
            Some(Value::Number(n)) => n
                .as_f64()
                .map(|secs| Value::from((secs * 1000.0).round() as i64)),
            _ => None,
        })
    };
    let name = s(b, "filename");
    let format = name.and_then(format_of).map(Value::from);

    let mut o = Map::new();
    match t {
        "cmd" => return Ok(None),
        "txt" => {
            let text = match b.get("msg") {
                Some(Value::String(m)) => m.clone(),
                None | Some(Value::Null) => {
                    return Err(ConvertError::missing(&f("msg"), "the text of a txt body"))
                }
                Some(other) => return Err(ConvertError::type_(&f("msg"), "a string", other)),
            };
            o.insert("type".into(), "text".into());
            o.insert("text".into(), text.into());
        }
        "img" => {
            o.insert("type".into(), "image".into());
            o.insert("url".into(), url("img")?);
            put(&mut o, "name", name.map(Value::from));
            put(&mut o, "size", int("file_length")?);
            put(&mut o, "width", size("width")?);
            put(&mut o, "height", size("height")?);
            put(&mut o, "format", format);
        }
        "audio" => {
            o.insert("type".into(), "audio".into());
            o.insert("url".into(), url("audio")?);
            put(&mut o, "size", int("file_length")?);
            put(&mut o, "duration_ms", duration()?);
            put(&mut o, "format", format);
        }
        "video" => {
            o.insert("type".into(), "video".into());
            o.insert("url".into(), url("video")?);
            put(&mut o, "size", int("file_length")?);
            put(&mut o, "duration_ms", duration()?);
            put(&mut o, "width", size("width")?);
            put(&mut o, "height", size("height")?);
            put(&mut o, "format", format);
            put(&mut o, "thumb_url", s(b, "thumb").map(Value::from));
        }
        "file" => {
            o.insert("type".into(), "file".into());
            o.insert("url".into(), url("file")?);
            put(&mut o, "name", name.map(Value::from));
            put(&mut o, "size", int("file_length")?);
            put(&mut o, "format", format);
        }
        "loc" => {
            o.insert("type".into(), "location".into());
            for k in ["lat", "lng"] {
                let v = float_of(b.get(k), &f(k))?
                    .ok_or_else(|| ConvertError::missing(&f(k), "a loc body needs lat and lng"))?;
                o.insert(k.into(), v);
            }
            put(&mut o, "title", s(b, "addr").map(Value::from));
        }
        "custom" => {
            // The app's own payload: event name and key/values, carried whole.
            let mut data = b.clone();
            data.remove("type");
            o.insert("type".into(), "custom".into());
            put(&mut o, "desc", s(b, "customEvent").map(Value::from));
            o.insert("data".into(), Value::Object(data));
        }
        other => {
            return Err(ConvertError::value(
                &f("type"),
                format!(
                "= {other:?}; Easemob bodies are txt, img, audio, video, file, loc, custom or cmd"
            ),
            ))
        }
    }
    Ok(Some(Value::Object(o)))
}

/// The format as the dump pipeline reads it.
pub const FORMAT: VendorFormat = VendorFormat {
    id: "easemob",
    choice: "Easemob history export",
    read_as: "Easemob export",
    claim,
    convert_line,
};

/// A broken first line with `"msg_id"` or `"chat_type"` is surely this export; a parsed one
/// with either key only weakly (another vendor's records may carry them too).
fn claim(first: FirstLine<'_>) -> u8 {
    match first {
        FirstLine::Object(o) => u8::from(o.contains_key("msg_id") || o.contains_key("chat_type")),
        FirstLine::Broken(line) => {
            2 * u8::from(line.contains("\"msg_id\"") || line.contains("\"chat_type\""))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dumps::formats::{detect, Format, DETECT_PREFIX_BYTES};

    #[test]
    fn detected_from_the_first_line() {
        let id = |line: &str| detect(line).map(Format::id);
        assert_eq!(
            id(r#"{"msg_id":"1","timestamp":1,"chat_type":"chat","payload":{}}"#),
            Some("easemob")
        );
        // A first line longer than the prefix is told by its start.
        let long = format!(
            r#"{{"msg_id":"1","payload":{{"bodies":[{{"msg":"{}"}}]}}}}"#,
            "é".repeat(DETECT_PREFIX_BYTES)
        );
        assert_eq!(id(&long), Some("easemob"));
    }
    use crate::dumps::formats::testutil::assert_canonical;
    use serde_json::json;

    fn line(chat_type: &str, bodies: Value, ext: Value) -> String {
        json!({"msg_id":"5I02W-78-8278a","timestamp":1403099033211_i64,"direction":"outgoing","to":"1402541206787","from":"zw123","chat_type":chat_type,"payload":{"bodies":bodies,"ext":ext}}).to_string()
    }

    fn convert(l: &str) -> Vec<Value> {
        let out = convert_line(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        out.iter().for_each(assert_canonical);
        out
    }

    #[test]
    fn text_message_with_ext() {
        let v = convert(&line(
            "chat",
            json!([{"type":"txt","msg":"hello"}]),
            json!({"key":"value"}),
        ));
        assert_eq!(
            v,
            vec![
                json!({"kind":"message","id":"5I02W-78-8278a","conv":"c2c","from":"zw123","to":"1402541206787","sent_at":1403099033211_i64,"body":{"type":"text","text":"hello"},"ext":"{\"key\":\"value\"}"})
            ]
        );
    }

    #[test]
    fn every_body_type() {
        let cases = [
            (
                json!({"type":"img","url":"https://a1.easemob.com/org/app/chatfiles/55f12940","secret":"VfEpSmSv","filename":"24849.jpg","file_length":4095,"size":{"width":1080,"height":1920}}),
                json!({"type":"image","url":"https://a1.easemob.com/org/app/chatfiles/55f12940","name":"24849.jpg","size":4095,"width":1080,"height":1920,"format":"jpg"}),
            ),
            (
                json!({"type":"audio","url":"https://a1.easemob.com/org/app/chatfiles/0637e55a","filename":"audio.amr","length":3,"file_length":6630}),
                json!({"type":"audio","url":"https://a1.easemob.com/org/app/chatfiles/0637e55a","size":6630,"duration_ms":3000,"format":"amr"}),
            ),
            (
                json!({"type":"video","url":"https://a1.easemob.com/v/1","filename":"1418105136313.mp4","length":10,"file_length":58103,"thumb":"https://a1.easemob.com/t/1","thumb_secret":"s","size":{"width":480,"height":640}}),
                json!({"type":"video","url":"https://a1.easemob.com/v/1","size":58103,"duration_ms":10000,"width":480,"height":640,"format":"mp4","thumb_url":"https://a1.easemob.com/t/1"}),
            ),
            (
                json!({"type":"file","url":"https://a1.easemob.com/f/1","filename":"report.PDF","file_length":"3201"}),
                json!({"type":"file","url":"https://a1.easemob.com/f/1","name":"report.PDF","size":3201,"format":"pdf"}),
            ),
            (
                json!({"type":"loc","addr":"西城区西便门桥","lat":"39.9053","lng":116.36302}),
                json!({"type":"location","lat":39.9053,"lng":116.36302,"title":"西城区西便门桥"}),
            ),
            (
                json!({"type":"custom","customEvent":"gift","customExts":{"id":"7"}}),
                json!({"type":"custom","desc":"gift","data":{"customEvent":"gift","customExts":{"id":"7"}}}),
            ),
        ];
        for (input, want) in cases {
            let v = convert(&line("groupchat", json!([input]), json!({})));
            assert_eq!(v.len(), 1);
            assert_eq!(v[0]["body"], want);
            assert_eq!(v[0]["conv"], "group");
            assert!(v[0].get("ext").is_none());
        }
    }

    #[test]
    fn cmd_is_not_history_and_several_bodies_are_numbered() {
        assert!(convert(&line(
            "chat",
            json!([{"type":"cmd","action":"typing"}]),
            json!(null)
        ))
        .is_empty());
        let v = convert(&line(
            "chatroom",
            json!([{"type":"txt","msg":"a"},{"type":"txt","msg":"b"},{"type":"txt","msg":"c"}]),
            json!(null),
        ));
        let ids: Vec<&str> = v.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["5I02W-78-8278a", "5I02W-78-8278a#2", "5I02W-78-8278a#3"]
        );
        assert!(v.iter().all(|m| m["conv"] == "group"));
    }

    const EXPORT: &str = include_str!("../../../tests/fixtures/easemob/history-2024031508.jsonl");
    const DEFECTS: &str = include_str!("../../../tests/fixtures/easemob/history-defects.jsonl");

    #[test]
    fn a_real_export_converts_to_user_and_group_ids() {
        let mut got = vec![];
        for (i, l) in EXPORT.lines().enumerate() {
            for m in convert_line(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)) {
                assert_canonical(&m);
                got.push((
                    i + 1,
                    m["conv"].as_str().unwrap().to_string(),
                    m["from"].as_str().unwrap().to_string(),
                    m["to"].as_str().unwrap().to_string(),
                    m["body"]["type"].as_str().unwrap().to_string(),
                ));
            }
        }
        let want: Vec<(usize, &str, &str, &str, &str)> = vec![
            (1, "c2c", "alice", "bob", "text"),
            (2, "c2c", "bob", "alice", "image"),
            (3, "group", "alice", "228971347460097", "text"),
            (4, "group", "carol", "228971347460097", "audio"),
            (5, "group", "bob", "246817920991233", "text"),
            // Line 6 is a cmd (typing indicator): not history.
            (7, "c2c", "alice", "bob", "location"),
            (8, "c2c", "bob", "carol", "custom"),
            (9, "group", "bob", "228971347460097", "file"),
            (10, "c2c", "carol", "alice", "video"),
        ];
        let got: Vec<(usize, &str, &str, &str, &str)> = got
            .iter()
            .map(|(i, c, f, t, b)| (*i, c.as_str(), f.as_str(), t.as_str(), b.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn internal_addresses_are_never_taken_for_ids() {
        let lines: Vec<&str> = DEFECTS.lines().collect();
        let e = convert_line(lines[2]).unwrap_err();
        assert_eq!(e.code, "field.missing", "{e}");
        assert!(
            e.message.contains("`payload.from`") && e.message.contains("internal address"),
            "{e}"
        );
        let e = convert_line(lines[3]).unwrap_err();
        assert_eq!(e.code, "field.missing", "{e}");
        assert!(e.message.contains("`payload.to`"), "{e}");
        // Old exports with plain ids at the top level (and none in the payload) still read.
        let old = line("chat", json!([{"type":"txt","msg":"x"}]), json!(null));
        assert_eq!(convert(&old)[0]["from"], "zw123");
        // When both are there, the payload wins.
        let mut v: Value = serde_json::from_str(&old).unwrap();
        v["payload"]["from"] = json!("zw124");
        assert_eq!(convert(&v.to_string())[0]["from"], "zw124");
    }

    #[test]
    fn locations_off_the_globe_are_errors_on_their_line() {
        use crate::dumps::canonical::{parse_line, Sink};
        use std::collections::HashSet;
        for (i, field) in [(0, "`body.lat`"), (1, "`body.lng`")] {
            let l = DEFECTS.lines().nth(i).unwrap();
            let v = convert_line(l).unwrap();
            let mut findings = vec![];
            let mut seen = HashSet::new();
            let mut sink = Sink {
                file: "history-defects.jsonl",
                findings: &mut findings,
                unknown_seen: &mut seen,
            };
            let bytes = serde_json::to_vec(&v[0]).unwrap();
            assert!(parse_line(&bytes, i as u64 + 1, &mut sink).is_err());
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].code, "field.value");
            assert_eq!(findings[0].line, i as u64 + 1);
            assert!(findings[0].message.contains(field), "{:?}", findings[0]);
        }
    }

    #[test]
    fn timestamp_as_string() {
        let l = line("chat", json!([{"type":"txt","msg":"x"}]), json!(null))
            .replace("1403099033211", "\"1403099033211\"");
        assert_eq!(convert(&l)[0]["sent_at"], json!(1403099033211_i64));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let ok = line("chat", json!([{"type":"txt","msg":"x"}]), json!(null));
        let drop = |k: &str| {
            let mut v: Value = serde_json::from_str(&ok).unwrap();
            v.as_object_mut().unwrap().remove(k);
            v.to_string()
        };
        let cases = [
            (
                String::from("{\"msg_id\":"),
                "json.syntax".to_string(),
                "not valid JSON",
            ),
            (drop("msg_id"), "field.missing".into(), "`msg_id`"),
            (drop("timestamp"), "field.missing".into(), "`timestamp`"),
            (drop("payload"), "field.missing".into(), "`payload`"),
            (drop("chat_type"), "field.missing".into(), "`chat_type`"),
            (
                line("broadcast", json!([{"type":"txt","msg":"x"}]), json!(null)),
                "field.value".into(),
                "`chat_type`",
            ),
            (
                line("chat", json!([]), json!(null)),
                "field.value".into(),
                "`payload.bodies`",
            ),
            (
                line("chat", json!([{"type":"sticker"}]), json!(null)),
                "field.value".into(),
                "`payload.bodies[0].type`",
            ),
            (
                line("chat", json!([{"type":"txt"}]), json!(null)),
                "field.missing".into(),
                "`payload.bodies[0].msg`",
            ),
            (
                line(
                    "chat",
                    json!([{"type":"img","filename":"a.jpg"}]),
                    json!(null),
                ),
                "field.missing".into(),
                "`payload.bodies[0].url`",
            ),
            (
                line(
                    "chat",
                    json!([{"type":"loc","lat":"north","lng":1}]),
                    json!(null),
                ),
                "field.type".into(),
                "`payload.bodies[0].lat`",
            ),
        ]
        .map(|(l, c, n)| (l.to_string(), c, n));
        for (l, code, needle) in cases {
            let e = convert_line(&l).expect_err(&l);
            assert_eq!(e.code, code, "{l}: {e}");
            assert!(e.message.contains(needle), "{l}: {e}");
        }
    }
}
