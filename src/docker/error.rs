//! `ContainerError`: every way a Docker operation can fail, with a stable machine code.
//!
//! bollard's errors are classified here, in [`classify`], by HTTP status and transport failure,
//! never by message text: Docker's wording changes between releases, its status codes do not.

use std::time::Duration;

/// The Docker operation that failed; decides how an HTTP status is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /_ping` and `GET /version`.
    Connect,
    /// `POST /containers/create`.
    Create,
    /// `POST /containers/{id}/start`.
    Start,
    /// `POST /containers/{id}/stop`.
    Stop,
    /// `POST /containers/{id}/restart`.
    Restart,
    /// `DELETE /containers/{id}`.
    Remove,
    /// `POST /containers/{id}/rename`.
    Rename,
    /// `GET /containers/{id}/json`.
    Inspect,
    /// `GET /containers/json`.
    List,
    /// `GET /containers/{id}/logs`.
    Logs,
    /// `GET /containers/{id}/stats`.
    Stats,
    /// `GET /events`.
    Events,
    /// `GET /info`.
    Info,
    /// `POST /containers/{id}/exec`.
    ExecCreate,
    /// `POST /exec/{id}/start`.
    ExecStart,
    /// `POST /exec/{id}/resize`.
    ExecResize,
    /// `GET /exec/{id}/json`.
    ExecInspect,
}

/// A failed container operation. `bot_id` is empty for operations that concern no single bot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The container, or the image it needs, does not exist.
    #[error("not found for bot '{bot_id}': {message}")]
    NotFound {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's explanation (e.g. "No such image: x").
        message: String,
    },
    /// A container named `botmaker-<bot-id>` already exists.
    #[error("a container for bot '{bot_id}' already exists")]
    AlreadyExists {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
    },
    /// A container with the bot's name exists but this botmaker instance did not create it, so
    /// it is left alone.
    #[error(
        "container 'botmaker-{bot_id}' exists but is not managed by this botmaker instance; \
         it was not touched (rename or remove it yourself)"
    )]
    NotOwned {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
    },
    /// Docker rejected the container configuration (bad value, missing mount source, ...).
    #[error("invalid container configuration for bot '{bot_id}': {message}")]
    InvalidConfig {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's or botmaker's explanation.
        message: String,
    },
    /// The container could not be created for another reason.
    #[error("failed to create container for bot '{bot_id}': {message}")]
    CreateFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// The container exists but would not start (e.g. its command is not in the image).
    #[error("failed to start bot '{bot_id}': {message}")]
    StartFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// The container would not stop.
    #[error("failed to stop bot '{bot_id}': {message}")]
    StopFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// The container would not restart.
    #[error("failed to restart bot '{bot_id}': {message}")]
    RestartFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// The container would not be removed.
    #[error("failed to remove container of bot '{bot_id}': {message}")]
    RemoveFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// A command can run only in a running container, and the bot's is not (or it has none).
    #[error("bot '{bot_id}' is not running (its container is {state}): start it first")]
    NotRunning {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// What its container is instead (`exited`, `paused`, `no container`, ...).
        state: String,
    },
    /// Docker refused to create, start, resize or inspect an exec instance.
    #[error("exec in bot '{bot_id}' failed: {message}")]
    ExecFailed {
        /// The bot, for the message; what a caller does depends on the variant alone.
        bot_id: String,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
    /// The daemon could not be reached, refused the connection or did not answer in time.
    #[error(
        "Docker Engine unreachable at {host}: {message}. Is dockerd running? Start it \
         (e.g. `systemctl start docker`, or `setsid dockerd &`), check that this user may \
         use its socket, or point DOCKER_HOST at a running engine"
    )]
    Network {
        /// The address that was tried.
        host: String,
        /// The transport failure or timeout, as the client saw it.
        message: String,
    },
    /// The daemon and botmaker share no Engine API version: the daemon is older than
    /// botmaker supports (the usual case), or so new that it refuses every version botmaker
    /// knows.
    #[error(
        "Docker Engine at {host} speaks API {version}, but botmaker speaks {minimum} to \
         {maximum}; upgrade Docker (or, for a newer engine, botmaker)"
    )]
    UnsupportedApiVersion {
        /// The address that was tried.
        host: String,
        /// The daemon's API version, as it reported it.
        version: String,
        /// The oldest version botmaker works with.
        minimum: &'static str,
        /// The newest version botmaker asks for.
        maximum: String,
    },
    /// The operation has no equivalent on the backend botmaker runs (`serve --backend`).
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// What was asked, in words (`exec`, `upgrade`, ...).
        operation: &'static str,
        /// The backend that cannot do it (`swarm`).
        backend: &'static str,
    },
    /// `--backend swarm` needs the engine to be a manager of an active swarm.
    #[error(
        "the Docker Engine at {host} is not a Swarm manager (its swarm state is '{state}'); \
         run `docker swarm init` (or join it to a swarm as a manager), or serve with \
         --backend docker"
    )]
    NotSwarmManager {
        /// The address that was tried.
        host: String,
        /// Its `Swarm.LocalNodeState`, or `worker` for a worker node.
        state: String,
    },
    /// Anything else Docker reported.
    #[error("Docker error for bot '{bot_id}' (HTTP {status}): {message}")]
    Docker {
        /// The bot, for the message (empty for calls that concern no single bot).
        bot_id: String,
        /// HTTP status, or 0 when there was none.
        status: u16,
        /// Docker's own words, for people and logs; never parsed.
        message: String,
    },
}

