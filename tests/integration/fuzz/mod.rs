//! A bounded, seeded, schema-driven fuzz run against a real `botmaker serve` and the real
//! engine: every operation of the served `/api/openapi.json` gets requests generated from its
//! schemas, valid ones (which create, change, start, stop and delete real bots) and broken ones
//! (wrong types, bounds, huge and hostile strings, missing and extra fields, bad JSON, wrong
//! content types, bad path and query values, wrong credentials). Every answer must be one the
//! operation documents, with a body its schema accepts, never a 5xx; a request the schema
//! forbids must not succeed; at the end every bot the run made is deleted through the API and
//! no container of the test's label namespace is left.
//!
//! `BOTMAKER_FUZZ_SEED` (a number, or `random`), `BOTMAKER_FUZZ_CASES`,
//! `BOTMAKER_FUZZ_WORKERS` and `BOTMAKER_FUZZ_SECS` (a time budget: the run stops early, and
//! says so, when the machine is too slow for the case count) change the run; a failure prints
//! the seed and case numbers, and `BOTMAKER_FUZZ_ONLY=7,42` replays just those cases.

mod case;
mod doc;
mod regressions;
mod values;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::server::TestServer;
use crate::support::unique;
use case::{Auth, Case};
use doc::{Api, Op};
use values::{Gen, World};

/// Seed when `BOTMAKER_FUZZ_SEED` is not set: CI runs the same cases every time, so a red run
/// is a regression, not a new roll of the dice (set `random` to explore).
const DEFAULT_SEED: u64 = 0x0b07_f022;
/// Cases when `BOTMAKER_FUZZ_CASES` is not set.
const DEFAULT_CASES: usize = 3000;
/// Concurrent workers, each with bots of its own.
const DEFAULT_WORKERS: usize = 4;
/// The run stops starting new cases after this long.
const DEFAULT_BUDGET: Duration = Duration::from_secs(180);
/// Bot ids per worker.
const SLOTS: usize = 2;

struct Settings {
    seed: u64,
    cases: usize,
    workers: usize,
    budget: Duration,
    only: Option<Vec<usize>>,
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value"))
    })
}

impl Settings {
    fn from_env() -> Self {
        let seed = match std::env::var("BOTMAKER_FUZZ_SEED").ok().as_deref() {
            None | Some("") => DEFAULT_SEED,
            Some("random") => rand::rng().random(),
            Some(_) => env("BOTMAKER_FUZZ_SEED").unwrap(),
        };
        let only = std::env::var("BOTMAKER_FUZZ_ONLY").ok().map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("BOTMAKER_FUZZ_ONLY: case numbers"))
                .collect()
        });
        Self {
            seed,
            cases: env("BOTMAKER_FUZZ_CASES").unwrap_or(DEFAULT_CASES),
            workers: env("BOTMAKER_FUZZ_WORKERS")
                .unwrap_or(DEFAULT_WORKERS)
                .max(1),
            budget: env("BOTMAKER_FUZZ_SECS")
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_BUDGET),
            only,
        }
    }

    /// The RNG of case `n`: a function of the seed and `n` only, so a case replays alone.
    fn rng(&self, n: usize) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// One answer that broke a rule.
struct Failure {
    case: Case,
    op: String,
    status: Option<StatusCode>,
    body: String,
    problems: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.case;
        let target: String = c.target.chars().take(160).collect();
        let body: String = self.body.chars().take(400).collect();
        let sent = c
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
            .unwrap_or_default();
        write!(
            f,
            "case {} ({}): {} {target} [{}] content-type {:?} body {sent:?}\n  -> {:?} {body}\n  problems: {}",
            c.n,
            self.op,
            c.method,
            c.note,
            c.content_type,
            self.status,
            self.problems.join("; ")
        )
    }
}

