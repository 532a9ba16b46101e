//! Alerts: telling people when a bot is in trouble, and when it is fine again.
//!
//! This module owns the notification channels (`/api/notifications`), the rules that turn the
//! fleet's event stream into alerts ([`detect`]), and their delivery ([`send`]). It reads the
//! fleet's events and the registry; it never talks to Docker and never changes a bot.
//!
//! Delivery never blocks anyone: the fleet's broadcast channel feeds one task (owned by the
//! server's task tracker, stopped on shutdown) that decides alerts and puts one job per channel
//! on a bounded queue ([`QUEUE_CAPACITY`]; when it is full, the alert is dropped and logged,
//! never waited for). Jobs are sent concurrently, at most [`MAX_CONCURRENT_SENDS`] requests at
//! a time, each with a time limit; a failed attempt is retried with exponential back-off
//! ([`RetryPolicy`]), and every attempt is recorded for `GET /api/notifications/{id}/deliveries`.
//!
//! Signing secrets and Telegram bot tokens are kept in botmaker's secrets store (a directory
//! per channel under `<data>/notification-secrets`), never in the registry and never returned.

mod channel;
mod detect;
mod error;
mod event;
pub mod send;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinSet;

pub use channel::{
    ChannelKind, ChannelList, ChannelPatch, ChannelSpec, ChannelView, DEFAULT_TELEGRAM_API,
    Deliverable, DeliveryList, DeliveryResult, DeliveryView, Kept, MAX_CHANNEL_NAME_LEN,
    NewChannel, check_url,
};
pub use detect::{CONFIRM_GRACE, DEFAULT_RECOVERY_SETTLE, Detector};
pub use error::AlertError;
pub use event::{Alert, AlertEvent, AlertPayload};

use crate::BotId;
use crate::bots::BotEvent;
use crate::field_errors::FieldErrors;
use crate::secrets::{SecretName, SecretValue, SecretsStore};
use crate::store::{ChannelRow, DeliveryRow, Store};
use send::{AttemptError, ChannelSecrets};

/// Alert jobs (one alert for one channel) waiting to be sent, at most.
pub const QUEUE_CAPACITY: usize = 1024;
/// Requests to receivers in flight at once.
pub const MAX_CONCURRENT_SENDS: usize = 8;
/// Jobs being worked on (sending, or waiting to retry) at once; the queue holds the rest.
const MAX_JOBS: usize = 256;
/// Most attempts listed by `GET /api/notifications/{id}/deliveries`.
pub const MAX_DELIVERIES_LISTED: u32 = 200;
/// How often waiting rules (confirmations, recoveries) are looked at.
const TICK: Duration = Duration::from_secs(1);

const SIGNING_SECRET_FILE: &str = "SIGNING_SECRET";
const BOT_TOKEN_FILE: &str = "BOT_TOKEN";

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles after each failure...
    pub first_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts over about 15 s (1, 2, 4, 8 s apart): a receiver restarting is caught, one
    /// that is down for good is given up on before the next alert is likely.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based).
    pub fn delay_after(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What the alert service is configured with.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// `serve --public-url`: alerts link the bot's dashboard page under it.
    pub public_url: Option<String>,
    /// How long a bot must run healthy to count as recovered.
    pub recovery_settle: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

/// Deliveries since start-up, by result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Attempts the receiver accepted.
    pub ok: u64,
    /// Attempts that failed, with another to follow.
    pub retrying: u64,
    /// Attempts that failed for good (the last one of an alert, or a test).
    pub failed: u64,
    /// Alert jobs dropped because the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    retrying: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// The same counts as `botmaker_alert_deliveries_total{result}`, once the composition root
    /// hands over the metrics' handle ([`AlertService::export_counts`]).
    exported: std::sync::OnceLock<crate::metrics::AlertDeliveries>,
}

impl Counters {
    fn count(&self, counter: &AtomicU64, result: &str) {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = self.exported.get() {
            e.record(result);
        }
    }
}

/// One alert for one channel.
struct Job {
    channel: Deliverable,
    payload: Arc<AlertPayload>,
}

