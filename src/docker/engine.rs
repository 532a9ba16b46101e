//! Which implementation of the Engine API answers: Docker's own daemon, or Podman's
//! Docker-compatible service (`podman system service`).
//!
//! Both speak the same API, but Podman differs where botmaker's guarantees depend on it (it
//! conjures missing bind-mount sources, names cgroups its own way); the places that care ask
//! [`DockerService::engine`](super::DockerService::engine). The README's "Running on Podman"
//! lists every difference and how it is met.

use std::fmt;

use bollard::models::SystemVersion;
use serde::Serialize;

/// The kind of engine behind the socket, told apart once at connect from `GET /version`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Docker Engine (dockerd), or anything that does not say it is Podman.
    #[default]
    Docker,
    /// Podman's Docker-compatible API service.
    Podman,
}

/// The component name Podman's `/version` lists itself under.
const PODMAN_COMPONENT: &str = "Podman Engine";

impl Engine {
    /// Podman lists a `Podman Engine` component in `GET /version`; Docker lists `Engine`.
    pub fn from_version(version: &SystemVersion) -> Self {
        let podman = version
            .components
            .iter()
            .flatten()
            .any(|c| c.name == PODMAN_COMPONENT);
        if podman { Self::Podman } else { Self::Docker }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(json: &str) -> SystemVersion {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn podman_is_told_from_its_version_components() {
        // Trimmed from Debian 12's podman 4.3 and docker.io 20.10.
        let podman = version(
            r#"{"Components":[{"Name":"Podman Engine","Version":"4.3.1",
                 "Details":{"APIVersion":"4.3.1","MinAPIVersion":"4.0.0"}},
                {"Name":"Conmon","Version":"conmon version 2.1.6"}],
                "Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24"}"#,
        );
        assert_eq!(Engine::from_version(&podman), Engine::Podman);
        let docker = version(
            r#"{"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1",
                 "Details":{"ApiVersion":"1.41","MinAPIVersion":"1.12"}},
                {"Name":"containerd","Version":"1.6.20"}],
                "Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#,
        );
        assert_eq!(Engine::from_version(&docker), Engine::Docker);
        assert_eq!(Engine::from_version(&version("{}")), Engine::Docker);
        assert_eq!(Engine::Podman.to_string(), "podman");
    }
}
