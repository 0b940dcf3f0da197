//! Small JSON helpers for the API handlers; `code` is the module's error for a missing or
//! wrong field.

use super::{rej, Ctx, Reject};
use serde_json::Value;

pub(super) fn get_str(v: &Value, field: &str, code: i64) -> Result<String, Reject> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(rej(code, format!("{field} must be a string"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

pub(super) fn opt_str(v: &Value, field: &str, code: i64) -> Result<Option<String>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(rej(code, format!("{field} must be a string"))),
    }
}

pub(super) fn get_u64(v: &Value, field: &str, code: i64) -> Result<u64, Reject> {
    match v.get(field) {
        Some(n) if n.is_u64() => Ok(n.as_u64().unwrap_or(0)),
        Some(_) => Err(rej(code, format!("{field} must be a non-negative integer"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

pub(super) fn get_u32(v: &Value, field: &str, code: i64) -> Result<u64, Reject> {
    let n = get_u64(v, field, code)?;
    if n > u64::from(u32::MAX) {
        return Err(rej(code, format!("{field} must fit in 32 bits")));
    }
    Ok(n)
}

pub(super) fn opt_u64(v: &Value, field: &str, code: i64) -> Result<Option<u64>, Reject> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => get_u64(v, field, code).map(Some),
    }
}

pub(super) fn get_array<'v>(
    v: &'v Value,
    field: &str,
    code: i64,
) -> Result<&'v Vec<Value>, Reject> {
    match v.get(field) {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(rej(code, format!("{field} must be an array"))),
        None => Err(rej(code, format!("{field} is required"))),
    }
}

pub(super) fn batch(ctx: &Ctx, api: &str, n: usize, code: i64) -> Result<(), Reject> {
    match ctx.config.limits.batch(api) {
        Some(max) if n > max => Err(rej(
            code,
            format!("{n} items in one request; at most {max} are allowed"),
        )),
        _ => Ok(()),
    }
}

pub(super) fn string_list(v: &Value, field: &str, code: i64) -> Result<Vec<String>, Reject> {
    get_array(v, field, code)?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| rej(code, format!("{field} must hold strings")))
        })
        .collect()
}
