//! The composition root: builds the application state from the configuration, assembles the
//! whole HTTP application (the REST API and the dashboard mounted side by side, behind request
//! ids, tracing, the body limit and the security headers), and owns every background task
//! (reconciler, probes, stats sampler and its per-minute history writer, image-event watch,
//! scheduled backups, session purge, audit-log pruning, a log stream's reader, the LLM key proxy
//! and its usage writer, alert delivery), joining them all on shutdown. Every answer is counted
//! in the HTTP metrics here ([`crate::metrics`]); changes are recorded in the audit log by the
//! API's own layer (`crate::http`).
//!
//! The one module that knows every other: nothing imports it but `serve` (and tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Instrument;

use crate::access::{Auth, AuthSettings};
use crate::alerts::{AlertService, AlertSettings, RetryPolicy};
use crate::audit::AuditLog;
use crate::backup::schedule::Scheduler;
use crate::bots::{BotPaths, BotPolicy, BotService, CrashLoopPolicy, Fleet};
use crate::config::ServeConfig;
use crate::docker::DockerService;
use crate::edge::{AppState, CONTENT_SECURITY_POLICY, MAX_BODY_BYTES};
use crate::llm::LlmService;
use crate::metrics::Metrics;
use crate::reconcile::{Reconciler, run_probes};
use crate::sampler::Sampler;
use crate::store::Store;

/// Longest the server waits, once it stops answering, for its background tasks to finish.
/// Each of them watches the shutdown signal; this bounds one stuck on a slow Docker call.
pub const TASK_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often expired login sessions are deleted from the database.
const SESSION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// The header carrying a request's id: kept when the client sends one, made up otherwise, and
/// returned in the answer and recorded in the request's log span.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The server's parts, built but not yet running.
pub struct App {
    state: AppState,
    reconciler: Reconciler,
    stats_interval: Duration,
    /// The LLM key proxy's listener, when it runs (see `crate::llm::listen`).
    llm_listener: Option<TcpListener>,
    /// Days the audit log keeps an entry.
    audit_retention_days: u32,
    backups: Option<Scheduler>,
    tasks: Tasks,
}

