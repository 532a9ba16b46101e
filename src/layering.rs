//! A test that keeps the module graph free of cycles: among the crate's top-level modules, and
//! among the sibling modules inside each directory module. A cycle means two modules cannot be
//! understood, tested or moved apart (`http` mounting `web` while `web` used `http`'s state;
//! `template` listing `openclaw` while `openclaw` implemented `template`'s trait).
//!
//! It reads the sources, as `rustc` gives no module graph: `use` trees and `crate::`/`super::`
//! paths in code (not in comments, strings or `#[cfg(test)]` modules), each resolved to the
//! deepest module it names. References between a module and its own ancestors or descendants
//! are not edges (a parent re-exports its children).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges a cycle may use, with why they are there. Keep this short.
const ALLOWED: &[(&str, &str, &str)] = &[(
    "bots::spec",
    "bots::validate",
    "LimitsSpec::memory_bytes clamps to validate's MAX_MEMORY_MB, the bound validation enforces",
)];

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Module = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src` with comments removed and string and character literals emptied, so that what is
/// left is code.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        match c[i] {
            '/' if at(i + 1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            'r' if (at(i + 1) == '"' || at(i + 1) == '#')
                && !at(i.wrapping_sub(1)).is_alphanumeric() =>
            {
                let mut k = i + 1;
                let mut hashes = 0;
                while at(k) == '#' {
                    hashes += 1;
                    k += 1;
                }
                if at(k) != '"' {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                k += 1;
                while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                    k += 1;
                }
                out.push_str("\"\"");
                i = k + 1 + hashes;
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                i += 1;
            }
            '\'' if at(i + 1) == '\\' => {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                out.push_str("' '");
                i += 1;
            }
            '\'' if at(i + 2) == '\'' => {
                out.push_str("' '");
                i += 3;
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// `code` without its `#[cfg(test)]` modules (test code may reach anywhere).
fn without_test_modules(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let item_end = after.find(['{', ';']).unwrap_or(after.len());
        if !after[..item_end].contains("mod ") || after[item_end..].starts_with(';') {
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0;
        let mut end = after.len();
        for (k, ch) in after.char_indices().skip(item_end) {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` is `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("a closed use tree")];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand(p)
                .into_iter()
                .map(|x| format!("{}{}", prefix.trim(), x.trim()))
        })
        .collect()
}

/// Every `crate::`, `super::` and `self::` path in `code`, and every path of a `use` tree
/// (expanded).
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        // A `use` item: at the start of a statement, or after `pub`, `pub(crate)`...
        let before = code[..start].trim_end();
        let item = before.is_empty()
            || before.ends_with([';', '{', '}', ']', ')'])
            || before.ends_with(" pub")
            || before.ends_with("\npub")
            || before == "pub";
        if !item || (start > 0 && !bytes[start - 1].is_ascii_whitespace()) {
            continue;
        }
        let end = code[start..].find(';').map_or(code.len(), |e| start + e);
        paths.extend(expand(&code[start + 4..end].replace('\n', " ")));
    }
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let end = code[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| start + e);
            paths.push(code[start..end].to_string());
        }
    }
    paths
}

/// The module `path` (as written in `from`) names: the deepest known module along it.
fn resolve(
    path: &str,
    from: &Module,
    known: &BTreeSet<Module>,
    reexports: &BTreeMap<String, Module>,
) -> Option<Module> {
    let mut segs = path
        .split("::")
        .map(|s| s.split(" as ").next().unwrap_or(s).trim());
    let mut base: Module = match segs.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    let mut segs = segs.peekable();
    while segs.peek() == Some(&"super") {
        segs.next();
        base.pop();
    }
    let mut first = true;
    for seg in segs {
        let mut next = base.clone();
        next.push(seg.to_string());
        if known.contains(&next) {
            base = next;
        } else {
            if first && base.is_empty() {
                if let Some(m) = reexports.get(seg) {
                    return Some(m.clone());
                }
            }
            break;
        }
        first = false;
    }
    Some(base)
}

fn cycle_in(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut done))
}

