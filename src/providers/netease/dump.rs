//! NetEase Yunxin migration lines: `{"data":{…},"type":N}`, one message or group notification per
//! line, as NetEase's "IM 平滑迁移方案 / 消息体格式介绍" describes them (fixtures under
//! `tests/fixtures/netease/`).
//!
//! Quirks real files have and the page's own examples show: numbers as strings (`"type":"4"`,
//! `"createTime":"1537262375000"`, `"clientType":"2"`), numeric ids (`"msgid":1`, `"tid":1`), and
//! `attach` given either as a JSON string or as an object.

use crate::dumps::formats::{
    float_of, format_of, id_of, int_of, ms_of, parse_object, put, ConvertError, FirstLine,
    VendorFormat,
};
use serde_json::{Map, Value};

/// Converts one NetEase migration line into canonical records (one message or one group event).
pub fn convert_line(line: &str) -> Result<Vec<Value>, ConvertError> {
    let top = parse_object(line)?;
    let msg_type = int_of(top.get("type"), "type")?.ok_or_else(|| {
        ConvertError::missing(
            "type",
            "the NetEase message type (0 text, 1 image, …, 101–110 group notifications)",
        )
    })?;
    let data_owned;
    let data = match top.get("data") {
        Some(Value::Object(d)) => d,
        // Some exporters write `data` as a JSON string, like `attach`.
        Some(Value::String(s)) => {
            data_owned = parse_object(s).map_err(|e| {
                ConvertError::new(e.code, format!("`data` is a string but {}", e.message))
            })?;
            &data_owned
        }
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                "data",
                "the message object `{\"data\":{…},\"type\":N}`",
            ))
        }
        Some(other) => return Err(ConvertError::type_("data", "an object", other)),
    };

    let id = id_of(
        data.get("msgid")
            .or_else(|| data.get("msgidServer"))
            .or_else(|| data.get("msgidClient")),
        "data.msgid",
        "the message id (`msgid`)",
    )?;
    let at = ms_of(data.get("createTime"), "data.createTime")?;

    if (101..=110).contains(&msg_type) {
        return group_event(msg_type, data, id, at).map(|e| vec![e]);
    }

    let group = data.get("tid").is_some_and(|v| !v.is_null());
    let (from, to) = if group {
        (
            id_of(
                data.get("accid").or_else(|| data.get("from")),
                "data.accid",
                "the sender of a group message",
            )?,
            id_of(data.get("tid"), "data.tid", "the group")?,
        )
    } else {
        (
            id_of(
                data.get("from").or_else(|| data.get("accid")),
                "data.from",
                "the sender",
            )?,
            id_of(
                data.get("to"),
                "data.to",
                "the receiver of a single-chat message (or `tid` for a group)",
            )?,
        )
    };
    let body = body(msg_type, data)?;

    let mut m = Map::new();
    m.insert("kind".into(), "message".into());
    m.insert("id".into(), id.into());
    m.insert("conv".into(), if group { "group" } else { "c2c" }.into());
    m.insert("from".into(), from.into());
    m.insert("to".into(), to.into());
    m.insert("sent_at".into(), at.into());
    put(
        &mut m,
        "client",
        client(data.get("clientType"))?.map(Value::from),
    );
    m.insert("body".into(), body);
    put(&mut m, "ext", ext(data.get("ext")));
    Ok(vec![Value::Object(m)])
}

