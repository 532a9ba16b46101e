//! The dashboard's pages. Each is a server-rendered shell: headings, forms, labelled controls
//! and empty regions that `app.js` fills from the JSON API and keeps current from
//! `GET /api/events`. Nothing here ever holds a secret value.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{Nav, Page, error_page, esc};
use super::session::BrowserSession;
use crate::bots::BotError;
use crate::bots::template::TEMPLATE_NAMES;
use crate::http::AppState;

/// States a bot can be in, for the fleet filter (the API's `state` values).
const STATES: &[&str] = &[
    "running",
    "created",
    "stopped",
    "error",
    "crash_loop",
    "missing",
];

/// Chat channels the openclaw form offers, with the secrets each needs. The server's template
/// is the authority: it rejects anything else and names every missing secret.
const OPENCLAW_CHANNELS: &[(&str, &str)] = &[
    ("telegram", "TELEGRAM_BOT_TOKEN"),
    ("discord", "DISCORD_BOT_TOKEN"),
    ("slack", "SLACK_BOT_TOKEN SLACK_APP_TOKEN"),
];

/// Providers suggested by the openclaw form (any value may be typed; the server validates).
const OPENCLAW_PROVIDERS: &[&str] = &[
    "anthropic",
    "openai",
    "google",
    "openrouter",
    "ollama",
    "mistral",
    "groq",
    "deepseek",
    "grok",
    "venice",
    "cerebras",
    "fireworks",
    "togetherai",
    "deepinfra",
    "perplexity",
    "nvidia",
    "minimax",
    "moonshot",
    "scaleway",
    "nebius",
    "ovhcloud",
    "huggingface",
];

fn page(title: &str, page: &str, nav: Nav, s: &BrowserSession, body: String) -> Response {
    Page {
        title,
        page,
        csrf: Some(&s.csrf),
        nav,
        data: &[],
        body,
    }
    .respond(StatusCode::OK)
}

/// `GET /`: the fleet.
pub async fn fleet(s: BrowserSession) -> Response {
    let options: String = STATES
        .iter()
        .map(|st| format!("<option value=\"{0}\">{0}</option>", esc(st)))
        .collect();
    let body = format!(
        r#"<div class="title-row"><h1>Fleet</h1><a class="button primary" href="/bots/new">New bot</a></div>
<div class="toolbar" role="search">
<label>Name <input type="search" id="filter-name" placeholder="filter by name or id" autocomplete="off"></label>
<label>State <select id="filter-state"><option value="">any</option>{options}</select></label>
</div>
<div class="toolbar" role="group" aria-label="Actions on the selected bots">
<span id="selection-count" aria-live="polite">0 selected</span>
<button type="button" data-bulk="start" disabled>Start</button>
<button type="button" data-bulk="stop" disabled>Stop</button>
<button type="button" data-bulk="restart" disabled>Restart</button>
</div>
<div class="table-wrap">
<table class="fleet" id="fleet">
<caption class="sr-only">Bots, with their observed state and resource use</caption>
<thead><tr>
<th scope="col"><input type="checkbox" id="select-all" aria-label="Select all shown bots"></th>
<th scope="col">State</th><th scope="col">Bot</th><th scope="col">Health</th>
<th scope="col">Uptime</th><th scope="col">Restarts</th><th scope="col">CPU</th>
<th scope="col">Memory</th><th scope="col">Image</th>
</tr></thead>
<tbody id="fleet-rows"></tbody>
</table>
</div>
<p id="fleet-empty" class="empty" hidden>No bots yet. <a href="/bots/new">Create the first one</a>.</p>
<p id="fleet-none-shown" class="empty" hidden>No bot matches the filter.</p>
<p id="fleet-loading" class="empty">Loading…</p>"#
    );
    page("Fleet", "fleet", Nav::Fleet, &s, body)
}

