//! Validation of user input into typed values, collecting every problem per field so a form
//! (or a script) can show them all at once.

use std::collections::BTreeMap;

use serde::Serialize;

use super::spec::{LimitsSpec, PortSpec};
use crate::secrets::SecretName;

/// Longest display name.
pub const MAX_NAME_LEN: usize = 128;
/// Largest secret value accepted through the API.
pub const MAX_SECRET_LEN: usize = 64 * 1024;
/// Smallest memory limit: below this a container cannot even start its runtime.
pub const MIN_MEMORY_MB: u64 = 6;

/// Problems found in a request, by field path (`env.FOO`, `secrets.bad name`, `ports[0].host`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` if empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The problems, by field.
    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// One line naming every field and problem.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(f, ms)| format!("{f}: {}", ms.join("; ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Checks a display name: printable, 1-128 characters.
pub fn check_name(name: &str, errors: &mut FieldErrors) {
    let len = name.chars().count();
    if name.trim().is_empty() {
        errors.add("name", "must not be empty");
    } else if len > MAX_NAME_LEN {
        errors.add("name", format!("must be at most {MAX_NAME_LEN} characters"));
    } else if name.chars().any(char::is_control) {
        errors.add("name", "must not contain control characters");
    }
}

/// Checks an image reference without asking Docker (which checks existence later).
pub fn check_image(image: &str, errors: &mut FieldErrors) {
    if image.trim().is_empty() {
        errors.add("image", "is required");
    } else if image.len() > 255 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            "image",
            "must be an image reference without spaces (e.g. `mybot:1.0`)",
        );
    }
}

/// Checks a command: if given, non-empty and free of NUL bytes.
pub fn check_command(command: Option<&[String]>, errors: &mut FieldErrors) {
    if let Some(cmd) = command {
        if cmd.iter().any(|a| a.contains('\0')) {
            errors.add("command", "must not contain NUL bytes");
        }
    }
}

/// Checks environment names (`[A-Za-z_][A-Za-z0-9_]*`) and values.
pub fn check_env<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
    errors: &mut FieldErrors,
) {
    for (k, v) in env {
        let mut chars = k.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            errors.add(
                format!("env.{k}"),
                "name must be letters, digits and '_', not starting with a digit",
            );
        }
        if v.contains('\0') {
            errors.add(format!("env.{k}"), "value must not contain NUL bytes");
        }
    }
}

/// Validates secret names and values; returns the typed names of the valid ones.
pub fn check_secrets<'a>(
    secrets: impl IntoIterator<Item = (&'a String, &'a String)>,
    errors: &mut FieldErrors,
) -> Vec<SecretName> {
    let mut names = Vec::new();
    for (k, v) in secrets {
        match SecretName::new(k.clone()) {
            Ok(n) => names.push(n),
            Err(e) => errors.add(format!("secrets.{}", k.escape_debug()), e.to_string()),
        }
        if v.len() > MAX_SECRET_LEN {
            errors.add(
                format!("secrets.{}", k.escape_debug()),
                format!("value must be at most {MAX_SECRET_LEN} bytes"),
            );
        }
    }
    names
}

/// Checks published ports: no zero port, no duplicate container port, a valid host address.
pub fn check_ports(ports: &[PortSpec], errors: &mut FieldErrors) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if p.container == 0 {
            errors.add(format!("ports[{i}].container"), "must be 1-65535");
        }
        if p.host == Some(0) {
            errors.add(
                format!("ports[{i}].host"),
                "must be 1-65535 (omit it to let Docker pick)",
            );
        }
        if let Some(ip) = &p.host_ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                errors.add(format!("ports[{i}].host_ip"), "must be an IP address");
            }
        }
        if !seen.insert((p.container, p.protocol as u8)) {
            errors.add(format!("ports[{i}].container"), "is published twice");
        }
    }
}

/// Checks a Docker network name.
pub fn check_network(name: &str, errors: &mut FieldErrors) {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        errors.add(
            "network",
            "must be a Docker network name (letters, digits, '_', '.', '-')",
        );
    }
}

/// Checks limits are positive and large enough to run anything.
pub fn check_limits(limits: &LimitsSpec, errors: &mut FieldErrors) {
    if let Some(m) = limits.memory_mb {
        if m < MIN_MEMORY_MB {
            errors.add(
                "limits.memory_mb",
                format!("must be at least {MIN_MEMORY_MB}"),
            );
        }
    }
    if let Some(c) = limits.cpus {
        if !(c.is_finite() && c > 0.0 && c <= 1024.0) {
            errors.add("limits.cpus", "must be a number of cores above 0");
        }
    }
    if let Some(p) = limits.pids {
        if p <= 0 {
            errors.add("limits.pids", "must be positive");
        }
    }
}

/// Checks a stop grace period: at least a second, at most [`MAX_STOP_TIMEOUT_SECS`].
///
/// [`MAX_STOP_TIMEOUT_SECS`]: super::spec::MAX_STOP_TIMEOUT_SECS
pub fn check_stop_timeout(secs: Option<u64>, errors: &mut FieldErrors) {
    let max = super::spec::MAX_STOP_TIMEOUT_SECS;
    if secs.is_some_and(|s| s == 0 || s > max) {
        errors.add(
            "stop_timeout_secs",
            format!("must be 1-{max} seconds (the time a bot gets to drain before SIGKILL)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::Protocol;

    #[test]
    fn collects_every_problem_by_field() {
        let mut e = FieldErrors::default();
        check_name("", &mut e);
        check_image("has space", &mut e);
        let env = BTreeMap::from([("1BAD".to_string(), "x".to_string())]);
        check_env(&env, &mut e);
        let secrets = BTreeMap::from([("../etc".to_string(), "x".to_string())]);
        assert!(check_secrets(&secrets, &mut e).is_empty());
        check_ports(
            &[PortSpec {
                container: 0,
                host: None,
                host_ip: Some("nope".into()),
                protocol: Protocol::Tcp,
            }],
            &mut e,
        );
        check_limits(
            &LimitsSpec {
                memory_mb: Some(1),
                cpus: Some(-1.0),
                pids: Some(0),
            },
            &mut e,
        );
        let f = e.fields();
        for key in [
            "name",
            "image",
            "env.1BAD",
            "secrets.../etc",
            "ports[0].container",
            "ports[0].host_ip",
            "limits.memory_mb",
            "limits.cpus",
            "limits.pids",
        ] {
            assert!(f.contains_key(key), "missing {key}: {f:?}");
        }
    }

    #[test]
    fn accepts_good_input() {
        let mut e = FieldErrors::default();
        check_name("My Bot", &mut e);
        check_image("botmaker-testbot:abc", &mut e);
        let env = BTreeMap::from([("_OK_1".to_string(), "v".to_string())]);
        check_env(&env, &mut e);
        let secrets = BTreeMap::from([("API_KEY".to_string(), "v".to_string())]);
        assert_eq!(check_secrets(&secrets, &mut e).len(), 1);
        check_ports(
            &[PortSpec {
                container: 80,
                host: Some(8080),
                host_ip: None,
                protocol: Protocol::Tcp,
            }],
            &mut e,
        );
        check_limits(
            &LimitsSpec {
                memory_mb: Some(64),
                cpus: Some(0.5),
                pids: Some(10),
            },
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
    }
}
