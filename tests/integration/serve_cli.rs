//! The `botmaker serve` process itself: start-up checks that fail fast with the fix in the
//! message, the first-run password, and a graceful shutdown that leaves bots running.

use std::process::Stdio;
use std::time::{Duration, Instant};

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
