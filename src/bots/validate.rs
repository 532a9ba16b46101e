//! Validation of user input into typed values, collecting every problem per field so a form
//! (or a script) can show them all at once.

use std::collections::BTreeMap;

use super::spec::{HttpProbe, LimitsSpec, PortSpec, UpdateBot};
pub use crate::field_errors::FieldErrors;
use crate::secrets::SecretName;

/// Longest display name.
pub const MAX_NAME_LEN: usize = 128;
/// Largest secret value accepted through the API.
pub const MAX_SECRET_LEN: usize = 64 * 1024;
/// Smallest memory limit: below this a container cannot even start its runtime.
pub const MIN_MEMORY_MB: u64 = 6;
/// Largest memory limit, 1 TiB: anything above is a typo (and `MiB << 20` must not overflow).
pub const MAX_MEMORY_MB: u64 = 1 << 20;
/// Memory limit of a bot that sets none: enough for a chat bot, and a leaking one is killed
/// before it takes the host down with it.
pub const DEFAULT_MEMORY_MB: u64 = 512;
/// Most processes (threads included) a bot may set; the kernel's default `pid_max`.
pub const MAX_PIDS: i64 = 32_768;
/// Process limit of a bot that sets none: room for a runtime, its workers and a headless
/// browser, while a fork bomb stops there.
pub const DEFAULT_PIDS: i64 = 512;
/// Most CPU cores a bot may set.
pub const MAX_CPUS: f64 = 1024.0;
/// Longest time between two health probes, and longest probe start period: a day.
pub const MAX_PROBE_SECS: u64 = 86_400;
/// Most consecutive failed probes before a bot is unhealthy.
pub const MAX_PROBE_FAILURES: u32 = 100;
/// The network that shares the host's network stack, allowed only with `--allow-host-network`.
pub const HOST_NETWORK: &str = "host";

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
    } else if image.len() > 255 || !is_image_reference(image) {
        errors.add(
            "image",
            "must be an image reference: a lowercase name with an optional registry, tag or \
             digest (e.g. `mybot:1.0`, `registry.example:5000/team/bot@sha256:…`)",
        );
    }
}

/// Whether `image` follows Docker's reference grammar, `[domain[:port]/]path[:tag][@digest]`.
/// Docker answers some malformed ones with a redirect or an error of its own rather than
/// "not found", so they are refused here, with the other validation errors.
pub fn is_image_reference(image: &str) -> bool {
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-'))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
    });
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    });
    let mut parts: Vec<&str> = name.split('/').collect();
    // The first part is a registry when it looks like a host: a dot, a port or `localhost`.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let domain = parts.remove(0);
        let (host, port) = match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        };
        let host_ok = !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !host_ok || !port_ok {
            return false;
        }
    }
    // Each path part: lowercase letters and digits, joined by single separators (`.`, `_`,
    // `__` or dashes).
    let part_ok = |p: &str| {
        let bytes = p.as_bytes();
        !p.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && !p.contains("..")
    };
    digest_ok && tag_ok && !parts.is_empty() && parts.iter().all(|p| part_ok(p))
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
        if v.is_empty() {
            errors.add(
                format!("secrets.{}", k.escape_debug()),
                "value must not be empty",
            );
        }
    }
    names
}