/// What the run shares between workers.
struct Run<'a> {
    s: &'a TestServer,
    /// A client that opens a connection per request: a server that closes a connection after
    /// refusing an oversized body must not fail the next case that would reuse it.
    client: reqwest::Client,
    api: &'a Api,
    settings: &'a Settings,
    prefix: String,
    shared: Vec<String>,
    api_token: String,
    spare_sessions: Mutex<Vec<String>>,
    started: Instant,
    failures: Mutex<Vec<Failure>>,
    statuses: Mutex<BTreeMap<String, BTreeMap<u16, usize>>>,
    /// Why requests valid by the schema were refused (400): where the server is stricter
    /// than the document says, by operation, code and field.
    refused_valid: Mutex<BTreeMap<String, usize>>,
    done: std::sync::atomic::AtomicUsize,
    accepted_valid: std::sync::atomic::AtomicUsize,
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_driven_fuzz_gives_only_documented_answers_and_leaks_nothing() {
    let settings = Settings::from_env();
    let s = TestServer::start().await;
    println!(
        "fuzz: seed {} (BOTMAKER_FUZZ_SEED), {} cases, {} workers, budget {} s",
        settings.seed,
        settings.cases,
        settings.workers,
        settings.budget.as_secs()
    );
    let (status, doc) = s.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let api = Api::new(doc);
    assert!(api.ops.len() >= 18, "only {} operations", api.ops.len());

    let (status, tok) = s.post("/api/tokens", json!({ "name": "fuzz" })).await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let mut spare = Vec::new();
    for _ in 0..3 {
        spare.push(s.login().await);
    }
    let prefix = unique("fz");
    let run = Run {
        s: &s,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        api: &api,
        settings: &settings,
        shared: (0..3).map(|i| format!("{prefix}-s{i}")).collect(),
        prefix,
        api_token: tok["token"].as_str().unwrap().to_string(),
        spare_sessions: Mutex::new(spare),
        started: Instant::now(),
        failures: Default::default(),
        statuses: Default::default(),
        refused_valid: Default::default(),
        done: Default::default(),
        accepted_valid: Default::default(),
    };
    let workers = (0..settings.workers).map(|w| run.worker(w));
    futures_util::future::join_all(workers).await;
    let elapsed = run.started.elapsed();
    let done = run.done.load(std::sync::atomic::Ordering::Relaxed);

    let statuses = std::mem::take(&mut *run.statuses.lock().unwrap());
    for (op, counts) in &statuses {
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        println!("fuzz: {op:>16}: {}", counts.join(" "));
    }
    let refused = std::mem::take(&mut *run.refused_valid.lock().unwrap());
    let mut refused: Vec<(String, usize)> = refused.into_iter().collect();
    refused.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (why, n) in refused.iter().take(12) {
        println!("fuzz: valid by the schema, refused ×{n}: {why}");
    }
    let accepted = run
        .accepted_valid
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "fuzz: {done} cases in {:.1} s ({accepted} accepted with 2xx){}",
        elapsed.as_secs_f64(),
        if done < settings.cases && settings.only.is_none() {
            " — stopped at the time budget"
        } else {
            ""
        }
    );

    // Every bot the run made goes through the API; then nothing may be left.
    let leftovers = run.delete_every_bot().await;
    let failures = run.failures.into_inner().unwrap();
    let containers = s.h.docker.list_managed_containers().await.unwrap();
    let (status, orphans) = s.get("/api/admin/orphans").await;
    let db = rusqlite::Connection::open_with_flags(
        s.data.path().join("botmaker.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let count = |what: &str| {
        failures
            .iter()
            .filter(|f| f.problems.iter().any(|p| p.contains(what)))
            .count()
    };
    println!(
        "fuzz: seed {}: {done} cases, {} failures: {} 5xx, {} undocumented statuses, {} schema \
         violations, {} invalid requests accepted; {} leaked containers, {} orphans, \
         integrity {integrity}",
        settings.seed,
        failures.len(),
        count("server error"),
        count("is not documented"),
        count("match its schema") + count("is not an Error") + count("is not JSON"),
        count("schema forbids"),
        containers.len(),
        orphans["total"]
    );
    let shown: Vec<String> = failures.iter().take(25).map(|f| f.to_string()).collect();
    assert!(
        failures.is_empty(),
        "{} of {done} fuzz cases broke a rule (seed {}; replay with BOTMAKER_FUZZ_SEED={} \
         BOTMAKER_FUZZ_ONLY=<case>):\n{}",
        failures.len(),
        settings.seed,
        settings.seed,
        shown.join("\n")
    );
    assert!(leftovers.is_empty(), "bots not deleted: {leftovers:?}");
    assert!(
        containers.is_empty(),
        "containers left behind: {containers:?}"
    );
    assert_eq!(status, StatusCode::OK, "{orphans}");
    assert_eq!(orphans["total"], 0, "orphans left behind: {orphans}");
    assert_eq!(integrity, "ok");
}

