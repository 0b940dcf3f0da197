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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
    use axum::http::StatusCode;
    use tower::ServiceExt;

    /// A site root with one front file, as cargo-leptos leaves it (`.br` only when precompressed).
    fn site(brotli: bool) -> (LeptosOptions, PathBuf) {
        let root = std::env::temp_dir().join(format!("imshift-assets-{}", uuid::Uuid::new_v4()));
        let pkg = root.join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("imshift.abc123.wasm"), vec![0u8; 64 * 1024]).unwrap();
        if brotli {
            std::fs::write(pkg.join("imshift.abc123.wasm.br"), b"precompressed").unwrap();
        }
        let options = LeptosOptions::builder()
            .output_name("imshift")
            .site_root(root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .build();
        (options, root)
    }

    async fn get(options: &LeptosOptions, accept: &str) -> axum::response::Response {
        let request = axum::http::Request::get("/imshift.abc123.wasm")
            .header(ACCEPT_ENCODING, accept)
            .body(Body::empty())
            .unwrap();
        pkg(options).oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn hashed_front_files_are_kept_a_year_and_sent_precompressed() {
        let (mut options, root) = site(true);
        options.hash_files = true;
        let response = get(&options, "gzip, br").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_ENCODING], "br");
        assert_eq!(response.headers()[CACHE_CONTROL], IMMUTABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"precompressed");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn without_precompressed_files_the_front_is_gzipped_and_revalidated() {
        let (options, root) = site(false);
        let response = get(&options, "gzip").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
        // Not built with hashed names (no hash.txt beside the test binary): asked about again.
        assert_eq!(response.headers()[CACHE_CONTROL], REVALIDATE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            body.len() < 64 * 1024 / 10,
            "64 KB of zeros gzip to {} bytes",
            body.len()
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn pages_are_revalidated_and_other_answers_left_alone() {
        let app = axum::Router::new()
            .route(
                "/page",
                axum::routing::get(|| async { axum::response::Html("<p>hi</p>") }),
            )
            .route("/json", axum::routing::get(|| async { axum::Json(1) }))
            .layer(axum::middleware::from_fn(pages_no_cache));
        let page = app
            .clone()
            .oneshot(
                axum::http::Request::get("/page")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(page.headers()[CACHE_CONTROL], REVALIDATE);
        let json = app
            .oneshot(
                axum::http::Request::get("/json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(!json.headers().contains_key(CACHE_CONTROL));
    }
}
