//! Metering: reads the providers' own `usage` fields out of what passes through, without
//! holding it up, and asks for usage in streams the bot did not ask it for.
//!
//! What counts, per response shape (every provider counts its own tokens; the proxy never
//! estimates):
//!
//! | shape | input | output |
//! |---|---|---|
//! | OpenAI chat / completions / embeddings | `usage.prompt_tokens` | `usage.completion_tokens` |
//! | OpenAI responses (body, or the `response.completed` event) | `usage.input_tokens` | `usage.output_tokens` |
//! | Anthropic messages (body, or `message_start` + `message_delta` events) | `input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens` | `output_tokens` |
//!
//! Streams report usage in pieces (Anthropic's `message_start` carries the input, each
//! `message_delta` the output so far), so each count is the largest seen.
//!
//! Chat completion streams carry usage only with `stream_options.include_usage`; when the bot
//! did not ask, the proxy asks on its behalf and removes the extra final chunk (`choices: []`
//! with `usage`) before the bot sees it. Only then are lines held back, and only until their
//! newline: nothing else is buffered, every chunk goes on as it arrives.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Longest SSE line the meter reads; a longer one goes through unread.
const MAX_LINE: usize = 1024 * 1024;
/// A non-streaming body up to this size is parsed whole.
const MAX_JSON: usize = 1024 * 1024;
/// Of a larger body only the end is kept (providers put `usage` last).
const JSON_TAIL: usize = 64 * 1024;

/// Tokens a response reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Input (prompt) tokens.
    pub input: u64,
    /// Output (completion) tokens.
    pub output: u64,
    /// Whether any `usage` was seen at all.
    pub seen: bool,
}

impl Tally {
    fn add(&mut self, u: &UsageFields) {
        self.input = self.input.max(u.input());
        self.output = self.output.max(u.output());
        self.seen = true;
    }
}

#[derive(Debug, Default, Deserialize)]
struct UsageFields {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl UsageFields {
    fn input(&self) -> u64 {
        let base = self.prompt_tokens.or(self.input_tokens).unwrap_or(0);
        base.saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }

    fn output(&self) -> u64 {
        self.completion_tokens.or(self.output_tokens).unwrap_or(0)
    }
}

/// An object that may hold `usage` (Anthropic's `message`, OpenAI's `response`), or anything
/// else under that name (an error's `message` string).
#[derive(Deserialize)]
#[serde(untagged)]
enum Nested {
    Object {
        #[serde(default)]
        usage: Option<UsageFields>,
    },
    #[allow(dead_code)]
    Other(IgnoredAny),
}

/// The parts of a body or event that carry usage.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    usage: Option<UsageFields>,
    #[serde(default)]
    message: Option<Nested>,
    #[serde(default)]
    response: Option<Nested>,
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
}

impl Probe {
    fn read(json: &[u8]) -> Option<Self> {
        serde_json::from_slice(json).ok()
    }

    fn tally_into(&self, t: &mut Tally) {
        if let Some(u) = &self.usage {
            t.add(u);
        }
        for n in [&self.message, &self.response].into_iter().flatten() {
            if let Nested::Object { usage: Some(u) } = n {
                t.add(u);
            }
        }
    }

    /// The chunk `stream_options.include_usage` adds at the end of a chat stream.
    fn is_usage_chunk(&self) -> bool {
        self.usage.is_some() && self.choices.as_ref().is_some_and(Vec::is_empty)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RequestPeek<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A request body as the proxy forwards it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The body to send upstream.
    pub body: Bytes,
    /// The model asked for (`unknown` if none or not a plausible name).
    pub model: String,
    /// Whether the proxy added `stream_options.include_usage` (its chunk is then removed).
    pub strip_usage_chunk: bool,
}

/// Reads `model` out of a JSON request body and, for a chat stream without
/// `stream_options.include_usage`, adds it. A body that is not a JSON object goes as it is:
/// the provider will say what is wrong with it.
pub fn prepare_request(body: Bytes, asks_usage_in_streams: bool) -> Prepared {
    let Ok(peek) = serde_json::from_slice::<RequestPeek<'_>>(&body) else {
        return Prepared {
            body,
            model: UNKNOWN_MODEL.into(),
            strip_usage_chunk: false,
        };
    };
    let model = peek
        .model
        .as_deref()
        .filter(|m| super::provider::is_valid_model(m))
        .unwrap_or(UNKNOWN_MODEL)
        .to_string();
    let wants = peek
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    if !asks_usage_in_streams || peek.stream != Some(true) || wants {
        return Prepared {
            body,
            model,
            strip_usage_chunk: false,
        };
    }
    let had_options = peek.stream_options.is_some();
    let body = if had_options {
        // Rare: the bot sent stream_options without include_usage. Rewrite the object.
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(mut v) => {
                v["stream_options"]["include_usage"] = serde_json::Value::Bool(true);
                Bytes::from(serde_json::to_vec(&v).expect("a JSON value serializes"))
            }
            Err(_) => body,
        }
    } else {
        // Common: splice the option in after the opening brace, leaving the rest untouched.
        let at = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .expect("a JSON object has a first byte");
        let mut out = BytesMut::with_capacity(body.len() + INJECTED.len());
        out.extend_from_slice(&body[..=at]);
        out.extend_from_slice(INJECTED.as_bytes());
        out.extend_from_slice(&body[at + 1..]);
        out.freeze()
    };
    Prepared {
        body,
        model,
        strip_usage_chunk: true,
    }
}

