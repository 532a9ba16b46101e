//! The client address of a request, for the login rate limit and the log.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppState;
use crate::access::last_forwarded;

/// The client's address: the peer of the connection (unspecified when the server was not
/// told, e.g. in-process tests), or with `--trust-proxy` the last `X-Forwarded-For` entry,
/// the one the proxy appended. Without `--trust-proxy` the header is ignored: any client can
/// send one, and believing it would let each guess come from a new "client".
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = state
            .auth
            .trusts_proxy()
            .then(|| last_forwarded(&parts.headers, "x-forwarded-for"))
            .flatten()
            .and_then(|v| {
                v.parse::<IpAddr>()
                    .ok()
                    .or_else(|| v.parse::<SocketAddr>().ok().map(|a| a.ip()))
            });
        Ok(Self(forwarded.unwrap_or(peer)))
    }
}
