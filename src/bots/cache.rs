//! The watch cache: every bot's row, parsed once, and its JSON, rendered once per change, so
//! that `GET /api/bots`, `GET /api/bots/{id}`, the dashboard and the probe schedule answer from
//! memory, the way a Kubernetes informer serves lists: no Docker call and no SQLite read per
//! request.
//!
//! It holds the registry side of a bot (its row); the Docker side is [`Fleet`]'s, kept current
//! by the reconciler from the event stream. Both are exact by construction:
//!
//! - Rows: every write to a bot's row goes through [`Store`], which notes the bot's id after
//!   the write returns ([`Store::take_bot_changes`]); every read first re-reads the noted rows,
//!   under one lock so a slower refresh never overwrites a newer one. A caller therefore reads
//!   its own writes. The reconciler's resync re-reads every row as well ([`BotCache::reload`]),
//!   for writes made by hand behind botmaker's back.
//! - Containers: the cache is only trusted while it is [synced](BotCache::is_fresh): the
//!   reconciler's event stream is connected, a full resync (one list call, compared bot by bot)
//!   has run since it connected, and the daemon answered within [`FRESHNESS`]. Otherwise a
//!   read asks Docker, and fails clearly when Docker is down: never an old answer passed off
//!   as current.
//!
//! Memory does not follow response size: each bot's JSON exists once, and a list answer is a
//! sequence of shared references to those pieces, streamed out a chunk at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::error::BotError;
use super::images::drifted;
use super::observed::{Fleet, Observed};
use super::spec::{BotSpec, HttpProbe};
use super::view::{BotView, view_of};
use crate::BotId;
use crate::store::{BotRow, DesiredState, Store};

/// Longest the cache is trusted after the daemon last answered (an event, a heartbeat ping or
/// a resync). A daemon that closes its connections (stopped, crashed) is noticed at once; one
/// that hangs (frozen) at most this long after its last answer: the bound on how old a cached
/// answer can be.
pub const FRESHNESS: Duration = Duration::from_secs(3);

/// How many changed rows are re-read one by one before a full reload is cheaper.
const MAX_SINGLE_REFRESHES: usize = 256;

/// Rows a full reload turns into views at once (see [`BotCache::apply_all`]).
const RELOAD_SLICE: usize = 512;

/// One cached bot.
struct Entry {
    /// The bot as the API shows it, with the observed state it was last rendered with.
    view: BotView,
    /// `view` as JSON, rendered on first need and again when its observed state changes.
    json: Option<Bytes>,
}

#[derive(Default)]
struct Rows {
    /// Whether every row has been read since start-up (or since a read failed).
    loaded: bool,
    /// Bumped by every change of a row: part of the key of [`ListMemo`].
    generation: u64,
    /// Bot ids in the registry's order: oldest first, ties by id.
    order: Vec<(DateTime<Utc>, BotId)>,
    /// Boxed: an entry is most of a kilobyte, and a map's table holds up to twice as many
    /// slots as entries (10,000 bots: 16,384 slots), so inline entries left megabytes of empty
    /// slots resident.
    by_id: HashMap<BotId, Box<Entry>>,
}

impl Rows {
    fn upsert(&mut self, view: BotView, id: BotId) {
        self.generation += 1;
        let key = (view.created_at, id.clone());
        if let Some(old) = self.by_id.get(&id)
            && old.view.created_at != view.created_at
        {
            let old_key = (old.view.created_at, id.clone());
            if let Ok(i) = self.order.binary_search(&old_key) {
                self.order.remove(i);
            }
        }
        if let Err(i) = self.order.binary_search(&key) {
            self.order.insert(i, key);
        }
        self.by_id.insert(id, Box::new(Entry { view, json: None }));
    }

    fn remove(&mut self, id: &BotId) {
        self.generation += 1;
        if let Some(old) = self.by_id.remove(id)
            && let Ok(i) = self.order.binary_search(&(old.view.created_at, id.clone()))
        {
            self.order.remove(i);
        }
    }

