//! The `botmaker-testbot` image: the fixture bot (fixtures/testbot) built statically and packed
//! into a `FROM scratch` image through the Docker API. No registry exists on a test machine, so
//! nothing is pulled.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

/// Label on every image and container the tests make, so `scripts/test` can find leftovers.
pub const TEST_LABEL: &str = "dev.botmaker.test";
/// Repository name of the fixture image.
pub const IMAGE_REPO: &str = "botmaker-testbot";
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the static fixture binary (a no-op when it is up to date) and returns its path.
fn build_binary() -> PathBuf {
    let root = workspace_root();
    let target_dir = root.join("target/fixture");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-q",
            "-p",
            "botmaker-testbot",
            "--release",
            "--target",
            TARGET,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .expect("running cargo to build the fixture bot");
    assert!(status.success(), "building fixtures/testbot failed");
    target_dir.join(TARGET).join("release/botmaker-testbot")
}

/// The user of the [`nonroot_image`]: a name in its `/etc/passwd`, so botmaker has to look it up.
pub const NONROOT_USER: &str = "bot";
/// The uid and gid [`NONROOT_USER`] resolves to.
pub const NONROOT_IDS: (u32, u32) = (1000, 1000);

fn context_tar(binary: &Path, nonroot: bool) -> Vec<u8> {
    let user = if nonroot {
        format!("COPY passwd /etc/passwd\nUSER {NONROOT_USER}\n")
    } else {
        String::new()
    };
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL}=1\nCOPY testbot /testbot\n{user}ENTRYPOINT [\"/testbot\"]\n"
    );
    let passwd = format!(
        "root:x:0:0:root:/:/testbot\n{NONROOT_USER}:x:{}:{}::/:/testbot\n",
        NONROOT_IDS.0, NONROOT_IDS.1
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
    add("passwd", passwd.as_bytes(), 0o644);
    add(
        "testbot",
        &std::fs::read(binary).expect("fixture binary"),
        0o755,
    );
    tar.into_inner().expect("tar")
}

/// The fixture image's tag, building binary and image the first time it is asked for.
/// The tag carries a hash of the binary, so a changed fixture gets a new image.
pub fn image(docker: &Docker) -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    cached(&IMAGE, docker, false)
}

/// The fixture image run as a non-root user named in its `/etc/passwd` ([`NONROOT_USER`],
/// tag suffix `-nonroot`), built the first time it is asked for.
pub fn nonroot_image(docker: &Docker) -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    cached(&IMAGE, docker, true)
}

fn cached(cell: &OnceLock<String>, docker: &Docker, nonroot: bool) -> String {
    cell.get_or_init(|| {
        let docker = docker.clone();
        // A runtime of its own: this runs once, inside whichever test asks first.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(build_variant(&docker, nonroot))
        })
        .join()
        .expect("fixture image build panicked")
    })
    .clone()
}

/// Builds the fixture image on `docker` (another daemon than the suite's, say), uncached.
pub async fn build_image_on(docker: &Docker) -> String {
    build_image(docker).await
}

async fn build_image(docker: &Docker) -> String {
    build_variant(docker, false).await
}

async fn build_variant(docker: &Docker, nonroot: bool) -> String {
    let binary = tokio::task::spawn_blocking(build_binary).await.unwrap();
    let bytes = std::fs::read(&binary).expect("fixture binary");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let suffix = if nonroot { "-nonroot" } else { "" };
    let tag = format!("{IMAGE_REPO}:{:016x}{suffix}", hasher.finish());
    if docker.inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let options = BuildImageOptionsBuilder::new()
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .build();
    let body = bollard::body_full(context_tar(&binary, nonroot).into());
    let mut build = docker.build_image(options, None, Some(body));
    while let Some(step) = build.next().await {
        let info = step.unwrap_or_else(|e| panic!("building {tag}: {e}"));
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            panic!("building {tag}: {err}");
        }
    }
    tag
}
