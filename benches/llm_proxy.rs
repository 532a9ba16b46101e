//! `cargo bench --bench llm_proxy` (`scripts/bench --llm` runs it): what the LLM key proxy
//! costs, measured against the floor, the same requests sent straight to the same mock
//! provider, in one run. Written to `target/bench/llm-proxy.{md,json}`.
//!
//! The proxy under test is the real release `botmaker serve`, a child process (its memory is
//! its own, read from /proc), listening on a loopback port; the mock provider and the client
//! run in this process. One bot (created stopped: its container is never started) holds the
//! virtual key the proxied requests use; it is deleted at the end, also on panic.
//!
//! - **Latency**: sequential non-streaming chat completions, proxied and direct interleaved;
//!   p50 and p99 of each, and what the proxy adds.
//! - **Time to first chunk** of a stream, the same way.
//! - **Throughput at 100 concurrent streams**: 100 clients loop over streaming completions for
//!   a fixed window, direct then proxied, alternating; streams and chunks per second. Paced
//!   streams (a chunk every 10 ms, as a model generates tokens) are the realistic case; unpaced
//!   ones (all chunks at once) show the CPU ceiling of a 2-core machine running client, mock
//!   and proxy together.
//! - **Memory per open stream**: the server's RSS with N streams held open mid-way by the
//!   mock, minus its RSS just before, divided by N.

#[allow(dead_code)]
#[path = "fleet/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "fleet/procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "fleet/server.rs"]
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

use server::ServerProc;

const USAGE: &str = "\
usage: cargo bench --bench llm_proxy -- [--quick] [--out DIR]

  --quick   fewer requests, shorter windows, fewer open streams (~1 min)
  --out DIR where llm-proxy.md and llm-proxy.json go (default target/bench)

Environment: DOCKER_HOST, BOTMAKER_BIN (server binary; default: built in target/server).";

/// The real key the mock expects: it must come from the proxy, never from the bot.
const REAL_KEY: &str = "sk-bench-real-key";
/// Concurrent streams of the throughput measurement.
const STREAMS: usize = 100;
/// Chunks of a streamed answer.
const CHUNKS: u64 = 32;
/// Pause between two chunks of a paced stream.
const PACE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    latency_reqs: usize,
    ttfb_reqs: usize,
    window: Duration,
    reps: usize,
    open_streams: usize,
    out: PathBuf,
}

