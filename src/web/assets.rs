//! The dashboard's static files, compiled into the binary and served under `/assets/` with a
//! content hash in their URL, so browsers may cache them for good and still never run a stale
//! script.
//!
//! Scripts are ES modules, one per page plus the shared modules they import; no build step, no
//! Node toolchain. A module's URL carries its hash, so an import must too: at start-up every
//! `from './x.js'` is rewritten to `from './x.js?v=<hash of x>'`, in dependency order, and each
//! module is hashed after that rewrite (a change in `common.js` changes every page's URL).
//!
//! Third-party files (xterm.js for the console) are vendored unchanged under `assets/vendor/`
//! (see its README: version, license, how to update) and served the same way.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::edge::ApiError;

/// A page's script module: what the page does in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// The fleet table (`/`).
    Fleet,
    /// The create form (`/bots/new`).
    NewBot,
    /// One bot (`/bots/{id}`).
    Bot,
    /// The nodes and their bots (`/nodes`).
    Nodes,
    /// Orphans and API tokens (`/admin`).
    Admin,
    /// The login form.
    Login,
    /// A bot's console (`/bots/{id}/console`).
    Console,
    /// LLM providers (`/providers`).
    Providers,
    /// LLM usage (`/usage`).
    Usage,
    /// Notification channels (`/alerts`).
    Alerts,
    /// The audit log (`/audit`).
    Audit,
}

impl Script {
    /// `data-page` of the pages it runs on.
    pub fn page(self) -> &'static str {
        match self {
            Script::Fleet => "fleet",
            Script::NewBot => "new-bot",
            Script::Bot => "bot",
            Script::Nodes => "nodes",
            Script::Admin => "admin",
            Script::Login => "login",
            Script::Console => "console",
            Script::Providers => "providers",
            Script::Usage => "usage",
            Script::Alerts => "alerts",
            Script::Audit => "audit",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Script::Fleet => "fleet.js",
            Script::NewBot => "new-bot.js",
            Script::Bot => "bot.js",
            Script::Nodes => "nodes.js",
            Script::Admin => "admin.js",
            Script::Login => "login.js",
            Script::Console => "console.js",
            Script::Providers => "providers.js",
            Script::Usage => "usage.js",
            Script::Alerts => "alerts.js",
            Script::Audit => "audit.js",
        }
    }
}

/// The files, dependencies before the modules that import them.
const SOURCES: &[(&str, &str)] = &[
    ("app.css", include_str!("assets/app.css")),
    ("common.js", include_str!("assets/common.js")),
    ("forms.js", include_str!("assets/forms.js")),
    ("llm.js", include_str!("assets/llm.js")),
    ("fleet.js", include_str!("assets/fleet.js")),
    ("new-bot.js", include_str!("assets/new-bot.js")),
    ("bot.js", include_str!("assets/bot.js")),
    ("nodes.js", include_str!("assets/nodes.js")),
    ("admin.js", include_str!("assets/admin.js")),
    ("login.js", include_str!("assets/login.js")),
    ("xterm.css", include_str!("assets/vendor/xterm/xterm.css")),
    ("xterm.mjs", include_str!("assets/vendor/xterm/xterm.mjs")),
    (
        "addon-fit.mjs",
        include_str!("assets/vendor/addon-fit/addon-fit.mjs"),
    ),
    ("console.css", include_str!("assets/console.css")),
    ("console.js", include_str!("assets/console.js")),
    ("providers.js", include_str!("assets/providers.js")),
    ("usage.js", include_str!("assets/usage.js")),
    ("alerts.js", include_str!("assets/alerts.js")),
    ("audit.js", include_str!("assets/audit.js")),
];

/// Hex characters of the content hash put in asset URLs.
const VERSION_LEN: usize = 16;

/// The start of an import specifier this module rewrites (relative, same directory).
const IMPORT_FROM: &str = "from './";

/// One file as served.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// The contents, imports rewritten to versioned URLs.
    body: String,
    /// `/assets/<name>?v=<hash of body>`.
    url: String,
    /// Every module it imports, directly or not (names).
    imports: BTreeSet<&'static str>,
}

fn version(contents: &str) -> String {
    let mut v = hex::encode(Sha256::digest(contents.as_bytes()));
    v.truncate(VERSION_LEN);
    v
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".js") || name.ends_with(".mjs") {
        "text/javascript; charset=utf-8"
    } else {
        "text/css; charset=utf-8"
    }
}

/// Rewrites the imports of `source` (the module `name`) to the versioned URLs of `linked`,
/// which must hold every module it imports.
fn link(name: &'static str, source: &str, linked: &[Asset]) -> Result<Asset, String> {
    let mut body = String::with_capacity(source.len() + 64);
    let mut imports = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(IMPORT_FROM) {
        let start = at + IMPORT_FROM.len();
        body.push_str(&rest[..start]);
        let len = rest[start..]
            .find('\'')
            .ok_or_else(|| format!("{name}: unterminated import"))?;
        let target = &rest[start..start + len];
        let dep = linked
            .iter()
            .find(|a| a.name == target)
            .ok_or_else(|| format!("{name} imports {target}, which is not listed before it"))?;
        body.push_str(target);
        body.push_str(&dep.url[dep.url.find('?').unwrap_or(dep.url.len())..]);
        imports.insert(dep.name);
        imports.extend(dep.imports.iter().copied());
        rest = &rest[start + len..];
    }
    body.push_str(rest);
    let url = format!("/assets/{name}?v={}", version(&body));
    Ok(Asset {
        name,
        content_type: content_type(name),
        body,
        url,
        imports,
    })
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let mut linked: Vec<Asset> = Vec::with_capacity(SOURCES.len());
    for (name, source) in SOURCES {
        let asset = link(name, source, &linked).unwrap_or_else(|e| panic!("dashboard assets: {e}"));
        linked.push(asset);
    }
    linked
});

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn url(name: &str) -> &'static str {
    &asset(name).expect("listed in SOURCES").url
}

