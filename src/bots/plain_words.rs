//! Parser messages in the words of the API, not of Rust: serde says `invalid type: string
//! "helpful", expected struct Persona at line 1 column 40`; a user needs `must be an object
//! (got a string)`. Type names (`u16`, `struct Persona`, `a map`) never reach a response.

/// `msg` (a serde error's text) without Rust type names or input positions.
pub fn plain(msg: &str) -> String {
    let msg = strip_position(msg);
    for (prefix, show_got) in [("invalid type: ", false), ("invalid value: ", true)] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                let got = if show_got {
                    got_value(got)
                } else {
                    got_kind(got)
                };
                return format!("must be {} (got {got})", expected_words(expected));
            }
        }
    }
    // `unknown variant `x`, expected one of `tcp`, `udp``, `missing field `port``, ...: no
    // type names in these, only the position to drop.
    msg.to_string()
}

/// Drops serde_json's ` at line 1 column 40`.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    }
}

/// What serde expected, as a reader of the API docs says it.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    let range = |lo: &str, hi: &str| format!("a whole number from {lo} to {hi}");
    match e {
        "u8" => range("0", "255"),
        "u16" => range("0", "65535"),
        "u32" => range("0", "4294967295"),
        "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "string" => "a string".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "unit" => "null".into(),
        _ if e.starts_with("struct ") || e.starts_with("a map") => "an object".into(),
        _ if e.starts_with("enum ") => "one of the documented values".into(),
        _ if e.starts_with("tuple") => "a list".into(),
        // Already words (a custom `expecting`, `one of ...`, `a valid ...`).
        _ => e.to_string(),
    }
}

/// The kind of value given (`string "x"` → `a string`).
fn got_kind(got: &str) -> String {
    let g = got.trim();
    let kind = g.split_whitespace().next().unwrap_or(g);
    match kind {
        "string" => "a string",
        "integer" => "a whole number",
        "floating" => "a number with a fraction",
        "boolean" => "true or false",
        "null" | "unit" => "null",
        "map" => "an object",
        "sequence" => "a list",
        "character" => "a string",
        _ => g,
    }
    .to_string()
}

/// The value given, when serde shows it (`integer `70000`` → `70000`).
fn got_value(got: &str) -> String {
    match got.split_once('`') {
        Some((_, v)) => v.trim_end_matches('`').to_string(),
        None => got_kind(got),
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    /// Issue 11: `ports[1].container: invalid value: integer 70000, expected u16 at line 1
    /// column 89` and `expected struct Persona` read like internals.
    #[test]
    fn no_rust_type_names_in_parse_errors() {
        let cases = [
            (
                "invalid value: integer `70000`, expected u16 at line 1 column 89",
                "must be a whole number from 0 to 65535 (got 70000)",
            ),
            (
                "invalid type: string \"helpful\", expected struct Persona at line 1 column 40",
                "must be an object (got a string)",
            ),
            (
                "invalid type: floating point `80.5`, expected u16 at line 1 column 30",
                "must be a whole number from 0 to 65535 (got a number with a fraction)",
            ),
            (
                "invalid type: string \"x\", expected a sequence at line 1 column 3",
                "must be a list (got a string)",
            ),
            (
                "invalid type: integer `1`, expected a map",
                "must be an object (got a whole number)",
            ),
            (
                "unknown variant `sctp`, expected `tcp` or `udp` at line 1 column 9",
                "unknown variant `sctp`, expected `tcp` or `udp`",
            ),
        ];
        for (serde, ours) in cases {
            assert_eq!(plain(serde), ours);
        }
    }
}
