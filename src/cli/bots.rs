//! `bots list|create|show|start|stop|restart|rm` (logs live in [`super::logs`]): one request
//! per bot, results as a table, a short line, or the server's JSON with `--json`.

use std::collections::BTreeMap;

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;

use super::args::{BotsCommand, CreateArgs};
use super::client::ApiClient;
use super::error::CliError;
use super::fleet::{self, BotDecl};
use super::output::{Table, json_name, print_json, since, timestamp};
use super::{input, logs, secrets};
use crate::api::{BotList, BotState, BotView};
use crate::bots::LimitsSpec;
use crate::docker::Protocol;

/// Runs a `bots` subcommand.
pub async fn run(client: &ApiClient, cmd: BotsCommand) -> Result<(), CliError> {
    match cmd {
        BotsCommand::List(a) => list(client, a.json).await,
        BotsCommand::Create(a) => create(client, *a).await,
        BotsCommand::Show { id, json } => {
            let v: Value = client.get(&format!("/api/bots/{id}")).await?;
            if json {
                print_json(&v);
            } else {
                show(&client.decode(v)?);
            }
            Ok(())
        }
        BotsCommand::Start(a) => each(client, &a.ids, "start", "started").await,
        BotsCommand::Stop(a) => each(client, &a.ids, "stop", "stopped").await,
        BotsCommand::Restart(a) => each(client, &a.ids, "restart", "restarted").await,
        BotsCommand::Rm(a) => {
            for id in &a.ids {
                client.delete(&format!("/api/bots/{id}")).await?;
                println!("removed {id}");
            }
            Ok(())
        }
        BotsCommand::Logs(a) => logs::logs(client, &a).await,
        BotsCommand::Upgrade(a) => super::upgrade::upgrade_bot(client, &a).await,
        BotsCommand::Backup(a) => super::backup::backup_bot(client, &a).await,
        BotsCommand::Import(a) => super::backup::import(client, &a).await,
        // Has an exit code of its own: `super::dispatch` runs it.
        BotsCommand::Exec(a) => super::exec::exec(client, *a).await.map(drop),
    }
}

async fn list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let v: Value = client.get("/api/bots").await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let list: BotList = client.decode(v)?;
    let now = Utc::now();
    let mut t = Table::new(&[
        "ID", "STATE", "HEALTH", "UPTIME", "RESTARTS", "PORTS", "IMAGE",
    ]);
    for b in &list.bots {
        t.row(vec![
            b.id.clone(),
            state_cell(b),
            json_name(&b.observed.health),
            uptime(b, now),
            b.observed.restart_count.to_string(),
            ports_cell(b),
            // The tag now names another image than runs: `bots upgrade` would pick it up.
            if b.image_drift {
                format!("{} (drift)", b.image)
            } else {
                b.image.clone()
            },
        ]);
    }
    t.print();
    Ok(())
}

/// The observed state, with `!` and the wanted state when they differ (`stopped!running`):
/// the bot's `state_drift`.
fn state_cell(b: &BotView) -> String {
    if b.state_drift {
        format!("{}!{}", b.observed.state.as_str(), b.desired_state)
    } else {
        b.observed.state.as_str().to_string()
    }
}

/// `127.0.0.1:32774 -> 8080/tcp`, as Docker bound it: `(auto)` marks a host port Docker
/// picked, `auto` alone one it will pick when the container runs.
fn port_text(p: &crate::bots::PortView) -> String {
    let ip = p
        .host_ip
        .as_deref()
        .unwrap_or(crate::docker::DEFAULT_HOST_IP);
    let host = match p.host {
        Some(h) if p.auto => format!("{ip}:{h} (auto)"),
        Some(h) => format!("{ip}:{h}"),
        None => "auto".into(),
    };
    let proto = match p.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    format!("{host} -> {}/{proto}", p.container)
}

