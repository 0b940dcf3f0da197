//! How the services' error type (`crate::service::AppError`) answers over HTTP: a status code
//! and the JSON error body, once. Internal details are logged (in `to_api`) and never returned.

use crate::model::ApiError;
pub use crate::service::{AppError, AppResult};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(serde::Serialize)]
struct ErrorBody {
    error: ApiError,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_api(),
            }),
        )
            .into_response();
        if let AppError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            if let Ok(v) = retry_after_secs.to_string().parse() {
                response.headers_mut().insert("retry-after", v);
            }
        }
        response
    }
}

/// For server functions: sets the HTTP status on the Leptos response and hands back the
/// shared error type, so the browser shows the same sentence the REST API returns.
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            opts.set_status(e.status());
        }
        e.to_api()
    }
}
