//! The dashboard's two static files, compiled into the binary and served with a content hash
//! in their URL, so browsers may cache them for good and still never run a stale script.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The dashboard's script: one file, no framework, no build step.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The dashboard's style sheet (light and dark).
pub const APP_CSS: &str = include_str!("assets/app.css");

/// Hex characters of the content hash put in asset URLs.
const VERSION_LEN: usize = 16;

fn version(contents: &str) -> String {
    let mut v = hex::encode(Sha256::digest(contents.as_bytes()));
    v.truncate(VERSION_LEN);
    v
}

static JS_URL: LazyLock<String> = LazyLock::new(|| format!("/assets/app.js?v={}", version(APP_JS)));
static CSS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/assets/app.css?v={}", version(APP_CSS)));

/// `/assets/app.js?v=<hash of its contents>`.
pub fn js_url() -> String {
    JS_URL.clone()
}

/// `/assets/app.css?v=<hash of its contents>`.
pub fn css_url() -> String {
    CSS_URL.clone()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The URL changes with the contents, so a cached copy is never stale.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}

/// `GET /assets/app.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /assets/app.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_a_hash_of_the_contents() {
        assert_eq!(js_url(), format!("/assets/app.js?v={}", version(APP_JS)));
        assert_eq!(version("a").len(), VERSION_LEN);
        assert_ne!(version("a"), version("b"));
    }
}