    /// Applies part of a full read of the registry: an entry whose registry side is unchanged
    /// is kept as it is, with its rendered JSON, so a resync of an unchanged fleet allocates
    /// no view and renders nothing again (rebuilding every entry churned the whole cache
    /// through the allocator each `--resync-interval`, and the next list rendered every bot
    /// again). Returns whether anything changed. [`Rows::finish_read`] completes the read.
    fn apply_read(&mut self, views: Vec<(BotId, BotView)>) -> bool {
        let mut changed = false;
        for (id, view) in views {
            match self.by_id.get_mut(&id) {
                Some(kept) if kept.view.same_registry_side(&view) => {}
                Some(stale) => {
                    changed = true;
                    **stale = Entry { view, json: None };
                }
                None => {
                    changed = true;
                    self.by_id.insert(id, Box::new(Entry { view, json: None }));
                }
            }
        }
        changed
    }

    /// Ends a full read applied with [`Rows::apply_read`]: `order` is every bot read, and
    /// bots not in it are gone.
    fn finish_read(&mut self, mut order: Vec<(DateTime<Utc>, BotId)>, mut changed: bool) {
        order.sort();
        if self.by_id.len() != order.len() {
            let listed: std::collections::HashSet<&BotId> =
                order.iter().map(|(_, id)| id).collect();
            self.by_id.retain(|id, _| listed.contains(id));
            changed = true;
        }
        changed |= self.order != order;
        self.order = order;
        if changed {
            self.generation += 1;
        }
        self.loaded = true;
    }
}

/// Longest an assembled list answer is reused while nothing it was made from changed: the
/// bound on how late a change that time alone makes (a crash ageing out of the crash-loop
/// window) shows in a list. Every recorded change invalidates it at once.
const LIST_MEMO_TTL: Duration = Duration::from_millis(500);

/// The last list answer, with what it was made from. Many concurrent lists (a dashboard open
/// in many tabs, a monitoring scrape) then cost one pass over the fleet, not one each: the
/// pass takes the rows' lock and derives every bot's state, which at 500 bots and 200
/// requests at once was most of their wait.
struct ListMemo {
    rows: u64,
    fleet: u64,
    resolved: HashMap<String, Option<String>>,
    at: Instant,
    pieces: ListPieces,
}

/// A list answer's pieces, one per bot, shared by every answer made from them: each answer in
/// flight holds a reference, not its own vector of the fleet's pieces (10,000 bots: 320 KB
/// each, 16 MB for 50 concurrent lists).
pub type ListPieces = Arc<[Bytes]>;

/// Every bot's row and rendered JSON, plus whether the Docker side can be trusted.
pub struct BotCache {
    rows: Mutex<Rows>,
    list_memo: Mutex<Option<ListMemo>>,
    /// Held while changed rows are re-read and applied: two refreshes racing could otherwise
    /// apply an older read after a newer one.
    refreshing: tokio::sync::Mutex<()>,
    synced: AtomicBool,
    heard: Mutex<Option<Instant>>,
}

impl Default for BotCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotCache")
            .field("bots", &self.rows().by_id.len())
            .field("fresh", &self.is_fresh())
            .finish()
    }
}

impl BotCache {
    /// An empty cache, not synced.
    pub fn new() -> Self {
        Self {
            rows: Mutex::default(),
            list_memo: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            synced: AtomicBool::new(false),
            heard: Mutex::new(None),
        }
    }

    fn rows(&self) -> MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether reads may be answered from memory: synced with Docker and heard from it within
    /// [`FRESHNESS`].
    pub fn is_fresh(&self) -> bool {
        self.synced.load(Ordering::Acquire)
            && self
                .heard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some_and(|t| t.elapsed() < FRESHNESS)
    }

    /// The reconciler's event stream is connected and a full resync since has run: from here
    /// on events keep the cache current.
    pub fn mark_synced(&self) {
        self.heard_from_docker();
        self.synced.store(true, Ordering::Release);
    }

    /// The event stream is gone (or a resync failed): reads ask Docker until the next sync.
    pub fn mark_unsynced(&self) {
        self.synced.store(false, Ordering::Release);
    }

