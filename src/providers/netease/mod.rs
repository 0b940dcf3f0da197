//! NetEase Yunxin (网易云信, NIM) as a migration side: its V1 server API client, a local
//! sandbox, imports into it, and the history files NetEase's staff import. Its own export is
//! read on the Dumps tab (`dump.rs`).
//!
//! Facts follow the NetEase reference beside this file (`reference.md`); section numbers in
//! comments refer to it.

pub mod callbacks;
pub mod client;
pub mod dump;
pub mod errors;
pub mod history_files;
pub mod import;
pub mod provider;
pub mod read_back;
pub mod rules;
pub mod sandbox;
pub mod sign;
pub mod sync;

pub use client::{NeteaseClient, NeteaseConfig};
pub use errors::{classify, explain, NeteaseError};

/// A data centre (§1.1): the documented bases of the V1 API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCentre {
    pub id: &'static str,
    pub label: &'static str,
    pub base_url: &'static str,
}

pub const DATA_CENTRES: &[DataCentre] = &[
    DataCentre {
        id: "china",
        label: "China",
        base_url: "https://api.netease.im/nimserver",
    },
    DataCentre {
        id: "singapore",
        label: "Singapore (overseas)",
        base_url: "https://api-sg.netease.im/nimserver",
    },
];

pub fn data_centre(id: &str) -> Option<&'static DataCentre> {
    DATA_CENTRES.iter().find(|d| d.id == id)
}

/// Every API imshift calls: `(module/op, requests per second, largest list per request)`.
///
/// 100/s is the documented default of the 用户&关系 category on the standard and advanced
/// plans (§1.5); the team, message and history categories' quotas are UNCONFIRMED and take the
/// same working figure. All are overridable per migration (a raised plan, a shared app).
pub const LIMITS: &[(&str, u32, Option<usize>)] = &[
    ("user/create", 100, None),
    ("user/updateUinfo", 100, None),
    ("user/getUinfos", 100, Some(200)),
    ("friend/add", 100, None),
    ("friend/get", 100, None),
    ("user/setSpecialRelation", 100, None),
    // One team a call; imshift creates it with no members and adds them with team/add.
    ("team/create", 100, None),
    ("team/add", 100, Some(200)),
    ("team/addManager", 100, Some(10)),
    ("team/joinTeams", 100, None),
    ("team/query", 100, None),
    // Sync's group changes.
    ("team/update", 100, None),
    ("team/remove", 100, None),
    ("team/kick", 100, None),
    ("msg/sendMsg", 100, None),
    ("history/querySessionMsg", 100, Some(100)),
    ("history/queryTeamMsg", 100, Some(100)),
];

/// The frequency-control category an API counts against (§1.5): NetEase limits categories,
/// not single APIs, so APIs of one category share one pace.
pub fn category(api: &str) -> &'static str {
    match api.split('/').next().unwrap_or_default() {
        "user" | "friend" => "user_relation",
        "team" => "team",
        "msg" => "message",
        "history" => "history",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis_of_one_category_share_its_quota() {
        assert_eq!(category("user/create"), category("friend/add"));
        assert_eq!(category("user/setSpecialRelation"), "user_relation");
        assert_ne!(category("team/create"), category("user/create"));
        let l = crate::providers::Limits::from_table(LIMITS);
        assert_eq!(l.batch("team/add"), Some(200));
        assert_eq!(l.qps("user/create"), Some(100));
        assert_eq!(
            data_centre("china").unwrap().base_url,
            "https://api.netease.im/nimserver"
        );
    }
}
