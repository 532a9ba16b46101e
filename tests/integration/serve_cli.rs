//! The `botmaker serve` process itself: start-up checks that fail fast with the fix in the
//! message, the first-run password, and a graceful shutdown that leaves bots running.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::process::Command;

use crate::support::{Harness, unique};

const BIN: &str = env!("CARGO_BIN_EXE_botmaker");

/// Runs `botmaker serve` with `envs` until it exits (or 20 s pass) and returns (code, stderr).
async fn serve_fails(envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("serve should fail fast, not hang")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_failures_say_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pw = (
        "BOTMAKER_ADMIN_PASSWORD",
        "a-long-enough-password".to_string(),
    );

    // Unreachable daemon: names the host and how to fix it.
    let sock = format!("unix:///tmp/{}.sock", unique("nodaemon"));
    let (code, err) = serve_fails(&[
        ("DOCKER_HOST", sock.clone()),
        ("BOTMAKER_DATA_DIR", data.display().to_string()),
        ("BOTMAKER_LISTEN", "127.0.0.1:0".into()),
        pw.clone(),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&sock) && err.contains("dockerd"), "{err}");

    // Data directory that cannot be one (a file).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, err) = serve_fails(&[
        ("BOTMAKER_DATA_DIR", file.display().to_string()),
        pw.clone(),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("data directory") && err.contains("BOTMAKER_DATA_DIR"),
        "{err}"
    );

    // Port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = serve_fails(&[
        ("BOTMAKER_DATA_DIR", data.display().to_string()),
        ("BOTMAKER_LISTEN", addr.clone()),
        pw.clone(),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("BOTMAKER_LISTEN"),
        "{err}"
    );

    // A password that is too short.
    let (code, err) = serve_fails(&[
        ("BOTMAKER_DATA_DIR", data.display().to_string()),
        ("BOTMAKER_ADMIN_PASSWORD", "short".into()),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("12"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_generates_a_password_and_sigterm_leaves_bots_running() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::new().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("BOTMAKER_DATA_DIR", &data)
        .env("BOTMAKER_LISTEN", format!("127.0.0.1:{port}"))
        .env("BOTMAKER_INSTANCE", h.docker.instance())
        .env_remove("BOTMAKER_ADMIN_PASSWORD")
        .env_remove("BOTMAKER_ADMIN_PASSWORD_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pw_file = data.join("admin-password");
    let mode = std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&pw_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 12);
    let login: serde_json::Value = client
        .post(format!("{base}/api/login"))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"]
        .as_str()
        .expect("login with the generated password")
        .to_string();
    let id = h.bot("sigterm");
    let res = client
        .post(format!("{base}/api/bots"))
        .bearer_auth(&token)
        .json(&json!({ "id": id.as_str(), "image": h.image, "env": { "TICK_MS": "0" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);

    let pid = child.id().unwrap();
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("graceful shutdown within 15 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("admin-password"),
        "first run says where the password is: {stderr}"
    );
    assert!(
        !stderr.contains(&password),
        "the password itself is never printed"
    );
    let st = h
        .docker
        .container_status(&id)
        .await
        .unwrap()
        .expect("container kept");
    assert!(st.running, "bots keep running after botmaker stops");
}

/// The README's first steps, exactly, with every default but the port and the instance: a fresh
/// working directory and no data directory setting (so `./data`), the generated password from
/// `data/admin-password`, a login, the README's create (a secret and a port), the bot running
/// with its secret at `/run/secrets/API_KEY`. Before the data directory was made absolute at
/// start-up, every create answered `400 secrets_dir must be an absolute path`.
#[tokio::test(flavor = "multi_thread")]
async fn first_run_with_the_default_relative_data_dir_creates_a_bot() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::new().await;
    let cwd = tempfile::Builder::new()
        .prefix("botmaker-first-run")
        .tempdir()
        .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--instance")
        .arg(h.docker.instance())
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("BOTMAKER_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // TOKEN=$(curl -s localhost:7100/api/login -d "{\"password\": \"$(cat data/admin-password)\"}" | jq -r .token)
    let data = cwd.path().join("data");
    let password = std::fs::read_to_string(data.join("admin-password")).unwrap();
    let login: serde_json::Value = client
        .post(format!("{base}/api/login"))
        .json(&json!({ "password": password.trim() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("login works").to_string();

    // The README's create, with the fixture image standing in for mybot:1.0.
    let id = h.bot("support");
    let res = client
        .post(format!("{base}/api/bots"))
        .bearer_auth(&token)
        .json(&json!({
            "id": id.as_str(), "image": h.image,
            "env": {"MODE": "fast"}, "secrets": {"API_KEY": "sk-first-run"},
            "ports": [{"container": 8080}], "limits": {"memory_mb": 256},
            "health_check": {"port": 8080, "path": "/healthz"}
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");

    // curl -s localhost:7100/api/bots ... | jq '.bots[] | {id, state, health}'
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: serde_json::Value = client
            .get(format!("{base}/api/bots"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bot = list["bots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id.as_str())
            .cloned()
            .expect("the bot is listed");
        if bot["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {bot}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The secret, read from inside the container.
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
        .path("/run/secrets/API_KEY")
        .build();
    let tar_bytes: Vec<u8> = h
        .docker
        .client()
        .download_from_container(&format!("botmaker-{id}"), Some(options))
        .map(|chunk| chunk.unwrap().to_vec())
        .concat()
        .await;
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut secret = String::new();
    std::io::Read::read_to_string(&mut entry, &mut secret).unwrap();
    assert_eq!(secret, "sk-first-run");

    // The data directory and the registry are private to botmaker.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for name in ["botmaker.db", "botmaker.db-wal", "botmaker.db-shm"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }

    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().unwrap().to_string())
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("graceful shutdown")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// The registry holds the admin password's hash and every bot's configuration: an installation
/// that left `botmaker.db`, `-wal`, `-shm` at 0644 in a 0755 data directory (as every one did)
/// gets them tightened at the next start-up.
#[tokio::test(flavor = "multi_thread")]
async fn loosened_data_dir_and_database_files_are_tightened_at_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = crate::support::server::TestServer::start().await;
    s.create_bot("perm").await;
    s.shutdown().await;
    let data = s.data.path().to_path_buf();
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let mode = |p: &std::path::Path| {
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        )
    };
    set(&data, 0o755);
    let files = ["botmaker.db", "botmaker.db-wal", "botmaker.db-shm"];
    for name in files {
        let p = data.join(name);
        if !p.exists() {
            // SQLite removes -wal and -shm on a clean close; an unclean stop leaves them.
            std::fs::write(&p, b"").unwrap();
        }
        set(&p, 0o644);
    }

    let s = s.restart().await;
    assert_eq!(mode(&data), "700");
    for name in files {
        let p = data.join(name);
        if p.exists() {
            assert_eq!(mode(&p), "600", "{name}");
        }
    }
    assert_eq!(mode(&data.join("botmaker.db")), "600");
    // The server works on the tightened files.
    s.create_bot("perm-after").await;
}