/// Notification channels and alert delivery. Cheap to clone.
#[derive(Clone)]
pub struct AlertService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    secrets: SecretsStore,
    client: reqwest::Client,
    settings: AlertSettings,
    queue: mpsc::Sender<Job>,
    /// The queue's receiving end, until [`AlertService::run`] takes it.
    jobs: Mutex<Option<mpsc::Receiver<Job>>>,
    counters: Counters,
    /// Held by a change to a channel: its row and secret files are written apart, and two
    /// changes at once must not interleave them.
    edits: Mutex<()>,
}

fn secret_name(file: &str) -> SecretName {
    SecretName::new(file).expect("a valid secret name")
}

/// The secrets-store directory of channel `id`.
fn secrets_dir(id: i64) -> BotId {
    BotId::new(format!("channel-{id}")).expect("a valid directory name")
}

fn parse_id(id: &str) -> Result<i64, AlertError> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AlertError::NotFound(id.to_string()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AlertError> + Send + 'static,
) -> Result<T, AlertError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

impl AlertService {
    /// The service over `store`, keeping channel secrets under `secrets_root`.
    pub fn new(store: Store, secrets_root: std::path::PathBuf, settings: AlertSettings) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(send::CONNECT_TIMEOUT)
            .timeout(send::ATTEMPT_TIMEOUT)
            // A redirect is a misconfigured URL; following it would send the payload elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls builds");
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                store,
                secrets: SecretsStore::new(secrets_root),
                client,
                settings,
                queue,
                jobs: Mutex::new(Some(jobs)),
                counters: Counters::default(),
                edits: Mutex::new(()),
            }),
        }
    }

    /// Counts every delivery from now on in `deliveries` too (the `/metrics` series). The
    /// first handle given is kept.
    pub fn export_counts(&self, deliveries: crate::metrics::AlertDeliveries) {
        let _ = self.inner.counters.exported.set(deliveries);
    }

    /// Deliveries since start-up, by result.
    pub fn delivery_counts(&self) -> DeliveryCounts {
        let c = &self.inner.counters;
        DeliveryCounts {
            ok: c.ok.load(Ordering::Relaxed),
            retrying: c.retrying.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// Every channel, oldest first.
    pub async fn list(&self) -> Result<Vec<ChannelView>, AlertError> {
        Ok(self
            .deliverables()
            .await?
            .into_iter()
            .map(|d| d.view)
            .collect())
    }

    /// One channel.
    pub async fn get(&self, id: &str) -> Result<ChannelView, AlertError> {
        Ok(self.deliverable(id).await?.view)
    }

    /// Every channel with the full URL to send to.
    async fn deliverables(&self) -> Result<Vec<Deliverable>, AlertError> {
        Ok(self
            .inner
            .store
            .list_channels()
            .await?
            .iter()
            .filter_map(Deliverable::of)
            .collect())
    }

    /// One channel with the full URL to send to.
    async fn deliverable(&self, id: &str) -> Result<Deliverable, AlertError> {
        let n = parse_id(id)?;
        self.inner
            .store
            .get_channel(n)
            .await?
            .as_ref()
            .and_then(Deliverable::of)
            .ok_or_else(|| AlertError::NotFound(id.to_string()))
    }

    /// Validates and adds a channel. Nothing is stored when any field is wrong.
    pub async fn create(&self, req: NewChannel) -> Result<ChannelView, AlertError> {
        let mut errors = FieldErrors::default();
        let spec = req.validate(&mut errors);
        errors.into_result().map_err(AlertError::Validation)?;
        self.insert(spec.expect("validated")).await
    }

    async fn insert(&self, spec: ChannelSpec) -> Result<ChannelView, AlertError> {
        let row = spec.row(0, Kept::default(), Utc::now());
        let id = self.inner.store.insert_channel(&row).await?;
        // The secrets after the row (which gives the id); if they cannot be written, the row
        // goes again, so a failed create leaves nothing behind.
        let secrets = [
            (SIGNING_SECRET_FILE, spec.signing_secret),
            (BOT_TOKEN_FILE, spec.bot_token),
        ];
        if secrets.iter().any(|(_, v)| v.is_some()) {
            let ss = self.inner.secrets.clone();
            let written = blocking(move || {
                for (file, value) in secrets {
                    if let Some(v) = value {
                        ss.set(&secrets_dir(id), &secret_name(file), &SecretValue::from(v))?;
                    }
                }
                Ok(())
            })
            .await;
            if let Err(e) = written {
                let _ = self.inner.store.delete_channel(id).await;
                let ss = self.inner.secrets.clone();
                let _ = blocking(move || Ok(ss.delete_all(&secrets_dir(id))?)).await;
                return Err(e);
            }
        }
        Ok(ChannelView::of(&ChannelRow { id, ..row }).expect("a known kind"))
    }

    /// Changes a channel: the fields `patch` gives, checked as a whole channel. Write-only
    /// secrets are replaced when given and kept when not; a `null` signing secret stops
    /// signing. The channels `serve --alert-webhook` keeps are the flag's to change. Nothing
    /// changes when any field is wrong.
    pub async fn update(&self, id: &str, patch: ChannelPatch) -> Result<ChannelView, AlertError> {
        let _edit = self.inner.edits.lock().await;
        let n = parse_id(id)?;
        let old = self
            .inner
            .store
            .get_channel(n)
            .await?
            .ok_or_else(|| AlertError::NotFound(id.to_string()))?;
        let mut errors = FieldErrors::default();
        if old.name.is_none() {
            errors.add(
                "name",
                "this channel is kept by `serve --alert-webhook`: change the flag instead",
            );
            return Err(AlertError::Validation(errors));
        }
        let (body, kept) = patch.over(&old);
        let spec = body.validate_keeping(&mut errors, kept);
        errors.into_result().map_err(AlertError::Validation)?;
        let spec = spec.expect("validated");
        let row = spec.row(n, kept, old.created_at);
        // The row first (a name taken by another channel stops here, before any secret is
        // replaced); then the files; if they cannot be written, the row goes back.
        if !self.inner.store.update_channel(&row).await? {
            return Err(AlertError::NotFound(id.to_string()));
        }
        let drop_signing = old.has_signing_secret && !row.has_signing_secret;
        let (ss, secret, token) = (
            self.inner.secrets.clone(),
            spec.signing_secret,
            spec.bot_token,
        );
        let written = blocking(move || {
            let dir = secrets_dir(n);
            for (file, value) in [(SIGNING_SECRET_FILE, secret), (BOT_TOKEN_FILE, token)] {
                if let Some(v) = value {
                    ss.set(&dir, &secret_name(file), &SecretValue::from(v))?;
                }
            }
            if drop_signing {
                ss.delete(&dir, &secret_name(SIGNING_SECRET_FILE))?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = written {
            let _ = self.inner.store.update_channel(&old).await;
            return Err(e);
        }
        Ok(ChannelView::of(&row).expect("a known kind"))
    }

    /// Deletes a channel, its delivery history and its secrets.
    pub async fn delete(&self, id: &str) -> Result<(), AlertError> {
        let _edit = self.inner.edits.lock().await;
        let n = parse_id(id)?;
        if !self.inner.store.delete_channel(n).await? {
            return Err(AlertError::NotFound(id.to_string()));
        }
        let ss = self.inner.secrets.clone();
        blocking(move || Ok(ss.delete_all(&secrets_dir(n)).map(drop)?)).await
    }

    /// Every channel's signing secret and Telegram bot token, as `(channel-<id>, NAME, value)`,
    /// for a full backup: the registry knows the channels, not these files.
    pub async fn channel_secrets(
        &self,
    ) -> Result<Vec<(BotId, SecretName, SecretValue)>, AlertError> {
        let ids: Vec<i64> = self
            .inner
            .store
            .list_channels()
            .await?
            .iter()
            .map(|c| c.id)
            .collect();
        let ss = self.inner.secrets.clone();
        blocking(move || {
            let mut out = Vec::new();
            for id in ids {
                let dir = secrets_dir(id);
                for name in ss.list(&dir)? {
                    if let Some(v) = ss.get(&dir, &name)? {
                        out.push((dir.clone(), name, v));
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// A channel's most recent delivery attempts, newest first.
    pub async fn deliveries(&self, id: &str, limit: u32) -> Result<Vec<DeliveryView>, AlertError> {
        let channel = self.get(id).await?;
        let rows = self
            .inner
            .store
            .list_deliveries(channel.id, limit.clamp(1, MAX_DELIVERIES_LISTED))
            .await?;
        Ok(rows.iter().map(DeliveryView::of).collect())
    }

    /// Sends a test message to a channel now (one attempt, no retry) and returns how it went;
    /// the attempt is in its deliveries too.
    pub async fn test(&self, id: &str) -> Result<DeliveryView, AlertError> {
        let channel = self.deliverable(id).await?;
        let alert = Alert {
            event: AlertEvent::Test,
            bot_id: String::new(),
            observed: None,
            at: Utc::now(),
        };
        let payload = AlertPayload::new(&alert, Some("botmaker"), None);
        let result = self.attempt(&channel, &payload).await;
        let row = self
            .record(&channel, &payload, 1, &result, DeliveryResult::Failed)
            .await;
        Ok(DeliveryView::of(&row))
    }

    /// Makes the unnamed webhook channels exactly `urls` (`serve --alert-webhook`, repeatable):
    /// one kept per URL (with its history), new ones added, those whose URL is no longer
    /// given removed. Named channels are the API's and left alone.
    pub async fn keep_flag_webhooks(&self, urls: &[String]) -> Result<(), AlertError> {
        let mut wanted = Vec::new();
        for url in urls {
            let mut errors = FieldErrors::default();
            let url = channel::check_url(url, &mut errors);
            errors.into_result().map_err(AlertError::Validation)?;
            let url = url.expect("checked");
            if !wanted.contains(&url) {
                wanted.push(url);
            }
        }
        let existing = self.inner.store.list_channels().await?;
        let flag_made: Vec<&ChannelRow> = existing
            .iter()
            .filter(|c| c.name.is_none() && c.kind == ChannelKind::Webhook.as_str())
            .collect();
        for c in &flag_made {
            if !wanted.contains(&c.url) {
                self.delete(&c.id.to_string()).await?;
                tracing::info!(
                    url = %channel::shown_url(ChannelKind::Webhook, &c.url),
                    "alert webhook no longer given: removed"
                );
            }
        }
        for url in wanted {
            if !flag_made.iter().any(|c| c.url == url) {
                self.insert(ChannelSpec {
                    name: None,
                    kind: ChannelKind::Webhook,
                    url: url.clone(),
                    chat_id: None,
                    bot_token: None,
                    signing_secret: None,
                    events: None,
                })
                .await?;
                tracing::info!(%url, "alert webhook added");
            }
        }
        Ok(())
    }

    /// Follows the fleet's `events` (subscribed by the caller before anything is published)
    /// until `stop`: decides alerts and delivers them. Run once (a second call returns at once).
    pub async fn run(self, events: broadcast::Receiver<BotEvent>, stop: watch::Receiver<bool>) {
        let Some(jobs) = self.inner.jobs.lock().await.take() else {
            tracing::error!("the alert service runs already");
            return;
        };
        tokio::select! {
            _ = self.decide(events, stop.clone()) => {}
            _ = self.dispatch(jobs, stop) => {}
        }
    }

    /// The rules: fleet events and the clock in, alerts onto the queue.
    async fn decide(
        &self,
        mut events: broadcast::Receiver<BotEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut detector = Detector::new(self.inner.settings.recovery_settle);
        let mut tick = tokio::time::interval(TICK);
        loop {
            let alerts = tokio::select! {
                _ = stop.changed() => return,
                ev = events.recv() => match ev {
                    Ok(ev) => detector.observe(&ev, Instant::now()),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "alerts fell behind the fleet's events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => detector.tick(Instant::now()),
            };
            for alert in alerts {
                self.enqueue(alert).await;
            }
        }
    }

    /// The senders: jobs off the queue, each in a task of its own (so one slow receiver or a
    /// retry's wait holds up no other), at most [`MAX_JOBS`] at a time. Returning drops the
    /// set, which abandons deliveries in flight with the server.
    async fn dispatch(&self, mut jobs: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        let sends = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
        let slots = Arc::new(Semaphore::new(MAX_JOBS));
        let mut working = JoinSet::new();
        loop {
            let slot = tokio::select! {
                _ = stop.changed() => return,
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            };
            let job = tokio::select! {
                _ = stop.changed() => return,
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let (this, sends) = (self.clone(), sends.clone());
            working.spawn(async move {
                this.deliver(job, &sends).await;
                drop(slot);
            });
            while working.try_join_next().is_some() {}
        }
    }

    /// Puts `alert` on the queue once for each channel that wants it; never waits.
    async fn enqueue(&self, alert: Alert) {
        tracing::info!(bot = %alert.bot_id, event = %alert.event, "alert");
        let channels = match self.deliverables().await {
            Ok(cs) => cs,
            Err(e) => {
                tracing::warn!(error = %e, event = %alert.event, "cannot read notification channels; alert lost");
                return;
            }
        };
        let channels: Vec<_> = channels
            .into_iter()
            .filter(|c| c.view.wants(alert.event))
            .collect();
        if channels.is_empty() {
            return;
        }
        let name = match BotId::new(alert.bot_id.as_str()) {
            Ok(id) => self
                .inner
                .store
                .get_bot(&id)
                .await
                .ok()
                .flatten()
                .map(|r| r.name),
            Err(_) => None,
        };
        let payload = Arc::new(AlertPayload::new(
            &alert,
            name.as_deref(),
            self.inner.settings.public_url.as_deref(),
        ));
        for channel in channels {
            let job = Job {
                channel,
                payload: payload.clone(),
            };
            if let Err(mpsc::error::TrySendError::Full(job)) = self.inner.queue.try_send(job) {
                let c = &self.inner.counters;
                c.count(&c.dropped, "dropped");
                tracing::warn!(
                    channel = job.channel.view.id,
                    event = %job.payload.event,
                    "alert queue full; alert dropped"
                );
            }
        }
    }

    /// Sends one job, retrying with back-off; records every attempt.
    async fn deliver(&self, job: Job, sends: &Semaphore) {
        let retry = self.inner.settings.retry;
        let mut channel = job.channel;
        for n in 1..=retry.attempts.max(1) {
            let result = {
                let _permit = sends.acquire().await.expect("never closed");
                self.attempt(&channel, &job.payload).await
            };
            let last = n >= retry.attempts;
            let on_failure = if last {
                DeliveryResult::Failed
            } else {
                DeliveryResult::Retrying
            };
            self.record(&channel, &job.payload, n, &result, on_failure)
                .await;
            if result.is_ok() || last {
                return;
            }
            tokio::time::sleep(retry.delay_after(n)).await;
            // Deleted meanwhile: nobody to tell.
            match self.deliverable(&channel.view.id.to_string()).await {
                Ok(c) => channel = c,
                Err(_) => return,
            }
        }
    }

    async fn attempt(
        &self,
        channel: &Deliverable,
        payload: &AlertPayload,
    ) -> Result<u16, AttemptError> {
        let secrets = self
            .secrets_of(&channel.view)
            .await
            .map_err(|e| AttemptError {
                status: None,
                error: format!("cannot read the channel's secrets: {e}"),
            })?;
        send::attempt(&self.inner.client, channel, payload, &secrets).await
    }

    async fn secrets_of(&self, channel: &ChannelView) -> Result<ChannelSecrets, AlertError> {
        let wants_token = channel.kind == ChannelKind::Telegram;
        if !channel.signed && !wants_token {
            return Ok(ChannelSecrets::default());
        }
        let (ss, id, signed) = (self.inner.secrets.clone(), channel.id, channel.signed);
        blocking(move || {
            let dir = secrets_dir(id);
            let signing_secret = match signed {
                true => ss
                    .get(&dir, &secret_name(SIGNING_SECRET_FILE))?
                    .map(|v| v.expose().to_vec()),
                false => None,
            };
            let bot_token = match wants_token {
                true => ss
                    .get(&dir, &secret_name(BOT_TOKEN_FILE))?
                    .and_then(|v| v.expose_str().map(str::to_string)),
                false => None,
            };
            Ok(ChannelSecrets {
                signing_secret,
                bot_token,
            })
        })
        .await
    }

    /// Counts and records one attempt; returns the row as stored.
    async fn record(
        &self,
        channel: &Deliverable,
        payload: &AlertPayload,
        attempt: u32,
        result: &Result<u16, AttemptError>,
        on_failure: DeliveryResult,
    ) -> DeliveryRow {
        let c = &self.inner.counters;
        let (outcome, status, error) = match result {
            Ok(status) => (DeliveryResult::Ok, Some(*status), None),
            Err(e) => (on_failure, e.status, Some(e.error.clone())),
        };
        match outcome {
            DeliveryResult::Ok => c.count(&c.ok, "ok"),
            DeliveryResult::Retrying => c.count(&c.retrying, "retrying"),
            DeliveryResult::Failed => c.count(&c.failed, "failed"),
        }
        if let Some(error) = &error {
            tracing::warn!(channel = channel.view.id, event = %payload.event, attempt, %error, "alert delivery failed");
        }
        let mut row = DeliveryRow {
            id: 0,
            channel_id: channel.view.id,
            event: payload.event.as_str().into(),
            bot_id: Some(payload.bot_id.clone()).filter(|b| !b.is_empty()),
            attempt,
            result: outcome.as_str().into(),
            http_status: status,
            error,
            at: Utc::now(),
        };
        match self.inner.store.record_delivery(&row).await {
            Ok(id) => row.id = id,
            Err(e) => tracing::warn!(error = %e, "cannot record an alert delivery"),
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn service() -> (AlertService, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory().await.unwrap();
        let s = AlertService::new(store, dir.path().join("secrets"), AlertSettings::default());
        (s, dir)
    }

    fn webhook(name: &str, url: &str) -> NewChannel {
        NewChannel {
            name: name.into(),
            kind: "webhook".into(),
            url: Some(url.into()),
            ..NewChannel::default()
        }
    }

    /// The queue is bounded and never waited for: with no sender running, the alert past its
    /// capacity is dropped and counted.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (s, _dir) = service().await;
        s.create(webhook("w", "http://127.0.0.1:9/x"))
            .await
            .unwrap();
        let alert = Alert {
            event: AlertEvent::Missing,
            bot_id: "b".into(),
            observed: None,
            at: Utc::now(),
        };
        for _ in 0..QUEUE_CAPACITY + 3 {
            s.enqueue(alert.clone()).await;
        }
        assert_eq!(s.delivery_counts().dropped, 3);
    }

    #[tokio::test]
    async fn deliveries_are_counted_by_result() {
        let (s, _dir) = service().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ok", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/ok", axum::routing::post(|| async { "ok" }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let ok = s.create(webhook("ok", &url)).await.unwrap();
        let gone = s
            .create(webhook("gone", &url.replace("/ok", "/missing")))
            .await
            .unwrap();
        assert_eq!(
            s.test(&ok.id.to_string()).await.unwrap().result,
            DeliveryResult::Ok
        );
        let failed = s.test(&gone.id.to_string()).await.unwrap();
        assert_eq!(failed.result, DeliveryResult::Failed);
        assert_eq!(failed.http_status, Some(404));
        let counts = s.delivery_counts();
        assert_eq!((counts.ok, counts.failed, counts.retrying), (1, 1, 0));
        server.abort();
    }

    /// A create whose secret cannot be written leaves no channel behind.
    #[tokio::test]
    async fn a_create_that_cannot_keep_its_secret_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the secrets root belongs: every secret write fails.
        let root = dir.path().join("secrets");
        std::fs::write(&root, b"not a directory").unwrap();
        let store = Store::open_in_memory().await.unwrap();
        let s = AlertService::new(store, root, AlertSettings::default());
        let mut req = webhook("w", "http://127.0.0.1:9/x");
        req.signing_secret = Some("0123456789abcdef".into());
        assert!(matches!(s.create(req).await, Err(AlertError::Secrets(_))));
        assert!(s.list().await.unwrap().is_empty());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=8).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay_after(u32::MAX), p.max_delay);
    }
}
