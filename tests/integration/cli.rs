//! The `botmaker` binary's client commands, driven end to end as a user would: the built
//! binary in a child process, a real in-process server, the real Docker Engine behind it.
//! Each test has its own CLI config file (via `BOTMAKER_CONFIG`) and its own bot ids.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use botmaker::BotId;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::support::server::{PASSWORD, TestServer};
use crate::support::{eventually, unique};

/// Longest any single CLI invocation may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a CLI run left behind.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts the failure convention: this exit code and exactly one line on stderr.
    fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("botmaker: error: "), "{self:#?}");
        lines[0]
    }
}

/// The CLI as one user sees it: a private config file and scratch space.
struct Cli {
    dir: TempDir,
    server: String,
    token: Option<String>,
}

impl Cli {
    /// A CLI pointed at `s`, not logged in.
    fn new(s: &TestServer) -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("botmaker-cli")
                .tempdir()
                .unwrap(),
            server: s.base.clone(),
            token: None,
        }
    }

    /// A CLI pointed at `s` using the server's session token (through `BOTMAKER_TOKEN`).
    fn with_token(s: &TestServer) -> Self {
        Self {
            token: Some(s.token.clone()),
            ..Self::new(s)
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/cli.json")
    }

    /// Writes a scratch file and returns its path.
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_botmaker"));
        c.args(args)
            .env("BOTMAKER_CONFIG", self.config_path())
            .env("BOTMAKER_URL", &self.server)
            .env_remove("BOTMAKER_TOKEN")
            .env_remove("BOTMAKER_LISTEN")
            .kill_on_drop(true);
        if let Some(t) = &self.token {
            c.env("BOTMAKER_TOKEN", t);
        }
        c
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with(self.command(args), None).await
    }

    async fn run_stdin(&self, args: &[&str], input: &str) -> Out {
        self.run_with(self.command(args), Some(input)).await
    }

    async fn run_with(&self, mut c: Command, input: Option<&str>) -> Out {
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("the botmaker binary runs");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            // A CLI that fails before reading (a usage error) closes its stdin: not our
            // failure, so a broken pipe is ignored; dropping `stdin` sends EOF.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .expect("the CLI finished in time")
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

async fn bot_json(s: &TestServer, id: &str) -> (StatusCode, Value) {
    s.get(&format!("/api/bots/{id}")).await
}

fn secret_on_disk(s: &TestServer, id: &str, name: &str) -> String {
    std::fs::read_to_string(s.data.path().join("secrets").join(id).join(name)).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn login_saves_a_private_token_that_later_commands_use() {
    let s = TestServer::start().await;
    let cli = Cli::new(&s);

    let line = cli.run(&["bots", "list"]).await.fails(4).to_string();
    assert!(line.contains("not logged in"), "{line}");

    let wrong = cli.run_stdin(&["login"], "not the password\n").await;
    assert!(wrong.fails(4).contains("invalid password"));
    assert!(!cli.config_path().exists());

    let out = cli.run_stdin(&["login"], &format!("{PASSWORD}\n")).await;
    assert!(out.ok().contains(&cli.config_path().display().to_string()));
    assert_eq!(mode(&cli.config_path()), 0o600);
    assert_eq!(mode(cli.config_path().parent().unwrap()), 0o700);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(cli.config_path()).unwrap()).unwrap();
    assert_eq!(saved["server"], s.base.as_str());
    assert!(saved["token"].as_str().unwrap().starts_with("bms_"));
    assert!(!out.stdout.contains(saved["token"].as_str().unwrap()));

    let list = cli.run(&["bots", "list"]).await;
    assert!(list.ok().starts_with("ID"), "{list:?}");

    // The saved token is for its own server only: never sent to another one.
    let elsewhere = cli
        .run(&["bots", "list", "--server", "http://127.0.0.1:9"])
        .await;
    assert!(elsewhere.fails(4).contains("not logged in"));

    // From a file works too; then logout forgets the token.
    let pw = cli.file("pw", &format!("{PASSWORD}\n"));
    cli.run(&["login", "--password-file", pw.to_str().unwrap()])
        .await
        .ok();
    assert!(cli.run(&["logout"]).await.ok().contains("logged out"));
    cli.run(&["bots", "list"]).await.fails(4);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_from_flags_and_from_a_spec_file_then_list_show_control_and_remove() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let image = s.h.image.clone();

    // From flags; the secret's value comes from a file named on the command line.
    let flags_id = s.h.bot("cli-flags").to_string();
    let key = cli.file("api-key", "flag-secret-51c2\n");
    let out = cli
        .run(&[
            "bots",
            "create",
            &flags_id,
            "--image",
            &image,
            "-e",
            "TICK_MS=200",
            "--secret-file",
            &format!("API_KEY={}", key.display()),
            "--memory",
            "64",
        ])
        .await;
    assert_eq!(out.ok().trim(), format!("created {flags_id} (running)"));
    assert_eq!(secret_on_disk(&s, &flags_id, "API_KEY"), "flag-secret-51c2");

    // From a spec file, its declared secret read from a secrets directory.
    let spec_id = s.h.bot("cli-spec").to_string();
    let spec = cli.file(
        "spec.toml",
        &format!(
            "id = \"{spec_id}\"\nname = \"Spec Bot\"\nimage = \"{image}\"\nstart = false\n\
             secrets = [\"TOKEN\"]\n[env]\nTICK_MS = \"200\"\n"
        ),
    );
    cli.file(&format!("secrets/{spec_id}/TOKEN"), "spec-secret-77d0\n");
    let secrets_dir = cli.dir.path().join("secrets");
    cli.run(&[
        "bots",
        "create",
        "-f",
        spec.to_str().unwrap(),
        "--secrets-dir",
        secrets_dir.to_str().unwrap(),
    ])
    .await
    .ok();
    let (_, v) = bot_json(&s, &spec_id).await;
    assert_eq!(v["name"], "Spec Bot");
    assert_eq!(v["desired_state"], "stopped");
    assert_eq!(v["env"]["TICK_MS"], "200");
    assert_eq!(secret_on_disk(&s, &spec_id, "TOKEN"), "spec-secret-77d0");

    // The table, and the JSON.
    let table = cli.run(&["bots", "list"]).await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID", "STATE", "HEALTH", "UPTIME", "RESTARTS", "PORTS", "IMAGE"
        ]
    );
    let row = lines.iter().find(|l| l.starts_with(&flags_id)).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "running", "{row}");
    assert!(cells[3].ends_with('s'), "uptime: {row}");
    assert_eq!(cells[6], image);
    let spec_row = lines.iter().find(|l| l.starts_with(&spec_id)).unwrap();
    assert_eq!(spec_row.split_whitespace().nth(3), Some("-"), "{spec_row}");
    let json: Value =
        serde_json::from_str(cli.run(&["bots", "list", "--json"]).await.ok()).unwrap();
    assert_eq!(json["bots"].as_array().unwrap().len(), 2);

    let shown = cli.run(&["bots", "show", &flags_id]).await;
    assert!(shown.ok().contains("API_KEY"), "{shown:?}");
    assert!(shown.stdout.contains("memory_mb=64"), "{shown:?}");
    assert!(!shown.stdout.contains("flag-secret-51c2"));

    // Lifecycle.
    let stop = cli.run(&["bots", "stop", &flags_id]).await;
    assert_eq!(stop.ok().trim(), format!("stopped {flags_id} (stopped)"));
    cli.run(&["bots", "start", &flags_id, &spec_id]).await.ok();
    let (_, v) = bot_json(&s, &spec_id).await;
    assert_eq!(v["desired_state"], "running");
    cli.run(&["bots", "restart", &flags_id]).await.ok();
    cli.run(&["bots", "rm", &spec_id]).await.ok();
    assert_eq!(bot_json(&s, &spec_id).await.0, StatusCode::NOT_FOUND);
}

