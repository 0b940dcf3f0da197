//! Vendor dump formats read into canonical-dump-v1 records.
//!
//! Each converter takes one line (or CSV row) of the vendor's export and returns the canonical
//! records it stands for, as JSON objects that `canonical::parse_line` accepts. A converter never
//! guesses silently: what it cannot map is a [`ConvertError`] that names the field and the reason.

pub mod csv;

use serde_json::{Map, Number, Value};
use std::fmt;

/// Why one input line could not be converted. `code` reuses the finding codes of
/// [`crate::dumps::RULES`] (`json.syntax`, `field.missing`, `field.type`, `field.value`) so a
/// conversion failure reads like any other finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertError {
    pub code: &'static str,
    pub message: String,
}

impl ConvertError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ConvertError {
            code,
            message: message.into(),
        }
    }
    pub fn missing(field: &str, why: &str) -> Self {
        Self::new("field.missing", format!("`{field}` is required: {why}"))
    }
    pub fn type_(field: &str, want: &str, got: &Value) -> Self {
        Self::new(
            "field.type",
            format!("`{field}` must be {want}, not {}", describe(got)),
        )
    }
    pub fn value(field: &str, msg: impl fmt::Display) -> Self {
        Self::new("field.value", format!("`{field}` {msg}"))
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ConvertError {}

/// A vendor's export read line by line into canonical records. Each lives in the folder of
/// the provider that writes it (`src/providers/<name>/dump.rs`), and the registry lists them
/// ([`crate::providers::registry::dump_formats`]): the pipeline here never names one.
pub struct VendorFormat {
    /// What uploads, `--format` and the API call it: the provider's id.
    pub id: &'static str,
    /// The upload form's choice, in the vendor's words for its export.
    pub choice: &'static str,
    /// What an upload was read as, in words ("… export").
    pub read_as: &'static str,
    /// How surely a file whose first line is this one is this format: 0 not at all; the
    /// highest claim wins, the registry's order breaks a tie.
    pub claim: fn(FirstLine<'_>) -> u8,
    /// One line of the export as the canonical records it stands for.
    pub convert_line: fn(&str) -> Result<Vec<Value>, ConvertError>,
}

/// A file's first line as a [`VendorFormat`] claims it.
#[derive(Clone, Copy, Debug)]
pub enum FirstLine<'a> {
    /// It parses as a JSON object.
    Object(&'a Map<String, Value>),
    /// It starts like JSON but does not parse (or is cut at the detection prefix): its text.
    Broken(&'a str),
}

/// The formats imshift reads.
#[derive(Clone, Copy)]
pub enum Format {
    Canonical,
    Csv,
    Vendor(&'static VendorFormat),
}

impl Format {
    /// Its name in uploads, the API and the database.
    pub fn id(self) -> &'static str {
        match self {
            Format::Canonical => "canonical",
            Format::Csv => "csv",
            Format::Vendor(v) => v.id,
        }
    }

    /// The format named `id`, if imshift reads it.
    pub fn named(id: &str) -> Option<Format> {
        match id {
            "canonical" => Some(Format::Canonical),
            "csv" => Some(Format::Csv),
            _ => vendor_formats()
                .iter()
                .find(|v| v.id == id)
                .map(|v| Format::Vendor(v)),
        }
    }

    /// What people call it.
    pub fn label(self) -> &'static str {
        match self {
            Format::Canonical => "imshift canonical JSON Lines",
            Format::Csv => "CSV",
            Format::Vendor(v) => v.read_as,
        }
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Format) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Format {}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The vendor formats this build reads, from the registry.
pub fn vendor_formats() -> &'static [&'static VendorFormat] {
    crate::providers::registry::dump_formats()
}

/// Every format an upload may name: `auto` (tell from the content), then each format.
pub fn upload_choices() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("auto", "Tell from the content"),
        ("canonical", "imshift canonical JSON Lines"),
    ];
    out.extend(vendor_formats().iter().map(|v| (v.id, v.choice)));
    out.push(("csv", "CSV (accounts, friends or members)"));
    out
}

/// How much of the first line [`detect`] looks at: a record's keys show in its first bytes, and
/// a huge first line (hostile, or one enormous record) is never parsed whole to tell its format.
pub const DETECT_PREFIX_BYTES: usize = 64 * 1024;

