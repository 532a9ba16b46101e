//! Bodies of exec: the command run to completion (`POST /api/bots/{id}/exec`) and the control
//! messages of the interactive WebSocket (`GET /api/bots/{id}/exec/ws`, text frames; the
//! protocol is described in `http::exec_socket`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/bots/{id}/exec`: what to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// Program and arguments, exec form (no shell unless you run one: `["sh", "-c", "..."]`).
    #[serde(default)]
    #[schema(min_items = 1)]
    pub cmd: Vec<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory (absolute); the container's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `user`, `uid` or `user:group`; the container's user by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Seconds to wait for the command (1-600, default 30).
    #[schema(minimum = 1, maximum = 600)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// `POST /api/bots/{id}/exec`: what the command left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecResponse {
    /// Its exit code; `null` when it timed out.
    pub exit_code: Option<i64>,
    /// Standard output (UTF-8, invalid bytes replaced), at most 1 MiB.
    pub stdout: String,
    /// Standard error, likewise.
    pub stderr: String,
    /// Whether stdout was cut at 1 MiB.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at 1 MiB.
    pub stderr_truncated: bool,
    /// Whether the time limit ended the wait (the process may still run in the container).
    pub timed_out: bool,
}

/// A control message from the client (a text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The terminal's new size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// No more input: close the process's stdin.
    Eof,
}

/// A control message from the server (a text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The process exited with `code` (`None`: Docker recorded none).
    Exit {
        /// Exit code.
        code: Option<i64>,
    },
    /// The session ended for another reason.
    Error {
        /// Stable code (`UNAUTHORIZED`, `SHUTTING_DOWN`, `EXEC_FAILED`, `BAD_MESSAGE`, ...).
        code: String,
        /// For a person.
        error: String,
    },
}

impl ServerMessage {
    /// The `error` message with `code` and a sentence for a person.
    pub fn error(code: &str, error: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_string(),
            error: error.into(),
        }
    }
}