/// An input's error slot, named after the API field path it shows messages for.
fn error_slot(field: &str) -> String {
    format!(
        "<p class=\"field-error\" id=\"{}\" data-error-for=\"{}\" hidden></p>",
        esc(&error_id(field)),
        esc(field)
    )
}

fn error_id(field: &str) -> String {
    let slug: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("err-{slug}")
}

/// A labelled text-like input bound to an API field.
fn input(field: &str, label: &str, kind: &str, attrs: &str, help: &str) -> String {
    let id = format!("f-{}", field.replace('.', "-"));
    let help_html = if help.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"help\" id=\"{}-help\">{}</p>",
            esc(&id),
            esc(help)
        )
    };
    let described = if help.is_empty() {
        error_id(field)
    } else {
        format!("{id}-help {}", error_id(field))
    };
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label>\
         <input type=\"{kind}\" id=\"{id}\" name=\"{field}\" data-field=\"{field}\" \
         aria-describedby=\"{described}\" {attrs}>{help_html}{err}</div>",
        id = esc(&id),
        label = esc(label),
        kind = esc(kind),
        field = esc(field),
        described = esc(&described),
        err = error_slot(field),
    )
}

/// A labelled textarea bound to an API field.
fn textarea(field: &str, label: &str, rows: u32, placeholder: &str, help: &str) -> String {
    let id = format!("f-{}", field.replace('.', "-"));
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label>\
         <textarea id=\"{id}\" name=\"{field}\" data-field=\"{field}\" rows=\"{rows}\" \
         placeholder=\"{placeholder}\" spellcheck=\"false\" \
         aria-describedby=\"{id}-help {err_id}\"></textarea>\
         <p class=\"help\" id=\"{id}-help\">{help}</p>{err}</div>",
        id = esc(&id),
        label = esc(label),
        field = esc(field),
        placeholder = esc(placeholder),
        help = esc(help),
        err_id = esc(&error_id(field)),
        err = error_slot(field),
    )
}