impl App {
    /// Builds the state from a checked configuration and the resources start-up opened.
    pub fn new(
        config: &ServeConfig,
        store: Store,
        docker: DockerService,
        password_hash: String,
        llm: LlmService,
        llm_listener: Option<TcpListener>,
    ) -> Self {
        let fleet = Arc::new(Fleet::new(CrashLoopPolicy {
            restarts: config.crash_loop_restarts.max(1),
            window: Duration::from_secs(config.crash_loop_window),
        }));
        let sampler = Sampler::new();
        let metrics = Metrics::new(fleet.clone(), sampler.clone(), llm.clone());
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
        )
        .with_llm(llm.clone());
        let auth = Arc::new(Auth::new(
            store.clone(),
            password_hash,
            AuthSettings {
                session_ttl: config.session_ttl(),
                public_https: config.public_url_is_https(),
                trust_proxy: config.trust_proxy,
                password_file: Some(config.generated_password_path()),
            },
        ));
        let audit_retention_days = config.audit_retention_days;
        let audit_store = store.clone();
        let reconciler = Reconciler::new(
            bots.clone(),
            Duration::from_secs(config.resync_interval.max(1)),
        );
        let alerts = AlertService::new(
            store.clone(),
            config.notification_secrets_root(),
            AlertSettings {
                public_url: config.public_url.clone(),
                recovery_settle: Duration::from_secs(config.alerts.recovery_secs),
                retry: RetryPolicy::default(),
            },
        );
        alerts.export_counts(metrics.alert_deliveries());
        let tasks = Tasks::default();
        Self {
            state: AppState {
                bots,
                store,
                auth,
                sampler,
                llm,
                alerts,
                metrics,
                audit: AuditLog::new(audit_store),
                tasks: tasks.tracker.clone(),
            },
            reconciler,
            stats_interval: Duration::from_secs(config.stats_interval.max(1)),
            llm_listener,
            audit_retention_days,
            backups: None,
            tasks,
        }
    }

    /// The background tasks: tests check none is left once the server has stopped.
    pub fn tasks(&self) -> Tasks {
        self.tasks.clone()
    }

    /// Adds scheduled backups (`serve --backup-dir --backup-every`), prepared by start-up so a
    /// bad backup directory or passphrase file stops it before anything runs.
    pub fn with_backups(mut self, backups: Option<Scheduler>) -> Self {
        self.backups = backups;
        self
    }

    /// What every handler reaches.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where the LLM proxy listens, if it runs.
    pub fn llm_proxy_addr(&self) -> Option<SocketAddr> {
        self.llm_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener"))
    }

    /// Starts the background tasks and serves on `listener` until `shutdown` resolves; then
    /// ends open streams, waits for requests in flight, stops every task and waits for them.
    /// Bot containers are left running.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.spawn_background();
        self.spawn_llm_proxy();
        let auth = self.state.auth.clone();
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down; bot containers keep running");
                // A graceful shutdown waits for every response to end; a stream never would.
                auth.close_streams();
            })
            .await;
        self.tasks.shutdown(TASK_SHUTDOWN_GRACE).await;
        result
    }

    /// Puts the crash history kept in the store back into the fleet's view (see
    /// [`Reconciler::load_crash_history`]).
    pub async fn load_crash_history(&self) {
        self.reconciler.load_crash_history().await;
    }

    /// The reconciler (after the server answers, so a large fleet does not delay `/health`),
    /// the probes, the stats sampler, the image-event watch (drift), scheduled backups and the
    /// session purge, each a task of [`Tasks`].
    fn spawn_background(&mut self) {
        let tasks = &self.tasks;
        // Alerts subscribe before the reconciler runs, so they see its first observations; their
        // delivery is theirs to wait for, never the reconciler's (it only broadcasts).
        tasks.spawn(
            "alerts",
            self.state
                .alerts
                .clone()
                .run(self.state.bots.fleet().subscribe(), tasks.stop_signal()),
        );
        let reconciler = self.reconciler.clone();
        let (stop, cancel) = (tasks.stop_signal(), tasks.cancel.clone());
        tasks.spawn("reconciler", async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = reconciler.enforce_desired() => match r {
                    Ok(report) => tracing::info!(?report, "start-up reconciliation complete"),
                    Err(e) => tracing::warn!(error = %e, "start-up reconciliation failed; will retry"),
                },
            }
            reconciler.run(stop).await;
        });
        tasks.spawn(
            "probes",
            run_probes(self.state.bots.clone(), tasks.stop_signal()),
        );
        // Image drift: a moved tag shows at the next listing, not a resync later.
        tasks.spawn(
            "image events",
            crate::bots::images::watch_image_events(self.state.bots.clone(), tasks.stop_signal()),
        );
        if let Some(backups) = self.backups.take() {
            let (bots, alerts) = (self.state.bots.clone(), self.state.alerts.clone());
            let root = bots.workspaces_root().to_path_buf();
            let snapshot = move || {
                let (bots, alerts) = (bots.clone(), alerts.clone());
                async move {
                    let mut snap = bots.fleet_snapshot().await.map_err(|e| e.to_string())?;
                    snap.notification_secrets =
                        alerts.channel_secrets().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>(snap)
                }
            };
            tasks.spawn(
                "scheduled backups",
                backups.run(snapshot, root, tasks.stop_signal()),
            );
        }
        tasks.spawn(
            "sampler",
            self.state.sampler.clone().run(
                self.state.bots.docker().clone(),
                self.stats_interval,
                tasks.stop_signal(),
            ),
        );
        tasks.spawn(
            "audit pruning",
            self.state
                .audit
                .clone()
                .run_pruning(self.audit_retention_days, tasks.stop_signal()),
        );
        tasks.spawn(
            "stats history",
            self.state
                .sampler
                .clone()
                .run_history(self.state.store.clone(), tasks.stop_signal()),
        );
        let (store, cancel) = (self.state.store.clone(), tasks.cancel.clone());
        tasks.spawn("session purge", async move {
            let mut tick = tokio::time::interval(SESSION_PURGE_INTERVAL);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {
                        if let Err(e) = store.purge_expired_sessions(chrono::Utc::now()).await {
                            tracing::warn!(error = %e, "could not purge expired sessions");
                        }
                    }
                }
            }
        });
    }
}

impl App {
    /// The LLM key proxy on its own listener, the usage writer, and the bridge between the
    /// fleet's events and the proxy's key index and budget alerts. The proxy gets its own
    /// short grace to end open answers once told to stop, inside [`TASK_SHUTDOWN_GRACE`].
    fn spawn_llm_proxy(&mut self) {
        let tasks = &self.tasks;
        let llm = self.state.llm.clone();
        tasks.spawn("llm usage", llm.clone().run(tasks.stop_signal()));
        tasks.spawn(
            "llm fleet follower",
            crate::bots::follow_llm(
                llm.clone(),
                self.state.bots.fleet().clone(),
                tasks.stop_signal(),
            ),
        );
        if let Some(listener) = self.llm_listener.take() {
            tracing::info!(addr = %listener.local_addr().expect("bound listener"), "LLM proxy listening");
            tasks.spawn(
                "llm proxy",
                crate::llm::proxy::serve(listener, llm, tasks.stop_signal()),
            );
        }
    }
}

