//! `cargo bench --bench fleet` (`scripts/bench` runs it): what botmaker costs on top of the
//! Docker Engine, measured side by side with the floor (the same Engine API calls made by hand
//! over the daemon's socket) in one run, written to `target/bench/results.{md,json}`.
//!
//! The server under test is the real release binary run as a child process, so its memory
//! and CPU are read from /proc/<pid> and its API is timed across a real socket. Everything the
//! bench creates carries its own instance labels (`bench-<pid>`, `bench-<pid>-floor`) and is
//! removed at the end, also on panic or Ctrl-C. docs/benchmarks.md explains every figure.

#[path = "fleet/engine.rs"]
mod engine;
#[path = "fleet/fixture.rs"]
mod fixture;
#[path = "fleet/guard.rs"]
mod guard;
#[path = "fleet/ops.rs"]
mod ops;
#[path = "fleet/procfs.rs"]
mod procfs;
#[path = "fleet/report.rs"]
mod report;
#[path = "fleet/server.rs"]
mod server;
#[path = "fleet/sim.rs"]
mod sim;
#[path = "fleet/summary.rs"]
mod summary;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use botmaker::BotId;
use botmaker::docker::{DockerService, DockerSettings};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use engine::{Conn, Engine, instance_filter};
use guard::{Guard, containers_of, remove_all};
use ops::{Floor, OPS, Op, WAYS, Way};
use procfs::{CpuWindow, Daemon};
use report::Row;
use server::ServerProc;
use summary::{Samples, Summary};

const USAGE: &str = "\
usage: cargo bench --bench fleet -- [--sim] [--quick] [--reps N] [--concurrency N] [--out DIR]

  --sim            against the simulated engine (fixtures/fake-engine) instead of the real one:
                   500, 1,000 and 10,000 bots; writes sim.md and sim.json (no Docker needed)
  --stats-fleet N  only the stats sampler over N running bots (e.g. 500): sample age, and the
                   CPU of botmaker and the daemon over 60 s windows, running and frozen
  --sim-sizes N,M  with --sim: measure only these fleet sizes in full (e.g. 100,500 for the
                   /metrics scrape figures), without the burst of concurrent lists
  --quick          smoke run: small fleets, 2 repetitions, short CPU windows (~4 min)
  --reps N         repetitions of every expensive measurement (default 5; cheap ones do more)
  --concurrency N  concurrency of `apply` and of its raw floor (default 4, the CLI's default)
  --out DIR        where results.md and results.json go (default target/bench)

Environment: DOCKER_HOST (unix socket), BOTMAKER_BIN (server binary; default: built with
`cargo build --release --bin botmaker` in target/server).";

/// What a run measures, and how much.
#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    /// Against the simulated engine (`--sim`), not the real one.
    sim: bool,
    /// Only the stats sampler over this many running bots (`--stats-fleet N`).
    stats_fleet: Option<usize>,
    /// With `--sim`: only these sizes, in full (`--sim-sizes N,M`).
    sim_sizes: Option<Vec<usize>>,
    /// Repetitions of expensive measurements (apply, CPU windows, restarts).
    reps: usize,
    /// Repetitions of each lifecycle operation, per way.
    op_reps: usize,
    /// Repetitions of cheap reads (lists, cached stats).
    read_reps: usize,
    concurrency: usize,
    /// Fleet sizes: the small one (lists, stats), the `apply` one, the registry-only one.
    small_n: usize,
    mid_n: usize,
    big_n: usize,
    small_window: Duration,
    mid_window: Duration,
    /// Time for the server to catch up after being thawed, before the next window.
    settle: Duration,
    out: PathBuf,
}

impl Plan {
    fn from_args() -> Result<Self, String> {
        let mut plan = Plan {
            mode: "full",
            sim: false,
            stats_fleet: None,
            sim_sizes: None,
            reps: 5,
            op_reps: 15,
            read_reps: 21,
            concurrency: 4,
            small_n: 10,
            mid_n: 100,
            big_n: 500,
            small_window: Duration::from_secs(20),
            mid_window: Duration::from_secs(60),
            settle: Duration::from_secs(5),
            out: fixture::workspace_root().join("target/bench"),
        };
        let mut reps = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                // `cargo bench` passes --bench to every bench binary.
                "--bench" => {}
                "--sim" => plan.sim = true,
                "--sim-sizes" => {
                    let sizes = value("--sim-sizes")?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().map(|n| n.max(1)))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| "--sim-sizes needs numbers, e.g. 100,500")?;
                    plan.sim_sizes = Some(sizes);
                }
                "--stats-fleet" => {
                    let n: usize = value("--stats-fleet")?
                        .parse()
                        .map_err(|_| "--stats-fleet needs a number")?;
                    plan.stats_fleet = Some(n.max(1));
                    plan.mode = "stats-fleet";
                }
                "--quick" => {
                    plan.mode = "quick";
                    plan.op_reps = 2;
                    plan.read_reps = 5;
                    plan.small_n = 3;
                    plan.mid_n = 10;
                    plan.big_n = 20;
                    plan.small_window = Duration::from_secs(10);
                    plan.mid_window = Duration::from_secs(10);
                    plan.settle = Duration::from_secs(5);
                    reps.get_or_insert(2);
                }
                "--reps" => {
                    let n: usize = value("--reps")?
                        .parse()
                        .map_err(|_| "--reps needs a number")?;
                    reps = Some(n.max(1));
                }
                "--concurrency" => {
                    let n: usize = value("--concurrency")?
                        .parse()
                        .map_err(|_| "--concurrency needs a number")?;
                    plan.concurrency = n.clamp(1, 64);
                }
                "--out" => plan.out = PathBuf::from(value("--out")?),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if let Some(r) = reps {
            plan.reps = r;
            if plan.mode == "full" {
                plan.op_reps = plan.op_reps.max(r);
                plan.read_reps = plan.read_reps.max(r);
            }
        }
        Ok(plan)
    }
}

fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Progress on stderr, stamped with the time since the start.
fn say(msg: impl std::fmt::Display) {
    let t = started().elapsed().as_secs();
    eprintln!("[{:>2}:{:02}] {msg}", t / 60, t % 60);
}

fn main() -> ExitCode {
    started();
    let plan = match Plan::from_args() {
        Ok(p) => p,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        let bench = async move {
            if plan.sim {
                sim::run(plan).await
            } else {
                run(plan).await
            }
        };
        tokio::select! {
            r = bench => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether this build of the binary has `botmaker apply`.
fn cli_apply_available(bin: &std::path::Path) -> bool {
    std::process::Command::new(bin)
        .args(["apply", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn git_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(fixture::workspace_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) if git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()) => {
            format!("{rev}+dirty")
        }
        Some(rev) => rev,
        None => "unknown".into(),
    }
}

async fn run(plan: Plan) -> Result<(), String> {
    let pid = std::process::id();
    let server_instance = format!("bench-{pid}");
    let floor_instance = format!("bench-{pid}-floor");
    let docker = DockerService::connect(DockerSettings {
        instance: floor_instance.clone(),
        ..DockerSettings::default()
    })
    .await
    .map_err(|e| {
        format!("{e}\nThe bench needs a Docker Engine: run scripts/bench, which starts one.")
    })?;
    let api = docker.api_version();
    let engine = Engine::from_env(&api)?;
    let version: Value = {
        let mut c = engine.connect().await?;
        let r = c.call("GET", "/version", None).await?.ok("version")?;
        serde_json::from_slice(&r.body).map_err(|e| e.to_string())?
    };
    match guard::sweep_stale(&engine).await {
        Ok(0) => {}
        Ok(n) => say(format!("removed {n} containers left by killed bench runs")),
        Err(e) => say(format!(
            "could not sweep containers of killed bench runs: {e}"
        )),
    }
    say("fixture image");
    let image = fixture::ensure(docker.client()).await?;
    let guard = Guard::new(
        engine.clone(),
        vec![server_instance.clone(), floor_instance.clone()],
        image.built_here.then(|| image.tag.clone()),
    );
    let bin = fixture::build_server()?;
    let apply_cli = cli_apply_available(&bin);
    let tmp = tempfile::Builder::new()
        .prefix("botmaker-bench")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let server_dir = tmp.path().join("server");
    std::fs::create_dir_all(&server_dir).map_err(|e| e.to_string())?;
    let daemon = Daemon::find()?;
    let mut server = ServerProc::new(&bin, &server_dir, &server_instance)?;

    let mut bench = Bench {
        plan: plan.clone(),
        floor: Floor {
            engine,
            docker,
            image: image.tag.clone(),
            instance: floor_instance,
            dir: tmp.path().join("floor"),
        },
        server_instance: server_instance.clone(),
        daemon,
        ticks: procfs::clock_ticks(),
        prefix: format!("b{pid}"),
        apply_cli,
        tmp: tmp.path().to_path_buf(),
        rows: Vec::new(),
        saved: BTreeMap::new(),
        fleet: Vec::new(),
    };
    let result = bench.all(&mut server).await;
    if result.is_err() {
        eprintln!("server log (last lines):\n{}", server.log_tail());
    }
    let _ = server.stop().await;
    drop(server);
    say("cleanup: removing the bench's containers");
    let left = guard.finish().await;
    for l in &left {
        eprintln!("bench: cleanup: {l}");
    }

    let meta = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "host": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "engine_version": version["Version"],
        "api_version": api,
        "mode": plan.mode,
        "reps": plan.reps,
        "op_reps": plan.op_reps,
        "read_reps": plan.read_reps,
        "concurrency": plan.concurrency,
        "fleet_sizes": [plan.small_n, plan.mid_n, plan.big_n],
        "cpu_windows_secs": [plan.small_window.as_secs(), plan.mid_window.as_secs()],
        "apply_method": if apply_cli { "botmaker apply (CLI)" } else { "POST /api/bots (CLI apply not available in this build)" },
        "server_binary": bin.display().to_string(),
        "instance": server_instance,
        "revision": git_revision(),
        "wall_secs": started().elapsed().as_secs(),
        "error": result.as_ref().err(),
        "cleanup_left": left,
    });
    let mut rows = bench.rows;
    rows.sort_by_key(|r| r.section);
    if !rows.is_empty() {
        let md = report::write(&plan.out, &rows, &meta)?;
        println!("{md}");
        say(format!(
            "wrote {0}/results.md and {0}/results.json",
            plan.out.display()
        ));
    }
    result
}

struct Bench {
    plan: Plan,
    floor: Floor,
    server_instance: String,
    daemon: Daemon,
    ticks: f64,
    /// Prefix of every bot id of this run.
    prefix: String,
    apply_cli: bool,
    tmp: PathBuf,
    rows: Vec<Row>,
    /// Figures kept for rows that compare phases.
    saved: BTreeMap<String, Summary>,
    /// Ids of the running fleet `apply` left.
    fleet: Vec<String>,
}

/// The `(id, read time)` of every sample in a `GET /api/stats` body.
fn parse_stats(body: &[u8]) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("GET /api/stats: {e}"))?;
    v["stats"]
        .as_array()
        .ok_or("GET /api/stats: no stats array")?
        .iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap_or_default().to_string();
            let read = s["read"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| format!("GET /api/stats: sample of {id} has no read time"))?;
            Ok((id, read.with_timezone(&chrono::Utc)))
        })
        .collect()
}

