//! A call's parameters (reference §1.2): `application/x-www-form-urlencoded` fields where a
//! list is the same key repeated (`userId=a&userId=b`), or, on the few JSON APIs, one JSON
//! object whose values are read as the same strings. Lengths of ids and names are in bytes,
//! as RongCloud counts them (§4).

use super::{rej, Reject};
use serde_json::Value;

/// RongCloud's parameter error (HTTP 400).
pub(super) const PARAM: i64 = 1002;
/// "Parameter too long" (HTTP 400).
pub(super) const TOO_LONG: i64 = 1005;

/// Decodes a form body. A `%` not followed by two hex digits stays as it is (as browsers and
/// the usual decoders do); text that is not UTF-8 once decoded is refused.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in body.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &[u8]) -> Result<String, String> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut bytes = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => bytes.push(b' '),
            b'%' => match (
                s.get(i + 1).and_then(|&b| hex(b)),
                s.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    bytes.push(h << 4 | l);
                    i += 2;
                }
                _ => bytes.push(b'%'),
            },
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8 once decoded".to_string())
}

/// A JSON body (the `/v3/message/*/query.json` APIs) as fields: each top-level value as text
/// (strings as they are, numbers and booleans as written); nested values are refused.
pub fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("JSON body: {e}"))?;
    let Value::Object(map) = v else {
        return Err("the JSON body must be an object".into());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            _ => return Err(format!("{k} must be a string, number or boolean")),
        };
        out.push((k, text));
    }
    Ok(out)
}

/// One call's fields, in the order sent.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    /// The first value of `k`.
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key, empty ones left out.
    pub(super) fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required field; empty counts as missing.
    pub(super) fn req(&self, k: &str) -> Result<&str, Reject> {
        match self.get(k) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(rej(PARAM, format!("{k} is required"))),
        }
    }

    /// An optional text of at most `max` bytes (1005 beyond).
    pub(super) fn text(&self, k: &str, max: usize) -> Result<Option<&str>, Reject> {
        match self.get(k) {
            Some(v) if v.len() > max => Err(rej(
                TOO_LONG,
                format!("{k} is {} bytes; at most {max} are allowed", v.len()),
            )),
            v => Ok(v),
        }
    }

    /// An optional decimal integer; empty counts as absent.
    pub(super) fn int(&self, k: &str) -> Result<Option<i64>, Reject> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| rej(PARAM, format!("{k} {v:?} is not an integer"))),
        }
    }

    pub(super) fn req_int(&self, k: &str) -> Result<i64, Reject> {
        self.int(k)?
            .ok_or_else(|| rej(PARAM, format!("{k} is required")))
    }

    /// A 0/1 switch (`isPersisted`, `isIncludeSender`, …), `default` when absent.
    pub(super) fn flag(&self, k: &str, default: bool) -> Result<bool, Reject> {
        match self.get(k) {
            None | Some("") => Ok(default),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(v) => Err(rej(PARAM, format!("{k} {v:?} must be 0 or 1"))),
        }
    }

    /// A `true`/`false` switch (`disablePush`, `includeStart`, …), `default` when absent.
    pub(super) fn boolean(&self, k: &str, default: bool) -> Result<bool, Reject> {
        match self.get(k) {
            None | Some("") => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(rej(PARAM, format!("{k} {v:?} must be true or false"))),
        }
    }

    /// An optional field that must hold a JSON object (`pushExt`, `extraContent`, …).
    pub(super) fn json_object(&self, k: &str, max: usize) -> Result<Option<&str>, Reject> {
        match self.text(k, max)? {
            None | Some("") => Ok(None),
            Some(v) => match serde_json::from_str::<Value>(v) {
                Ok(Value::Object(_)) => Ok(Some(v)),
                _ => Err(rej(PARAM, format!("{k} must be a JSON object"))),
            },
        }
    }
}

/// A user id (reference §4): 1 to 64 bytes of `[A-Za-z0-9+=_-]`; 1005 when too long, 1002
/// for any other character.
pub(super) fn check_user_id(field: &str, id: &str) -> Result<(), Reject> {
    if id.is_empty() {
        return Err(rej(PARAM, format!("{field} is empty")));
    }
    if id.len() > 64 {
        return Err(rej(
            TOO_LONG,
            format!("{field} {id:?} is {} bytes; at most 64", id.len()),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '-')))
    {
        return Err(rej(
            PARAM,
            format!("{field} {id:?} has {c:?}; only letters, digits and + = _ - are allowed"),
        ));
    }
    Ok(())
}

/// A group id (reference §2.4, §4): 1 to 64 letters and digits.
pub(super) fn check_group_id(field: &str, id: &str) -> Result<(), Reject> {
    if id.is_empty() {
        return Err(rej(PARAM, format!("{field} is empty")));
    }
    if id.len() > 64 {
        return Err(rej(
            TOO_LONG,
            format!("{field} {id:?} is {} bytes; at most 64", id.len()),
        ));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(rej(
            PARAM,
            format!("{field} {id:?} has {c:?}; only letters and digits are allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_a_list_and_json_values_become_text() {
        let p = Params(parse_form(b"userId=a&userId=b%2Bc&groupId=g+1&userId=").unwrap());
        assert_eq!(p.all("userId"), ["a", "b+c"]);
        assert_eq!(p.get("groupId"), Some("g 1"));
        let j = Params(parse_json(br#"{"pageSize":10,"includeStart":true,"userId":"u"}"#).unwrap());
        assert_eq!(j.int("pageSize").unwrap(), Some(10));
        assert!(j.boolean("includeStart", false).unwrap());
        assert!(parse_json(br#"{"a":[1]}"#).is_err());
    }

    #[test]
    fn ids_are_checked_in_bytes_and_characters() {
        check_user_id("userId", "a+b=c_d-e").unwrap();
        assert_eq!(check_user_id("userId", "a.b").unwrap_err().code, PARAM);
        assert_eq!(
            check_user_id("userId", &"x".repeat(65)).unwrap_err().code,
            TOO_LONG
        );
        check_group_id("groupId", "G1").unwrap();
        assert_eq!(check_group_id("groupId", "g_1").unwrap_err().code, PARAM);
    }
}
