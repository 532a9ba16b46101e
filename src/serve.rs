//! `botmaker serve`: start-up checks that fail fast with the fix in the message, then the
//! application ([`crate::app`]: state, router, background tasks) until a graceful shutdown that
//! leaves every bot container running.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::access::Auth;
use crate::app::App;
use crate::auth::{
    generate_password, hash_password_async, validate_password, verify_password_async,
};
use crate::backup::schedule::Scheduler;
use crate::config::ServeConfig;
use crate::docker::{
    ContainerError, DockerService, DockerSettings, HostPath, MountPoint, host_path,
    own_container_id,
};
use crate::llm::{LlmService, ProxyEndpoint};
use crate::safe_fs;
use crate::store::Store;

/// A start-up failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// A prepared server: checks passed, listener bound, workers not yet started.
pub struct Server {
    listener: TcpListener,
    app: App,
}

impl Server {
    /// Runs every start-up check: port free, Docker answers, the data directory is at the same
    /// path on the daemon's host (when botmaker runs in a container), data dir writable (made
    /// absolute and private, the database files 0600), database opens, admin password set.
    ///
    /// The checks that write nothing come first: a taken port, a dead daemon or a data
    /// directory the daemon cannot bind from must not leave a data directory and a generated
    /// password behind.
    pub async fn prepare(mut config: ServeConfig) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            StartupError(format!(
                "cannot listen on {}: {e}; is another botmaker (or another program) using it? \
                 Stop it or pick another address with --listen / BOTMAKER_LISTEN",
                config.listen
            ))
        })?;
        let docker = DockerService::connect(DockerSettings {
            host: config.docker_host.clone(),
            instance: config.instance.clone(),
            backend: config.backend,
            volume_driver: config.swarm_volume_driver.clone(),
            ..DockerSettings::default()
        })
        .await
        .map_err(|e| StartupError(format!("cannot start: {e}")))?;
        check_data_dir_on_daemon_host(&docker, &absolute_data_dir(&config.data_dir)?).await?;
        config.data_dir = prepare_data_dir(&config.data_dir)?;
        restrict_database_files(&config.database_path())?;
        let store = Store::open(&config.database_path())
            .await
            .map_err(|e| StartupError(e.to_string()))?;
        // Opening may have created `-wal` and `-shm`.
        restrict_database_files(&config.database_path())?;
        let password_hash = admin_password_hash(&config, &store).await?;

        let backups = Scheduler::prepare(&config.backup).map_err(|e| {
            StartupError(format!(
                "scheduled backups: {e}; fix --backup-dir / --backup-passphrase-file"
            ))
        })?;
        let llm_listener = crate::llm::listen::bind(config.llm_proxy_listen, async {
            docker
                .network_gateway(crate::llm::listen::DEFAULT_BRIDGE)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(StartupError)?;
        let llm = LlmService::open(
            store.clone(),
            config.llm_keys_root(),
            llm_listener.as_ref().map(|l| ProxyEndpoint {
                listen: l.local_addr().expect("bound listener"),
            }),
        )
        .await
        .map_err(|e| StartupError(format!("cannot load the LLM providers: {e}")))?;

        let app = App::new(&config, store, docker, password_hash, llm, llm_listener)
            .with_backups(backups);
        app.state()
            .alerts
            .keep_flag_webhooks(&config.alerts.webhooks)
            .await
            .map_err(|e| StartupError(format!("--alert-webhook: {e}")))?;
        Ok(Self { listener, app })
    }

    /// The authentication state (login limits, verification counts), shared with the server.
    pub fn auth(&self) -> Arc<Auth> {
        self.app.state().auth.clone()
    }

    /// The bot service, with its watch cache and observed fleet: for tests that look inside
    /// (or add a fault no real daemon produces, such as a lost event).
    pub fn bots(&self) -> crate::bots::BotService {
        self.app.state().bots.clone()
    }

    /// The background tasks (reconciler, probes, sampler, session purge), to check after
    /// [`Server::run`] that every one of them observed the shutdown.
    pub fn tasks(&self) -> crate::app::Tasks {
        self.app.tasks()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Where the LLM proxy listens, if it runs.
    pub fn llm_proxy_addr(&self) -> Option<std::net::SocketAddr> {
        self.app.llm_proxy_addr()
    }

    /// Serves until `shutdown` resolves. Bot containers are left running.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Before the first request: a create or delete cut short by a crash is undone or
        // finished, so no request ever sees a half-made bot.
        match self.app.state().bots.recover_interrupted().await {
            Ok(r) if !r.is_empty() => {
                tracing::info!(recovered = ?r, "finished interrupted operations")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not finish interrupted operations yet; will retry")
            }
        }
        // Before the first request too: a bot crash-looping when the server went down is
        // `crash_loop` from the first answer, not `error` until it crashes enough again.
        self.app.load_crash_history().await;
        tracing::info!(addr = %self.local_addr(), "botmaker listening");
        self.app.serve(self.listener, shutdown).await
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

/// The data directory as an absolute path, its existing part resolved through any links,
/// without creating anything (that comes after the checks that write nothing).
fn absolute_data_dir(dir: &Path) -> Result<PathBuf, StartupError> {
    let absolute = std::path::absolute(dir).map_err(|e| {
        StartupError(format!(
            "data directory {} is not usable (resolve: {e}); give an absolute path with \
             --data-dir / BOTMAKER_DATA_DIR",
            dir.display()
        ))
    })?;
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    let base = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            // `..` at the end, or the root itself: leave the path as given.
            _ => return Ok(absolute),
        }
    };
    Ok(missing
        .iter()
        .rev()
        .fold(base, |path, name| path.join(name)))
}

