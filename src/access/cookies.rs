//! The credential a request presents: `Authorization: Bearer <token>`, or the dashboard's
//! session cookie together with the session's CSRF token on every change.

use axum::http::{HeaderMap, header};

/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "botmaker_session";

/// Header carrying the CSRF token on unsafe requests authenticated by the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Where a request's token came from: the cookie is sent by the browser on its own, so only a
/// cookie-borne credential needs CSRF protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Bearer`.
    Header,
    /// The dashboard's session cookie.
    Cookie,
}

/// The token of a request and where it came from. The `Authorization` header wins over the
/// cookie.
pub fn presented_credential(headers: &HeaderMap) -> Option<(String, Carrier)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .strip_prefix("Bearer ")
            .map(|t| (t.trim().to_string(), Carrier::Header));
    }
    session_cookie(headers).map(|t| (t, Carrier::Cookie))
}

/// The value of the dashboard's session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// The CSRF token of a session: hex SHA-256 of `"botmaker-csrf:" + session token`.
///
/// Derived rather than stored, so it needs no table and dies with the session. A page embeds
/// it; a cross-site page can neither read it (same-origin policy) nor compute it (it would need
/// the HttpOnly cookie), and the prefix keeps it distinct from the stored session hash.
pub fn csrf_token_for(session_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"botmaker-csrf:");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the CSRF token of `session_token` (in constant time).
pub fn csrf_matches(session_token: &str, presented: &str) -> bool {
    crate::auth::constant_time_eq(
        csrf_token_for(session_token).as_bytes(),
        presented.trim().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_token;
    use axum::http::HeaderValue;

    #[test]
    fn csrf_token_is_the_prefixed_sha256_of_the_session_token() {
        // printf 'botmaker-csrf:bms_abc' | sha256sum
        assert_eq!(
            csrf_token_for("bms_abc"),
            "3ad254f94b0f1faa6ef1febe903af15fbd7306746b1bf6a1265f1d4612e93a93"
        );
        assert_ne!(csrf_token_for("bms_abc"), hash_token("bms_abc"));
        assert!(csrf_matches("bms_abc", &csrf_token_for("bms_abc")));
        assert!(!csrf_matches("bms_abc", &csrf_token_for("bms_abd")));
        assert!(!csrf_matches("bms_abc", ""));
    }

    #[test]
    fn the_authorization_header_wins_over_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; botmaker_session=bms_c"),
        );
        assert_eq!(
            presented_credential(&h),
            Some(("bms_c".into(), Carrier::Cookie))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer bmt_x"),
        );
        assert_eq!(
            presented_credential(&h),
            Some(("bmt_x".into(), Carrier::Header))
        );
    }
}
