//! Accounts: account_import, multiaccount_import, account_check.

use super::args::{batch, get_array, get_str, opt_str, string_list};
use super::{rej, Ctx, Data, Out, Reject};
use crate::providers::tencent::convert::check_user_id;
use serde_json::{json, Map, Value};

pub(super) fn account_import(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let id = get_str(v, "UserID", 70402)?;
    check_user_id(&id).map_err(|e| rej(70402, e))?;
    let acc = d.accounts.entry(id).or_default();
    if let Some(n) = opt_str(v, "Nick", 70402)? {
        acc.nick = Some(n);
    }
    if let Some(f) = opt_str(v, "FaceUrl", 70402)? {
        acc.face_url = Some(f);
    }
    let _ = ctx;
    Ok(Map::new())
}

pub(super) fn multiaccount_import(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    // Both the old `Accounts` (strings) and the new `AccountList` (objects) forms.
    let items: Vec<(String, Option<String>, Option<String>)> = if v.get("AccountList").is_some() {
        get_array(v, "AccountList", 70402)?
            .iter()
            .map(|a| {
                Ok((
                    get_str(a, "UserID", 70402)?,
                    opt_str(a, "Nick", 70402)?,
                    opt_str(a, "FaceUrl", 70402)?,
                ))
            })
            .collect::<Result<_, Reject>>()?
    } else {
        string_list(v, "Accounts", 70402)?
            .into_iter()
            .map(|u| (u, None, None))
            .collect()
    };
    batch(
        ctx,
        "im_open_login_svc/multiaccount_import",
        items.len(),
        70206,
    )?;
    let mut fail = Vec::new();
    for (id, nick, face) in items {
        if check_user_id(&id).is_err() {
            fail.push(json!(id));
            continue;
        }
        let acc = d.accounts.entry(id).or_default();
        if nick.is_some() {
            acc.nick = nick;
        }
        if face.is_some() {
            acc.face_url = face;
        }
    }
    let mut out = Map::new();
    out.insert("FailAccounts".into(), Value::Array(fail));
    Ok(out)
}

pub(super) fn account_check(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let items = get_array(v, "CheckItem", 70402)?;
    batch(ctx, "im_open_login_svc/account_check", items.len(), 70206)?;
    let mut result = Vec::new();
    for it in items {
        let id = get_str(it, "UserID", 70402)?;
        let status = if ctx.account_exists(d, &id) {
            "Imported"
        } else {
            "NotImported"
        };
        result.push(
            json!({"UserID": id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status}),
        );
    }
    let mut out = Map::new();
    out.insert("ResultItem".into(), Value::Array(result));
    Ok(out)
}
