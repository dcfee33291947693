//! The engine: keeps the projection state up with the log. It loads the checkpoint (refusing one
//! that is ahead of the log or from another log), catches up from it, follows the live feed, and
//! saves a checkpoint every so many events or so much time. It never applies an event the log
//! has not made durable, so the state is never ahead of the log.
//!
//! A full disk does not stop it: a checkpoint that finds no room is tried again later (the
//! changes wait in memory), a write sled failed on its own is found and the database reopened
//! (see `checkpoint.rs`), and an event whose application sled failed for want of space, which
//! may have left the state half changed, makes the projections start again from their
//! checkpoint and catch up from the log.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chancery_domain::{Hash, Kind, NewEvent, Payload, Position, RecordError, RecordedEvent};
use chancery_store::{EventFilter, EventLog, ReadRequest, StoreError};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::checkpoint::{CheckpointStore, Flush, Loaded};
use crate::error::ProjectionError;
use crate::facade::Content;
use crate::state::{CacheSizes, ProjectionState, Step};

/// When to save a checkpoint while following the log, and how much to write between two
/// snapshots of the projections' database.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    pub every_events: u64,
    pub every: Duration,
    /// Checkpoint bytes after which the database is reopened, so that sled writes its snapshot
    /// and the next start reads about no more than this since it (see `checkpoint.rs`). A reopen
    /// holds answers back while sled reads its snapshot and what follows it (about 0.2 s at 1M
    /// events, docs/benchmarks.md), so it comes at the end of a catch-up, not during it, and
    /// while following only after this many bytes.
    pub snapshot_after_bytes: u64,
    /// The size past which a value file of pages and blocks is closed (see `values.rs`): the
    /// unit of compaction.
    pub value_file_bytes: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            every_events: 10_000,
            every: Duration::from_secs(2),
            snapshot_after_bytes: 256 << 20,
            value_file_bytes: crate::values::FILE_BYTES,
        }
    }
}

/// Events read at a time while catching up.
const CATCH_UP_CHUNK: usize = 4_096;
/// Events between checkpoints while catching up: what changed since the last one is held in
/// memory until then, so this bounds it (under 100 MiB). Each checkpoint writes the last block of
/// every list again, so fewer of them make a first start faster (`chancery replay` of 1M events
/// took 4.9 s against 5.9 s at 50,000, in alternating runs by hand, with 75 MB more at its peak).
const CATCH_UP_CHECKPOINT: u64 = 200_000;

/// The page cache of the projections' sled tree, besides their own caches of pages and blocks.
const SLED_CACHE_BYTES: u64 = 32 * 1024 * 1024;

pub(crate) struct Inner {
    pub state: ProjectionState,
    pub last_hash: Hash,
    /// Under the same lock as the state: a save writes the state's changes and marks them clean
    /// in one step, and a reopen of the database swaps the state's tree with its own.
    store: CheckpointStore,
    /// Whether the last checkpoint failed, so that its recovery is logged once.
    save_failing: bool,
}

/// The projections of one log, and the query facade over them (see `facade.rs`).
pub struct Projections {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) inner: RwLock<Inner>,
    /// Whether the store is the checkpoint directory's (or a temporary one).
    durable: bool,
    applied: watch::Sender<Position>,
    /// Recorded events that answers showed lately: a record never changes once written, and
    /// reading and decoding one from the log costs far more than the answer that shows it.
    records: Mutex<RecordCache>,
    policy: CheckpointPolicy,
}

/// Records by position, bounded: two generations, the older dropped whole when the newer fills,
/// so a record in use stays (it is moved up when read) and memory stays under two generations.
#[derive(Default)]
struct RecordCache {
    young: crate::state::IdMap<Position, RecordedEvent>,
    old: crate::state::IdMap<Position, RecordedEvent>,
}

impl RecordCache {
    /// Records per generation: about 8 MiB at a typical 1 KiB record.
    const GENERATION: usize = 8_192;

    fn get(&mut self, position: Position) -> Option<RecordedEvent> {
        if let Some(record) = self.young.get(&position) {
            return Some(record.clone());
        }
        let record = self.old.remove(&position)?;
        self.put(record.clone());
        Some(record)
    }

    fn put(&mut self, record: RecordedEvent) {
        if self.young.len() >= Self::GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(record.position(), record);
    }
}

