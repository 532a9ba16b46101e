//! A second, tolerant decoding of the answers bollard's models refuse.
//!
//! bollard's models close every enum over Docker's own values, and one value they do not know
//! fails the whole response. Podman reports a container that has exited but is not cleaned up
//! yet (between a crash and its restart, say) in the state `stopped`: without this, one
//! crash-looping bot would make every inspect of it, and every list of the fleet, an error.
//!
//! With bollard's `json_data_content` feature the refused payload comes back inside the error.
//! [`recover`] maps Podman's state words onto Docker's (`stopped` is `exited`, `configured` is
//! `created`), sets any other value the models refuse to null (every such field is optional),
//! and decodes again. Docker's answers never get here: they decode the first time.

use std::future::Future;

use bollard::errors::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

/// Values replaced before giving up: a handful at most in any real answer.
const MAX_REPAIRS: usize = 64;

/// `fut`, with a refused payload decoded again by [`recover`].
pub(crate) async fn tolerant<T: DeserializeOwned>(
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    fut.await.or_else(recover)
}

/// Decodes the payload of a JSON data error tolerantly; any other error, or a payload that
/// still does not decode, is returned as it came.
pub(crate) fn recover<T: DeserializeOwned>(err: Error) -> Result<T, Error> {
    let Error::JsonDataError { contents, .. } = &err else {
        return Err(err);
    };
    let Ok(mut value) = serde_json::from_str::<Value>(contents) else {
        return Err(err);
    };
    for _ in 0..MAX_REPAIRS {
        let refused = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(decoded) => return Ok(decoded),
            Err(e) => e.path().clone(),
        };
        let Some(slot) = locate(&mut value, &refused) else {
            return Err(err);
        };
        let key = refused.iter().next_back().and_then(|s| match s {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        });
        let replacement = replacement(key, slot);
        if *slot == replacement {
            // No progress: the field is required, or the payload is wrong in another way.
            return Err(err);
        }
        tracing::debug!(path = %refused, value = %slot, "engine value unknown to Docker's API models");
        *slot = replacement;
    }
    Err(err)
}

/// What a refused value becomes: Docker's word for a Podman container state, else null.
fn replacement(key: Option<&str>, value: &Value) -> Value {
    match (key, value.as_str()) {
        // `State.Status` of an inspect, `State` of a list entry.
        (Some("Status" | "State"), Some("stopped")) => "exited".into(),
        (Some("Status" | "State"), Some("configured")) => "created".into(),
        _ => Value::Null,
    }
}

/// The value at `path` inside `value`.
fn locate<'v>(value: &'v mut Value, path: &serde_path_to_error::Path) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Seq { index } => v.get_mut(*index),
        Segment::Map { key } => v.get_mut(key.as_str()),
        Segment::Enum { .. } => Some(v),
        Segment::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
        ContainerSummaryStateEnum, RestartPolicyNameEnum,
    };

    /// The error bollard returns for `body`, decoding it as `T`.
    fn refused<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> Error {
        let e = serde_json::from_str::<T>(body).unwrap_err();
        assert!(e.is_data(), "{e}");
        Error::JsonDataError {
            message: e.to_string(),
            column: e.column(),
            contents: body.to_string(),
        }
    }

    // Trimmed from podman 4.3's compat API, for a bot between a crash and its restart.
    const PODMAN_INSPECT_STOPPED: &str = r#"{
        "Id": "65cdf5be4a54f797c637bb0914deebe6882525501b03fc2de9f67fdb38430d21",
        "State": {"Status": "stopped", "Running": false, "ExitCode": 3,
                  "FinishedAt": "2026-11-30T10:22:21.881710761Z",
                  "Health": {"Status": "starting", "FailingStreak": 0, "Log": null}},
        "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        "RestartCount": 2
    }"#;

    #[test]
    fn podman_stopped_state_reads_as_exited() {
        let r: ContainerInspectResponse =
            recover(refused::<ContainerInspectResponse>(PODMAN_INSPECT_STOPPED)).unwrap();
        let state = r.state.unwrap();
        assert_eq!(state.status, Some(ContainerStateStatusEnum::EXITED));
        assert_eq!(state.exit_code, Some(3));
        assert_eq!(r.restart_count, Some(2));
        // The rest of the answer is kept.
        assert_eq!(
            r.host_config.unwrap().restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
    }

    #[test]
    fn a_list_with_one_stopped_container_keeps_every_entry() {
        let body = r#"[
            {"Id": "a", "State": "running", "Status": "Up 3 seconds"},
            {"Id": "b", "State": "stopped", "Status": "Exited (3) 1 second ago"},
            {"Id": "c", "State": "configured", "Status": "Created"}
        ]"#;
        let list: Vec<ContainerSummary> = recover(refused::<Vec<ContainerSummary>>(body)).unwrap();
        let states: Vec<_> = list.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            [
                Some(ContainerSummaryStateEnum::RUNNING),
                Some(ContainerSummaryStateEnum::EXITED),
                Some(ContainerSummaryStateEnum::CREATED)
            ]
        );
    }

    #[test]
    fn other_unknown_values_become_absent() {
        let body = r#"{"Id": "x", "State": {"Status": "hibernating"},
                       "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}"#;
        let r: ContainerInspectResponse =
            recover(refused::<ContainerInspectResponse>(body)).unwrap();
        assert_eq!(r.id.as_deref(), Some("x"));
        assert_eq!(r.state.unwrap().status, None);
        assert_eq!(r.host_config.unwrap().restart_policy.unwrap().name, None);
    }

    #[test]
    fn what_cannot_be_repaired_is_the_original_error() {
        // A required field of the wrong type: nulling it cannot help.
        let body = r#"{"Components": [{"Name": 7, "Version": "1"}]}"#;
        let e = recover::<bollard::models::SystemVersion>(
            refused::<bollard::models::SystemVersion>(body),
        )
        .unwrap_err();
        assert!(matches!(e, Error::JsonDataError { .. }), "{e}");
        // Not a decoding error at all.
        let e = recover::<ContainerSummary>(Error::RequestTimeoutError).unwrap_err();
        assert!(matches!(e, Error::RequestTimeoutError));
    }
}
