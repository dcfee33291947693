//! The writer: one thread that owns every write to the log. It takes append and restore
//! requests from a channel, validates each against the log and the requests before it in the
//! same group, writes the whole group in one atomic sled batch, flushes it, makes it durable with
//! one `fdatasync`, and only then publishes the new head and acknowledges.
//!
//! A request that fails (bad input, a version conflict) is answered with its error and leaves
//! no trace; the rest of its group goes on. Group commit is what makes durability affordable:
//! requests that arrive while a group is being synced form the next group, so one sync serves many
//! appends.
//!
//! A plan runs the same `append` (or `restore`) into a scratch group after the group's commit and
//! answers with the records it would have written, then undoes its registry entries: a backend
//! that stores records elsewhere first (the NATS stream) decides with the very same rules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chancery_domain::registry::RegistryEntry;
use chancery_domain::{
    EventId, EventRef, NewEvent, Payload, Position, RecordedEvent, References, Registry,
    TimelineSlug, Timestamp, ValidationErrors, validate_references,
};
use chancery_store::{
    AppendOutcome, AppendRequest, Appended, ExpectedVersion, Head, LiveFeed, RestoreOutcome,
    StoreError,
};
use tokio::sync::{mpsc, oneshot};

use crate::Plan;
use crate::durability::DiskSync;
use crate::keys::{self, IdEntry};
use crate::reader::{Reader, corrupt, io_error, storage_error};
use crate::reserve;
use crate::wal::{self, MAX_SEGMENT_BYTES, Wal};

/// Free space a reopen needs, besides the write-ahead log's tail that it applies again, before
/// it lets the database go (a reopen that failed for want of space would leave nothing to read
/// from): sled may write up to a segment as it recovers.
const REOPEN_ROOM: u64 = crate::SEGMENT_SIZE as u64;

/// Free space appends wait for after the disk filled: room for the reserve again, and a segment.
const RESUME_ROOM: u64 = reserve::RESERVE_BYTES + crate::SEGMENT_SIZE as u64;