fn bot(id: &str) -> BotId {
    BotId::new(id).unwrap_or_else(|e| panic!("bench bot id {id:?}: {e}"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs `jobs` on `conns.len()` workers, each with its own keep-alive connection, pulling the
/// next job when done (what `buffer_unordered` does for the HTTP side).
async fn raw_parallel<J, F, Fut>(conns: Vec<Conn>, jobs: Vec<J>, f: F) -> Result<Vec<Conn>, String>
where
    F: Fn(Conn, J) -> Fut,
    Fut: Future<Output = Result<Conn, String>>,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let workers = conns.into_iter().map(|mut conn| {
        let (queue, f) = (queue.clone(), &f);
        async move {
            loop {
                let job = queue.lock().expect("queue").pop_front();
                let Some(job) = job else { return Ok(conn) };
                conn = f(conn, job).await?;
            }
        }
    });
    futures_util::future::try_join_all(workers).await
}

impl Bench {
    async fn all(&mut self, server: &mut ServerProc) -> Result<(), String> {
        say(format!(
            "starting botmaker serve ({} mode; apply via {})",
            self.plan.mode,
            if self.apply_cli {
                "the CLI"
            } else {
                "the HTTP API: CLI apply not available"
            }
        ));
        server.start().await?;
        server.login().await?;
        if let Some(n) = self.plan.stats_fleet {
            return self.stats_fleet(server, n).await;
        }
        self.idle(server).await?;
        self.lifecycle(server).await?;
        self.small_fleet(server).await?;
        self.apply(server).await?;
        self.mid_fleet(server).await?;
        self.big_fleet(server).await?;
        Ok(())
    }

    /// Raw create+start of every `(bot, create body)`, on `concurrency` fresh connections.
    async fn raw_create_start(
        &self,
        jobs: Vec<(BotId, Vec<u8>)>,
        concurrency: usize,
    ) -> Result<(), String> {
        let conns = self.conns(concurrency).await?;
        self.raw_create_start_on(conns, jobs).await
    }

    /// Raw create+start of every `(bot, create body)` on `conns`, pulling from one queue.
    async fn raw_create_start_on(
        &self,
        conns: Vec<Conn>,
        jobs: Vec<(BotId, Vec<u8>)>,
    ) -> Result<(), String> {
        let floor = &self.floor;
        raw_parallel(conns, jobs, |mut conn, (id, body)| async move {
            floor.raw(&mut conn, Op::CreateStart, &id, &body).await?;
            Ok(conn)
        })
        .await
        .map(drop)
    }

    async fn conns(&self, n: usize) -> Result<Vec<Conn>, String> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.floor.engine.connect().await?);
        }
        Ok(v)
    }

    /// What a user does first: log in (an argon2 verification, as the dashboard does), list
    /// the bots, read the stats.
    async fn warm(&self, server: &mut ServerProc) -> Result<(), String> {
        server.login().await?;
        server.expect(200, Method::GET, "/api/bots", None).await?;
        server.expect(200, Method::GET, "/api/stats", None).await?;
        server.expect(200, Method::GET, "/health", None).await?;
        Ok(())
    }

    /// Restarts the server `reps` times: time to `/health`, and RSS `after` the start.
    async fn restarts(
        &self,
        server: &mut ServerProc,
        after: Duration,
    ) -> Result<(Summary, Summary), String> {
        let (mut up, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..self.plan.reps {
            server.stop().await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            up.push(server.start().await?);
            self.warm(server).await?;
            tokio::time::sleep(after).await;
            let pid = server.pid().ok_or("server gone")?;
            rss.push(mb(procfs::rss(pid).ok_or("no RSS in /proc")?.0));
        }
        Ok((Summary::ms(&up), Summary::of(&rss)))
    }

    /// (5) with an empty registry: start-up time and idle memory.
    async fn idle(&mut self, server: &mut ServerProc) -> Result<(), String> {
        say("(5) start-up and memory with no bots");
        let (up, rss) = self.restarts(server, Duration::from_secs(1)).await?;
        self.saved.insert("startup0".into(), up);
        self.saved.insert("rss0".into(), rss);
        Ok(())
    }

    /// (1) every lifecycle operation, each of the four ways, interleaved.
    async fn lifecycle(&mut self, server: &ServerProc) -> Result<(), String> {
        say(format!(
            "(1) lifecycle: {} reps x 5 ways x 5 operations",
            self.plan.op_reps
        ));
        let mut conn = self.floor.engine.connect().await?;
        let mut s = Samples::default();
        let key = |w: Way, op: Op| format!("{}/{}", w.name(), op.name());
        for rep in 0..self.plan.op_reps {
            for k in 0..WAYS.len() {
                // Rotate the order so no way always runs first (or right after another).
                let way = WAYS[(rep + k) % WAYS.len()];
                let tag = match way {
                    Way::Raw => "raw",
                    Way::RawAgain => "raw2",
                    Way::Service => "svc",
                    Way::Http => "http",
                    Way::Cli => "cli",
                };
                let id = bot(&format!("{}-op{rep}-{tag}", self.prefix));
                let config = match way {
                    Way::Http => None,
                    _ => Some(self.floor.config(&id)?),
                };
                let body = config
                    .as_ref()
                    .map(|c| self.floor.create_body(&id, c))
                    .unwrap_or_default();
                for op in OPS {
                    let t = Instant::now();
                    match (way, &config) {
                        (Way::Raw | Way::RawAgain, _) => {
                            self.floor.raw(&mut conn, op, &id, &body).await?
                        }
                        (Way::Service, Some(c)) => self.floor.service(op, &id, c).await?,
                        (Way::Cli, Some(c)) => self.floor.cli(op, &id, c).await?,
                        _ => ops::http(server, op, id.as_str(), &self.floor.image).await?,
                    }
                    s.push_ms(key(way, op), t.elapsed());
                    // Operations are not back to back in real use; let the daemon (and the
                    // server's event watcher) finish with one before timing the next.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                self.floor.forget(&id);
            }
        }
        for _ in 0..self.plan.op_reps {
            let t = Instant::now();
            ops::docker_cli(&["--version"]).await?;
            s.push_ms("cli-startup", t.elapsed());
        }
        let startup = s.get("cli-startup");
        for op in OPS {
            let raw = s.get(&key(Way::Raw, op));
            let floor_name = format!("raw Engine API {}", op.name());
            for way in [Way::RawAgain, Way::Service, Way::Http] {
                // Ways run back to back within a repetition: the median of the per-repetition
                // differences is robust to drift across the run.
                let paired: Vec<f64> = s
                    .values(&key(way, op))
                    .iter()
                    .zip(s.values(&key(Way::Raw, op)))
                    .map(|(a, b)| a - b)
                    .collect();
                let delta = Summary::of(&paired).median;
                let row = Row::info(
                    1,
                    format!("{} {}", way.name(), op.name()),
                    "ms",
                    s.get(&key(way, op)),
                )
                .vs(&floor_name, raw);
                self.rows.push(if way == Way::RawAgain {
                    row.note(format!(
                        "noise of this comparison (paired Δ {delta:+.1} ms)"
                    ))
                } else {
                    row.within(format!("≤ 1.10x (paired Δ {delta:+.1} ms)"), 1.10)
                });
            }
            let n = op.cli_invocations();
            self.rows.push(
                Row::info(
                    1,
                    format!("docker CLI {}", op.name()),
                    "ms",
                    s.get(&key(Way::Cli, op)),
                )
                .vs(&floor_name, raw)
                .note(format!(
                    "context; {n} CLI start-up{} ≈ {:.1} ms",
                    if n > 1 { "s" } else { "" },
                    n as f64 * startup.median
                )),
            );
        }
        self.rows.push(
            Row::info(
                1,
                "docker CLI start-up (`docker --version`, no daemon call)",
                "ms",
                startup,
            )
            .note("context"),
        );
        Ok(())
    }

    /// Creates bots through the API, `concurrency` at a time; returns the wall time.
    async fn create_fleet(
        &self,
        server: &ServerProc,
        ids: &[String],
        start: bool,
        probe: bool,
        concurrency: usize,
    ) -> Result<Duration, String> {
        let image = &self.floor.image;
        let t = Instant::now();
        let failures: Vec<String> = futures_util::stream::iter(ids)
            .map(|id| async move {
                server
                    .expect(
                        201,
                        Method::POST,
                        "/api/bots",
                        Some(&ops::create_request(id, image, start, probe)),
                    )
                    .await
            })
            .buffer_unordered(concurrency)
            .filter_map(|r| std::future::ready(r.err()))
            .collect()
            .await;
        let elapsed = t.elapsed();
        match failures.first() {
            None => Ok(elapsed),
            Some(e) => Err(format!("{} creates failed; first: {e}", failures.len())),
        }
    }

    /// Deletes bots through the API, eight at a time.
    async fn delete_fleet(&self, server: &ServerProc, ids: &[String]) -> Result<(), String> {
        let failures: Vec<String> = futures_util::stream::iter(ids)
            .map(|id| async move {
                server
                    .expect(200, Method::DELETE, &format!("/api/bots/{id}"), None)
                    .await
            })
            .buffer_unordered(8)
            .filter_map(|r| std::future::ready(r.err()))
            .collect()
            .await;
        match failures.first() {
            None => Ok(()),
            Some(e) => Err(format!("{} deletes failed; first: {e}", failures.len())),
        }
    }

    /// Waits until the server's stats cache holds a sample of `n` bots.
    async fn wait_sampled(&self, server: &ServerProc, n: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let v = server.expect(200, Method::GET, "/api/stats", None).await?;
            let have = v["stats"].as_array().map_or(0, Vec::len);
            if have >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the stats cache holds {have} of {n} bots after 300 s"
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// (2) `GET /api/bots` against one raw `containers/json` with the same label filter,
    /// alternating which goes first. Both read the whole body; neither parses it in the timing.
    async fn list(&mut self, server: &ServerProc, n: usize, note: &str) -> Result<(), String> {
        say(format!("(2) GET /api/bots with {n} bots"));
        let path = format!(
            "/containers/json?all=true&filters={}",
            instance_filter(&self.server_instance)
        );
        let mut conn = self.floor.engine.connect().await?;
        let (mut ours, mut raw) = (Vec::new(), Vec::new());
        for rep in 0..=self.plan.read_reps {
            for first in [rep % 2 == 0, rep % 2 == 1] {
                if first {
                    let t = Instant::now();
                    let r = conn.call("GET", &path, None).await?.ok("list")?;
                    let d = t.elapsed();
                    let list: Vec<Value> =
                        serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
                    if list.len() != n {
                        return Err(format!("raw list: {} containers, expected {n}", list.len()));
                    }
                    if rep > 0 {
                        raw.push(d);
                    }
                } else {
                    let (d, status, body) = server.timed_get("/api/bots").await?;
                    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                    let got = v["bots"].as_array().map_or(0, Vec::len);
                    if status != 200 || got != n {
                        return Err(format!("GET /api/bots: {status}, {got} bots, expected {n}"));
                    }
                    if rep > 0 {
                        ours.push(d);
                    }
                }
            }
        }
        let (ours, raw) = (Summary::ms(&ours), Summary::ms(&raw));
        self.saved.insert(format!("list{n}"), ours);
        self.saved.insert(format!("rawlist{n}"), raw);
        let row = Row::info(2, format!("GET /api/bots, N={n} ({note})"), "ms", ours)
            .vs("one raw containers/json, same label filter", raw);
        self.rows.push(if n == self.plan.big_n {
            row.within("≤ 2x", 2.0)
        } else {
            row.note("(≤ 2x at the largest N)")
        });
        Ok(())
    }

    /// (3) `GET /api/stats` from the cache against reading the same figures from the engine:
    /// one one-shot stats call per bot, as many at once as the sampler makes (4).
    async fn stats(&mut self, server: &ServerProc, ids: &[String]) -> Result<(), String> {
        let n = ids.len();
        say(format!("(3) GET /api/stats with {n} running bots"));
        let mut ours = Vec::new();
        for rep in 0..=self.plan.read_reps {
            let (d, status, body) = server.timed_get("/api/stats").await?;
            let got = parse_stats(&body)?.len();
            if status != 200 || got != n {
                return Err(format!(
                    "GET /api/stats: {status}, {got} bots, expected {n}"
                ));
            }
            if rep > 0 {
                ours.push(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let age = self.oldest_sample_age(server).await?;
        let mut raw = Vec::new();
        for _ in 0..self.plan.reps {
            let conns = self.conns(4).await?;
            let jobs: Vec<String> = ids.to_vec();
            let t = Instant::now();
            raw_parallel(conns, jobs, |mut c, id| async move {
                let path = format!("/containers/botmaker-{id}/stats?stream=false&one-shot=true");
                c.call("GET", &path, None).await?.ok("stats")?;
                Ok(c)
            })
            .await?;
            raw.push(t.elapsed());
        }
        let ours = Summary::ms(&ours);
        let row = Row::info(3, format!("GET /api/stats, N={n} running"), "ms", ours).vs(
            format!("{n} raw one-shot stats calls, 4 at a time"),
            Summary::ms(&raw),
        );
        self.rows.push(if n == self.plan.mid_n {
            let met = ours.median < 50.0;
            row.target("< 50 ms", met)
        } else {
            row.note("(< 50 ms at N=100)")
        });
        self.rows.push(
            Row::info(
                3,
                format!("age of the oldest cached sample, N={n} (stats interval 10 s)"),
                "s",
                age,
            )
            .note("context: how fresh the cache is, steady state"),
        );
        Ok(())
    }

    /// How fresh the stats cache is in steady state: once every bot has been read again after
    /// the cache filled (the first round reads each new bot twice and is no guide), the age
    /// of the oldest sample, every 2 s.
    async fn oldest_sample_age(&self, server: &ServerProc) -> Result<Summary, String> {
        let filled = chrono::Utc::now();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (_, _, body) = server.timed_get("/api/stats").await?;
            if parse_stats(&body)?.iter().all(|(_, read)| *read > filled) {
                break;
            }
            if Instant::now() > deadline {
                return Err("the stats cache did not refresh every bot within 300 s".into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut age = Vec::new();
        for _ in 0..self.plan.read_reps.min(10) {
            let (_, _, body) = server.timed_get("/api/stats").await?;
            let now = chrono::Utc::now();
            let oldest = parse_stats(&body)?
                .iter()
                .map(|(_, read)| (now - *read).as_seconds_f64())
                .fold(0.0, f64::max);
            age.push(oldest);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(Summary::of(&age))
    }

    /// `--stats-fleet N`: the sampler over `n` running bots and nothing else. The containers
    /// are made through the raw Engine API with the server's instance label (the sampler
    /// reads every running container of its instance, registered or not), which is quicker
    /// than the API and leaves the server idle but for sampling.
    async fn stats_fleet(&mut self, server: &mut ServerProc, n: usize) -> Result<(), String> {
        say(format!(
            "(3) creating {n} running bots through the raw Engine API"
        ));
        let mut jobs = Vec::with_capacity(n);
        for i in 0..n {
            let id = bot(&format!("{}-t{i}", self.prefix));
            let config = self.floor.config(&id)?;
            let body = serde_json::to_vec(&config.to_create_body(&self.server_instance, &id))
                .map_err(|e| e.to_string())?;
            jobs.push((id, body));
        }
        let t = Instant::now();
        self.raw_create_start(jobs, self.plan.concurrency).await?;
        say(format!(
            "{n} bots running after {:.0} s; waiting for the stats cache to cover them",
            t.elapsed().as_secs_f64()
        ));
        let t = Instant::now();
        self.wait_sampled(server, n).await?;
        let (_, health) = server.call(Method::GET, "/health", None).await?;
        let source = health["stats"]["source"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        self.rows.push(
            Row::info(
                3,
                format!("stats cache covers N={n} running bots, after the last one started"),
                "s",
                Summary::of(&[t.elapsed().as_secs_f64()]),
            )
            .note(format!("context; sampler source: {source}")),
        );
        let age = self.oldest_sample_age(server).await?;
        self.rows.push(
            Row::info(
                3,
                format!("age of the oldest cached sample, N={n} (stats interval 10 s)"),
                "s",
                age,
            )
            .target("≤ 2 × interval = 20 s", age.max <= 20.0),
        );
        self.cpu(server, n, self.plan.mid_window, true).await?;
        // Nothing else runs in the server (no registered bot to probe): its CPU is the
        // sampler's, plus a resync list a minute.
        if let Some(row) = self.rows.last_mut() {
            let met = row.value.median <= 1.0;
            row.name = format!("of which the botmaker process (sampling {n} bots)");
            row.target = "≤ 1 % core".into();
            row.verdict = if met {
                report::Verdict::Met
            } else {
                report::Verdict::Missed
            };
        }
        Ok(())
    }

    /// CPU of the daemon (dockerd, containerd, the bots' shims) and of the server over
    /// windows with the server running and frozen (SIGSTOP), alternating. Returns per-window
    /// figures in % of one core.
    async fn cpu(
        &mut self,
        server: &mut ServerProc,
        n: usize,
        window: Duration,
        with_host: bool,
    ) -> Result<(), String> {
        let ids = containers_of(&self.floor.engine, &self.server_instance).await?;
        let shims = self.daemon.shims(&ids);
        say(format!(
            "(3){} CPU with {n} running bots: {} x 2 windows of {} s ({} shims found)",
            if with_host { "(6)" } else { "" },
            self.plan.reps,
            window.as_secs(),
            shims.len()
        ));
        let pid = server.pid().ok_or("server not running")?;
        let groups: BTreeMap<&'static str, Vec<u32>> = BTreeMap::from([
            ("dockerd", vec![self.daemon.dockerd]),
            ("containerd", self.daemon.containerd.into_iter().collect()),
            ("shims", shims),
            ("botmaker", vec![pid]),
        ]);
        let daemon_of = |u: &procfs::CpuUse| u["dockerd"] + u["containerd"] + u["shims"];
        let mut s = Samples::default();
        tokio::time::sleep(self.plan.settle).await;
        for _ in 0..self.plan.reps {
            let w = CpuWindow::start(groups.clone());
            tokio::time::sleep(window).await;
            let with = w.finish(self.ticks);
            server.pause()?;
            // Let any Docker call the server had in flight finish before counting.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let w = CpuWindow::start(groups.clone());
            tokio::time::sleep(window).await;
            let without = w.finish(self.ticks);
            server.resume()?;
            let (dw, dwo) = (daemon_of(&with), daemon_of(&without));
            s.push("daemon with", dw);
            s.push("daemon without", dwo);
            s.push("daemon delta", dw - dwo);
            s.push("host with", dw + with["botmaker"]);
            s.push("host without", dwo + without["botmaker"]);
            s.push(
                "host delta",
                dw + with["botmaker"] - dwo - without["botmaker"],
            );
            s.push("botmaker", with["botmaker"]);
            // The thawed server catches up on missed ticks; let it before the next window.
            tokio::time::sleep(self.plan.settle).await;
        }
        let delta = s.get("daemon delta");
        let row = Row::info(
            3,
            format!("daemon CPU (dockerd+containerd+shims), N={n} running, botmaker sampling"),
            "% core",
            s.get("daemon with"),
        )
        .vs("same bots, botmaker frozen", s.get("daemon without"));
        self.rows.push(if n == self.plan.mid_n {
            row.target(
                format!(
                    "bounded: Δ ≤ 5 % core (Δ {:+.2}, {:+.3} per bot)",
                    delta.median,
                    delta.median / n as f64
                ),
                delta.median <= 5.0,
            )
        } else {
            row.note(format!(
                "Δ {:+.2} % core ({:+.3} per bot)",
                delta.median,
                delta.median / n as f64
            ))
        });
        if with_host {
            let delta = s.get("host delta");
            self.rows.push(
                Row::info(
                    6,
                    format!(
                        "host CPU (botmaker+dockerd+containerd+shims), N={n} running, \
                         probed + sampled + events, {} s windows",
                        window.as_secs()
                    ),
                    "% core",
                    s.get("host with"),
                )
                .vs("same bots, botmaker frozen", s.get("host without"))
                .target(
                    format!("Δ < 5 % core (Δ {:+.2})", delta.median),
                    delta.median < 5.0,
                ),
            );
            self.rows.push(
                Row::info(
                    6,
                    "of which the botmaker process",
                    "% core",
                    s.get("botmaker"),
                )
                .note("context"),
            );
        }
        Ok(())
    }

    /// (2)+(3) with a few running bots.
    async fn small_fleet(&mut self, server: &mut ServerProc) -> Result<(), String> {
        let n = self.plan.small_n;
        say(format!("creating {n} running bots"));
        let ids: Vec<String> = (0..n).map(|i| format!("{}-s{i}", self.prefix)).collect();
        self.create_fleet(server, &ids, true, true, self.plan.concurrency)
            .await?;
        self.wait_sampled(server, n).await?;
        self.list(server, n, "running").await?;
        self.stats(server, &ids).await?;
        self.cpu(server, n, self.plan.small_window, false).await?;
        say(format!("deleting the {n} bots"));
        self.delete_fleet(server, &ids).await
    }

    /// (4) `apply` of `mid_n` bots against as many raw create+start calls, same concurrency,
    /// alternating. The last apply's bots stay for the next phase.
    async fn apply(&mut self, server: &ServerProc) -> Result<(), String> {
        let (n, c) = (self.plan.mid_n, self.plan.concurrency);
        let mut raw = Vec::new();
        let mut ours = Vec::new();
        for rep in 0..self.plan.reps {
            say(format!(
                "(4) rep {}/{}: {n} raw create+start, {c} at a time",
                rep + 1,
                self.plan.reps
            ));
            let mut jobs = Vec::new();
            for i in 0..n {
                let id = bot(&format!("{}-a{rep}-{i}", self.prefix));
                let config = self.floor.config(&id)?;
                let body = self.floor.create_body(&id, &config);
                jobs.push((id, body));
            }
            let ids: Vec<BotId> = jobs.iter().map(|(id, _)| id.clone()).collect();
            let conns = self.conns(c).await?;
            let t = Instant::now();
            self.raw_create_start_on(conns, jobs).await?;
            raw.push(t.elapsed());
            let left = remove_all(
                &self.floor.engine,
                containers_of(&self.floor.engine, &self.floor.instance).await?,
            )
            .await;
            if let Some(e) = left.first() {
                return Err(e.clone());
            }
            for id in &ids {
                self.floor.forget(id);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;

            say(format!(
                "(4) rep {}/{}: botmaker apply of {n} bots, {c} at a time",
                rep + 1,
                self.plan.reps
            ));
            let ids: Vec<String> = (0..n)
                .map(|i| format!("{}-f{rep}-{i}", self.prefix))
                .collect();
            let took = if self.apply_cli {
                self.apply_cli(server, &ids, c).await?
            } else {
                self.create_fleet(server, &ids, true, true, c).await?
            };
            ours.push(took);
            let v = server.expect(200, Method::GET, "/api/bots", None).await?;
            let running = v["bots"]
                .as_array()
                .map_or(0, |b| b.iter().filter(|b| b["state"] == "running").count());
            if running != n {
                return Err(format!("after apply {running} of {n} bots run"));
            }
            if rep + 1 < self.plan.reps {
                self.delete_fleet(server, &ids).await?;
                tokio::time::sleep(Duration::from_secs(2)).await;
            } else {
                self.fleet = ids;
            }
        }
        let rate = |d: &[Duration]| {
            Summary::of(
                &d.iter()
                    .map(|d| n as f64 / d.as_secs_f64())
                    .collect::<Vec<_>>(),
            )
        };
        let how = if self.apply_cli {
            "botmaker apply -f fleet.toml"
        } else {
            "POST /api/bots (CLI apply not in this build)"
        };
        self.rows.push(
            Row::info(
                4,
                format!("{how}, N={n}, concurrency {c}"),
                "bots/s",
                rate(&ours),
            )
            .vs(format!("{n} raw create+start, {c} at a time"), rate(&raw))
            .within("≤ 1.2x", 1.2),
        );
        Ok(())
    }

    /// Runs `botmaker apply` on a fleet file declaring `ids`; returns its wall time.
    async fn apply_cli(
        &self,
        server: &ServerProc,
        ids: &[String],
        concurrency: usize,
    ) -> Result<Duration, String> {
        let mut toml = String::new();
        for id in ids {
            toml.push_str(&format!(
                "[[bot]]\nid = \"{id}\"\nimage = \"{}\"\nstart = true\nenv = {{ TICK_MS = \"0\" }}\n\
                 health_check = {{ port = 8080, interval_secs = 30 }}\n\n",
                self.floor.image
            ));
        }
        let file = self.tmp.join("fleet.toml");
        std::fs::write(&file, toml).map_err(|e| e.to_string())?;
        let bin = fixture::server_path();
        let t = Instant::now();
        let out = tokio::process::Command::new(bin)
            .arg("apply")
            .arg("-f")
            .arg(&file)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .env("BOTMAKER_URL", &server.base)
            .env("BOTMAKER_TOKEN", &server.token)
            .env("BOTMAKER_CONFIG", self.tmp.join("cli.json"))
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("running botmaker apply: {e}"))?;
        let took = t.elapsed();
        if !out.status.success() {
            return Err(format!(
                "botmaker apply failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(took)
    }

    /// (2)(3)(6) with the running fleet `apply` left.
    async fn mid_fleet(&mut self, server: &mut ServerProc) -> Result<(), String> {
        let n = self.plan.mid_n;
        say(format!("waiting for the stats cache to cover {n} bots"));
        self.wait_sampled(server, n).await?;
        self.list(server, n, "running").await?;
        let ids = self.fleet.clone();
        self.stats(server, &ids).await?;
        self.cpu(server, n, self.plan.mid_window, true).await
    }

    /// (2)(5) with a large registry: stopped bots on top of the running fleet.
    async fn big_fleet(&mut self, server: &mut ServerProc) -> Result<(), String> {
        let (n, running) = (self.plan.big_n, self.plan.mid_n);
        say(format!(
            "registering {} more bots (start: false) for N={n}",
            n - running
        ));
        let ids: Vec<String> = (running..n)
            .map(|i| format!("{}-z{i}", self.prefix))
            .collect();
        self.create_fleet(server, &ids, false, false, self.plan.concurrency)
            .await?;
        self.list(
            server,
            n,
            &format!("{running} running, {} stopped", n - running),
        )
        .await?;
        let (small, big) = (self.plan.small_n, n);
        let ratio = |k: usize| {
            self.saved[&format!("list{k}")].median / self.saved[&format!("rawlist{k}")].median
        };
        let (r_small, r_mid, r_big) = (ratio(small), ratio(running), ratio(big));
        let per_bot = |key: &str| {
            (self.saved[&format!("{key}{big}")].median
                - self.saved[&format!("{key}{small}")].median)
                * 1000.0
                / (big - small) as f64
        };
        self.rows.push(
            Row::info(
                2,
                format!("GET /api/bots: added cost per bot, N={small}→{big}"),
                "µs/bot",
                Summary::of(&[per_bot("list")]),
            )
            .vs("raw containers/json, per bot", Summary::of(&[per_bot("rawlist")]))
            .target(
                format!(
                    "ratio not rising with N (N={small}: {r_small:.2}x, N={running}: {r_mid:.2}x, N={big}: {r_big:.2}x)"
                ),
                r_big <= r_small.max(r_mid) * 1.10,
            ),
        );

        say("(5) memory with the large registry");
        let pid = server.pid().ok_or("server not running")?;
        let mut rss = Vec::new();
        let mut peak = 0;
        for _ in 0..self.plan.reps {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (now, hwm) = procfs::rss(pid).ok_or("no RSS in /proc")?;
            rss.push(mb(now));
            peak = peak.max(hwm);
        }
        let rss0 = self.saved["rss0"];
        let rss_big = Summary::of(&rss);
        self.rows.push(
            Row::info(
                5,
                format!("server RSS, N={n} registered ({running} running), up since the start of the run"),
                "MB",
                rss_big,
            )
            .vs("idle server, N=0", rss0)
            .target("< 30 MB", rss_big.median < 30.0),
        );
        self.rows.push(
            Row::info(
                5,
                "server peak RSS (VmHWM) over the whole run",
                "MB",
                Summary::of(&[mb(peak)]),
            )
            .note("context"),
        );
        say(format!(
            "(5) start-up with N={n}: {} restarts",
            self.plan.reps
        ));
        let (up, rss_after) = self.restarts(server, Duration::from_secs(2)).await?;
        let up0 = self.saved["startup0"];
        self.rows.push(
            Row::info(
                5,
                "server RSS idle, N=0 (1 s after start-up and a login)",
                "MB",
                rss0,
            )
            .note("context"),
        );
        self.rows.push(
            Row::info(
                5,
                format!("server RSS, N={n}, 2 s after a restart"),
                "MB",
                rss_after,
            )
            .vs("idle server, N=0", rss0)
            .target("< 30 MB", rss_after.median < 30.0),
        );
        self.rows
            .push(Row::info(5, "start-up: spawn → /health 200, N=0", "ms", up0).note("context"));
        self.rows.push(
            Row::info(5, format!("start-up: spawn → /health 200, N={n}"), "ms", up)
                .vs("same, N=0", up0)
                .target("< 300 ms", up.median < 300.0),
        );
        Ok(())
    }
}
