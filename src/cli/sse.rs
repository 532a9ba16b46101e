//! A small incremental parser for Server-Sent Events (the `text/event-stream` format of the
//! WHATWG HTML standard, §9.2): bytes in, complete events out. Only `event` and `data` fields
//! matter to the CLI; comments (keep-alives) and other fields are skipped.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its type (`message` when the stream names none).
    pub event: String,
    /// Its data; several `data:` lines are joined with `\n`.
    pub data: String,
}

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            if self.data.is_empty() {
                return None;
            }
            let data = std::mem::take(&mut self.data).join("\n");
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: li").is_empty());
        assert!(p.push(b"ne\ndata: {\"a\":").is_empty());
        assert_eq!(p.push(b"1}\n\n"), vec![ev("line", "{\"a\":1}")]);
    }

    #[test]
    fn comments_crlf_multiline_data_and_default_type() {
        let mut p = SseParser::default();
        let got = p.push(b": keep-alive\r\n\r\ndata: a\r\ndata:b\r\n\r\nevent: gone\ndata: x\n\n");
        assert_eq!(got, vec![ev("message", "a\nb"), ev("gone", "x")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: nothing\n\n").is_empty());
        assert_eq!(p.push(b"data: y\n\n"), vec![ev("message", "y")]);
    }
}