    /// The daemon just answered (an event, a ping, a list).
    pub fn heard_from_docker(&self) {
        *self.heard.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Brings the rows up to date with the store: all of them the first time, afterwards
    /// only those written since the last call.
    pub async fn refresh(&self, store: &Store) -> Result<(), BotError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let changes = store.take_bot_changes();
        let loaded = self.rows().loaded;
        if !loaded || changes.ids.len() > MAX_SINGLE_REFRESHES {
            return self.reload_locked(store).await;
        }
        for id in changes.ids {
            let row = match store.get_bot(&id).await {
                Ok(row) => row,
                Err(e) => {
                    // Read everything again next time rather than keep a row that may be old.
                    self.rows().loaded = false;
                    return Err(e.into());
                }
            };
            match row.map(|r| view_of(&r, super::observed::missing())) {
                Some(Ok(view)) => self.rows().upsert(view, id),
                Some(Err(e)) => {
                    self.rows().loaded = false;
                    return Err(e);
                }
                None => self.rows().remove(&id),
            }
        }
        Ok(())
    }

    /// Reads every row again: the resync's check of the registry side, which also picks up
    /// writes made behind botmaker's back.
    pub async fn reload(&self, store: &Store) -> Result<(), BotError> {
        let _one_at_a_time = self.refreshing.lock().await;
        self.reload_locked(store).await
    }

    async fn reload_locked(&self, store: &Store) -> Result<(), BotError> {
        // Changes noted before this read are covered by it.
        store.take_bot_changes();
        let applied = match store.list_bots().await {
            Ok(rows) => self.apply_all(&rows),
            Err(e) => Err(e.into()),
        };
        if applied.is_err() {
            // Read everything again next time: part of this read may be applied.
            self.rows().loaded = false;
        }
        applied
    }

    /// Applies a full read, [`RELOAD_SLICE`] rows at a time: each slice's views are built
    /// outside the lock (a list waits for one slice, not for the whole fleet), and only one
    /// slice of them exists at once.
    fn apply_all(&self, rows: &[BotRow]) -> Result<(), BotError> {
        let mut changed = false;
        for slice in rows.chunks(RELOAD_SLICE) {
            let views = views_of(slice)?;
            changed |= self.rows().apply_read(views);
        }
        let order = rows.iter().map(|r| (r.created_at, r.id.clone())).collect();
        self.rows().finish_read(order, changed);
        Ok(())
    }

    /// Every bot's JSON, in registry order, each rendered with its current observed state and
    /// its image drift against `resolved` (reference → local image id, as
    /// [`ImageIds::resolve`](super::images::ImageIds::resolve) answers).
    pub fn list_json(
        &self,
        fleet: &Fleet,
        resolved: &HashMap<String, Option<String>>,
    ) -> ListPieces {
        // Read before the pass: a change made during it leaves the memo stale-keyed, so the
        // next list makes a new one.
        let fleet_generation = fleet.generation();
        let rows_generation = self.rows().generation;
        {
            let memo = self
                .list_memo
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(m) = memo.as_ref()
                && m.rows == rows_generation
                && m.fleet == fleet_generation
                && m.at.elapsed() < LIST_MEMO_TTL
                && &m.resolved == resolved
            {
                return Arc::clone(&m.pieces);
            }
        }
        let pieces: ListPieces = {
            let mut rows = self.rows();
            let Rows { order, by_id, .. } = &mut *rows;
            order
                .iter()
                .filter_map(|(_, id)| by_id.get_mut(id).map(|e| rendered(e, id, fleet, resolved)))
                .collect()
        };
        *self
            .list_memo
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(ListMemo {
            rows: rows_generation,
            fleet: fleet_generation,
            resolved: resolved.clone(),
            at: Instant::now(),
            pieces: Arc::clone(&pieces),
        });
        pieces
    }

    /// The image references the bots name, each once: what drift needs resolved.
    pub fn image_references(&self) -> Vec<String> {
        let rows = self.rows();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        rows.by_id
            .values()
            .map(|e| e.view.image.as_str())
            .filter(|r| seen.insert(r))
            .map(str::to_string)
            .collect()
    }

