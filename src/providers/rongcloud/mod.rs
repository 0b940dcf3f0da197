//! RongCloud (融云) as a migration side: its IM Server API client, imports into it, and its
//! rules on ids. As a source its history arrives as a canonical dump on the Dumps tab.
//!
//! Facts follow the RongCloud reference beside this file (`reference.md`); section numbers in
//! comments refer to it. What it marks UNCONFIRMED stays configurable here.

pub mod callbacks;
pub mod client;
pub mod errors;
pub mod history_bundles;
pub mod import;
pub mod provider;
pub mod read_back;
pub mod rules;
pub mod sandbox;
pub mod sign;
pub mod sync;

pub use client::{RongcloudClient, RongcloudConfig, TimestampUnit};
pub use errors::{classify, explain, RongcloudError};
pub use provider::provider;

/// A data centre (§1.1): the primary domain of the Server API and the backup the SDKs switch
/// to when the primary times out or answers 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCentre {
    pub id: &'static str,
    pub label: &'static str,
    pub base_url: &'static str,
    pub backup_url: Option<&'static str>,
}

pub const DATA_CENTRES: &[DataCentre] = &[
    DataCentre {
        id: "china",
        label: "China (Beijing)",
        base_url: "https://api.rong-api.com",
        backup_url: Some("https://api-b.rong-api.com"),
    },
    DataCentre {
        id: "singapore",
        label: "Singapore",
        base_url: "https://api.sg-light-api.com",
        backup_url: Some("https://api-b.sg-light-api.com"),
    },
    DataCentre {
        id: "singapore_b",
        label: "Singapore B",
        base_url: "https://api.sg-b-light-api.com",
        backup_url: Some("https://api-b.sg-b-light-api.com"),
    },
    DataCentre {
        id: "north_america",
        label: "North America",
        base_url: "https://api.us-light-api.com",
        backup_url: Some("https://api-b.us-light-api.com"),
    },
    DataCentre {
        id: "saudi_arabia",
        label: "Saudi Arabia",
        base_url: "https://api.sau-light-api.com",
        backup_url: Some("https://api-b.sau-light-api.com"),
    },
    // The older domains still answer (§1.1); listed for apps whose servers pin them.
    DataCentre {
        id: "china_legacy",
        label: "China (legacy ronghub.com domain)",
        base_url: "https://api-cn.ronghub.com",
        backup_url: Some("https://api2-cn.ronghub.com"),
    },
    DataCentre {
        id: "singapore_legacy",
        label: "Singapore (legacy ronghub.com domain)",
        base_url: "https://api-sg01.ronghub.com",
        backup_url: None,
    },
];

pub fn data_centre(id: &str) -> Option<&'static DataCentre> {
    DATA_CENTRES.iter().find(|d| d.id == id)
}

/// The backup domain of a base URL that is a data centre's primary (a custom URL has none).
pub fn backup_of(base_url: &str) -> Option<&'static str> {
    let base = base_url.trim_end_matches('/');
    DATA_CENTRES
        .iter()
        .find(|d| d.base_url == base)
        .and_then(|d| d.backup_url)
}

/// Every API imshift calls: `(path without .json, requests per second, largest list per
/// request)`.
///
/// RongCloud limits each API on its own, per App Key (§1.5): 100/s for most, 200/s for
/// `user/getToken`. The figures are §6.4's working budget, 90% of the documented quota, so a
/// second's edge never tips into 1008; a migration can raise or lower them.
pub const LIMITS: &[(&str, u32, Option<usize>)] = &[
    ("user/getToken", 180, None),
    // Test connection and verification.
    ("user/info", 90, None),
    // §2.2: at most 20 blocked ids per call.
    ("user/blacklist/add", 90, Some(20)),
    ("user/blacklist/query", 90, None),
    // Hosted friends only (§2.3); one friend a call.
    ("friend/add", 90, None),
    // §2.4/§4: at most 1000 userIds per create or join.
    ("group/create", 90, Some(1000)),
    ("group/join", 90, Some(1000)),
    ("group/user/query", 90, None),
    // Sync's sends: private publish 6000 recipients a minute, group publish 20 groups a
    // second (§1.5), one each a call.
    ("message/private/publish", 90, None),
    ("message/group/publish", 18, None),
    ("group/quit", 90, None),
    ("group/dismiss", 90, None),
    ("group/refresh", 90, None),
    // Sync's look before a resend, and gap filling (§2.7).
    ("v3/message/private/query", 90, None),
    ("v3/message/group/query", 90, None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_centres_and_limits_follow_the_reference() {
        assert_eq!(
            data_centre("china").unwrap().base_url,
            "https://api.rong-api.com"
        );
        assert_eq!(
            backup_of("https://api.rong-api.com/"),
            Some("https://api-b.rong-api.com")
        );
        assert_eq!(backup_of("http://127.0.0.1:9000"), None);
        let l = crate::providers::Limits::from_table(LIMITS);
        assert_eq!(l.batch("user/blacklist/add"), Some(20));
        assert_eq!(l.batch("group/join"), Some(1000));
        assert!(l.qps("user/getToken") > l.qps("group/create"));
    }
}