/// `32774->8080,9000->9000/udp` (no spaces: one cell), `-` without ports.
fn ports_cell(b: &BotView) -> String {
    let cells: Vec<String> = b
        .ports
        .iter()
        .map(|p| {
            let host = p.host.map_or("?".to_string(), |h| h.to_string());
            let udp = if p.protocol == Protocol::Udp {
                "/udp"
            } else {
                ""
            };
            format!("{host}->{}{udp}", p.container)
        })
        .collect();
    if cells.is_empty() {
        "-".into()
    } else {
        cells.join(",")
    }
}

/// Time since the current run started, for a running bot; `-` otherwise.
fn uptime(b: &BotView, now: chrono::DateTime<Utc>) -> String {
    if b.observed.state == BotState::Running {
        since(b.observed.started_at, now)
    } else {
        "-".into()
    }
}

fn show(b: &BotView) {
    let now = Utc::now();
    let mut t = Table::default();
    let mut kv = |k: &str, v: String| t.row(vec![format!("{k}:"), v]);
    kv("id", b.id.clone());
    kv("name", b.name.clone());
    kv("template", b.template.clone());
    kv("image", b.image.clone());
    if let Some(c) = &b.command {
        kv("command", c.join(" "));
    }
    kv(
        "state",
        format!(
            "{} (wanted: {}){}",
            b.observed.state.as_str(),
            b.desired_state,
            if b.state_drift {
                " DRIFT: Docker does not match what is wanted"
            } else {
                ""
            }
        ),
    );
    kv("health", json_name(&b.observed.health));
    kv("uptime", uptime(b, now));
    kv("restarts", b.observed.restart_count.to_string());
    if let Some(code) = b.observed.exit_code {
        let oom = if b.observed.oom_killed {
            " (OOM-killed)"
        } else {
            ""
        };
        kv("exit code", format!("{code}{oom}"));
    }
    for (k, v) in &b.env {
        kv("env", format!("{k}={v}"));
    }
    kv("secrets", list_or_dash(&b.secrets));
    for p in &b.ports {
        kv("port", port_text(p));
    }
    if b.limits != LimitsSpec::default() {
        let l = &b.limits;
        let part = |n: &str, v: Option<String>| v.map(|v| format!("{n}={v}"));
        let parts: Vec<String> = [
            part("memory_mb", l.memory_mb.map(|v| v.to_string())),
            part("cpus", l.cpus.map(|v| v.to_string())),
            part("pids", l.pids.map(|v| v.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect();
        kv("limits", parts.join(" "));
    }
    if let Some(h) = &b.health_check {
        kv(
            "health check",
            format!("GET :{}{} every {}s", h.port, h.path, h.interval_secs),
        );
    }
    if !fleet::is_empty_settings(&b.settings) {
        kv("settings", b.settings.to_string());
    }
    kv(
        "container",
        b.observed
            .container_id
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    kv("created", timestamp(Some(b.created_at)));
    kv("updated", timestamp(Some(b.updated_at)));
    t.print();
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

async fn each(
    client: &ApiClient,
    ids: &[crate::BotId],
    verb: &str,
    done: &str,
) -> Result<(), CliError> {
    for id in ids {
        let b: BotView = client.post(&format!("/api/bots/{id}/{verb}")).await?;
        println!("{done} {id} ({})", b.observed.state.as_str());
    }
    Ok(())
}

/// `bots create`: the spec file (if any), overridden by flags, validated like a fleet entry.
async fn create(client: &ApiClient, a: CreateArgs) -> Result<(), CliError> {
    let mut decl = match &a.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadInput {
                path: path.clone(),
                source,
            })?;
            fleet::parse_spec(path, &text)?
        }
        None => BotDecl::default(),
    };
    apply_flags(&mut decl, &a);
    apply_health_flags(&mut decl, &a)?;
    if decl.id.is_empty() {
        return Err(CliError::usage(
            "which bot? give its id as an argument or in the spec file",
        ));
    }
    let bot = fleet::validate(decl).map_err(CliError::Usage)?;
    let from_flags: Vec<_> = a.secret_files.iter().map(|s| s.name.clone()).collect();
    let from_dir: Vec<_> = bot
        .secrets
        .iter()
        .filter(|n| !from_flags.contains(n))
        .cloned()
        .collect();
    let mut values = secrets::read_from_dir(a.secrets_dir.as_deref(), &bot.id, &from_dir)?;
    for s in &a.secret_files {
        values.insert(
            s.name.clone(),
            input::strip_newline(input::read_file(&s.path)?),
        );
    }
    let body = fleet::create_body(&bot, &values).map_err(CliError::Usage)?;
    let v: Value = client.call(Method::POST, "/api/bots", Some(&body)).await?;
    if a.json {
        print_json(&v);
    } else {
        let b: BotView = client.decode(v)?;
        println!("created {} ({})", b.id, b.observed.state.as_str());
        for w in &b.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

/// Flags win over the spec file; `--env` and `--port` add to what the file has.
fn apply_flags(d: &mut BotDecl, a: &CreateArgs) {
    if let Some(id) = &a.id {
        d.id = id.to_string();
    }
    let set = |slot: &mut Option<String>, v: &Option<String>| {
        if v.is_some() {
            slot.clone_from(v);
        }
    };
    set(&mut d.name, &a.name);
    set(&mut d.template, &a.template);
    set(&mut d.image, &a.image);
    if !a.command.is_empty() {
        d.command = Some(a.command.clone());
    }
    if !a.env.is_empty() {
        let env = d.env.get_or_insert_with(BTreeMap::new);
        env.extend(a.env.iter().map(|p| (p.0.clone(), p.1.clone())));
    }
    if !a.ports.is_empty() {
        let ports = d.ports.get_or_insert_with(Vec::new);
        ports.extend(a.ports.iter().map(|p| p.0.clone()));
    }
    if a.memory.is_some() || a.cpus.is_some() || a.pids.is_some() {
        let l = d.limits.get_or_insert_with(LimitsSpec::default);
        l.memory_mb = a.memory.or(l.memory_mb);
        l.cpus = a.cpus.or(l.cpus);
        l.pids = a.pids.or(l.pids);
    }
    if a.settings.is_some() {
        d.settings.clone_from(&a.settings);
    }
    if a.node.is_some() || !a.node_labels.is_empty() {
        let p = d.placement.get_or_insert_with(Default::default);
        if a.node.is_some() {
            p.node.clone_from(&a.node);
        }
        p.labels
            .extend(a.node_labels.iter().map(|l| (l.0.clone(), l.1.clone())));
    }
    if a.no_start {
        d.start = Some(false);
    }
    for s in &a.secret_files {
        let names = d.secrets.get_or_insert_with(Vec::new);
        if !names.iter().any(|n| n == s.name.as_str()) {
            names.push(s.name.to_string());
        }
    }
}

/// The `--health-*` flags, laid over the spec file's `health_check` field by field. The
/// probe's own defaults fill what neither gives, so the CLI cannot drift from the API's.
fn apply_health_flags(d: &mut BotDecl, a: &CreateArgs) -> Result<(), CliError> {
    let flags = [
        ("port", a.health_port.map(Value::from)),
        ("path", a.health_path.clone().map(Value::from)),
        ("interval_secs", a.health_interval.map(Value::from)),
        ("start_period_secs", a.health_start_period.map(Value::from)),
        (
            "failure_threshold",
            a.health_failure_threshold.map(Value::from),
        ),
    ];
    if flags.iter().all(|(_, v)| v.is_none()) {
        return Ok(());
    }
    let mut probe = match &d.health_check {
        Some(p) => serde_json::to_value(p).expect("a probe serializes"),
        None => Value::Object(serde_json::Map::new()),
    };
    for (field, value) in flags {
        if let Some(v) = value {
            probe[field] = v;
        }
    }
    if probe.get("port").is_none() {
        return Err(CliError::usage(
            "--health-path, --health-interval, --health-start-period and \
             --health-failure-threshold need --health-port (or a health_check in the spec file)",
        ));
    }
    d.health_check = Some(
        serde_json::from_value(probe)
            .map_err(|e| CliError::usage(format!("the health check flags are not valid: {e}")))?,
    );
    Ok(())
}