/// `GET /bots/new`: the create form.
pub async fn new_bot(s: BrowserSession) -> Response {
    let templates: String = TEMPLATE_NAMES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let about = match *t {
                "generic" => "any local image, configured by you",
                "openclaw" => "the OpenClaw runtime: provider, model, channels, persona",
                _ => "",
            };
            format!(
                "<label class=\"choice\"><input type=\"radio\" name=\"template\" value=\"{t}\"{checked}> \
                 <strong>{t}</strong> <span class=\"muted\">{about}</span></label>",
                t = esc(t),
                checked = if i == 0 { " checked" } else { "" },
                about = esc(about),
            )
        })
        .collect();
    let providers: String = OPENCLAW_PROVIDERS
        .iter()
        .map(|p| format!("<option value=\"{}\"></option>", esc(p)))
        .collect();
    let channels: String = OPENCLAW_CHANNELS
        .iter()
        .map(|(c, secrets)| {
            format!(
                "<label class=\"choice\"><input type=\"checkbox\" name=\"channel\" value=\"{c}\" \
                 data-secrets=\"{secrets}\"> {c} <span class=\"muted\">({secrets})</span></label>",
                c = esc(c),
                secrets = esc(secrets),
            )
        })
        .collect();
    let body = format!(
        r#"<h1>New bot</h1>
<form id="create-form" class="card" novalidate>
<div id="form-summary" class="error-summary" role="alert" tabindex="-1" hidden></div>
<fieldset data-field="template"><legend>Template</legend>{templates}{template_err}</fieldset>
<fieldset><legend>Bot</legend>
{id_input}
{name_input}
{image_input}
{command}
</fieldset>
<fieldset id="openclaw-settings" data-field="settings" hidden><legend>OpenClaw settings</legend>
{settings_err}
<div class="field"><label for="f-settings-provider">Provider</label>
<input type="text" id="f-settings-provider" data-field="settings.provider" list="providers" autocomplete="off" aria-describedby="f-settings-provider-help {provider_err_id}">
<datalist id="providers">{providers}</datalist>
<p class="help" id="f-settings-provider-help">The LLM provider; its key is the secret <code>&lt;PROVIDER&gt;_API_KEY</code> (none for ollama).</p>{provider_err}</div>
{model_input}
<fieldset class="inner" data-field="settings.channels"><legend>Channels</legend>{channels}{channels_err}</fieldset>
{persona_name}
{soul}
{identity}
{gateway_port}
{base_url}
</fieldset>
<fieldset><legend>Runtime</legend>
{env}
{ports}
<div class="grid3">
{memory}
{cpus}
{pids}
</div>
<div class="grid3">
{probe_port}
{probe_path}
</div>
<label class="choice"><input type="checkbox" id="f-start" checked> Start the bot after creating it</label>
</fieldset>
<fieldset data-field="secrets" id="secrets-fieldset"><legend>Secrets</legend>
<p class="help" id="secrets-help">Written to the bot's secrets directory (mounted read-only at <code>/run/secrets</code>), never stored elsewhere and never shown again. Rows left without a value are ignored.</p>
{secrets_err}
<div id="secret-rows"></div>
<button type="button" id="add-secret">Add a secret</button>
</fieldset>
<div class="actions"><button type="submit" class="primary" id="create-submit">Create bot</button> <a href="/">Cancel</a></div>
</form>"#,
        template_err = error_slot("template"),
        id_input = input(
            "id",
            "Id",
            "text",
            "required autocomplete=\"off\" spellcheck=\"false\" autocapitalize=\"none\"",
            "1-63 lowercase letters, digits and '-': the container's name and hostname.",
        ),
        name_input = input(
            "name",
            "Display name",
            "text",
            "autocomplete=\"off\"",
            "Optional; defaults to the id."
        ),
        image_input = input(
            "image",
            "Image",
            "text",
            "autocomplete=\"off\" spellcheck=\"false\"",
            "An image already present on the Docker Engine (botmaker never pulls).",
        ),
        command = textarea(
            "command",
            "Command",
            2,
            "one argument per line",
            "Optional; one argument per line. Empty: the image's own command."
        ),
        settings_err = error_slot("settings"),
        provider_err_id = esc(&error_id("settings.provider")),
        provider_err = error_slot("settings.provider"),
        model_input = input(
            "settings.model",
            "Model",
            "text",
            "autocomplete=\"off\" spellcheck=\"false\"",
            "e.g. claude-opus-4-5 or gpt-4.1"
        ),
        channels_err = error_slot("settings.channels"),
        persona_name = input(
            "settings.persona.name",
            "Persona name",
            "text",
            "autocomplete=\"off\"",
            "Optional."
        ),
        soul = textarea(
            "settings.persona.soul",
            "Soul",
            3,
            "Curious and kind.",
            "Optional: SOUL.md, who the bot is."
        ),
        identity = textarea(
            "settings.persona.identity",
            "Identity",
            3,
            "",
            "Optional: IDENTITY.md."
        ),
        gateway_port = input(
            "settings.gateway_port",
            "Gateway port",
            "number",
            "min=\"1\" max=\"65535\"",
            "Optional; 18789 by default."
        ),
        base_url = input(
            "settings.base_url",
            "Provider base URL",
            "url",
            "autocomplete=\"off\"",
            "Optional; overrides the provider's API address."
        ),
        env = textarea(
            "env",
            "Environment",
            3,
            "KEY=value",
            "Non-secret variables, one KEY=value per line."
        ),
        ports = textarea(
            "ports",
            "Published ports",
            2,
            "8080  or  18080:8080  or  127.0.0.1:18080:8080/udp",
            "One per line: [host address:][host port:]container port[/udp]. Published on 127.0.0.1 unless an address is given."
        ),
        memory = input(
            "limits.memory_mb",
            "Memory limit (MiB)",
            "number",
            "min=\"1\"",
            ""
        ),
        cpus = input(
            "limits.cpus",
            "CPU limit (cores)",
            "number",
            "min=\"0\" step=\"0.1\"",
            ""
        ),
        pids = input("limits.pids", "Process limit", "number", "min=\"1\"", ""),
        probe_port = input(
            "health_check.port",
            "Health probe port",
            "number",
            "min=\"1\" max=\"65535\"",
            "Optional: botmaker GETs this port…"
        ),
        probe_path = input(
            "health_check.path",
            "Health probe path",
            "text",
            "placeholder=\"/healthz\"",
            "…at this path."
        ),
        secrets_err = error_slot("secrets"),
    );
    page("New bot", "new-bot", Nav::NewBot, &s, body)
}