/// How often sled is made durable behind the write-ahead log while appends go on.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub enum Command {
    Append {
        request: AppendRequest,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Records already decoded and hash-checked by the caller, with their stored bytes.
    Restore {
        records: Vec<(RecordedEvent, Vec<u8>)>,
        reply: oneshot::Sender<Result<RestoreOutcome, StoreError>>,
    },
    /// Works out an append or a restore against the log as it is, writing nothing.
    Plan {
        what: Planned,
        reply: oneshot::Sender<Result<Plan, StoreError>>,
    },
    /// Makes everything applied so far durable in sled, and drops the write-ahead log behind it.
    Checkpoint {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What a plan is for.
pub enum Planned {
    Append(AppendRequest),
    /// Records already decoded and hash-checked by the caller, with their stored bytes.
    Restore(Vec<(RecordedEvent, Vec<u8>)>),
}

impl Command {
    fn events(&self) -> usize {
        match self {
            Command::Append { request, .. }
            | Command::Plan {
                what: Planned::Append(request),
                ..
            } => request.events.len(),
            Command::Restore { records, .. }
            | Command::Plan {
                what: Planned::Restore(records),
                ..
            } => records.len(),
            Command::Checkpoint { .. } => 0,
        }
    }
}

/// What readers see of the writer's state, updated after each durable group.
pub struct Shared {
    pub head: RwLock<Head>,
    pub registry: RwLock<Arc<Registry>>,
    pub feed: Arc<LiveFeed>,
    pub syncs: std::sync::atomic::AtomicU64,
    pub groups: std::sync::atomic::AtomicU64,
    pub checkpoints: std::sync::atomic::AtomicU64,
}

pub struct Writer {
    /// `None` only while a reopen is under way (or failed).
    pub db: Option<sled::Db>,
    /// The log's directory and sled's cache size, to reopen the database.
    pub dir: PathBuf,
    pub cache_bytes: u64,
    /// sled failed a write: it refuses every write from then on (its I/O errors are sticky), so
    /// the database is reopened before the next group, once the disk has room.
    pub sled_failed: bool,
    /// The disk filled: the reserve was released and the database reopened into its room, so
    /// reads go on; appends are refused until there is room to make the reserve again.
    pub disk_full: bool,
    /// A reopen is replaying the write-ahead log: its failures are the reopen's to answer.
    pub reopening: bool,
    /// A storage failure was logged, and its end will be.
    pub failure_logged: bool,
    pub reader: Reader,
    pub sync: DiskSync,
    pub head: Head,
    pub versions: HashMap<TimelineSlug, u64>,
    pub registry: Registry,
    pub shared: Arc<Shared>,
    pub max_group_events: usize,
    /// Records applied to sled whose write-ahead log sync failed: not yet acknowledged or
    /// published, and their log lines, to write again with the next group.
    pub unsynced: Vec<Arc<RecordedEvent>>,
    pub unsynced_lines: Vec<u8>,
    /// The write-ahead log (none for a copy whose durability lies elsewhere).
    pub wal: Option<Wal>,
    pub last_checkpoint: Instant,
}

/// The writes of the current group, not yet applied.
#[derive(Default)]
struct Group {
    ops: Vec<(Vec<u8>, Vec<u8>)>,
    /// The records' write-ahead log lines.
    lines: Vec<u8>,
    ids: HashMap<EventId, IdEntry>,
    versions: HashMap<TimelineSlug, u64>,
    records: Vec<Arc<RecordedEvent>>,
    registered: Vec<RegistryEntry>,
    head: Option<Head>,
}

/// The writes of one request, merged into its group only if the whole request succeeds.
#[derive(Default)]
struct Scope {
    ops: Vec<(Vec<u8>, Vec<u8>)>,
    /// The records' write-ahead log lines.
    lines: Vec<u8>,
    ids: HashMap<EventId, IdEntry>,
    records: Vec<Arc<RecordedEvent>>,
    registered: Vec<RegistryEntry>,
}

enum Reply {
    Append(
        oneshot::Sender<Result<AppendOutcome, StoreError>>,
        Result<AppendOutcome, StoreError>,
    ),
    Restore(
        oneshot::Sender<Result<RestoreOutcome, StoreError>>,
        Result<u64, StoreError>,
    ),
}

/// The references an event is validated against: its request, its group, then the log.
struct Refs<'a> {
    registry: &'a Registry,
    scope: &'a Scope,
    group: &'a Group,
    reader: &'a Reader,
    failure: std::cell::RefCell<Option<StoreError>>,
}

impl Refs<'_> {
    fn id_entry(&self, id: &EventId) -> Result<Option<IdEntry>, StoreError> {
        if let Some(e) = self.scope.ids.get(id).or_else(|| self.group.ids.get(id)) {
            return Ok(Some(e.clone()));
        }
        self.reader.id_entry(id)
    }
}