impl Plan {
    fn parse() -> Result<Self, String> {
        let mut plan = Plan {
            mode: "full",
            latency_reqs: 3000,
            ttfb_reqs: 500,
            window: Duration::from_secs(10),
            reps: 3,
            open_streams: 1000,
            out: PathBuf::from("target/bench"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => {
                    plan.mode = "quick";
                    plan.latency_reqs = 400;
                    plan.ttfb_reqs = 100;
                    plan.window = Duration::from_secs(4);
                    plan.reps = 1;
                    plan.open_streams = 300;
                }
                "--out" => plan.out = args.next().ok_or(USAGE)?.into(),
                // cargo bench passes --bench.
                "--bench" => {}
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(plan)
    }
}

// ---------------------------------------------------------------------------------------------
// The mock provider
// ---------------------------------------------------------------------------------------------

/// What a request asks the mock for, in fields of its own that the proxy forwards untouched.
#[derive(serde::Deserialize, Default)]
struct Ask {
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    x_chunks: Option<u64>,
    #[serde(default)]
    x_pace_ms: Option<u64>,
    #[serde(default)]
    x_hold: bool,
    #[serde(default)]
    stream_options: Option<Value>,
}

#[derive(Clone)]
struct Mock {
    /// Held streams wait until this is true.
    release: watch::Receiver<bool>,
    wrong_key: Arc<AtomicU64>,
}

async fn chat(
    axum::extract::State(m): axum::extract::State<Mock>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {REAL_KEY}"))
    {
        m.wrong_key.fetch_add(1, Ordering::Relaxed);
    }
    let ask: Ask = serde_json::from_slice(&body).unwrap_or_default();
    let usage = json!({ "prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46 });
    if !ask.stream {
        return axum::Json(json!({
            "id": "c", "object": "chat.completion", "model": "bench",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "pong" }, "finish_reason": "stop" }],
            "usage": usage,
        }))
        .into_response();
    }
    let chunks = ask.x_chunks.unwrap_or(CHUNKS);
    let pace = Duration::from_millis(ask.x_pace_ms.unwrap_or(0));
    let with_usage = ask
        .stream_options
        .as_ref()
        .is_some_and(|o| o["include_usage"] == true);
    let chunk = Bytes::from(format!(
        "data: {}\n\n",
        json!({ "id": "c", "object": "chat.completion.chunk", "model": "bench",
                "choices": [{ "index": 0, "delta": { "content": "token " } }], "usage": null })
    ));
    let tail = {
        let mut t = String::new();
        if with_usage {
            t.push_str(&format!(
                "data: {}\n\n",
                json!({ "id": "c", "object": "chat.completion.chunk", "model": "bench",
                        "choices": [], "usage": usage })
            ));
        }
        t.push_str("data: [DONE]\n\n");
        Bytes::from(t)
    };
    let release = m.release.clone();
    let hold = ask.x_hold;
    let stream = futures_util::stream::unfold(0u64, move |i| {
        let (chunk, tail) = (chunk.clone(), tail.clone());
        let mut release = release.clone();
        async move {
            if i > chunks {
                return None;
            }
            if i == 1 && hold {
                let _ = release.wait_for(|r| *r).await;
            } else if i > 0 && !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
            let out = if i == chunks { tail } else { chunk };
            Some((Ok::<_, std::io::Error>(out), i + 1))
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("a response")
}

async fn start_mock() -> (SocketAddr, watch::Sender<bool>, Arc<AtomicU64>) {
    let (tx, rx) = watch::channel(false);
    let wrong = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(Mock {
            release: rx,
            wrong_key: wrong.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, tx, wrong)
}

// ---------------------------------------------------------------------------------------------
// The two ways
// ---------------------------------------------------------------------------------------------

/// Where a request goes, with which key.
#[derive(Clone)]
struct Way {
    name: &'static str,
    url: String,
    key: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4 * STREAMS)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn request(
    c: &reqwest::Client,
    way: &Way,
    body: &Value,
) -> Result<reqwest::Response, String> {
    let res = c
        .post(&way.url)
        .bearer_auth(&way.key)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", way.name))?;
    if !res.status().is_success() {
        return Err(format!("{}: HTTP {}", way.name, res.status()));
    }
    Ok(res)
}

/// Sends a streaming request and reads it to the end; returns the `data:` lines seen.
async fn stream_once(c: &reqwest::Client, way: &Way, body: &Value) -> Result<u64, String> {
    let res = request(c, way, body).await?;
    let mut body = res.bytes_stream();
    let mut lines = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        lines += chunk.windows(5).filter(|w| w == b"data:").count() as u64;
    }
    Ok(lines)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Debug, Clone, serde::Serialize)]
struct Dist {
    p50_ms: f64,
    p99_ms: f64,
    n: usize,
}

fn dist(mut v: Vec<f64>) -> Dist {
    v.sort_by(f64::total_cmp);
    Dist {
        p50_ms: percentile(&v, 0.5),
        p99_ms: percentile(&v, 0.99),
        n: v.len(),
    }
}

/// Interleaved sequential requests; per way, the time of each (ms).
async fn latency(
    c: &reqwest::Client,
    ways: &[Way; 2],
    n: usize,
    body: &Value,
    first_chunk: bool,
) -> Result<[Dist; 2], String> {
    let mut times = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for i in 0..(n + n / 10) {
        for (k, way) in ways.iter().enumerate() {
            let t = Instant::now();
            let res = request(c, way, body).await?;
            let elapsed = if first_chunk {
                let mut s = res.bytes_stream();
                let _ = s.next().await;
                let e = t.elapsed();
                while s.next().await.is_some() {}
                e
            } else {
                let _ = res.bytes().await.map_err(|e| e.to_string())?;
                t.elapsed()
            };
            // The first tenth warms pools and caches.
            if i >= n / 10 {
                times[k].push(elapsed.as_secs_f64() * 1000.0);
            }
        }
    }
    let [a, b] = times;
    Ok([dist(a), dist(b)])
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Rate {
    streams_per_s: f64,
    chunks_per_s: f64,
}

/// `STREAMS` clients streaming back to back for `window`.
async fn throughput(way: &Way, window: Duration, body: &Value) -> Result<Rate, String> {
    let c = client();
    let deadline = Instant::now() + window;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..STREAMS {
        let (c, way, body) = (c.clone(), way.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (mut streams, mut chunks) = (0u64, 0u64);
            while Instant::now() < deadline {
                chunks += stream_once(&c, &way, &body).await?;
                streams += 1;
            }
            Ok::<_, String>((streams, chunks))
        }));
    }
    let (mut streams, mut chunks) = (0, 0);
    for t in tasks {
        let (s, c) = t.await.map_err(|e| e.to_string())??;
        streams += s;
        chunks += c;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Rate {
        streams_per_s: streams as f64 / secs,
        chunks_per_s: chunks as f64 / secs,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs direct and proxied alternately `reps` times; the median rate of each.
async fn compare_throughput(
    ways: &[Way; 2],
    plan: &Plan,
    body: &Value,
) -> Result<[Rate; 2], String> {
    let mut runs: [Vec<Rate>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..plan.reps {
        for (k, way) in ways.iter().enumerate() {
            runs[k].push(throughput(way, plan.window, body).await?);
        }
    }
    let pick = |r: &Vec<Rate>| Rate {
        streams_per_s: median(r.iter().map(|x| x.streams_per_s).collect()),
        chunks_per_s: median(r.iter().map(|x| x.chunks_per_s).collect()),
    };
    Ok([pick(&runs[0]), pick(&runs[1])])
}

/// RSS of the server with `n` streams held open mid-way, minus its RSS just before, per
/// stream; and the two RSS figures.
async fn memory_per_stream(
    proxy: &Way,
    server: &ServerProc,
    n: usize,
    release: &watch::Sender<bool>,
) -> Result<(f64, u64, u64), String> {
    let pid = server.pid().ok_or("the server is not running")?;
    let _ = release.send(false);
    let before = procfs::rss(pid).ok_or("no RSS")?.0;
    let c = client();
    let body = json!({ "model": "bench", "stream": true, "x_hold": true, "messages": [] });
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let res = request(&c, proxy, &body).await?;
        let mut s = res.bytes_stream();
        // The first chunk has arrived: the stream is open end to end.
        s.next()
            .await
            .ok_or("a held stream ended")?
            .map_err(|e| e.to_string())?;
        open.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = procfs::rss(pid).ok_or("no RSS")?.0;
    let _ = release.send(true);
    for mut s in open {
        while s.next().await.is_some() {}
    }
    let per = (during as f64 - before as f64) / n as f64;
    Ok((per, before, during))
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Deletes the bench's bot through the API when dropped (its container was never started).
struct BotGuard {
    base: String,
    token: String,
    id: String,
}

impl Drop for BotGuard {
    fn drop(&mut self) {
        let (base, token, id) = (self.base.clone(), self.token.clone(), self.id.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(format!("{base}/api/bots/{id}"))
                    .bearer_auth(token)
                    .send()
                    .await;
            })
        })
        .join();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run(plan: Plan) -> Result<Value, String> {
    let bin = fixture::build_server()?;
    let docker = bollard::Docker::connect_with_local_defaults().map_err(|e| e.to_string())?;
    let image = fixture::ensure(&docker).await?;
    let (mock_addr, release, wrong_key) = start_mock().await;

    let dir = tempfile::Builder::new()
        .prefix("botmaker-llm-bench")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let instance = format!("bench-{}-llm", std::process::id());
    let proxy_port = free_port();
    let listen = format!("127.0.0.1:{proxy_port}");
    let mut server =
        ServerProc::new(&bin, dir.path(), &instance)?.args(&["--llm-proxy-listen", &listen]);
    server.start().await?;
    server.login().await?;
    server
        .expect(
            201,
            Method::POST,
            "/api/providers",
            Some(&json!({ "name": "mock", "kind": "openai-compatible",
                          "base_url": format!("http://{mock_addr}/v1"), "api_key": REAL_KEY })),
        )
        .await?;
    let id = format!("llmbench{}", std::process::id());
    let _bot = BotGuard {
        base: server.base.clone(),
        token: server.token.clone(),
        id: id.clone(),
    };
    server
        .expect(
            201,
            Method::POST,
            "/api/bots",
            Some(&json!({ "id": id, "image": image.tag, "start": false,
                          "settings": { "llm_provider": "mock" } })),
        )
        .await?;
    let key = std::fs::read_to_string(
        dir.path()
            .join("data/secrets")
            .join(&id)
            .join("LLM_API_KEY"),
    )
    .map_err(|e| format!("the bot's key: {e}"))?;
    let ways = [
        Way {
            name: "direct",
            url: format!("http://{mock_addr}/v1/chat/completions"),
            key: REAL_KEY.into(),
        },
        Way {
            name: "proxy",
            url: format!("http://{listen}/v1/chat/completions"),
            key: key.trim().into(),
        },
    ];

    eprintln!("== memory per open stream ({} streams)", plan.open_streams);
    // A few requests first, so the measurement is of streams, not of first-use allocations.
    let c = client();
    for _ in 0..50 {
        stream_once(
            &c,
            &ways[1],
            &json!({ "model": "bench", "stream": true, "messages": [] }),
        )
        .await?;
    }
    let (per_stream, rss_before, rss_during) =
        memory_per_stream(&ways[1], &server, plan.open_streams, &release).await?;

    eprintln!(
        "== latency ({} sequential requests per way)",
        plan.latency_reqs
    );
    let plain = json!({ "model": "bench", "messages": [] });
    let lat = latency(&c, &ways, plan.latency_reqs, &plain, false).await?;
    eprintln!(
        "== time to first chunk ({} streams per way)",
        plan.ttfb_reqs
    );
    let one = json!({ "model": "bench", "stream": true, "x_chunks": 4, "messages": [] });
    let ttfb = latency(&c, &ways, plan.ttfb_reqs, &one, true).await?;
    eprintln!("== throughput, {STREAMS} concurrent paced streams");
    let paced = json!({ "model": "bench", "stream": true, "x_chunks": CHUNKS,
                        "x_pace_ms": PACE.as_millis() as u64, "messages": [] });
    let paced_rate = compare_throughput(&ways, &plan, &paced).await?;
    eprintln!("== throughput, {STREAMS} concurrent unpaced streams");
    let unpaced = json!({ "model": "bench", "stream": true, "x_chunks": CHUNKS, "messages": [] });
    let unpaced_rate = compare_throughput(&ways, &plan, &unpaced).await?;

    // The proxy swapped the key every time; and counted what it forwarded.
    if wrong_key.load(Ordering::Relaxed) > 0 {
        return Err("the mock saw requests without the real key".into());
    }
    let usage = server
        .expect(200, Method::GET, &format!("/api/bots/{id}/usage"), None)
        .await?;
    let rss_end = procfs::rss(server.pid().unwrap_or(0))
        .map(|r| r.0)
        .unwrap_or(0);
    // The bot goes through the API, so before the server.
    drop(_bot);
    server.stop().await?;

    let ratio = |p: f64, d: f64| if d > 0.0 { p / d } else { 0.0 };
    Ok(json!({
        "mode": plan.mode,
        "streams": STREAMS,
        "chunks_per_stream": CHUNKS,
        "pace_ms": PACE.as_millis() as u64,
        "latency": { "direct": lat[0], "proxy": lat[1],
                     "added_p50_ms": lat[1].p50_ms - lat[0].p50_ms,
                     "added_p99_ms": lat[1].p99_ms - lat[0].p99_ms },
        "first_chunk": { "direct": ttfb[0], "proxy": ttfb[1],
                         "added_p50_ms": ttfb[1].p50_ms - ttfb[0].p50_ms,
                         "added_p99_ms": ttfb[1].p99_ms - ttfb[0].p99_ms },
        "throughput_paced": { "direct": paced_rate[0], "proxy": paced_rate[1],
                              "ratio": ratio(paced_rate[1].streams_per_s, paced_rate[0].streams_per_s) },
        "throughput_unpaced": { "direct": unpaced_rate[0], "proxy": unpaced_rate[1],
                                "ratio": ratio(unpaced_rate[1].streams_per_s, unpaced_rate[0].streams_per_s) },
        "memory": { "open_streams": plan.open_streams, "per_stream_bytes": per_stream,
                    "rss_before": rss_before, "rss_during": rss_during, "rss_end": rss_end },
        "proxied_requests_counted": usage["totals"]["requests"],
    }))
}

fn report(r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut md = String::new();
    md.push_str(&format!(
        "LLM proxy vs direct to the same mock provider ({} run; {} concurrent streams of {} chunks)\n\n",
        r["mode"].as_str().unwrap_or("?"),
        r["streams"],
        r["chunks_per_stream"]
    ));
    md.push_str("| what | direct | proxy | added / ratio | target |\n|---|---|---|---|---|\n");
    for (name, key) in [
        ("request latency (non-streaming)", "latency"),
        ("time to first chunk", "first_chunk"),
    ] {
        let x = &r[key];
        md.push_str(&format!(
            "| {name}, p50 | {:.3} ms | {:.3} ms | +{:.3} ms | ≤ 1 ms added |\n",
            f(&x["direct"]["p50_ms"]),
            f(&x["proxy"]["p50_ms"]),
            f(&x["added_p50_ms"])
        ));
        md.push_str(&format!(
            "| {name}, p99 | {:.3} ms | {:.3} ms | +{:.3} ms | — |\n",
            f(&x["direct"]["p99_ms"]),
            f(&x["proxy"]["p99_ms"]),
            f(&x["added_p99_ms"])
        ));
    }
    for (name, key, target) in [
        (
            "throughput, paced streams (10 ms/chunk)",
            "throughput_paced",
            "≥ 0.9×",
        ),
        (
            "throughput, unpaced streams (CPU-bound)",
            "throughput_unpaced",
            "— (see docs)",
        ),
    ] {
        let x = &r[key];
        md.push_str(&format!(
            "| {name} | {:.1} streams/s ({:.0} chunks/s) | {:.1} streams/s ({:.0} chunks/s) | {:.3}× | {target} |\n",
            f(&x["direct"]["streams_per_s"]),
            f(&x["direct"]["chunks_per_s"]),
            f(&x["proxy"]["streams_per_s"]),
            f(&x["proxy"]["chunks_per_s"]),
            f(&x["ratio"])
        ));
    }
    let m = &r["memory"];
    md.push_str(&format!(
        "| memory per open stream ({} held open) | — | {:.1} KiB | RSS {:.1} → {:.1} MiB | ≤ 64 KiB |\n",
        m["open_streams"],
        f(&m["per_stream_bytes"]) / 1024.0,
        f(&m["rss_before"]) / 1048576.0,
        f(&m["rss_during"]) / 1048576.0
    ));
    md
}

fn main() -> ExitCode {
    let plan = match Plan::parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = plan.out.clone();
    match rt.block_on(run(plan)) {
        Ok(r) => {
            let md = report(&r);
            print!("{md}");
            let _ = std::fs::create_dir_all(&out);
            let _ = std::fs::write(out.join("llm-proxy.md"), &md);
            let _ = std::fs::write(
                out.join("llm-proxy.json"),
                serde_json::to_string_pretty(&r).unwrap(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm_proxy bench failed: {e}");
            ExitCode::from(1)
        }
    }
}
