//! Security headers on every answer.
//!
//! Pages get a Content-Security-Policy that lets only our own scripts run: the files under
//! /pkg (`'self'`), the WebAssembly they compile (`'wasm-unsafe-eval'`), and the inline scripts
//! Leptos writes for hydration and streamed resources, which carry this answer's nonce. The
//! nonce is made here, per request, and handed to Leptos (`provide_nonce`, called from the
//! render context), so the header and the page always agree. Inline `style` attributes (the
//! progress bars' widths) need `style-src 'unsafe-inline'`; styles cannot run code.

use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use leptos::nonce::Nonce;

/// The policy of an HTML page whose inline scripts carry `nonce`.
pub fn page_policy(nonce: &str) -> String {
    // cargo-leptos' live reload talks over a websocket on another port in development.
    let reload = if std::env::var_os("LEPTOS_WATCH").is_some() {
        " ws: wss:"
    } else {
        ""
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'{reload}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Anything that is not a page (JSON, CSV, files) runs nothing and is framed by no one.
pub const RESOURCE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The layer: a nonce for the page about to be rendered, and the headers on the answer.
pub async fn security(mut request: Request, next: Next) -> Response {
    let nonce = Nonce::new();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    apply(response.headers_mut(), &nonce);
    response
}

fn apply(headers: &mut HeaderMap, nonce: &str) {
    let is_page = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if is_page {
        HeaderValue::from_str(&page_policy(nonce)).ok()
    } else {
        Some(HeaderValue::from_static(RESOURCE_POLICY))
    };
    if let Some(policy) = policy {
        headers.insert(CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Gives Leptos this request's nonce. Call it in the render context (after leptos_axum has
/// provided its own, which this one replaces).
pub fn provide_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Nonce>().cloned());
    if let Some(nonce) = nonce {
        provide_context(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_get_the_nonce_and_everything_gets_the_rest() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        apply(&mut h, "abc123");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(
            !csp.contains("'unsafe-eval'") && !csp.contains("script-src 'self' 'unsafe-inline'")
        );
        assert_eq!(h[X_FRAME_OPTIONS], "DENY");
        let mut j = HeaderMap::new();
        j.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        apply(&mut j, "abc123");
        assert_eq!(j[CONTENT_SECURITY_POLICY], RESOURCE_POLICY);
        assert_eq!(j[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(j[REFERRER_POLICY], "same-origin");
    }
}
