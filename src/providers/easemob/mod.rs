//! Easemob as a migration's source. Its history arrives as an Easemob export on the Dumps tab; imshift does not call its API yet.

pub mod dump;

use crate::providers::dump_only::DumpOnly;
use crate::providers::Provider;
use std::sync::Arc;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(DumpOnly {
        id: "easemob",
        label: "Easemob",
        target: false,
        note: "Nothing to connect: upload the Easemob export on the Dumps tab. Calling Easemob during coexistence is not built yet.",
    })
}
