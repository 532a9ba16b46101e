//! Copying an image from one engine to another. No registry exists on these machines, and a
//! private engine (a swarm manager, a worker) has a data root of its own: an image it needs is
//! exported from the engine that has it and loaded into it, streamed through the test (never
//! held in memory or written to disk on the way).

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::ImportImageOptionsBuilder;
use futures_util::StreamExt;

/// The whole copy, export and load together. Generous: the real OpenClaw image (862 MB)
/// takes tens of seconds on an idle machine, several times that beside the rest of the suite.
pub const COPY_BOUND: Duration = Duration::from_secs(900);

/// Makes `tag` exist on `to`, exported from `from` unless `to` already has it. Returns how
/// long the copy took, `None` when there was nothing to copy. Panics (the test's failure) when
/// the copy fails or outlasts [`COPY_BOUND`].
pub async fn copy_image(from: &Docker, to: &Docker, tag: &str) -> Option<Duration> {
    if to.inspect_image(tag).await.is_ok() {
        return None;
    }
    let started = Instant::now();
    let copy = async {
        let tar = from.export_image(tag);
        let options = ImportImageOptionsBuilder::new().quiet(true).build();
        let mut load = to.import_image_stream(options, tar, None);
        while let Some(r) = load.next().await {
            if let Err(e) = r {
                panic!("loading {tag} into the other engine: {e}");
            }
        }
    };
    tokio::time::timeout(COPY_BOUND, copy)
        .await
        .unwrap_or_else(|_| panic!("copying {tag} between engines took over {COPY_BOUND:?}"));
    assert!(
        to.inspect_image(tag).await.is_ok(),
        "{tag} is not on the target engine after its load"
    );
    Some(started.elapsed())
}