/// The whole HTTP application over `state`: the REST API and the dashboard, siblings that do
/// not know each other, one fallback for unknown paths, and the layers every answer passes.
pub fn router(state: AppState) -> Router {
    let app = crate::http::router(&state)
        .merge(crate::web::router())
        .fallback(crate::http::unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::map_response(close_after_unread_body))
        .layer(middleware::from_fn_with_state(state.clone(), count_request));
    traced(app).with_state(state)
}

/// Counts the request in the HTTP metrics by its matched route template (`/api/bots/{id}`,
/// never the raw path: one series per route, not per bot or per path a client makes up) and
/// the time to its answer's headers.
async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(crate::metrics::UNMATCHED_ROUTE.to_string(), |p| {
            p.as_str().to_string()
        });
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe_http(
        method.as_str(),
        &route,
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

/// Gives every request an id (the client's `x-request-id` when it sends one), runs it in a log
/// span holding that id, and returns the id in the answer.
fn traced<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let ids = HeaderName::from_static(REQUEST_ID_HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The path only: a query string is the client's to keep out of server logs.
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %id,
            )
        })
        // A 5xx's cause is logged where it happens (`ApiError::internal`); no second line.
        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG));
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(ids.clone(), MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(ids)),
    )
}

/// A body refused for its size (413) is left unread, so the connection cannot carry another
/// request: say so with `Connection: close`, or a client that pools connections sends its next
/// request into one the server is closing and gets a broken answer.
async fn close_after_unread_body(mut res: Response) -> Response {
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::CACHE_CONTROL, "no-store");
    res
}

/// The server's background tasks: each spawned here is tracked, told to stop through one
/// cancellation token, and waited for on shutdown, so none outlives the server or is dropped
/// half-way without anyone knowing.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Tasks {
    /// Runs `task` as a tracked task, in a log span named `name`.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker
            .spawn(task.instrument(tracing::info_span!("task", name)));
    }

    /// A watch that turns `true` when the tasks are told to stop: what the workers written
    /// against a watch channel (reconciler, probes, sampler) take.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            cancel.cancelled().await;
            let _ = tx.send(true);
        });
        rx
    }

    /// Tells every task to stop and waits for them, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = self.tracker.len(),
                "background tasks did not stop in time; leaving them"
            );
        }
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// Log output, captured.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn answer(router: Router, id: Option<&str>) -> Option<String> {
        let mut req = Request::get("/thing?secret=1");
        if let Some(id) = id {
            req = req.header(REQUEST_ID_HEADER, id);
        }
        let res = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.headers()
            .get(REQUEST_ID_HEADER)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn every_request_gets_an_id_in_its_answer_and_its_log_span() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let router = traced(Router::new().route("/thing", axum::routing::get(|| async { "ok" })));

        let made = answer(router.clone(), None)
            .await
            .expect("an id is made up");
        assert_eq!(made.len(), 36, "a UUID: {made}");
        let kept = answer(router, Some("client-chose-this")).await;
        assert_eq!(kept.as_deref(), Some("client-chose-this"));

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        for id in [made.as_str(), "client-chose-this"] {
            assert!(text.contains(&format!("request_id={id}")), "{text}");
        }
        assert!(text.contains("path=/thing"), "{text}");
        assert!(
            !text.contains("secret=1"),
            "the query string is not logged: {text}"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_every_task_and_waits_for_it() {
        let tasks = Tasks::default();
        let finished = Arc::new(Mutex::new(Vec::new()));
        let (done, mut stop) = (finished.clone(), tasks.stop_signal());
        tasks.spawn("watch", async move {
            let _ = stop.wait_for(|s| *s).await;
            // Still running after the signal: shutdown must wait for this.
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.lock().unwrap().push("watch");
        });
        let (done, cancel) = (finished.clone(), tasks.cancel.clone());
        tasks.spawn("token", async move {
            cancel.cancelled().await;
            done.lock().unwrap().push("token");
        });
        assert!(tasks.running() >= 2);
        tasks.shutdown(Duration::from_secs(10)).await;
        assert_eq!(tasks.running(), 0);
        let mut finished = finished.lock().unwrap().clone();
        finished.sort();
        assert_eq!(finished, ["token", "watch"]);
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_stuck_task_after_the_grace() {
        let tasks = Tasks::default();
        tasks.spawn("stuck", std::future::pending());
        tasks.shutdown(Duration::from_millis(50)).await;
        assert_eq!(tasks.running(), 1, "reported, not waited for");
    }
}