/// Warnings for environment variables whose name looks like a secret's (`*_KEY`, `*TOKEN*`,
/// `*SECRET*`, `*PASSWORD*`, `*PASSWD*`, `*CREDENTIAL*`, `*_PAT`) and whose value is not
/// empty. Such a value is stored in the database, returned by the API and written by
/// `export`; as a secret it would be a file under `/run/secrets`. A warning, not a refusal:
/// `SSH_KEY_PATH=/x` or `TOKEN_TTL=60` are fine, and the user knows which.
pub fn env_warnings(env: &BTreeMap<String, String>) -> Vec<String> {
    env.iter()
        .filter(|(k, v)| !v.is_empty() && looks_secret(k))
        .map(|(k, _)| {
            format!(
                "env {k} looks like a secret: its value is stored and shown in plain text \
                 (API, dashboard, `export`); pass it in `secrets` instead (a file at \
                 /run/secrets/{k})"
            )
        })
        .collect()
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k.ends_with("_KEY")
        || k == "KEY"
        || k.ends_with("_PAT")
        || [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
            "PRIVATE_KEY",
            "API_KEY",
        ]
        .iter()
        .any(|w| k.contains(w))
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
        if let Some(host) = p.host.filter(|h| *h != 0) {
            let clash = ports[..i]
                .iter()
                .any(|q| q.host == Some(host) && q.protocol == p.protocol && same_address(p, q));
            if clash {
                errors.add(
                    format!("ports[{i}].host"),
                    format!("host port {host} is already published by another port of this bot"),
                );
            }
        }
    }
}

/// Whether two ports bind overlapping host addresses: the same one, or either on all
/// addresses (`0.0.0.0`, `::`). Unset is Docker's default here, 127.0.0.1.
fn same_address(a: &PortSpec, b: &PortSpec) -> bool {
    let ip = |p: &PortSpec| {
        p.host_ip
            .as_deref()
            .unwrap_or(crate::docker::DEFAULT_HOST_IP)
            .parse::<std::net::IpAddr>()
            .ok()
    };
    match (ip(a), ip(b)) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => false,
    }
}

/// Whether `name` can be a Docker network name: one worth asking Docker about.
pub fn is_network_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a Docker network name. `host` shares the host's network stack (a bot on it reaches
/// everything bound to this machine's loopback, botmaker's API included), so it needs the
/// server's explicit opt-in.
pub fn check_network(name: &str, allow_host: bool, errors: &mut FieldErrors) {
    if !is_network_name(name) {
        errors.add(
            "network",
            "must be a Docker network name (letters, digits, '_', '.', '-')",
        );
    } else if name.eq_ignore_ascii_case(HOST_NETWORK) && !allow_host {
        errors.add(
            "network",
            "the host network gives a bot this machine's network stack, botmaker's own API on \
             127.0.0.1 included; it is refused unless botmaker runs with --allow-host-network \
             (BOTMAKER_ALLOW_HOST_NETWORK=true)",
        );
    }
}

/// Checks limits are within bounds: large enough to run anything, small enough to mean
/// something (and to convert to bytes without overflow).
pub fn check_limits(limits: &LimitsSpec, errors: &mut FieldErrors) {
    if let Some(m) = limits.memory_mb {
        if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&m) {
            errors.add(
                "limits.memory_mb",
                format!("must be {MIN_MEMORY_MB}-{MAX_MEMORY_MB} (MiB)"),
            );
        }
    }
    if let Some(c) = limits.cpus {
        if !(c.is_finite() && c > 0.0 && c <= MAX_CPUS) {
            errors.add(
                "limits.cpus",
                format!("must be a number of cores above 0 and at most {MAX_CPUS}"),
            );
        }
    }
    if let Some(p) = limits.pids {
        if !(1..=MAX_PIDS).contains(&p) {
            errors.add("limits.pids", format!("must be 1-{MAX_PIDS}"));
        }
    }
    if limits
        .llm_tokens_per_day
        .is_some_and(|t| t > MAX_LLM_TOKENS_PER_DAY)
    {
        errors.add(
            "limits.llm_tokens_per_day",
            format!("must be 0-{MAX_LLM_TOKENS_PER_DAY}"),
        );
    }
    if limits
        .llm_requests_per_minute
        .is_some_and(|r| r > MAX_LLM_REQUESTS_PER_MINUTE)
    {
        errors.add(
            "limits.llm_requests_per_minute",
            format!("must be 0-{MAX_LLM_REQUESTS_PER_MINUTE}"),
        );
    }
    if let Some(c) = limits.llm_cost_per_month {
        if !(c.is_finite() && (0.0..=MAX_LLM_COST_PER_MONTH).contains(&c)) {
            errors.add(
                "limits.llm_cost_per_month",
                format!("must be a cost from 0 to {MAX_LLM_COST_PER_MONTH}"),
            );
        }
    }
}