/// The dependencies between sibling modules, by parent: `("", {("http", "edge"), ...})`.
fn sibling_edges(src: &Path) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    // `main.rs` is the binary, not a module of the library.
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let known: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    // `crate::BotId` is `bot_id`'s: the crate root's `pub use module::Name` re-exports.
    let mut reexports = BTreeMap::new();
    for path in paths_in(&code_only(&lib)) {
        let segs: Vec<&str> = path.split("::").collect();
        if segs.len() == 2 && known.contains(&vec![segs[0].to_string()]) {
            reexports.insert(segs[1].to_string(), vec![segs[0].to_string()]);
        }
    }
    let code: BTreeMap<Module, String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("a readable source");
            (module_of(src, f), code_only(&text))
        })
        .collect();
    // Modules declared `#[cfg(test)] mod name;` live in files of their own.
    let mut test_only = BTreeSet::new();
    for (module, code) in &code {
        for piece in code.split("#[cfg(test)]").skip(1) {
            let item = piece.trim_start();
            if let Some(name) = item.strip_prefix("mod ").and_then(|r| r.split_once(';')) {
                let mut child = module.clone();
                child.push(name.0.trim().to_string());
                test_only.insert(child);
            }
        }
    }
    let mut graphs: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (from, code) in &code {
        if test_only.iter().any(|t| from.starts_with(t)) {
            continue;
        }
        let code = without_test_modules(code);
        for path in paths_in(&code) {
            let Some(to) = resolve(&path, from, &known, &reexports) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue;
            }
            graphs
                .entry(from[..common].join("::"))
                .or_default()
                .insert((from[common].clone(), to[common].clone()));
        }
    }
    graphs
}

#[test]
fn modules_do_not_depend_on_each_other_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graphs = sibling_edges(&src);
    let top = &graphs[""];
    for (from, to) in [
        ("app", "http"),
        ("app", "web"),
        ("http", "edge"),
        ("web", "edge"),
    ] {
        assert!(
            top.contains(&(from.to_string(), to.to_string())),
            "the graph misses {from} -> {to}: the reader is broken"
        );
    }
    for (a, b) in [("http", "web"), ("web", "http")] {
        assert!(
            !top.contains(&(a.to_string(), b.to_string())),
            "{a} imports {b}"
        );
    }
    for (parent, edges) in graphs {
        let edges: BTreeSet<(String, String)> = edges
            .into_iter()
            .filter(|(a, b)| {
                let (a, b) = (qualified(&parent, a), qualified(&parent, b));
                !ALLOWED.iter().any(|(x, y, _)| *x == a && *y == b)
            })
            .collect();
        if let Some(cycle) = cycle_in(&edges) {
            panic!(
                "modules depend on each other in a cycle under {}: {}",
                if parent.is_empty() { "crate" } else { &parent },
                cycle.join(" -> ")
            );
        }
    }
}

fn qualified(parent: &str, module: &str) -> String {
    if parent.is_empty() {
        module.to_string()
    } else {
        format!("{parent}::{module}")
    }
}

#[test]
fn the_reader_sees_code_and_nothing_else() {
    let code = code_only(
        "use crate::a::{b, c::{d, e as f}};\n// use crate::comment;\n\
         let s = \"crate::in_a_string\"; let c = '{'; x = super::g::h(1);\n\
         #[cfg(test)]\nmod tests { use crate::test_only; }\n",
    );
    let paths = paths_in(&without_test_modules(&code));
    for want in [
        "crate::a::b",
        "crate::a::c::d",
        "crate::a::c::e as f",
        "super::g::h",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
    for absent in ["comment", "in_a_string", "test_only"] {
        assert!(!paths.iter().any(|p| p.contains(absent)), "{paths:?}");
    }
    let cycle = cycle_in(&BTreeSet::from([
        ("a".to_string(), "b".to_string()),
        ("b".to_string(), "c".to_string()),
        ("c".to_string(), "a".to_string()),
    ]));
    assert_eq!(cycle.map(|c| c.len()), Some(4));
    assert_eq!(
        cycle_in(&BTreeSet::from([("a".to_string(), "b".to_string())])),
        None
    );
}