/// `clientType` (1 AOS, 2 iOS, 4 PC, 8 WINPHONE, 16 WEB, 32 REST, 64 MAC), as a number, a string
/// of one, or the name the 抄送 callbacks use. Values NetEase added later (65 HARMONY) have no
/// canonical client: the field is left out rather than the message rejected.
fn client(v: Option<&Value>) -> Result<Option<&'static str>, ConvertError> {
    let name = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_err() => s.trim().to_ascii_uppercase(),
        other => match int_of(other, "data.clientType")? {
            Some(1) => "AOS".into(),
            Some(2) => "IOS".into(),
            Some(4) => "PC".into(),
            Some(8) => "WINPHONE".into(),
            Some(16) => "WEB".into(),
            Some(32) => "REST".into(),
            Some(64) => "MAC".into(),
            _ => return Ok(None),
        },
    };
    Ok(match name.as_str() {
        "AOS" | "ANDROID" => Some("android"),
        "IOS" => Some("ios"),
        "PC" | "WINDOWS" => Some("pc"),
        "WINPHONE" => Some("winphone"),
        "WEB" => Some("web"),
        "REST" | "SERVER" => Some("server"),
        "MAC" => Some("mac"),
        _ => None,
    })
}

fn ext(v: Option<&Value>) -> Option<Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone().into()),
        // An object is kept as the JSON text it is; canonical `ext` is a string.
        Some(other) => Some(other.to_string().into()),
    }
}

/// `attach` as an object, whether the line holds the object or a JSON string of it.
fn attach(data: &Map<String, Value>, what: &str) -> Result<Map<String, Value>, ConvertError> {
    match data.get("attach") {
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => Ok(o),
            Ok(other) => Err(ConvertError::type_("data.attach", "a JSON object", &other)),
            Err(e) => Err(ConvertError::new(
                "json.syntax",
                format!("`data.attach` is a string but not JSON ({e}); a {what} message needs its attachment as JSON"),
            )),
        },
        None | Some(Value::Null) => Err(ConvertError::missing(
            "data.attach",
            &format!("a {what} message carries its url, size etc. in `attach`"),
        )),
        Some(other) => Err(ConvertError::type_("data.attach", "a JSON object or a string of one", other)),
    }
}

fn url(a: &Map<String, Value>, what: &str) -> Result<Value, ConvertError> {
    match a.get("url") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().into()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ConvertError::missing(
            "data.attach.url",
            &format!("a {what} message without a file url cannot be moved"),
        )),
        Some(other) => Err(ConvertError::type_("data.attach.url", "a string", other)),
    }
}

fn int_field(a: &Map<String, Value>, key: &str) -> Result<Option<Value>, ConvertError> {
    Ok(int_of(a.get(key), &format!("data.attach.{key}"))?.map(Value::from))
}

fn str_field(a: &Map<String, Value>, key: &str) -> Option<Value> {
    a.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(Value::from)
}

fn fmt_field(a: &Map<String, Value>) -> Option<Value> {
    a.get("ext")
        .and_then(Value::as_str)
        .and_then(format_of)
        .map(Value::from)
}