/// Tells the formats apart from the first line of a file (its first [`DETECT_PREFIX_BYTES`]
/// suffice). `None` when it is none of them.
pub fn detect(first_line: &str) -> Option<Format> {
    let mut end = first_line.len().min(DETECT_PREFIX_BYTES);
    while !first_line.is_char_boundary(end) {
        end -= 1;
    }
    let first_line = &first_line[..end];
    let line = first_line
        .strip_prefix('\u{feff}')
        .unwrap_or(first_line)
        .trim();
    if line.is_empty() {
        return None;
    }
    if line.starts_with('{') {
        let parsed = serde_json::from_str::<Value>(line);
        let first = match &parsed {
            Ok(Value::Object(o)) if o.contains_key("kind") => return Some(Format::Canonical),
            Ok(Value::Object(o)) => FirstLine::Object(o),
            // A broken first line still says who wrote it; the converter then reports where.
            _ if line.contains("\"kind\"") => return Some(Format::Canonical),
            _ => FirstLine::Broken(line),
        };
        let mut best: Option<(u8, &'static VendorFormat)> = None;
        for v in vendor_formats() {
            let c = (v.claim)(first);
            if c > 0 && best.is_none_or(|(b, _)| c > b) {
                best = Some((c, *v));
            }
        }
        return best.map(|(_, v)| Format::Vendor(v));
    }
    if csv::CsvConverter::new(line, None).is_ok() {
        return Some(Format::Csv);
    }
    None
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Parses one line as a JSON object; the error quotes the start of the line.
pub(crate) fn parse_object(line: &str) -> Result<Map<String, Value>, ConvertError> {
    let text = line.strip_prefix('\u{feff}').unwrap_or(line).trim();
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(ConvertError::new(
            "json.syntax",
            format!("the line is {}, not a JSON object", describe(&other)),
        )),
        Err(e) => {
            let excerpt: String = text.chars().take(80).collect();
            Err(ConvertError::new(
                "json.syntax",
                format!("not valid JSON: {e} (line starts: {excerpt:?})"),
            ))
        }
    }
}

/// An id: strings as they are, integers written out (vendors number their ids).
pub(crate) fn id_of(v: Option<&Value>, field: &str, why: &str) -> Result<String, ConvertError> {
    match v {
        None | Some(Value::Null) => Err(ConvertError::missing(field, why)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ConvertError::value(
            field,
            format!("is empty; it is needed as {why}"),
        )),
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(ConvertError::type_(field, "a string or integer id", other)),
    }
}

/// An integer given as a number or a string of digits (real exports quote their numbers).
pub(crate) fn int_of(v: Option<&Value>, field: &str) -> Result<Option<i64>, ConvertError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            // 1040.0 is an integer written by a float-happy exporter; 10.5 is not.
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(ConvertError::type_(
                    field,
                    "an integer",
                    &Value::Number(n.clone()),
                )),
            },
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ConvertError::type_(field, "an integer", &Value::String(s.clone()))),
        Some(other) => Err(ConvertError::type_(field, "an integer", other)),
    }
}

/// A decimal number given as a number or a string of one.
pub(crate) fn float_of(v: Option<&Value>, field: &str) -> Result<Option<Value>, ConvertError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(Value::Number(n.clone()))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| ConvertError::type_(field, "a number", &Value::String(s.clone()))),
        Some(other) => Err(ConvertError::type_(field, "a number", other)),
    }
}

/// A time in milliseconds; required. Seconds are passed on as they are: the canonical parser
/// converts them and warns, so the warning reaches the user once, in one place.
pub(crate) fn ms_of(v: Option<&Value>, field: &str) -> Result<i64, ConvertError> {
    match int_of(v, field)? {
        None => Err(ConvertError::missing(
            field,
            "the time in milliseconds since 1970",
        )),
        Some(t) if t <= 0 => Err(ConvertError::value(
            field,
            format!("= {t}; a time must be positive milliseconds"),
        )),
        Some(t) => Ok(t),
    }
}

/// A file format from a vendor's `ext` or a file name: "jpg" from " JPG", ".jpg" or "a.jpg".
pub(crate) fn format_of(s: &str) -> Option<String> {
    let s = s.trim();
    let ext = s
        .rsplit('.')
        .next()
        .unwrap_or(s)
        .trim()
        .to_ascii_lowercase();
    (!ext.is_empty() && ext.len() <= 10 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(ext)
}

/// Sets `key` only when there is a value: absent stays absent in the canonical record.
pub(crate) fn put(o: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(key.to_string(), v);
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::dumps::canonical::{parse_line, Sink};
    use crate::dumps::Severity;
    use serde_json::Value;
    use std::collections::HashSet;

    /// Runs a converted record through the canonical parser; panics with the findings on error.
    pub fn assert_canonical(v: &Value) {
        let mut findings = Vec::new();
        let mut seen = HashSet::new();
        let mut sink = Sink {
            file: "converted",
            findings: &mut findings,
            unknown_seen: &mut seen,
        };
        let bytes = serde_json::to_vec(v).unwrap();
        let res = parse_line(bytes.as_slice(), 1, &mut sink);
        let errors: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(
            res.is_ok() && errors.is_empty(),
            "{v} is not canonical: {errors:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_tells_formats_apart() {
        assert_eq!(
            detect(r#"{"kind":"account","id":"u1"}"#),
            Some(Format::Canonical)
        );
        assert_eq!(detect("accid,nickname,icon"), Some(Format::Csv));
        assert_eq!(detect("owner,friend"), Some(Format::Csv));
        assert_eq!(detect("hello world"), None);
        assert_eq!(detect(""), None);
        assert_eq!(detect(r#"{"foo":1}"#), None);
    }

    #[test]
    fn numbers_from_strings() {
        assert_eq!(int_of(Some(&"42".into()), "x").unwrap(), Some(42));
        assert_eq!(
            int_of(Some(&serde_json::json!(1040.0)), "x").unwrap(),
            Some(1040)
        );
        let e = int_of(Some(&"4x".into()), "size").unwrap_err();
        assert!(e.message.contains("`size`"), "{e}");
        assert_eq!(format_of(" amr").as_deref(), Some("amr"));
        assert_eq!(format_of("a.JPG").as_deref(), Some("jpg"));
    }
}
