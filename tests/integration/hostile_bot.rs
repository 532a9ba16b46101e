//! A hostile bot against botmaker's host-side file handling. From inside its container (the
//! fixture's `PLANT_SYMLINKS` mode) it replaces what botmaker wrote into its workspace with
//! symlinks to host paths: a file, a directory, a dangling path, another bot's secrets. botmaker
//! is then driven through every path that writes, recreates or deletes a workspace: apply,
//! PATCH, start with the container gone, the reconciler's recreate at start-up, delete. Nothing
//! outside the bots' own workspaces may change, byte for byte and mode for mode.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use botmaker::BotId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::eventually;
use crate::support::server::TestServer;

/// Host paths the hostile bots point their links at, owned by the test.
struct Targets {
    dir: tempfile::TempDir,
}

impl Targets {
    /// `host-file` (0644), `host-dir/` (0755) with `keep.txt` (0640) and `sub/inner.txt`; the
    /// dangling names do not exist (their parent does, so a followed write would create them).
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("botmaker-hostile")
            .tempdir()
            .unwrap();
        let t = Self { dir };
        let put = |rel: &str, body: &str, mode: u32| {
            let p = t.path(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        put("host-file", "precious host file\n", 0o644);
        put("host-dir/keep.txt", "keep me\n", 0o640);
        put("host-dir/sub/inner.txt", "inner\n", 0o644);
        std::fs::set_permissions(t.path("host-dir"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        t
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
}

/// Every entry under `root` (and `root` itself): kind, mode, owner and contents, read without
/// following links.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let what = if m.is_file() {
            let body = std::fs::read(p).unwrap();
            let head: String = String::from_utf8_lossy(&body).chars().take(40).collect();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&body, &mut h);
            format!(
                "file of {} bytes, hash {:016x}, starting {head:?}",
                body.len(),
                std::hash::Hasher::finish(&h)
            )
        } else if m.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(p).unwrap())
        } else {
            "dir".to_string()
        };
        out.insert(
            p.to_path_buf(),
            format!("{what} mode {:o} owner {}:{}", m.mode(), m.uid(), m.gid()),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// One line per path that appeared, vanished or changed between two snapshots.
fn differences(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("  removed {}: was {was}", path.display())),
            Some(now) if now != was => out.push(format!(
                "  changed {}: was {was}, now {now}",
                path.display()
            )),
            Some(_) => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("  created {}: {now}", path.display()));
        }
    }
    out
}

/// A hostile bot: its create body, the env it keeps across PATCHes, and the workspace entry
/// whose being a symlink on the host shows the bot has planted its links.
struct Hostile {
    id: String,
    openclaw: bool,
    env: Value,
    probe: &'static str,
}

/// The server, the targets, and what must stay as it is.
struct World {
    s: TestServer,
    targets: Targets,
    targets_before: BTreeMap<PathBuf, String>,
    victim_secrets: PathBuf,
    victim_before: BTreeMap<PathBuf, String>,
    bots: Vec<Hostile>,
}

impl World {
    fn workspace(&self, id: &str) -> PathBuf {
        self.s.data.path().join("workspaces").join(id)
    }

    /// The host targets and the other bot's secrets are exactly as they were.
    fn assert_untouched(&self, after: &str) {
        let mut changed = differences(&self.targets_before, &snapshot(self.targets.dir.path()));
        changed.extend(differences(
            &self.victim_before,
            &snapshot(&self.victim_secrets),
        ));
        assert!(
            changed.is_empty(),
            "host paths outside the bots' workspaces changed after {after}:\n{}",
            changed.join("\n")
        );
    }

    /// Waits until every hostile bot has (re)planted its links.
    async fn wait_planted(&self) {
        for b in &self.bots {
            let probe = self.workspace(&b.id).join(b.probe);
            eventually(
                &format!("{} to plant its links", b.id),
                Duration::from_secs(30),
                || {
                    let probe = probe.clone();
                    async move {
                        std::fs::symlink_metadata(&probe)
                            .ok()
                            .filter(|m| m.file_type().is_symlink())
                            .map(drop)
                    }
                },
            )
            .await;
        }
    }

