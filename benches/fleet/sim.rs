//! `--sim`: botmaker against the simulated engine (fixtures/fake-engine) at fleet sizes no
//! test machine can run, 1,000 and 10,000 bots. The fake runs in the bench process on a unix
//! socket; the server is the release binary as a child process pointed at it with
//! `--docker-host`, so its memory is its own. Bots are created through `POST /api/bots`, as a
//! user would, so the registry and the engine agree.
//!
//! What the fake cannot show: the daemon's own cost (it answers a list of 10,000 in tens of
//! milliseconds, without touching a container), and anything about running processes. The
//! floor beside each list figure is the fake's own list, over the same raw client the real
//! bench uses, so the ratio is what botmaker adds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use botmaker_fake_engine::{FakeConfig, FakeEngine, Listen};
use futures_util::StreamExt;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::engine::{Engine, instance_filter};
use super::report::cell;
use super::server::ServerProc;
use super::summary::Summary;
use super::{Plan, git_revision, procfs, say, started};

/// The image the fake knows; bots are created from it.
const SIM_IMAGE: &str = "botmaker-testbot:sim";
/// Bots created at once through the API.
const CREATE_CONCURRENCY: usize = 8;
/// Sequential lists before the "after N lists" memory reading.
const SEQUENTIAL_LISTS: usize = 20;
/// Concurrent lists before the "after concurrent lists" memory reading.
const CONCURRENT_LISTS: usize = 50;
/// Requests at once in the latency-under-load figure, and how often it is repeated.
const BURST: usize = 200;
const BURST_ROUNDS: usize = 3;
/// How long after start-up the stats cache is counted.
const STATS_COVERAGE_AFTER: Duration = Duration::from_secs(20);
/// The server's log line that ends the start-up reconciliation.
const RECONCILED: &str = "start-up reconciliation complete";
/// The line it logs instead when the reconciliation failed (it is retried later, without
/// the line above): the restart step then ends with the server's log, rather than waiting
/// out its deadline for a line that will not come.
const RECONCILE_FAILED: &str = "start-up reconciliation failed";

/// One figure at one fleet size.
#[derive(Debug, Clone, Serialize)]
struct SimRow {
    n: usize,
    name: String,
    unit: &'static str,
    value: Summary,
    /// The simulated engine's own time for the same call, where there is one.
    floor: Option<Summary>,
    target: String,
    met: Option<bool>,
    /// Not measured (the endpoint does not exist yet): shown as a dash.
    skipped: bool,
}

impl SimRow {
    fn new(n: usize, name: impl Into<String>, unit: &'static str, value: Summary) -> Self {
        Self {
            n,
            name: name.into(),
            unit,
            value,
            floor: None,
            target: String::new(),
            met: None,
            skipped: false,
        }
    }

    /// A figure that could not be taken, and why.
    fn skipped(n: usize, name: impl Into<String>, why: &str) -> Self {
        let mut r = Self::new(n, name, "ms", Summary::of(&[0.0])).note(why);
        r.skipped = true;
        r
    }

    fn floor(mut self, floor: Summary) -> Self {
        self.floor = Some(floor);
        self
    }

    fn target(mut self, target: &str, met: bool) -> Self {
        self.target = target.into();
        self.met = Some(met);
        self
    }

    /// A target that applies at 10,000 bots only: judged there, shown for context elsewhere.
    fn target_at_10k(self, target: &str, met: bool) -> Self {
        if self.n >= 10_000 {
            self.target(target, met)
        } else {
            self.note(&format!("({target} at 10,000)"))
        }
    }

    fn note(mut self, note: &str) -> Self {
        self.target = note.into();
        self
    }
}

/// Fleet sizes and repetitions of a simulation run.
struct SimPlan {
    /// Where the burst of concurrent lists is measured (the 500 real bots); none
    /// with `--sim-sizes`.
    burst_at: Option<usize>,
    /// Fleet sizes measured in full.
    sizes: Vec<usize>,
    /// Repetitions of the one-at-a-time list at `burst_at`.
    reps: usize,
}

