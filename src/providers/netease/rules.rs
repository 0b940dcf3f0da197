//! NetEase Yunxin's rules on the records it takes (reference §5), judged during validation.

use crate::dumps::canonical::Refs;
use crate::providers::{Problem, TargetRules};

/// `accid`: at most 32 characters of letters, digits and `_ @ . -` (§2.1).
pub fn check_accid(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if n == 0 {
        return Err("it is empty".into());
    }
    if n > 32 {
        return Err(format!("{n} characters; at most 32"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_@.-".contains(*c)))
    {
        return Err(format!(
            "{c:?} is not allowed; only letters, digits and _ @ . -"
        ));
    }
    Ok(())
}

pub struct Rules;

impl TargetRules for Rules {
    fn name(&self) -> &'static str {
        "netease"
    }

    fn label(&self) -> &'static str {
        "NetEase Yunxin"
    }

    fn check(&self, refs: &Refs, problems: &mut Vec<Problem>) {
        if let Refs::Account { id } = refs {
            match check_accid(id) {
                Err(why) => problems.push((
                    "target.user_id",
                    format!("`id` = {id:?}: NetEase Yunxin accid rule: {why}"),
                )),
                Ok(()) if id.chars().any(|c| c.is_ascii_uppercase()) => problems.push((
                    "target.user_id_case",
                    format!(
                        "`id` = {id:?} becomes {:?} on NetEase Yunxin, which keeps account ids in lower case",
                        id.to_lowercase()
                    ),
                )),
                Ok(()) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accids_follow_section_five() {
        assert!(check_accid("user_1@x.y-z").is_ok());
        assert!(check_accid(&"a".repeat(32)).is_ok());
        assert!(check_accid(&"a".repeat(33))
            .unwrap_err()
            .contains("at most 32"));
        assert!(check_accid("a b").unwrap_err().contains("' '"));
        assert!(check_accid("张三").is_err());
        let mut p = vec![];
        Rules.check(&Refs::Account { id: "Bob".into() }, &mut p);
        assert_eq!(p[0].0, "target.user_id_case");
    }
}
