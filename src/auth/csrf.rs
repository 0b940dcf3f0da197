//! Cross-site request defence. The session cookie is SameSite=Strict; on top of that every
//! state-changing request must show it came from our own pages (Sec-Fetch-Site, or an Origin
//! that matches the Host). Token-authenticated requests carry no ambient credential and pass.

use crate::web::AppError;
use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn check(request: Request, next: Next) -> Response {
    match verdict(&request) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn verdict(request: &Request) -> Result<(), AppError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let headers = request.headers();
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        return Ok(());
    }
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
        assert!(verdict(&req(Method::POST, &[("authorization", "Bearer x")])).is_ok());
    }
}
