//! `GET /bots/{id}`: one bot. Each section is its own function, the way the page grows (a
//! structured configuration editor, a console): state, resources, configuration, secrets, logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::console::{BotTab, bot_tabs};
use super::no_such_bot;
use crate::edge::AppState;
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, error_id};
use crate::web::layout::{Nav, Page};
use crate::web::session::BrowserSession;

/// Lifecycle buttons: `data-action` (the route `bot.js` calls), label, and a tooltip.
const ACTIONS: &[(&str, &str, Option<&str>)] = &[
    ("start", "Start", None),
    ("stop", "Stop", None),
    ("restart", "Restart", None),
    (
        "apply",
        "Apply changes",
        Some("Recreate the container from the current configuration"),
    ),
];

fn heading(id: &str) -> Markup {
    html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Fleet" } " › " span { (id) } }
        div.title-row {
            h1 {
                span.light #bot-light aria-hidden="true" {}
                " "
                span #bot-name { (id) }
            }
            span.badge #bot-state role="status" { "…" }
        }
        (bot_tabs(id, BotTab::Overview))
        div.actions role="group" aria-label="Bot actions" {
            @for (action, label, title) in ACTIONS {
                button type="button" data-action=(action) title=[title] { (label) }
            }
            button.danger type="button" data-action="delete" { "Delete…" }
        }
    }
}

fn state_and_resources() -> Markup {
    html! {
        div.columns {
            section.card aria-labelledby="h-state" {
                h2 #h-state { "Desired and observed state" }
                // Why a failing bot fails (bot.js fills it in for `error` and `crash_loop`).
                div.crash-reason #crash-reason role="status" hidden {
                    p #crash-summary {}
                    p.muted { "Its last lines of output:" }
                    pre #crash-log {}
                }
                table.kv #state-table { tbody {} }
            }
            section.card aria-labelledby="h-resources" {
                h2 #h-resources { "CPU and memory" }
                label.toolbar {
                    "Range "
                    select #stats-range {
                        option value="live" selected { "last 10 minutes (live)" }
                        option value="1h" { "last hour (per minute)" }
                        option value="24h" { "last 24 hours (per minute)" }
                    }
                }
                p #stats-summary .muted { "No samples yet (a bot is sampled while it runs)." }
                figure {
                    figcaption { "CPU (% of one core)" }
                    svg #chart-cpu .chart viewBox="0 0 600 140" role="img"
                        aria-label="CPU use over the last minutes" {}
                }
                figure {
                    figcaption { "Memory (of its limit)" }
                    svg #chart-mem .chart viewBox="0 0 600 140" role="img"
                        aria-label="Memory use over the last minutes" {}
                }
            }
        }
    }
}

/// The structured editor's fields: API field path, label, `<input type>` (`textarea` for one
/// item per line) and help. `bot.js` fills them from the bot's view and sends what changed.
/// Ids are prefixed (`cf-`, `cerr-`) because the upgrade form on the same page has its own
/// `image` field.
const CONFIG_FIELDS: &[(&str, &str, &str, &str)] = &[
    ("image", "Image", "text", ""),
    (
        "command",
        "Command",
        "textarea",
        "One argument per line; empty: the image's default.",
    ),
    ("env", "Environment", "textarea", "One KEY=value per line."),
    (
        "ports",
        "Published ports",
        "textarea",
        "One per line: [host address:][host port:]container port[/udp].",
    ),
    ("limits.memory_mb", "Memory limit (MiB)", "number", ""),
    (
        "limits.cpus",
        "CPU limit (cores)",
        "number",
        "Empty: no CPU limit.",
    ),
    ("limits.pids", "Process limit", "number", ""),
    (
        "health_check.port",
        "Health probe port",
        "number",
        "Empty: no health probe.",
    ),
    ("health_check.path", "Health probe path", "text", ""),
    (
        "health_check.interval_secs",
        "Health probe interval (s)",
        "number",
        "",
    ),
    ("network", "Network", "text", "Empty: the default bridge."),
    (
        "user",
        "User (uid or uid:gid)",
        "text",
        "Empty: the image's USER.",
    ),
    (
        "stop_timeout_secs",
        "Stop grace (seconds)",
        "number",
        "Empty: the server's default.",
    ),
    (
        "placement.node",
        "Node (host name or id)",
        "text",
        "Empty: any node (Swarm spreads the bots).",
    ),
    (
        "placement.labels",
        "Node labels",
        "textarea",
        "One key=value per line: the node must carry them all.",
    ),
];

/// One field of the structured editor, with its error slot (`data-error-for` the API path,
/// where `forms.js` puts the server's messages).
fn config_field(field: &str, label: &str, kind: &str, help: &str) -> Markup {
    let slug: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let id = format!("cf-{slug}");
    let err = format!("cerr-{slug}");
    let described = if help.is_empty() {
        err.clone()
    } else {
        format!("{id}-help {err}")
    };
    html! {
        div.field {
            label for=(id) { (label) }
            @if kind == "textarea" {
                textarea id=(id) data-config=(field) rows="3" spellcheck="false"
                    aria-describedby=(described) {}
            } @else {
                input id=(id) data-config=(field) type=(kind) autocomplete="off" spellcheck="false"
                    step=[(kind == "number").then_some("any")] aria-describedby=(described);
            }
            @if !help.is_empty() { p.help id={ (id) "-help" } { (help) } }
            p.field-error id=(err) data-error-for=(field) data-target=(id) hidden {}
        }
    }
}

