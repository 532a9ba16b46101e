//! The Engine API version botmaker speaks: negotiated once at connect, then written into the
//! path of every request.
//!
//! Docker reads the API version from the path (`/v1.41/containers/json`) and answers an
//! unversioned request with its own newest semantics. bollard 0.21 negotiates a version but
//! never sends it: its URL builder joins the request path, which starts with `/`, onto a base
//! ending in `/v1.xx`, and joining an absolute path replaces the base path
//! (<https://github.com/fussybeaver/bollard/issues/736>). So [`pin_path`] runs as bollard's
//! request modifier and puts the negotiated version back, replacing any version prefix a
//! later bollard might add itself.

use std::fmt;

use bollard::BollardRequest;
use http::uri::{PathAndQuery, Uri};

/// An Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Always 1 so far.
    pub major: u16,
    /// Bumped by every Docker release that changes the API.
    pub minor: u16,
}

impl ApiVersion {
    /// The oldest version botmaker works with: Docker 20.10, as Debian 12 ships it. It is the
    /// first with `one-shot` stats and the `health` filter botmaker relies on.
    pub const MIN: Self = Self::new(1, 41);

    /// The newest version botmaker asks for: the one bollard's models describe. A daemon that
    /// speaks a newer one is held to this, so responses keep the shape bollard decodes.
    pub const MAX: Self = Self::new(
        bollard::API_DEFAULT_VERSION.major_version as u16,
        bollard::API_DEFAULT_VERSION.minor_version as u16,
    );

    /// The version `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Parses `1.41`; anything else (extra parts, signs, spaces, overflow) is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        let num = |p: &str| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        Some(Self::new(num(major)?, num(minor)?))
    }

    /// The version to speak with a daemon whose newest API is `server` and oldest is
    /// `server_min` (absent before API 1.25): the newest both sides know, refused when it is
    /// older than [`Self::MIN`] or than what the daemon still accepts.
    ///
    /// Returns the version that makes the refusal, the daemon's, as the error.
    pub fn negotiate(server: Self, server_min: Option<Self>) -> Result<Self, Self> {
        let chosen = server.min(Self::MAX);
        if chosen < Self::MIN || server_min.is_some_and(|m| chosen < m) {
            return Err(server);
        }
        Ok(chosen)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Rewrites the request path to start with `/v<version>`, dropping a version prefix that is
/// already there. A URI that cannot be rebuilt (it never happens with bollard's own) is left
/// as it was: the daemon then answers with its default version, as before.
pub(crate) fn pin_path(mut req: BollardRequest, version: ApiVersion) -> BollardRequest {
    let uri = req.uri().clone();
    let Some(pq) = uri.path_and_query() else {
        return req;
    };
    let path = strip_version(pq.path());
    let pinned = match pq.query() {
        Some(q) => format!("/v{version}{path}?{q}"),
        None => format!("/v{version}{path}"),
    };
    let mut parts = uri.into_parts();
    let Ok(pq) = PathAndQuery::try_from(pinned) else {
        return req;
    };
    parts.path_and_query = Some(pq);
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// `/v1.41/containers/json` → `/containers/json`; any other path unchanged.
fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    if ApiVersion::parse(&rest[..end]).is_some() {
        &rest[end..]
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> BollardRequest {
        http::Request::builder()
            .uri(uri)
            .body(bollard::body_full(Default::default()))
            .unwrap()
    }

    #[test]
    fn parses_only_plain_major_dot_minor() {
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion::new(1, 41)));
        assert_eq!(ApiVersion::parse("1.053"), Some(ApiVersion::new(1, 53)));
        for bad in [
            "", "1", "1.", ".41", "1.41.2", "+1.41", "1.-4", " 1.41", "1.99999",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn negotiation_clamps_to_the_server_and_to_what_botmaker_knows() {
        let v = ApiVersion::new;
        // Debian 12's Docker 20.10.
        assert_eq!(
            ApiVersion::negotiate(v(1, 41), Some(v(1, 12))),
            Ok(v(1, 41))
        );
        // Podman 4.3's compat API says 1.41 (min 1.24); its libpod API's own version (4.3.1,
        // in the `Podman Engine` component) is not an Engine API version and is never read.
        assert_eq!(
            ApiVersion::negotiate(v(1, 41), Some(v(1, 24))),
            Ok(v(1, 41))
        );
        assert_eq!(ApiVersion::parse("4.3.1"), None);
        // A newer daemon gets its own version while bollard's models know it...
        assert_eq!(
            ApiVersion::negotiate(v(1, 45), Some(v(1, 24))),
            Ok(v(1, 45))
        );
        // ...and is held to the newest bollard knows beyond that.
        assert_eq!(
            ApiVersion::negotiate(v(1, 99), Some(v(1, 44))),
            Ok(ApiVersion::MAX)
        );
        // Too old for botmaker, or a daemon that no longer accepts what botmaker speaks.
        assert_eq!(ApiVersion::negotiate(v(1, 40), None), Err(v(1, 40)));
        assert_eq!(
            ApiVersion::negotiate(v(1, 99), Some(v(1, 98))),
            Err(v(1, 99))
        );
        assert!(ApiVersion::MAX >= ApiVersion::MIN);
        assert_eq!(ApiVersion::MIN.to_string(), crate::docker::MIN_API_VERSION);
    }

    #[test]
    fn pins_the_version_on_every_path_and_keeps_the_query() {
        let v = ApiVersion::new(1, 41);
        let pinned = |uri: &str| pin_path(request(uri), v).uri().to_string();
        // What bollard 0.21 sends: no version at all.
        assert_eq!(
            pinned("unix://2f7661722f72756e/containers/json?all=true"),
            "unix://2f7661722f72756e/v1.41/containers/json?all=true"
        );
        assert_eq!(pinned("http://h:2375/_ping"), "http://h:2375/v1.41/_ping");
        // A version already there (a fixed bollard) is replaced, never doubled.
        assert_eq!(
            pinned("http://h:2375/v1.53/containers/x/json"),
            "http://h:2375/v1.41/containers/x/json"
        );
        // A path that merely starts with "v" is not a version.
        assert_eq!(
            pinned("http://h:2375/volumes/x"),
            "http://h:2375/v1.41/volumes/x"
        );
    }
}
