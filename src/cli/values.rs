//! The validated values of the command line: what a flag's text means once checked
//! ([`ServerUrl`], [`Since`], [`EnvPair`], [`PortArg`], [`SecretFileArg`]). clap calls these
//! parsers, so a bad value is a usage error before anything is sent.

use std::path::PathBuf;

use crate::bots::PortSpec;
use crate::docker::{PortPublish, Protocol};
use crate::llm::Price;
use crate::secrets::SecretName;

/// Server used when neither a flag, the environment nor the config file names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7100";

/// A validated server base URL: `http://host[:port][/prefix]`, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    /// Parses `s`; a bare `host:port` means `http://host:port`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let full = if s.contains("://") {
            s.to_string()
        } else {
            format!("http://{s}")
        };
        let url = reqwest::Url::parse(&full).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(
                    "https is not supported by this build (plain HTTP only): reach the \
                            server over http:// on a trusted network or an SSH tunnel"
                        .into(),
                );
            }
            other => return Err(format!("unsupported scheme {other:?}: use http://")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{s:?} names no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{s:?}: a server URL takes no query or fragment"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full URL of an API path (`/api/...`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl Default for ServerUrl {
    fn default() -> Self {
        Self::parse(DEFAULT_SERVER).expect("the default server URL is valid")
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `--since` time, resolved to Unix seconds when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(pub i64);

impl Since {
    /// Unix seconds, RFC 3339, or an age (`30s`, `10m`, `2h`, `1d`) counted back from now.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_at(s, chrono::Utc::now())
    }

    fn parse_at(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<i64>() {
            return Ok(Self(secs));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Self(t.timestamp()));
        }
        let unit = s.chars().last().unwrap_or(' ');
        let factor = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 0,
        };
        let n = s[..s.len() - unit.len_utf8().min(s.len())]
            .parse::<i64>()
            .ok();
        match n {
            Some(n) if factor > 0 && n >= 0 => Ok(Self(now.timestamp() - n * factor)),
            _ => Err(format!(
                "{s:?} is not a time: give Unix seconds, an RFC 3339 time \
                 (2024-05-01T12:00:00Z) or an age such as 30s, 10m, 2h, 1d"
            )),
        }
    }
}

/// A `KEY=VALUE` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPair(pub String, pub String);

impl EnvPair {
    /// Splits at the first `=`; the key must not be empty.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Self(k.to_string(), v.to_string())),
            _ => Err(format!("{s:?} is not KEY=VALUE")),
        }
    }
}

/// A `--port` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortArg(pub PortSpec);

impl PortArg {
    /// Parses `[HOST_IP:][HOST:]CONTAINER[/tcp|/udp][,publish=host|mesh]`; an IPv6 host
    /// address goes in brackets. `publish` is the API's field of that name (how Swarm
    /// publishes the port: on the bot's node, or through the routing mesh on every node).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{s:?} is not a port ([HOST_IP:][HOST:]CONTAINER[/udp][,publish=host|mesh]): {why}"
            )
        };
        let (s_port, publish) = match s.split_once(',') {
            Some((p, "publish=host")) => (p, Some(PortPublish::Host)),
            Some((p, "publish=mesh")) => (p, Some(PortPublish::Mesh)),
            Some(_) => return Err(bad("after the port, only publish=host or publish=mesh")),
            None => (s, None),
        };
        let (rest, protocol) = match s_port.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (s_port, Protocol::Tcp),
        };
        let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
            let (ip, rest) = after.split_once("]:").ok_or_else(|| bad("unclosed '['"))?;
            (Some(ip.to_string()), rest)
        } else {
            match rest.matches(':').count() {
                0 | 1 => (None, rest),
                2 => {
                    let (ip, rest) = rest.split_once(':').expect("has a colon");
                    (Some(ip.to_string()), rest)
                }
                _ => return Err(bad("put an IPv6 address in brackets")),
            }
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let (host, container) = match rest.split_once(':') {
            Some((h, c)) => (Some(port(h).ok_or_else(|| bad("bad host port"))?), c),
            None if host_ip.is_some() => return Err(bad("a host address needs a host port")),
            None => (None, rest),
        };
        let container = port(container).ok_or_else(|| bad("bad container port"))?;
        Ok(Self(PortSpec {
            container,
            host,
            host_ip,
            protocol,
            publish,
        }))
    }
}

/// A `--secret-file NAME=PATH` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileArg {
    /// The secret.
    pub name: SecretName,
    /// Where its value is.
    pub path: PathBuf,
}

impl SecretFileArg {
    /// Parses `NAME=PATH` with a valid secret name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, path) = s
            .split_once('=')
            .filter(|(_, p)| !p.is_empty())
            .ok_or_else(|| format!("{s:?} is not NAME=PATH"))?;
        let name = SecretName::new(name).map_err(|e| e.to_string())?;
        Ok(Self {
            name,
            path: PathBuf::from(path),
        })
    }
}