/// When botmaker runs in a Docker container, the daemon resolves the bind-mount sources it is
/// handed (`<data dir>/secrets/<bot>`, `<data dir>/workspaces/<bot>`) on *its* host, not in
/// this container: the data directory must be mounted at the same path on both sides, or
/// every bot would get another directory than the one botmaker wrote (or none). Checked
/// before anything is written, with the `docker run` fix in the message.
async fn check_data_dir_on_daemon_host(
    docker: &DockerService,
    data_dir: &Path,
) -> Result<(), StartupError> {
    let Some(id) = own_container_id() else {
        return Ok(());
    };
    let mounts = match docker.container_mounts(&id).await {
        Ok(mounts) => mounts,
        Err(ContainerError::NotFound { .. }) => {
            tracing::warn!(
                container = %id,
                docker = %docker.host(),
                "botmaker runs in a container this Docker daemon does not know, so it cannot \
                 check that the data directory is at the same path on the daemon's host; bind \
                 mounts of bot secrets and workspaces will be resolved there"
            );
            return Ok(());
        }
        Err(e) => {
            return Err(StartupError(format!(
                "cannot inspect botmaker's own container {id} to check its data directory \
                 mount: {e}"
            )));
        }
    };
    match mount_problem(id.get(..12).unwrap_or(&id), &mounts, data_dir) {
        Some(problem) => Err(StartupError(problem)),
        None => Ok(()),
    }
}

