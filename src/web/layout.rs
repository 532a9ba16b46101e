//! The page layout shared by every page: head (style sheet, the page's script module), header
//! with navigation and the logout form, the toast and confirmation dialog page scripts use.
//!
//! Built with maud, which escapes every interpolated value: no page holds a string of HTML
//! assembled by hand, and none carries inline script or style (the CSP forbids both).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets::{self, Script};

/// Which entry of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The fleet and a bot's page.
    Fleet,
    /// The create form.
    NewBot,
    /// LLM providers.
    Providers,
    /// LLM usage.
    Usage,
    /// Notification channels.
    Alerts,
    /// The nodes bots run on.
    Nodes,
    /// Orphans and tokens.
    Admin,
    /// The audit log.
    Audit,
    /// Pages shown before login: no navigation at all.
    None,
}

/// The navigation entries, in order.
const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Fleet, "/", "Fleet"),
    (Nav::NewBot, "/bots/new", "New bot"),
    (Nav::Providers, "/providers", "Providers"),
    (Nav::Usage, "/usage", "Usage"),
    (Nav::Alerts, "/alerts", "Alerts"),
    (Nav::Nodes, "/nodes", "Nodes"),
    (Nav::Admin, "/admin", "Admin"),
    (Nav::Audit, "/audit", "Audit"),
];

/// A page to wrap in the layout.
pub struct Page<'a> {
    /// `<title>` and nothing else (the `<h1>` is part of `body`).
    pub title: &'a str,
    /// `data-page` of `<body>` (`fleet`, `bot`...), for style sheets and tests.
    pub name: &'a str,
    /// The page's script module, if it has behaviour.
    pub script: Option<Script>,
    /// The session's CSRF token, for the meta tag and the logout form (absent before login).
    pub csrf: Option<&'a str>,
    /// Active navigation entry.
    pub nav: Nav,
    /// `data-bot-id` of `<body>`: the bot a bot page is about.
    pub bot_id: Option<&'a str>,
    /// The contents of `<main>`.
    pub body: Markup,
}

impl Page<'_> {
    /// The full document.
    pub fn render(&self) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (self.title) " · botmaker" }
                    @if let Some(csrf) = self.csrf {
                        meta name="csrf-token" content=(csrf);
                    }
                    link rel="icon" href="data:,";
                    link rel="stylesheet" href=(assets::css_url());
                    @if let Some(script) = self.script {
                        // The modules the page's script imports, fetched alongside it rather
                        // than after it.
                        @for url in assets::preload_urls(script) {
                            link rel="modulepreload" href=(url);
                        }
                        script type="module" src=(assets::script_url(script)) {}
                    }
                }
                body data-page=(self.name) data-bot-id=[self.bot_id] {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "botmaker" }
                        @if let (Some(csrf), true) = (self.csrf, self.nav != Nav::None) {
                            nav aria-label="Main" {
                                ul {
                                    @for (entry, href, label) in NAV {
                                        li {
                                            a href=(href)
                                                aria-current=[(*entry == self.nav).then_some("page")]
                                            { (label) }
                                        }
                                    }
                                }
                            }
                            span #live .live data-state="connecting" role="status"
                                title="Live updates from the server" { "connecting…" }
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                    main #main tabindex="-1" { (self.body) }
                    div #toast .toast role="status" aria-live="polite" {}
                    dialog #confirm aria-labelledby="confirm-title" {
                        h2 #confirm-title { "Are you sure?" }
                        p #confirm-text {}
                        div.actions {
                            button type="button" #confirm-cancel { "Cancel" }
                            button.danger type="button" #confirm-ok { "Confirm" }
                        }
                    }
                }
            }
        }
    }

    /// The page as a response with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        (status, self.render()).into_response()
    }
}

/// A plain page saying what went wrong, for errors met while rendering a page.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    Page {
        title,
        name: "error",
        script: None,
        csrf: None,
        nav: Nav::None,
        bot_id: None,
        body: html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Back to the fleet" } }
        },
    }
    .respond(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_escapes_interpolated_values() {
        let html = Page {
            title: "<t>",
            name: "p\"",
            script: Some(Script::Bot),
            csrf: Some("c\"><script>"),
            nav: Nav::Fleet,
            bot_id: Some("\"><img>"),
            body: html! { p { "<b>" } },
        }
        .render()
        .into_string();
        assert!(html.contains("<title>&lt;t&gt; · botmaker</title>"));
        assert!(html.contains("data-page=\"p&quot;\""));
        assert!(html.contains("data-bot-id=\"&quot;&gt;&lt;img&gt;\""));
        assert!(html.contains("<p>&lt;b&gt;</p>"));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img>"));
        assert_eq!(html.matches("<script").count(), 1, "the page module only");
    }

    #[test]
    fn navigation_marks_the_current_entry_and_only_after_login() {
        let page = |csrf, nav| {
            Page {
                title: "t",
                name: "t",
                script: None,
                csrf,
                nav,
                bot_id: None,
                body: html! {},
            }
            .render()
            .into_string()
        };
        let html = page(Some("tok"), Nav::Admin);
        assert!(html.contains(r#"<a href="/admin" aria-current="page">Admin</a>"#));
        assert!(html.contains(r#"<a href="/">Fleet</a>"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="tok">"#));
        let anonymous = page(None, Nav::None);
        assert!(!anonymous.contains("<nav") && !anonymous.contains("/logout"));
        assert!(
            !anonymous.contains("<script"),
            "a page without behaviour loads no script"
        );
    }
}