impl Projections {
    /// Opens the projections of `log`, checkpointed in `dir` (or, with `None`, in a temporary
    /// store that goes with them). Only the checkpoint's position, names and keys are read: the
    /// rest stays on disk until asked for. Call [`Projections::catch_up`] to reach the head.
    pub async fn open(
        log: Arc<dyn EventLog>,
        dir: Option<&Path>,
        policy: CheckpointPolicy,
    ) -> Result<Arc<Self>, ProjectionError> {
        let mut store = CheckpointStore::open(dir, SLED_CACHE_BYTES, policy.value_file_bytes)?
            .snapshot_after(policy.snapshot_after_bytes);
        let (state, hash) = checkpointed(&mut store)?;
        let head = log.head().await?;
        let checkpoint = state.head();
        if checkpoint > head.position {
            return Err(ProjectionError::AheadOfLog {
                checkpoint,
                head: head.position,
            });
        }
        if checkpoint > 0 {
            let record = log.read(ReadRequest::forward(checkpoint, 1)).await?;
            let matches = record
                .first()
                .filter(|r| r.position() == checkpoint)
                .map(RecordedEvent::hash)
                == Some(hash);
            if !matches {
                return Err(ProjectionError::Diverged {
                    position: checkpoint,
                });
            }
        }
        let (applied, _) = watch::channel(checkpoint);
        Ok(Arc::new(Self {
            log,
            inner: RwLock::new(Inner {
                state,
                last_hash: hash,
                store,
                save_failing: false,
            }),
            durable: dir.is_some(),
            applied,
            records: Mutex::new(RecordCache::default()),
            policy,
        }))
    }

    /// Forgets the checkpoint in `dir`, and frees the space it took, so that the next
    /// [`Projections::open`] starts from 1.
    ///
    /// The directory is removed rather than emptied: sled keeps the files of a cleared tree at
    /// their size, so every rebuild (`chancery replay`) grew the directory by another copy.
    pub fn reset(dir: &Path) -> Result<(), ProjectionError> {
        // Opening it first refuses a checkpoint that a running server holds (sled's lock).
        drop(CheckpointStore::open(
            Some(dir),
            SLED_CACHE_BYTES,
            crate::values::FILE_BYTES,
        )?);
        // sled closes its files from a background thread just after the handle goes; a file it
        // was still writing can make the first removal find the directory not empty.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(ProjectionError::Storage(format!(
                        "cannot remove {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
    }