/// Highest `limits.llm_tokens_per_day` (a trillion: far beyond any fleet's day).
pub const MAX_LLM_TOKENS_PER_DAY: u64 = 1_000_000_000_000;
/// Highest `limits.llm_requests_per_minute`.
pub const MAX_LLM_REQUESTS_PER_MINUTE: u64 = 1_000_000;
/// Highest `limits.llm_cost_per_month` (its cost in billionths fits 64 bits many times over).
pub const MAX_LLM_COST_PER_MONTH: f64 = 1_000_000_000.0;

/// Fills the limits a bot left unset with the defaults: no bot runs without a memory and a
/// process limit.
pub fn apply_default_limits(limits: &mut LimitsSpec) {
    limits.memory_mb.get_or_insert(DEFAULT_MEMORY_MB);
    limits.pids.get_or_insert(DEFAULT_PIDS);
}

/// Checks botmaker's HTTP probe: a real port, an absolute path, and timings within a day.
pub fn check_health_check(p: &HttpProbe, errors: &mut FieldErrors) {
    if p.port == 0 {
        errors.add("health_check.port", "must be 1-65535");
    }
    if !p.path.starts_with('/') || p.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            "health_check.path",
            "must be an absolute URL path like /healthz",
        );
    }
    if !(1..=MAX_PROBE_SECS).contains(&p.interval_secs) {
        errors.add(
            "health_check.interval_secs",
            format!("must be 1-{MAX_PROBE_SECS}"),
        );
    }
    if p.start_period_secs > MAX_PROBE_SECS {
        errors.add(
            "health_check.start_period_secs",
            format!("must be 0-{MAX_PROBE_SECS}"),
        );
    }
    if !(1..=MAX_PROBE_FAILURES).contains(&p.failure_threshold) {
        errors.add(
            "health_check.failure_threshold",
            format!("must be 1-{MAX_PROBE_FAILURES}"),
        );
    }
    if let Some(r) = &p.ready_path
        && (!r.starts_with('/') || r.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        errors.add(
            "health_check.ready_path",
            "must be an absolute URL path like /readyz",
        );
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

/// Checks the settings a PATCH sets (secrets are checked on their own, since their names are
/// needed), with the same rules as a create. `allow_host` is the server's
/// `--allow-host-network`.
pub fn check_update(req: &UpdateBot, allow_host: bool, errors: &mut FieldErrors) {
    // Field by field, so a setting added to the PATCH cannot go unchecked.
    let UpdateBot {
        name,
        image: _,
        command,
        env,
        secrets: _,
        ports,
        limits,
        network,
        health_check,
        user,
        settings: _,
        stop_timeout_secs,
        placement,
        apply: _,
    } = req;
    if let Some(name) = name {
        check_name(name, errors);
    }
    if let Some(command) = command {
        check_command(Some(command), errors);
    }
    if let Some(env) = env {
        check_env(env, errors);
    }
    if let Some(ports) = ports {
        check_ports(ports, errors);
    }
    if let Some(limits) = limits {
        check_limits(limits, errors);
    }
    if let Some(Some(network)) = network {
        check_network(network, allow_host, errors);
    }
    if let Some(Some(probe)) = health_check {
        check_health_check(probe, errors);
    }
    if let Some(Some(user)) = user {
        check_user(user, errors);
    }
    if let Some(secs) = stop_timeout_secs {
        check_stop_timeout(*secs, errors);
    }
    if let Some(Some(p)) = placement {
        check_placement(p, errors);
    }
}

/// Checks a placement's syntax: node and label names a Swarm constraint carries as written.
/// Whether a node fits is the backend's question (`DockerService::placement_problem`).
pub fn check_placement(p: &crate::docker::Placement, errors: &mut FieldErrors) {
    for (field, message) in p.syntax_problems() {
        errors.add(field, message);
    }
}

/// Checks the `user` field: a numeric `uid` or `uid:gid`. Names are refused because botmaker
/// must know the number to hand the bot's secret files to it; an image's own named `USER` is
/// resolved from its `/etc/passwd` instead (see `bots::run_as`).
pub fn check_user(user: &str, errors: &mut FieldErrors) {
    if crate::bots::run_as::parse_ids(user).is_none() {
        errors.add(
            "user",
            "must be a numeric uid or uid:gid (for example 1000 or 1000:1000), each at most 2147483647",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::docker::Protocol;

    #[test]
    fn secret_looking_env_keys_with_values_are_warned_about() {
        let env = BTreeMap::from(
            [
                ("API_KEY", "sk-1"),
                ("GITHUB_TOKEN", "x"),
                ("db_password", "p"),
                ("CLIENT_SECRET", "s"),
                ("EMPTY_TOKEN", ""),
                ("LOG_LEVEL", "info"),
                ("KEYBOARD", "us"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let warned: Vec<String> = env_warnings(&env)
            .iter()
            .map(|w| w.split_whitespace().nth(1).unwrap().to_string())
            .collect();
        assert_eq!(
            warned,
            ["API_KEY", "CLIENT_SECRET", "GITHUB_TOKEN", "db_password"]
        );
    }

    #[test]
    fn the_same_host_port_twice_in_one_bot_is_a_field_error() {
        let port = |container, host, ip: Option<&str>| PortSpec {
            container,
            host: Some(host),
            host_ip: ip.map(String::from),
            protocol: Protocol::Tcp,
            publish: Default::default(),
        };
        let mut e = FieldErrors::default();
        check_ports(&[port(80, 8080, None), port(81, 8080, None)], &mut e);
        assert_eq!(
            e.fields().keys().collect::<Vec<_>>(),
            ["ports[1].host"],
            "{e:?}"
        );
        let mut e = FieldErrors::default();
        check_ports(
            &[
                port(80, 8080, Some("0.0.0.0")),
                port(81, 8080, Some("127.0.0.1")),
            ],
            &mut e,
        );
        assert!(e.fields().contains_key("ports[1].host"), "{e:?}");
        // Other addresses, or another protocol, do not clash.
        let mut e = FieldErrors::default();
        let mut udp = port(81, 8080, None);
        udp.protocol = Protocol::Udp;
        check_ports(
            &[
                port(80, 8080, Some("127.0.0.1")),
                port(81, 8080, Some("127.0.0.2")),
                udp,
            ],
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
    }

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
                publish: Default::default(),
            }],
            &mut e,
        );
        check_limits(
            &LimitsSpec {
                memory_mb: Some(1),
                cpus: Some(-1.0),
                pids: Some(0),
                ..LimitsSpec::default()
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
    fn limits_have_upper_bounds() {
        let mut e = FieldErrors::default();
        check_limits(
            &LimitsSpec {
                // `m * 1024 * 1024` of this wrapped to a 100 MiB limit.
                memory_mb: Some(17_592_186_044_516),
                cpus: Some(1e300),
                pids: Some(MAX_PIDS + 1),
                ..LimitsSpec::default()
            },
            &mut e,
        );
        for key in ["limits.memory_mb", "limits.cpus", "limits.pids"] {
            assert!(e.fields().contains_key(key), "missing {key}: {e}");
        }
        let mut e = FieldErrors::default();
        check_limits(
            &LimitsSpec {
                memory_mb: Some(MAX_MEMORY_MB),
                cpus: Some(MAX_CPUS),
                pids: Some(MAX_PIDS),
                ..LimitsSpec::default()
            },
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
    }

    #[test]
    fn llm_limits_are_bounded_and_zero_is_allowed() {
        let mut e = FieldErrors::default();
        check_limits(
            &LimitsSpec {
                llm_tokens_per_day: Some(MAX_LLM_TOKENS_PER_DAY + 1),
                llm_cost_per_month: Some(f64::INFINITY),
                llm_requests_per_minute: Some(MAX_LLM_REQUESTS_PER_MINUTE + 1),
                ..LimitsSpec::default()
            },
            &mut e,
        );
        for key in [
            "limits.llm_tokens_per_day",
            "limits.llm_cost_per_month",
            "limits.llm_requests_per_minute",
        ] {
            assert!(e.fields().contains_key(key), "missing {key}: {e}");
        }
        let mut e = FieldErrors::default();
        check_limits(
            &LimitsSpec {
                llm_tokens_per_day: Some(0),
                llm_cost_per_month: Some(-0.01),
                llm_requests_per_minute: Some(0),
                ..LimitsSpec::default()
            },
            &mut e,
        );
        assert_eq!(
            e.fields().keys().collect::<Vec<_>>(),
            ["limits.llm_cost_per_month"]
        );
    }

    #[test]
    fn unset_limits_get_defaults_and_set_ones_are_kept() {
        let mut l = LimitsSpec::default();
        apply_default_limits(&mut l);
        assert_eq!(l.memory_mb, Some(DEFAULT_MEMORY_MB));
        assert_eq!(l.pids, Some(DEFAULT_PIDS));
        assert_eq!(l.cpus, None);
        let mut l = LimitsSpec {
            memory_mb: Some(64),
            cpus: Some(1.0),
            pids: Some(8),
            ..LimitsSpec::default()
        };
        apply_default_limits(&mut l);
        assert_eq!((l.memory_mb, l.pids), (Some(64), Some(8)));
    }

    #[test]
    fn image_references_follow_dockers_grammar() {
        for ok in [
            "mybot",
            "mybot:1.0",
            "botmaker-openclaw:2026.9.6-9511a3aa0709",
            "team/bot_v2:latest",
            "registry.example:5000/team/bot",
            "localhost/bot:dev",
            "Registry.Example/bot",
            "bot@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        // Seen as 500s from the fuzz run: Docker redirects or rejects these itself.
        for bad in [
            "oiSSx-wYt098IrsL8/",
            "niJdZob0mRHvNaXP",
            "e\u{301}\u{301}",
            "bot:",
            "bot:-x",
            "/bot",
            "a//b",
            "bot@sha256:xyz",
            "-bot",
            "bot.",
        ] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn host_network_needs_the_opt_in() {
        for name in ["host", "HOST"] {
            let mut e = FieldErrors::default();
            check_network(name, false, &mut e);
            assert!(e.summary().contains("--allow-host-network"), "{e}");
            let mut e = FieldErrors::default();
            check_network(name, true, &mut e);
            assert!(e.is_empty(), "{e}");
        }
        let mut e = FieldErrors::default();
        check_network("none", false, &mut e);
        check_network("my-net", false, &mut e);
        assert!(e.is_empty(), "{e}");
    }

    #[test]
    fn empty_secret_values_are_refused() {
        let mut e = FieldErrors::default();
        let secrets = BTreeMap::from([("EMPTY".to_string(), String::new())]);
        check_secrets(&secrets, &mut e);
        assert!(e.fields().contains_key("secrets.EMPTY"), "{e}");
    }

    #[test]
    fn probe_timings_are_bounded() {
        let mut e = FieldErrors::default();
        check_health_check(
            &HttpProbe {
                port: 0,
                path: "healthz".into(),
                ready_path: Some("readyz".into()),
                interval_secs: u64::MAX,
                start_period_secs: u64::MAX,
                failure_threshold: 0,
            },
            &mut e,
        );
        for key in [
            "health_check.port",
            "health_check.path",
            "health_check.ready_path",
            "health_check.interval_secs",
            "health_check.start_period_secs",
            "health_check.failure_threshold",
        ] {
            assert!(e.fields().contains_key(key), "missing {key}: {e}");
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
                publish: Default::default(),
            }],
            &mut e,
        );
        check_limits(
            &LimitsSpec {
                memory_mb: Some(64),
                cpus: Some(0.5),
                pids: Some(10),
                ..LimitsSpec::default()
            },
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
    }
}
