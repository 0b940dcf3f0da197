//! Provider name → provider. Adding a provider is a folder under `src/providers/` and one line
//! in [`Registry::builtin`] (and one in [`dump_formats`] when it writes an export the Dumps tab
//! reads); tests add their own with [`Registry::with`].

use super::Provider;
use crate::dumps::formats::VendorFormat;
use crate::model::{ProviderInfo, Side};
use std::sync::Arc;

#[derive(Clone)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Registry {
    /// The providers this build ships, one line each.
    pub fn builtin() -> Self {
        Registry { providers: vec![] }
            .with(super::self_built::provider())
            .with(super::tencent::provider::provider())
            .with(super::netease::provider::provider())
            .with(super::rongcloud::provider())
            .with(super::easemob::provider())
    }

    /// Adds (or replaces, by id) a provider.
    pub fn with(mut self, p: Arc<dyn Provider>) -> Self {
        self.providers.retain(|q| q.id() != p.id());
        self.providers.push(p);
        self
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    /// The provider of `id` if it can be `side`, or why not in words.
    pub fn for_side(&self, id: &str, side: Side) -> Result<&Arc<dyn Provider>, String> {
        let p = self.get(id).ok_or_else(|| {
            let known: Vec<&str> = self
                .providers
                .iter()
                .filter(|p| p.can_be(side))
                .map(|p| p.id())
                .collect();
            format!(
                "`{id}` is not a provider imshift knows; use one of: {}",
                known.join(", ")
            )
        })?;
        if !p.can_be(side) {
            return Err(format!(
                "{} cannot be a migration's {}",
                p.label(),
                side.as_str()
            ));
        }
        Ok(p)
    }

    /// What people call `id`, or `id` itself for a provider this build does not have.
    pub fn label(&self, id: &str) -> String {
        self.get(id)
            .map(|p| p.label().to_string())
            .unwrap_or_else(|| id.to_string())
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.iter()
    }

    pub fn list(&self) -> Vec<ProviderInfo> {
        self.providers.iter().map(|p| p.info()).collect()
    }
}

/// The vendor export formats the Dumps tab reads, one line each (in the order that breaks a
/// tie when two claim a file).
pub fn dump_formats() -> &'static [&'static VendorFormat] {
    &[&super::netease::dump::FORMAT, &super::easemob::dump::FORMAT]
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.id()))
            .finish()
    }
}
