//! RongCloud as a migration's source or target. Its history arrives as a canonical dump; its server API (imports, sync) is not built yet.

use crate::providers::dump_only::DumpOnly;
use crate::providers::Provider;
use std::sync::Arc;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(DumpOnly {
        id: "rongcloud",
        label: "RongCloud",
        target: true,
        note: "Nothing to connect yet: imports into RongCloud and its sync are not built yet.",
    })
}