    /// The openclaw bots' new containers found a real `openclaw.json` where their links were:
    /// botmaker replaced the planted link instead of following it.
    async fn assert_configs_rewritten(&self) {
        for b in self.bots.iter().filter(|b| b.openclaw) {
            let lines = self
                .s
                .h
                .wait_for_log(&BotId::new(b.id.clone()).unwrap(), "planted:")
                .await;
            assert!(
                lines.iter().any(|l| l.contains("openclaw-config: ok")),
                "{}: {lines:?}",
                b.id
            );
        }
    }

    async fn remove_containers(&self) {
        for b in &self.bots {
            self.s
                .h
                .docker
                .client()
                .remove_container(
                    &format!("botmaker-{}", b.id),
                    Some(
                        bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .build(),
                    ),
                )
                .await
                .unwrap();
        }
    }

    /// Sends the request to every hostile bot, then checks nothing outside their workspaces
    /// changed, and only then that every request succeeded (what matters most is reported
    /// first).
    async fn each(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: impl Fn(&Hostile) -> Option<Value>,
    ) {
        let mut answers = Vec::new();
        for b in &self.bots {
            let (status, v) = self
                .s
                .call(method.clone(), &path.replace("{id}", &b.id), body(b))
                .await;
            answers.push((b.id.clone(), status, v));
        }
        self.assert_untouched(what);
        for (id, status, v) in answers {
            assert_eq!(status, StatusCode::OK, "{what} {id}: {v}");
        }
    }
}

fn openclaw_body(s: &TestServer, id: &str, env: &Value) -> Value {
    json!({
        "id": id, "template": "openclaw", "image": s.h.image, "command": ["openclaw"],
        "env": env,
        "settings": {
            "provider": "anthropic", "model": "claude-opus-4-5", "channels": ["telegram"],
            "persona": { "name": "Mallory", "soul": "Plants symlinks." },
        },
        "secrets": { "ANTHROPIC_API_KEY": "sk-ant-test", "TELEGRAM_BOT_TOKEN": "123:abc" },
    })
}

