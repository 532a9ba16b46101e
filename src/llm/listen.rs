//! Where the proxy listens, and how bot containers reach it.
//!
//! By default the proxy listens on the gateway address of Docker's default bridge (`docker0`,
//! usually `172.17.0.1`), port [`DEFAULT_PROXY_PORT`]: an address that exists only on this host
//! and on the bridge, so nothing off the host can reach the proxy, and every bot container can.
//! Bots on an `--internal` network reach it too: traffic from a container to an address of the
//! host is delivered to the host itself (iptables `INPUT`), which Docker 20.10's isolation
//! rules (`FORWARD`) do not touch; measured on Docker 20.10.24, see the README section
//! "Keeping provider keys out of bots". A host firewall that drops `INPUT` from Docker
//! bridges must allow this port.
//!
//! Bots address the proxy by a name, [`HOST_ALIAS`], which the templates map to the listen
//! address in the container's `/etc/hosts` (Docker's `ExtraHosts`), so a generated
//! `openclaw.json` reads `http://botmaker-llm:7101/v1`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use tokio::net::TcpListener;

/// The proxy's port when none is given.
pub const DEFAULT_PROXY_PORT: u16 = 7101;
/// The name bot containers reach the proxy by.
pub const HOST_ALIAS: &str = "botmaker-llm";
/// The Docker network whose gateway `auto` listens on.
pub const DEFAULT_BRIDGE: &str = "bridge";

/// `--llm-proxy-listen`: `auto` (the default bridge's gateway, port 7101), `auto:PORT`, an
/// explicit `IP:PORT`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyListen {
    /// No proxy: templates give bots their provider keys directly, as before.
    Off,
    /// The default bridge's gateway address, on this port (0: any free port).
    Auto {
        /// Port to listen on; 0 lets the kernel choose one (the chosen one is shown in `/api/providers`).
        port: u16,
    },
    /// Exactly this address. `0.0.0.0` makes bots use Docker's `host-gateway`, and exposes the
    /// proxy on every interface of the host: prefer a bridge gateway address.
    At(SocketAddr),
}

impl Default for ProxyListen {
    fn default() -> Self {
        Self::Auto {
            port: DEFAULT_PROXY_PORT,
        }
    }
}

impl FromStr for ProxyListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "off" => return Ok(Self::Off),
            "auto" => return Ok(Self::default()),
            _ => {}
        }
        if let Some(port) = s.strip_prefix("auto:") {
            return port
                .parse()
                .map(|port| Self::Auto { port })
                .map_err(|_| format!("{s:?}: the port after auto: must be 0-65535"));
        }
        s.parse().map(Self::At).map_err(|_| {
            format!("{s:?} is not an LLM proxy address; give auto, auto:PORT, IP:PORT or off")
        })
    }
}

impl fmt::Display for ProxyListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Auto { port } => write!(f, "auto:{port}"),
            Self::At(addr) => write!(f, "{addr}"),
        }
    }
}

/// Binds the proxy's listener as `listen` says; `bridge_gateway` looks up the default bridge's
/// gateway for `auto`. An explicit address that cannot be bound is an error (the operator asked
/// for it); `auto` that finds no bridge or cannot bind its gateway logs why and runs without the
/// proxy (botmaker in a container, a daemon on another host, `dockerd --bridge=none`).
pub async fn bind(
    listen: ProxyListen,
    bridge_gateway: impl Future<Output = Result<Option<std::net::IpAddr>, String>>,
) -> Result<Option<TcpListener>, String> {
    let addr = match listen {
        ProxyListen::Off => return Ok(None),
        ProxyListen::At(addr) => {
            return TcpListener::bind(addr).await.map(Some).map_err(|e| {
                format!(
                    "cannot listen for the LLM proxy on {addr}: {e}; pick another address with \
                     --llm-proxy-listen / BOTMAKER_LLM_PROXY_LISTEN (or `off`)"
                )
            });
        }
        ProxyListen::Auto { port } => match bridge_gateway.await {
            Ok(Some(ip)) => SocketAddr::new(ip, port),
            Ok(None) => {
                tracing::warn!(
                    "the LLM proxy is off: Docker's default bridge has no gateway address; set \
                     --llm-proxy-listen to an address bot containers can reach"
                );
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the LLM proxy is off: cannot find Docker's default bridge; set --llm-proxy-listen to an address bot containers can reach");
                return Ok(None);
            }
        },
    };
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            tracing::warn!(
                %addr, error = %e,
                "the LLM proxy is off: cannot listen on the default bridge's gateway (is \
                 botmaker in a container, or the daemon on another host?); set \
                 --llm-proxy-listen to an address bot containers can reach"
            );
            Ok(None)
        }
    }
}

/// How bot containers reach a running proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEndpoint {
    /// The address it listens on.
    pub listen: SocketAddr,
}

impl ProxyEndpoint {
    /// `http://botmaker-llm:<port>`: the proxy's root as bots see it.
    pub fn base_url(&self) -> String {
        format!("http://{HOST_ALIAS}:{}", self.listen.port())
    }

    /// The `/etc/hosts` entry bots get (`botmaker-llm:<ip>`; `host-gateway` when the proxy
    /// listens on every address).
    pub fn extra_host(&self) -> String {
        let ip = self.listen.ip();
        if ip.is_unspecified() {
            format!("{HOST_ALIAS}:host-gateway")
        } else {
            format!("{HOST_ALIAS}:{ip}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_settings_parse() {
        assert_eq!("auto".parse(), Ok(ProxyListen::Auto { port: 7101 }));
        assert_eq!("auto:0".parse(), Ok(ProxyListen::Auto { port: 0 }));
        assert_eq!("off".parse(), Ok(ProxyListen::Off));
        assert_eq!(
            "172.17.0.1:9000".parse(),
            Ok(ProxyListen::At("172.17.0.1:9000".parse().unwrap()))
        );
        for bad in ["", "auto:x", "on", "172.17.0.1", "auto:70000"] {
            assert!(bad.parse::<ProxyListen>().is_err(), "{bad}");
        }
        assert_eq!(ProxyListen::Auto { port: 1 }.to_string(), "auto:1");
    }

    #[test]
    fn bots_reach_the_proxy_by_name() {
        let e = ProxyEndpoint {
            listen: "172.17.0.1:7101".parse().unwrap(),
        };
        assert_eq!(e.base_url(), "http://botmaker-llm:7101");
        assert_eq!(e.extra_host(), "botmaker-llm:172.17.0.1");
        let any = ProxyEndpoint {
            listen: "0.0.0.0:7101".parse().unwrap(),
        };
        assert_eq!(any.extra_host(), "botmaker-llm:host-gateway");
    }
}