impl References for Refs<'_> {
    fn registry(&self) -> &Registry {
        self.registry
    }

    fn event(&self, id: &EventId) -> Option<EventRef> {
        match self.id_entry(id) {
            Ok(entry) => entry.map(|e| EventRef {
                kind: e.kind,
                timeline: e.timeline,
                retracted: e.retracted,
            }),
            Err(e) => {
                self.failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

impl Writer {
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut events = first.events();
            let mut group = vec![first];
            while events < self.max_group_events {
                match commands.try_recv() {
                    Ok(next) => {
                        events += next.events();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
        // The channel closed: the log is shutting down. Leave sled complete and the write-ahead
        // log short; if this fails, the log still holds every record and the next open replays it.
        let _ = self.checkpoint();
    }

    fn current_head(&self, group: &Group) -> Head {
        group.head.unwrap_or(self.head)
    }

    fn current_version(&self, group: &Group, timeline: &TimelineSlug) -> Option<u64> {
        group
            .versions
            .get(timeline)
            .or_else(|| self.versions.get(timeline))
            .copied()
    }

    fn commit(&mut self, commands: Vec<Command>) {
        if self.sled_failed || self.disk_full {
            if let Err(error) = self.resume() {
                self.log_failure(&error);
                refuse_all(commands, &error);
                return;
            }
        }
        self.commit_group(commands);
    }

    /// Commits one group of commands, without [`Writer::commit`]'s gate: a reopen replays the
    /// write-ahead log through it while appends are still refused.
    fn commit_group(&mut self, commands: Vec<Command>) {
        let now = Timestamp::from_system_time(SystemTime::now());
        let mut group = Group::default();
        let mut replies = Vec::with_capacity(commands.len());
        let mut plans = Vec::new();
        let mut checkpoints = Vec::new();
        for command in commands {
            match command {
                Command::Append { request, reply } => {
                    let result = self.append(&mut group, request, now);
                    replies.push(Reply::Append(reply, result));
                }
                Command::Restore { records, reply } => {
                    let result = self.restore(&mut group, records);
                    replies.push(Reply::Restore(reply, result));
                }
                Command::Plan { what, reply } => plans.push((what, reply)),
                Command::Checkpoint { reply } => checkpoints.push(reply),
            }
        }

        let durable = if group.ops.is_empty() && self.unsynced.is_empty() {
            Ok(())
        } else {
            self.persist(&mut group)
        };
        match durable {
            Ok(()) => {
                if self.failure_logged && !group.records.is_empty() {
                    self.failure_logged = false;
                    tracing::info!(
                        head = self.head.position,
                        "appends are durable again after a storage failure"
                    );
                }
                let mut published = std::mem::take(&mut self.unsynced);
                published.extend(group.records.iter().cloned());
                self.publish(&group, &published);
                let head = self.head;
                for reply in replies {
                    match reply {
                        Reply::Append(tx, result) => drop(tx.send(result)),
                        Reply::Restore(tx, result) => {
                            drop(tx.send(result.map(|restored| RestoreOutcome { restored, head })))
                        }
                    }
                }
            }
            Err(error) => {
                self.log_failure(&error);
                if matches!(error, StoreError::StorageFull(_)) && !self.reopening {
                    self.disk_filled();
                }
                for reply in replies {
                    match reply {
                        Reply::Append(tx, result) => drop(tx.send(result.and(Err(error.clone())))),
                        Reply::Restore(tx, result) => drop(tx.send(result.and(Err(error.clone())))),
                    }
                }
            }
        }
        // Plans see the log as this group left it, never a group half staged.
        for (what, reply) in plans {
            drop(reply.send(self.plan(what)));
        }
        if !checkpoints.is_empty() {
            let done = self.checkpoint();
            if matches!(done, Err(StoreError::StorageFull(_))) && !self.reopening {
                self.disk_filled();
            }
            for reply in checkpoints {
                drop(reply.send(done.clone()));
            }
        } else if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY
            || self
                .wal
                .as_ref()
                .is_some_and(|w| w.bytes >= MAX_SEGMENT_BYTES)
        {
            // Best effort: a failed checkpoint leaves the write-ahead log longer, nothing lost.
            let done = self.checkpoint();
            if matches!(done, Err(StoreError::StorageFull(_))) && !self.reopening {
                self.disk_filled();
            }
        }
    }

    /// Replays the records of the write-ahead log that sled lost in a crash, through the checked
    /// restore path, then checkpoints. Runs at open, before the writer takes requests.
    pub fn recover(&mut self, lines: Vec<Vec<u8>>) -> Result<u64, StoreError> {
        let count = lines.len();
        let mut records = Vec::with_capacity(count);
        for bytes in lines {
            let record =
                chancery_domain::decode_record(&bytes).map_err(|e| StoreError::Corrupt {
                    position: None,
                    detail: format!("the write-ahead log: {e}"),
                })?;
            records.push((record, bytes));
        }
        let (reply, mut outcome) = oneshot::channel();
        self.commit_group(vec![Command::Restore { records, reply }]);
        match outcome.try_recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e @ StoreError::StorageFull(_))) => return Err(e),
            Ok(Err(e)) => {
                return Err(StoreError::Corrupt {
                    position: None,
                    detail: format!("the write-ahead log cannot be replayed: {e}"),
                });
            }
            Err(_) => {
                return Err(StoreError::Storage(
                    "the write-ahead log replay got no answer".into(),
                ));
            }
        }
        self.checkpoint()?;
        Ok(count as u64)
    }

    /// Makes sled durable up to the head (flush, then fdatasync of its data file) and starts a new
    /// write-ahead log segment, deleting the older ones, whose records sled now holds.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| StoreError::Storage("the database is not open".into()))?;
        if self.wal.is_some() {
            let marked = self
                .reader
                .tree()
                .and_then(|tree| crate::rollback::mark(&tree, self.head.position));
            if let Err(e) = marked {
                self.sled_failed = true;
                return Err(e);
            }
        }
        #[allow(clippy::disallowed_methods)] // the flush is followed by an fdatasync below
        if let Err(e) = db.flush() {
            self.sled_failed = true;
            return Err(storage_error(e));
        }
        if let Some(wal) = &mut self.wal {
            self.sync.sync().map_err(|e| io_error(&e))?;
            wal.rotate().map_err(|e| io_error(&e))?;
        }
        self.last_checkpoint = Instant::now();
        self.shared
            .checkpoints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Reopens the database after sled failed a write (a full disk), once there is room: sled
    /// comes back as its files left it, the write-ahead log's records past its head are applied
    /// again, and records that were never acknowledged (their log write failed) are dropped;
    /// their appends were answered "outcome unknown", and a retry with the same ids writes them.
    fn reopen(&mut self) -> Result<(), StoreError> {
        let free = fs2::available_space(&self.dir).map_err(|e| io_error(&e))?;
        let needed = REOPEN_ROOM + self.wal.as_ref().map_or(0, |w| w.bytes);
        if free < needed {
            let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
            return Err(StoreError::StorageFull(format!(
                "no space left on the log's disk: {} has {:.1} MiB free, and the log needs \
                 {:.1} MiB to resume appending; free some space (reads keep working)",
                self.dir.display(),
                mib(free),
                mib(needed)
            )));
        }
        tracing::warn!(dir = %self.dir.display(), free, "reopening the log's database after a storage failure");
        // Every handle must go before sled's lock is released.
        self.reader.replace(None);
        self.db = None;
        let db = crate::open_released(&crate::sled_config(&self.dir, self.cache_bytes))
            .map_err(storage_error)?;
        let tree = db.open_tree("log").map_err(storage_error)?;
        self.db = Some(db);
        // Readers get the tree once the write-ahead log's tail is back in it, never before: the
        // log they see never falls behind what was acknowledged. Until then they are told to
        // retry; the writer works on a handle of its own.
        let shared = std::mem::replace(&mut self.reader, Reader::new(tree.clone()));
        self.reopening = true;
        let restored = self.restore_state();
        self.reopening = false;
        self.reader = shared;
        restored?;
        self.sled_failed = false;
        self.reader.replace(Some(tree));
        tracing::info!(
            head = self.head.position,
            "the log's database is open again"
        );
        Ok(())
    }

    /// Reads the reopened database's state, and applies the write-ahead log's records past it.
    fn restore_state(&mut self) -> Result<(), StoreError> {
        self.sync = DiskSync::open(&self.dir).map_err(|e| io_error(&e))?;
        if self.wal.is_some() {
            crate::rollback::to_checkpoint(&self.reader.tree()?)?;
        }
        self.head = crate::head_of(&self.reader)?;
        let (registry, versions) = self.reader.load_state()?;
        self.registry = registry;
        self.versions = versions;
        self.unsynced.clear();
        self.unsynced_lines.clear();
        if let Some(wal) = &self.wal {
            let tail =
                wal::read_tail(wal.dir(), self.head.position).map_err(|e| corrupt(None, &e))?;
            if !tail.is_empty() {
                self.recover(tail)?;
            }
        }
        if let Ok(mut shared) = self.shared.registry.write() {
            *shared = Arc::new(self.registry.clone());
        }
        Ok(())
    }

    /// The disk filled: releases the reserve and reopens the database into its room at once, so
    /// that no read meets sled's sticky error (it fails reads that would write on their way, a
    /// page split say, until a reopen). Appends wait in [`Writer::resume`].
    fn disk_filled(&mut self) {
        if self.disk_full && !self.sled_failed {
            return;
        }
        self.disk_full = true;
        // sled may hold the error already, from a write of its own in the background.
        self.sled_failed = true;
        match reserve::release(&self.dir) {
            Ok(true) => tracing::warn!(
                dir = %self.dir.display(),
                "the log's disk is full: released its reserve so that reads go on"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(%e, "cannot release the log's reserve"),
        }
        if let Err(e) = self.reopen() {
            tracing::warn!(%e, "cannot reopen the log's database yet; reads may fail until there is room");
        }
    }

    /// Gets the log ready to append after a storage failure: the database reopened if sled
    /// failed, and the reserve made again if the disk filled, once there is room for both.
    fn resume(&mut self) -> Result<(), StoreError> {
        if self.sled_failed {
            self.reopen()?;
        }
        if self.disk_full {
            let free = fs2::available_space(&self.dir).map_err(|e| io_error(&e))?;
            if free < RESUME_ROOM || !reserve::make(&self.dir).map_err(|e| io_error(&e))? {
                let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
                return Err(StoreError::StorageFull(format!(
                    "no space left on the log's disk: {} has {:.1} MiB free, and the log needs \
                     {:.1} MiB to resume appending; free some space (reads keep working)",
                    self.dir.display(),
                    mib(free),
                    mib(RESUME_ROOM)
                )));
            }
            self.disk_full = false;
            tracing::info!(dir = %self.dir.display(), "the log's disk has room again: its reserve is back");
        }
        Ok(())
    }

    /// Logs the first of a run of storage failures, for the operator: the disk is full, or failed.
    fn log_failure(&mut self, error: &StoreError) {
        if self.failure_logged || !error.is_transient() {
            return;
        }
        self.failure_logged = true;
        match error {
            StoreError::StorageFull(_) => tracing::error!(
                %error,
                "no space left on the log's disk: appends are refused until there is room; reads keep working"
            ),
            _ => tracing::error!(%error, "the log's storage failed: appends are refused"),
        }
    }

    /// Runs an append or a restore into a scratch group that is never written, and answers with
    /// the records it would write. Its registry entries are undone: it leaves no trace.
    fn plan(&mut self, what: Planned) -> Result<Plan, StoreError> {
        let base = self.head;
        let mut scratch = Group::default();
        let result = match what {
            Planned::Append(request) => {
                let now = Timestamp::from_system_time(SystemTime::now());
                self.append(&mut scratch, request, now)
            }
            Planned::Restore(records) => {
                self.restore(&mut scratch, records).map(|_| AppendOutcome {
                    events: scratch
                        .records
                        .iter()
                        .map(|r| Appended {
                            id: r.event.id,
                            position: r.position,
                            version: r.version,
                        })
                        .collect(),
                    deduplicated: false,
                })
            }
        };
        for entry in scratch.registered.drain(..).rev() {
            self.registry.remove(&entry);
        }
        let outcome = result?;
        let mut bytes: HashMap<Position, Vec<u8>> = scratch
            .ops
            .into_iter()
            .filter_map(|(key, value)| keys::event_position(&key).map(|p| (p, value)))
            .collect();
        let records = scratch
            .records
            .into_iter()
            .map(|record| {
                let stored = bytes
                    .remove(&record.position)
                    .unwrap_or_else(|| record.encode());
                (record, stored)
            })
            .collect();
        Ok(Plan {
            base,
            outcome,
            records,
        })
    }

    /// Writes the group and makes it durable. When the batch could not be applied, nothing
    /// happened and the group's effects are undone. When it was applied but the flush or sync
    /// failed, the events exist but are not known durable: the writer keeps them, unacknowledged
    /// and unpublished, and retries the sync with the next group; a client's retry with the same
    /// ids then gets their positions.
    fn persist(&mut self, group: &mut Group) -> Result<(), StoreError> {
        if !group.ops.is_empty() {
            let writes = group.ops.len();
            let durable = self.wal.is_some();
            let ops = group.ops.drain(..);
            let applied = self.reader.tree().and_then(|tree| {
                if durable {
                    // One by one, in order: a sled batch would write its manifest to the disk now,
                    // beside the write-ahead log's sync; a crash is taken back to the last
                    // checkpoint instead (see `rollback`).
                    for (k, v) in ops {
                        tree.insert(k, v).map_err(storage_error)?;
                    }
                    Ok(())
                } else {
                    let mut batch = sled::Batch::default();
                    for (k, v) in ops {
                        batch.insert(k, v);
                    }
                    tree.apply_batch(batch).map_err(storage_error)
                }
            });
            reclaim_epoch_garbage(writes);
            if let Err(e) = applied {
                for entry in group.registered.drain(..).rev() {
                    self.registry.remove(&entry);
                }
                // Part of the batch may be applied in memory: the reopen drops it.
                self.sled_failed = true;
                return Err(e);
            }
            self.head = self.current_head(group);
            self.versions.extend(group.versions.drain());
        }
        // Durable once the write-ahead log has the group's lines on the disk: one write, one sync.
        let mut lines = std::mem::take(&mut self.unsynced_lines);
        lines.extend_from_slice(&group.lines);
        let flushed = match &mut self.wal {
            Some(wal) if !lines.is_empty() => wal.append(&lines).map_err(|e| io_error(&e)),
            _ => Ok(()),
        };
        if flushed.is_err() {
            self.unsynced_lines = lines;
        }
        if let Err(e) = flushed {
            self.unsynced.append(&mut group.records);
            let unknown = "the outcome is unknown: retry with the same event ids";
            return Err(match e {
                StoreError::StorageFull(m) => StoreError::StorageFull(format!("{m}; {unknown}")),
                other => StoreError::Storage(format!("{other}; {unknown}")),
            });
        }
        if let Some(wal) = &self.wal {
            self.shared
                .syncs
                .store(wal.syncs, std::sync::atomic::Ordering::Relaxed);
        }
        self.shared
            .groups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn publish(&self, group: &Group, records: &[Arc<RecordedEvent>]) {
        // The registry goes first: a reader that sees the new head sees what it registered.
        if !group.registered.is_empty() {
            if let Ok(mut registry) = self.shared.registry.write() {
                *registry = Arc::new(self.registry.clone());
            }
        }
        let mut published = 0;
        if let Ok(mut head) = self.shared.head.write() {
            published = head.position;
            *head = self.head;
        }
        // A reopen replays records of the write-ahead log that subscribers already had.
        let fresh = records.partition_point(|r| r.position <= published);
        let records = &records[fresh..];
        self.shared.feed.publish(records);
    }

    fn append(
        &mut self,
        group: &mut Group,
        request: AppendRequest,
        now: Timestamp,
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(outcome) = self.deduplicate(group, &request)? {
            return Ok(outcome);
        }
        let current = self.current_version(group, &request.timeline);
        let matches = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoTimeline | ExpectedVersion::Exact(0) => current.is_none(),
            ExpectedVersion::Exact(v) => current == Some(v),
        };
        if !matches {
            return Err(StoreError::WrongExpectedVersion {
                timeline: request.timeline,
                expected: request.expected,
                actual: current,
            });
        }

        let mut scope = Scope::default();
        let mut head = self.current_head(group);
        let mut version = current.unwrap_or(0);
        let mut appended = Vec::with_capacity(request.events.len());
        for (i, event) in request.events.into_iter().enumerate() {
            if let Err(e) = self.check_references(&scope, group, &event, &request.timeline) {
                self.undo(&mut scope);
                return Err(match e {
                    StoreError::Invalid(errors) => {
                        StoreError::Invalid(errors.within(&format!("events[{i}]")))
                    }
                    other => other,
                });
            }
            let recorded_at = head.recorded_at.map_or(now, |last| last.max(now));
            let (record, bytes) = RecordedEvent::seal(
                head.position + 1,
                version + 1,
                recorded_at,
                head.hash,
                event,
            );
            head = Head {
                position: record.position,
                hash: record.hash,
                recorded_at: Some(recorded_at),
            };
            version = record.version;
            appended.push(Appended {
                id: record.event.id,
                position: record.position,
                version,
            });
            if let Err(e) = self.stage(&mut scope, group, record, bytes) {
                self.undo(&mut scope);
                return Err(e);
            }
        }
        self.merge(group, scope, &request.timeline, version, head);
        Ok(AppendOutcome {
            events: appended,
            deduplicated: false,
        })
    }

    fn check_references(
        &self,
        scope: &Scope,
        group: &Group,
        event: &NewEvent,
        timeline: &TimelineSlug,
    ) -> Result<(), StoreError> {
        if &event.timeline != timeline {
            return Err(StoreError::Invalid(ValidationErrors::single(
                "timeline",
                format!(
                    "{} differs from the timeline {timeline} this append is for",
                    event.timeline
                ),
            )));
        }
        let refs = Refs {
            registry: &self.registry,
            scope,
            group,
            reader: &self.reader,
            failure: Default::default(),
        };
        let checked = validate_references(event, &refs);
        if let Some(e) = refs.failure.into_inner() {
            return Err(e);
        }
        checked.map_err(StoreError::Invalid)
    }

    /// Answers a retried request with the original positions, or refuses a reused id.
    fn deduplicate(
        &self,
        group: &Group,
        request: &AppendRequest,
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let scope = Scope::default();
        let refs = Refs {
            registry: &self.registry,
            scope: &scope,
            group,
            reader: &self.reader,
            failure: Default::default(),
        };
        let mut found = Vec::new();
        for event in &request.events {
            if let Some(entry) = refs.id_entry(&event.id)? {
                found.push((event, entry));
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        if found.len() < request.events.len() {
            let (event, entry) = &found[0];
            return Err(StoreError::IdConflict {
                id: event.id,
                position: entry.position,
                reason: "it was recorded by an append that did not hold this whole batch; retry the original batch unchanged, or use new ids".into(),
            });
        }
        let mut events = Vec::with_capacity(found.len());
        for (event, entry) in found {
            let record = match group.records.iter().find(|r| r.position == entry.position) {
                Some(r) => Arc::clone(r),
                None => Arc::new(self.reader.record(entry.position)?.ok_or_else(|| {
                    StoreError::Corrupt {
                        position: Some(entry.position),
                        detail: format!("event {} is indexed but its record is missing", event.id),
                    }
                })?),
            };
            if &record.event != event {
                return Err(StoreError::IdConflict {
                    id: event.id,
                    position: entry.position,
                    reason: "it was recorded with other content; use a new id for a new event"
                        .into(),
                });
            }
            events.push(Appended {
                id: event.id,
                position: record.position,
                version: record.version,
            });
        }
        Ok(Some(AppendOutcome {
            events,
            deduplicated: true,
        }))
    }

    /// Adds one sealed record and its indexes to the request's writes.
    fn stage(
        &mut self,
        scope: &mut Scope,
        group: &Group,
        record: RecordedEvent,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let event = &record.event;
        let position = record.position;
        scope.lines.extend_from_slice(&bytes);
        scope.lines.push(b'\n');
        scope.ops.push((keys::event(position).to_vec(), bytes));
        let entry = IdEntry {
            position,
            kind: event.kind(),
            retracted: false,
            timeline: event.timeline.clone(),
        };
        scope
            .ops
            .push((keys::id(&event.id).to_vec(), entry.encode()));
        scope.ids.insert(event.id, entry);
        scope.ops.push((
            keys::version(&event.timeline, record.version),
            position.to_be_bytes().to_vec(),
        ));
        for key in keys::event_tags(event, position) {
            scope.ops.push((key, Vec::new()));
        }
        if let Payload::Retraction(r) = &event.payload {
            let refs = Refs {
                registry: &self.registry,
                scope,
                group,
                reader: &self.reader,
                failure: Default::default(),
            };
            if let Some(mut target) = refs.id_entry(&r.retracts)? {
                target.retracted = true;
                scope
                    .ops
                    .push((keys::id(&r.retracts).to_vec(), target.encode()));
                scope.ids.insert(r.retracts, target);
            }
        }
        if let Some(entry) = self.registry.apply(event) {
            scope.registered.push(entry);
        }
        scope.records.push(Arc::new(record));
        Ok(())
    }

    fn undo(&mut self, scope: &mut Scope) {
        for entry in scope.registered.drain(..).rev() {
            self.registry.remove(&entry);
        }
    }

    fn merge(
        &self,
        group: &mut Group,
        scope: Scope,
        timeline: &TimelineSlug,
        version: u64,
        head: Head,
    ) {
        if scope.records.is_empty() {
            return;
        }
        group.ops.extend(scope.ops);
        group.lines.extend(scope.lines);
        group.ops.push((
            keys::timeline_head(timeline),
            version.to_be_bytes().to_vec(),
        ));
        group.ids.extend(scope.ids);
        group.versions.insert(timeline.clone(), version);
        group.records.extend(scope.records);
        group.registered.extend(scope.registered);
        group.head = Some(head);
    }

    fn restore(
        &mut self,
        group: &mut Group,
        records: Vec<(RecordedEvent, Vec<u8>)>,
    ) -> Result<u64, StoreError> {
        let mut scope = Scope::default();
        let mut head = self.current_head(group);
        let mut versions: HashMap<TimelineSlug, u64> = HashMap::new();
        let count = records.len() as u64;
        for (record, bytes) in records {
            let at = record.position;
            let refuse = |why: String| {
                StoreError::Restore(format!(
                    "the record at position {at} {why}; nothing was restored"
                ))
            };
            if at != head.position + 1 {
                return Err(self.abort(
                    &mut scope,
                    refuse(format!(
                        "does not follow this log's head at position {}",
                        head.position
                    )),
                ));
            }
            if record.prev_hash != head.hash {
                return Err(self.abort(
                    &mut scope,
                    refuse("does not chain to the hash of the record before it".into()),
                ));
            }
            if head
                .recorded_at
                .is_some_and(|last| record.recorded_at < last)
            {
                return Err(self.abort(
                    &mut scope,
                    refuse("was recorded before the record preceding it".into()),
                ));
            }
            let timeline = record.event.timeline.clone();
            let current = versions
                .get(&timeline)
                .copied()
                .or_else(|| self.current_version(group, &timeline));
            if record.version != current.unwrap_or(0) + 1 {
                return Err(self.abort(
                    &mut scope,
                    refuse(format!(
                        "has version {} of {timeline}, which is not next",
                        record.version
                    )),
                ));
            }
            if scope.ids.contains_key(&record.event.id)
                || self.reader.id_entry(&record.event.id)?.is_some()
                || group.ids.contains_key(&record.event.id)
            {
                return Err(self.abort(
                    &mut scope,
                    refuse(format!("reuses the event id {}", record.event.id)),
                ));
            }
            if let Err(e) = self.check_references(&scope, group, &record.event, &timeline) {
                return Err(self.abort(&mut scope, refuse(format!("is invalid: {e}"))));
            }
            head = Head {
                position: at,
                hash: record.hash,
                recorded_at: Some(record.recorded_at),
            };
            versions.insert(timeline, record.version);
            if let Err(e) = self.stage(&mut scope, group, record, bytes) {
                return Err(self.abort(&mut scope, e));
            }
        }
        if scope.records.is_empty() {
            return Ok(0);
        }
        for (timeline, version) in &versions {
            scope.ops.push((
                keys::timeline_head(timeline),
                version.to_be_bytes().to_vec(),
            ));
        }
        group.ops.extend(scope.ops);
        group.lines.extend(scope.lines);
        group.ids.extend(scope.ids);
        group.versions.extend(versions);
        group.records.extend(scope.records);
        group.registered.extend(scope.registered);
        group.head = Some(head);
        Ok(count)
    }

    fn abort(&mut self, scope: &mut Scope, error: StoreError) -> StoreError {
        self.undo(scope);
        error
    }
}

/// Answers every command of a group with the error that stopped it.
fn refuse_all(commands: Vec<Command>, error: &StoreError) {
    for command in commands {
        match command {
            Command::Append { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Restore { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Plan { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Checkpoint { reply } => drop(reply.send(Err(error.clone()))),
        }
    }
}

/// Lets crossbeam-epoch free what a large sled batch left behind.
///
/// sled applies a whole batch under one epoch guard, deferring the frees of every page it
/// replaces, and crossbeam-epoch frees deferred garbage only a few bags at a time, when a thread
/// pins. A writer that applies batches of thousands of writes, pinning once per batch, piles
/// garbage up faster than it is freed: memory grew by tens of kilobytes per event until the
/// process was killed. Flushing a pinned guard runs a collection step; doing it in proportion to
/// the batch keeps memory flat (measured in `docs/benchmarks.md`).
fn reclaim_epoch_garbage(writes: usize) {
    for _ in 0..(writes / 32 + 8) {
        crossbeam_epoch::pin().flush();
    }
}
