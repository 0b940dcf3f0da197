//! NetEase Yunxin as a migration's source or target. Its history arrives as NetEase migration files on the Dumps tab; its server API (imports, sync) is not built yet.

use crate::model::{FieldSpec, Side};
use crate::providers::{FieldError, Provider};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Netease;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Netease)
}

#[async_trait::async_trait]
impl Provider for Netease {
    fn id(&self) -> &'static str {
        "netease"
    }

    fn label(&self) -> &'static str {
        "NetEase Yunxin"
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
        Some("Nothing to connect yet: upload NetEase migration files on the Dumps tab. Imports into NetEase Yunxin and its sync are not built yet.".into())
    }
}