const INJECTED: &str = r#""stream_options":{"include_usage":true},"#;
/// What usage is booked under when the request names no model.
pub const UNKNOWN_MODEL: &str = "unknown";

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Reads usage out of a response body as it passes.
#[derive(Debug)]
pub enum BodyMeter {
    /// Server-sent events.
    Sse(SseMeter),
    /// A JSON body.
    Json(JsonMeter),
    /// Nothing to read (an error answer, say).
    Off,
}

impl BodyMeter {
    /// Takes a chunk and returns what to pass on (the chunk itself, except where a usage
    /// chunk the bot did not ask for is removed).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        match self {
            Self::Sse(m) => m.feed(chunk),
            Self::Json(m) => {
                m.feed(&chunk);
                chunk
            }
            Self::Off => chunk,
        }
    }

    /// At the end of the body: anything still held back, and the tally.
    pub fn finish(&mut self) -> (Bytes, Tally) {
        match self {
            Self::Sse(m) => m.finish(),
            Self::Json(m) => (Bytes::new(), m.finish()),
            Self::Off => (Bytes::new(), Tally::default()),
        }
    }

    /// The tally so far (for a body cut short).
    pub fn tally(&self) -> Tally {
        match self {
            Self::Sse(m) => m.tally,
            Self::Json(_) | Self::Off => Tally::default(),
        }
    }
}

/// Reads SSE `data:` lines; optionally removes the usage chunk.
#[derive(Debug, Default)]
pub struct SseMeter {
    /// The current line so far (its start came in an earlier chunk).
    line: Vec<u8>,
    /// The current line is too long to read: skip (or pass) it up to its newline.
    oversized: bool,
    strip: bool,
    /// A usage chunk was dropped: drop the blank line that ends its event too.
    skip_blank: bool,
    tally: Tally,
}

impl SseMeter {
    /// A meter; `strip` removes the usage chunk the proxy asked for.
    pub fn new(strip: bool) -> Self {
        Self {
            strip,
            ..Self::default()
        }
    }

    /// Reads one complete line (without its `\n`); returns whether to keep it.
    fn line_done(&mut self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.skip_blank {
            self.skip_blank = false;
            if line.is_empty() {
                return false;
            }
        }
        let Some(data) = line.strip_prefix(b"data:") else {
            return true;
        };
        if !contains(data, b"\"usage\"") {
            return true;
        }
        let Some(probe) = Probe::read(data.trim_ascii_start()) else {
            return true;
        };
        probe.tally_into(&mut self.tally);
        if self.strip && probe.is_usage_chunk() {
            self.skip_blank = true;
            return false;
        }
        true
    }

    fn feed(&mut self, chunk: Bytes) -> Bytes {
        if self.strip {
            self.feed_stripping(chunk)
        } else {
            self.scan(&chunk);
            chunk
        }
    }

