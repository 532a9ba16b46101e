//! `botmaker serve`: start-up checks that fail fast with the fix in the message, the
//! background workers (reconciler, probes, stats sampler), the HTTP server, and a graceful
//! shutdown that leaves every bot container running.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{generate_password, hash_password_async, validate_password};
use crate::bots::{BotPaths, BotPolicy, BotService, CrashLoopPolicy, Fleet};
use crate::config::ServeConfig;
use crate::docker::{DockerService, DockerSettings};
use crate::http::{AppState, Auth, app};
use crate::reconcile::{Reconciler, run_probes};
use crate::sampler::Sampler;
use crate::store::Store;

/// Setting under which the admin password's hash is stored.
const PASSWORD_HASH_SETTING: &str = "admin_password_hash";

/// A start-up failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// A prepared server: checks passed, listener bound, workers not yet started.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    reconciler: Reconciler,
    config: ServeConfig,
}

impl Server {
    /// Runs every start-up check: data dir writable, database opens, admin password set,
    /// Docker answers, port free.
    pub async fn prepare(config: ServeConfig) -> Result<Self, StartupError> {
        prepare_data_dir(&config.data_dir)?;
        let store = Store::open(&config.database_path())
            .await
            .map_err(|e| StartupError(e.to_string()))?;
        let password_hash = admin_password_hash(&config, &store).await?;
        let docker = DockerService::connect(DockerSettings {
            host: config.docker_host.clone(),
            instance: config.instance.clone(),
            ..DockerSettings::default()
        })
        .await
        .map_err(|e| StartupError(format!("cannot start: {e}")))?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            StartupError(format!(
                "cannot listen on {}: {e}; is another botmaker (or another program) using it? \
                 Stop it or pick another address with --listen / BOTMAKER_LISTEN",
                config.listen
            ))
        })?;

        let fleet = Arc::new(Fleet::new(CrashLoopPolicy {
            restarts: config.crash_loop_restarts.max(1),
            window: Duration::from_secs(config.crash_loop_window),
        }));
        let bots = BotService::new(
            store.clone(),
            docker,
            BotPaths {
                secrets_root: config.secrets_root(),
                workspaces_root: config.workspaces_root(),
            },
            fleet,
            config.stop_grace(),
            BotPolicy {
                allow_host_network: config.allow_host_network,
            },
        );
        let auth = Arc::new(Auth::new(
            store.clone(),
            password_hash,
            Duration::from_secs(config.session_hours.max(1) * 3600),
        ));
        let reconciler = Reconciler::new(
            bots.clone(),
            Duration::from_secs(config.resync_interval.max(1)),
        );
        Ok(Self {
            listener,
            state: AppState {
                bots,
                store,
                auth,
                sampler: Sampler::new(),
            },
            reconciler,
            config,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` resolves. Bot containers are left running.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Before the first request: a create or delete cut short by a crash is undone or
        // finished, so no request ever sees a half-made bot.
        match self.state.bots.recover_interrupted().await {
            Ok(r) if !r.is_empty() => {
                tracing::info!(recovered = ?r, "finished interrupted operations")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not finish interrupted operations yet; will retry")
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let reconciler = self.reconciler.clone();
        let rx = stop_rx.clone();
        // Desired-state enforcement runs after the server answers, so a large fleet does not
        // delay `/health`.
        tokio::spawn(async move {
            match reconciler.enforce_desired().await {
                Ok(report) => tracing::info!(?report, "start-up reconciliation complete"),
                Err(e) => tracing::warn!(error = %e, "start-up reconciliation failed; will retry"),
            }
            reconciler.run(rx).await;
        });
        tokio::spawn(run_probes(self.state.bots.clone(), stop_rx.clone()));
        tokio::spawn(self.state.sampler.clone().run(
            self.state.bots.docker().clone(),
            Duration::from_secs(self.config.stats_interval.max(1)),
            stop_rx.clone(),
        ));
        let store = self.state.store.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = rx.changed() => return,
                    _ = tick.tick() => { let _ = store.purge_expired_sessions(chrono::Utc::now()).await; }
                }
            }
        });

        tracing::info!(addr = %self.local_addr(), "botmaker listening");
        let app = app(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down; bot containers keep running");
            })
            .await;
        let _ = stop_tx.send(true);
        result
    }
}

/// Resolves after SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn prepare_data_dir(dir: &Path) -> Result<(), StartupError> {
    let fail = |what: &str, e: std::io::Error| {
        StartupError(format!(
            "data directory {} is not usable ({what}: {e}); create it and make it writable by \
             this user, or choose another with --data-dir / BOTMAKER_DATA_DIR",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create", e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(|e| fail("write", e))?;
    let _ = std::fs::remove_file(&probe);
    for sub in ["secrets", "workspaces"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| fail("create", e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("chmod", e))?;
    }
    Ok(())
}

/// The argon2 hash logins are checked against. A configured password is validated and hashed;
/// without one, a previously stored hash is used; on a first run a strong password is
/// generated, saved 0600 in the data directory, and its location printed once.
async fn admin_password_hash(config: &ServeConfig, store: &Store) -> Result<String, StartupError> {
    let err = |e: &dyn std::fmt::Display| StartupError(e.to_string());
    if let Some(password) = config.configured_password().map_err(StartupError)? {
        validate_password(&password).map_err(|e| {
            StartupError(format!(
                "admin password rejected: {e}; set BOTMAKER_ADMIN_PASSWORD(_FILE) to a longer one"
            ))
        })?;
        return store_password_hash(store, password).await;
    }
    if let Some(hash) = store
        .get_setting(PASSWORD_HASH_SETTING)
        .await
        .map_err(|e| err(&e))?
    {
        return Ok(hash);
    }
    let password = generate_password();
    let path = config.generated_password_path();
    write_private(&path, &password).map_err(|e| {
        StartupError(format!(
            "cannot save the generated admin password to {}: {e}",
            path.display()
        ))
    })?;
    let hash = store_password_hash(store, password).await?;
    eprintln!(
        "botmaker: no admin password was configured, so one was generated and saved to {} \
         (readable only by you). Log in with it, or set BOTMAKER_ADMIN_PASSWORD_FILE.",
        path.display()
    );
    Ok(hash)
}

/// Hashes `password` (off the runtime: argon2 is slow on purpose) and stores only the hash.
async fn store_password_hash(store: &Store, password: String) -> Result<String, StartupError> {
    let err = |e: &dyn std::fmt::Display| StartupError(e.to_string());
    let hash = hash_password_async(password).await.map_err(|e| err(&e))?;
    store
        .set_setting(PASSWORD_HASH_SETTING, &hash)
        .await
        .map_err(|e| err(&e))?;
    Ok(hash)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