    /// The last position applied.
    pub fn applied(&self) -> Position {
        *self.applied.borrow()
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Applies the log from the state's head up to the log's current head, reporting progress
    /// as (applied, head). Returns how many events were applied.
    pub async fn catch_up(
        &self,
        progress: &(dyn Fn(Position, Position) + Sync),
    ) -> Result<u64, ProjectionError> {
        let mut count = 0;
        let mut since_save = 0;
        let mut ahead: Option<ReadAhead> = None;
        loop {
            let head = self.log.head().await?.position;
            let from = self.applied() + 1;
            if from > head {
                break;
            }
            let records = match ahead.take() {
                Some(read) if read.from == from => read.records().await?,
                _ => {
                    self.log
                        .read(ReadRequest::forward(from, CATCH_UP_CHUNK))
                        .await?
                }
            };
            if records.is_empty() {
                return Err(StoreError::Corrupt {
                    position: Some(from),
                    detail: "missing below the head".into(),
                }
                .into());
            }
            // The next chunk is read and decoded on another thread while this one is applied.
            if let Some(after) = records.last().map(|r| r.position() + 1)
                && after <= head
            {
                ahead = ReadAhead::start(&self.log, after);
            }
            // The applied position is announced once per chunk, not per record: waking every
            // watcher of `applied` per record costs more than a record's own bookkeeping.
            let mut last = None;
            let mut outcome = Ok(());
            for record in &records {
                if let Err(error) = self.apply_unannounced(record).await {
                    outcome = Err(error);
                    break;
                }
                last = Some(record.position());
                count += 1;
                since_save += 1;
            }
            if let Some(last) = last {
                self.applied.send_replace(last);
            }
            outcome?;
            progress(self.applied(), head);
            if since_save >= CATCH_UP_CHECKPOINT {
                // Not flushed: sled writes it within half a second anyway, and waiting for that
                // at every checkpoint would hold the catch-up back. A failed write ends the
                // catch-up, and the last checkpoint, below, is flushed.
                self.save_with(Flush::No)?;
                since_save = 0;
            }
        }
        if count > 0 {
            self.save()?;
            self.snapshot_if_due();
        }
        Ok(count)
    }

    /// Follows the live log forever from the applied position, saving checkpoints by policy.
    /// Returns only on an error (including the log closing). An event that cannot be applied
    /// for want of space makes the projections start again from their checkpoint, and follow on
    /// from there.
    pub async fn follow(&self) -> Result<(), ProjectionError> {
        let mut stream = self.log.subscribe(self.applied(), EventFilter::all());
        let mut unsaved = 0u64;
        let mut last_save = Instant::now();
        loop {
            // Every interval: a save if there is something to save or the store waits for one
            // (a full disk, a failed write), else a look for a write sled failed on its own.
            let wait = self.policy.every.saturating_sub(last_save.elapsed());
            let next = match tokio::time::timeout(wait, stream.next()).await {
                Ok(item) => item,
                Err(_) => {
                    if unsaved > 0 || self.store_troubled() {
                        if self.save_while_following() {
                            unsaved = 0;
                        }
                    } else {
                        self.probe();
                    }
                    last_save = Instant::now();
                    continue;
                }
            };
            let record = match next {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    let _ = self.save();
                    return Err(e.into());
                }
                None => {
                    let _ = self.save();
                    return Err(StoreError::Closed.into());
                }
            };
            match self.apply_record(&record).await {
                Ok(()) => unsaved += 1,
                Err(error) if error.is_storage_full() => {
                    self.start_again(&error).await?;
                    stream = self.log.subscribe(self.applied(), EventFilter::all());
                    unsaved = 0;
                    last_save = Instant::now();
                    continue;
                }
                Err(error) => return Err(error),
            }
            if unsaved >= self.policy.every_events || last_save.elapsed() >= self.policy.every {
                if self.save_while_following() {
                    unsaved = 0;
                }
                last_save = Instant::now();
            }
        }
    }