    /// Reads the lines of `chunk`, keeping its unfinished last line for the next one.
    fn scan(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            if self.oversized {
                self.oversized = false;
            } else if self.line.is_empty() {
                self.line_done(head);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.line_done(&line);
                line.clear();
                self.line = line;
            }
            rest = tail;
        }
        self.hold(rest);
    }

    fn hold(&mut self, partial: &[u8]) {
        if self.oversized {
            return;
        }
        if self.line.len() + partial.len() > MAX_LINE {
            self.line.clear();
            self.oversized = true;
        } else {
            self.line.extend_from_slice(partial);
        }
    }

    /// Like [`scan`](Self::scan), but passes on only whole lines, minus the usage chunk.
    fn feed_stripping(&mut self, chunk: Bytes) -> Bytes {
        let Some(last_nl) = chunk.iter().rposition(|&b| b == b'\n') else {
            // No line ends here: hold it (or pass it, for a line too long to read).
            if self.oversized || self.line.len() + chunk.len() > MAX_LINE {
                let mut out = BytesMut::from(&std::mem::take(&mut self.line)[..]);
                out.extend_from_slice(&chunk);
                self.oversized = true;
                return out.freeze();
            }
            self.line.extend_from_slice(&chunk);
            return Bytes::new();
        };
        let mut out = BytesMut::with_capacity(self.line.len() + last_nl + 1);
        let mut rest = &chunk[..=last_nl];
        let mut dropped_any = false;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            if self.oversized {
                self.oversized = false;
                out.extend_from_slice(&rest[..=nl]);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                if self.line_done(&line) {
                    out.extend_from_slice(&line);
                    out.extend_from_slice(b"\n");
                } else {
                    dropped_any = true;
                }
                line.clear();
                self.line = line;
            }
            rest = tail;
        }
        let tail = &chunk[last_nl + 1..];
        self.line.extend_from_slice(tail);
        if !dropped_any && out.len() == last_nl + 1 && self.line.len() == tail.len() {
            // Nothing removed and nothing held from before: pass the chunk's own bytes.
            return chunk.slice(..=last_nl);
        }
        out.freeze()
    }

    fn finish(&mut self) -> (Bytes, Tally) {
        let line = std::mem::take(&mut self.line);
        if !self.oversized && !line.is_empty() {
            let keep = self.line_done(&line);
            if self.strip && keep {
                return (Bytes::from(line), self.tally);
            }
        }
        (Bytes::new(), self.tally)
    }
}

/// Collects a JSON body (its end, when large) to read `usage` when it is complete.
#[derive(Debug, Default)]
pub struct JsonMeter {
    buf: Vec<u8>,
    truncated: bool,
}

impl JsonMeter {
    fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > MAX_JSON {
            let cut = self.buf.len() - JSON_TAIL;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    fn finish(&mut self) -> Tally {
        let mut tally = Tally::default();
        if !self.truncated {
            if let Some(p) = Probe::read(&self.buf) {
                p.tally_into(&mut tally);
            }
            return tally;
        }
        // Only the end is here: read the object after the last `"usage":`.
        if let Some(at) = rfind(&self.buf, b"\"usage\"") {
            let after = self.buf[at + 7..].trim_ascii_start();
            if let Some(after) = after.strip_prefix(b":") {
                let mut values =
                    serde_json::Deserializer::from_slice(after).into_iter::<UsageFields>();
                if let Some(Ok(u)) = values.next() {
                    tally.add(&u);
                }
            }
        }
        tally
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(m: &mut BodyMeter, chunks: &[&str]) -> (String, Tally) {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&m.feed(Bytes::copy_from_slice(c.as_bytes())));
        }
        let (rest, tally) = m.finish();
        out.extend_from_slice(&rest);
        (String::from_utf8(out).unwrap(), tally)
    }

    const CHAT_STREAM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n\
data: [DONE]\n\n";

