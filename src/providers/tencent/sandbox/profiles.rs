//! Profiles: portrait_set, portrait_get.

use super::args::{batch, get_array, get_str, string_list};
use super::{rej, Ctx, Data, Out};
use serde_json::{json, Map, Value};

const STANDARD_TAGS: &[&str] = &[
    "Tag_Profile_IM_Nick",
    "Tag_Profile_IM_Gender",
    "Tag_Profile_IM_BirthDay",
    "Tag_Profile_IM_Location",
    "Tag_Profile_IM_SelfSignature",
    "Tag_Profile_IM_AllowType",
    "Tag_Profile_IM_Language",
    "Tag_Profile_IM_Image",
    "Tag_Profile_IM_MsgSettings",
    "Tag_Profile_IM_AdminForbidType",
    "Tag_Profile_IM_Level",
    "Tag_Profile_IM_Role",
];

pub(super) fn portrait_set(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let from = get_str(v, "From_Account", 40001)?;
    if !ctx.account_exists(d, &from) {
        return Err(rej(40003, format!("account {from:?} does not exist")));
    }
    let items = get_array(v, "ProfileItem", 40001)?;
    let mut updates = Vec::new();
    for it in items {
        let tag = get_str(it, "Tag", 40001)?;
        let value = it
            .get("Value")
            .cloned()
            .ok_or_else(|| rej(40001, format!("{tag}: Value is required")))?;
        let known = STANDARD_TAGS.contains(&tag.as_str())
            || tag
                .strip_prefix("Tag_Profile_Custom_")
                .is_some_and(|k| ctx.config.custom_profile_tags.iter().any(|t| t == k));
        if !known {
            return Err(rej(
                40009,
                format!("tag {tag:?} is not a standard tag nor a registered custom tag"),
            ));
        }
        if value.as_str().is_some_and(|s| s.len() > 500) {
            return Err(rej(40601, format!("{tag}: value is longer than 500 bytes")));
        }
        updates.push((tag, value));
    }
    let items: Vec<Value> = updates
        .iter()
        .map(|(tag, value)| json!({"Tag": tag, "Value": value}))
        .collect();
    ctx.callback(
        "Profile.CallbackPortraitSet",
        json!({"From_Account": from, "Operator_Account": ctx.admin, "ProfileItem": items}),
    );
    let acc = d.accounts.entry(from).or_default();
    for (tag, value) in updates {
        match tag.as_str() {
            "Tag_Profile_IM_Nick" => acc.nick = value.as_str().map(str::to_string),
            "Tag_Profile_IM_Image" => acc.face_url = value.as_str().map(str::to_string),
            _ => {
                acc.profile.insert(tag, value);
            }
        }
    }
    Ok(Map::new())
}

pub(super) fn portrait_get(ctx: &mut Ctx, d: &mut Data, v: &Value) -> Out {
    let to = string_list(v, "To_Account", 40001)?;
    batch(ctx, "profile/portrait_get", to.len(), 40001)?;
    let tags = string_list(v, "TagList", 40001)?;
    let mut items = Vec::new();
    let mut fail = Vec::new();
    for id in to {
        let Some(acc) = d.accounts.get(&id) else {
            if ctx.account_exists(d, &id) {
                items.push(
                    json!({"To_Account": id, "ProfileItem": [], "ResultCode": 0, "ResultInfo": ""}),
                );
            } else {
                items.push(json!({"To_Account": id, "ProfileItem": [], "ResultCode": 40003, "ResultInfo": "account does not exist"}));
                fail.push(json!(id));
            }
            continue;
        };
        let mut profile = Vec::new();
        for t in &tags {
            let value = match t.as_str() {
                "Tag_Profile_IM_Nick" => acc.nick.clone().map(Value::String),
                "Tag_Profile_IM_Image" => acc.face_url.clone().map(Value::String),
                other => acc.profile.get(other).cloned(),
            };
            if let Some(value) = value {
                profile.push(json!({"Tag": t, "Value": value}));
            }
        }
        items.push(
            json!({"To_Account": id, "ProfileItem": profile, "ResultCode": 0, "ResultInfo": ""}),
        );
    }
    let mut out = Map::new();
    out.insert("UserProfileItem".into(), Value::Array(items));
    if !fail.is_empty() {
        out.insert("Fail_Account".into(), Value::Array(fail));
    }
    Ok(out)
}
