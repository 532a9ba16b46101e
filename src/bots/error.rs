//! `BotError`: every way a bot operation fails, each with a stable code. The HTTP layer maps
//! these to statuses in one place.

use super::validate::FieldErrors;
use crate::docker::ContainerError;
use crate::safe_fs::FsError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

/// A failed bot operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The request is invalid; nothing was changed.
    #[error("invalid request: {0}")]
    Validation(FieldErrors),
    /// No bot with that id.
    #[error("bot '{0}' not found")]
    NotFound(String),
    /// A bot with that id exists.
    #[error("bot '{0}' already exists")]
    AlreadyExists(String),
    /// A container not owned by this botmaker holds the bot's container name.
    #[error(
        "a container named 'botmaker-{0}' exists that this botmaker instance does not manage; \
         it was left untouched: remove or rename it, or pick another bot id"
    )]
    NameTaken(String),
    /// Files of a deleted bot with this id are still on disk.
    #[error(
        "leftover {what} of a deleted bot '{id}' exists; run cleanup (POST /api/admin/cleanup) \
         first"
    )]
    Leftover {
        /// The bot id.
        id: String,
        /// Which files ("secrets directory", "workspace").
        what: &'static str,
    },
    /// The secret is one the bot's template needs: deleting it would break the bot.
    #[error(
        "secret {name} is required by the {template} template for {purpose}; set a new value \
         (PUT) to rotate it, or change the bot's settings so it is no longer needed"
    )]
    SecretRequired {
        /// The secret.
        name: String,
        /// The template that needs it.
        template: &'static str,
        /// What needs it.
        purpose: String,
    },
    /// The image is not on the engine, and botmaker never pulls.
    #[error("image '{0}' is not present on the Docker Engine (build or load it first)")]
    ImageNotFound(String),
    /// A command can run only in a running bot (exec), and this one is not.
    #[error("bot '{id}' is not running (its container is {state}): start it first")]
    NotRunning {
        /// The bot id.
        id: String,
        /// What its container is instead.
        state: String,
    },
    /// The container was created but would not start.
    #[error("the bot's container would not start: {0}")]
    StartFailed(String),
    /// The Docker Engine is unreachable.
    #[error(transparent)]
    DockerUnavailable(ContainerError),
    /// Another Docker failure.
    #[error(transparent)]
    Docker(ContainerError),
    /// Reading or writing secrets failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
    /// A workspace file operation failed, or found something it refuses to touch.
    #[error("workspace: {0}")]
    Files(#[from] FsError),
    /// Another operation on the bot did not finish in time; this one was not started.
    #[error(
        "another operation on bot '{0}' is still running (Docker may be slow to answer); \
         nothing was done: try again"
    )]
    Busy(String),
    /// A backup could not be written, or an archive to import is unusable.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// botmaker is shutting down and the operation could not run.
    #[error("botmaker is shutting down; try again when it is back")]
    ShuttingDown,
}

impl BotError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::NameTaken(_) => "CONTAINER_NAME_TAKEN",
            Self::Leftover { .. } => "LEFTOVER_FILES",
            Self::SecretRequired { .. } => "SECRET_REQUIRED",
            Self::ImageNotFound(_) => "IMAGE_NOT_FOUND",
            Self::StartFailed(_) => "START_FAILED",
            Self::NotRunning { .. } => "NOT_RUNNING",
            Self::DockerUnavailable(_) => "DOCKER_UNAVAILABLE",
            Self::Docker(e) => e.code(),
            Self::Secrets(e) => e.code(),
            Self::Store(e) => e.code(),
            Self::Files(e) => e.code(),
            Self::Busy(_) => "BOT_BUSY",
            Self::Backup(e) => e.code(),
            Self::ShuttingDown => "SHUTTING_DOWN",
        }
    }
}

impl BotError {
    /// Whether Docker did not answer: the call's outcome there is unknown (the daemon may
    /// still carry out a request whose answer was lost).
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::DockerUnavailable(_))
    }
}

impl From<ContainerError> for BotError {
    fn from(e: ContainerError) -> Self {
        if e.is_unavailable() {
            return Self::DockerUnavailable(e);
        }
        match e {
            ContainerError::NotOwned { bot_id } => Self::NameTaken(bot_id),
            ContainerError::StartFailed { message, .. } => Self::StartFailed(message),
            // Docker answers a restart whose start half fails (a missing network, a bad
            // command) with a 500 of its own: the bot's configuration, not botmaker, failed.
            ContainerError::RestartFailed { message, .. } => Self::StartFailed(message),
            ContainerError::NotRunning { bot_id, state } => Self::NotRunning { id: bot_id, state },
            other => Self::Docker(other),
        }
    }
}

impl From<StoreError> for BotError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { id } => Self::AlreadyExists(id),
            other => Self::Store(other),
        }
    }
}