impl ContainerError {
    /// A stable machine-readable code, for APIs and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NOT_FOUND",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::NotOwned { .. } => "NOT_OWNED",
            Self::InvalidConfig { .. } => "INVALID_CONFIG",
            Self::CreateFailed { .. } => "CREATE_FAILED",
            Self::StartFailed { .. } => "START_FAILED",
            Self::StopFailed { .. } => "STOP_FAILED",
            Self::RestartFailed { .. } => "RESTART_FAILED",
            Self::RemoveFailed { .. } => "REMOVE_FAILED",
            Self::NotRunning { .. } => "NOT_RUNNING",
            Self::ExecFailed { .. } => "EXEC_FAILED",
            Self::Network { .. } => "NETWORK_ERROR",
            Self::UnsupportedApiVersion { .. } => "UNSUPPORTED_API_VERSION",
            Self::Unsupported { .. } => "UNSUPPORTED_BY_BACKEND",
            Self::NotSwarmManager { .. } => "NOT_SWARM_MANAGER",
            Self::Docker { .. } => "DOCKER_ERROR",
        }
    }

    /// True when the daemon itself could not be used (unreachable, timed out, too old): the
    /// operation may succeed later, unchanged.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Network { .. } | Self::UnsupportedApiVersion { .. }
        )
    }

    pub(crate) fn timeout(host: &str, op: Op, after: Duration) -> Self {
        Self::Network {
            host: host.to_string(),
            message: format!("{op:?} timed out after {}s", after.as_secs_f32()),
        }
    }
}