    /// Every bot, in registry order, with its current observed state.
    pub fn list(&self, fleet: &Fleet) -> Vec<BotView> {
        let rows = self.rows();
        rows.order
            .iter()
            .filter_map(|(_, id)| rows.by_id.get(id).map(|e| current(&e.view, id, fleet)))
            .collect()
    }

    /// One bot with its current observed state, if the registry has it.
    pub fn get(&self, id: &BotId, fleet: &Fleet) -> Option<BotView> {
        self.rows()
            .by_id
            .get(id)
            .map(|e| current(&e.view, id, fleet))
    }

    /// The bot's desired state, if the registry has it.
    pub fn desired(&self, id: &BotId) -> Option<DesiredState> {
        self.rows().by_id.get(id).map(|e| e.view.desired_state)
    }

    /// Every bot that has an HTTP probe, with it: the probe schedule.
    pub fn probes(&self) -> Vec<(BotId, HttpProbe)> {
        self.rows()
            .by_id
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.view.health_check.clone()?)))
            .collect()
    }

    /// The bot's template name and spec, if the registry has it: what a probe of it needs
    /// besides the probe itself.
    pub fn template_and_spec(&self, id: &BotId) -> Option<(String, BotSpec)> {
        self.rows()
            .by_id
            .get(id)
            .map(|e| (e.view.template.clone(), e.view.spec()))
    }

    /// How many bots the cache holds.
    pub fn len(&self) -> usize {
        self.rows().by_id.len()
    }

    /// Whether the cache holds no bot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn views_of(rows: &[BotRow]) -> Result<Vec<(BotId, BotView)>, BotError> {
    rows.iter()
        .map(|r| Ok((r.id.clone(), view_of(r, super::observed::missing())?)))
        .collect()
}

fn current(view: &BotView, id: &BotId, fleet: &Fleet) -> BotView {
    let mut view = view.clone();
    let bound = fleet.status(id).map(|s| s.ports).unwrap_or_default();
    view.set_observed(fleet.observe(id, view.desired_state), &bound);
    view
}

