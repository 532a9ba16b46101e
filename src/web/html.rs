//! HTML building blocks: the escaping helper every interpolated value goes through, and the
//! page layout (head, navigation, logout form) shared by every page.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::assets;

/// `s` with the five HTML-significant characters replaced by entities: safe in text and in
/// double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which entry of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The fleet and a bot's page.
    Fleet,
    /// The create form.
    NewBot,
    /// Orphans and tokens.
    Admin,
    /// Pages shown before login: no navigation at all.
    None,
}

/// A page to wrap in the layout.
pub struct Page<'a> {
    /// `<title>` and nothing else (the `<h1>` is part of `body`).
    pub title: &'a str,
    /// `data-page` of `<body>`: selects the script module that runs.
    pub page: &'a str,
    /// The session's CSRF token, for the meta tag and the logout form (absent before login).
    pub csrf: Option<&'a str>,
    /// Active navigation entry.
    pub nav: Nav,
    /// Extra `data-*` attributes of `<body>`, names without the prefix (values are escaped).
    pub data: &'a [(&'a str, &'a str)],
    /// The contents of `<main>`, already escaped.
    pub body: String,
}

impl Page<'_> {
    /// The full document.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 2048);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"color-scheme\" content=\"light dark\">\n\
             <title>{title} · botmaker</title>\n",
            title = esc(self.title)
        );
        if let Some(csrf) = self.csrf {
            let _ = writeln!(out, "<meta name=\"csrf-token\" content=\"{}\">", esc(csrf));
        }
        let _ = write!(
            out,
            "<link rel=\"icon\" href=\"data:,\">\n\
             <link rel=\"stylesheet\" href=\"{css}\">\n\
             <script src=\"{js}\" defer></script>\n</head>\n<body data-page=\"{page}\"",
            css = esc(&assets::css_url()),
            js = esc(&assets::js_url()),
            page = esc(self.page),
        );
        for (k, v) in self.data {
            let _ = write!(out, " data-{}=\"{}\"", esc(k), esc(v));
        }
        out.push_str(">\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n");
        out.push_str("<header class=\"top\">\n<a class=\"brand\" href=\"/\">botmaker</a>\n");
        if let (Some(csrf), true) = (self.csrf, self.nav != Nav::None) {
            out.push_str("<nav aria-label=\"Main\"><ul>");
            for (entry, href, label) in [
                (Nav::Fleet, "/", "Fleet"),
                (Nav::NewBot, "/bots/new", "New bot"),
                (Nav::Admin, "/admin", "Admin"),
            ] {
                let current = if entry == self.nav {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<li><a href=\"{}\"{current}>{}</a></li>",
                    esc(href),
                    esc(label)
                );
            }
            out.push_str("</ul></nav>\n");
            out.push_str(
                "<span id=\"live\" class=\"live\" data-state=\"connecting\" role=\"status\" \
                 title=\"Live updates from the server\">connecting…</span>\n",
            );
            let _ = writeln!(
                out,
                "<form class=\"logout\" method=\"post\" action=\"/logout\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" class=\"link\">Log out</button></form>",
                esc(csrf)
            );
        }
        out.push_str("</header>\n<main id=\"main\" tabindex=\"-1\">\n");
        out.push_str(&self.body);
        out.push_str(
            "\n</main>\n<div id=\"toast\" class=\"toast\" role=\"status\" aria-live=\"polite\"></div>\n\
             <dialog id=\"confirm\" aria-labelledby=\"confirm-title\">\n\
             <h2 id=\"confirm-title\">Are you sure?</h2>\n<p id=\"confirm-text\"></p>\n\
             <div class=\"actions\"><button type=\"button\" id=\"confirm-cancel\">Cancel</button>\
             <button type=\"button\" id=\"confirm-ok\" class=\"danger\">Confirm</button></div>\n\
             </dialog>\n</body>\n</html>\n",
        );
        out
    }

    /// The page as a response with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        (status, Html(self.render())).into_response()
    }
}

/// A plain page saying what went wrong, for errors met while rendering a page.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    Page {
        title,
        page: "error",
        csrf: None,
        nav: Nav::None,
        data: &[],
        body: format!(
            "<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/\">Back to the fleet</a></p>",
            esc(title),
            esc(message)
        ),
    }
    .respond(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(esc("plain-text 123"), "plain-text 123");
    }

    #[test]
    fn layout_escapes_interpolated_values() {
        let html = Page {
            title: "<t>",
            page: "p\"",
            csrf: Some("c\"><script>"),
            nav: Nav::Fleet,
            data: &[("bot-id", "\"><img>")],
            body: String::new(),
        }
        .render();
        assert!(html.contains("<title>&lt;t&gt; · botmaker</title>"));
        assert!(html.contains("data-page=\"p&quot;\""));
        assert!(html.contains("data-bot-id=\"&quot;&gt;&lt;img&gt;\""));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img>"));
    }
}
