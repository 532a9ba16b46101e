//! The login page's markup. It sits beside [`crate::web::session`], which renders it and owns the
//! form's handling, cookies and tokens, rather than under `pages`: every page needs the session
//! extractor, so the session cannot also depend on `pages`.

use maud::html;

use crate::web::assets::Script;
use crate::web::layout::{Nav, Page};

/// The login page: `error` from the last attempt, the local path to go to after logging in,
/// and the form's double-submit token.
pub fn page(
    error: Option<&str>,
    next: &str,
    form_token: &str,
    password_file: &str,
) -> Page<'static> {
    let described = if error.is_some() {
        "login-error login-hint"
    } else {
        "login-hint"
    };
    Page {
        title: "Log in",
        name: Script::Login.page(),
        script: Some(Script::Login),
        csrf: None,
        nav: Nav::None,
        bot_id: None,
        body: html! {
            section.login.card {
                h1 { "Log in to botmaker" }
                @if let Some(error) = error {
                    p.error #login-error role="alert" { (error) }
                }
                form method="post" action="/login" #login-form {
                    input type="hidden" name="csrf" value=(form_token);
                    input type="hidden" name="next" value=(next);
                    label for="password" { "Admin password" }
                    input type="password" #password name="password"
                        autocomplete="current-password" required autofocus
                        aria-describedby=(described);
                    button.primary type="submit" { "Log in" }
                }
                div.hint #login-hint {
                    p {
                        strong { "First run?" }
                        " When no admin password is configured, " code { "botmaker serve" }
                        " generates one and saves it in the file " code { "admin-password" }
                        " in its data directory: " code { "<data dir>/admin-password" }
                        " (the data directory is " code { "--data-dir" } " / "
                        code { "BOTMAKER_DATA_DIR" } ", " code { "./data" }
                        " by default; the server also printed the full path when it started). \
                         Read it with " code { "cat " (password_file) } "."
                    }
                    p {
                        "To choose your own, set " code { "BOTMAKER_ADMIN_PASSWORD_FILE" }
                        " and restart."
                    }
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_and_the_next_path_are_escaped() {
        let html = page(
            Some("<b>no</b>"),
            "/x\"><script>",
            "tok",
            "/d<i>/admin-password",
        )
        .render()
        .into_string();
        assert!(html.contains(
            r#"<p class="error" id="login-error" role="alert">&lt;b&gt;no&lt;/b&gt;</p>"#
        ));
        assert!(html.contains(r#"name="next" value="/x&quot;&gt;&lt;script&gt;""#));
        assert!(html.contains(r#"name="csrf" value="tok""#));
        assert!(html.contains(r#"aria-describedby="login-error login-hint""#));
        assert!(html.contains("cat /d&lt;i&gt;/admin-password"));
        let plain = page(None, "/", "tok", "/srv/data/admin-password")
            .render()
            .into_string();
        assert!(!plain.contains("login-error"));
    }
}
