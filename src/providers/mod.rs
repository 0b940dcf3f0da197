//! Target IM providers: one folder per provider, each with the same shape (regions and limits,
//! credentials, errors, a REST client, conversions from the canonical dump, callbacks, and a
//! local sandbox that emulates the provider for tests and rehearsals).

use serde::Serialize;

pub mod outbound;
pub mod retry;
pub mod tencent;

/// What a caller should do about a provider answer, whatever the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Success.
    Ok,
    /// A transient failure: retry the same request with backoff.
    Retryable,
    /// The provider throttled us: slow down and retry later.
    RateLimited,
    /// Credentials or permissions are wrong: a person must fix the configuration.
    Auth,
    /// The request itself is wrong or refers to missing data: retrying will not help.
    Permanent,
}

impl ErrorClass {
    /// True when retrying the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable | ErrorClass::RateLimited)
    }
}
