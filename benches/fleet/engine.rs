//! The floor: Engine API calls written by hand as HTTP/1.1 over the daemon's unix socket.
//!
//! Deliberately not bollard: `DockerService` is built on bollard, so a floor made with bollard
//! would hide bollard's own cost inside the floor. This client does the least any client can
//! do (one keep-alive connection per worker, a request line, a body, a parsed status), so what
//! remains is the engine's own time.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Where the engine listens and which API version to speak.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
    version: String,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// Fails unless the status is 2xx (or 304, Docker's "already in that state").
    pub fn ok(self, what: &str) -> Result<Self, String> {
        if (200..300).contains(&self.status) || self.status == 304 {
            Ok(self)
        } else {
            Err(format!(
                "{what}: HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ))
        }
    }
}

impl Engine {
    /// The engine of `DOCKER_HOST` (unix sockets only), speaking API `version` (e.g. `1.41`).
    pub fn from_env(version: &str) -> Result<Self, String> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let socket = host.strip_prefix("unix://").ok_or_else(|| {
            format!(
                "the floor is measured over the engine's unix socket; DOCKER_HOST={host} is not \
                 one. Run the bench on the engine's host."
            )
        })?;
        Ok(Self {
            socket: socket.into(),
            version: version.into(),
        })
    }

    /// The engine listening on `socket` (the simulated one, say).
    pub fn at(socket: impl Into<PathBuf>, version: &str) -> Self {
        Self {
            socket: socket.into(),
            version: version.into(),
        }
    }

    /// A fresh keep-alive connection.
    pub async fn connect(&self) -> Result<Conn, String> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.socket.display()))?;
        Ok(Conn {
            engine: self.clone(),
            stream: Some(BufReader::new(stream)),
        })
    }
}

/// One connection to the engine; reconnects by itself if the engine closed it.
pub struct Conn {
    engine: Engine,
    stream: Option<BufReader<UnixStream>>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Conn {
    /// `method /v<version><path>` with an optional JSON body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let what = format!("{method} {path}");
        match tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, body)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(format!("{what}: {e}"))
            }
            Err(_) => {
                self.stream = None;
                Err(format!("{what}: no answer within {CALL_TIMEOUT:?}"))
            }
        }
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<Reply> {
        if self.stream.is_none() {
            let s = UnixStream::connect(&self.engine.socket).await?;
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("connected");
        let body = body.unwrap_or_default();
        let mut req = format!(
            "{method} /v{}{path} HTTP/1.1\r\nHost: docker\r\nContent-Length: {}\r\n",
            self.engine.version,
            body.len()
        )
        .into_bytes();
        if !body.is_empty() {
            req.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        stream.get_mut().write_all(&req).await?;

        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Err(bad("connection closed in headers".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    // Trailers, then the blank line.
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = out.len();
                out.resize(start + size, 0);
                stream.read_exact(&mut out[start..]).await?;
                let mut crlf = [0u8; 2];
                stream.read_exact(&mut crlf).await?;
            }
        } else if let Some(n) = length {
            out.resize(n, 0);
            stream.read_exact(&mut out).await?;
        } else {
            stream.read_to_end(&mut out).await?;
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(Reply { status, body: out })
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Percent-encodes a query value (label filters are JSON).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `filters` query value selecting every container of `instance`, exactly as
/// `DockerService::list_managed_containers` asks for them.
pub fn instance_filter(instance: &str) -> String {
    let filters = serde_json::json!({
        "label": [
            format!("{}=true", botmaker::docker::LABEL_MANAGED),
            format!("{}={instance}", botmaker::docker::LABEL_INSTANCE),
        ]
    });
    encode(&filters.to_string())
}
