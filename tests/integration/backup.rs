//! Backups against the real engine and the real binary: a running fleet (one OpenClaw-style bot
//! with state) backed up with `botmaker backup`, its data directory and containers destroyed,
//! restored with `botmaker restore` into a new directory and served again: every bot comes back
//! with its secrets (read inside its container), its workspace and its desired state. Damaged,
//! truncated, altered or wrongly decrypted archives are refused and change nothing. One bot
//! moves to another botmaker with `bots backup` / `bots import`. Scheduled backups rotate.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use botmaker::backup::manifest::BackupKind;
use botmaker::backup::{Passphrase, crypt, reader};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::server::{TestServer, config};
use crate::support::{Harness, eventually};

/// Exit code, stdout and stderr of one run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn botmaker(s: Option<&TestServer>, args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_botmaker"));
    c.args(args)
        .env_remove("BOTMAKER_DATA_DIR")
        .env_remove("BOTMAKER_BACKUP_PASSPHRASE_FILE")
        .kill_on_drop(true);
    if let Some(s) = s {
        c.env("BOTMAKER_URL", &s.base)
            .env("BOTMAKER_TOKEN", &s.token)
            .env("BOTMAKER_CONFIG", s.h.tmp.path().join("cli.json"));
    }
    let out = tokio::time::timeout(Duration::from_secs(300), c.output())
        .await
        .expect("the binary finishes")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The content of `path` as the bot's container sees it (Docker's archive API reads through