/// `GET /bots/{id}`: one bot.
pub async fn bot_detail(
    s: BrowserSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    match state.bots.get(&id).await {
        Ok(_) => {}
        Err(BotError::NotFound(_) | BotError::Validation(_)) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such bot",
                &format!("There is no bot with the id '{id}'."),
            );
        }
        // Docker or the database is unwell: the page still loads and says so when it asks.
        Err(_) => {}
    }
    let body = format!(
        r#"<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Fleet</a> › <span>{id}</span></nav>
<div class="title-row">
<h1><span class="light" id="bot-light" aria-hidden="true"></span> <span id="bot-name">{id}</span></h1>
<span class="badge" id="bot-state" role="status">…</span>
</div>
<div class="actions" role="group" aria-label="Bot actions">
<button type="button" data-action="start">Start</button>
<button type="button" data-action="stop">Stop</button>
<button type="button" data-action="restart">Restart</button>
<button type="button" data-action="apply" title="Recreate the container from the current configuration">Apply changes</button>
<button type="button" data-action="delete" class="danger">Delete…</button>
</div>
<div class="columns">
<section aria-labelledby="h-state" class="card">
<h2 id="h-state">Desired and observed state</h2>
<table class="kv" id="state-table"><tbody></tbody></table>
</section>
<section aria-labelledby="h-resources" class="card">
<h2 id="h-resources">CPU and memory</h2>
<p id="stats-summary" class="muted">No samples yet (a bot is sampled while it runs).</p>
<figure><figcaption>CPU (% of one core)</figcaption><svg id="chart-cpu" class="chart" viewBox="0 0 600 140" role="img" aria-label="CPU use over the last minutes"></svg></figure>
<figure><figcaption>Memory (of its limit)</figcaption><svg id="chart-mem" class="chart" viewBox="0 0 600 140" role="img" aria-label="Memory use over the last minutes"></svg></figure>
</section>
</div>
<section aria-labelledby="h-config" class="card">
<h2 id="h-config">Configuration</h2>
<dl class="config" id="config"></dl>
<details id="edit-config"><summary>Edit configuration</summary>
<form id="config-form" novalidate>
<div class="field"><label for="config-json">Configuration (JSON: name, image, command, env, ports, limits, settings)</label>
<textarea id="config-json" rows="14" spellcheck="false" aria-describedby="config-help config-errors"></textarea>
<p class="help" id="config-help">Saved changes take effect when the container is recreated: tick the box, or press <em>Apply changes</em> later. Secrets are set below, not here.</p>
<div id="config-errors" class="field-error" role="alert" hidden></div></div>
<label class="choice"><input type="checkbox" id="config-apply" checked> Apply now (recreates the container)</label>
<div class="actions"><button type="submit" class="primary">Save configuration</button></div>
</form>
</details>
</section>
<section aria-labelledby="h-secrets" class="card">
<h2 id="h-secrets">Secrets</h2>
<p class="help">Values are write-only: they are never shown, only replaced or deleted. How a new value takes effect is the template's policy: generic bots see the file change in place at once (their secrets directory is mounted); OpenClaw reads its secrets at start, so setting one restarts a running openclaw bot. Secrets the template needs cannot be deleted.</p>
<ul id="secret-list" class="secret-list"></ul>
<form id="secret-form" class="inline-form" novalidate>
<div class="field"><label for="secret-name">Name</label><input type="text" id="secret-name" autocomplete="off" spellcheck="false" autocapitalize="characters" aria-describedby="{name_err_id}">{name_err}</div>
<div class="field"><label for="secret-value">Value</label><input type="password" id="secret-value" autocomplete="new-password" aria-describedby="{value_err_id}">{value_err}</div>
<button type="submit" class="primary" id="secret-submit">Set secret</button>
</form>
</section>
<section aria-labelledby="h-logs" class="card">
<h2 id="h-logs">Logs</h2>
<div class="toolbar">
<label>Last <input type="number" id="log-tail" value="200" min="1" max="10000" class="narrow"> lines</label>
<button type="button" id="log-load">Load</button>
<label class="choice"><input type="checkbox" id="log-follow" checked> Follow</label>
<label>Filter <input type="search" id="log-filter" placeholder="show lines containing…" autocomplete="off"></label>
<button type="button" id="log-download">Download</button>
</div>
<p id="log-status" class="muted" role="status"></p>
<div id="log" class="log" role="log" tabindex="0" aria-label="Log lines" aria-live="off"></div>
<button type="button" id="log-resume" class="resume" hidden>Paused while you read: jump to the latest lines</button>
</section>"#,
        id = esc(&id),
        name_err_id = esc(&error_id("name")),
        name_err = error_slot("name"),
        value_err_id = esc(&error_id("value")),
        value_err = error_slot("value"),
    );
    Page {
        title: &id,
        page: "bot",
        csrf: Some(&s.csrf),
        nav: Nav::Fleet,
        data: &[("bot-id", &id)],
        body,
    }
    .respond(StatusCode::OK)
}

