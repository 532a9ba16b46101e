//! `bots logs`: a bot's recent lines, or (`-f`) its live stream followed across restarts.
//! The bot's stdout goes to stdout and its stderr to stderr, as `docker logs` does; notes
//! about the stream itself go to stderr, prefixed with `botmaker:`.

use futures_util::StreamExt;

use super::args::LogsArgs;
use super::client::ApiClient;
use super::error::CliError;
use super::sse::SseParser;
use crate::api::{ErrorBody, LogLine, LogLines, LogStream};

/// Runs `bots logs`.
pub async fn logs(client: &ApiClient, args: &LogsArgs) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(n) = args.tail {
        query.push(format!("tail={n}"));
    }
    if let Some(since) = args.since {
        query.push(format!("since={}", since.0));
    }
    if args.follow {
        query.push("follow=true".to_string());
    }
    let path = format!("/api/bots/{}/logs?{}", args.id, query.join("&"));
    if !args.follow {
        let answer: LogLines = client.get(&path).await?;
        for line in &answer.lines {
            print_line(line, args.timestamps);
        }
        return Ok(());
    }

    let mut body = client.stream(&path).await?.bytes_stream();
    let mut parser = SseParser::default();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        for event in parser.push(&chunk) {
            match event.event.as_str() {
                "line" => match serde_json::from_str::<LogLine>(&event.data) {
                    Ok(line) => print_line(&line, args.timestamps),
                    Err(e) => {
                        return Err(CliError::Protocol {
                            server: client.server().to_string(),
                            detail: format!("a log event is not a log line: {e}"),
                        });
                    }
                },
                "detached" => note("the bot stopped; waiting for it to run again"),
                "attached" => note("the bot runs again"),
                "gone" => {
                    note("the bot was deleted");
                    return Ok(());
                }
                // The server ends a follow whose credential was revoked, logged out or expired.
                "unauthorized" => {
                    let body = serde_json::from_str::<ErrorBody>(&event.data).ok();
                    return Err(CliError::Unauthorized {
                        code: "UNAUTHORIZED".into(),
                        message: body.map_or_else(
                            || "the token is no longer valid; log in again".to_string(),
                            |b| b.error,
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    Err(CliError::Unreachable {
        server: client.server().to_string(),
        cause: "the server closed the log stream".into(),
    })
}

fn print_line(line: &LogLine, timestamps: bool) {
    let prefix = match (timestamps, line.timestamp) {
        (true, Some(t)) => format!(
            "{} ",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
        _ => String::new(),
    };
    if line.stream == LogStream::Stderr {
        eprintln!("{prefix}{}", line.message);
    } else {
        println!("{prefix}{}", line.message);
    }
}

fn note(what: &str) {
    eprintln!("botmaker: {what}");
}