/// A JSON object (template settings).
pub fn parse_json_object(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("settings must be a JSON object".into()),
        Err(e) => Err(format!("settings are not JSON: {e}")),
    }
}

/// `--price MODEL=INPUT,OUTPUT` (per million tokens; `*` for every other model).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceArg {
    /// The model name as bots send it, or `*` for every model without its own price.
    pub model: String,
    /// Its price.
    pub price: Price,
}

impl PriceArg {
    /// Parses `MODEL=INPUT,OUTPUT`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?}: expected MODEL=INPUT,OUTPUT (per million tokens), e.g. gpt-4o=2.5,10")
        };
        let (model, prices) = s.split_once('=').ok_or_else(bad)?;
        let (input, output) = prices.split_once(',').ok_or_else(bad)?;
        let num = |v: &str| v.trim().parse::<f64>().map_err(|_| bad());
        Ok(Self {
            model: model.trim().to_string(),
            price: Price {
                input: num(input)?,
                output: num(output)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized_and_checked() {
        assert_eq!(
            ServerUrl::parse("127.0.0.1:7100").unwrap().as_str(),
            "http://127.0.0.1:7100"
        );
        assert_eq!(
            ServerUrl::parse("http://h:1/prefix/")
                .unwrap()
                .join("/api/bots"),
            "http://h:1/prefix/api/bots"
        );
        assert!(ServerUrl::parse("https://h").unwrap_err().contains("https"));
        assert!(ServerUrl::parse("ftp://h").is_err());
        assert!(ServerUrl::parse("http://h/?q=1").is_err());
        assert_eq!(ServerUrl::default().as_str(), DEFAULT_SERVER);
    }

    #[test]
    fn since_takes_seconds_rfc3339_and_ages() {
        let now = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(Since::parse_at("12345", now), Ok(Since(12345)));
        assert_eq!(Since::parse_at("1970-01-01T00:01:00Z", now), Ok(Since(60)));
        assert_eq!(Since::parse_at("10m", now), Ok(Since(1_000_000 - 600)));
        assert_eq!(Since::parse_at("2d", now), Ok(Since(1_000_000 - 172_800)));
        for bad in ["", "m", "10x", "-5m", "yesterday", "é"] {
            assert!(Since::parse_at(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_parse_all_documented_forms() {
        let p = |s| PortArg::parse(s).map(|p| p.0);
        assert_eq!(p("80").unwrap().container, 80);
        let full = p("0.0.0.0:8080:80/udp").unwrap();
        assert_eq!(
            (
                full.host_ip.as_deref(),
                full.host,
                full.container,
                full.protocol
            ),
            (Some("0.0.0.0"), Some(8080), 80, Protocol::Udp)
        );
        assert_eq!(p("[::1]:8080:80").unwrap().host_ip.as_deref(), Some("::1"));
        assert_eq!(p("8080:80").unwrap().host, Some(8080));
        assert_eq!(p("8080:80").unwrap().publish, None);
        let mesh = p("0.0.0.0:8080:80/udp,publish=mesh").unwrap();
        assert_eq!(
            (mesh.host, mesh.container, mesh.protocol, mesh.publish),
            (Some(8080), 80, Protocol::Udp, Some(PortPublish::Mesh))
        );
        assert_eq!(
            p("0.0.0.0:8080:80,publish=host").unwrap().publish,
            Some(PortPublish::Host)
        );
        for bad in [
            "",
            "0",
            "x",
            "80/sctp",
            "1.2.3.4:80",
            "a:b:c:d",
            "[::1:80",
            "80,mesh",
            "80,publish=ingress",
            "80,publish=mesh,publish=host",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_and_secret_file_pairs_are_validated() {
        assert_eq!(
            EnvPair::parse("A=b=c").unwrap(),
            EnvPair("A".into(), "b=c".into())
        );
        assert!(EnvPair::parse("=x").is_err());
        assert!(EnvPair::parse("novalue").is_err());
        assert_eq!(
            SecretFileArg::parse("API_KEY=/tmp/k").unwrap().path,
            PathBuf::from("/tmp/k")
        );
        assert!(SecretFileArg::parse("bad name=/tmp/k").is_err());
        assert!(SecretFileArg::parse("API_KEY=").is_err());
    }

    #[test]
    fn prices_parse_from_the_command_line() {
        let p = PriceArg::parse("gpt-4o=2.5,10").unwrap();
        assert_eq!(p.model, "gpt-4o");
        assert_eq!((p.price.input, p.price.output), (2.5, 10.0));
        assert_eq!(PriceArg::parse("*=1,2").unwrap().model, "*");
        for bad in ["gpt-4o", "m=1", "m=a,b"] {
            assert!(PriceArg::parse(bad).is_err(), "{bad}");
        }
    }
}