    /// Every way of cutting `s` in three.
    fn splits(s: &str) -> Vec<Vec<&str>> {
        let mut out = Vec::new();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                if s.is_char_boundary(i) && s.is_char_boundary(j) {
                    out.push(vec![&s[..i], &s[i..j], &s[j..]]);
                }
            }
        }
        out
    }

    #[test]
    fn a_chat_stream_is_counted_and_passed_unchanged_when_the_bot_asked() {
        for chunks in splits(CHAT_STREAM) {
            let mut m = BodyMeter::Sse(SseMeter::new(false));
            let (out, tally) = feed_all(&mut m, &chunks);
            assert_eq!(out, CHAT_STREAM);
            assert_eq!((tally.input, tally.output), (11, 7));
        }
    }

    #[test]
    fn the_usage_chunk_the_proxy_asked_for_is_removed_however_the_stream_is_cut() {
        let want = CHAT_STREAM.replace(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n",
            "",
        );
        for chunks in splits(CHAT_STREAM) {
            let mut m = BodyMeter::Sse(SseMeter::new(true));
            let (out, tally) = feed_all(&mut m, &chunks);
            assert_eq!(out, want, "{chunks:?}");
            assert_eq!((tally.input, tally.output, tally.seen), (11, 7, true));
        }
        // CRLF line ends too.
        let crlf = CHAT_STREAM.replace('\n', "\r\n");
        let mut m = BodyMeter::Sse(SseMeter::new(true));
        let (out, tally) = feed_all(&mut m, &[&crlf]);
        assert_eq!(out, want.replace('\n', "\r\n"));
        assert_eq!(tally.output, 7);
    }

    #[test]
    fn whole_lines_pass_at_once_when_stripping() {
        let mut m = SseMeter::new(true);
        let out = m.feed(Bytes::from_static(b"data: {\"a\":1}\n\ndata: {\"b\""));
        assert_eq!(
            &out[..],
            b"data: {\"a\":1}\n\n",
            "the complete event is not held"
        );
        let out = m.feed(Bytes::from_static(b":2}\n\n"));
        assert_eq!(&out[..], b"data: {\"b\":2}\n\n");
    }

    #[test]
    fn anthropic_streams_count_input_from_start_and_output_from_the_last_delta() {
        let stream = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let mut m = BodyMeter::Sse(SseMeter::new(false));
        let (out, tally) = feed_all(&mut m, &[stream]);
        assert_eq!(out, stream);
        assert_eq!((tally.input, tally.output), (30, 15));
    }

    #[test]
    fn responses_streams_count_the_completed_event() {
        let stream = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":{\"input_tokens\":9,\"output_tokens\":4}}}\n\n";
        let mut m = BodyMeter::Sse(SseMeter::new(false));
        let (_, tally) = feed_all(&mut m, &[stream]);
        assert_eq!((tally.input, tally.output), (9, 4));
    }

    #[test]
    fn json_bodies_of_each_provider_are_counted() {
        for (body, want) in [
            (
                r#"{"id":"c","choices":[{"message":{"content":"usage: none"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
                (3, 4),
            ),
            (
                r#"{"type":"message","content":[],"usage":{"input_tokens":10,"cache_creation_input_tokens":2,"output_tokens":6}}"#,
                (12, 6),
            ),
            (
                r#"{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#,
                (8, 0),
            ),
            (r#"{"error":{"message":"no"}}"#, (0, 0)),
            ("not json", (0, 0)),
        ] {
            let mut m = BodyMeter::Json(JsonMeter::default());
            let (out, tally) = feed_all(&mut m, &[&body[..5], &body[5..]]);
            assert_eq!(out, body);
            assert_eq!((tally.input, tally.output), want, "{body}");
        }
    }

    #[test]
    fn a_large_json_body_is_counted_from_its_end() {
        let filler = "[0.1234567,".repeat(200_000);
        let body = format!(r#"{{"object":"list","data":{filler}0]"#)
            + r#","model":"e","usage":{"prompt_tokens":4096,"total_tokens":4096}}"#;
        let mut m = JsonMeter::default();
        for chunk in body.as_bytes().chunks(16 * 1024) {
            m.feed(chunk);
        }
        assert!(m.buf.len() <= MAX_JSON + 16 * 1024);
        assert_eq!(m.finish().input, 4096);
    }

    #[test]
    fn an_oversized_line_is_passed_through_unread() {
        let big = format!("data: {}\n\n", "x".repeat(MAX_LINE + 10));
        let mut m = BodyMeter::Sse(SseMeter::new(true));
        let (out, tally) = feed_all(&mut m, &[&big[..1000], &big[1000..], "data: [DONE]\n\n"]);
        assert_eq!(out, format!("{big}data: [DONE]\n\n"));
        assert!(!tally.seen);
    }

    #[test]
    fn a_chat_stream_request_gets_include_usage_unless_it_asked() {
        let p = prepare_request(
            Bytes::from_static(br#" {"model":"gpt-4o","stream":true,"messages":[]}"#),
            true,
        );
        assert!(p.strip_usage_chunk);
        assert_eq!(p.model, "gpt-4o");
        let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"], serde_json::json!([]));

        let p = prepare_request(
            Bytes::from_static(
                br#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#,
            ),
            true,
        );
        assert!(p.strip_usage_chunk);
        let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);

        let asked = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        let p = prepare_request(Bytes::from_static(asked), true);
        assert!(!p.strip_usage_chunk);
        assert_eq!(&p.body[..], asked, "left alone");

        for (body, asks) in [
            (&br#"{"model":"m","stream":false}"#[..], true),
            (br#"{"model":"m","stream":true}"#, false),
            (b"garbage", true),
        ] {
            let p = prepare_request(Bytes::copy_from_slice(body), asks);
            assert!(!p.strip_usage_chunk);
            assert_eq!(&p.body[..], body);
        }
        assert_eq!(
            prepare_request(Bytes::from_static(br#"{"model":"a b"}"#), true).model,
            "unknown"
        );
    }
}