fn body(msg_type: i64, data: &Map<String, Value>) -> Result<Value, ConvertError> {
    let mut b = Map::new();
    match msg_type {
        0 => {
            let text = match data.get("body") {
                Some(Value::String(s)) => s.clone(),
                // The sendMsg API form, `{"msg":"…"}`, turns up in hand-built files.
                Some(Value::Object(o)) if o.get("msg").is_some_and(Value::is_string) => {
                    o["msg"].as_str().unwrap_or_default().to_string()
                }
                None | Some(Value::Null) => {
                    return Err(ConvertError::missing("data.body", "the text of a text message (type 0)"))
                }
                Some(other) => return Err(ConvertError::type_("data.body", "a string", other)),
            };
            b.insert("type".into(), "text".into());
            b.insert("text".into(), text.into());
        }
        1 => {
            let a = attach(data, "image (type 1)")?;
            b.insert("type".into(), "image".into());
            b.insert("url".into(), url(&a, "image")?);
            put(&mut b, "name", str_field(&a, "name"));
            put(&mut b, "size", int_field(&a, "size")?);
            put(&mut b, "width", int_field(&a, "w")?);
            put(&mut b, "height", int_field(&a, "h")?);
            put(&mut b, "format", fmt_field(&a));
        }
        2 => {
            let a = attach(data, "audio (type 2)")?;
            b.insert("type".into(), "audio".into());
            b.insert("url".into(), url(&a, "audio")?);
            put(&mut b, "size", int_field(&a, "size")?);
            // NetEase's `dur` is already milliseconds.
            put(&mut b, "duration_ms", int_field(&a, "dur")?);
            put(&mut b, "format", fmt_field(&a));
        }
        3 => {
            let a = attach(data, "video (type 3)")?;
            b.insert("type".into(), "video".into());
            b.insert("url".into(), url(&a, "video")?);
            put(&mut b, "size", int_field(&a, "size")?);
            put(&mut b, "duration_ms", int_field(&a, "dur")?);
            put(&mut b, "width", int_field(&a, "w")?);
            put(&mut b, "height", int_field(&a, "h")?);
            put(&mut b, "format", fmt_field(&a));
        }
        4 => {
            let a = attach(data, "location (type 4)")?;
            b.insert("type".into(), "location".into());
            for key in ["lat", "lng"] {
                let v = float_of(a.get(key), &format!("data.attach.{key}"))?.ok_or_else(|| {
                    ConvertError::missing(&format!("data.attach.{key}"), "a location needs lat and lng")
                })?;
                b.insert(key.into(), v);
            }
            put(&mut b, "title", str_field(&a, "title"));
        }
        6 => {
            let a = attach(data, "file (type 6)")?;
            b.insert("type".into(), "file".into());
            b.insert("url".into(), url(&a, "file")?);
            put(&mut b, "name", str_field(&a, "name"));
            put(&mut b, "size", int_field(&a, "size")?);
            put(&mut b, "format", fmt_field(&a));
        }
        100 => {
            // The custom payload is the app's own; it is carried whole, whatever its shape.
            let payload = match data.get("attach") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
                Some(v) if !v.is_null() => v.clone(),
                _ => match data.get("body") {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => {
                        return Err(ConvertError::missing(
                            "data.attach",
                            "a custom message (type 100) carries its payload in `attach` (or `body`)",
                        ))
                    }
                },
            };
            b.insert("type".into(), "custom".into());
            put(&mut b, "desc", payload.get("desc").and_then(Value::as_str).map(Value::from));
            b.insert("data".into(), payload);
        }
        other => {
            return Err(ConvertError::value(
                "type",
                format!(
                    "= {other} is not a NetEase migration message type; expected 0 text, 1 image, 2 audio, 3 video, 4 location, 6 file, 100 custom or 101–110 group notifications"
                ),
            ))
        }
    }
    Ok(Value::Object(b))
}

fn group_event(
    msg_type: i64,
    data: &Map<String, Value>,
    id: String,
    at: i64,
) -> Result<Value, ConvertError> {
    let group = id_of(
        data.get("tid"),
        "data.tid",
        "the group a notification belongs to",
    )?;
    let accid = || id_of(data.get("accid"), "data.accid", "who did it");
    let accid2 = |what: &str| id_of(data.get("accid2"), "data.accid2", what);
    // (event, actor, target). In NetEase's own 101 example ("B 被 A 拉进群") `accid` is the
    // invited member and `accid2` the inviter; every other notification has the actor in `accid`.
    let (event, actor, target) = match msg_type {
        101 => ("member_invited", accid2("the inviter")?, Some(accid()?)),
        102 => (
            "member_kicked",
            accid()?,
            Some(accid2("the member kicked out")?),
        ),
        103 => ("member_muted", accid()?, Some(accid2("the member muted")?)),
        104 => (
            "member_unmuted",
            accid()?,
            Some(accid2("the member unmuted")?),
        ),
        105 => ("admin_added", accid()?, Some(accid2("the new admin")?)),
        106 => ("admin_removed", accid()?, Some(accid2("the former admin")?)),
        107 => ("info_changed", accid()?, None),
        108 => (
            "owner_transferred",
            accid()?,
            Some(accid2("the new owner")?),
        ),
        109 => ("member_left", accid()?, None),
        _ => ("dismissed", accid()?, None),
    };
    let mut e = Map::new();
    e.insert("kind".into(), "group_event".into());
    e.insert("id".into(), id.into());
    e.insert("group".into(), group.clone().into());
    e.insert("actor".into(), actor.into());
    put(&mut e, "target", target.map(Value::from));
    e.insert("event".into(), event.into());
    e.insert("at".into(), at.into());
    if msg_type == 107 {
        e.insert("changes".into(), Value::Object(changes(data, &group)?));
    }
    Ok(Value::Object(e))
}

