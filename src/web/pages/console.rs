//! `GET /bots/{id}/console`: a terminal into a running bot, the dashboard's `docker exec -it`.
//!
//! The page is a shell like the others; `console.js` runs xterm.js (vendored, see
//! `assets/vendor/README.md`) over the `exec/ws` WebSocket, authenticated by the session
//! cookie plus the page's CSRF token. It is the one page that allows inline style, because
//! xterm.js styles itself at run time; script stays `'self'` only.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};

use super::no_such_bot;
use crate::edge::{AppState, CONTENT_SECURITY_POLICY};
use crate::web::assets::{Script, stylesheet_url};
use crate::web::layout::{Nav, Page};
use crate::web::session::BrowserSession;

/// The command the form suggests: what most images have.
const DEFAULT_COMMAND: &str = "/bin/sh";

/// The global policy with inline style allowed (and nothing else changed).
static CONSOLE_CSP: LazyLock<String> = LazyLock::new(|| {
    let csp =
        CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");
    assert_ne!(
        csp, CONTENT_SECURITY_POLICY,
        "the policy has a style-src 'self'"
    );
    csp
});

/// The pages of one bot, as tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotTab {
    /// `/bots/{id}`: state, configuration, secrets, logs.
    Overview,
    /// `/bots/{id}/console`.
    Console,
}

/// The tab strip of a bot's pages.
pub fn bot_tabs(id: &str, current: BotTab) -> Markup {
    let tabs = [
        (BotTab::Overview, format!("/bots/{id}"), "Overview"),
        (BotTab::Console, format!("/bots/{id}/console"), "Console"),
    ];
    html! {
        nav.tabs aria-label="Bot pages" {
            @for (tab, href, label) in &tabs {
                a href=(href) aria-current=[(*tab == current).then_some("page")] { (label) }
            }
        }
    }
}

fn body(id: &str) -> Markup {
    html! {
        // Page style sheets (allowed in the body); the layout links app.css only.
        link rel="stylesheet" href=(stylesheet_url("xterm.css"));
        link rel="stylesheet" href=(stylesheet_url("console.css"));
        nav.crumbs aria-label="Breadcrumb" {
            a href="/" { "Fleet" } " › " a href=(format!("/bots/{id}")) { (id) } " › "
            span { "Console" }
        }
        div.title-row {
            h1 {
                span.light #bot-light aria-hidden="true" {}
                " "
                span #bot-name { (id) }
            }
            span.badge #bot-state role="status" { "…" }
        }
        (bot_tabs(id, BotTab::Console))
        section.card aria-labelledby="h-console" {
            h2 #h-console { "Console" }
            p.help {
                "Runs a command inside the bot's running container with a terminal, as "
                code { "docker exec -it" } " does. Every key goes to it (Ctrl-C too). The "
                "session ends when the command exits, when you disconnect or leave the page, "
                "or when you log out."
            }
            form #console-form .inline-form novalidate {
                div.field {
                    label for="console-cmd" { "Command" }
                    input type="text" #console-cmd value=(DEFAULT_COMMAND) autocomplete="off"
                        spellcheck="false" autocapitalize="off" aria-describedby="console-cmd-help";
                    p.help #console-cmd-help {
                        "The program and its arguments, separated by spaces."
                    }
                }
                div.actions {
                    button.primary type="submit" #console-connect disabled { "Connect" }
                    button type="button" #console-disconnect disabled { "Disconnect" }
                }
            }
            p #console-reason .muted role="status" { "Checking the bot…" }
            p #console-status role="status" aria-live="polite" {}
            div #terminal .terminal role="region" aria-label="Terminal" {}
        }
    }
}

/// `GET /bots/{id}/console`.
pub async fn bot_console(
    s: BrowserSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    if let Some(missing) = no_such_bot(&state, &id).await {
        return missing;
    }
    let title = format!("{id} · console");
    let mut res = Page {
        title: &title,
        name: Script::Console.page(),
        script: Some(Script::Console),
        csrf: Some(&s.csrf),
        nav: Nav::Fleet,
        bot_id: Some(&id),
        body: body(&id),
    }
    .respond(StatusCode::OK);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&CONSOLE_CSP).expect("a header value"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_policy_differs_from_the_global_one_by_inline_style_only() {
        let global: Vec<&str> = CONTENT_SECURITY_POLICY.split("; ").collect();
        let console: Vec<&str> = CONSOLE_CSP.split("; ").collect();
        assert_eq!(global.len(), console.len());
        for (g, c) in global.iter().zip(&console) {
            if g.starts_with("style-src") {
                assert_eq!(*c, "style-src 'self' 'unsafe-inline'");
            } else {
                assert_eq!(g, c);
            }
        }
        assert!(console.contains(&"script-src 'self'"));
    }

    #[test]
    fn tabs_mark_the_current_page_and_escape_the_id() {
        let html = bot_tabs("a\"b", BotTab::Console).into_string();
        assert!(
            html.contains(r#"<a href="/bots/a&quot;b">Overview</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/bots/a&quot;b/console" aria-current="page">Console</a>"#),
            "{html}"
        );
    }
}