/// The entry's JSON with its current observed state and drift, rendered again only if either
/// changed.
fn rendered(
    e: &mut Entry,
    id: &BotId,
    fleet: &Fleet,
    resolved: &HashMap<String, Option<String>>,
) -> Bytes {
    let observed: Observed = fleet.observe(id, e.view.desired_state);
    let drift = drifted(observed.image_id.as_deref(), resolved.get(&e.view.image));
    if e.view.observed != observed || e.view.image_drift != drift || e.json.is_none() {
        // Host ports change only with the container, which `observed` names.
        let bound = fleet.status(id).map(|s| s.ports).unwrap_or_default();
        e.view.set_observed(observed, &bound);
        e.view.image_drift = drift;
        // A view always serializes (no map with non-string keys, no failing Serialize impl).
        // Boxed to its length first: the writer's vector grows by doubling, and a `Bytes` of
        // it would keep the spare capacity (up to half of each piece) for as long as it lives.
        let json = serde_json::to_vec(&e.view).unwrap_or_default();
        e.json = Some(Bytes::from(json.into_boxed_slice()));
    }
    e.json.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::observed::CrashLoopPolicy;
    use chrono::TimeZone;
    use serde_json::json;

    fn row(id: &str, second: i64, spec: serde_json::Value) -> BotRow {
        let at =
            Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(second);
        BotRow {
            id: BotId::new(id).unwrap(),
            name: format!("Bot {id}"),
            template: "generic".into(),
            spec,
            secret_names: vec![],
            desired_state: DesiredState::Running,
            container_id: None,
            image_id: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn ids(views: &[BotView]) -> Vec<&str> {
        views.iter().map(|v| v.id.as_str()).collect()
    }

    #[tokio::test]
    async fn every_write_through_the_store_shows_in_the_next_read() {
        let store = Store::open_in_memory().await.unwrap();
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let cache = BotCache::new();
        store
            .insert_bot(&row("beta", 2, json!({"image": "b"})))
            .await
            .unwrap();
        cache.refresh(&store).await.unwrap();
        assert_eq!(ids(&cache.list(&fleet)), ["beta"]);

        // Inserted before it in registry order, changed, deleted: each seen at the next read.
        store
            .insert_bot(&row("alpha", 1, json!({"image": "a"})))
            .await
            .unwrap();
        let gamma = row(
            "gamma",
            3,
            json!({"image": "g", "health_check": {"port": 80}}),
        );
        store.insert_bot(&gamma).await.unwrap();
        cache.refresh(&store).await.unwrap();
        assert_eq!(ids(&cache.list(&fleet)), ["alpha", "beta", "gamma"]);
        assert_eq!(cache.probes().len(), 1);

        store
            .set_desired_state(&gamma.id, DesiredState::Stopped)
            .await
            .unwrap();
        let mut changed = gamma.clone();
        changed.spec = json!({"image": "g2"});
        changed.desired_state = DesiredState::Stopped;
        store.update_bot(&changed).await.unwrap();
        store
            .delete_bot(&BotId::new("alpha").unwrap())
            .await
            .unwrap();
        cache.refresh(&store).await.unwrap();
        let views = cache.list(&fleet);
        assert_eq!(ids(&views), ["beta", "gamma"]);
        assert_eq!(views[1].image, "g2");
        assert_eq!(views[1].desired_state, DesiredState::Stopped);
        assert!(cache.probes().is_empty(), "the probe left with the change");
        assert_eq!(
            cache.get(&gamma.id, &fleet).unwrap(),
            views[1],
            "one bot reads as in the list"
        );
        assert!(cache.get(&BotId::new("alpha").unwrap(), &fleet).is_none());
    }

    #[tokio::test]
    async fn the_json_pieces_are_the_views_and_follow_the_observed_state() {
        let store = Store::open_in_memory().await.unwrap();
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let cache = BotCache::new();
        for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
            store
                .insert_bot(&row(id, i as i64, json!({"image": "img"})))
                .await
                .unwrap();
        }
        cache.refresh(&store).await.unwrap();
        let as_views = |pieces: ListPieces| -> Vec<BotView> {
            pieces
                .iter()
                .map(|p| serde_json::from_slice(p).unwrap())
                .collect()
        };
        let first = cache.list_json(&fleet, &HashMap::new());
        assert_eq!(as_views(first.clone()), cache.list(&fleet));
        assert_eq!(
            as_views(first.clone())[0].observed.state,
            super::super::BotState::Missing
        );
        // Unchanged: the very same pieces, not a new rendering.
        let again = cache.list_json(&fleet, &HashMap::new());
        assert!(
            first
                .iter()
                .zip(again.iter())
                .all(|(a, b)| a.as_ptr() == b.as_ptr())
        );

        // A bot's container seen: only that bot's piece is rendered again.
        let a2 = BotId::new("a2").unwrap();
        fleet.record_status(&a2, Some(running_status("c2")));
        let after = cache.list_json(&fleet, &HashMap::new());
        assert_eq!(
            as_views(after.clone())[1].observed.state,
            super::super::BotState::Running
        );
        assert_eq!(first[0].as_ptr(), after[0].as_ptr());
        assert_ne!(first[1].as_ptr(), after[1].as_ptr());
        assert_eq!(as_views(after), cache.list(&fleet));
    }

    #[tokio::test]
    async fn a_list_within_the_memo_window_still_shows_every_change() {
        let store = Store::open_in_memory().await.unwrap();
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let cache = BotCache::new();
        let b1 = row("b1", 1, json!({"image": "img:1"}));
        store.insert_bot(&b1).await.unwrap();
        cache.refresh(&store).await.unwrap();
        let view = |pieces: ListPieces| -> BotView { serde_json::from_slice(&pieces[0]).unwrap() };
        let none = HashMap::new();
        let first = cache.list_json(&fleet, &none);
        let again = cache.list_json(&fleet, &none);
        assert_eq!(
            first[0].as_ptr(),
            again[0].as_ptr(),
            "reused while unchanged"
        );

        // A row written through the store.
        let mut changed = b1.clone();
        changed.spec = json!({"image": "img:2"});
        store.update_bot(&changed).await.unwrap();
        cache.refresh(&store).await.unwrap();
        assert_eq!(view(cache.list_json(&fleet, &none)).image, "img:2");

        // A container seen, then a probe verdict of its run.
        let b1_id = BotId::new("b1").unwrap();
        let status = running_status("c1");
        fleet.record_status(&b1_id, Some(status.clone()));
        assert_eq!(
            view(cache.list_json(&fleet, &none)).observed.state,
            super::super::BotState::Running
        );
        let run = super::super::RunKey::of(&status);
        let ready = super::super::ProbeResult {
            live: true,
            ready: true,
            channels: None,
        };
        fleet.record_probe(&b1_id, &run, ready, false, 3);
        assert_eq!(
            view(cache.list_json(&fleet, &none)).observed.health,
            crate::docker::Health::Healthy
        );

        // The image behind the reference moved: drift.
        let moved = HashMap::from([("img:2".to_string(), Some("sha256:new".to_string()))]);
        assert!(!view(first).image_drift);
        assert!(
            view(cache.list_json(&fleet, &moved)).image_drift,
            "drift follows the resolved images"
        );
    }

    #[tokio::test]
    async fn a_resync_rendered_every_bot_again() {
        let store = Store::open_in_memory().await.unwrap();
        let fleet = Fleet::new(CrashLoopPolicy::default());
        let cache = BotCache::new();
        for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
            store
                .insert_bot(&row(
                    id,
                    i as i64,
                    json!({"image": "img", "ports": [{"container": 80}]}),
                ))
                .await
                .unwrap();
        }
        cache.refresh(&store).await.unwrap();
        let r2 = BotId::new("r2").unwrap();
        fleet.record_status(&r2, Some(running_status("c2")));
        let none = HashMap::new();
        let first = cache.list_json(&fleet, &none);

        // A resync over an unchanged registry keeps every entry and its rendering.
        cache.reload(&store).await.unwrap();
        let after = cache.list_json(&fleet, &none);
        assert!(
            first
                .iter()
                .zip(after.iter())
                .all(|(a, b)| a.as_ptr() == b.as_ptr()),
            "an unchanged bot is not rendered again after a resync"
        );

        // A row changed and one deleted: the changed one is rendered again, the others not.
        let mut changed = row("r3", 2, json!({"image": "img:2"}));
        changed.updated_at += chrono::Duration::seconds(5);
        store.update_bot(&changed).await.unwrap();
        store.delete_bot(&BotId::new("r1").unwrap()).await.unwrap();
        cache.reload(&store).await.unwrap();
        let last = cache.list_json(&fleet, &none);
        assert_eq!(last.len(), 2);
        assert_eq!(last[0].as_ptr(), first[1].as_ptr(), "r2 kept");
        let r3: BotView = serde_json::from_slice(&last[1]).unwrap();
        assert_eq!(r3.image, "img:2");
        assert_eq!(ids(&cache.list(&fleet)), ["r2", "r3"]);
    }

    #[test]
    fn trusted_only_while_synced_and_heard_from() {
        let cache = BotCache::new();
        assert!(!cache.is_fresh(), "not before the first sync");
        cache.mark_synced();
        assert!(cache.is_fresh());
        cache.mark_unsynced();
        assert!(!cache.is_fresh(), "not once the event stream is gone");
        cache.mark_synced();
        *cache.heard.lock().unwrap() = Some(Instant::now() - FRESHNESS);
        assert!(
            !cache.is_fresh(),
            "not when the daemon has been silent too long"
        );
        cache.heard_from_docker();
        assert!(cache.is_fresh());
    }

    fn running_status(id: &str) -> crate::docker::ContainerStatus {
        crate::docker::ContainerStatus::running_for_test(id)
    }
}
