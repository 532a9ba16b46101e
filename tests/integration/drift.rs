//! Desired against observed state (issue 11, bug 6): a difference is flagged as
//! `state_drift`, and a bot wanted `stopped` that is started outside botmaker is stopped
//! again at the next resync.

use std::time::Duration;

use botmaker::BotId;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::eventually;
use crate::support::server::TestServer;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_bot_wanted_stopped_and_started_behind_botmakers_back_is_stopped_again() {
    let s = TestServer::start().await;
    let id = s.create_bot("drift").await;
    let bot = BotId::new(id.clone()).unwrap();
    s.wait_bot(&id, "running", WAIT, |v| v["state"] == "running")
        .await;

    // Stopped behind botmaker's back while wanted running: flagged, and it stays so (the
    // user may have had a reason; the restart policy does not undo a manual stop).
    s.h.docker.stop_container(&bot, None).await.unwrap();
    let v = s
        .wait_bot(&id, "stopped", WAIT, |v| v["state"] == "stopped")
        .await;
    assert_eq!(v["desired_state"], "running");
    assert_eq!(v["state_drift"], true, "{v}");

    let (status, v) = s.post(&format!("/api/bots/{id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state_drift"], false, "{v}");

    // Started behind botmaker's back while wanted stopped: stopped again at the next resync.
    let before = s.h.docker.container_status(&bot).await.unwrap().unwrap();
    s.h.docker.start_container(&bot).await.unwrap();
    let after = eventually(
        "the container started outside to be stopped",
        WAIT,
        || async {
            let now = s.h.docker.container_status(&bot).await.unwrap().unwrap();
            (now.started_at != before.started_at && !now.running).then_some(now)
        },
    )
    .await;
    assert!(after.finished_at > after.started_at, "{after:?}");
    let v = s
        .wait_bot(&id, "stopped again", WAIT, |v| v["state"] == "stopped")
        .await;
    assert_eq!(v["desired_state"], "stopped", "{v}");
    assert_eq!(v["state_drift"], false, "{v}");
}
