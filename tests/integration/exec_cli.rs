//! `botmaker bots exec`, the built binary as a user runs it: to completion (outputs, exit code
//! passed through, time limit), and `-it` on a real terminal (a pty made by script(1)): keys
//! in, screen out, resize on SIGWINCH, and the terminal's settings restored afterwards, on a
//! normal exit and on SIGINT.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::exec::running_bot;
use crate::support::server::TestServer;

/// Longest one CLI run (or one wait for the screen) may take.
const LIMIT: Duration = Duration::from_secs(60);

/// The CLI with the server's session token and a private config path.
fn cli(s: &TestServer, dir: &TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_botmaker"));
    c.args(args)
        .env("BOTMAKER_CONFIG", dir.path().join("cli.json"))
        .env("BOTMAKER_URL", &s.base)
        .env("BOTMAKER_TOKEN", &s.token)
        .env_remove("BOTMAKER_LISTEN")
        .kill_on_drop(true);
    c
}

/// Exit code, stdout, stderr of a run without input.
async fn run(mut c: Command) -> (i32, String, String) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::time::timeout(LIMIT, c.output())
        .await
        .expect("the CLI finished in time")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_exec_prints_both_outputs_and_exits_with_the_commands_code() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id = running_bot(&s, "cli-exec").await;
    let exec = |args: &[&str]| {
        let mut all = vec!["bots", "exec"];
        all.extend_from_slice(args);
        cli(&s, &dir, &all)
    };

    let (code, out, err) = run(exec(&[
        &id, "--", "/testbot", "streams", "to out", "to err", "3",
    ]))
    .await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (3, "to out\n", "to err\n")
    );
    let (code, out, _) = run(exec(&[
        "-e",
        "GREETING=hello there",
        "-w",
        "/run",
        "-u",
        "4321",
        &id,
        "--",
        "/testbot",
        "env",
        "GREETING",
    ]))
    .await;
    assert_eq!((code, out.as_str()), (0, "hello there\n"));

    // Past --timeout: 124, and a line that says the command may still run.
    let (code, _, err) = run(exec(&[
        "--timeout",
        "1",
        &id,
        "--",
        "/testbot",
        "sleep",
        "30",
    ]))
    .await;
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("did not end within 1 s"), "{err}");

    // Output past the cap is cut, and a note says so.
    let (code, out, err) = run(exec(&[&id, "--", "/testbot", "flood", "2000000"])).await;
    assert_eq!(code, 0);
    assert_eq!(out.len(), 1024 * 1024);
    assert!(
        err.contains("stdout was cut") && err.contains("stderr was cut"),
        "{}",
        &err[err.len() - 300..]
    );

    // botmaker's own failures: one line, its own codes.
    let (code, _, err) = run(exec(&["no-such-bot", "--", "/testbot", "id"])).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("botmaker: error: ") && err.contains("NOT_FOUND"),
        "{err}"
    );
    s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    let (code, _, err) = run(exec(&[&id, "--", "/testbot", "id"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("NOT_RUNNING") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = run(exec(&["-t", &id, "--", "/testbot", "sh"])).await;
    assert_eq!(code, 2, "-t without a terminal is a usage error: {err}");
}

/// `botmaker bots exec -it` inside script(1): a real pty for the CLI, our pipe for its keys.
struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: String,
    output: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Terminal {
    /// Runs `shell` (a `sh -c` line) under script(1) with the CLI's environment.
    fn start(s: &TestServer, dir: &TempDir, shell: &str) -> Self {
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", shell, "/dev/null"])
            .env("BOTMAKER_CONFIG", dir.path().join("cli.json"))
            .env("BOTMAKER_URL", &s.base)
            .env("BOTMAKER_TOKEN", &s.token)
            .env("BM", env!("CARGO_BIN_EXE_botmaker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("script(1) runs");
        let keys = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            keys,
            screen: String::new(),
            output,
        }
    }

    /// Waits until `needle` is on the screen.
    async fn see(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !self.screen.contains(needle) {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(b)) => self.screen.push_str(&String::from_utf8_lossy(&b)),
                Ok(None) => panic!("the terminal closed before {needle:?}: {:?}", self.screen),
                Err(_) => panic!("timed out waiting for {needle:?}: {:?}", self.screen),
            }
        }
    }

    async fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).await.unwrap();
        self.keys.flush().await.unwrap();
    }

    /// Waits for script(1) to end; its exit code.
    async fn wait(mut self) -> (i32, String) {
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("the terminal session ended in time")
            .unwrap();
        while let Ok(Some(b)) =
            tokio::time::timeout(Duration::from_secs(5), self.output.recv()).await
        {
            self.screen.push_str(&String::from_utf8_lossy(&b));
        }
        (status.code().unwrap_or(-1), self.screen)
    }
}

