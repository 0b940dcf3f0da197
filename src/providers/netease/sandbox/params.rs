//! A V1 call's form body (reference §1.2): `application/x-www-form-urlencoded` fields, list
//! values as JSON array strings inside one field, ints as decimal strings. Every malformed or
//! missing field is NetEase's parameter error, code 414.

use super::{rej, Reject};
use serde_json::Value;

/// The code NetEase answers for a bad or missing parameter.
pub(super) const PARAM: i64 = 414;

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

/// One call's fields. The first of repeated fields counts.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// A required field; empty counts as missing.
    pub(super) fn req(&self, k: &str) -> Result<&str, Reject> {
        match self.get(k) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(rej(PARAM, format!("{k} is required"))),
        }
    }

    /// An optional text field of at most `max` characters (present but empty stays `Some("")`).
    pub(super) fn text(&self, k: &str, max: usize) -> Result<Option<&str>, Reject> {
        match self.get(k) {
            Some(v) if v.chars().count() > max => Err(rej(
                PARAM,
                format!(
                    "{k} is {} characters; at most {max} are allowed",
                    v.chars().count()
                ),
            )),
            v => Ok(v),
        }
    }

    /// A required text field of at most `max` characters.
    pub(super) fn req_text(&self, k: &str, max: usize) -> Result<&str, Reject> {
        self.req(k)?;
        Ok(self.text(k, max)?.unwrap_or_default())
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

    /// An optional integer that must be one of `allowed`.
    pub(super) fn choice(&self, k: &str, allowed: &[i64]) -> Result<Option<i64>, Reject> {
        match self.int(k)? {
            Some(n) if !allowed.contains(&n) => {
                Err(rej(PARAM, format!("{k} {n} is not one of {allowed:?}")))
            }
            n => Ok(n),
        }
    }

    pub(super) fn req_choice(&self, k: &str, allowed: &[i64]) -> Result<i64, Reject> {
        self.choice(k, allowed)?
            .ok_or_else(|| rej(PARAM, format!("{k} is required")))
    }

    /// An optional `true`/`false`.
    pub(super) fn boolean(&self, k: &str) -> Result<Option<bool>, Reject> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(rej(PARAM, format!("{k} {v:?} is not true or false"))),
        }
    }

    /// A required JSON array of strings (`["a","b"]`), such as `members` or `accids`.
    pub(super) fn req_list(&self, k: &str) -> Result<Vec<String>, Reject> {
        let raw = self.req(k)?;
        let bad = || rej(PARAM, format!("{k} must be a JSON array of strings"));
        match serde_json::from_str::<Value>(raw).map_err(|_| bad())? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad()),
                })
                .collect(),
            _ => Err(bad()),
        }
    }
}

/// Accids are case-insensitive and stored lower-case (reference §2.1): every accid a call
/// names is folded before it is looked up.
pub(super) fn fold(accid: &str) -> String {
    accid.to_lowercase()
}

/// The rule for a new accid (reference §5): 1..=32 characters of `[A-Za-z0-9_@.-]`.
pub(super) fn check_new_accid(raw: &str) -> Result<String, Reject> {
    if raw.is_empty() || raw.chars().count() > 32 {
        return Err(rej(
            PARAM,
            format!("accid {raw:?} must be 1 to 32 characters"),
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-')))
    {
        return Err(rej(
            PARAM,
            format!("accid {raw:?} has {c:?}; only letters, digits and _ @ . - are allowed"),
        ));
    }
    Ok(fold(raw))
}
