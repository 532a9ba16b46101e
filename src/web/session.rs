//! The browser session: the login and logout forms, the cookie, and the extractor that sends a
//! visitor without a session to the login page.
//!
//! The session cookie is `HttpOnly` (scripts cannot read it), `SameSite=Strict` (other sites
//! cannot make the browser send it), and `Secure` when users come over https (an https
//! `--public-url`, or `X-Forwarded-Proto: https` from a proxy trusted with `--trust-proxy`). Every state change made with it needs the session's CSRF
//! token besides ([`crate::access::csrf_token_for`]): the API checks the `X-CSRF-Token` header,
//! the logout form here checks its hidden field. The login form, made before any session
//! exists, uses a double-submit token of its own in a short-lived cookie.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use chrono::Utc;
use serde::Deserialize;

use super::layout::error_page;
use super::login_page as login;
use crate::access::{Credential, Principal, SESSION_COOKIE, csrf_matches, csrf_token_for};
use crate::auth::{hash_token, new_id};
use crate::edge::{ApiError, AppState, ClientIp};

/// Cookie holding the login form's double-submit token (path `/login` only).
const LOGIN_COOKIE: &str = "botmaker_login";
/// How long a login form stays usable.
const LOGIN_FORM_TTL_SECS: u64 = 3600;

/// A logged-in browser: what a page needs to embed for its requests.
pub struct BrowserSession {
    /// The CSRF token of the session.
    pub csrf: String,
}

/// The session token of the request's cookie and its checked credential, if it names a live
/// login session. API tokens are not accepted in the cookie: the dashboard is for people.
pub async fn session_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, Credential)>, ()> {
    let Some(token) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match state.auth.authenticate(&token).await {
        Ok(Some(c)) if matches!(c.principal, Principal::Session { .. }) => Ok(Some((token, c))),
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}

impl FromRequestParts<AppState> for BrowserSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session_token(state, &parts.headers).await {
            Ok(Some((token, _))) => Ok(Self {
                csrf: csrf_token_for(&token),
            }),
            Ok(None) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let to = if here == "/" {
                    "/login".to_string()
                } else {
                    format!("/login?next={}", encode_query(&here))
                };
                Err(Redirect::to(&to).into_response())
            }
            Err(()) => Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server error",
                "The session could not be checked (details are in the server log).",
            )),
        }
    }
}

/// Percent-encodes `s` for a query value (keeps unreserved characters and `/`).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after logging in: a local path only (no `//host`, no `\`), never back to the
/// login or logout pages.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && !n.starts_with("/login")
                && !n.starts_with("/logout") =>
        {
            n
        }
        _ => "/",
    }
}

/// A `Set-Cookie` value; `secure` adds `Secure` ([`crate::access::Auth::secure_cookies`]).
fn cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex tokens")
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The login page, with a fresh form token (and its cookie, `Secure` if `secure`).
fn login_form(
    status: StatusCode,
    error: Option<&str>,
    next: &str,
    secure: bool,
    password_file: &str,
) -> Response {
    let form_token = new_id();
    let page = login::page(error, next, &form_token, password_file);
    (
        status,
        AppendHeaders([(
            header::SET_COOKIE,
            cookie(
                LOGIN_COOKIE,
                &form_token,
                "/login",
                LOGIN_FORM_TTL_SECS,
                secure,
            ),
        )]),
        page.respond(status),
    )
        .into_response()
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Ok(Some(_)) = session_token(&state, &headers).await {
        return Redirect::to(next).into_response();
    }
    login_form(
        StatusCode::OK,
        None,
        next,
        state.auth.secure_cookies(&headers),
        &state.auth.password_file_hint(),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

fn form_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, LOGIN_COOKIE)
}

/// The value of the request's cookie `name` (read through axum-extra's [`CookieJar`]).
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned())
}

/// `POST /login`: checks the form token and the password, then opens a session.
pub async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let secure = state.auth.secure_cookies(&headers);
    let password_file = state.auth.password_file_hint();
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("The login form was malformed; please try again."),
            "/",
            secure,
            &password_file,
        );
    };
    let next = safe_next(form.next.as_deref()).to_string();
    let form_ok = form_cookie(&headers).is_some_and(|c| {
        !c.is_empty() && crate::auth::constant_time_eq(c.as_bytes(), form.csrf.as_bytes())
    });
    if !form_ok {
        return login_form(
            StatusCode::FORBIDDEN,
            Some("This login form has expired or did not come from this site; please try again."),
            &next,
            secure,
            &password_file,
        );
    }
    if form.password.is_empty() {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("Enter the admin password."),
            &next,
            secure,
            &password_file,
        );
    }
    match state.auth.login(ip, &form.password).await {
        Ok((token, expires_at)) => {
            let max_age = (expires_at - Utc::now()).num_seconds().max(0) as u64;
            (
                AppendHeaders([
                    (
                        header::SET_COOKIE,
                        cookie(SESSION_COOKIE, token.as_str(), "/", max_age, secure),
                    ),
                    (
                        header::SET_COOKIE,
                        cookie(LOGIN_COOKIE, "", "/login", 0, secure),
                    ),
                ]),
                Redirect::to(&next),
            )
                .into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status();
            let message = match status {
                StatusCode::UNAUTHORIZED => "Wrong password.".to_string(),
                StatusCode::TOO_MANY_REQUESTS => {
                    let res = e.into_response();
                    let secs = res
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("a few");
                    format!("Too many failed logins: try again in {secs} seconds.")
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    "The server is busy checking other logins; try again in a second.".to_string()
                }
                _ => "Logging in failed on the server (details are in its log).".to_string(),
            };
            login_form(status, Some(&message), &next, secure, &password_file)
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (CSRF-checked) and forgets the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let secure = state.auth.secure_cookies(&headers);
    let clear = AppendHeaders([(
        header::SET_COOKIE,
        cookie(SESSION_COOKIE, "", "/", 0, secure),
    )]);
    match session_token(&state, &headers).await {
        Ok(Some((token, _))) => {
            if !csrf_matches(&token, &csrf) {
                return error_page(
                    StatusCode::FORBIDDEN,
                    "Not logged out",
                    "The logout request did not carry this session's CSRF token, so it may \
                     not have come from this site. Use the Log out button of a dashboard page.",
                );
            }
            if state.auth.end_session(&hash_token(&token)).await.is_err() {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Not logged out",
                    "The session could not be ended (details are in the server log).",
                );
            }
            (clear, Redirect::to("/login")).into_response()
        }
        // No live session: nothing to end, and nothing a forged request could do.
        Ok(None) => (clear, Redirect::to("/login")).into_response(),
        Err(()) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not logged out",
            "The session could not be checked (details are in the server log).",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_only() {
        assert_eq!(safe_next(Some("/bots/a?x=1")), "/bots/a?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/login",
            "/logout",
            "",
            "bots",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn query_encoding_keeps_paths_readable() {
        assert_eq!(encode_query("/bots/a-b"), "/bots/a-b");
        assert_eq!(encode_query("/x?a=b&c"), "/x%3Fa%3Db%26c");
    }
}