/// `tinfo` of a 107 notification: numeric keys "14".."24" → named changes, values as strings.
fn changes(data: &Map<String, Value>, group: &str) -> Result<Map<String, Value>, ConvertError> {
    let owned;
    let tinfo = match data.get("tinfo") {
        Some(Value::Object(o)) => o,
        Some(Value::String(s)) => {
            owned = parse_object(s).map_err(|e| {
                ConvertError::new(
                    e.code,
                    format!("`data.tinfo` is a string but {}", e.message),
                )
            })?;
            &owned
        }
        None | Some(Value::Null) => {
            return Err(ConvertError::missing(
                "data.tinfo",
                "a group-info change (type 107) says what changed in `tinfo`",
            ))
        }
        Some(other) => return Err(ConvertError::type_("data.tinfo", "an object", other)),
    };
    // NetEase: `tinfo` must contain `tid`, the same as the line's. Without it the change has no
    // group of its own and the line is refused rather than guessed.
    if tinfo.get("tid").is_none_or(Value::is_null) {
        return Err(ConvertError::missing(
            "data.tinfo.tid",
            &format!(
                "NetEase requires `tinfo` to name its group (the line's `tid` is {group:?}); \
                 without it the change cannot be placed in a group"
            ),
        ));
    }
    let mut out = Map::new();
    for (key, v) in tinfo {
        let field = format!("data.tinfo.{key}");
        let text = || -> Result<String, ConvertError> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Null => Ok(String::new()),
                other => Ok(other.to_string()),
            }
        };
        let flag = |names: [&str; 2]| -> Result<String, ConvertError> {
            match int_of(Some(v), &field)? {
                Some(0) => Ok(names[0].to_string()),
                Some(1) => Ok(names[1].to_string()),
                _ => Err(ConvertError::value(
                    &field,
                    format!("= {v}; NetEase allows 0 or 1 here"),
                )),
            }
        };
        let (name, value) = match key.as_str() {
            // NetEase requires tinfo.tid to repeat the line's tid; a different one means the line
            // was assembled wrongly, and the change would land on the wrong group.
            "tid" => {
                let tid = id_of(Some(v), &field, "the group")?;
                if tid != group {
                    return Err(ConvertError::value(
                        &field,
                        format!("= {tid:?} but the line's `tid` is {group:?}; they must be the same group"),
                    ));
                }
                continue;
            }
            "14" => ("intro", text()?),
            "15" => ("notice", text()?),
            "16" => (
                "join",
                match int_of(Some(v), &field)? {
                    Some(0) => "free".into(),
                    Some(1) => "need_permission".into(),
                    Some(2) => "disabled".into(),
                    _ => {
                        return Err(ConvertError::value(
                            &field,
                            format!("(join mode) = {v}; NetEase allows 0 free, 1 need permission, 2 disabled"),
                        ))
                    }
                },
            ),
            "17" => ("muted", flag(["false", "true"])?),
            "18" => ("custom", text()?),
            "19" => ("server_custom", text()?),
            "20" => ("avatar", text()?),
            "21" => ("invitee_consent", flag(["required", "not_required"])?),
            "22" => ("invite_by", flag(["admin", "all"])?),
            "23" => ("edit_info_by", flag(["admin", "all"])?),
            "24" => ("edit_custom_by", flag(["admin", "all"])?),
            // Keys the page does not list are kept under their NetEase number, not dropped.
            _ => {
                out.insert(format!("netease.{key}"), text()?.into());
                continue;
            }
        };
        out.insert(name.into(), value.into());
    }
    Ok(out)
}

