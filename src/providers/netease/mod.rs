//! NetEase Yunxin as a migration's source or target. Its history arrives as NetEase migration files on the Dumps tab; its server API (imports, sync) is not built yet.

pub mod dump;

use crate::providers::dump_only::DumpOnly;
use crate::providers::Provider;
use std::sync::Arc;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(DumpOnly {
        id: "netease",
        label: "NetEase Yunxin",
        target: true,
        note: "Nothing to connect yet: upload NetEase migration files on the Dumps tab. Imports into NetEase Yunxin and its sync are not built yet.",
    })
}