async fn world() -> World {
    let s = TestServer::start().await;
    let targets = Targets::new();

    let victim = s.h.bot("victim").to_string();
    let (status, v) = s
        .post(
            "/api/bots",
            json!({
                "id": victim, "image": s.h.image, "env": { "TICK_MS": "0" },
                "secrets": { "API_KEY": "victim-secret-value" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let victim_secrets = s.data.path().join("secrets").join(&victim);
    let victim_key = victim_secrets.join("API_KEY").display().to_string();

    let links = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(name, target)| format!("{name}={target}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let claw = |name: &str, pairs: &[(&str, String)]| Hostile {
        id: s.h.bot(name).to_string(),
        openclaw: true,
        env: json!({ "TICK_MS": "0", "PLANT_SYMLINKS": links(pairs) }),
        probe: "openclaw.json",
    };
    let bots = vec![
        // (a) the config file -> a host file; (b) the persona directory -> a host directory.
        claw(
            "claw-host",
            &[
                ("openclaw.json", targets.s("host-file")),
                ("workspace", targets.s("host-dir")),
            ],
        ),
        // (d) the config -> another bot's secret, the persona directory -> its secrets dir.
        claw(
            "claw-secrets",
            &[
                ("openclaw.json", victim_key.clone()),
                ("workspace", victim_secrets.display().to_string()),
            ],
        ),
        // (c) dangling links whose parent exists: a followed write would create the target.
        claw(
            "claw-dangling",
            &[
                ("openclaw.json", targets.s("dangling-file")),
                ("workspace", targets.s("dangling-dir")),
            ],
        ),
        // A generic bot: botmaker writes no files into its workspace, but sets its mode and
        // deletes it.
        Hostile {
            id: s.h.bot("generic-hostile").to_string(),
            openclaw: false,
            env: json!({
                "TICK_MS": "0",
                "PLANT_SYMLINKS": links(&[
                    ("escape-file", targets.s("host-file")),
                    ("escape-dir", targets.s("host-dir")),
                    ("nested/secrets", victim_secrets.display().to_string()),
                    ("nested/key", victim_key.clone()),
                    ("dangling", targets.s("dangling-file")),
                ]),
            }),
            probe: "escape-file",
        },
    ];
    for b in &bots {
        let body = if b.openclaw {
            openclaw_body(&s, &b.id, &b.env)
        } else {
            json!({ "id": b.id, "image": s.h.image, "env": b.env })
        };
        let (status, v) = s.post("/api/bots", body).await;
        assert_eq!(status, StatusCode::CREATED, "{}: {v}", b.id);
    }

    let targets_before = snapshot(targets.dir.path());
    let victim_before = snapshot(&victim_secrets);
    assert!(victim_before.len() >= 2, "{victim_before:?}");
    let w = World {
        s,
        targets,
        targets_before,
        victim_secrets,
        victim_before,
        bots,
    };
    w.wait_planted().await;
    w.assert_untouched("create");
    w
}

/// The bots' workspaces are rendered again over the planted links.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_symlinks_are_not_followed_by_apply() {
    let w = world().await;
    w.each("apply", Method::POST, "/api/bots/{id}/apply", |_| None)
        .await;
    w.assert_configs_rewritten().await;
    // A second round: the bots planted again in their new containers.
    w.wait_planted().await;
    w.each("apply again", Method::POST, "/api/bots/{id}/apply", |_| {
        None
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_symlinks_are_not_followed_by_patch() {
    let w = world().await;
    w.each("PATCH", Method::PATCH, "/api/bots/{id}", |b| {
        let mut env = b.env.clone();
        env["ROUND"] = json!("patch");
        Some(json!({ "env": env }))
    })
    .await;
    w.assert_configs_rewritten().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_symlinks_are_not_followed_when_start_recreates_a_missing_container() {
    let w = world().await;
    w.remove_containers().await;
    w.each(
        "start with a missing container",
        Method::POST,
        "/api/bots/{id}/start",
        |_| None,
    )
    .await;
    w.assert_configs_rewritten().await;
}

/// Containers gone while botmaker is down: the reconciler recreates them at start-up.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_symlinks_are_not_followed_by_the_reconcilers_recreate() {
    let mut w = world().await;
    w.remove_containers().await;
    w.s = w.s.restart().await;
    // Waited for without asserting: a followed link shows in the targets even if the
    // recreate then failed, and is the first thing reported.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for b in &w.bots {
        while std::time::Instant::now() < deadline {
            let (_, v) = w.s.get(&format!("/api/bots/{}", b.id)).await;
            if v["state"] == "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    w.assert_untouched("the reconciler's recreate");
    for b in &w.bots {
        let (_, v) = w.s.get(&format!("/api/bots/{}", b.id)).await;
        assert_eq!(v["state"], "running", "{}: {v}", b.id);
    }
    w.assert_configs_rewritten().await;
}

/// Delete removes the workspace, links and all, without following a link out of it; so does
/// the orphan cleanup, for a workspace left behind with the same kind of links.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_symlinks_are_not_followed_by_delete() {
    let w = world().await;
    for b in &w.bots {
        let ws = w.workspace(&b.id);
        assert!(ws.is_dir());
        let (status, v) =
            w.s.call(Method::DELETE, &format!("/api/bots/{}", b.id), None)
                .await;
        w.assert_untouched("delete");
        assert_eq!(status, StatusCode::OK, "{}: {v}", b.id);
        assert!(
            std::fs::symlink_metadata(&ws).is_err(),
            "{} still exists",
            ws.display()
        );
    }

    // An orphan workspace (its bot deleted while botmaker was down) holding what a hostile bot
    // leaves: links out at several depths, the persona directory a link to another bot's
    // secrets.
    let orphan = w.s.h.bot("orphan").to_string();
    let ws = w.workspace(&orphan);
    std::fs::create_dir_all(ws.join("deep/er")).unwrap();
    let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, ws.join(at)).unwrap();
    link(&w.targets.path("host-file"), "openclaw.json");
    link(&w.victim_secrets, "workspace");
    link(&w.targets.path("host-dir"), "deep/host-dir");
    link(&w.targets.path("dangling-file"), "deep/er/dangling");
    let (status, o) = w.s.get("/api/admin/orphans").await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["workspaces"], json!([orphan]), "{o}");
    let (status, r) = w.s.post("/api/admin/cleanup", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["removed"]["workspaces"], json!([orphan]), "{r}");
    assert!(std::fs::symlink_metadata(&ws).is_err());
    w.assert_untouched("orphan cleanup");
}
