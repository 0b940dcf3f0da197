//! Tencent Cloud IM (TIM / Tencent Cloud Chat): server REST API adapter and a local sandbox.
//!
//! Facts follow `shared/providers/tencent-im.md`; section numbers in comments refer to it.

pub mod callbacks;
pub mod cli;
pub mod client;
pub mod convert;
pub mod errors;
pub mod import;
pub mod provider;
pub mod sandbox;
pub mod sync;
pub mod usersig;

pub use client::{TencentClient, TencentConfig};
pub use errors::{classify, explain, TencentError};

/// A data centre. An SDKAppID lives in exactly one; calling another gives 70016/70020.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub id: &'static str,
    pub label: &'static str,
    pub domain: &'static str,
    /// Documented fallback for networks where the primary domain is hijacked.
    pub backup_domain: &'static str,
}

impl Region {
    pub fn base_url(&self) -> String {
        format!("https://{}", self.domain)
    }
}

/// Spec §1.1.
pub const REGIONS: &[Region] = &[
    Region {
        id: "china",
        label: "China",
        domain: "console.tim.qq.com",
        backup_domain: "adminapi.my-imcloud.com",
    },
    Region {
        id: "singapore",
        label: "Singapore",
        domain: "adminapisgp.im.qcloud.com",
        backup_domain: "adminapisgp.my-imcloud.com",
    },
    Region {
        id: "seoul",
        label: "Seoul",
        domain: "adminapikr.im.qcloud.com",
        backup_domain: "adminapikr.my-imcloud.com",
    },
    Region {
        id: "tokyo",
        label: "Tokyo",
        domain: "adminapijpn.im.qcloud.com",
        backup_domain: "adminapijpn.my-imcloud.com",
    },
    Region {
        id: "frankfurt",
        label: "Frankfurt",
        domain: "adminapiger.im.qcloud.com",
        backup_domain: "adminapiger.my-imcloud.com",
    },
    Region {
        id: "mumbai",
        label: "Mumbai",
        domain: "adminapiind.im.qcloud.com",
        backup_domain: "adminapiind.my-imcloud.com",
    },
    Region {
        id: "silicon-valley",
        label: "Silicon Valley",
        domain: "adminapiusa.im.qcloud.com",
        backup_domain: "adminapiusa.my-imcloud.com",
    },
    Region {
        id: "jakarta",
        label: "Jakarta",
        domain: "adminapiidn.im.qcloud.com",
        backup_domain: "adminapiidn.my-imcloud.com",
    },
];

pub fn region(id: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.id == id)
}

/// One API's defaults: `(path, qps, batch)` where path is `service/command` and batch is the
/// largest list the API takes in one request (None for single-item APIs).
/// QPS from spec §1.4, batch sizes from §5 item 5 / §6. Where the spec says UNCONFIRMED the
/// stricter value is used.
pub const LIMITS: &[(&str, u32, Option<usize>)] = &[
    ("im_open_login_svc/account_import", 200, None),
    ("im_open_login_svc/multiaccount_import", 100, Some(100)),
    ("im_open_login_svc/account_check", 100, Some(100)),
    ("profile/portrait_set", 200, None),
    ("profile/portrait_get", 200, Some(100)),
    ("sns/friend_import", 200, Some(1000)),
    // friend_check: 200/s, at most 1000 To_Account (CN-1646).
    ("sns/friend_check", 200, Some(1000)),
    // friend_add's item cap is UNCONFIRMED; 100 is the stricter guess.
    ("sns/friend_add", 200, Some(100)),
    // friend_delete: 200/s, at most 1000 To_Account (CN-1644).
    ("sns/friend_delete", 200, Some(1000)),
    ("sns/black_list_add", 200, Some(1000)),
    ("openim/importmsg", 200, None),
    ("openim/sendmsg", 200, None),
    ("openim/admin_getroammsg", 200, None),
    ("openim/admin_msgwithdraw", 200, None),
    // 200/s (CN-62118); the conversations an account had, for a gap's new chats.
    ("recentcontact/get_list", 200, None),
    ("group_open_http_svc/import_group", 200, None),
    // 20 is the current (2026-01) cap; older docs said 100, 300, 500.
    ("group_open_http_svc/import_group_member", 200, Some(20)),
    ("group_open_http_svc/import_group_msg", 200, Some(7)),
    ("group_open_http_svc/set_unread_msg_num", 200, None),
    ("group_open_http_svc/create_group", 200, Some(100)),
    ("group_open_http_svc/destroy_group", 200, None),
    ("group_open_http_svc/modify_group_base_info", 200, None),
    ("group_open_http_svc/add_group_member", 200, Some(300)),
    ("group_open_http_svc/delete_group_member", 200, Some(100)),
    ("group_open_http_svc/send_group_msg", 200, None),
    ("group_open_http_svc/group_msg_get_simple", 200, Some(20)),
    // At most 10 seqs a request (CN-12341).
    ("group_open_http_svc/group_msg_recall", 200, Some(10)),
];

pub use crate::providers::limits::ApiLimit;

/// The limits in force, starting from [`LIMITS`]; override per API (raised QPS plans, the
/// import_group_member batch that has changed over time, low limits in tests). A provider's
/// table of the generic [`crate::providers::Limits`] whose default is Tencent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits(pub crate::providers::Limits);

impl Default for Limits {
    fn default() -> Self {
        Limits(crate::providers::Limits::from_table(LIMITS))
    }
}

impl std::ops::Deref for Limits {
    type Target = crate::providers::Limits;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Limits {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Limits {
    /// Set every API's QPS at once (tests, raised plans).
    pub fn with_all_qps(self, qps: u32) -> Self {
        Limits(self.0.with_all_qps(qps))
    }

    /// import_group_member's cap has been 20, 100, 300 and 500 over the years.
    pub fn with_import_group_member_batch(mut self, batch: usize) -> Self {
        self.set_batch("group_open_http_svc/import_group_member", batch);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_cover_the_documented_data_centres() {
        assert_eq!(REGIONS.len(), 8);
        assert_eq!(region("china").unwrap().domain, "console.tim.qq.com");
        assert_eq!(
            region("singapore").unwrap().base_url(),
            "https://adminapisgp.im.qcloud.com"
        );
    }

    #[test]
    fn limits_can_be_overridden() {
        let l = Limits::default().with_import_group_member_batch(300);
        assert_eq!(
            l.batch("group_open_http_svc/import_group_member"),
            Some(300)
        );
        assert_eq!(l.batch("group_open_http_svc/import_group_msg"), Some(7));
        assert_eq!(l.qps("im_open_login_svc/account_check"), Some(100));
        assert_eq!(
            Limits::default().with_all_qps(3).qps("openim/sendmsg"),
            Some(3)
        );
        assert!(l.get("nope/nothing").is_none());
    }
}
