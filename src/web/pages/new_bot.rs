//! `GET /bots/new`: the create form. Its controls are named after the fields of the create
//! request, so the server's validation messages land next to them (`new-bot.js`). Templates,
//! providers and channels come from the domain: the form offers what the server accepts.

use axum::response::Response;
use maud::{Markup, html};

use super::page;
use crate::bots::template::TEMPLATE_NAMES;
use crate::bots::{Channel, PROVIDERS};
use crate::web::assets::Script;
use crate::web::form::{ErrorSlot, Input, InputKind, Suggestion, Textarea};
use crate::web::layout::Nav;
use crate::web::session::BrowserSession;

/// What a template is for, in the words of the form.
fn template_about(name: &str) -> &'static str {
    match name {
        "generic" => "any local image, configured by you",
        "openclaw" => "the OpenClaw runtime: provider, model, channels, persona",
        _ => "",
    }
}

fn templates() -> Markup {
    html! {
        fieldset data-field="template" {
            legend { "Template" }
            @for (i, t) in TEMPLATE_NAMES.iter().enumerate() {
                label.choice {
                    input type="radio" name="template" value=(t) checked[i == 0];
                    " " strong { (t) } " " span.muted { (template_about(t)) }
                }
            }
            (ErrorSlot("template"))
        }
    }
}

fn bot_fields() -> Markup {
    html! {
        fieldset {
            legend { "Bot" }
            (Input::text("id", "Id").required().no_autocomplete().no_spellcheck()
                .no_autocapitalize()
                .help("1-63 lowercase letters, digits and '-': the container's name and hostname."))
            (Input::text("name", "Display name").no_autocomplete().help("Optional; defaults to the id."))
            (Input::text("image", "Image").no_autocomplete().no_spellcheck()
                .help("An image already present on the Docker Engine (botmaker never pulls)."))
            (Textarea {
                field: "command",
                label: "Command",
                rows: 2,
                placeholder: "one argument per line",
                help: "Optional; one argument per line. Empty: the image's own command.",
            })
        }
    }
}

fn openclaw_settings() -> Markup {
    let providers = PROVIDERS
        .iter()
        .map(|p| Suggestion {
            value: p.id,
            secret: p.key_secret().map(|s| s.to_string()),
        })
        .collect();
    let keyless: Vec<&str> = PROVIDERS
        .iter()
        .filter(|p| !p.needs_key)
        .map(|p| p.id)
        .collect();
    html! {
        fieldset #openclaw-settings data-field="settings" hidden {
            legend { "OpenClaw settings" }
            (ErrorSlot("settings"))
            (Input::text("settings.provider", "Provider").no_autocomplete()
                .suggestions("providers", providers)
                .help_markup(html! {
                    "The LLM provider; its key is the secret " code { "<PROVIDER>_API_KEY" }
                    " (none for " (keyless.join(", ")) ")."
                }))
            (Input::text("settings.model", "Model").no_autocomplete().no_spellcheck()
                .help("e.g. claude-opus-4-5 or gpt-4.1"))
            fieldset.inner data-field="settings.channels" {
                legend { "Channels" }
                @for channel in Channel::ALL {
                    @let secrets = channel.secrets().iter().map(|(_, name)| *name)
                        .collect::<Vec<_>>().join(" ");
                    label.choice {
                        input type="checkbox" name="channel" value=(channel.id())
                            data-secrets=(secrets);
                        " " (channel.id()) " " span.muted { "(" (secrets) ")" }
                    }
                }
                (ErrorSlot("settings.channels"))
            }
            (Input::text("settings.persona.name", "Persona name").no_autocomplete().help("Optional."))
            (Textarea {
                field: "settings.persona.soul",
                label: "Soul",
                rows: 3,
                placeholder: "Curious and kind.",
                help: "Optional: SOUL.md, who the bot is.",
            })
            (Textarea {
                field: "settings.persona.identity",
                label: "Identity",
                rows: 3,
                placeholder: "",
                help: "Optional: IDENTITY.md.",
            })
            (Input::new("settings.gateway_port", "Gateway port", InputKind::PORT)
                .help("Optional; 18789 by default."))
            (Input::new("settings.base_url", "Provider base URL", InputKind::Url).no_autocomplete()
                .help("Optional; overrides the provider's API address."))
        }
    }
}

fn runtime() -> Markup {
    html! {
        fieldset {
            legend { "Runtime" }
            (Textarea {
                field: "env",
                label: "Environment",
                rows: 3,
                placeholder: "KEY=value",
                help: "Non-secret variables, one KEY=value per line.",
            })
            (Textarea {
                field: "ports",
                label: "Published ports",
                rows: 2,
                placeholder: "8080  or  18080:8080  or  127.0.0.1:18080:8080/udp",
                help: "One per line: [host address:][host port:]container port[/udp]. Published on 127.0.0.1 unless an address is given.",
            })
            div.grid3 {
                (Input::new("limits.memory_mb", "Memory limit (MiB)", InputKind::at_least(1.0)))
                (Input::new("limits.cpus", "CPU limit (cores)", InputKind::Number {
                    min: Some(0.0),
                    max: None,
                    step: Some(0.1),
                }))
                (Input::new("limits.pids", "Process limit", InputKind::at_least(1.0)))
            }
            div.grid3 {
                (Input::new("health_check.port", "Health probe port", InputKind::PORT)
                    .help("Optional: botmaker GETs this port…"))
                (Input::text("health_check.path", "Health probe path").placeholder("/healthz")
                    .help("…at this path."))
                (Input::new("stop_timeout_secs", "Stop grace (seconds)", InputKind::Number {
                    min: Some(1.0),
                    max: Some(crate::bots::spec::MAX_STOP_TIMEOUT_SECS as f64),
                    step: Some(1.0),
                })
                    .help("Time between SIGTERM and SIGKILL; the template's default (openclaw: 90 s), else the server's."))
            }
            label.choice {
                input type="checkbox" #f-start checked;
                " Start the bot after creating it"
            }
        }
    }
}

fn secrets() -> Markup {
    html! {
        fieldset data-field="secrets" #secrets-fieldset {
            legend { "Secrets" }
            p.help #secrets-help {
                "Written to the bot's secrets directory (mounted read-only at "
                code { "/run/secrets" }
                "), never stored elsewhere and never shown again. Rows left without a value \
                 are ignored."
            }
            (ErrorSlot("secrets"))
            div #secret-rows {}
            button type="button" #add-secret { "Add a secret" }
        }
    }
}

/// `GET /bots/new`: the create form.
pub async fn new_bot(s: BrowserSession) -> Response {
    let body = html! {
        h1 { "New bot" }
        form #create-form .card novalidate {
            div #form-summary .error-summary role="alert" tabindex="-1" hidden {}
            (templates())
            (bot_fields())
            (openclaw_settings())
            (runtime())
            (secrets())
            div.actions {
                button.primary type="submit" #create-submit { "Create bot" }
                " "
                a href="/" { "Cancel" }
            }
        }
    };
    page("New bot", Script::NewBot, Nav::NewBot, &s, body)
}