impl SimPlan {
    fn of(plan: &Plan) -> Self {
        if let Some(sizes) = &plan.sim_sizes {
            Self {
                burst_at: None,
                sizes: sizes.clone(),
                reps: plan.read_reps.min(21),
            }
        } else if plan.mode == "quick" {
            Self {
                burst_at: Some(100),
                sizes: vec![300, 1000],
                reps: 5,
            }
        } else {
            Self {
                burst_at: Some(500),
                sizes: vec![1000, 10_000],
                reps: plan.read_reps.min(21),
            }
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn rss_mb(server: &ServerProc) -> Result<f64, String> {
    let pid = server.pid().ok_or("server not running")?;
    procfs::rss(pid)
        .map(|(now, _)| mb(now))
        .ok_or_else(|| "no RSS in /proc".to_string())
}

/// Nearest-rank percentile of `sorted`.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Requests the fake answered, without the stats calls the sampler makes all the time and the
/// reconciler's heartbeat ping (one a second, to bound the watch cache's staleness).
fn busy_calls(fake: &FakeEngine) -> u64 {
    fake.counts()
        .iter()
        .filter(|(route, _)| !route.ends_with("/stats") && !route.ends_with("/_ping"))
        .map(|(_, n)| n)
        .sum()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, route: &str) -> u64 {
    after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0)
}

struct Sim {
    plan: SimPlan,
    fake: FakeEngine,
    floor: Engine,
    instance: String,
    rows: Vec<SimRow>,
}

/// Runs the simulation and writes `sim.md` and `sim.json` into `plan.out`.
pub async fn run(plan: Plan) -> Result<(), String> {
    let tmp = tempfile::Builder::new()
        .prefix("botmaker-sim")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let socket = tmp.path().join("engine.sock");
    let fake = FakeEngine::start(FakeConfig {
        listen: Listen::Unix(socket.clone()),
        ..FakeConfig::default()
    })
    .await
    .map_err(|e| format!("starting the simulated engine: {e}"))?;
    fake.add_image(SIM_IMAGE);
    let bin = super::fixture::build_server()?;
    let instance = format!("sim-{}", std::process::id());
    let dir = tmp.path().join("server");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut server = ServerProc::new(&bin, &dir, &instance)?
        .docker_host(fake.host())
        .log_filter("warn,botmaker::serve=info,botmaker::app=info");
    let load_before = loadavg();
    let mut sim = Sim {
        plan: SimPlan::of(&plan),
        floor: Engine::at(&socket, "1.41"),
        fake,
        instance: instance.clone(),
        rows: Vec::new(),
    };
    let result = sim.all(&mut server).await;
    if result.is_err() {
        eprintln!("server log (last lines):\n{}", server.log_tail());
    }
    let _ = server.stop().await;
    let meta = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "host": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average": [load_before, loadavg()],
        "engine": "simulated Docker Engine 20.10 (fixtures/fake-engine), API 1.41, unix socket, stats on a 1 s tick",
        "mode": plan.mode,
        "sizes": sim.plan.sizes,
        "burst_at": sim.plan.burst_at,
        "reps": sim.plan.reps,
        "server_binary": bin.display().to_string(),
        "revision": git_revision(),
        "wall_secs": started().elapsed().as_secs(),
        "error": result.as_ref().err(),
    });
    if !sim.rows.is_empty() {
        let md = write(&plan.out, &sim.rows, &meta)?;
        println!("{md}");
        say(format!(
            "wrote {} and sim.json",
            plan.out.join("sim.md").display()
        ));
    }
    result
}

