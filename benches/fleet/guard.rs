//! Leaves the engine as the bench found it: every container of the bench's instances goes,
//! and the fixture image too if this run built it. Runs at the end, and from `Drop` on a panic
//! or an interrupt.

use futures_util::StreamExt;

use super::engine::{Engine, instance_filter};

/// Removes the bench's containers (and image) when finished or dropped.
pub struct Guard {
    engine: Engine,
    instances: Vec<String>,
    image: Option<String>,
    done: bool,
}

impl Guard {
    /// Guards the containers of `instances`, and `image` if it is ours to remove.
    pub fn new(engine: Engine, instances: Vec<String>, image: Option<String>) -> Self {
        Self {
            engine,
            instances,
            image,
            done: false,
        }
    }

    /// Cleans up now; returns what could not be removed.
    pub async fn finish(mut self) -> Vec<String> {
        self.done = true;
        cleanup(&self.engine, &self.instances, self.image.as_deref()).await
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        eprintln!("bench: cleaning up the bench's containers...");
        let (engine, instances, image) = (
            self.engine.clone(),
            self.instances.clone(),
            self.image.clone(),
        );
        // A runtime of its own on a thread of its own: a drop may happen inside (or after)
        // the bench's runtime.
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(cleanup(&engine, &instances, image.as_deref()))
        });
        match t.join() {
            Ok(left) => {
                for l in left {
                    eprintln!("bench: cleanup: {l}");
                }
            }
            Err(_) => eprintln!("bench: cleanup panicked; check `docker ps -a`"),
        }
    }
}

/// Containers of `instance` (their ids).
pub async fn containers_of(engine: &Engine, instance: &str) -> Result<Vec<String>, String> {
    let mut conn = engine.connect().await?;
    let reply = conn
        .call(
            "GET",
            &format!(
                "/containers/json?all=true&filters={}",
                instance_filter(instance)
            ),
            None,
        )
        .await?
        .ok("list")?;
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
    Ok(list
        .iter()
        .filter_map(|c| c["Id"].as_str().map(String::from))
        .collect())
}

/// Force-removes `ids`, eight at a time; returns the failures.
pub async fn remove_all(engine: &Engine, ids: Vec<String>) -> Vec<String> {
    futures_util::stream::iter(ids)
        .map(|id| async move {
            let mut conn = engine.connect().await?;
            let r = conn
                .call("DELETE", &format!("/containers/{id}?force=true"), None)
                .await?;
            if r.status == 404 {
                Ok(())
            } else {
                r.ok(&format!("removing {id}")).map(drop)
            }
        })
        .buffer_unordered(8)
        .filter_map(|r: Result<(), String>| std::future::ready(r.err()))
        .collect()
        .await
}

/// Removes what earlier bench runs left when they were killed outright (SIGKILL gives no
/// guard a chance): containers of a `bench-<pid>` instance whose process is gone. Returns
/// how many.
pub async fn sweep_stale(engine: &Engine) -> Result<usize, String> {
    let mut conn = engine.connect().await?;
    let filter = super::engine::encode(
        &serde_json::json!({ "label": [format!("{}=true", botmaker::docker::LABEL_MANAGED)] })
            .to_string(),
    );
    let reply = conn
        .call(
            "GET",
            &format!("/containers/json?all=true&filters={filter}"),
            None,
        )
        .await?
        .ok("list")?;
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
    let alive = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("fleet"))
    };
    let stale: Vec<String> = list
        .iter()
        .filter(|c| {
            let instance = c["Labels"][botmaker::docker::LABEL_INSTANCE]
                .as_str()
                .unwrap_or_default();
            let pid = instance
                .strip_prefix("bench-")
                .map(|rest| rest.trim_end_matches("-floor"))
                .and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|p| p != std::process::id() && !alive(p))
        })
        .filter_map(|c| c["Id"].as_str().map(String::from))
        .collect();
    let n = stale.len();
    if let Some(e) = remove_all(engine, stale).await.first() {
        return Err(e.clone());
    }
    Ok(n)
}

async fn cleanup(engine: &Engine, instances: &[String], image: Option<&str>) -> Vec<String> {
    let mut left = Vec::new();
    for instance in instances {
        match containers_of(engine, instance).await {
            Ok(ids) => left.extend(remove_all(engine, ids).await),
            Err(e) => left.push(format!("listing containers of {instance}: {e}")),
        }
    }
    if let Some(tag) = image {
        // Not forced: if a test run started using the image meanwhile, it stays.
        match engine.connect().await {
            Ok(mut conn) => match conn.call("DELETE", &format!("/images/{tag}"), None).await {
                Ok(r) if r.status == 200 || r.status == 404 => {}
                Ok(r) => left.push(format!(
                    "image {tag} left in place (HTTP {}: {})",
                    r.status,
                    String::from_utf8_lossy(&r.body).trim()
                )),
                Err(e) => left.push(format!("removing image {tag}: {e}")),
            },
            Err(e) => left.push(e),
        }
    }
    left
}
