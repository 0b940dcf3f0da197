//! Easemob as a migration's source. Its history arrives as an Easemob export on the Dumps tab; imshift does not call its API yet.

use crate::model::{FieldSpec, Side};
use crate::providers::{FieldError, Provider};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Easemob;

pub fn provider() -> Arc<dyn Provider> {
    Arc::new(Easemob)
}

#[async_trait::async_trait]
impl Provider for Easemob {
    fn id(&self) -> &'static str {
        "easemob"
    }

    fn label(&self) -> &'static str {
        "Easemob"
    }

    fn can_be(&self, side: Side) -> bool {
        side == Side::Source
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        vec![]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        public.clear();
        Ok(())
    }

    fn note(&self, _side: Side) -> Option<String> {
        Some("Nothing to connect: upload the Easemob export on the Dumps tab. Calling Easemob during coexistence is not built yet.".into())
    }
}