impl Sim {
    async fn all(&mut self, server: &mut ServerProc) -> Result<(), String> {
        let up = server.start().await?;
        server.login().await?;
        self.rows.push(
            SimRow::new(0, "start-up: spawn → /health 200", "ms", Summary::ms(&[up]))
                .note("context"),
        );
        let mut have = 0;
        let mut steps: Vec<usize> = self.plan.burst_at.into_iter().collect();
        steps.extend(self.plan.sizes.iter().copied());
        for n in steps {
            self.create(server, have, n).await?;
            have = n;
            self.settle().await;
            if Some(n) == self.plan.burst_at {
                self.burst(server, n).await?;
                // A fresh process for the next size: memory figures must not carry the
                // burst's high-water mark.
                server.stop().await?;
                server.start().await?;
                self.settle().await;
            } else {
                self.measure(server, n).await?;
            }
        }
        Ok(())
    }

    /// Creates bots `from..to` through the API, `CREATE_CONCURRENCY` at a time.
    async fn create(&self, server: &ServerProc, from: usize, to: usize) -> Result<(), String> {
        say(format!("creating bots {from}..{to} through POST /api/bots"));
        let t = Instant::now();
        let results: Vec<Result<Value, String>> = futures_util::stream::iter(from..to)
            .map(|i| {
                let body = json!({ "id": format!("sim{i}"), "image": SIM_IMAGE, "start": true });
                async move {
                    server
                        .expect(201, Method::POST, "/api/bots", Some(&body))
                        .await
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            return Err(e);
        }
        say(format!(
            "created {} bots in {:.1} s",
            to - from,
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Waits until the server's reaction to what just happened (events, inspects, the
    /// sampler placing new containers) has died down: a second without any call but stats.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut last = busy_calls(&self.fake);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = busy_calls(&self.fake);
            if now - last <= 1 {
                return;
            }
            last = now;
        }
        say("the server did not settle within 300 s; measuring anyway");
    }

    /// One `GET /api/bots`, checked to list `n` bots.
    async fn list(server: &ServerProc, n: usize) -> Result<Duration, String> {
        let (d, status, body) = server.timed_get("/api/bots").await?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let got = v["bots"].as_array().map_or(0, Vec::len);
        if status != 200 || got != n {
            return Err(format!("GET /api/bots: {status}, {got} bots, expected {n}"));
        }
        Ok(d)
    }

    /// One `GET /api/bots` among many at once: the body is not parsed (the bench shares the
    /// server's two cores), only its size compared with `expected_len`. Returns the time and
    /// whether the server answered with the whole list; a refusal under load (503 when its
    /// Docker list call times out) is a result to report, not an error of the bench.
    async fn list_quick(
        server: &ServerProc,
        expected_len: usize,
    ) -> Result<(Duration, bool), String> {
        let (d, status, body) = server.timed_get("/api/bots").await?;
        // Fields like uptimes change between requests; the same bots' list stays within a
        // few percent of one size.
        Ok((d, status == 200 && body.len() >= expected_len * 9 / 10))
    }

    /// What the dashboard's fleet page costs to open: the page, then the two API reads its
    /// script makes together (`/api/bots`, `/api/stats`), all with the session cookie.
    async fn fleet_page(server: &ServerProc) -> Result<(Duration, usize), String> {
        let t = Instant::now();
        let (_, status, page) = server.timed_page("/").await?;
        if status != 200 {
            return Err(format!("GET / (fleet page): {status}"));
        }
        let (bots, stats) = tokio::join!(
            server.timed_page("/api/bots"),
            server.timed_page("/api/stats")
        );
        let (bots, stats) = (bots?, stats?);
        if bots.1 != 200 || stats.1 != 200 {
            return Err(format!("fleet page data: {} / {}", bots.1, stats.1));
        }
        Ok((t.elapsed(), page.len() + bots.2.len() + stats.2.len()))
    }

    /// `BURST` concurrent `GET /api/bots`, `BURST_ROUNDS` times: latency percentiles.
    async fn burst(&mut self, server: &ServerProc, n: usize) -> Result<(), String> {
        say(format!("{BURST} concurrent GET /api/bots at N={n}"));
        let mut seq = Vec::new();
        for _ in 0..=self.plan.reps {
            seq.push(Self::list(server, n).await?);
        }
        seq.remove(0);
        self.rows.push(
            SimRow::new(n, "GET /api/bots, one at a time", "ms", Summary::ms(&seq)).target(
                "≤ 2 ms p50 (at 500 real bots)",
                Summary::ms(&seq).median <= 2.0,
            ),
        );
        let len = server.timed_get("/api/bots").await?.2.len();
        let mut all = Vec::new();
        let mut walls = Vec::new();
        let mut failed = 0;
        for _ in 0..BURST_ROUNDS {
            let t = Instant::now();
            let lat =
                futures_util::future::join_all((0..BURST).map(|_| Self::list_quick(server, len)))
                    .await;
            walls.push(t.elapsed());
            for l in lat {
                let (d, ok) = l?;
                failed += usize::from(!ok);
                all.push(d.as_secs_f64() * 1e3);
            }
        }
        let failures = format!("{failed} of {} answered without the list", all.len());
        all.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&all, 0.50), percentile(&all, 0.99));
        self.rows.push(
            SimRow::new(
                n,
                format!(
                    "{BURST} concurrent GET /api/bots: p50 of {} requests",
                    all.len()
                ),
                "ms",
                Summary::of(&[p50]),
            )
            .note(&format!("context; {failures}")),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!(
                    "{BURST} concurrent GET /api/bots: p99 of {} requests",
                    all.len()
                ),
                "ms",
                Summary::of(&[p99]),
            )
            .target("≤ 100 ms p99 (at 500 real bots)", p99 <= 100.0),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!("{BURST} concurrent GET /api/bots: wall time of a burst"),
                "ms",
                Summary::ms(&walls),
            )
            .note("context"),
        );
        Ok(())
    }

    /// Everything measured at fleet size `n`.
    async fn measure(&mut self, server: &mut ServerProc, n: usize) -> Result<(), String> {
        // The timed lists are the sequential ones the memory figure is about: a warm-up and
        // `reps`, `SEQUENTIAL_LISTS` in all.
        let reps = SEQUENTIAL_LISTS - 1;
        let rss_idle = rss_mb(server)?;

        say(format!(
            "GET /api/bots at N={n}, {reps} reps beside the fake's own list"
        ));
        let path = format!(
            "/containers/json?all=true&filters={}",
            instance_filter(&self.instance)
        );
        let mut conn = self.floor.connect().await?;
        let before = self.fake.counts();
        let (mut ours, mut raw, mut size) = (Vec::new(), Vec::new(), 0);
        for rep in 0..=reps {
            let t = Instant::now();
            let r = conn.call("GET", &path, None).await?.ok("list")?;
            let d = t.elapsed();
            let got = serde_json::from_slice::<Vec<Value>>(&r.body).map_or(0, |l| l.len());
            if got != n {
                return Err(format!("the fake lists {got} containers, expected {n}"));
            }
            let (ours_d, status, body) = server.timed_get("/api/bots").await?;
            if status != 200 {
                return Err(format!("GET /api/bots: {status}"));
            }
            size = body.len();
            if rep > 0 {
                raw.push(d);
                ours.push(ours_d);
            }
        }
        let rss_seq = rss_mb(server)?;
        let after = self.fake.counts();
        let lists = delta(&after, &before, "GET /containers/json");
        let inspects = delta(&after, &before, "GET /containers/{id}/json");
        let per = |x: u64| x as f64 / (reps + 1) as f64;
        let list_ms = Summary::ms(&ours);
        self.rows.push(
            SimRow::new(n, "GET /api/bots", "ms", list_ms)
                .floor(Summary::ms(&raw))
                .target_at_10k("≤ 50 ms", list_ms.median <= 50.0),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!("GET /api/bots: response size ({} bots)", n),
                "MB",
                Summary::of(&[mb(size as u64)]),
            )
            .note("context"),
        );
        self.rows.push(
            SimRow::new(
                n,
                "Docker calls per GET /api/bots",
                "calls",
                Summary::of(&[per(lists + inspects) - 1.0]),
            )
            .note(&format!(
                "{:.1} list(s), {:.1} inspect(s) per request",
                per(lists) - 1.0,
                per(inspects)
            )),
        );

        say(format!("GET /api/stats and the fleet page at N={n}"));
        let mut stats = Vec::new();
        let mut page = Vec::new();
        let mut page_size = 0;
        for rep in 0..=reps {
            let (d, status, _) = server.timed_get("/api/stats").await?;
            if status != 200 {
                return Err(format!("GET /api/stats: {status}"));
            }
            let (p, size) = Self::fleet_page(server).await?;
            page_size = size;
            if rep > 0 {
                stats.push(d);
                page.push(p);
            }
        }
        self.rows
            .push(SimRow::new(n, "GET /api/stats", "ms", Summary::ms(&stats)).note("context"));
        self.metrics(server, n, reps).await?;
        self.rows.push(
            SimRow::new(
                n,
                format!(
                    "dashboard fleet page: GET /, then /api/bots and /api/stats together ({:.2} MB)",
                    mb(page_size as u64)
                ),
                "ms",
                Summary::ms(&page),
            )
            .note("context"),
        );

        say(format!("memory at N={n}: concurrent lists"));
        let len = server.timed_get("/api/bots").await?.2.len();
        let t = Instant::now();
        let results = futures_util::future::join_all(
            (0..CONCURRENT_LISTS).map(|_| Self::list_quick(server, len)),
        )
        .await;
        let burst = t.elapsed();
        let mut failed = 0;
        for r in results {
            failed += usize::from(!r?.1);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_conc = rss_mb(server)?;
        self.rows.push(
            SimRow::new(
                n,
                "server RSS, idle after creating the fleet",
                "MB",
                Summary::of(&[rss_idle]),
            )
            .note("context"),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!("server RSS after {SEQUENTIAL_LISTS} sequential lists"),
                "MB",
                Summary::of(&[rss_seq]),
            )
            .target_at_10k("≤ 100 MB", rss_seq <= 100.0),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!("server RSS after {CONCURRENT_LISTS} concurrent lists"),
                "MB",
                Summary::of(&[rss_conc]),
            )
            .target_at_10k("≤ 100 MB", rss_conc <= 100.0),
        );
        self.rows.push(
            SimRow::new(
                n,
                format!("{CONCURRENT_LISTS} concurrent GET /api/bots: wall time"),
                "ms",
                Summary::ms(&[burst]),
            )
            .note(&format!(
                "context; {failed} of {CONCURRENT_LISTS} answered without the list"
            )),
        );
        self.restart(server, n).await
    }

    /// `GET /metrics`, measured once the server has it; until then the table says so.
    async fn metrics(&mut self, server: &ServerProc, n: usize, reps: usize) -> Result<(), String> {
        let (_, status, _) = server.timed_get("/metrics").await?;
        if status == 404 {
            self.rows.push(SimRow::skipped(
                n,
                "GET /metrics",
                "not measured: the server has no /metrics yet",
            ));
            return Ok(());
        }
        let mut times = Vec::new();
        for _ in 0..reps {
            let (d, status, _) = server.timed_get("/metrics").await?;
            if status != 200 {
                return Err(format!("GET /metrics: {status}"));
            }
            times.push(d);
        }
        self.rows
            .push(SimRow::new(n, "GET /metrics", "ms", Summary::ms(&times)).note("context"));
        Ok(())
    }

    /// Stops and starts the server over `n` bots: time to `/health`, to the end of the
    /// start-up reconciliation, the Docker calls that took, memory, and how many bots have a
    /// stats sample a little later.
    async fn restart(&mut self, server: &mut ServerProc, n: usize) -> Result<(), String> {
        say(format!("restart with N={n}"));
        server.stop().await?;
        let log = server.log_text();
        let seen = log.matches(RECONCILED).count();
        let failed_before = log.matches(RECONCILE_FAILED).count();
        let before = self.fake.counts();
        let t = Instant::now();
        let up = server.start().await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let reconciled = loop {
            let log = server.log_text();
            if log.matches(RECONCILED).count() > seen {
                break t.elapsed();
            }
            if log.matches(RECONCILE_FAILED).count() > failed_before {
                return Err(format!(
                    "the start-up reconciliation over {n} bots failed; the server's log:\n{}",
                    server.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("no {RECONCILED:?} within 600 s"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let after = self.fake.counts();
        let calls: u64 = after
            .iter()
            .filter(|(r, _)| !r.ends_with("/stats"))
            .map(|(r, _)| delta(&after, &before, r))
            .sum();
        let inspects = delta(&after, &before, "GET /containers/{id}/json");
        self.rows.push(
            SimRow::new(n, "start-up: spawn → /health 200", "ms", Summary::ms(&[up]))
                .target_at_10k("≤ 2 s", up <= Duration::from_secs(2)),
        );
        self.rows.push(
            SimRow::new(
                n,
                "start-up: spawn → start-up reconciliation complete",
                "ms",
                Summary::ms(&[reconciled]),
            )
            .note("context"),
        );
        self.rows.push(
            SimRow::new(
                n,
                "start-up: Docker calls until reconciled (stats excluded)",
                "calls",
                Summary::of(&[calls as f64]),
            )
            .note(&format!(
                "{inspects} container inspects (reconciler's and the sampler's placement)"
            )),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.rows.push(
            SimRow::new(
                n,
                "server RSS 1 s after the start-up reconciliation",
                "MB",
                Summary::of(&[rss_mb(server)?]),
            )
            .note("context"),
        );
        let left = STATS_COVERAGE_AFTER.saturating_sub(t.elapsed());
        tokio::time::sleep(left).await;
        let (status, v) = server.call(Method::GET, "/api/stats", None).await?;
        if status != 200 {
            return Err(format!("GET /api/stats: {status}"));
        }
        let sampled = v["stats"].as_array().map_or(0, Vec::len);
        let (_, health) = server.call(Method::GET, "/health", None).await?;
        self.rows.push(
            SimRow::new(
                n,
                format!(
                    "bots with a stats sample {} s after spawn",
                    STATS_COVERAGE_AFTER.as_secs()
                ),
                "bots",
                Summary::of(&[sampled as f64]),
            )
            .note(&format!(
                "of {n}; source {}",
                health["stats"]["source"].as_str().unwrap_or("?")
            )),
        );
        self.settle().await;
        Ok(())
    }
}

/// The 1-minute load average: the machine is shared, and the figures move with it.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn markdown(rows: &[SimRow], meta: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} on {} ({} cores, 1-minute load average {} at the start, {} at the end), {}, \
         mode `{}`, revision `{}`.\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["host"].as_str().unwrap_or("?"),
        meta["cores"],
        meta["load_average"][0],
        meta["load_average"][1],
        meta["engine"].as_str().unwrap_or("?"),
        meta["mode"].as_str().unwrap_or("?"),
        meta["revision"].as_str().unwrap_or("?"),
    );
    out.push_str(
        "| N | measurement | botmaker: median (min–max) | the simulated engine alone | target (issue #16) | verdict |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.n,
            r.name,
            if r.skipped {
                "—".to_string()
            } else {
                cell(&r.value, r.unit)
            },
            r.floor
                .as_ref()
                .map_or_else(|| "—".to_string(), |f| cell(f, r.unit)),
            if r.target.is_empty() {
                "—"
            } else {
                &r.target
            },
            verdict
        );
    }
    out
}

fn write(dir: &Path, rows: &[SimRow], meta: &Value) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let md = markdown(rows, meta);
    std::fs::write(dir.join("sim.md"), &md).map_err(|e| format!("writing sim.md: {e}"))?;
    let json = json!({ "meta": meta, "rows": rows });
    std::fs::write(
        dir.join("sim.json"),
        serde_json::to_string_pretty(&json).expect("serializable") + "\n",
    )
    .map_err(|e| format!("writing sim.json: {e}"))?;
    Ok(md)
}