impl Run<'_> {
    async fn worker(&self, w: usize) {
        let slots: Vec<String> = (0..SLOTS)
            .map(|i| format!("{}-w{w}b{i}", self.prefix))
            .collect();
        let mut tokens: Vec<String> = Vec::new();
        let weights: Vec<usize> = self
            .api
            .ops
            .iter()
            .map(|op| if op.id == "create_bot" { 4 } else { 1 })
            .collect();
        let total: usize = weights.iter().sum();
        let numbers: Vec<usize> = match &self.settings.only {
            Some(only) => only
                .iter()
                .copied()
                .filter(|n| n % self.settings.workers == w)
                .collect(),
            None => (w..self.settings.cases)
                .step_by(self.settings.workers)
                .collect(),
        };
        for n in numbers {
            if self.started.elapsed() > self.settings.budget {
                return;
            }
            let mut rng = self.settings.rng(n);
            let mut pick = rng.random_range(0..total);
            let op_index = weights
                .iter()
                .position(|w| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .unwrap();
            let op = &self.api.ops[op_index];
            let world = World {
                image: &self.s.h.image,
                prefix: &self.prefix,
                slots: &slots,
                shared: &self.shared,
                tokens: &tokens,
            };
            let case = Gen {
                api: self.api,
                rng: &mut rng,
                world: &world,
            }
            .case(n, op);
            let wrong_method = rng.random_bool(0.02);
            let outcome = self.send(op, &case, wrong_method).await;
            if let Some(id) = outcome.created_token {
                tokens.push(id);
            }
            self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Sends `case` and checks its answer.
    async fn send(&self, op: &Op, case: &Case, wrong_method: bool) -> Outcome {
        let url = self.s.url(&case.target);
        let method = if wrong_method {
            unused_method(self.api, op)
        } else {
            case.method.clone()
        };
        // The operation the request reaches: the case's own, or (when the URL parser resolved a
        // `..` away) whichever route the path now names, judged by its rules; none for a wrong
        // method or a path no operation has.
        let (reached, routed) = if wrong_method {
            (None, false)
        } else if reaches_operation(&url, &case.target) {
            (Some(op), true)
        } else {
            (route_of(self.api, &case.method, &url), false)
        };
        // An empty path parameter (`/api/bots//logs`) may or may not match the route.
        let path = case.target.split('?').next().unwrap_or_default();
        let ambiguous = routed && (path.contains("//") || path.ends_with('/'));
        let mut req = self
            .client
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(90));
        let token = match case.auth {
            Auth::Session if op.id == "logout" => {
                // Never the run's own session: a spare one (and then, logged out, a 401).
                let spare = self.spare_sessions.lock().unwrap().pop();
                Some(spare.unwrap_or_else(|| "bms_loggedout".into()))
            }
            Auth::Session => Some(self.s.token.clone()),
            Auth::ApiToken => Some(self.api_token.clone()),
            Auth::Forged => Some("bms_00000000000000000000000000000000".into()),
            Auth::Nothing | Auth::CookieNoCsrf => None,
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if case.auth == Auth::CookieNoCsrf {
            req = req.header(COOKIE, format!("botmaker_session={}", self.s.token));
        }
        if let Some(ct) = &case.content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if let Some(b) = &case.body {
            req = req.body(b.clone());
        }
        let mut problems = Vec::new();
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    chain = format!("{chain}: {s}");
                    source = s.source();
                }
                let problems = vec![format!("no answer: {chain}")];
                self.fail(case, op, None, String::new(), problems);
                return Outcome::default();
            }
        };
        let status = res.status();
        let media = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        // An event stream never ends: its status and type are the answer.
        let text = if media == "text/event-stream" {
            drop(res);
            String::new()
        } else {
            match res.bytes().await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    problems.push(format!("body unreadable: {e}"));
                    String::new()
                }
            }
        };
        let body: Option<Value> = serde_json::from_str(&text).ok();
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(if routed {
                op.id.clone()
            } else {
                format!("{}(unrouted)", op.id)
            })
            .or_default()
            .entry(status.as_u16())
            .or_default() += 1;

        if status.is_server_error() {
            problems.push(format!("server error {status}"));
        }
        if status.is_client_error() || status.is_server_error() {
            match &body {
                Some(b) => {
                    let v = self
                        .api
                        .violations(&json!({"$ref": "#/components/schemas/Error"}), b);
                    if !v.is_empty() {
                        problems.push(format!("error body is not an Error: {}", v.join(", ")));
                    }
                }
                None => problems.push("error body is not JSON".into()),
            }
        }
        let unrouted_answer = ambiguous && !op.responses.contains_key(&status.as_u16());
        if let Some(reached) = reached.filter(|_| !unrouted_answer) {
            let valid = !routed || case.valid;
            self.check_routed(
                reached,
                case,
                valid,
                status,
                &media,
                body.as_ref(),
                &mut problems,
            );
        } else {
            // A wrong method passes the same credential checks as a route (401, and 403 for
            // a cookie without its CSRF token on an unsafe method) before its 405.
            let expected = [401, 403, 404, 405];
            if !expected.contains(&status.as_u16()) {
                problems.push(format!(
                    "{method} {} (not this operation's route) answered {status}, not one of {expected:?}",
                    case.target
                ));
            }
        }
        if !problems.is_empty() {
            if wrong_method {
                problems.insert(0, format!("sent as {method}"));
            }
            self.fail(case, op, Some(status), text, problems);
        }
        let created_token = (routed && op.id == "create_token" && status == StatusCode::CREATED)
            .then(|| body.as_ref()?["id"].as_str().map(str::to_string))
            .flatten();
        if routed && case.valid && status == StatusCode::BAD_REQUEST {
            let b = body.clone().unwrap_or_default();
            let fields: Vec<&String> = b["fields"]
                .as_object()
                .map(|f| f.keys().collect())
                .unwrap_or_default();
            let why = format!("{} {} {fields:?}", op.id, b["code"]);
            *self.refused_valid.lock().unwrap().entry(why).or_default() += 1;
        }
        if status.is_success() {
            self.accepted_valid
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Outcome { created_token }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_routed(
        &self,
        op: &Op,
        case: &Case,
        valid: bool,
        status: StatusCode,
        media: &str,
        body: Option<&Value>,
        problems: &mut Vec<String>,
    ) {
        let code = status.as_u16();
        if !op.public {
            let expected = match case.auth {
                Auth::Nothing | Auth::Forged => Some(401),
                Auth::CookieNoCsrf if op.method != Method::GET => Some(403),
                _ => None,
            };
            if let Some(e) = expected.filter(|e| *e != code) {
                problems.push(format!("{:?} should get {e}", case.auth));
            }
        }
        let Some(content) = op.responses.get(&code) else {
            problems.push(format!("status {code} is not documented for {}", op.id));
            return;
        };
        if status.is_success() && !valid {
            problems.push("accepted a request its schema forbids".into());
        }
        if content.is_empty() {
            return;
        }
        let Some(schema) = content.get(media) else {
            problems.push(format!(
                "content type {media:?} is not documented for {code} (documented: {:?})",
                content.keys().collect::<Vec<_>>()
            ));
            return;
        };
        if media != "application/json" {
            return;
        }
        let Some(body) = body else {
            problems.push("body is not JSON".into());
            return;
        };
        if let Some(schema) = schema {
            let v = self.api.violations(schema, body);
            if !v.is_empty() {
                problems.push(format!("body does not match its schema: {}", v.join(", ")));
            }
        }
    }

    fn fail(
        &self,
        case: &Case,
        op: &Op,
        status: Option<StatusCode>,
        body: String,
        problems: Vec<String>,
    ) {
        self.failures.lock().unwrap().push(Failure {
            case: case.clone(),
            op: op.id.clone(),
            status,
            body,
            problems,
        });
    }

    /// Deletes every bot through the API; returns the ids that would not go.
    async fn delete_every_bot(&self) -> Vec<String> {
        let (status, list) = self.s.get("/api/bots").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let mut left = Vec::new();
        let ids: Vec<String> = list["bots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        println!("fuzz: deleting the {} bots the run left", ids.len());
        for id in ids {
            let (status, v) = self
                .s
                .call(Method::DELETE, &format!("/api/bots/{id}"), None)
                .await;
            if status != StatusCode::OK {
                left.push(format!("{id}: {status} {v}"));
            }
        }
        let (_, list) = self.s.get("/api/bots").await;
        if list["bots"].as_array().is_none_or(|b| !b.is_empty()) {
            left.push(format!("still listed: {list}"));
        }
        left
    }
}

#[derive(Default)]
struct Outcome {
    created_token: Option<String>,
}

/// Whether `url` as the client sends it still has the path the case built: a `.` or `..`
/// segment (also percent-encoded) is resolved away by the URL parser, so such a request
/// reaches another route or none.
fn reaches_operation(url: &str, target: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    parsed.path() == target.split('?').next().unwrap_or_default()
}

/// The operation `method` on the path of `url` reaches, if any.
fn route_of<'a>(api: &'a Api, method: &Method, url: &str) -> Option<&'a Op> {
    let parsed = url::Url::parse(url).ok()?;
    let path: Vec<&str> = parsed.path().split('/').collect();
    api.ops.iter().find(|op| {
        let template: Vec<&str> = op.path.split('/').collect();
        op.method == *method
            && template.len() == path.len()
            && template.iter().zip(&path).all(|(t, p)| {
                if t.starts_with('{') {
                    !p.is_empty()
                } else {
                    t == p
                }
            })
    })
}

/// A method the path of `op` does not take.
fn unused_method(api: &Api, op: &Op) -> Method {
    let used: Vec<&Method> = api
        .ops
        .iter()
        .filter(|o| o.path == op.path)
        .map(|o| &o.method)
        .collect();
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ]
    .into_iter()
    .find(|m| !used.contains(&m))
    .expect("no path takes every method")
}