/// the container's mounts).
async fn read_in_container(h: &Harness, bot: &str, path: &str) -> Vec<u8> {
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut tar_bytes = Vec::new();
    let mut stream = h
        .docker
        .client()
        .download_from_container(&format!("botmaker-{bot}"), Some(options));
    while let Some(chunk) = stream.next().await {
        tar_bytes.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{bot}:{path}: {e}")));
    }
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
    content
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Every path under `dir` with its content ("<dir>" for directories), for "nothing changed".
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                pending.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn openclaw_body(s: &TestServer, id: &str) -> Value {
    json!({
        "id": id, "template": "openclaw", "image": s.h.image, "command": ["openclaw"],
        "env": { "TICK_MS": "0" },
        "settings": {
            "provider": "anthropic", "model": "claude-opus-4-5", "channels": ["telegram"],
            "persona": { "name": "Ada", "soul": "Remembers." },
        },
        "secrets": { "ANTHROPIC_API_KEY": "sk-ant-restored", "TELEGRAM_BOT_TOKEN": "123:abc" },
    })
}

/// A small fleet: a running generic bot with workspace files (and a link it planted), a
/// stopped one, and an OpenClaw stand-in with state in its workspace. Returns (running,
/// stopped, openclaw).
async fn fleet(s: &TestServer) -> (String, String, String) {
    let ws = |id: &str| s.data.path().join("workspaces").join(id);
    let mut body = s.bot_body("bk-run");
    body["secrets"] = json!({ "API_KEY": "value-of-the-running-bot" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let running = v["id"].as_str().unwrap().to_string();
    write(&ws(&running).join("notes.txt"), b"what the bot wrote");
    write(&ws(&running).join("deep/er/blob.bin"), &[0xA5; 300_000]);
    std::os::unix::fs::symlink("/etc/hostname", ws(&running).join("escape")).unwrap();

    let mut body = s.bot_body("bk-stop");
    body["secrets"] = json!({ "API_KEY": "value-of-the-stopped-bot" });
    body["start"] = json!(false);
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let stopped = v["id"].as_str().unwrap().to_string();

    let claw = s.h.bot("bk-claw").to_string();
    let (status, v) = s.post("/api/bots", openclaw_body(s, &claw)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let memory = ws(&claw).join("workspace/MEMORY.md");
    write(&memory, b"# Memory\nThe user likes tea.\n");
    std::os::unix::fs::chown(&memory, Some(1000), Some(1000)).unwrap();
    for id in [&running, &claw] {
        s.wait_bot(id, "running", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    }
    (running, stopped, claw)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_fleet_comes_back_with_secrets_workspaces_and_desired_states() {
    let mut s = TestServer::start().await;
    let (running, stopped, claw) = fleet(&s).await;
    // An LLM provider: its real key is a file beside the registry, and must come back too.
    let (status, v) = s
        .post(
            "/api/providers",
            json!({ "name": "bk-llm", "kind": "openai-compatible",
                    "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-real-provider-key" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // A signed notification channel: its signing secret is a file beside the registry too, and
    // a restored channel must still sign (it is never sent unsigned).
    let rx = crate::alerts::Receiver::start().await;
    const SIGNING: &str = "restored-signing-secret-0123";
    let (status, channel) = s
        .post(
            "/api/notifications",
            json!({ "name": "bk-hook", "kind": "webhook", "url": rx.url("/hook"),
                    "signing_secret": SIGNING }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let (_, before) = s.get("/api/bots").await;

    let archive = s.h.tmp.path().join("fleet.tar.gz");
    let r = botmaker(Some(&s), &["backup", "-o", archive.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("backed up 3 bot(s) to "),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("escape"),
        "the planted link is reported: {}",
        r.stderr
    );
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Disaster: the server, its data directory and every container are gone.
    s.shutdown().await;
    let h = std::mem::replace(&mut s.h, Harness::detached().await);
    for c in h.docker.list_managed_containers().await.unwrap() {
        h.docker
            .client()
            .remove_container(
                &c.id,
                Some(
                    bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .build(),
                ),
            )
            .await
            .unwrap();
    }
    std::fs::remove_dir_all(s.data.path()).unwrap();

    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("restored");
    let r = botmaker(
        None,
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("restored 3 bot(s), "), "{}", r.stdout);

    let mut cfg = config(data.clone(), h.docker.instance());
    cfg.docker_host = Some(h.docker.host().to_string());
    let s = TestServer::start_with(h, home, cfg).await;
    for id in [&running, &claw] {
        s.wait_bot(id, "running again", Duration::from_secs(60), |v| {
            v["state"] == "running"
        })
        .await;
    }
    let (_, after) = s.get("/api/bots").await;
    let states = |list: &Value| -> BTreeMap<String, (Value, Value, Value)> {
        list["bots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let id = b["id"].as_str().unwrap().to_string();
                (
                    id,
                    (
                        b["desired_state"].clone(),
                        b["image"].clone(),
                        b["secrets"].clone(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(states(&after), states(&before));
    assert_eq!(
        std::fs::read(data.join("llm-providers/bk-llm/API_KEY")).unwrap(),
        b"sk-real-provider-key"
    );
    let (_, v) = s.get("/api/providers").await;
    assert!(
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "bk-llm" && p["has_api_key"] == true),
        "{v}"
    );
    let (_, v) = s.get(&format!("/api/bots/{stopped}")).await;
    assert_ne!(v["state"], "running", "{v}");
    let (status, v) = s
        .post(
            &format!("/api/notifications/{}/test", channel["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["result"], "ok", "the restored channel still signs: {v}");
    let got = rx.got();
    let sent = got
        .iter()
        .find(|r| r.path == "/hook")
        .expect("the test arrived");
    sent.assert_signed_with(SIGNING);

    // Secrets, read inside the containers.
    assert_eq!(
        read_in_container(&s.h, &running, "/run/secrets/API_KEY").await,
        b"value-of-the-running-bot"
    );
    assert_eq!(
        read_in_container(&s.h, &claw, "/run/secrets/ANTHROPIC_API_KEY").await,
        b"sk-ant-restored"
    );
    s.h.wait_for_log(
        &botmaker::BotId::new(claw.clone()).unwrap(),
        "openclaw-config: ok",
    )
    .await;

    // Workspaces.
    let ws = |id: &str| data.join("workspaces").join(id);
    assert_eq!(
        std::fs::read(ws(&running).join("notes.txt")).unwrap(),
        b"what the bot wrote"
    );
    assert_eq!(
        std::fs::read(ws(&running).join("deep/er/blob.bin")).unwrap(),
        vec![0xA5; 300_000]
    );
    assert!(
        std::fs::symlink_metadata(ws(&running).join("escape")).is_err(),
        "a link a bot planted is not restored"
    );
    let memory = ws(&claw).join("workspace/MEMORY.md");
    assert_eq!(
        std::fs::read(&memory).unwrap(),
        b"# Memory\nThe user likes tea.\n"
    );
    assert_eq!(
        std::fs::metadata(&memory).unwrap().uid(),
        1000,
        "owned by the bot's user"
    );
    let (_, o) = s.get("/api/admin/orphans").await;
    assert_eq!(o["total"], 0, "{o}");
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_truncated_altered_or_locked_archives_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let mut body = s.bot_body("bk-bad");
    body["secrets"] = json!({ "API_KEY": "original-value" });
    let (status, v) = s.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let dir = s.h.tmp.path();
    let good = dir.join("good.tar.gz");
    let r = botmaker(Some(&s), &["backup", "-o", good.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let bytes = std::fs::read(&good).unwrap();

    // Altered without breaking the compression: the secret's value changed inside the tar.
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(bytes.as_slice()),
        &mut plain,
    )
    .unwrap();
    let at = plain
        .windows(b"original-value".len())
        .position(|w| w == b"original-value")
        .expect("the secret is in the archive");
    plain[at..at + 8].copy_from_slice(b"ALTERED!");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let altered = gz.finish().unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;

    let pass_file = dir.join("pass");
    std::fs::write(&pass_file, "a long enough passphrase\n").unwrap();
    let wrong_file = dir.join("wrong");
    std::fs::write(&wrong_file, "another long passphrase\n").unwrap();
    let sealed = dir.join("sealed.tar.gz.age");
    let r = botmaker(
        Some(&s),
        &[
            "backup",
            "-o",
            sealed.to_str().unwrap(),
            "--passphrase-file",
            pass_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("encrypted"), "{}", r.stdout);
    let sealed_bytes = std::fs::read(&sealed).unwrap();
    assert!(!sealed_bytes.windows(14).any(|w| w == b"original-value"));
    let mut sealed_flipped = sealed_bytes.clone();
    let mid = sealed_flipped.len() / 2;
    sealed_flipped[mid] ^= 1;

    let cases: Vec<(&str, Vec<u8>, Option<&Path>, &str)> = vec![
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            None,
            "not usable",
        ),
        (
            "cut before its manifest",
            bytes[..bytes.len() - 40].to_vec(),
            None,
            "not usable",
        ),
        ("a flipped byte", flipped, None, "not usable"),
        ("an altered secret", altered, None, "secrets/"),
        (
            "encrypted, no passphrase",
            sealed_bytes.clone(),
            None,
            "encrypted",
        ),
        (
            "encrypted, wrong passphrase",
            sealed_bytes.clone(),
            Some(&wrong_file),
            "wrong passphrase",
        ),
        (
            "encrypted, a flipped byte",
            sealed_flipped,
            Some(&pass_file),
            "not usable",
        ),
    ];
    // A target that is in use (with --force it would be moved aside) must stay as it is.
    let target = dir.join("target");
    write(&target.join("botmaker.db"), b"the live registry");
    write(&target.join("workspaces/keep/me.txt"), b"keep me");
    let before = tree(&target);
    let fresh = dir.join("fresh");
    for (what, archive, pass, says) in cases {
        let file = dir.join("case.tar.gz");
        std::fs::write(&file, &archive).unwrap();
        for (into, force) in [(&target, true), (&fresh, false)] {
            let mut args = vec![
                "restore",
                file.to_str().unwrap(),
                "--data-dir",
                into.to_str().unwrap(),
            ];
            if force {
                args.push("--force");
            }
            if let Some(p) = pass {
                args.extend(["--passphrase-file", p.to_str().unwrap()]);
            }
            let r = botmaker(None, &args).await;
            assert_eq!(r.code, 1, "{what}: {}{}", r.stdout, r.stderr);
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what}: {}", r.stderr);
            assert!(
                lines[0].starts_with("botmaker: error: "),
                "{what}: {}",
                lines[0]
            );
            assert!(lines[0].contains(says), "{what}: {}", lines[0]);
            assert_eq!(tree(&target), before, "{what}: the target changed");
            assert!(!fresh.exists(), "{what}: a fresh target was made");
        }
    }

    // The good archives go through; a non-empty target needs --force and keeps the old content.
    let r = botmaker(
        None,
        &[
            "restore",
            good.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let r = botmaker(
        None,
        &[
            "restore",
            sealed.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
            "--force",
            "--passphrase-file",
            pass_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let aside = std::fs::read_dir(&target)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("pre-restore-"))
        .expect("the previous content moved aside")
        .path();
    assert_eq!(
        std::fs::read(aside.join("workspaces/keep/me.txt")).unwrap(),
        b"keep me"
    );
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        std::fs::read(target.join("secrets").join(id).join("API_KEY")).unwrap(),
        b"original-value"
    );
    // The library reads the same archive, decrypting it.
    let p = Passphrase::from_file(&pass_file).unwrap();
    let plain = crypt::open(std::fs::File::open(&sealed).unwrap(), Some(&p)).unwrap();
    let m = reader::verify(plain, BackupKind::Full).unwrap();
    assert_eq!(m.bots.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bot_moves_to_another_botmaker_with_backup_and_import() {
    let a = TestServer::start().await;
    let mut body = a.bot_body("mover");
    body["secrets"] = json!({ "API_KEY": "moved-value" });
    let (status, v) = a.post("/api/bots", body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    write(
        &a.data
            .path()
            .join("workspaces")
            .join(&id)
            .join("state.json"),
        b"{\"n\": 42}",
    );
    // Incompressible, so the archive is larger than the API's usual 1 MiB body limit.
    let blob: Vec<u8> = {
        use rand::RngCore;
        let mut b = vec![0u8; 1536 * 1024];
        rand::rng().fill_bytes(&mut b);
        b
    };
    write(
        &a.data.path().join("workspaces").join(&id).join("blob.bin"),
        &blob,
    );
    let file = a.h.tmp.path().join("mover.tar.gz");
    let r = botmaker(
        Some(&a),
        &["bots", "backup", &id, "-o", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Moved, not copied: both botmakers share one engine here, where container names are
    // unique.
    let (status, v) = a
        .call(reqwest::Method::DELETE, &format!("/api/bots/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // A full backup is not an import, and an altered archive creates nothing.
    let b = TestServer::start().await;
    let res = b
        .client
        .post(b.url("/api/bots/import"))
        .bearer_auth(&b.token)
        .body(b"not an archive".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], "BACKUP_CORRUPT", "{v}");
    let (_, list) = b.get("/api/bots").await;
    assert_eq!(list["bots"], json!([]));

    let r = botmaker(Some(&b), &["bots", "import", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with(&format!("imported {id} (running)")),
        "{}",
        r.stdout
    );
    let v = b
        .wait_bot(&id, "running", Duration::from_secs(20), |v| {
            v["state"] == "running"
        })
        .await;
    assert_eq!(v["secrets"], json!(["API_KEY"]));
    assert_eq!(
        read_in_container(&b.h, &id, "/run/secrets/API_KEY").await,
        b"moved-value"
    );
    assert_eq!(
        read_in_container(&b.h, &id, "/workspace/state.json").await,
        b"{\"n\": 42}"
    );

    assert_eq!(
        read_in_container(&b.h, &id, "/workspace/blob.bin").await,
        blob
    );

    // The id is taken now.
    let r = botmaker(Some(&b), &["bots", "import", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ALREADY_EXISTS"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_backups_are_written_and_rotated() {
    let h = Harness::new().await;
    let data = tempfile::Builder::new()
        .prefix("botmaker-data")
        .tempdir()
        .unwrap();
    let dir = h.tmp.path().join("scheduled");
    let mut cfg = config(data.path().to_path_buf(), h.docker.instance());
    cfg.backup.backup_dir = Some(dir.clone());
    cfg.backup.backup_every = Some(Duration::from_secs(2));
    cfg.backup.backup_keep = 2;
    let s = TestServer::start_with(h, data, cfg).await;
    s.create_bot("sched").await;
    let names = || -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    };
    let first = eventually("two scheduled backups", Duration::from_secs(30), || async {
        let n = names();
        (n.len() == 2).then(|| n[0].clone())
    })
    .await;
    eventually(
        "the oldest to rotate out",
        Duration::from_secs(30),
        || async {
            let n = names();
            (n.len() == 2 && !n.contains(&first)).then_some(())
        },
    )
    .await;
    for name in names() {
        let path = dir.join(&name);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let m = reader::verify(std::fs::File::open(&path).unwrap(), BackupKind::Full).unwrap();
        assert_eq!(m.bots.len(), 1, "{name}");
    }
}
