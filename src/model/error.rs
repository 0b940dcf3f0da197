use serde::{Deserialize, Serialize};
use std::fmt;

/// The error body of every API answer: `{ "error": { "code": "...", "message": "..." } }`,
/// and the error type of the UI's server functions, so the browser shows the same sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `validation`, ...
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl leptos::server_fn::error::FromServerFnError for ApiError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(m) | E::Response(m) => ApiError::new(
                "network",
                format!(
                    "The console could not be reached ({m}). Check your connection and try again."
                ),
            ),
            other => ApiError::new("internal", other.to_string()),
        }
    }
}
