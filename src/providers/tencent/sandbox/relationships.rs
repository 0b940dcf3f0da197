//! Relationships: friend_import, friend_add, friend_delete, friend_check, black_list_add.

use super::args::{batch, get_array, get_str, string_list};
use super::{rej, Ctx, Data, Out, Reject};
use serde_json::{json, Map, Value};

fn sns_result(items: Vec<Value>, fail: Vec<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("ResultItem".into(), Value::Array(items));
    if !fail.is_empty() {
        out.insert("Fail_Account".into(), Value::Array(fail));
    }
    out
}

pub(super) fn friend_write(ctx: &mut Ctx, d: &mut Data, v: &Value, api: &str, both: bool) -> Out {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let items = get_array(v, "AddFriendItem", 30001)?;
    batch(ctx, api, items.len(), 30001)?;
    let both = both && v.get("AddType").and_then(Value::as_str) != Some("Add_Type_Single");
    let (mut results, mut fail, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for it in items {
        let to = get_str(it, "To_Account", 30001)?;
        let source_ok = it
            .get("AddSource")
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("AddSource_Type_"));
        let code = if !ctx.account_exists(d, &to) {
            30003
        } else if !source_ok || to == from {
            30001
        } else if api == "sns/friend_import"
            && d.friends.get(&from).is_some_and(|f| f.contains(&to))
        {
            // Tencent answers a friend already on the list with 30001, the code it also
            // uses for a bad parameter (spec: "30001 ... also: already friend").
            30001
        } else {
            d.friends
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            if both {
                d.friends
                    .entry(to.clone())
                    .or_default()
                    .insert(from.clone());
            }
            pairs.push(json!({"From_Account": from, "To_Account": to, "Initiator_Account": from}));
            0
        };
        if code != 0 {
            fail.push(json!(to));
        }
        results.push(json!({"To_Account": to, "ResultCode": code, "ResultInfo": ""}));
    }
    // friend_add calls back (ClientCmd friend_add); friend_import, an import, does not.
    if api == "sns/friend_add" && !pairs.is_empty() {
        let force = v.get("ForceAddFlags").and_then(Value::as_u64).unwrap_or(0);
        ctx.callback(
            "Sns.CallbackFriendAdd",
            json!({"PairList": pairs, "ClientCmd": "friend_add", "Admin_Account": ctx.admin,
                   "ForceFlag": force}),
        );
    }
    Ok(sns_result(results, fail))
}

/// friend_delete (CN-1644): `DeleteType` `Delete_Type_Both` (the default) takes each off the
/// other's list too. Per account: 0 deleted, 31704 not a friend (UNCONFIRMED code: Tencent's
/// sns list names it for deletes), 30003 unknown. Fires `Sns.CallbackFriendDelete`.
pub(super) fn friend_delete(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (from, to) = owner_and_accounts(ctx, d, v, "sns/friend_delete")?;
    let both = match v.get("DeleteType").and_then(Value::as_str) {
        None | Some("Delete_Type_Both") => true,
        Some("Delete_Type_Single") => false,
        Some(other) => {
            return Err(rej(
                30001,
                format!("DeleteType {other:?} is neither Delete_Type_Single nor Delete_Type_Both"),
            ))
        }
    };
    let (mut results, mut fail, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for t in to {
        let code = if !ctx.account_exists(d, &t) {
            30003
        } else if d.friends.get_mut(&from).is_some_and(|f| f.remove(&t)) {
            if both {
                if let Some(f) = d.friends.get_mut(&t) {
                    f.remove(&from);
                }
            }
            pairs.push(json!({"From_Account": from, "To_Account": t}));
            0
        } else {
            31704
        };
        if code != 0 {
            fail.push(json!(t));
        }
        results.push(json!({"To_Account": t, "ResultCode": code, "ResultInfo": ""}));
    }
    if !pairs.is_empty() {
        // Admin_Account says the REST API did it; a user's own delete has none.
        let mut body = json!({"PairList": pairs, "ClientCmd": "friend_delete"});
        if ctx.platform == "RESTAPI" {
            body["Admin_Account"] = json!(ctx.admin);
        }
        ctx.callback("Sns.CallbackFriendDelete", body);
    }
    Ok(sns_result(results, fail))
}

/// friend_check (CN-1646): which of `To_Account` are on `From_Account`'s list, and with
/// `CheckResult_Type_Both` which have `From_Account` on theirs. At most 1000 accounts.
pub(super) fn friend_check(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let (from, to) = owner_and_accounts(ctx, d, v, "sns/friend_check")?;
    let both = match get_str(v, "CheckType", 30001)?.as_str() {
        "CheckResult_Type_Single" => false,
        "CheckResult_Type_Both" => true,
        other => {
            return Err(rej(
                30001,
                format!(
                "CheckType {other:?} is neither CheckResult_Type_Single nor CheckResult_Type_Both"
            ),
            ))
        }
    };
    let on = |a: &str, b: &str| d.friends.get(a).is_some_and(|f| f.contains(b));
    let items: Vec<Value> = to
        .iter()
        .map(|t| {
            let relation = match (on(&from, t), both && on(t, &from)) {
                (true, true) => "CheckResult_Type_BothWay",
                (true, false) => "CheckResult_Type_AWithB",
                (false, true) => "CheckResult_Type_BWithA",
                (false, false) => "CheckResult_Type_NoRelation",
            };
            json!({"To_Account": t, "Relation": relation, "ResultCode": 0, "ResultInfo": ""})
        })
        .collect();
    let mut out = Map::new();
    out.insert("InfoItem".into(), Value::Array(items));
    out.insert("Fail_Account".into(), json!([]));
    Ok(out)
}

pub(super) fn black_list_add(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let to = string_list(v, "To_Account", 30001)?;
    batch(ctx, "sns/black_list_add", to.len(), 30001)?;
    let (mut results, mut fail) = (Vec::new(), Vec::new());
    for t in to {
        let code = if ctx.account_exists(d, &t) {
            d.blocks.entry(from.clone()).or_default().insert(t.clone());
            0
        } else {
            fail.push(json!(t));
            30003
        };
        results.push(json!({"To_Account": t, "ResultCode": code, "ResultInfo": ""}));
    }
    Ok(sns_result(results, fail))
}

/// `From_Account` (an existing account) and `To_Account` (a non-empty list within `api`'s
/// batch size), as friend_delete and friend_check both take them.
fn owner_and_accounts(
    ctx: &mut Ctx,
    d: &mut Data,
    v: &Value,
    api: &str,
) -> Result<(String, Vec<String>), Reject> {
    let from = get_str(v, "From_Account", 30001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(30003, format!("account {from:?} does not exist")));
    }
    let to = string_list(v, "To_Account", 30001)?;
    if to.is_empty() {
        return Err(rej(30001, "To_Account is empty"));
    }
    batch(ctx, api, to.len(), 30001)?;
    Ok((from, to))
}