fn configuration() -> Markup {
    html! {
        section.card aria-labelledby="h-config" {
            h2 #h-config { "Configuration" }
            dl.config #config {}
            details #edit-config {
                summary { "Edit configuration" }
                form #config-form novalidate {
                    div #config-fields {
                        @for (field, label, kind, help) in CONFIG_FIELDS {
                            (config_field(field, label, kind, help))
                        }
                    }
                    label.choice {
                        input type="checkbox" #config-raw;
                        " Edit as JSON"
                    }
                    div.field #config-json-field hidden {
                        label for="config-json" {
                            "Configuration (JSON: any field of PATCH /api/bots/{id})"
                        }
                        textarea #config-json rows="14" spellcheck="false"
                            aria-describedby="config-help config-errors" {}
                    }
                    p.help #config-help {
                        "Only the settings you change are sent. Saved changes take effect when                          the container is recreated: tick the box, or press " em { "Apply changes" }
                        " later. Secrets are set below, not here."
                    }
                    div #config-errors .field-error role="alert" hidden {}
                    label.choice {
                        input type="checkbox" #config-apply checked;
                        " Apply now (recreates the container)"
                    }
                    div.actions { button.primary type="submit" #config-submit { "Save configuration" } }
                }
            }
        }
    }
}

fn upgrade() -> Markup {
    html! {
        section.card aria-labelledby="h-upgrade" {
            h2 #h-upgrade { "Upgrade" }
            p.help {
                "Replaces the container by one of this image and keeps it only if it stays up \
                 (and answers its health probe) until the deadline; otherwise the old container \
                 runs again, unchanged. Leave the image as it is to pick up a tag that moved."
            }
            p #drift-note .drift-note role="status" hidden {
                "The image tag now names another image than this bot runs: upgrade to pick it up."
            }
            form #upgrade-form .inline-form novalidate {
                div.field {
                    label for="upgrade-image" { "Image" }
                    input type="text" #upgrade-image autocomplete="off" spellcheck="false"
                        aria-describedby=(error_id("image"));
                    (ErrorSlot("image"))
                }
                div.field {
                    label for="upgrade-timeout" { "Health deadline (s)" }
                    input type="number" #upgrade-timeout .narrow value="300" min="1" max="3600"
                        aria-describedby=(error_id("timeout_secs"));
                    (ErrorSlot("timeout_secs"))
                }
                button.primary type="submit" #upgrade-submit { "Upgrade" }
            }
            p #upgrade-result .muted role="status" {}
        }
    }
}

fn secrets() -> Markup {
    html! {
        section.card aria-labelledby="h-secrets" {
            h2 #h-secrets { "Secrets" }
            p.help {
                "Values are write-only: they are never shown, only replaced or deleted. How a \
                 new value takes effect is the template's policy: generic bots see the file \
                 change in place at once (their secrets directory is mounted); OpenClaw reads \
                 its secrets at start, so setting one restarts a running openclaw bot. Secrets \
                 the template needs cannot be deleted."
            }
            ul #secret-list .secret-list {}
            form #secret-form .inline-form novalidate {
                div.field {
                    label for="secret-name" { "Name" }
                    input type="text" #secret-name autocomplete="off" spellcheck="false"
                        autocapitalize="characters" aria-describedby=(error_id("name"));
                    (ErrorSlot("name"))
                }
                div.field {
                    label for="secret-value" { "Value" }
                    input type="password" #secret-value autocomplete="new-password"
                        aria-describedby=(error_id("value"));
                    (ErrorSlot("value"))
                }
                button.primary type="submit" #secret-submit { "Set secret" }
            }
        }
    }
}

fn logs() -> Markup {
    html! {
        section.card aria-labelledby="h-logs" {
            h2 #h-logs { "Logs" }
            div.toolbar {
                label {
                    "Last "
                    input type="number" #log-tail value="200" min="1" max="10000" .narrow;
                    " lines"
                }
                button type="button" #log-load { "Load" }
                label.choice { input type="checkbox" #log-follow checked; " Follow" }
                label {
                    "Filter "
                    input type="search" #log-filter placeholder="show lines containing…"
                        autocomplete="off";
                }
                button type="button" #log-download { "Download" }
            }
            p #log-status .muted role="status" {}
            div #log .log role="log" tabindex="0" aria-label="Log lines" aria-live="off" {}
            button #log-resume .resume type="button" hidden {
                "Paused while you read: jump to the latest lines"
            }
        }
    }
}

/// `GET /bots/{id}`: one bot.
pub async fn bot_detail(
    s: BrowserSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    if let Some(missing) = no_such_bot(&state, &id).await {
        return missing;
    }
    Page {
        title: &id,
        name: Script::Bot.page(),
        script: Some(Script::Bot),
        csrf: Some(&s.csrf),
        nav: Nav::Fleet,
        bot_id: Some(&id),
        body: html! {
            (heading(&id))
            (state_and_resources())
            (configuration())
            (upgrade())
            (secrets())
            (super::bot_usage())
            (logs())
        },
    }
    .respond(StatusCode::OK)
}
