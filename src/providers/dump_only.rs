//! A provider whose data arrives only as dumps: nothing to connect to, no API imshift calls.
//! Each such provider's own folder builds one with its name and says why, until its API lands.

use super::{FieldError, Provider};
use crate::model::{FieldSpec, Side};
use serde_json::{Map, Value};

pub struct DumpOnly {
    pub id: &'static str,
    pub label: &'static str,
    /// It can be a migration's target too (imports into it not built yet).
    pub target: bool,
    /// What the Connections card says instead of fields.
    pub note: &'static str,
}

#[async_trait::async_trait]
impl Provider for DumpOnly {
    fn id(&self) -> &'static str {
        self.id
    }

    fn label(&self) -> &'static str {
        self.label
    }

    fn can_be(&self, side: Side) -> bool {
        side == Side::Source || self.target
    }

    fn fields(&self, _side: Side) -> Vec<FieldSpec> {
        vec![]
    }

    fn check(&self, _side: Side, public: &mut Map<String, Value>) -> Result<(), FieldError> {
        public.clear();
        Ok(())
    }

    fn note(&self, _side: Side) -> Option<String> {
        Some(self.note.into())
    }
}
