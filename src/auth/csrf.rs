//! Cross-site request defence. The session cookie is SameSite=Strict; on top of that every
//! state-changing request must show it came from our own pages (Sec-Fetch-Site, or an Origin
//! that matches the Host). A request with a VALID API token carries no ambient credential and
//! passes; a request naming an unknown or revoked token is refused whatever its origin.

use super::actor::{bearer, VerifiedToken};
use super::tokens;
use crate::web::{AppError, AppState};
use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn check(mut request: Request, next: Next) -> Response {
    if !is_read(request.method()) {
        // Owned copies: the request itself must not be held across the lookup.
        let secret = bearer(request.headers()).map(|r| r.map(str::to_string));
        if let Some(secret) = secret {
            let app = request.extensions().get::<AppState>().cloned();
            match verify(app, secret).await {
                Ok(token) => {
                    request.extensions_mut().insert(token);
                    return next.run(request).await;
                }
                Err(e) => return e.into_response(),
            }
        }
    }
    match verdict(&request) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn verify(
    app: Option<AppState>,
    secret: Result<String, AppError>,
) -> Result<VerifiedToken, AppError> {
    let app =
        app.ok_or_else(|| AppError::Internal("AppState missing from request extensions".into()))?;
    let (user, token_id) = tokens::authenticate(&app.pool, &secret?)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(VerifiedToken { user, token_id })
}

fn verdict(request: &Request) -> Result<(), AppError> {
    if is_read(request.method()) {
        return Ok(());
    }
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            other => Err(AppError::Csrf(format!(
                "the request came from another site (Sec-Fetch-Site: {})",
                String::from_utf8_lossy(other)
            ))),
        };
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err(AppError::Csrf(format!(
                    "the request came from {origin}, not from this console ({host})"
                )))
            }
        }
        None => Err(AppError::Csrf(
            "the request carries neither Origin nor Sec-Fetch-Site; scripts should use an API token"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn reads_pass_and_cross_site_writes_fail() {
        assert!(verdict(&req(Method::GET, &[])).is_ok());
        assert!(verdict(&req(Method::POST, &[])).is_err());
        assert!(verdict(&req(Method::POST, &[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(verdict(&req(Method::POST, &[("sec-fetch-site", "cross-site")])).is_err());
        assert!(verdict(&req(Method::POST, &[("sec-fetch-site", "same-site")])).is_err());
        let same = [
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ];
        assert!(verdict(&req(Method::DELETE, &same)).is_ok());
        let evil = [
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ];
        assert!(verdict(&req(Method::POST, &evil)).is_err());
        // A bearer header alone proves nothing: `check` verifies the token first.
        assert!(verdict(&req(Method::POST, &[("authorization", "Bearer x")])).is_err());
    }
}
