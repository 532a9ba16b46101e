//! Running botmaker as an operator does: the `botmaker serve` process (its log, its start-up
//! order), the container image built by `scripts/image`, the systemd unit, and the README's
//! first five minutes, each as a user would meet them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::support::fixture::TEST_LABEL;
use crate::support::server::PASSWORD;
use crate::support::{Harness, eventually, unique};

const BIN: &str = env!("CARGO_BIN_EXE_botmaker");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `botmaker serve` child with stdout and stderr on pipes, as under a service manager or
/// `> file 2>&1`. Its stderr (the log) is drained as it comes, so the pipe never fills.
struct ServeProcess {
    child: tokio::process::Child,
    base: String,
    log: Arc<Mutex<Vec<u8>>>,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl ServeProcess {
    /// Starts `botmaker serve` for `h`'s instance with `args`, and waits for `/health`.
    async fn start(h: &Harness, args: &[&str]) -> Self {
        let data = tempfile::Builder::new()
            .prefix("botmaker-ops")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(args)
            .env("BOTMAKER_LISTEN", format!("127.0.0.1:{port}"))
            .env("BOTMAKER_DATA_DIR", data.path())
            .env("BOTMAKER_INSTANCE", h.docker.instance())
            .env("BOTMAKER_ADMIN_PASSWORD", PASSWORD)
            .env("BOTMAKER_LOG", "info")
            // Colour must be off because stderr is a pipe, not because of NO_COLOR.
            .env_remove("NO_COLOR")
            .env_remove("BOTMAKER_LOG_FORMAT")
            .env_remove("BOTMAKER_ADMIN_PASSWORD_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for mut pipe in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let s = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.client.get(s.url("/health")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not come up: {}",
                s.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .client
            .request(method.clone(), self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    async fn login(&self) -> String {
        let v: Value = self
            .client
            .post(self.url("/api/login"))
            .json(&json!({ "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().expect("login works").to_string()
    }

    /// Create, update, apply and delete one fixture bot (the delete with `delete_token`), and
    /// return its id.
    async fn change_a_bot(&self, h: &Harness, token: &str, delete_token: &str) -> String {
        use reqwest::Method;
        let id = h.bot("logged").to_string();
        self.call(
            token,
            Method::POST,
            "/api/bots",
            Some(json!({ "id": id, "image": h.image, "env": { "TICK_MS": "0" } })),
        )
        .await;
        let path = format!("/api/bots/{id}");
        self.call(
            token,
            Method::PATCH,
            &path,
            Some(json!({ "name": "renamed" })),
        )
        .await;
        self.call(token, Method::POST, &format!("{path}/apply"), None)
            .await;
        self.call(delete_token, Method::DELETE, &path, None).await;
        id
    }

    /// SIGTERM, then everything it wrote to stdout and stderr.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap();
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("graceful shutdown")
            .unwrap();
        assert!(status.success(), "{status:?}: {}", self.log_text());
        // The readers end with the pipes; give them a moment to hand over the last bytes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log_text()
    }
}

/// A log written to a file or a pipe carried ANSI colour codes, and creates and deletes were
/// not logged at all. Off a terminal the log is plain text, and every change is one `INFO`
/// line with the bot and who made it.
#[tokio::test(flavor = "multi_thread")]
async fn server_log_off_a_terminal_has_no_colour_codes_and_one_line_per_change() {
    let h = Harness::new().await;
    let s = ServeProcess::start(&h, &[]).await;
    let token = s.login().await;
    let id = s.change_a_bot(&h, &token, &token).await;
    let log = s.stop().await;

    assert!(
        !log.contains("\x1b["),
        "ANSI escapes in a piped log:\n{log}"
    );
    for what in ["bot created", "bot updated", "bot applied", "bot deleted"] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(what) && l.contains(&format!("bot={id}")))
            .collect();
        assert_eq!(lines.len(), 1, "one {what:?} line for {id}:\n{log}");
        assert!(
            lines[0].contains(" INFO ") && lines[0].contains("actor=session:"),
            "{}",
            lines[0]
        );
    }
}

/// `--log-format json`: every line the server writes is one JSON object, and a change names
/// its bot and actor as fields (an API token by its id).
#[tokio::test(flavor = "multi_thread")]
async fn json_log_format_writes_one_object_per_line_with_bot_and_actor() {
    let h = Harness::new().await;
    let s = ServeProcess::start(&h, &["--log-format", "json"]).await;
    let session = s.login().await;
    let api = s
        .call(
            &session,
            reqwest::Method::POST,
            "/api/tokens",
            Some(json!({ "name": "ops-log" })),
        )
        .await;
    let api_token = api["token"].as_str().unwrap().to_string();
    let api_id = api["id"].as_str().unwrap().to_string();
    let id = s.change_a_bot(&h, &session, &api_token).await;
    let log = s.stop().await;

    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message && e["bot"] == id.as_str())
            .unwrap_or_else(|| panic!("no {message:?} event for {id}:\n{log}"))
    };
    let created = find("bot created");
    assert_eq!(created["level"], "INFO");
    assert!(created["actor"].as_str().unwrap().starts_with("session:"));
    assert_eq!(created["image"], h.image.as_str());
    assert_eq!(find("bot deleted")["actor"], format!("token:{api_id}"));
    assert!(find("bot updated")["actor"].is_string());
}

/// The login page's first-run hint said `cat ./data/admin-password` whatever the data
/// directory was; it names the file this server actually wrote.
#[tokio::test(flavor = "multi_thread")]
async fn login_page_names_the_real_password_file() {
    let s = crate::support::server::TestServer::start().await;
    let page = s
        .client
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = std::fs::canonicalize(s.data.path())
        .unwrap()
        .join("admin-password");
    assert!(
        page.contains(&format!("cat {}", file.display())),
        "the hint names {}: {page}",
        file.display()
    );
    assert!(!page.contains("./data/admin-password"), "{page}");
}

/// Runs `botmaker serve` with `envs` (nothing inherited but PATH) until it exits, and returns
/// (exit code, stderr).
async fn serve_exits(envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("serve fails fast")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A taken port (or an engine that does not answer) was discovered only after the data
/// directory and a generated password had been written. Now both are checked first, and a
/// failed start leaves nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_stops_start_up_before_the_data_dir_or_password_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh").join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = serve_exits(&[
        ("BOTMAKER_LISTEN", addr.clone()),
        ("BOTMAKER_DATA_DIR", data.display().to_string()),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("BOTMAKER_LISTEN"),
        "{err}"
    );
    assert!(
        !tmp.path().join("fresh").exists(),
        "a failed start wrote {}",
        data.display()
    );

    let sock = format!("unix:///tmp/{}.sock", unique("nodaemon"));
    let (code, err) = serve_exits(&[
        ("BOTMAKER_LISTEN", "127.0.0.1:0".into()),
        ("BOTMAKER_DATA_DIR", data.display().to_string()),
        ("DOCKER_HOST", sock.clone()),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&sock), "{err}");
    assert!(
        !tmp.path().join("fresh").exists(),
        "a failed start wrote the data dir"
    );
}

/// The botmaker image of one test and the containers it ran, removed (containers first) when
/// the test ends, even by a panic.
struct ImageRun {
    docker: bollard::Docker,
    tag: String,
    containers: Mutex<Vec<String>>,
}

impl ImageRun {
    /// Builds the image with `scripts/image` exactly as a user would, unoptimised for speed,
    /// under a tag of its own and with the label test leftovers are found by.
    async fn build(docker: &bollard::Docker) -> Self {
        let tag = format!("{}:test", unique("botmaker-ops-image"));
        let run = Self {
            docker: docker.clone(),
            tag: tag.clone(),
            containers: Mutex::default(),
        };
        let out = tokio::time::timeout(
            Duration::from_secs(1200),
            Command::new(Path::new(REPO).join("scripts/image"))
                .args(["--debug", "--tag", &tag, "--label"])
                .arg(format!("{TEST_LABEL}=1"))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("scripts/image finished in time")
        .unwrap();
        assert!(
            out.status.success(),
            "scripts/image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), tag);
        run
    }

    /// Starts a container of the image with the Docker socket mounted, `binds` and `env`,
    /// port 7100 published on a loopback port Docker picks.
    async fn run(&self, binds: &[String], env: &[String]) -> String {
        let name = unique("botmaker-ops");
        self.containers.lock().unwrap().push(name.clone());
        let mut all_binds = vec![format!("{}:/var/run/docker.sock", docker_socket())];
        all_binds.extend_from_slice(binds);
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                ContainerCreateBody {
                    image: Some(self.tag.clone()),
                    env: Some(env.to_vec()),
                    labels: Some(HashMap::from([(TEST_LABEL.to_string(), "1".to_string())])),
                    host_config: Some(HostConfig {
                        binds: Some(all_binds),
                        port_bindings: Some(HashMap::from([(
                            "7100/tcp".to_string(),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(String::new()),
                            }]),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.docker.start_container(&name, None).await.unwrap();
        name
    }

    /// Everything the container wrote so far.
    async fn logs(&self, name: &str) -> String {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        self.docker
            .logs(name, Some(options))
            .filter_map(|l| std::future::ready(l.ok().map(|l| l.to_string())))
            .collect::<Vec<_>>()
            .await
            .concat()
    }

    /// Waits for the container to stop and returns its exit code.
    async fn exit_code(&self, name: &str) -> i64 {
        eventually("the container to exit", Duration::from_secs(60), || async {
            let state = self
                .docker
                .inspect_container(name, None)
                .await
                .ok()?
                .state?;
            (state.running == Some(false)).then(|| state.exit_code.unwrap_or(-1))
        })
        .await
    }
}

impl Drop for ImageRun {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let tag = self.tag.clone();
        let names = std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let force = RemoveContainerOptionsBuilder::new().force(true).build();
                for name in names {
                    let _ = docker.remove_container(&name, Some(force.clone())).await;
                }
                let force = RemoveImageOptionsBuilder::new().force(true).build();
                let _ = docker.remove_image(&tag, Some(force), None).await;
            })
        })
        .join();
    }
}

/// The daemon's socket as a path on this host (the image test mounts it into botmaker's
/// container, as a user does).
fn docker_socket() -> String {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    match host.strip_prefix("unix://") {
        Some(path) => path.to_string(),
        None if host.is_empty() => "/var/run/docker.sock".into(),
        None => panic!(
            "the image test mounts the daemon's Unix socket into botmaker's container; \
             DOCKER_HOST={host} is not one"
        ),
    }
}

/// botmaker run the way Portainer or Dockge are: its image (built by `scripts/image`), the
/// Docker socket and the data directory mounted at the same path on both sides, its own port,
/// instance and data directory. It serves, takes a login with the password it generated,
/// creates a bot from the fixture image that runs, is probed healthy and sees its secret,
/// answers its own HEALTHCHECK command, and deletes the bot. Then the mistake that breaks
/// every bot, a data directory mounted at another path (or not mounted), stops start-up with
/// the `-v` to use, before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn botmaker_image_serves_from_a_container_and_refuses_a_moved_data_dir() {
    let h = Harness::new().await;
    let image = ImageRun::build(h.docker.client()).await;
    let docker = h.docker.client().clone();