/// The settings `stty -a` printed after `marker`, as words.
fn stty_after(screen: &str, marker: &str) -> Vec<String> {
    let at = screen
        .rfind(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {screen:?}"));
    screen[at..]
        .split(|c: char| c.is_whitespace() || c == ';')
        .map(str::to_string)
        .collect()
}

/// Raw mode is off again: canonical input, echo and signal keys are back.
fn assert_cooked(words: &[String]) {
    for on in ["icanon", "echo", "isig", "opost"] {
        assert!(
            words.iter().any(|w| w == on),
            "{on} not restored: {words:?}"
        );
        assert!(
            !words.iter().any(|w| *w == format!("-{on}")),
            "-{on}: {words:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_exec_it_is_a_terminal_that_follows_the_window_and_is_restored() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id = running_bot(&s, "cli-tty").await;
    let flag = dir.path().join("resize-now");
    // The window changes when the test says so; SIGWINCH then reaches the CLI.
    let shell = format!(
        "stty sane; \
         (while [ ! -e {flag} ]; do sleep 0.1; done; stty cols 123 rows 45 < /dev/tty) & \
         \"$BM\" bots exec -it {id} -- /testbot sh; echo EXIT=$?; stty -a",
        flag = flag.display()
    );
    let mut t = Terminal::start(&s, &dir, &shell);
    t.see("$ ").await;
    t.type_keys("tty\r").await;
    t.see("tty yes").await;
    t.type_keys("echo typed at a real terminal\r").await;
    t.see("\r\ntyped at a real terminal\r\n").await;

    std::fs::write(&flag, "").unwrap();
    // The CLI sends the new size when SIGWINCH comes; ask until the bot sees it.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !t.screen.contains("size 45x123") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never saw the new size: {:?}",
            t.screen
        );
        t.type_keys("size\r").await;
        t.see("size ").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(b) = t.output.try_recv() {
            t.screen.push_str(&String::from_utf8_lossy(&b));
        }
    }

    t.type_keys("exit 5\r").await;
    let (code, screen) = t.wait().await;
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.contains("EXIT=5"), "the command's code: {screen:?}");
    assert_cooked(&stty_after(&screen, "EXIT=5"));
}

/// The pid of the CLI process running `bots exec -it <id>` (the id is unique to the test).
fn cli_pid(id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first()?.ends_with(b"botmaker")
            && args.contains(&b"exec".as_slice())
            && args.contains(&id.as_bytes());
        ours.then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_exec_it_restores_the_terminal_on_sigint() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id = running_bot(&s, "cli-sigint").await;
    let shell =
        format!("stty sane; \"$BM\" bots exec -it {id} -- /testbot sh; echo EXIT=$?; stty -a");
    let mut t = Terminal::start(&s, &dir, &shell);
    t.see("$ ").await;
    let pid = cli_pid(&id).expect("the CLI process");
    // Our own child's child, found by its unique bot id.
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (_, screen) = t.wait().await;
    assert!(screen.contains("EXIT=130"), "128 + SIGINT: {screen:?}");
    assert_cooked(&stty_after(&screen, "EXIT=130"));
}
