//! The HTTP server: its state (the services' context plus Leptos options), how the services' error
//! answers over HTTP, the router and its layers, operations endpoints.

pub mod assets;
mod error;
pub mod headers;
pub mod ops;
pub mod server;
mod state;
pub mod workers;

pub use error::{AppError, AppResult};
pub use server::{build, build_with_state, PUBLIC_PAGES};
pub use state::{AppState, Config, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_QUOTA_BYTES};