/// Turns a bollard error from operation `op` on `bot_id` into a [`ContainerError`].
///
/// The one place where Docker's HTTP statuses get their meaning
/// (<https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container>).
pub(crate) fn classify(
    host: &str,
    op: Op,
    bot_id: &str,
    err: bollard::errors::Error,
) -> ContainerError {
    use bollard::errors::Error as E;
    let bot_id = bot_id.to_string();
    match err {
        E::DockerResponseServerError {
            status_code,
            message,
        } => match (op, status_code) {
            (_, 404) => ContainerError::NotFound { bot_id, message },
            (Op::Create, 409) => ContainerError::AlreadyExists { bot_id },
            (Op::Create, 400) => ContainerError::InvalidConfig { bot_id, message },
            (Op::Create, _) => ContainerError::CreateFailed { bot_id, message },
            (Op::Start, _) => ContainerError::StartFailed { bot_id, message },
            (Op::Stop, _) => ContainerError::StopFailed { bot_id, message },
            (Op::Restart, _) => ContainerError::RestartFailed { bot_id, message },
            (Op::Remove, _) => ContainerError::RemoveFailed { bot_id, message },
            // 409: the container stopped, paused or began restarting since it was inspected.
            (Op::ExecCreate | Op::ExecStart, 409) => ContainerError::NotRunning {
                bot_id,
                state: "not running".into(),
            },
            (Op::ExecCreate | Op::ExecStart | Op::ExecResize | Op::ExecInspect, _) => {
                ContainerError::ExecFailed { bot_id, message }
            }
            (_, status) => ContainerError::Docker {
                bot_id,
                status,
                message,
            },
        },
        // Transport failures: the daemon is not there, or went away mid-request.
        e @ (E::RequestTimeoutError
        | E::IOError { .. }
        | E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::SocketNotFoundError(_)
        | E::UnsupportedURISchemeError { .. }) => ContainerError::Network {
            host: host.to_string(),
            message: e.to_string(),
        },
        other => ContainerError::Docker {
            bot_id,
            status: 0,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::errors::Error as E;

    fn server(status_code: u16) -> E {
        E::DockerResponseServerError {
            status_code,
            message: "daemon says".into(),
        }
    }

    #[test]
    fn classifies_by_status_and_operation() {
        let c = |op, status| classify("h", op, "b", server(status)).code();
        assert_eq!(c(Op::Inspect, 404), "NOT_FOUND");
        assert_eq!(c(Op::Create, 404), "NOT_FOUND");
        assert_eq!(c(Op::Create, 409), "ALREADY_EXISTS");
        assert_eq!(c(Op::Create, 400), "INVALID_CONFIG");
        assert_eq!(c(Op::Create, 500), "CREATE_FAILED");
        assert_eq!(c(Op::Start, 400), "START_FAILED");
        assert_eq!(c(Op::Start, 500), "START_FAILED");
        assert_eq!(c(Op::Stop, 500), "STOP_FAILED");
        assert_eq!(c(Op::Restart, 500), "RESTART_FAILED");
        assert_eq!(c(Op::Remove, 409), "REMOVE_FAILED");
        assert_eq!(c(Op::List, 500), "DOCKER_ERROR");
        assert_eq!(c(Op::ExecCreate, 409), "NOT_RUNNING");
        assert_eq!(c(Op::ExecStart, 409), "NOT_RUNNING");
        assert_eq!(c(Op::ExecCreate, 404), "NOT_FOUND");
        assert_eq!(c(Op::ExecCreate, 500), "EXEC_FAILED");
        assert_eq!(c(Op::ExecResize, 400), "EXEC_FAILED");
    }

    #[test]
    fn transport_failures_are_network_errors_naming_the_host() {
        let e = classify("unix:///nope.sock", Op::Start, "b", E::RequestTimeoutError);
        assert_eq!(e.code(), "NETWORK_ERROR");
        assert!(e.is_unavailable());
        assert!(e.to_string().contains("unix:///nope.sock"));
        let e = classify(
            "h",
            Op::List,
            "",
            E::SocketNotFoundError("/nope.sock".into()),
        );
        assert_eq!(e.code(), "NETWORK_ERROR");
    }

    #[test]
    fn backend_errors_have_their_own_codes_and_say_what_to_do() {
        let e = ContainerError::Unsupported {
            operation: "upgrade",
            backend: "swarm",
        };
        assert_eq!(e.code(), "UNSUPPORTED_BY_BACKEND");
        assert!(!e.is_unavailable(), "retrying cannot help");
        let e = ContainerError::NotSwarmManager {
            host: "unix:///s.sock".into(),
            state: "inactive".into(),
        };
        assert_eq!(e.code(), "NOT_SWARM_MANAGER");
        let text = e.to_string();
        assert!(
            text.contains("unix:///s.sock") && text.contains("inactive"),
            "{text}"
        );
        assert!(text.contains("docker swarm init"), "{text}");
    }

    #[test]
    fn messages_keep_dockers_explanation() {
        let e = classify("h", Op::Start, "bot-1", server(400));
        assert!(e.to_string().contains("daemon says"), "{e}");
        assert!(e.to_string().contains("bot-1"), "{e}");
    }
}