/// What is wrong with where the data directory (or its `secrets/`, `workspaces/`) is mounted
/// in container `short` with `mounts`, and the `docker run` options that fix it; `None` when
/// all three are at the same path on the daemon's host.
fn mount_problem(short: &str, mounts: &[MountPoint], data_dir: &Path) -> Option<String> {
    let why = "the Docker daemon resolves the bots' bind mounts (their secrets and workspaces) \
               on its host, so the data directory must be mounted at the same path on both \
               sides";
    [
        data_dir.to_path_buf(),
        data_dir.join("secrets"),
        data_dir.join("workspaces"),
    ]
    .into_iter()
    .find_map(|path| match host_path(mounts, &path) {
        HostPath::Same => None,
        HostPath::NotMounted => Some(format!(
            "this container ({short}) does not mount {} from the Docker host: it lives in \
             the container's own file system; {why}: run the container with `-v {d}:{d}` \
             (and keep --data-dir / BOTMAKER_DATA_DIR {d})",
            path.display(),
            d = data_dir.display(),
        )),
        HostPath::Elsewhere {
            host: Some(host),
            mount,
        } if mount.kind == "bind" => {
            let src = mount.source.display();
            let host_data_dir = match host_path(mounts, data_dir) {
                HostPath::Elsewhere { host: Some(h), .. } => h,
                _ => data_dir.to_path_buf(),
            };
            Some(format!(
                "this container ({short}) mounts {} from {} on the Docker host \
                 (`-v {src}:{}`); {why}: run the container with `-v {src}:{src}` and \
                 --data-dir / BOTMAKER_DATA_DIR {}",
                path.display(),
                host.display(),
                mount.destination.display(),
                host_data_dir.display(),
            ))
        }
        HostPath::Elsewhere { mount, .. } => Some(format!(
            "this container ({short}) has {} on a {} mount at {}, which the daemon cannot \
             bind from at that path; {why}: mount a host directory instead, e.g. \
             `-v /srv/botmaker:/srv/botmaker` with --data-dir / BOTMAKER_DATA_DIR \
             /srv/botmaker",
            path.display(),
            mount.kind,
            mount.destination.display(),
        )),
    })
}

/// Mode of the data directory, of `secrets/` and `workspaces/`: only botmaker's user may look
/// inside (Docker, as root, still resolves the bind-mount sources).
const DATA_DIR_MODE: u32 = 0o700;
/// Mode of the registry database and its `-wal` and `-shm` files, which hold the admin
/// password's hash, session and token hashes and every bot's configuration.
const DATABASE_FILE_MODE: u32 = 0o600;

