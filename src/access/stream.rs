//! Long-lived streams (Server-Sent Events) that end with their credential.
//!
//! The auth middleware checks a credential once, when the request arrives; a stream then
//! stays open for hours. [`until_credential_ends`] wraps every such stream (API events, log
//! follow, the dashboard's stats) so that it ends within [`super::CREDENTIAL_RECHECK`] of a
//! revoke, logout or expiry, and at once when the server shuts down. The last event says why,
//! as an `{error, code}` body like any refused request, so a client can tell "log in again"
//! from a dropped connection.

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event;
use futures_util::stream::{self, Stream, StreamExt};

use super::{Auth, Credential, StreamEnd};
use crate::api::ErrorBody;

/// `inner`'s events until `credential` stops being valid or the server shuts down; then one
/// last event (`unauthorized` or `shutdown`) and the end of the stream. Dropping the returned
/// stream (the client left) drops `inner` too.
pub fn until_credential_ends<S>(
    auth: Arc<Auth>,
    credential: Credential,
    inner: S,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let ended = Box::pin(async move { auth.ended(credential).await });
    stream::unfold(Some((inner.boxed(), ended)), |state| async move {
        let (mut inner, mut ended) = state?;
        tokio::select! {
            // The end wins over a busy stream: no more lines once the credential is gone.
            biased;
            why = &mut ended => Some((Ok(last_event(why)), None)),
            item = inner.next() => item.map(|item| (item, Some((inner, ended)))),
        }
    })
}

/// The event that closes a stream, saying why.
fn last_event(why: StreamEnd) -> Event {
    let (name, code, message) = match why {
        StreamEnd::Unauthorized => (
            "unauthorized",
            "UNAUTHORIZED",
            "the credential of this stream was revoked or expired; log in again",
        ),
        StreamEnd::ShuttingDown => ("shutdown", "SHUTTING_DOWN", "the server is shutting down"),
    };
    Event::default()
        .event(name)
        .json_data(ErrorBody::new(message, code))
        .expect("serializable")
}