/// The format as the dump pipeline reads it.
pub const FORMAT: VendorFormat = VendorFormat {
    id: "netease",
    choice: "NetEase Yunxin migration lines",
    read_as: "NetEase Yunxin export",
    claim,
    convert_line,
};

/// A parsed first line with `data` and `type` is surely this export; a broken one with
/// `"data"` only weakly.
fn claim(first: FirstLine<'_>) -> u8 {
    match first {
        FirstLine::Object(o) => 2 * u8::from(o.contains_key("data") && o.contains_key("type")),
        FirstLine::Broken(line) => u8::from(line.contains("\"data\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dumps::formats::{detect, Format};

    #[test]
    fn detected_from_the_first_line() {
        let id = |line: &str| detect(line).map(Format::id);
        assert_eq!(
            id("\u{feff}{\"data\":{\"msgid\":1},\"type\":0}"),
            Some("netease")
        );
        // Broken JSON still names its vendor.
        assert_eq!(
            id(r#"{"data":{"attach":"{\"ext\":\"jpg\“"}"#),
            Some("netease")
        );
    }
    use crate::dumps::formats::testutil::assert_canonical;
    use serde_json::json;

    const SEED: &str = include_str!("../../../tests/fixtures/netease/seed001_examples.jsonl");

    fn one(line: &str) -> Value {
        let mut v = convert_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v.len(), 1);
        let v = v.remove(0);
        assert_canonical(&v);
        v
    }

    #[test]
    fn every_seed_example_converts_except_the_page_typo() {
        let lines: Vec<&str> = SEED.lines().collect();
        assert_eq!(lines.len(), 21, "the page has 21 examples");
        for (i, line) in lines.iter().enumerate() {
            if i == 1 {
                // The page's image example has `\"jpg\“` (a typographic quote): not JSON.
                let e = convert_line(line).unwrap_err();
                assert_eq!(e.code, "json.syntax", "{e}");
                // Repaired, it converts.
                let v = one(&line.replace("\\\u{201c}", "\\\""));
                assert_eq!(
                    v["body"],
                    json!({"type":"image","url":"https://a1.ease5fb40/2c93186d","name":"haha","size":2589,"width":1040,"height":780,"format":"jpg"})
                );
                continue;
            }
            one(line);
        }
    }

    #[test]
    fn single_chat_messages_map_fields() {
        let l: Vec<&str> = SEED.lines().collect();
        assert_eq!(
            one(l[0]),
            json!({"kind":"message","id":"1","conv":"c2c","from":"aaa","to":"bbb","sent_at":1513685265481_i64,"client":"ios","body":{"type":"text","text":"测试"},"ext":"ext.."})
        );
        assert_eq!(
            one(l[2])["body"],
            json!({"type":"audio","url":"https://a1.easemob.files/f3bdaffe174cee99f","size":5232,"duration_ms":8000,"format":"amr"})
        );
        assert_eq!(
            one(l[3])["body"],
            json!({"type":"video","url":"https://a1.easeatfiles/f3-ffe174cee99f","size":5232,"duration_ms":8000,"width":1040,"height":780,"format":"mp4"})
        );
        // Location: everything as strings, `"type":"4"`, empty ext left out.
        let loc = one(l[4]);
        assert_eq!(loc["sent_at"], json!(1537262375000_i64));
        assert_eq!(loc["client"], "android");
        assert!(loc.get("ext").is_none());
        assert_eq!(
            loc["body"],
            json!({"type":"location","lat":39.89611,"lng":116.655294,"title":"新华南路 145 号"})
        );
        assert_eq!(
            one(l[5])["body"],
            json!({"type":"file","url":"https://a1.easemob.com/hywtfiles/f3bda-ffe174cee99f","size":5232,"format":"ttf"})
        );
        // Custom: `attach` given as an object, carried whole.
        let c = one(l[6]);
        assert_eq!(c["id"], "10534501");
        assert_eq!(c["body"]["type"], "custom");
        assert_eq!(c["body"]["desc"], "作息");
        assert_eq!(c["body"]["data"]["param"]["productName"], "helase");
    }

    #[test]
    fn group_messages_use_accid_and_tid() {
        let l: Vec<&str> = SEED.lines().collect();
        assert_eq!(
            one(l[7]),
            json!({"kind":"message","id":"1","conv":"group","from":"aaa","to":"1","sent_at":1511513944827_i64,"client":"web","body":{"type":"text","text":"哈哈"},"ext":"ext.."})
        );
        assert_eq!(one(l[8])["body"]["size"], 257389);
        assert_eq!(one(l[9])["body"]["duration_ms"], 8000);
    }

    #[test]
    fn group_notifications_become_group_events() {
        let l: Vec<&str> = SEED.lines().collect();
        let ev = |i: usize| one(l[i]);
        // "B 被 A 拉进群": accid is B (invited), accid2 is A (inviter).
        assert_eq!(
            ev(10),
            json!({"kind":"group_event","id":"3","group":"1","actor":"aaa","target":"bbb","event":"member_invited","at":1511513944871_i64})
        );
        let expect = [
            (11, "member_kicked", "aaa", Some("bbb")),
            (12, "member_muted", "aaa", Some("ccc")),
            (13, "member_unmuted", "aaa", Some("ccc")),
            (14, "admin_added", "aaa", Some("ccc")),
            (15, "admin_removed", "aaa", Some("ccc")),
            (18, "owner_transferred", "aaa", Some("ccc")),
            (19, "member_left", "aaa", None),
            (20, "dismissed", "ccc", None),
        ];
        for (i, event, actor, target) in expect {
            let e = ev(i);
            assert_eq!(e["event"], event, "line {}", i + 1);
            assert_eq!(e["actor"], actor, "line {}", i + 1);
            assert_eq!(
                e.get("target").and_then(Value::as_str),
                target,
                "line {}",
                i + 1
            );
        }
        assert_eq!(ev(16)["changes"], json!({"intro":"new"}));
        assert_eq!(ev(17)["changes"], json!({"join":"free"}));
        assert_eq!(ev(17)["event"], "info_changed");
    }

    #[test]
    fn tinfo_keys_and_string_forms() {
        let line = r#"{"data":{"createTime":"1511513944872","clientType":"32","tinfo":"{\"15\":\"hi\",\"16\":2,\"17\":\"1\",\"20\":\"https://x/i.png\",\"22\":1,\"3\":\"Team\",\"tid\":\"7\"}","msgid":"10","accid":"aaa","tid":"7"},"type":"107"}"#;
        let e = one(line);
        assert_eq!(
            e["changes"],
            json!({"notice":"hi","join":"disabled","muted":"true","avatar":"https://x/i.png","invite_by":"all","netease.3":"Team"})
        );
        let bad = line.replace(r#"\"tid\":\"7\""#, r#"\"tid\":\"8\""#);
        let err = convert_line(&bad).unwrap_err();
        assert!(err.message.contains("data.tinfo.tid"), "{err}");
        let bad = line.replace(r#"\"16\":2"#, r#"\"16\":5"#);
        assert!(convert_line(&bad)
            .unwrap_err()
            .message
            .contains("data.tinfo.16"));
    }

    #[test]
    fn client_types() {
        for (ct, want) in [
            ("1", Some("android")),
            ("4", Some("pc")),
            ("8", Some("winphone")),
            ("16", Some("web")),
            ("32", Some("server")),
            ("64", Some("mac")),
            ("\"IOS\"", Some("ios")),
            ("65", None),
        ] {
            let line = format!(
                r#"{{"data":{{"clientType":{ct},"createTime":1513685265481,"msgid":1,"from":"a","to":"b","body":"x"}},"type":0}}"#
            );
            let v = one(&line);
            assert_eq!(
                v.get("client").and_then(Value::as_str),
                want,
                "clientType {ct}"
            );
        }
    }

    const TEAM: &str = include_str!("../../../tests/fixtures/netease/team-tinfo.jsonl");

    #[test]
    fn team_info_changes_need_tinfo_tid() {
        let lines: Vec<&str> = TEAM.lines().collect();
        assert_eq!(one(lines[0])["changes"], json!({"intro":"new"}));
        // tinfo without tid (as an object, as a string, or null) cannot be placed in a group.
        for l in &lines[1..4] {
            let e = convert_line(l).expect_err(l);
            assert_eq!(e.code, "field.missing", "{l}: {e}");
            assert!(
                e.message.contains("`data.tinfo.tid`") && e.message.contains("placed in a group"),
                "{l}: {e}"
            );
        }
    }

    #[test]
    fn locations_off_the_globe_are_errors_on_their_line() {
        use crate::dumps::canonical::{parse_line, Sink};
        use std::collections::HashSet;
        for (i, field) in [(4, "`body.lat`"), (5, "`body.lng`")] {
            let l = TEAM.lines().nth(i).unwrap();
            let v = convert_line(l).unwrap();
            let mut findings = vec![];
            let mut seen = HashSet::new();
            let mut sink = Sink {
                file: "team-tinfo.jsonl",
                findings: &mut findings,
                unknown_seen: &mut seen,
            };
            let bytes = serde_json::to_vec(&v[0]).unwrap();
            assert!(parse_line(&bytes, i as u64 + 1, &mut sink).is_err());
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(
                (findings[0].code, findings[0].line),
                ("field.value", i as u64 + 1)
            );
            assert!(findings[0].message.contains(field), "{:?}", findings[0]);
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases = [
            ("{\"data\":", "json.syntax", "not valid JSON"),
            ("[1,2]", "json.syntax", "not a JSON object"),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481,"body":"x"}}"#,
                "field.missing",
                "`type`",
            ),
            (r#"{"type":0}"#, "field.missing", "`data`"),
            (
                r#"{"data":{"from":"a","to":"b","createTime":1513685265481,"body":"x"},"type":0}"#,
                "field.missing",
                "`data.msgid`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","body":"x"},"type":0}"#,
                "field.missing",
                "`data.createTime`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","createTime":1513685265481,"body":"x"},"type":0}"#,
                "field.missing",
                "`data.to`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":"yesterday","body":"x"},"type":0}"#,
                "field.type",
                "`data.createTime`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481,"body":"x"},"type":10}"#,
                "field.value",
                "= 10 is not",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481},"type":1}"#,
                "field.missing",
                "`data.attach`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481,"attach":"{oops"},"type":1}"#,
                "json.syntax",
                "`data.attach`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481,"attach":{"size":1}},"type":6}"#,
                "field.missing",
                "`data.attach.url`",
            ),
            (
                r#"{"data":{"msgid":1,"from":"a","to":"b","createTime":1513685265481,"attach":{"url":"u","size":"big"}},"type":6}"#,
                "field.type",
                "`data.attach.size`",
            ),
            (
                r#"{"data":{"msgid":1,"createTime":1513685265481,"accid":"a","tid":1},"type":102}"#,
                "field.missing",
                "`data.accid2`",
            ),
            (
                r#"{"data":{"msgid":1,"createTime":1513685265481,"accid":"a","tid":1},"type":107}"#,
                "field.missing",
                "`data.tinfo`",
            ),
        ];
        for (line, code, needle) in cases {
            let e = convert_line(line).expect_err(line);
            assert_eq!(e.code, code, "{line}: {e}");
            assert!(e.message.contains(needle), "{line}: {e}");
        }
    }
}