    // Same path on both sides.
    let data = tempfile::Builder::new()
        .prefix("botmaker-ops-data")
        .tempdir()
        .unwrap();
    let dir = data.path().display().to_string();
    let name = image
        .run(
            &[format!("{dir}:{dir}")],
            &[
                format!("BOTMAKER_DATA_DIR={dir}"),
                format!("BOTMAKER_INSTANCE={}", h.docker.instance()),
            ],
        )
        .await;
    let info = docker.inspect_container(&name, None).await.unwrap();
    let port = info.network_settings.unwrap().ports.unwrap()["7100/tcp"]
        .as_ref()
        .unwrap()[0]
        .host_port
        .clone()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the botmaker container never answered /health: {}",
            image.logs(&name).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let password = std::fs::read_to_string(data.path().join("admin-password")).unwrap();
    let login: Value = client
        .post(format!("{base}/api/login"))
        .json(&json!({ "password": password.trim() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("login").to_string();
    let id = h.bot("in-image").to_string();
    let res = client
        .post(format!("{base}/api/bots"))
        .bearer_auth(&token)
        .json(&json!({
            "id": id, "image": h.image, "env": { "TICK_MS": "0" },
            "secrets": { "API_KEY": "sk-from-a-container" },
            "health_check": { "port": 8080, "interval_secs": 1, "start_period_secs": 0 }
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(
        status,
        reqwest::StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let bot = eventually(
        "the bot running and healthy",
        Duration::from_secs(60),
        || async {
            let v: Value = client
                .get(format!("{base}/api/bots/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["state"] == "running" && v["health"] == "healthy").then_some(v)
        },
    )
    .await;
    assert_eq!(bot["secrets"], json!(["API_KEY"]));
    // The bot sees its secret file: the bind source resolved on the host is the directory
    // botmaker wrote inside its container.
    let bot_id = botmaker::BotId::new(id.clone()).unwrap();
    h.wait_for_log(&bot_id, "secrets: API_KEY").await;
    assert_eq!(
        std::fs::read_to_string(data.path().join("secrets").join(&id).join("API_KEY")).unwrap(),
        "sk-from-a-container"
    );

    // The image's HEALTHCHECK command, run in the container as Docker would.
    let exec = docker
        .create_exec(
            &name,
            bollard::models::ExecConfig {
                cmd: Some(vec!["botmaker".into(), "healthcheck".into()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    {
        while output.next().await.is_some() {}
    }
    let inspected = docker.inspect_exec(&exec.id).await.unwrap();
    assert_eq!(inspected.exit_code, Some(0), "{}", image.logs(&name).await);

    let res = client
        .delete(format!("{base}/api/bots/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    assert_eq!(h.docker.container_status(&bot_id).await.unwrap(), None);
    let log = image.logs(&name).await;
    assert!(
        !log.contains("\x1b["),
        "docker logs carry no colour codes: {log}"
    );
    assert!(
        log.contains("bot created") && log.contains("bot deleted"),
        "{log}"
    );

    // Mounted at another path: refused, with the fix, and nothing written.
    let moved = tempfile::Builder::new()
        .prefix("botmaker-ops-moved")
        .tempdir()
        .unwrap();
    let moved_dir = moved.path().display().to_string();
    let name = image
        .run(
            &[format!("{moved_dir}:/data")],
            &[
                "BOTMAKER_DATA_DIR=/data".into(),
                format!("BOTMAKER_INSTANCE={}", h.docker.instance()),
            ],
        )
        .await;
    let code = image.exit_code(&name).await;
    let log = image.logs(&name).await;
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("-v {moved_dir}:{moved_dir}"))
            && log.contains(&format!("BOTMAKER_DATA_DIR {moved_dir}"))
            && log.contains("same path on both sides"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_dir(moved.path()).unwrap().count(),
        0,
        "nothing is written before the check"
    );

    // Not mounted at all: the data would live in the container's own layer.
    let name = image
        .run(
            &[],
            &[
                "BOTMAKER_DATA_DIR=/var/lib/elsewhere".into(),
                format!("BOTMAKER_INSTANCE={}", h.docker.instance()),
            ],
        )
        .await;
    let code = image.exit_code(&name).await;
    let log = image.logs(&name).await;
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("does not mount /var/lib/elsewhere")
            && log.contains("-v /var/lib/elsewhere:/var/lib/elsewhere"),
        "{log}"
    );
}

/// The systemd unit names only flags and variables `botmaker serve` has (a renamed flag would
/// make the service fail at every start), and `systemd-analyze verify` finds nothing wrong
/// with it (no unknown key, no value it cannot parse) when the tool is installed.
#[tokio::test]
async fn the_systemd_unit_uses_real_flags_and_passes_systemd_analyze() {
    let unit_path = Path::new(REPO).join("packaging/botmaker.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .await
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();

    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/botmaker"));
    assert_eq!(words.next(), Some("serve"));
    let mut flags = 0;
    for w in words {
        if let Some(flag) = w.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap();
            assert!(
                help.contains(&format!("--{flag} ")),
                "unknown flag --{flag} in {exec}"
            );
            flags += 1;
        }
    }
    assert!(flags >= 2, "{exec}");

    // Commented-out lines are suggestions a user uncomments: they must be real too.
    let mut vars = 0;
    for line in unit.lines() {
        let Some(assignment) = line
            .strip_prefix("Environment=")
            .or_else(|| line.strip_prefix("#Environment="))
        else {
            continue;
        };
        let var = assignment.split('=').next().unwrap();
        // glibc's own tunables are the C library's, not botmaker's flags.
        const GLIBC: &[&str] = &["MALLOC_ARENA_MAX"];
        assert!(
            help.contains(&format!("[env: {var}")) || GLIBC.contains(&var),
            "unknown variable {var}"
        );
        vars += 1;
    }
    assert!(vars >= 2);
    // The value given for --log-format is one it accepts.
    assert!(unit.contains("BOTMAKER_LOG_FORMAT=text"));

    let Ok(found) = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .await
    else {
        eprintln!("systemd-analyze is not installed: the unit was checked against --help only");
        return;
    };
    assert!(found.status.success());
    // verify insists that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("botmaker.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/botmaker", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify complained: {stderr}"
    );
}

/// The `sh` blocks of the README's "First five minutes", in order.
fn first_five_minutes() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let section = readme
        .split("\n## First five minutes\n")
        .nth(1)
        .expect("a First five minutes section");
    let section = section.split("\n## ").next().unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// Kills a process group this test started (the README's script and the server it puts in
/// the background), even when the test fails.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

/// The README's "First five minutes", run as they stand with bash from a checkout: the install,
/// the demo bot image, a fresh directory, the server in the background, login, create, list,
/// logs, then the clean-up block. Only the surroundings differ from a newcomer's: `HOME` is a
/// temp dir, the server's port and instance are private (through `BOTMAKER_LISTEN`,
/// `BOTMAKER_URL` and `BOTMAKER_INSTANCE`, which the commands do not name), the bot id
/// `hello` gets a unique suffix, and `cargo install` installs a debug build into the temp
/// `HOME` (a release build would take minutes of CPU the suite cannot spare).
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_first_five_minutes_work_verbatim() {
    let h = Harness::new().await;
    let blocks = first_five_minutes();
    assert_eq!(blocks.len(), 2, "the commands and the clean-up: {blocks:?}");
    let id = h.bot("hello").to_string();
    // Between the blocks (as a reader would, looking around), the test waits until the bot's
    // log shows `ready`: on a loaded machine the first block's `bots logs` can run before the
    // bot has printed anything.
    let look = format!(
        "timeout 120 bash -c 'until botmaker bots logs {id} | grep -q ^ready; do sleep 0.2; done'\n\
         echo \"README-TEST: the log shows ready\""
    );
    let verbatim = |block: &str| {
        block
            .replace(
                "cargo install --locked --path .",
                "cargo install --locked --path . --debug",
            )
            .replace(" hello", &format!(" {id}"))
    };
    let script = [verbatim(&blocks[0]), look, verbatim(&blocks[1])].join("\n");
    assert!(script.contains("--debug"), "{script}");

    let home = tempfile::Builder::new()
        .prefix("botmaker-readme")
        .tempdir()
        .unwrap();
    let port = free_port();
    let real_home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| real_home.join(".cargo"));
    let rustup_home = std::env::var("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| real_home.join(".rustup"));
    let demo_existed = h
        .docker
        .client()
        .inspect_image("botmaker-demo-bot:latest")
        .await
        .is_ok();

    let mut cmd = Command::new("bash");
    cmd.arg("-euxo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .current_dir(REPO)
        .env("HOME", home.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                home.path().join(".cargo/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        // The toolchain and its caches stay the machine's; the install goes to the temp HOME,
        // as it would go to a newcomer's, and reuses this checkout's debug build.
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTUP_HOME", &rustup_home)
        .env("CARGO_INSTALL_ROOT", home.path().join(".cargo"))
        .env("CARGO_TARGET_DIR", Path::new(REPO).join("target"))
        .env("BOTMAKER_LISTEN", format!("127.0.0.1:{port}"))
        .env("BOTMAKER_URL", format!("http://127.0.0.1:{port}"))
        .env("BOTMAKER_INSTANCE", h.docker.instance())
        .env_remove("BOTMAKER_DATA_DIR")
        .env_remove("BOTMAKER_CONFIG")
        .env_remove("BOTMAKER_TOKEN")
        .env_remove("BOTMAKER_ADMIN_PASSWORD")
        .env_remove("BOTMAKER_ADMIN_PASSWORD_FILE")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let _group = ProcessGroup(child.id().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(1200), child.wait_with_output())
        .await
        .expect("the README's commands finish")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log =
        std::fs::read_to_string(home.path().join("botmaker/botmaker.log")).unwrap_or_default();
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{server_log}");
    if !demo_existed {
        let _ = h
            .docker
            .client()
            .remove_image(
                "botmaker-demo-bot:latest",
                Some(RemoveImageOptionsBuilder::new().force(true).build()),
                None,
            )
            .await;
    }
    assert!(out.status.success(), "{all}");

    let data = home.path().join("botmaker/data");
    assert!(data.join("admin-password").exists(), "{all}");
    assert!(stdout.contains("logged in to"), "{all}");
    assert!(stdout.contains(&format!("created {id} (running)")), "{all}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&id)
            && l.contains("running")
            && l.contains("botmaker-demo-bot")),
        "bots list shows the bot: {all}"
    );
    assert!(
        stdout.contains("README-TEST: the log shows ready"),
        "bots logs shows the demo bot's log: {all}"
    );
    assert!(stdout.contains(&format!("removed {id}")), "{all}");
    assert!(
        server_log.contains("bot created") && server_log.contains("bot deleted"),
        "{all}"
    );
}
