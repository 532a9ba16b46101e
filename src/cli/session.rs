//! `login`, `logout` and `healthcheck`: the commands about the connection itself rather than
//! about bots. `login` is the only writer of the CLI config file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::args::{Connection, HealthcheckArgs, LoginArgs};
use super::client::ApiClient;
use super::config::{self, SavedConfig};
use super::error::CliError;
use super::input;
use super::values::ServerUrl;
use crate::api::Success;

/// `login`: the password from `--password-file` or stdin; the token saved for this server.
pub async fn login(conn: &Connection, args: &LoginArgs) -> Result<(), CliError> {
    let resolved = config::resolve(conn)?;
    let raw = match &args.password_file {
        Some(path) => input::read_file(path)?,
        None => input::read_stdin("admin password")?,
    };
    let password = String::from_utf8(input::strip_newline(raw))
        .map_err(|_| CliError::usage("the password is not UTF-8 text"))?;
    if password.is_empty() {
        return Err(CliError::usage(
            "no password given: pipe it on stdin or pass --password-file",
        ));
    }
    let client = ApiClient::new(resolved.server.clone(), None)?;
    let answer = client.login(&password).await?;
    let saved = SavedConfig {
        server: Some(resolved.server.to_string()),
        token: Some(answer.token),
    };
    config::save(&resolved.config_path, &saved)?;
    println!(
        "logged in to {}; session token saved in {} (valid until {})",
        resolved.server,
        resolved.config_path.display(),
        answer.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}

/// `logout`: ends the session on the server and forgets the saved token. A session the
/// server no longer knows is as good as ended.
pub async fn logout(conn: &Connection) -> Result<(), CliError> {
    let resolved = config::resolve(conn)?;
    let client = ApiClient::new(resolved.server.clone(), resolved.token.clone())?;
    match client.post::<Success>("/api/logout").await {
        Ok(_) | Err(CliError::Unauthorized { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut saved = config::load(&resolved.config_path)?;
    if saved.token.is_some() && saved.token == resolved.token {
        saved.token = None;
        config::save(&resolved.config_path, &saved)?;
    }
    println!("logged out of {}", resolved.server);
    Ok(())
}

/// `healthcheck`: `Ok` when `/health` answers 200. The server is `--server` /
/// `BOTMAKER_URL`, else the one `login` saved (as for every other command), else the loopback
/// form of `BOTMAKER_LISTEN` (what a container running `botmaker serve` has), else the
/// default.
pub async fn healthcheck(conn: &Connection, args: &HealthcheckArgs) -> Result<(), CliError> {
    let server = match &conn.server {
        Some(s) => s.clone(),
        None => match saved_server(conn)? {
            Some(s) => s,
            None => std::env::var("BOTMAKER_LISTEN")
                .ok()
                .and_then(|l| l.parse::<SocketAddr>().ok())
                .and_then(|a| ServerUrl::parse(&loopback(a).to_string()).ok())
                .unwrap_or_default(),
        },
    };
    let client = ApiClient::new(server.clone(), None)?;
    let status = client.health(Duration::from_secs(args.timeout)).await?;
    if status.is_success() {
        println!("healthy: {server}");
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "unhealthy: {server}/health answered {status}"
        )))
    }
}

/// The server `login` saved, if any. Where no config file can be located (no `HOME`, as in
/// a server container running its own HEALTHCHECK) there is none; a config file that cannot
/// be read is an error, as for every other command.
fn saved_server(conn: &Connection) -> Result<Option<ServerUrl>, CliError> {
    let Ok(path) = config::config_path(conn) else {
        return Ok(None);
    };
    config::saved_server(&path, &config::load(&path)?)
}

/// `0.0.0.0:p` → `127.0.0.1:p` and `[::]:p` → `[::1]:p`: where to reach a wildcard listener.
fn loopback(mut a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(loopback(a("0.0.0.0:7100")), a("127.0.0.1:7100"));
        assert_eq!(loopback(a("[::]:7100")), a("[::1]:7100"));
        assert_eq!(loopback(a("10.0.0.2:80")), a("10.0.0.2:80"));
    }
}
