//! A provider's table of API quotas and batch sizes: its documented defaults, with a
//! migration's overrides on top (lower to protect a shared app, higher for a raised plan).

use std::collections::BTreeMap;

/// One API's effective limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimit {
    pub qps: u32,
    /// The largest list one request takes (None for single-item APIs).
    pub batch: Option<usize>,
}

/// Every API a provider adapter calls, by its name in the provider's API (such as
/// `service/command`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub apis: BTreeMap<&'static str, ApiLimit>,
}

impl Limits {
    /// From a provider's table of `(api, qps, batch)`.
    pub fn from_table(table: &[(&'static str, u32, Option<usize>)]) -> Self {
        Limits {
            apis: table
                .iter()
                .map(|&(api, qps, batch)| (api, ApiLimit { qps, batch }))
                .collect(),
        }
    }

    /// The limits of `api`, or None for an API the adapter does not call.
    pub fn get(&self, api: &str) -> Option<ApiLimit> {
        self.apis.get(api).copied()
    }

    /// The canonical `&'static` name of a known API.
    pub fn known_path(&self, api: &str) -> Option<&'static str> {
        self.apis.get_key_value(api).map(|(k, _)| *k)
    }

    pub fn batch(&self, api: &str) -> Option<usize> {
        self.get(api).and_then(|l| l.batch)
    }

    pub fn qps(&self, api: &str) -> Option<u32> {
        self.get(api).map(|l| l.qps)
    }

    /// Set one API's QPS. Unknown APIs are ignored and reported by the return value.
    pub fn set_qps(&mut self, api: &str, qps: u32) -> bool {
        match self.apis.get_mut(api) {
            Some(l) => {
                l.qps = qps;
                true
            }
            None => false,
        }
    }

    /// Every API at `qps` (a benchmark's raised quotas, tests).
    pub fn with_all_qps(mut self, qps: u32) -> Self {
        for l in self.apis.values_mut() {
            l.qps = qps;
        }
        self
    }

    /// Every API's QPS times `by` (at least 1): a sandbox standing for a raised plan.
    pub fn scaled(mut self, by: f64) -> Self {
        for l in self.apis.values_mut() {
            l.qps = ((l.qps as f64 * by).round() as u32).max(1);
        }
        self
    }

    /// Set one API's batch size. Unknown APIs are ignored and reported by the return value.
    pub fn set_batch(&mut self, api: &str, batch: usize) -> bool {
        match self.apis.get_mut(api) {
            Some(l) => {
                l.batch = Some(batch);
                true
            }
            None => false,
        }
    }
}