/// Lines of a child's pipe, as they come.
fn lines_of(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads from `rx` into `seen` until `pred` holds for what was seen, or panics.
async fn wait_lines(
    rx: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    pred: impl Fn(&[String]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pred(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(l)) => seen.push(l),
            Ok(None) => panic!("the stream ended before {what}; saw {seen:?}"),
            Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_across_a_restart() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.create_bot("cli-logs").await;
    s.h.wait_for_log(&BotId::new(id.clone()).unwrap(), "tick 3")
        .await;

    // Plain logs: the last N lines, stdout and stderr kept apart.
    let tail = cli.run(&["bots", "logs", &id, "--tail", "4"]).await;
    let out_lines = tail.ok().lines().count();
    let err_lines = tail.stderr.lines().count();
    assert!(out_lines + err_lines <= 4 && out_lines > 0, "{tail:?}");
    assert!(
        tail.stdout.lines().all(|l| !l.starts_with("tock")),
        "{tail:?}"
    );
    let stamped = cli.run(&["bots", "logs", &id, "--tail", "2", "-t"]).await;
    let all = format!("{}{}", stamped.ok(), stamped.stderr);
    assert!(
        !all.is_empty() && all.lines().all(|l| l.starts_with("20")),
        "{stamped:?}"
    );
    let future = (chrono::Utc::now().timestamp() + 3600).to_string();
    let none = cli.run(&["bots", "logs", &id, "--since", &future]).await;
    assert_eq!((none.ok(), none.stderr.as_str()), ("", ""));

    // Follow, restart, and keep following.
    let mut c = cli.command(&["bots", "logs", "-f", &id]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = lines_of(child.stdout.take().unwrap());
    let mut err = lines_of(child.stderr.take().unwrap());
    let (mut seen_out, mut seen_err) = (Vec::new(), Vec::new());
    wait_lines(&mut out, &mut seen_out, "the first ready", |l| {
        l.iter().any(|l| l == "ready")
    })
    .await;
    wait_lines(&mut out, &mut seen_out, "ticks", |l| {
        l.iter().filter(|l| l.starts_with("tick")).count() >= 5
    })
    .await;

    cli.run(&["bots", "restart", &id]).await.ok();
    wait_lines(&mut out, &mut seen_out, "ready after the restart", |l| {
        l.iter().filter(|l| *l == "ready").count() >= 2
    })
    .await;
    wait_lines(&mut out, &mut seen_out, "ticks after the restart", |l| {
        let after = l.iter().rposition(|l| l == "ready").unwrap();
        l[after..].iter().any(|l| l.starts_with("tick"))
    })
    .await;
    wait_lines(&mut err, &mut seen_err, "the re-attach note", |l| {
        l.iter().any(|l| l == "botmaker: the bot runs again")
    })
    .await;
    assert!(
        seen_err.iter().any(|l| l.starts_with("tock")),
        "the bot's stderr goes to stderr: {seen_err:?}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still following");
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_from_stdin_or_a_file_never_the_command_line() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.create_bot("cli-secrets").await;

    let set = cli
        .run_stdin(&["secrets", "set", &id, "API_KEY"], "stdin-secret-3b9e\n")
        .await;
    let said = set.ok();
    assert!(!said.contains("stdin-secret-3b9e"));
    // It says when the bot gets the new value (generic: the file changes in place).
    assert!(
        said.contains("API_KEY") && said.contains("in place"),
        "{said}"
    );
    assert_eq!(secret_on_disk(&s, &id, "API_KEY"), "stdin-secret-3b9e");

    let raw = cli
        .run_stdin(&["secrets", "set", &id, "RAW", "--raw"], "keep\n")
        .await;
    raw.ok();
    assert_eq!(secret_on_disk(&s, &id, "RAW"), "keep\n");

    let file = cli.file("other", "file-secret-8a1d\n");
    cli.run(&[
        "secrets",
        "set",
        &id,
        "OTHER",
        "--file",
        file.to_str().unwrap(),
    ])
    .await
    .ok();
    assert_eq!(secret_on_disk(&s, &id, "OTHER"), "file-secret-8a1d");

    let list = cli.run(&["secrets", "list", &id]).await;
    assert_eq!(list.ok(), "API_KEY\nOTHER\nRAW\n");

    // A value on the command line is not accepted; nor is an empty one or a bad name.
    cli.run(&["secrets", "set", &id, "API_KEY", "on-the-command-line"])
        .await
        .fails(2);
    let empty = cli.run_stdin(&["secrets", "set", &id, "API_KEY"], "").await;
    assert!(empty.fails(2).contains("empty"));
    cli.run_stdin(&["secrets", "set", &id, "lower"], "x")
        .await
        .fails(2);

    cli.run(&["secrets", "rm", &id, "OTHER"]).await.ok();
    let again = cli.run(&["secrets", "rm", &id, "OTHER"]).await;
    assert!(again.fails(1).contains("NOT_FOUND"));
    let json: Value =
        serde_json::from_str(cli.run(&["secrets", "list", &id, "--json"]).await.ok()).unwrap();
    assert_eq!(json["secrets"], serde_json::json!(["API_KEY", "RAW"]));
}

/// A fleet file of fixture bots: `(id, env TICK_MS, extra lines)`.
fn fleet(image: &str, bots: &[(&str, &str, &str)]) -> String {
    bots.iter()
        .map(|(id, tick, extra)| {
            format!("[[bot]]\nid = \"{id}\"\nimage = \"{image}\"\n{extra}\n[bot.env]\nTICK_MS = \"{tick}\"\n\n")
        })
        .collect()
}

async fn ids_on_server(s: &TestServer) -> Vec<String> {
    let (_, v) = s.get("/api/bots").await;
    let mut ids: Vec<String> = v["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_updates_prunes_and_dry_run_changes_nothing() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let image = s.h.image.clone();
    let (a, b, c) = (
        s.h.bot("fleet-a").to_string(),
        s.h.bot("fleet-b").to_string(),
        s.h.bot("fleet-c").to_string(),
    );
    cli.file(&format!("secrets/{a}/API_KEY"), "fleet-secret-4e2f\n");
    let dir = cli.dir.path().join("secrets");
    let dir = dir.to_str().unwrap();
    let v1 = cli.file(
        "v1.toml",
        &fleet(
            &image,
            &[
                (&a, "200", "secrets = [\"API_KEY\"]"),
                (&b, "200", "start = false"),
            ],
        ),
    );
    let v1 = v1.to_str().unwrap();

    // Dry run: the plan, and nothing changes.
    let plan = cli
        .run(&["apply", "-f", v1, "--secrets-dir", dir, "--dry-run"])
        .await;
    let text = plan.ok();
    assert!(text.contains(&format!("+ create    {a}")), "{text}");
    assert!(text.contains(&format!("+ create    {b}")), "{text}");
    assert!(
        text.contains("would have created 2, updated 0, unchanged 0, deleted 0, failed 0"),
        "{text}"
    );
    assert!(ids_on_server(&s).await.is_empty());

    // Create.
    let out = cli.run(&["apply", "-f", v1, "--secrets-dir", dir]).await;
    assert!(
        out.ok()
            .ends_with("created 2, updated 0, unchanged 0, deleted 0, failed 0\n"),
        "{out:?}"
    );
    assert!(
        out.stderr.is_empty(),
        "no progress bar off a terminal: {out:?}"
    );
    let (_, va) = bot_json(&s, &a).await;
    assert_eq!(va["state"], "running");
    assert_eq!(va["secrets"], serde_json::json!(["API_KEY"]));
    assert_eq!(secret_on_disk(&s, &a, "API_KEY"), "fleet-secret-4e2f");
    assert_eq!(bot_json(&s, &b).await.1["desired_state"], "stopped");

    // Again: nothing to do.
    let again = cli.run(&["apply", "-f", v1]).await;
    assert_eq!(
        again.ok(),
        "created 0, updated 0, unchanged 2, deleted 0, failed 0\n"
    );

    // Change a, add c, drop b: first as a dry run.
    let v2 = cli.file(
        "v2.toml",
        &fleet(
            &image,
            &[(&a, "300", "secrets = [\"API_KEY\"]"), (&c, "200", "")],
        ),
    );
    let v2 = v2.to_str().unwrap();
    let plan = cli.run(&["apply", "-f", v2, "--prune", "--dry-run"]).await;
    let text = plan.ok();
    assert!(text.contains(&format!("~ update    {a}: env")), "{text}");
    assert!(text.contains(&format!("+ create    {c}")), "{text}");
    assert!(text.contains(&format!("- delete    {b}")), "{text}");
    assert_eq!(ids_on_server(&s).await, {
        let mut v = vec![a.clone(), b.clone()];
        v.sort();
        v
    });
    assert_eq!(bot_json(&s, &a).await.1["env"]["TICK_MS"], "200");
    let without_prune = cli.run(&["apply", "-f", v2, "--dry-run"]).await;
    assert!(
        without_prune
            .ok()
            .contains("1 bot(s) on the server are not in the file")
    );

    // For real, two at a time.
    let out = cli
        .run(&["apply", "-f", v2, "--prune", "--yes", "--concurrency", "2"])
        .await;
    assert!(
        out.ok()
            .ends_with("created 1, updated 1, unchanged 0, deleted 1, failed 0\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("updated {a} (env)")),
        "{out:?}"
    );
    let (_, va) = bot_json(&s, &a).await;
    assert_eq!(va["env"]["TICK_MS"], "300");
    assert_eq!(va["state"], "running");
    assert_eq!(bot_json(&s, &b).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bot_json(&s, &c).await.0, StatusCode::OK);

    // Failures are per bot: the others still apply, and the exit code says so.
    let (d, e) = (
        s.h.bot("fleet-d").to_string(),
        s.h.bot("fleet-e").to_string(),
    );
    let mut v3 = fleet(
        &image,
        &[
            (&a, "300", ""),
            (&c, "200", ""),
            (&d, "200", "secrets = [\"NEEDED\"]"),
        ],
    );
    v3.push_str(&format!(
        "[[bot]]\nid = \"{e}\"\nimage = \"botmaker-no-such-image:1\"\n"
    ));
    let v3 = cli.file("v3.toml", &v3);
    let out = cli
        .run(&["apply", "-f", v3.to_str().unwrap(), "--secrets-dir", dir])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .ends_with("created 0, updated 0, unchanged 2, deleted 0, failed 2\n"),
        "{out:?}"
    );
    let errs: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        errs.len(),
        3,
        "one line per failed bot, one summary: {out:?}"
    );
    assert!(
        errs.iter()
            .any(|l| l.starts_with(&format!("botmaker: {d}: ")) && l.contains("NEEDED"))
    );
    assert!(
        errs.iter()
            .any(|l| l.starts_with(&format!("botmaker: {e}: ")) && l.contains("IMAGE_NOT_FOUND"))
    );
    assert!(errs[2].starts_with("botmaker: error: 2 of 2"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_round_trips_through_apply() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let image = s.h.image.clone();
    let (a, b) = (s.h.bot("exp-a").to_string(), s.h.bot("exp-b").to_string());
    let key = cli.file("key", "export-secret-0c7a");
    cli.run(&[
        "bots",
        "create",
        &a,
        "--image",
        &image,
        "--name",
        "Export A",
        "-e",
        "TICK_MS=200",
        "-p",
        "8080",
        "--memory",
        "64",
        "--pids",
        "100",
        "--secret-file",
        &format!("API_KEY={}", key.display()),
        "--",
        "serve",
    ])
    .await
    .ok();
    cli.run(&["bots", "create", &b, "--image", &image, "--no-start"])
        .await
        .ok();

    let file = cli.dir.path().join("fleet.toml");
    cli.run(&["export", "-o", file.to_str().unwrap()])
        .await
        .ok();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("export-secret-0c7a"), "{text}");
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let bots = parsed["bot"].as_array().unwrap();
    let first = bots
        .iter()
        .find(|t| t["id"].as_str() == Some(a.as_str()))
        .unwrap();
    assert_eq!(
        first["secrets"].as_array().unwrap()[0].as_str(),
        Some("API_KEY")
    );
    assert_eq!(first["command"].as_array().unwrap().len(), 1);
    assert_eq!(first["limits"]["memory_mb"].as_integer(), Some(64));
    let second = bots
        .iter()
        .find(|t| t["id"].as_str() == Some(b.as_str()))
        .unwrap();
    assert_eq!(second["start"].as_bool(), Some(false));
    let stdout = cli.run(&["export"]).await;
    assert!(stdout.ok().contains(&format!("id = \"{a}\"")));

    // Applying the export changes nothing...
    let out = cli
        .run(&["apply", "-f", file.to_str().unwrap(), "--prune"])
        .await;
    assert_eq!(
        out.ok(),
        "created 0, updated 0, unchanged 2, deleted 0, failed 0\n"
    );

    // ...and brings back a deleted bot as it was, its secret from a secrets directory.
    cli.run(&["bots", "rm", &a]).await.ok();
    let dir = cli.dir.path().join("restore");
    cli.file(&format!("restore/{a}/API_KEY"), "export-secret-0c7a\n");
    let out = cli
        .run(&[
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--secrets-dir",
            dir.to_str().unwrap(),
        ])
        .await;
    assert!(
        out.ok()
            .ends_with("created 1, updated 0, unchanged 1, deleted 0, failed 0\n"),
        "{out:?}"
    );
    let (_, v) = bot_json(&s, &a).await;
    assert_eq!(v["name"], "Export A");
    assert_eq!(v["limits"]["pids"], 100);
    assert_eq!(v["ports"][0]["container"], 8080);
    assert_eq!(secret_on_disk(&s, &a, "API_KEY"), "export-secret-0c7a");
    let again = cli.run(&["export"]).await;
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(again.ok()), strip(&text));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_one_clear_line_and_a_non_zero_exit() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.h.bot("cli-bad").to_string();

    // Usage errors (2): nothing is sent.
    let bad_fleet = cli.file("fleet.toml", "[[bot]]\nid = \"x\"\nimgae = \"typo\"\n");
    let line = cli
        .run(&["apply", "-f", bad_fleet.to_str().unwrap()])
        .await
        .fails(2)
        .to_string();
    assert!(
        line.contains("fleet.toml:3") && line.contains("imgae"),
        "{line}"
    );
    cli.run(&["apply", "-f", "/nonexistent/fleet.toml"])
        .await
        .fails(2);
    cli.run(&["apply"]).await.fails(2);
    let empty = cli.file("empty.toml", "# nothing yet\n");
    let line = cli
        .run(&["apply", "-f", empty.to_str().unwrap(), "--prune"])
        .await
        .fails(2)
        .to_string();
    assert!(line.contains("would delete every bot"), "{line}");
    let line = cli
        .run(&["bots", "logs", &id, "--since", "yesterday"])
        .await
        .fails(2)
        .to_string();
    assert!(line.contains("RFC 3339"), "{line}");
    cli.run(&["bots", "create", "Not_A_Bot", "--image", "x"])
        .await
        .fails(2);
    cli.run(&["bots", "create", &id, "-p", "99999"])
        .await
        .fails(2);
    cli.run(&["bots", "frobnicate"]).await.fails(2);
    cli.run(&["bots", "create", &id, "--secret-file", "KEY=/nonexistent"])
        .await
        .fails(2);
    assert_eq!(bot_json(&s, &id).await.0, StatusCode::NOT_FOUND);

    // The server says no (1).
    let line = cli.run(&["bots", "create", &id]).await.fails(1).to_string();
    assert!(
        line.contains("VALIDATION_FAILED") && line.contains("image"),
        "{line}"
    );
    let line = cli
        .run(&["bots", "create", &id, "--image", "botmaker-no-such-image:1"])
        .await
        .fails(1)
        .to_string();
    assert!(line.contains("IMAGE_NOT_FOUND"), "{line}");
    assert!(
        cli.run(&["bots", "show", &id])
            .await
            .fails(1)
            .contains("NOT_FOUND")
    );
    cli.run(&["bots", "logs", &id]).await.fails(1);

    // A rejected token (4).
    let bad = Cli {
        token: Some("bms_not-a-real-token".into()),
        ..Cli::new(&s)
    };
    assert!(bad.run(&["bots", "list"]).await.fails(4).contains("login"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_gives_one_clear_line_and_exit_3() {
    let mut s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    assert!(cli.run(&["healthcheck"]).await.ok().starts_with("healthy"));

    s.shutdown().await;
    let line = cli.run(&["bots", "list"]).await.fails(3).to_string();
    assert!(
        line.contains("cannot reach") && line.contains(&s.base),
        "{line}"
    );
    cli.run(&["stats"]).await.fails(3);
    let a = cli.file("f.toml", "[[bot]]\nid = \"x\"\n");
    cli.run(&["apply", "-f", a.to_str().unwrap()])
        .await
        .fails(3);
    // A Docker HEALTHCHECK knows only 0 and 1.
    cli.run(&["healthcheck", "--timeout", "2"]).await.fails(1);

    // BOTMAKER_LISTEN (as a server container has it) is where healthcheck looks by default.
    let mut c = cli.command(&["healthcheck"]);
    c.env_remove("BOTMAKER_URL")
        .env("BOTMAKER_LISTEN", s.base.trim_start_matches("http://"));
    let out = cli.run_with(c, None).await;
    assert!(out.fails(1).contains(&s.base), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_can_be_issued_used_and_revoked() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let name = unique("ci");
    let created = cli.run(&["tokens", "create", &name]).await;
    let token = created.ok().trim().to_string();
    assert!(
        token.starts_with("bmt_") && !token.contains('\n'),
        "{created:?}"
    );
    assert!(created.stderr.contains("only this once"));

    let list = cli.run(&["tokens", "list"]).await;
    assert!(list.ok().contains(&name));
    assert!(!list.stdout.contains(&token));
    let json: Value =
        serde_json::from_str(cli.run(&["tokens", "list", "--json"]).await.ok()).unwrap();
    let tid = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let ci = Cli {
        token: Some(token),
        ..Cli::new(&s)
    };
    ci.run(&["bots", "list"]).await.ok();
    cli.run(&["tokens", "revoke", &tid]).await.ok();
    ci.run(&["bots", "list"]).await.fails(4);
    cli.run(&["tokens", "revoke", &tid]).await.fails(1);
    cli.run(&["tokens", "revoke", "../bots"]).await.fails(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_orphans_and_cleanup() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.create_bot("cli-stats").await;

    let json = eventually("a stats sample", Duration::from_secs(20), || async {
        let out = cli.run(&["stats", "--json", &id]).await;
        let v: Value = serde_json::from_str(out.ok()).unwrap();
        (v["stats"].as_array().unwrap().len() == 1).then_some(v)
    })
    .await;
    assert_eq!(json["stats"][0]["id"], id.as_str());
    let table = cli.run(&["stats"]).await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(lines[0].starts_with("ID"), "{table:?}");
    assert!(lines.iter().any(|l| l.starts_with(&id)), "{table:?}");

    // `nodes` on the Docker backend: the one engine, running this test's one bot.
    let nodes = cli.run(&["nodes"]).await;
    let rows: Vec<&str> = nodes.ok().lines().collect();
    assert!(rows[0].starts_with("NAME"), "{nodes:?}");
    assert_eq!(rows.len(), 2, "{nodes:?}");
    assert!(
        rows[1].contains("ready") && rows[1].contains("engine"),
        "{nodes:?}"
    );
    let v: Value = serde_json::from_str(cli.run(&["nodes", "--json"]).await.ok()).unwrap();
    assert_eq!(v["backend"], "docker", "{v}");
    assert_eq!(v["nodes"][0]["bots"], 1, "{v}");

    assert!(cli.run(&["orphans"]).await.ok().contains("no orphans"));
    // A container of this instance that no bot owns.
    let orphan = s.h.bot("cli-orphan");
    s.h.docker
        .create_container(&orphan, &s.h.config(&orphan))
        .await
        .unwrap();
    let out = cli.run(&["orphans"]).await;
    assert!(
        out.ok().contains(&format!("orphan container {orphan}")),
        "{out:?}"
    );
    let out = cli.run(&["cleanup"]).await;
    assert!(
        out.ok().contains(&format!("removed container {orphan}")),
        "{out:?}"
    );
    assert!(cli.run(&["orphans"]).await.ok().contains("no orphans"));
}

/// `healthcheck` ignored the server `login` saved (every other command uses it) and probed
/// the default address instead.
#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_uses_the_server_saved_by_login() {
    let mut s = TestServer::start().await;
    let cli = Cli::new(&s);
    cli.run_stdin(&["login"], &format!("{PASSWORD}\n"))
        .await
        .ok();
    let mut c = cli.command(&["healthcheck"]);
    c.env_remove("BOTMAKER_URL");
    let out = cli.run_with(c, None).await;
    assert_eq!(out.ok().trim(), format!("healthy: {}", s.base), "{out:?}");

    // The saved server is the one asked, not the default: once it is down, unhealthy.
    s.shutdown().await;
    let mut c = cli.command(&["healthcheck", "--timeout", "2"]);
    c.env_remove("BOTMAKER_URL");
    let out = cli.run_with(c, None).await;
    assert!(out.fails(1).contains(&s.base), "{out:?}");
}

/// `bots create` had no way to set the health check the API takes.
#[tokio::test(flavor = "multi_thread")]
async fn bots_create_sets_the_health_check_from_flags() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.h.bot("cli-health").to_string();
    cli.run(&[
        "bots",
        "create",
        &id,
        "--image",
        &s.h.image,
        "-e",
        "TICK_MS=0",
        "--health-port",
        "8080",
        "--health-interval",
        "1",
        "--health-start-period",
        "0",
        "--health-failure-threshold",
        "2",
    ])
    .await
    .ok();
    let (_, v) = bot_json(&s, &id).await;
    assert_eq!(
        v["health_check"],
        serde_json::json!({
            "port": 8080, "path": "/healthz", "interval_secs": 1,
            "start_period_secs": 0, "failure_threshold": 2
        })
    );
    // botmaker probes it: the fixture answers /healthz on 8080.
    s.wait_bot(&id, "healthy", Duration::from_secs(30), |b| {
        b["health"] == "healthy"
    })
    .await;
    let shown = cli.run(&["bots", "show", &id]).await;
    assert!(
        shown.ok().contains("GET :8080/healthz every 1s"),
        "{shown:?}"
    );

    // Flags override a spec file's health_check field by field.
    let other = s.h.bot("cli-health-file").to_string();
    let spec = cli.file(
        "health.toml",
        &format!(
            "[[bot]]\nid = \"{other}\"\nimage = \"{}\"\nstart = false\n\
             health_check = {{ port = 9000, path = \"/ready\", interval_secs = 7 }}\n",
            s.h.image
        ),
    );
    cli.run(&[
        "bots",
        "create",
        "-f",
        spec.to_str().unwrap(),
        "--health-path",
        "/live",
    ])
    .await
    .ok();
    let (_, v) = bot_json(&s, &other).await;
    assert_eq!(v["health_check"]["port"], 9000);
    assert_eq!(v["health_check"]["path"], "/live");
    assert_eq!(v["health_check"]["interval_secs"], 7);

    // Without a port there is nothing to probe: a usage error, nothing created.
    let none = s.h.bot("cli-health-none").to_string();
    let out = cli
        .run(&[
            "bots",
            "create",
            &none,
            "--image",
            &s.h.image,
            "--health-path",
            "/x",
        ])
        .await;
    assert!(out.fails(2).contains("--health-port"), "{out:?}");
    assert_eq!(bot_json(&s, &none).await.0, StatusCode::NOT_FOUND);
}

/// `apply --prune` deleted bots without asking when nobody could be asked (a script, CI).
/// Now it changes nothing there unless `--yes` is given, and asks on a terminal.
#[tokio::test(flavor = "multi_thread")]
async fn apply_prune_deletes_only_with_yes_or_a_yes_on_the_terminal() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let keep = s.h.bot("prune-keep").to_string();
    let doomed = s.h.bot("prune-doomed").to_string();
    let new = s.h.bot("prune-new").to_string();
    for id in [&keep, &doomed] {
        cli.run(&["bots", "create", id, "--image", &s.h.image, "--no-start"])
            .await
            .ok();
    }
    let file = cli.file(
        "prune.toml",
        &format!(
            "[[bot]]\nid = \"{keep}\"\nimage = \"{img}\"\nstart = false\n\
             [[bot]]\nid = \"{new}\"\nimage = \"{img}\"\nstart = false\n",
            img = s.h.image
        ),
    );
    let file = file.to_str().unwrap();

    // Not a terminal, no --yes: refused before anything changes (not even the create).
    let out = cli.run(&["apply", "-f", file, "--prune"]).await;
    let line = out.fails(2);
    assert!(line.contains(&doomed) && line.contains("--yes"), "{line}");
    assert_eq!(bot_json(&s, &doomed).await.0, StatusCode::OK);
    assert_eq!(bot_json(&s, &new).await.0, StatusCode::NOT_FOUND);

    // On a terminal (a pty from script(1)) it asks; anything but y changes nothing.
    let on_a_terminal = |answer: &str| {
        let mut c = Command::new("script");
        let inner = format!("{} apply -f {file} --prune", env!("CARGO_BIN_EXE_botmaker"));
        c.args(["-qec", &inner, "/dev/null"])
            .env("BOTMAKER_CONFIG", cli.config_path())
            .env("BOTMAKER_URL", &cli.server)
            .env("BOTMAKER_TOKEN", cli.token.as_ref().unwrap())
            .kill_on_drop(true);
        (c, format!("{answer}\n"))
    };
    let (c, input) = on_a_terminal("n");
    let out = cli.run_with(c, Some(&input)).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("Delete them") && out.stdout.contains(&doomed),
        "the question names the bots: {out:?}"
    );
    assert!(out.stdout.contains("nothing was changed"), "{out:?}");
    assert_eq!(bot_json(&s, &doomed).await.0, StatusCode::OK);
    assert_eq!(bot_json(&s, &new).await.0, StatusCode::NOT_FOUND);

    let (c, input) = on_a_terminal("y");
    let out = cli.run_with(c, Some(&input)).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("deleted 1"), "{out:?}");
    assert_eq!(bot_json(&s, &doomed).await.0, StatusCode::NOT_FOUND);
    assert_eq!(bot_json(&s, &new).await.0, StatusCode::OK);

    // --yes deletes without asking, off a terminal.
    let again = s.h.bot("prune-again").to_string();
    cli.run(&[
        "bots",
        "create",
        &again,
        "--image",
        &s.h.image,
        "--no-start",
    ])
    .await
    .ok();
    let out = cli.run(&["apply", "-f", file, "--prune", "--yes"]).await;
    assert!(out.ok().contains("deleted 1"), "{out:?}");
    assert_eq!(bot_json(&s, &again).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn llm_providers_and_usage_from_the_command_line_never_show_the_key() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let key = "sk-cli-provider-key-71c0";
    let add = cli
        .run_stdin(
            &[
                "providers",
                "add",
                "local-llm",
                "--kind",
                "openai-compatible",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--price",
                "test-model=2,10",
            ],
            &format!("{key}\n"),
        )
        .await;
    assert!(add.ok().contains("saved provider local-llm"), "{add:#?}");
    let on_disk = s.data.path().join("llm-providers/local-llm/API_KEY");
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), key);
    assert_eq!(mode(&on_disk), 0o600);

    let list = cli.run(&["providers", "list"]).await;
    let table = list.ok();
    assert!(
        table.contains("local-llm") && table.contains("openai-compatible"),
        "{table}"
    );
    assert!(
        list.stderr.contains("proxy: http://botmaker-llm:"),
        "{list:#?}"
    );
    let json = cli.run(&["providers", "list", "--json"]).await;
    for out in [&list, &json] {
        assert!(
            !out.stdout.contains(key) && !out.stderr.contains(key),
            "{out:#?}"
        );
    }
    let v: Value = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(v["providers"][0]["prices"]["test-model"]["output"], 10.0);

    // The key is never taken from the command line; a bad kind is one clear line.
    cli.run(&["providers", "add", "x", "--kind", "openai", "sk-on-argv"])
        .await
        .fails(2);
    let bad = cli
        .run_stdin(&["providers", "add", "x", "--kind", "gemini"], "k")
        .await;
    assert!(bad.fails(1).contains("kind"), "{bad:#?}");

    let usage = cli.run(&["usage"]).await;
    assert!(usage.ok().contains("(all)"), "{usage:#?}");
    let id = s.create_bot("cli-usage").await;
    let one = cli
        .run(&["usage", "--bot", &id, "--since", "2025-01-01"])
        .await;
    assert!(one.ok().contains("(all)"), "{one:#?}");
    assert!(one.stderr.contains("since 2025-01-01"), "{one:#?}");
    cli.run(&["usage", "--bot", "no-such-bot"]).await.fails(1);

    cli.run(&["providers", "rm", "local-llm"]).await.ok();
    assert!(!on_disk.exists());
    cli.run(&["providers", "rm", "local-llm"]).await.fails(1);
}

/// Regression: a changed `health_check` showed as `~ update` in `apply --dry-run`, then the
/// PATCH failed with `unknown field health_check`; fleet files refused `network` outright.
#[tokio::test(flavor = "multi_thread")]
async fn apply_changes_health_check_and_network() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.h.bot("fleet-edit").to_string();
    let probe = |path: &str| {
        format!(
            "[bot.health_check]\nport = 8080\npath = \"{path}\"\ninterval_secs = 1\n\
             start_period_secs = 0\nfailure_threshold = 1\n"
        )
    };
    let v1 = cli.file(
        "v1.toml",
        &(fleet(&s.h.image, &[(&id, "200", "")]) + &probe("/nope")),
    );
    cli.run(&["apply", "-f", v1.to_str().unwrap()]).await.ok();
    s.wait_bot(&id, "unhealthy", Duration::from_secs(30), |v| {
        v["health"] == "unhealthy"
    })
    .await;

    let v2 = cli.file(
        "v2.toml",
        &(fleet(&s.h.image, &[(&id, "200", "")]) + &probe("/healthz")),
    );
    let v2 = v2.to_str().unwrap();
    let plan = cli.run(&["apply", "-f", v2, "--dry-run"]).await;
    assert!(
        plan.ok()
            .contains(&format!("~ update    {id}: health_check")),
        "{plan:?}"
    );
    let out = cli.run(&["apply", "-f", v2]).await;
    assert!(
        out.ok()
            .ends_with("created 0, updated 1, unchanged 0, deleted 0, failed 0\n"),
        "{out:?}"
    );
    let (_, v) = bot_json(&s, &id).await;
    assert_eq!(v["health_check"]["path"], "/healthz", "{v}");
    s.wait_bot(&id, "healthy", Duration::from_secs(30), |v| {
        v["health"] == "healthy"
    })
    .await;

    let v3 = cli.file(
        "v3.toml",
        &fleet(&s.h.image, &[(&id, "200", "network = \"none\"")]),
    );
    let v3 = v3.to_str().unwrap();
    let plan = cli.run(&["apply", "-f", v3, "--dry-run"]).await;
    assert!(
        plan.ok().contains(&format!("~ update    {id}: network")),
        "{plan:?}"
    );
    cli.run(&["apply", "-f", v3]).await.ok();
    assert_eq!(bot_json(&s, &id).await.1["network"], "none");
    // Applied: the same file is now in step with the server.
    assert_eq!(
        cli.run(&["apply", "-f", v3]).await.ok(),
        "created 0, updated 0, unchanged 1, deleted 0, failed 0\n"
    );
    // And `export` keeps it.
    let exported = cli.run(&["export"]).await;
    assert!(exported.ok().contains("network = \"none\""), "{exported:?}");
}

#[tokio::test]
async fn audit_lists_a_bots_changes_pages_and_filters() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let id = s.create_bot("cli-audit").await;
    cli.run(&["bots", "stop", &id]).await.ok();
    let all = cli.run(&["audit", "--bot", &id]).await;
    let out = all.ok();
    assert!(out.contains("ACTION"), "{all:#?}");
    let stop = out
        .lines()
        .find(|l| l.contains(" stop "))
        .expect("the stop");
    assert!(
        stop.contains("session:admin") && stop.contains(" ok"),
        "{stop}"
    );
    assert!(out.lines().any(|l| l.contains(" create ")), "{all:#?}");
    let one = cli.run(&["audit", "--bot", &id, "--limit", "1"]).await;
    assert_eq!(
        one.ok().lines().count(),
        2,
        "a header and one entry: {one:#?}"
    );
    assert!(one.stderr.contains("--before"), "{one:#?}");
    let json = cli
        .run(&["audit", "--action", "create", "--bot", &id, "--json"])
        .await;
    let v: Value = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
    cli.run(&["audit", "--limit", "0"]).await.fails(2);
}

/// `bots create --node/--node-label` set the bot's `placement`; on the Docker backend a node
/// other than the engine is refused, with nothing created.
#[tokio::test(flavor = "multi_thread")]
async fn bots_create_places_the_bot_from_flags() {
    let s = TestServer::start().await;
    let cli = Cli::with_token(&s);
    let (_, nodes) = s.get("/api/nodes").await;
    let engine = nodes["nodes"][0]["name"].as_str().unwrap().to_string();
    let id = s.h.bot("cli-place").to_string();
    let create = |node: &str| {
        vec![
            "bots".to_string(),
            "create".into(),
            id.clone(),
            "--image".into(),
            s.h.image.clone(),
            "--no-start".into(),
            "--node".into(),
            node.to_string(),
        ]
    };
    let args = create("another-machine");
    let refused = cli
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let line = refused.fails(1).to_string();
    assert!(line.contains("placement.node"), "{line}");
    assert_eq!(bot_json(&s, &id).await.0, StatusCode::NOT_FOUND);
    let args = create(&engine);
    cli.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .ok();
    let (_, v) = bot_json(&s, &id).await;
    assert_eq!(v["placement"], serde_json::json!({ "node": engine }), "{v}");
}