/// `GET /admin`: orphans and API tokens.
pub async fn admin(s: BrowserSession) -> Response {
    let body = format!(
        r#"<h1>Admin</h1>
<section aria-labelledby="h-orphans" class="card">
<h2 id="h-orphans">Orphans</h2>
<p class="help">Containers, secrets and workspace directories of this installation that belong to no bot (left by a crash or by hand). Cleaning up removes them for good.</p>
<div id="orphans"><p class="muted">Loading…</p></div>
<div class="actions"><button type="button" id="orphans-refresh">Look again</button> <button type="button" id="cleanup" class="danger" disabled>Clean up…</button></div>
</section>
<section aria-labelledby="h-tokens" class="card">
<h2 id="h-tokens">API tokens</h2>
<p class="help">For scripts and the CLI: send <code>Authorization: Bearer &lt;token&gt;</code>. A token is shown once, when it is created.</p>
<form id="token-form" class="inline-form" novalidate>
<div class="field"><label for="token-name">Name</label><input type="text" id="token-name" autocomplete="off" placeholder="ci, laptop…" aria-describedby="{err_id}">{err}</div>
<button type="submit" class="primary">Create token</button>
</form>
<div id="token-created" class="once" role="alert" hidden>
<p><strong>Copy this token now:</strong> it will not be shown again.</p>
<div class="copy-row"><label class="sr-only" for="token-value">New token</label><input type="text" id="token-value" readonly><button type="button" id="token-copy">Copy</button> <button type="button" id="token-dismiss">Done</button></div>
</div>
<div class="table-wrap"><table id="tokens"><caption class="sr-only">API tokens</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody id="token-rows"></tbody></table></div>
<p id="tokens-empty" class="empty" hidden>No API tokens.</p>
</section>"#,
        err_id = esc(&error_id("token.name")),
        err = error_slot("token.name"),
    );
    page("Admin", "admin", Nav::Admin, &s, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ids_are_valid_html_ids() {
        assert_eq!(
            error_id("settings.persona.name"),
            "err-settings-persona-name"
        );
        assert_eq!(error_id("ports[0].host"), "err-ports-0--host");
    }
}
