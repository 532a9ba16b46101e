//! Reading OpenClaw's own account of its channels (the `channels.status` gateway method, asked
//! through its admin HTTP RPC with the gateway token) into botmaker's per-channel states.
//!
//! OpenClaw's `/readyz` can say ready while a configured channel has no plugin to run it
//! (`no-channel-owner`): only this answer shows it, by the channel's absence. The answer is the
//! bot's output, so it is parsed defensively: anything unexpected is "no answer", never a panic,
//! and the text kept from it is short and printable.

use serde_json::Value;

use super::observed::{ChannelState, ChannelStatus};

/// Longest piece of the bot's own text kept in a channel's `detail`.
const MAX_DETAIL_CHARS: usize = 200;
/// Account lifecycles OpenClaw reports while a channel is still coming up.
const STARTING_LIFECYCLES: &[&str] = &["starting", "connecting", "reconnecting", "restarting"];

/// The state of each of `configured` (channel ids), from the body of a `channels.status`
/// admin RPC answer; `None` when the body is not such an answer.
pub fn read_channels_status(configured: &[&str], body: &[u8]) -> Option<Vec<ChannelStatus>> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    if answer.get("ok").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let payload = answer.get("payload")?;
    let channels = payload.get("channels")?.as_object()?;
    let accounts = payload.get("channelAccounts").and_then(Value::as_object);
    Some(
        configured
            .iter()
            .map(|id| {
                let accounts = accounts
                    .and_then(|a| a.get(*id))
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                channel_status(id, channels.get(*id), accounts)
            })
            .collect(),
    )
}

fn channel_status(id: &str, channel: Option<&Value>, accounts: &[Value]) -> ChannelStatus {
    let status = |state, detail: Option<String>| ChannelStatus {
        id: id.to_string(),
        state,
        detail,
    };
    let Some(channel) = channel.filter(|c| c.is_object()) else {
        return status(
            ChannelState::NotLoaded,
            Some(
                "OpenClaw has no plugin running this channel (not installed or not loadable)"
                    .into(),
            ),
        );
    };
    if channel.get("configured").and_then(Value::as_bool) == Some(false) {
        return status(
            ChannelState::NotLoaded,
            Some("OpenClaw does not consider this channel configured".into()),
        );
    }
    let last_error = std::iter::once(channel)
        .chain(accounts)
        .find_map(|v| v.get("lastError").and_then(Value::as_str))
        .map(clean);
    let running = channel.get("running").and_then(Value::as_bool) == Some(true);
    let starting = accounts.iter().any(|a| {
        a.get("lifecycle")
            .and_then(Value::as_str)
            .is_some_and(|l| STARTING_LIFECYCLES.contains(&l))
    });
    match (running, last_error) {
        (true, _) if starting => status(ChannelState::Starting, None),
        (true, _) => status(ChannelState::Running, None),
        (false, Some(error)) => status(ChannelState::Failing, Some(error)),
        (false, None) => status(ChannelState::Starting, None),
    }
}

/// The bot's text, made short and printable.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(payload: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"id": "x", "ok": true, "payload": payload})).unwrap()
    }

    #[test]
    fn a_configured_channel_missing_from_the_answer_is_not_loaded() {
        // As OpenClaw 2026.9.6 answers with Telegram running and Discord's plugin absent.
        let body = answer(json!({
            "channels": {
                "telegram": {"configured": true, "running": true, "lastError": null}
            },
            "channelAccounts": {
                "telegram": [{"accountId": "default", "lifecycle": "running", "running": true}]
            }
        }));
        let states = read_channels_status(&["telegram", "discord"], &body).unwrap();
        assert_eq!(states[0].state, ChannelState::Running);
        assert_eq!(states[1].state, ChannelState::NotLoaded);
        assert!(states[1].state.degrades());
        assert!(!states[0].state.degrades());
    }

    #[test]
    fn lifecycle_and_errors_decide_the_rest() {
        let body = answer(json!({
            "channels": {
                "discord": {"configured": true, "running": true},
                "slack": {"configured": true, "running": false, "lastError": "invalid_auth\nbad"},
                "telegram": {"configured": false, "running": false}
            },
            "channelAccounts": {
                "discord": [{"lifecycle": "starting", "connected": false}]
            }
        }));
        let states = read_channels_status(&["discord", "slack", "telegram"], &body).unwrap();
        assert_eq!(states[0].state, ChannelState::Starting);
        assert_eq!(states[1].state, ChannelState::Failing);
        assert_eq!(states[1].detail.as_deref(), Some("invalid_auth bad"));
        assert_eq!(states[2].state, ChannelState::NotLoaded);
    }

    #[test]
    fn nonsense_is_no_answer() {
        for body in [
            &b"not json"[..],
            br#"{"ok": false, "error": {"code": "UNAVAILABLE"}}"#,
            br#"{"ok": true, "payload": {"channels": []}}"#,
            br#"[1, 2]"#,
        ] {
            assert_eq!(read_channels_status(&["telegram"], body), None);
        }
        let long =
            answer(json!({"channels": {"x": {"running": false, "lastError": "e".repeat(10_000)}}}));
        let states = read_channels_status(&["x"], &long).unwrap();
        assert_eq!(states[0].detail.as_ref().unwrap().len(), MAX_DETAIL_CHARS);
    }
}