/// Creates the data directory (0700) with `secrets/` and `workspaces/` in it, tightens a
/// looser existing one, checks it is writable, and returns its absolute, canonical path.
///
/// Absolute because its subdirectories become bind-mount sources, which Docker takes only as
/// absolute paths: the default `./data` would otherwise make every create fail. Canonical so
/// that the roots under it are opened without following links (see [`crate::safe_fs`]) even
/// when the administrator's data directory is reached through one.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, StartupError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        StartupError(format!(
            "data directory {} is not usable ({what}: {e}); create it and make it writable by \
             this user, or choose another with --data-dir / BOTMAKER_DATA_DIR",
            dir.display()
        ))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(dir)
        .map_err(|e| fail("create", &e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| fail("resolve", &e))?;
    let root = safe_fs::Dir::open_root(&dir)
        .map_err(|e| fail("open", &e))?
        .ok_or_else(|| fail("open", &"it vanished"))?;
    tighten(&root, DATA_DIR_MODE).map_err(|e| fail("chmod", &e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(|e| fail("write", &e))?;
    let _ = std::fs::remove_file(&probe);
    for sub in ["secrets", "workspaces", "llm-providers"] {
        safe_fs::Dir::create_root(&dir.join(sub), DATA_DIR_MODE).map_err(|e| fail("create", &e))?;
    }
    Ok(dir)
}

/// Sets `dir`'s mode, saying so when it was different (an installation from before this
/// check, or a hand-made directory).
fn tighten(dir: &safe_fs::Dir, mode: u32) -> std::io::Result<()> {
    let was = std::fs::symlink_metadata(dir.path())?.permissions().mode() & 0o7777;
    if was != mode {
        tracing::warn!(
            path = %dir.path().display(),
            from = %format!("{was:o}"),
            to = %format!("{mode:o}"),
            "setting the data directory's permissions"
        );
    }
    dir.set_mode(mode).map_err(std::io::Error::other)
}

/// Makes the database file 0600 before SQLite first opens it (SQLite gives the `-wal` and
/// `-shm` files it creates the mode of the database file), and tightens all three where an
/// older installation left them readable by everyone. Never follows a link.
fn restrict_database_files(db: &Path) -> Result<(), StartupError> {
    use rustix::fs::{Mode, OFlags};
    let fail = |path: &Path, e: rustix::io::Errno| {
        StartupError(format!(
            "cannot restrict the permissions of {} to 0600: {e}; fix its owner or remove it",
            path.display()
        ))
    };
    let base = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mode = Mode::from_bits_truncate(DATABASE_FILE_MODE);
    let mut files = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for (i, path) in files.iter().enumerate() {
        // The database itself is created if missing; its companions only tightened.
        let flags = if i == 0 {
            base | OFlags::RDWR | OFlags::CREATE
        } else {
            base | OFlags::RDONLY
        };
        let fd = match rustix::fs::open(path, flags, mode) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if i > 0 => continue,
            Err(e) => return Err(fail(path, e)),
        };
        rustix::fs::fchmod(&fd, mode).map_err(|e| fail(path, e))?;
    }
    Ok(())
}

/// The argon2 hash logins are checked against. A configured password is validated; if the
/// stored hash is not of that password, the new hash replaces it and every login session ends
/// (a password change must lock out whoever knew the old one). Without a configured password,
/// a previously stored hash is used; on a first run a strong password is generated, saved 0600
/// in the data directory, and its location printed once.
async fn admin_password_hash(config: &ServeConfig, store: &Store) -> Result<String, StartupError> {
    let err = |e: &dyn std::fmt::Display| StartupError(e.to_string());
    let stored = store.admin_password_hash().await.map_err(|e| err(&e))?;
    if let Some(password) = config.configured_password().map_err(StartupError)? {
        validate_password(&password).map_err(|e| {
            StartupError(format!(
                "admin password rejected: {e}; set BOTMAKER_ADMIN_PASSWORD(_FILE) to a longer one"
            ))
        })?;
        if let Some(hash) = stored {
            if verify_password_async(password.clone(), hash.clone()).await {
                return Ok(hash);
            }
        }
        return store_password_hash(store, password).await;
    }
    if let Some(hash) = stored {
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

/// Hashes `password` (off the runtime: argon2 is slow on purpose), stores only the hash and
/// ends every login session, in one transaction. API tokens stay valid: they are credentials
/// issued for scripts, listed and revoked on their own (`botmaker tokens`).
async fn store_password_hash(store: &Store, password: String) -> Result<String, StartupError> {
    let err = |e: &dyn std::fmt::Display| StartupError(e.to_string());
    let hash = hash_password_async(password).await.map_err(|e| err(&e))?;
    let ended = store
        .replace_admin_password_hash(&hash)
        .await
        .map_err(|e| err(&e))?;
    if ended > 0 {
        let tokens = store.list_api_tokens().await.map_err(|e| err(&e))?.len();
        tracing::warn!(
            sessions_ended = ended,
            api_tokens_kept = tokens,
            "the admin password changed: every login session was ended; API tokens stay \
             valid (review them with `botmaker tokens list`)"
        );
    }
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
    // An existing file keeps its mode through `open`: set it on the descriptor.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn mount(kind: &str, source: &str, destination: &str) -> MountPoint {
        MountPoint {
            kind: kind.into(),
            source: source.into(),
            destination: destination.into(),
        }
    }

    #[test]
    fn a_data_dir_at_another_path_on_the_host_is_refused_with_the_fix() {
        let sock = mount("bind", "/var/run/docker.sock", "/var/run/docker.sock");
        let data = Path::new("/var/lib/botmaker");
        let same = [
            sock.clone(),
            mount("bind", "/var/lib/botmaker", "/var/lib/botmaker"),
        ];
        assert_eq!(mount_problem("c0ffee", &same, data), None);
        // A parent mounted at the same path is as good.
        let parent = [mount("bind", "/var/lib", "/var/lib")];
        assert_eq!(mount_problem("c0ffee", &parent, data), None);

        let moved = [sock.clone(), mount("bind", "/srv/bm", "/var/lib/botmaker")];
        let err = mount_problem("c0ffee", &moved, data).unwrap();
        assert!(
            err.contains("this container (c0ffee) mounts /var/lib/botmaker from /srv/bm"),
            "{err}"
        );
        assert!(
            err.contains("`-v /srv/bm:/srv/bm`") && err.contains("BOTMAKER_DATA_DIR /srv/bm"),
            "{err}"
        );

        // Moved parent: the fix names the data directory's host path.
        let moved_parent = [mount("bind", "/srv", "/var/lib")];
        let err = mount_problem("c0ffee", &moved_parent, data).unwrap();
        assert!(
            err.contains("`-v /srv:/srv`") && err.contains("BOTMAKER_DATA_DIR /srv/botmaker"),
            "{err}"
        );

        let none = [sock.clone()];
        let err = mount_problem("c0ffee", &none, data).unwrap();
        assert!(
            err.contains("does not mount /var/lib/botmaker")
                && err.contains("`-v /var/lib/botmaker:/var/lib/botmaker`"),
            "{err}"
        );

        let volume = [mount(
            "volume",
            "/var/lib/docker/volumes/bm/_data",
            "/var/lib/botmaker",
        )];
        let err = mount_problem("c0ffee", &volume, data).unwrap();
        assert!(
            err.contains("on a volume mount") && err.contains("host directory"),
            "{err}"
        );

        // The data directory is fine but its workspaces come from elsewhere.
        let nested = [
            mount("bind", "/var/lib/botmaker", "/var/lib/botmaker"),
            mount("bind", "/scratch/ws", "/var/lib/botmaker/workspaces"),
        ];
        let err = mount_problem("c0ffee", &nested, data).unwrap();
        assert!(
            err.contains("mounts /var/lib/botmaker/workspaces from /scratch/ws"),
            "{err}"
        );
    }

    #[test]
    fn the_data_dir_is_resolved_without_creating_it() {
        let tmp = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(real.join("target")).unwrap();
        std::os::unix::fs::symlink(real.join("target"), real.join("link")).unwrap();
        let got = absolute_data_dir(&real.join("link/missing/data")).unwrap();
        assert_eq!(got, real.join("target/missing/data"));
        assert!(!real.join("target/missing").exists());
    }

    #[test]
    fn data_dir_is_made_absolute_canonical_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        let got = prepare_data_dir(&tmp.path().join("a/../data")).unwrap();
        let want = std::fs::canonicalize(tmp.path()).unwrap().join("data");
        assert_eq!(got, want);
        for p in [&want, &want.join("secrets"), &want.join("workspaces")] {
            assert_eq!(mode(p), 0o700, "{}", p.display());
        }

        // A loosened one is tightened again.
        std::fs::set_permissions(&want, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            want.join("workspaces"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        prepare_data_dir(&want).unwrap();
        assert_eq!(mode(&want), 0o700);
        assert_eq!(mode(&want.join("workspaces")), 0o700);
    }

    #[test]
    fn a_symlinked_secrets_or_workspaces_root_stops_start_up() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join("workspaces")).unwrap();
        let err = prepare_data_dir(&data).unwrap_err().to_string();
        assert!(
            err.contains("symlink") && err.contains("workspaces"),
            "{err}"
        );
        assert_eq!(mode(&elsewhere), 0o755);
    }

    #[test]
    fn database_files_are_created_private_and_loosened_ones_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("botmaker.db");
        restrict_database_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert!(!tmp.path().join("botmaker.db-wal").exists());

        for name in ["botmaker.db", "botmaker.db-wal", "botmaker.db-shm"] {
            let p = tmp.path().join(name);
            std::fs::write(&p, b"").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        restrict_database_files(&db).unwrap();
        for name in ["botmaker.db", "botmaker.db-wal", "botmaker.db-shm"] {
            assert_eq!(mode(&tmp.path().join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn a_symlinked_database_file_is_refused_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        let db = tmp.path().join("botmaker.db");
        std::os::unix::fs::symlink(&outside, tmp.path().join("botmaker.db-wal")).unwrap();
        let err = restrict_database_files(&db).unwrap_err().to_string();
        assert!(err.contains("botmaker.db-wal"), "{err}");
        assert_eq!(mode(&outside), 0o644);
    }
}
