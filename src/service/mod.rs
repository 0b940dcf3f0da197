//! What the services (migrations and their connections, dumps, imports, audit, team) stand
//! on apart from the web layer: their context and their error type. Pages' server functions,
//! REST handlers, workers and the command line are doors onto them; the web layer maps
//! [`AppError`] to HTTP and holds [`Services`] in its state.

mod context;
mod error;

pub use context::{
    node_name, Config, Sandboxes, Services, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_QUOTA_BYTES,
};
pub use error::{AppError, AppResult};
