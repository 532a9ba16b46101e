//! The bots the bench runs: the static fixture bot (fixtures/testbot) packed into a
//! `FROM scratch` image through the Docker API, tagged `botmaker-testbot:<hash of the binary>`
//! as the integration tests tag it. Nothing is pulled. The image is removed at the end only if
//! this run built it: a tag that was already there belongs to someone else (a test run).

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

/// Repository name of the fixture image.
pub const IMAGE_REPO: &str = "botmaker-testbot";
/// Label the integration tests put on their image (and `scripts/test` cleans by).
const TEST_LABEL: &str = "dev.botmaker.test";
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The fixture image, and whether this run built it.
pub struct FixtureImage {
    pub tag: String,
    pub built_here: bool,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the measured server binary lives: `BOTMAKER_BIN`, else the release build in its own
/// target directory (`target/server`, see [`build_server`]).
pub fn server_path() -> PathBuf {
    if let Some(bin) = std::env::var_os("BOTMAKER_BIN") {
        return bin.into();
    }
    server_target_dir().join("release/botmaker")
}

/// Builds the release server into `target/server` (a no-op when fresh) and returns its path,
/// unless `BOTMAKER_BIN` names one. Its own directory because `cargo bench` builds the
/// `botmaker` binary too, with the dev-dependencies' features, at `target/release/botmaker`:
/// two builds of one path with different features undid each other, and every run paid for a
/// whole-program-optimized build of the server again.
pub fn build_server() -> Result<PathBuf, String> {
    if std::env::var_os("BOTMAKER_BIN").is_none() {
        let dir = server_target_dir();
        eprintln!(
            "bench: building the server: CARGO_TARGET_DIR={} cargo build --release --bin botmaker",
            dir.display()
        );
        cargo(
            &["build", "-q", "--release", "--bin", "botmaker"],
            &[("CARGO_TARGET_DIR", dir.display().to_string())],
        )?;
    }
    Ok(server_path())
}

fn server_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("server")
}

/// Runs cargo (the one running us, if any) in the workspace with `args` and extra `envs`.
pub fn cargo(args: &[&str], envs: &[(&str, String)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.current_dir(workspace_root()).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running {cargo} {}: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cargo} {} failed ({status})", args.join(" ")))
    }
}

/// Builds the static fixture binary (a no-op when it is up to date) and returns its path.
fn build_binary() -> Result<PathBuf, String> {
    let target_dir = workspace_root().join("target/fixture");
    cargo(
        &[
            "build",
            "-q",
            "-p",
            "botmaker-testbot",
            "--release",
            "--target",
            TARGET,
        ],
        &[
            ("CARGO_TARGET_DIR", target_dir.display().to_string()),
            ("RUSTFLAGS", "-C target-feature=+crt-static".into()),
        ],
    )?;
    Ok(target_dir.join(TARGET).join("release/botmaker-testbot"))
}

fn context_tar(binary: &[u8]) -> Vec<u8> {
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL}=1\nCOPY testbot /testbot\nENTRYPOINT [\"/testbot\"]\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, name, data).expect("tar entry");
    };
    add("Dockerfile", dockerfile.as_bytes(), 0o644);
    add("testbot", binary, 0o755);
    tar.into_inner().expect("tar")
}

/// The fixture image's tag, building binary and image if needed.
pub async fn ensure(docker: &Docker) -> Result<FixtureImage, String> {
    let binary = tokio::task::spawn_blocking(build_binary)
        .await
        .map_err(|e| e.to_string())??;
    let bytes = std::fs::read(&binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let tag = format!("{IMAGE_REPO}:{:016x}", hasher.finish());
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(FixtureImage {
            tag,
            built_here: false,
        });
    }
    let options = BuildImageOptionsBuilder::new()
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .build();
    let body = bollard::body_full(context_tar(&bytes).into());
    let mut build = docker.build_image(options, None, Some(body));
    while let Some(step) = build.next().await {
        let info = step.map_err(|e| format!("building {tag}: {e}"))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("building {tag}: {err}"));
        }
    }
    Ok(FixtureImage {
        tag,
        built_here: true,
    })
}
