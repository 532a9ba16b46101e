//! The error answers operations share, one component each: the description says which codes
//! come with the status and what to do about them.

use utoipa::ToResponse;

use crate::api::ErrorBody;

/// The request is invalid: `VALIDATION_FAILED` (with `fields`, also for a value of the wrong
/// type at a known field of the body or query string), `INVALID_JSON`, `INVALID_QUERY`,
/// `INVALID_PATH`, `IMAGE_NOT_FOUND`, `INVALID_CONFIG`, `NOT_A_SESSION`, `BACKUP_CORRUPT` and
/// `BACKUP_UNSUPPORTED` (an archive that is damaged, altered or from a newer botmaker)...
#[derive(ToResponse)]
pub struct BadRequest(pub ErrorBody);

/// `UNAUTHORIZED`: missing, invalid or expired token (`INVALID_PASSWORD` on login).
#[derive(ToResponse)]
pub struct Unauthorized(pub ErrorBody);

/// `CSRF`: the request was authenticated by the session cookie but lacks the session's CSRF
/// token (header `X-CSRF-Token`); scripts should send `Authorization: Bearer` instead.
#[derive(ToResponse)]
pub struct Forbidden(pub ErrorBody);

/// `NOT_FOUND`: no such bot, secret or token.
#[derive(ToResponse)]
pub struct NotFound(pub ErrorBody);

/// `ALREADY_EXISTS`, `CONTAINER_NAME_TAKEN` (a container botmaker does not manage holds the
/// name), `LEFTOVER_FILES` (run `POST /api/admin/cleanup`) or `SECRET_REQUIRED` (the bot's
/// template needs the secret: set a new value instead, or change the settings that need it).
#[derive(ToResponse)]
pub struct Conflict(pub ErrorBody);

/// `PAYLOAD_TOO_LARGE`: the body exceeds the request size limit.
#[derive(ToResponse)]
pub struct PayloadTooLarge(pub ErrorBody);

/// `UNSUPPORTED_MEDIA_TYPE`: the body must be sent as `application/json`.
#[derive(ToResponse)]
pub struct UnsupportedMediaType(pub ErrorBody);

/// `START_FAILED`: the request was fine, but the bot's container would not start with its
/// configuration.
#[derive(ToResponse)]
pub struct StartFailed(pub ErrorBody);

/// `RATE_LIMITED`: too many failed logins from this address; retry after `Retry-After`
/// seconds.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
pub struct TooManyRequests(pub ErrorBody);

/// `INTERNAL`: an unexpected failure (details are in the server log).
#[derive(ToResponse)]
pub struct InternalError(pub ErrorBody);

/// Retry later. `DOCKER_UNAVAILABLE`: the Docker Engine is unreachable or did not answer in
/// time; nothing was recorded (a lifecycle call changes `desired_state`, the config or the
/// secrets only when it succeeds, and the reconciler settles the bot when Docker is back).
/// `BOT_BUSY`: another operation on the bot did not finish in time; nothing was done.
/// `TIMEOUT`: no answer within the request time limit; an operation that had begun still
/// completes, so check the bot before retrying. `SHUTTING_DOWN`. `LOGIN_BUSY` (login only):
/// too many logins are being checked at once; retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
pub struct ServiceUnavailable(pub ErrorBody);
