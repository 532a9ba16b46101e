//! What the tests need from Podman beyond the Docker-compatible API they share with Docker:
//! running a container's HEALTHCHECK on demand (Podman schedules them with systemd timers, and
//! the test service runs without systemd) through Podman's own `libpod` API.

use std::time::Duration;

use botmaker::docker::DockerService;

/// The libpod API version asked for: any Podman 4 or 5 serves it.
const LIBPOD_API: &str = "v4.0.0";

/// Runs `container`'s HEALTHCHECK once, as Podman's systemd timer would, and returns the
/// verdict Podman recorded (`healthy`, `unhealthy`, `starting`).
pub async fn run_healthcheck(docker: &DockerService, container: &str) -> String {
    let socket = docker
        .host()
        .strip_prefix("unix://")
        .expect("the Podman test service listens on a unix socket");
    let client = reqwest::Client::builder()
        .unix_socket(socket)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let res = client
        .get(format!(
            "http://podman/{LIBPOD_API}/libpod/containers/{container}/healthcheck"
        ))
        .send()
        .await
        .expect("libpod healthcheck request");
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "healthcheck of {container}: {status} {body}"
    );
    body["Status"].as_str().unwrap_or_default().to_string()
}
