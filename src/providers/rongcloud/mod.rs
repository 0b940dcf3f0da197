//! RongCloud as a migration's source or target. Its history arrives as a canonical dump; its server API (imports, sync) is not built yet.

use crate::model::{FieldSpec, Side};
use crate::providers::{FieldError, Provider};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Rongcloud;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Rongcloud)
}

#[async_trait::async_trait]
impl Provider for Rongcloud {
    fn id(&self) -> &'static str {
        "rongcloud"
    }

    fn label(&self) -> &'static str {
        "RongCloud"
    }

    fn can_be(&self, _side: Side) -> bool {
        true
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        vec![]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        public.clear();
        Ok(())
    }

    fn note(&self, _side: Side) -> Option<String> {
        Some(
            "Nothing to connect yet: imports into RongCloud and its sync are not built yet.".into(),
        )
    }
}
