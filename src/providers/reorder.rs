//! A connection's reorder window: how long an event from its side waits before it is sent,
//! so that an earlier event of the same conversation that was posted side by side with it and
//! arrived a little later still goes first. Shared by the providers whose side may deliver
//! one conversation's events concurrently (callbacks sent side by side, relay batches posted
//! from several workers).

use super::{Connection, FieldError};
use crate::model::{FieldKind, FieldSpec};
use serde_json::{Map, Value};
use std::time::Duration;

/// The public field holding the window, in milliseconds.
pub const FIELD: &str = "reorder_ms";

/// The longest window a connection may set: past it, holding costs more than the rare
/// overtaking it fixes.
pub const MAX_MS: i64 = 10_000;

/// The form field; `why` says when this side's events overtake each other.
pub fn field(why: &str) -> FieldSpec {
    FieldSpec {
        id: FIELD.into(),
        label: "Reorder window (ms)".into(),
        kind: FieldKind::Number,
        required: false,
        help: format!(
            "Coexistence: {why} imshift holds each event this long so an earlier one still goes first; every event from this side waits that long. Empty or 0: relay at once."
        ),
        placeholder: String::new(),
        choices: vec![],
        only_when: None,
    }
}

/// Checks the window in `public` and stores it as a number (an empty field is 0); `Ok(false)`
/// when the field is absent.
pub fn check(public: &mut Map<String, Value>) -> Result<bool, FieldError> {
    let ms = match public.get(FIELD) {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if s.trim().is_empty() => Some(0),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .filter(|n| (0..=MAX_MS).contains(n))
    .ok_or_else(|| {
        FieldError::new(
            FIELD,
            format!("the reorder window is a number of milliseconds from 0 to {MAX_MS}"),
        )
    })?;
    public.insert(FIELD.into(), ms.into());
    Ok(true)
}

/// The connection's window (zero when unset).
pub fn hold(conn: &Connection) -> Duration {
    let ms = conn.number(FIELD).unwrap_or(0).clamp(0, MAX_MS);
    Duration::from_millis(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_window_is_whole_milliseconds_within_ten_seconds() {
        let mut p = Map::new();
        assert!(!check(&mut p).unwrap(), "absent");
        for (given, kept) in [(json!(" 25 "), 25), (json!(""), 0), (json!(10_000), 10_000)] {
            p.insert(FIELD.into(), given);
            assert!(check(&mut p).unwrap());
            assert_eq!(p[FIELD], json!(kept));
        }
        for bad in [
            json!(-1),
            json!(10_001),
            json!("soon"),
            json!(1.5),
            json!([]),
        ] {
            p.insert(FIELD.into(), bad.clone());
            let e = check(&mut p).unwrap_err();
            assert_eq!(e.field, FIELD, "{bad}");
        }
    }
}
