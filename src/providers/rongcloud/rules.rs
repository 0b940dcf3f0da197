//! RongCloud's rules on the records it takes (reference §4), judged during validation
//! (`imshift validate --target rongcloud` and the console's validate job).
//!
//! Ids are the app's own on RongCloud, so imshift keeps the old ones: an id that does not fit
//! is reported here, to be mapped before importing, rather than changed on the way.

use crate::dumps::canonical::Refs;
use crate::providers::{Problem, TargetRules};

/// `userId`: at most 64 bytes of letters, digits and `+ = - _` (§2.1, §4).
pub fn check_user_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=-_".contains(*c)))
    {
        return Err(format!(
            "{c:?} is not allowed; only letters, digits and + = - _"
        ));
    }
    // Every allowed character is one byte, so this is also the count of characters.
    if id.len() > 64 {
        return Err(format!("{} bytes; at most 64", id.len()));
    }
    Ok(())
}

/// `groupId`: at most 64 letters and digits (§2.4, §4: the current docs allow no `_` or `-`).
pub fn check_group_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!("{c:?} is not allowed; only letters and digits"));
    }
    if id.len() > 64 {
        return Err(format!("{} characters; at most 64", id.len()));
    }
    Ok(())
}

pub struct Rules;

impl TargetRules for Rules {
    fn name(&self) -> &'static str {
        "rongcloud"
    }

    fn label(&self) -> &'static str {
        "RongCloud"
    }

    // Messages are not imported into RongCloud (§2.8), so no rule on their size applies.
    fn check(&self, refs: &Refs, problems: &mut Vec<Problem>) {
        match refs {
            Refs::Account { id } => {
                if let Err(why) = check_user_id(id) {
                    problems.push((
                        "target.user_id",
                        format!("`id` = {id:?}: RongCloud userId rule: {why}"),
                    ));
                }
            }
            Refs::Group { id, .. } => {
                if let Err(why) = check_group_id(id) {
                    problems.push((
                        "target.group_id",
                        format!("`id` = {id:?}: RongCloud groupId rule: {why}"),
                    ));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_section_four() {
        assert!(check_user_id("user_1+a=b-c").is_ok());
        assert!(check_user_id(&"a".repeat(64)).is_ok());
        assert!(check_user_id(&"a".repeat(65))
            .unwrap_err()
            .contains("at most 64"));
        assert!(check_user_id("a@b").unwrap_err().contains("'@'"));
        assert!(check_user_id("张三").is_err());
        assert!(check_user_id("").is_err());
        assert!(check_group_id("g000001").is_ok());
        assert!(check_group_id("g_1").is_err());
        assert!(check_group_id(&"g".repeat(65)).is_err());
        let mut p = vec![];
        Rules.check(&Refs::Account { id: "a b".into() }, &mut p);
        Rules.check(
            &Refs::Group {
                id: "@TGS#1".into(),
                owner: "u".into(),
                group_type: "private".into(),
            },
            &mut p,
        );
        Rules.check(&Refs::Account { id: "Bob".into() }, &mut p);
        let codes: Vec<_> = p.iter().map(|x| x.0).collect();
        assert_eq!(codes, ["target.user_id", "target.group_id"]);
    }
}
