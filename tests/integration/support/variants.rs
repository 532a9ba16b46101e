//! Tags of the fixture image that behave differently (a second healthy version, one that
//! crashes, one whose probe never passes): the fixture image with other default environment,
//! built locally `FROM` it, so nothing is pulled. Each tag is derived from the fixture's, so a
//! changed fixture gets new variants; they carry the test label, so stale ones are cleaned
//! like the fixture itself.

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;

use super::fixture::TEST_LABEL;

/// A behaviour of the fixture bot selected by its image's default environment.
#[derive(Debug, Clone, Copy)]
pub enum Variant {
    /// Healthy, but another image than the fixture (an "upgrade").
    V2,
    /// Starts, then exits with code 3 after 1.5 s (Docker restarts it: a crash loop).
    Crash,
    /// Runs, but `/healthz` answers 503 forever.
    Sick,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::Crash => "crash",
            Self::Sick => "sick",
        }
    }

    fn env(self) -> &'static str {
        match self {
            Self::V2 => "BOT_VERSION=2",
            Self::Crash => "EXIT_AFTER_MS=1500 EXIT_CODE=3",
            Self::Sick => "HEALTHZ_STATUS=503",
        }
    }
}

/// The tag of `variant` built on the fixture image `base`, building it the first time.
pub async fn variant(docker: &Docker, base: &str, variant: Variant) -> String {
    let tag = format!("{base}-{}", variant.name());
    if docker.inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let dockerfile = format!("FROM {base}\nLABEL {TEST_LABEL}=1\nENV {}\n", variant.env());
    build(docker, &tag, &dockerfile).await;
    tag
}

/// Builds `dockerfile` (no other context) as `tag`.
pub async fn build(docker: &Docker, tag: &str, dockerfile: &str) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let body = bollard::body_full(tar.into_inner().unwrap().into());
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut build = docker.build_image(options, None, Some(body));
    while let Some(step) = build.next().await {
        let info = step.unwrap_or_else(|e| panic!("building {tag}: {e}"));
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            panic!("building {tag}: {err}");
        }
    }
}

/// Tags this test made (`docker tag`), removed (the tags only, never the images they name)
/// when dropped, even on panic.
pub struct Tags {
    docker: Docker,
    tags: Vec<String>,
}

impl Tags {
    /// No tags yet.
    pub fn new(docker: &Docker) -> Self {
        Self {
            docker: docker.clone(),
            tags: Vec::new(),
        }
    }

    /// Points `repo:tag` at `image` (moving it if it exists), remembering it for removal.
    pub async fn point(&mut self, repo: &str, tag: &str, image: &str) -> String {
        let options = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker.tag_image(image, Some(options)).await.unwrap();
        let full = format!("{repo}:{tag}");
        if !self.tags.contains(&full) {
            self.tags.push(full.clone());
        }
        full
    }
}

impl Drop for Tags {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let tags = std::mem::take(&mut self.tags);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                // Untags only: `noprune` keeps the image the tag named.
                let options = RemoveImageOptionsBuilder::new().noprune(true).build();
                for tag in tags {
                    let _ = docker.remove_image(&tag, Some(options.clone()), None).await;
                }
            })
        })
        .join();
    }
}
