//! Image drift: which local image each configured reference names now, so a bot whose tag has
//! moved since its container was made shows `image_drift: true`.
//!
//! Listing the fleet must stay one Docker call, so resolutions are cached per reference: a
//! reference is inspected the first time it is needed, then served from memory until an image
//! event (a tag moved, an image loaded or deleted) clears the cache, or [`IMAGE_CACHE_TTL`]
//! passes (the safety net for events missed while the daemon was away). A fleet of 500 bots on
//! one tag costs one inspect per change, not 500 per listing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;

use super::BotService;
use crate::docker::DockerService;

/// Longest a cached resolution is trusted without an image event.
pub const IMAGE_CACHE_TTL: Duration = Duration::from_secs(60);
/// Inspects run at once when a listing meets many uncached references.
const RESOLVE_CONCURRENCY: usize = 8;

/// Reference → local image id (`None`: no such image), with when it was looked up.
#[derive(Debug, Default)]
pub struct ImageIds {
    entries: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl ImageIds {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, (Option<String>, Instant)>) -> R) -> R {
        f(&mut self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets every resolution (an image changed on the engine).
    pub fn invalidate(&self) {
        self.with(HashMap::clear);
    }

    /// What each of `references` names now, from the cache where it is fresh; the others are
    /// inspected, a few at a time. A reference Docker did not answer for is left out (no
    /// drift is claimed on a guess) and not cached.
    pub async fn resolve<'a>(
        &self,
        docker: &DockerService,
        references: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, Option<String>> {
        let now = Instant::now();
        let mut known = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        self.with(|m| {
            for r in references {
                if known.contains_key(r) || missing.iter().any(|x| x == r) {
                    continue;
                }
                match m.get(r) {
                    Some((id, at)) if now.duration_since(*at) < IMAGE_CACHE_TTL => {
                        known.insert(r.to_string(), id.clone());
                    }
                    _ => missing.push(r.to_string()),
                }
            }
        });
        let found: Vec<(String, Option<String>)> = futures_util::stream::iter(missing)
            .map(|r| {
                let docker = docker.clone();
                async move {
                    let id = docker.image_id(&r).await;
                    (r, id)
                }
            })
            .buffer_unordered(RESOLVE_CONCURRENCY)
            .filter_map(|(r, id)| std::future::ready(id.ok().map(|id| (r, id))))
            .collect()
            .await;
        self.with(|m| {
            for (r, id) in &found {
                m.insert(r.clone(), (id.clone(), now));
            }
        });
        known.extend(found);
        known
    }
}

/// Whether a container running `running` drifted from a reference that resolves to `resolved`.
pub fn drifted(running: Option<&str>, resolved: Option<&Option<String>>) -> bool {
    match (running, resolved) {
        (Some(running), Some(Some(now))) => running != now,
        _ => false,
    }
}

/// Clears the image cache on every image event until `shutdown`, reconnecting (and clearing
/// once more, for what happened meanwhile) when the daemon comes back.
pub async fn watch_image_events(bots: BotService, mut shutdown: watch::Receiver<bool>) {
    loop {
        let mut events = bots.docker().image_events();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                ev = events.next() => match ev {
                    Some(Ok(())) => bots.images().invalidate(),
                    Some(Err(_)) | None => break,
                },
            }
        }
        bots.images().invalidate();
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_needs_a_container_and_a_known_resolution() {
        let now = Some("sha256:new".to_string());
        assert!(drifted(Some("sha256:old"), Some(&now)));
        assert!(!drifted(Some("sha256:new"), Some(&now)));
        assert!(!drifted(None, Some(&now)), "no container, no drift");
        assert!(!drifted(Some("sha256:old"), None), "unknown: no claim");
        assert!(
            !drifted(Some("sha256:old"), Some(&None)),
            "the tag names no image any more: an upgrade could not run it"
        );
    }
}
