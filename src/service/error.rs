//! The services' one error type: what went wrong in words a person can act on, with a stable
//! code. The web layer (`crate::web::error`) maps each to an HTTP status and the JSON body;
//! internal details are logged there and never returned.

use crate::model::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Sign in first, or send a valid API token in `Authorization: Bearer`.")]
    Unauthorized,
    #[error("The email or password is not right.")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooLarge(String),
    /// Not enough disk or upload quota for what was announced.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("Cross-site request refused: {0}")]
    Csrf(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal(Box::new(e))
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized => "unauthorized",
            AppError::BadCredentials => "bad_credentials",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Gone(_) => "gone",
            AppError::TooLarge(_) => "too_large",
            AppError::InsufficientStorage(_) => "insufficient_storage",
            AppError::Validation { .. } => "validation",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Csrf(_) => "csrf",
            AppError::Internal(_) => "internal",
        }
    }

    /// The body the client sees. Logs internal errors, since their detail is not returned.
    pub fn to_api(&self) -> ApiError {
        if let AppError::Internal(e) = self {
            tracing::error!(error = %e, "internal error");
            return ApiError::new(
                "internal",
                "Something went wrong on the server; the details are in its log.",
            );
        }
        ApiError::new(self.code(), self.to_string())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(e)
    }
}