    /// Starts again from the checkpoint after an event could not be applied for want of space
    /// (`error`): the application may have left the state half changed, so it goes, with every
    /// change since the checkpoint, and the database is reopened into the reserve's room. The
    /// applied position goes back to the checkpoint's, and the caller follows the log from
    /// there. Without room even for a reopen, this waits for it, trying every interval. A
    /// temporary store cannot be reopened: the error is answered.
    async fn start_again(&self, error: &ProjectionError) -> Result<(), ProjectionError> {
        if !self.durable {
            return Err(error.clone());
        }
        let lost = self.applied();
        loop {
            let restarted = {
                let mut inner = self
                    .inner
                    .write()
                    .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))?;
                let Inner {
                    state,
                    last_hash,
                    store,
                    ..
                } = &mut *inner;
                store.sled_failed(state, error);
                if store.failed() {
                    None
                } else {
                    let (checkpointed, hash) = checkpointed(store)?;
                    *state = checkpointed;
                    *last_hash = hash;
                    Some(state.head())
                }
            };
            if let Some(checkpoint) = restarted {
                self.applied.send_replace(checkpoint);
                tracing::warn!(%error, applied = lost, checkpoint, "the projections could not apply an event for want of space; they start again from their checkpoint and catch up from the log");
                return Ok(());
            }
            tokio::time::sleep(self.policy.every).await;
        }
    }

    /// Whether the store waits for a save to set it right (a full disk, a failed write).
    fn store_troubled(&self) -> bool {
        self.inner.read().is_ok_and(|inner| inner.store.troubled())
    }

    /// Looks for a write that sled failed on its own, and reopens the database if it did (a
    /// temporary store cannot be reopened).
    fn probe(&self) {
        if !self.durable {
            return;
        }
        // Under the read lock: answers need not wait for the flush.
        let failed = match self.inner.read() {
            Ok(inner) => inner.store.probe(),
            Err(_) => return,
        };
        let Some(error) = failed else { return };
        tracing::warn!(%error, "the projections' database failed a write");
        if let Ok(mut inner) = self.inner.write() {
            let Inner { state, store, .. } = &mut *inner;
            store.sled_failed(state, &error);
        }
    }

    /// Saves a checkpoint while following, answering whether it did. A checkpoint only shortens
    /// the next start, so one that fails (a full disk) is logged, once until one succeeds again,
    /// and tried again at the next interval: its changes stay in memory, and the projections
    /// keep following the log and answering.
    fn save_while_following(&self) -> bool {
        let Err(error) = self.save() else {
            self.snapshot_if_due();
            return true;
        };
        let first = self
            .inner
            .write()
            .is_ok_and(|mut inner| !std::mem::replace(&mut inner.save_failing, true));
        if first {
            tracing::warn!(%error, applied = self.applied(), "the projections' checkpoint failed; they keep following the log, and save again once it succeeds");
        }
        false
    }

    /// Saves a checkpoint of what is applied: what changed since the last one goes to the store
    /// (a temporary one without a checkpoint directory), so memory holds no more than that. A
    /// save that fails keeps the changes, for the next one.
    pub fn save(&self) -> Result<(), ProjectionError> {
        self.save_with(Flush::Yes)
    }

    fn save_with(&self, flush: Flush) -> Result<(), ProjectionError> {
        let mut inner = self
            .inner
            .write()
            .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))?;
        let Inner {
            state,
            last_hash,
            store,
            save_failing,
        } = &mut *inner;
        store.save(state, *last_hash, flush)?;
        if std::mem::take(save_failing) {
            tracing::info!(
                applied = state.head(),
                "the projections' checkpoint is saved again"
            );
        }
        Ok(())
    }

    /// Reopens the projections' database if enough was written since it opened (see
    /// [`CheckpointPolicy::snapshot_after_bytes`]).
    fn snapshot_if_due(&self) {
        if let Ok(mut inner) = self.inner.write() {
            let Inner { state, store, .. } = &mut *inner;
            store.snapshot_if_due(state);
        }
    }

    /// Saves and flushes, for a clean shutdown. A save that fails (a full disk) leaves the last
    /// checkpoint as it was, and the next start catches up from it; it is not flushed then,
    /// since sled may have failed with it.
    pub fn close(&self) -> Result<(), ProjectionError> {
        self.save()?;
        if self.durable {
            let mut inner = self
                .inner
                .write()
                .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))?;
            inner.store.flush()?;
        }
        Ok(())
    }

    /// Waits until the projections have applied `position`, for at most `timeout`.
    pub async fn wait_for(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let mut rx = self.applied.subscribe();
        let started = Instant::now();
        let reached =
            tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProjectionError::NotYet {
                wanted: position,
                applied: self.applied(),
                waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    async fn position_of(&self, id: chancery_domain::EventId) -> Result<Position, ProjectionError> {
        match self.log.event(id).await? {
            Some(record) => Ok(record.position()),
            None => Err(ProjectionError::Corrupt(format!(
                "event {id} is referenced but not in the log"
            ))),
        }
    }

    /// An act as it reads at `known_at`: as recorded, with the corrections known by then applied.
    pub async fn effective_event(
        &self,
        position: Position,
        known_at: Position,
    ) -> Result<Option<Content>, ProjectionError> {
        let corrections: Vec<Position> = {
            let inner = self
                .inner
                .read()
                .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))?;
            inner
                .state
                .read_act(position, |act| {
                    act.versions
                        .iter()
                        .skip(1)
                        .map(|f| f.known_from)
                        .filter(|p| *p <= known_at)
                        .collect()
                })?
                .unwrap_or_default()
        };
        let Some(original) = self.record(position).await? else {
            return Ok(None);
        };
        if corrections.is_empty() {
            return Content::recorded(original).map(Some);
        }
        let mut event = unreadable(position, original.event())?.clone();
        for p in corrections {
            if let Some(record) = self.record(p).await? {
                if let Payload::Correction(c) = &unreadable(p, record.event())?.payload {
                    c.changes.apply_to(&mut event);
                }
            }
        }
        Ok(Some(Content::Corrected(Arc::new(event))))
    }

    /// The record at a position, from a cache of recently read ones.
    pub async fn record(
        &self,
        position: Position,
    ) -> Result<Option<RecordedEvent>, ProjectionError> {
        if let Some(record) = self.records.lock().ok().and_then(|mut c| c.get(position)) {
            return Ok(Some(record));
        }
        let found = self.log.read(ReadRequest::forward(position, 1)).await?;
        let record = found
            .into_iter()
            .next()
            .filter(|r| r.position() == position);
        if let (Some(record), Ok(mut cache)) = (&record, self.records.lock()) {
            cache.put(record.clone());
        }
        Ok(record)
    }

    async fn apply_record(&self, record: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_unannounced(record).await?;
        self.applied.send_replace(record.position());
        Ok(())
    }

    /// Applies one record without announcing it to those waiting on `applied`.
    async fn apply_unannounced(&self, record: &RecordedEvent) -> Result<(), ProjectionError> {
        let corrected;
        let payload = match record.kind() {
            Kind::Retraction | Kind::Correction => Some(
                record
                    .view()
                    .and_then(|v| v.payload())
                    .map_err(|e| unreadable_error(record.position(), &e))?,
            ),
            _ => None,
        };
        let step = match &payload {
            Some(Payload::Retraction(r)) => Step::Retraction {
                record,
                target: self.position_of(r.retracts).await?,
            },
            Some(Payload::Correction(c)) => {
                let target = self.position_of(c.corrects).await?;
                let mut event = self
                    .effective_event(target, record.position() - 1)
                    .await?
                    .ok_or_else(|| {
                        ProjectionError::Corrupt(format!(
                            "the corrected event at {target} is missing"
                        ))
                    })?
                    .to_event();
                c.changes.apply_to(&mut event);
                corrected = event;
                Step::Correction {
                    record,
                    target,
                    corrected: &corrected,
                }
            }
            _ if record.kind().is_diplomatic() => Step::Act(record),
            _ => Step::Bookkeeping(record),
        };
        {
            let mut inner = self
                .inner
                .write()
                .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))?;
            inner.state.apply(step)?;
            inner.last_hash = record.hash();
        }
        Ok(())
    }

    /// Whether this state answers every question as `other` does (for tests of replay): the same
    /// entries and the same lists.
    pub fn same_state_as(&self, other: &Projections) -> bool {
        let dump = |p: &Projections| {
            p.inner
                .read()
                .ok()
                .and_then(|inner| inner.state.dump().ok())
        };
        match (dump(self), dump(other)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// A chunk of the log being read on a blocking thread, for a catch-up to apply next.
struct ReadAhead {
    from: Position,
    read: tokio::task::JoinHandle<Result<Vec<RecordedEvent>, StoreError>>,
}

impl ReadAhead {
    /// `None` outside a tokio runtime: the chunk is then read when it is due.
    fn start(log: &Arc<dyn EventLog>, from: Position) -> Option<ReadAhead> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let log = Arc::clone(log);
        let read = runtime.spawn_blocking({
            let runtime = runtime.clone();
            move || runtime.block_on(log.read(ReadRequest::forward(from, CATCH_UP_CHUNK)))
        });
        Some(ReadAhead { from, read })
    }

    async fn records(self) -> Result<Vec<RecordedEvent>, ProjectionError> {
        self.read
            .await
            .map_err(|e| ProjectionError::Storage(format!("a read of the log ended early: {e}")))?
            .map_err(ProjectionError::from)
    }
}

/// The state the store's checkpoint holds (an empty one for a new or stale store, which is
/// cleared), and the hash of its last event.
fn checkpointed(store: &mut CheckpointStore) -> Result<(ProjectionState, Hash), ProjectionError> {
    let caches = CacheSizes::default();
    let empty = |store: &CheckpointStore| {
        Ok::<_, ProjectionError>(ProjectionState::new(
            store.disk()?,
            0,
            Default::default(),
            Default::default(),
            caches,
        ))
    };
    Ok(match store.load(caches)? {
        Loaded::Empty => (empty(store)?, Hash::GENESIS),
        Loaded::Stale { .. } => {
            store.clear()?;
            (empty(store)?, Hash::GENESIS)
        }
        Loaded::State { state, hash } => (*state, hash),
    })
}

fn unreadable_error(position: Position, e: &RecordError) -> ProjectionError {
    ProjectionError::Corrupt(format!("the record at position {position}: {e}"))
}

/// A decoded event, or the damage that kept it from decoding.
fn unreadable(
    position: Position,
    event: Result<&NewEvent, RecordError>,
) -> Result<&NewEvent, ProjectionError> {
    event.map_err(|e| unreadable_error(position, &e))
}
