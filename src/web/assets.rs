//! The site's static files: `/pkg` (the WASM front, its JS glue, the stylesheet), served
//! compressed, with cache lifetimes that fit their names, and pages marked to be revalidated.
//!
//! A release build (`cargo leptos build --release --precompress`) leaves `.br` and `.gz` beside
//! every file, served as they are; any other build is gzipped on the fly. With cargo-leptos'
//! `hash-files` the front's names carry a hash of their content and `hash.txt` (next to the
//! binary) lists them: such a file never changes, so browsers keep it for a year without asking
//! again, while pages (which name the current files) are revalidated on every visit.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use leptos::config::LeptosOptions;
use std::path::PathBuf;
use tower::ServiceBuilder;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::ServeDir;

/// Files whose name changes with their content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else: kept, but asked about again (a 304 when unchanged).
pub const REVALIDATE: &str = "no-cache";

/// Where cargo-leptos writes the names of the hashed files: next to the binary it built.
fn hash_file(options: &LeptosOptions) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(options.hash_file.as_ref()))
}

/// `options` with `hash_files` set when the front was built with hashed names, so the page
/// links `/pkg/imshift.<hash>.wasm` (leptos reads the hashes from the same file).
pub fn resolve(mut options: LeptosOptions) -> LeptosOptions {
    if !options.hash_files {
        options.hash_files = hash_file(&options).is_some_and(|p| p.is_file());
    }
    options
}

/// The service for `/pkg`: precompressed files when present, else gzip on the fly (quickly:
/// a debug build's WASM is large), with the cache lifetime of the build's naming.
pub fn pkg(options: &LeptosOptions) -> axum::Router {
    let dir = PathBuf::from(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let immutable = resolve(options.clone()).hash_files;
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    axum::Router::new().fallback_service(files).layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| pkg_cache(immutable, req, next),
            ))
            .layer(
                CompressionLayer::new()
                    .gzip(true)
                    .quality(CompressionLevel::Fastest),
            ),
    )
}

async fn pkg_cache(immutable: bool, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if response.status().is_success() || response.status().as_u16() == 304 {
        let value = if immutable { IMMUTABLE } else { REVALIDATE };
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// Pages name the current front files and the signed-in user's data: revalidated every time.
pub async fn pages_no_cache(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    }
    response
}