/// `/assets/app.css?v=<hash of its contents>`.
pub fn css_url() -> &'static str {
    url("app.css")
}

/// The versioned URL of a listed style sheet other than `app.css` (a page's own).
pub fn stylesheet_url(name: &str) -> &'static str {
    assert!(name.ends_with(".css"), "{name} is not a style sheet");
    url(name)
}

/// The versioned URL of a page's script module.
pub fn script_url(script: Script) -> &'static str {
    url(script.file())
}

/// The versioned URLs of every module `script` imports, directly or not.
pub fn preload_urls(script: Script) -> impl Iterator<Item = &'static str> {
    let imports = &asset(script.file()).expect("listed in SOURCES").imports;
    imports.iter().map(|name| url(name))
}

/// `GET /assets/{file}`: any listed file; the `v` query is only there to change the URL.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = asset(&file) else {
        return ApiError::no_route().into_response();
    };
    let mut res = asset.body.as_str().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The URL changes with the contents, so a cached copy is never stale.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_SCRIPT: [Script; 11] = [
        Script::Fleet,
        Script::NewBot,
        Script::Bot,
        Script::Admin,
        Script::Login,
        Script::Console,
        Script::Providers,
        Script::Usage,
        Script::Alerts,
        Script::Audit,
        Script::Nodes,
    ];

    #[test]
    fn every_file_links_and_its_url_carries_a_hash_of_what_is_served() {
        assert_eq!(ASSETS.len(), SOURCES.len());
        for a in ASSETS.iter() {
            assert_eq!(a.url, format!("/assets/{}?v={}", a.name, version(&a.body)));
        }
        assert_eq!(version("a").len(), VERSION_LEN);
        assert_ne!(version("a"), version("b"));
        for s in EVERY_SCRIPT {
            assert!(asset(s.file()).is_some(), "{s:?}");
        }
    }

    #[test]
    fn imports_name_the_versioned_url_of_the_module_served() {
        let common = url("common.js");
        let forms = url("forms.js");
        let page = &asset("new-bot.js").unwrap().body;
        // Same URL everywhere: one instance of each shared module per page.
        assert!(page.contains(&format!("from '.{}'", &common["/assets".len()..])));
        assert!(page.contains(&format!("from '.{}'", &forms["/assets".len()..])));
        assert!(!page.contains("from './common.js'"));
        for a in ASSETS.iter() {
            for (at, _) in a.body.match_indices(IMPORT_FROM) {
                let spec = &a.body[at + IMPORT_FROM.len()..];
                let spec = &spec[..spec.find('\'').unwrap()];
                assert!(
                    spec.contains("?v="),
                    "{}: unversioned import {spec}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn a_page_preloads_exactly_what_it_imports() {
        let fleet: Vec<_> = preload_urls(Script::Fleet).collect();
        assert_eq!(fleet, [url("common.js")]);
        let new_bot: BTreeSet<_> = preload_urls(Script::NewBot).collect();
        assert_eq!(new_bot, BTreeSet::from([url("common.js"), url("forms.js")]));
    }

    #[test]
    fn the_console_imports_the_vendored_terminal_as_modules() {
        let console: BTreeSet<_> = preload_urls(Script::Console).collect();
        assert_eq!(
            console,
            BTreeSet::from([url("common.js"), url("xterm.mjs"), url("addon-fit.mjs")])
        );
        assert_eq!(content_type("xterm.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("xterm.css"), "text/css; charset=utf-8");
        // Served as published: the vendored files are not rewritten.
        assert_eq!(
            asset("xterm.mjs").unwrap().body,
            include_str!("assets/vendor/xterm/xterm.mjs")
        );
    }

    #[test]
    fn an_import_of_an_unlisted_module_is_refused() {
        let e = link("x.js", "import { a } from './nope.js';", &[])
            .err()
            .unwrap();
        assert!(e.contains("nope.js"), "{e}");
        let plain = link("y.js", "const a = 1;", &[]).unwrap();
        assert_eq!(plain.body, "const a = 1;");
        assert!(plain.imports.is_empty());
    }

    #[test]
    fn a_change_in_a_shared_module_changes_the_url_of_its_importers() {
        let base = |src: &str| link("common.js", src, &[]).unwrap();
        let page = |dep: Asset| link("p.js", "import { x } from './common.js';", &[dep]).unwrap();
        assert_ne!(
            page(base("export const x = 1;")).url,
            page(base("export const x = 2;")).url
        );
    }
}
