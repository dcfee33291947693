//! The writer: one thread that owns every write to the log. It takes append and restore
//! requests from a channel, has the sequencer check and seal them as one commit group, appends
//! the group's records to the open segment with one write and one `fdatasync`, indexes them in
//! sled, and only then publishes the new head and answers.
//!
//! Group commit is what makes durability affordable: requests that arrive while a group is being
//! synced form the next group, so one sync serves many appends. sled is made durable behind the
//! segments at checkpoints (every second, and at shutdown); a crash loses nothing acknowledged,
//! since the next open indexes again whatever the segments hold past the last checkpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chancery_domain::{
    EventId, Kind, Payload, Position, RecordedEvent, Registry, TimelineSlug, Timestamp,
};
use chancery_store::sequencer::{self, Answer, LogState, PreparedAppend, Request};
use chancery_store::{AppendOutcome, Head, LiveFeed, RestoreOutcome, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::durability::DiskSync;
use crate::keys;
use crate::postings::Postings;
use crate::reader::{Reader, corrupt, io_error, storage_error};
use crate::reserve;
use crate::segments::{Appender, Mark};

/// Free space a reopen needs before it lets the database go (a reopen that failed for want of
/// space would leave nothing to read from): sled may write up to a segment as it recovers.
const REOPEN_ROOM: u64 = crate::SLED_SEGMENT as u64;

/// Free space appends wait for after the disk filled: room for the reserve again, and a segment.
const RESUME_ROOM: u64 = reserve::RESERVE_BYTES + crate::SLED_SEGMENT as u64;

/// How often sled is made durable behind the segments while appends go on.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub enum Command {
    Append {
        request: PreparedAppend,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Records already checked one by one by the caller (`sequencer::check_restore`).
    Restore {
        records: Vec<RecordedEvent>,
        reply: oneshot::Sender<Result<RestoreOutcome, StoreError>>,
    },
    /// Makes everything indexed so far durable in sled.
    Checkpoint {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl Command {
    fn events(&self) -> usize {
        match self {
            Command::Append { request, .. } => request.events.len(),
            Command::Restore { records, .. } => records.len(),
            Command::Checkpoint { .. } => 0,
        }
    }
}

/// What readers see of the writer's state, updated after each durable group.
pub struct Shared {
    pub head: RwLock<Head>,
    /// The published head's position, which bounds every read.
    pub published: Arc<AtomicU64>,
    pub registry: RwLock<Arc<Registry>>,
    pub feed: Arc<LiveFeed>,
    pub syncs: AtomicU64,
    pub groups: AtomicU64,
    pub checkpoints: AtomicU64,
}

/// Whether the writer can append, and if not, what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// sled failed a write: it refuses every write from then on (its I/O errors are sticky), so
    /// the database is reopened before the next group.
    IndexFailed,
    /// The disk filled: the reserve was released, so reads go on; appends wait until there is
    /// room to make the reserve again (and, if sled failed too, to reopen it).
    DiskFull {
        index_failed: bool,
    },
}

impl Health {
    fn index_failed(self) -> bool {
        matches!(
            self,
            Health::IndexFailed | Health::DiskFull { index_failed: true }
        )
    }
}

pub struct Writer {
    /// `None` only while a reopen is under way (or failed).
    pub db: Option<sled::Db>,
    /// The log's directory and sled's cache size, to reopen the database.
    pub dir: PathBuf,
    pub cache_bytes: u64,
    pub health: Health,
    /// A storage failure was logged, and its end will be.
    pub failure_logged: bool,
    /// The writer's own reader (its tree handle is the writer's during a reopen).
    pub reader: Reader,
    pub appender: Appender,
    /// sled's data file, synced at checkpoints.
    pub sync: DiskSync,
    pub head: Head,
    /// The last position the segments hold durably: past `head` only when indexing failed.
    pub durable_end: Position,
    pub versions: HashMap<TimelineSlug, u64>,
    pub registry: Registry,
    pub shared: Arc<Shared>,
    /// The open blocks of the posting lists.
    pub postings: Postings,
    pub max_group_events: usize,
    pub last_checkpoint: Instant,
}

/// The log as the writer holds it, for the sequencer.
pub(crate) struct View<'a> {
    pub head: Head,
    pub registry: &'a Registry,
    /// The timelines' versions, when kept in memory; else read from the index.
    pub versions: Option<&'a HashMap<TimelineSlug, u64>>,
    pub reader: &'a Reader,
}

impl LogState for View<'_> {
    fn head(&self) -> Head {
        self.head
    }

    fn registry(&self) -> &Registry {
        self.registry
    }

    fn version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError> {
        match self.versions {
            Some(versions) => Ok(versions.get(timeline).copied()),
            None => self
                .reader
                .timeline_version_within(timeline.as_str(), self.head.position),
        }
    }

    fn id_entry(&self, id: &EventId) -> Result<Option<sequencer::IdEntry>, StoreError> {
        let bound = self.head.position;
        Ok(self
            .reader
            .id_entry_within(id, bound)?
            .map(|e| e.as_of(bound)))
    }

    fn record(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        self.reader.record_within(position, self.head.position)
    }
}

/// A request waiting for its group's outcome.
enum Waiting {
    Append(oneshot::Sender<Result<AppendOutcome, StoreError>>),
    Restore(oneshot::Sender<Result<RestoreOutcome, StoreError>>),
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
        // The channel closed: the log is shutting down. Leave sled complete; if this fails, the
        // segments still hold every record and the next open indexes them again.
        let _ = self.checkpoint();
    }

    fn commit(&mut self, commands: Vec<Command>) {
        if self.health != Health::Ready {
            if let Err(error) = self.resume() {
                self.log_failure(&error);
                refuse_all(commands, &error);
                return;
            }
        }
        let now = Timestamp::from_system_time(SystemTime::now());
        let mut requests = Vec::with_capacity(commands.len());
        let mut waiting = Vec::with_capacity(commands.len());
        let mut checkpoints = Vec::new();
        for command in commands {
            match command {
                Command::Append { request, reply } => {
                    requests.push(Request::Append(request));
                    waiting.push(Waiting::Append(reply));
                }
                Command::Restore { records, reply } => {
                    requests.push(Request::Restore(records));
                    waiting.push(Waiting::Restore(reply));
                }
                Command::Checkpoint { reply } => checkpoints.push(reply),
            }
        }
        let sealed = sequencer::sequence(&self.view(), requests, now);
        let mut answers = sealed.answers;
        if !sealed.records.is_empty() {
            match self.persist(&sealed.records) {
                Ok(()) => {
                    if self.failure_logged {
                        self.failure_logged = false;
                        tracing::info!(
                            head = sealed.head.position,
                            "appends are durable again after a storage failure"
                        );
                    }
                    self.head = sealed.head;
                    self.versions.extend(sealed.versions);
                    let registered = sealed.registry.is_some();
                    if let Some(registry) = sealed.registry {
                        self.registry = registry;
                    }
                    self.publish(registered, &sealed.records);
                }
                Err(error) => {
                    self.log_failure(&error);
                    answers = answers.into_iter().map(|a| a.failed(&error)).collect();
                }
            }
        }
        let head = self.head;
        for (wait, answer) in waiting.into_iter().zip(answers) {
            match (wait, answer) {
                (Waiting::Append(tx), Answer::Append(result)) => drop(tx.send(result)),
                (Waiting::Restore(tx), Answer::Restore(result)) => {
                    drop(tx.send(result.map(|restored| RestoreOutcome { restored, head })))
                }
                (Waiting::Append(tx), Answer::Restore(_)) => {
                    drop(tx.send(Err(StoreError::Storage("mismatched answer".into()))))
                }
                (Waiting::Restore(tx), Answer::Append(_)) => {
                    drop(tx.send(Err(StoreError::Storage("mismatched answer".into()))))
                }
            }
        }
        if !checkpoints.is_empty() {
            let done = self.checkpoint();
            for reply in checkpoints {
                drop(reply.send(done.clone()));
            }
        } else if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            // Best effort: a failed checkpoint leaves more to index again at the next open.
            let _ = self.checkpoint();
        }
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            head: self.head,
            registry: &self.registry,
            versions: Some(&self.versions),
            reader: &self.reader,
        }
    }

    /// Makes a sealed group durable in the segments, then indexes it. Nothing is answered as
    /// written unless both happened: a failed segment write was cut off again (nothing written);
    /// a failed index write leaves durable records, which the reopen indexes again before any
    /// other write.
    fn persist(&mut self, records: &[RecordedEvent]) -> Result<(), StoreError> {
        if let Err(e) = self.appender.append(records) {
            let unknown = "the outcome is unknown: retry with the same event ids";
            let error = match io_error(&e) {
                StoreError::StorageFull(m) => StoreError::StorageFull(format!("{m}; {unknown}")),
                other => StoreError::Storage(format!("{other}; {unknown}")),
            };
            if matches!(error, StoreError::StorageFull(_)) {
                self.disk_filled(false);
            }
            return Err(error);
        }
        self.shared
            .syncs
            .store(self.appender.syncs, Ordering::Relaxed);
        self.shared.groups.fetch_add(1, Ordering::Relaxed);
        self.durable_end = records
            .last()
            .map_or(self.durable_end, RecordedEvent::position);
        let postings = &mut self.postings;
        let indexed = self
            .reader
            .tree()
            .and_then(|tree| index_records(&tree, postings, records));
        if let Err(error) = indexed {
            // The records are durable: a reopen indexes them from the segments, and publishes
            // them, before anything else is written.
            if matches!(error, StoreError::StorageFull(_)) {
                self.disk_filled(true);
            } else {
                self.health = Health::IndexFailed;
                if let Err(e) = self.reopen() {
                    tracing::warn!(%e, "cannot reopen the log's database yet");
                }
            }
            if self.health.index_failed() {
                let why = format!(
                    "{error}; the records are durable but not yet readable: retry with the same \
                     event ids"
                );
                return Err(match error {
                    StoreError::StorageFull(_) => StoreError::StorageFull(why),
                    _ => StoreError::Storage(why),
                });
            }
            return Ok(());
        }
        Ok(())
    }

    fn publish(&self, registered: bool, records: &[RecordedEvent]) {
        // The registry goes first: a reader that sees the new head sees what it registered.
        if registered {
            if let Ok(mut registry) = self.shared.registry.write() {
                *registry = Arc::new(self.registry.clone());
            }
        }
        let published = self.shared.published.load(Ordering::Acquire);
        if let Ok(mut head) = self.shared.head.write() {
            *head = self.head;
        }
        self.shared
            .published
            .store(self.head.position, Ordering::Release);
        // A reopen indexes again records that subscribers already had.
        let fresh = records.partition_point(|r| r.position() <= published);
        self.shared.feed.publish(&records[fresh..]);
    }

    /// Makes the segments' offsets, the index and the checkpoint mark durable up to the head.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        let result = self.checkpoint_inner();
        if let Err(error) = &result {
            if matches!(error, StoreError::StorageFull(_)) {
                self.disk_filled(true);
            } else if matches!(error, StoreError::Storage(_)) {
                self.health = Health::IndexFailed;
            }
        }
        result
    }

    fn checkpoint_inner(&mut self) -> Result<(), StoreError> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| StoreError::Storage("the database is not open".into()))?;
        let mark = self
            .appender
            .checkpoint(self.head.position)
            .map_err(|e| io_error(&e))?;
        self.reader
            .tree()?
            .insert(keys::META_CHECKPOINT, &mark.encode())
            .map_err(storage_error)?;
        #[allow(clippy::disallowed_methods)] // the flush is followed by an fdatasync below
        db.flush().map_err(storage_error)?;
        self.sync.sync().map_err(|e| io_error(&e))?;
        self.last_checkpoint = Instant::now();
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Reopens the database after sled failed a write (a full disk), once there is room: sled
    /// comes back as its files left it, and what the segments hold past its checkpoint is
    /// indexed again and published.
    fn reopen(&mut self) -> Result<(), StoreError> {
        let free = fs2::available_space(&self.dir).map_err(|e| io_error(&e))?;
        if free < REOPEN_ROOM {
            return Err(no_room(&self.dir, free, REOPEN_ROOM));
        }
        tracing::warn!(dir = %self.dir.display(), free, "reopening the log's database after a storage failure");
        // Every handle must go before sled's lock is released.
        self.reader.replace(None);
        self.db = None;
        let db = crate::open_released(&crate::sled_config(&self.dir, self.cache_bytes))
            .map_err(storage_error)?;
        let tree = db.open_tree(crate::INDEX_TREE).map_err(storage_error)?;
        self.db = Some(db);
        self.sync = DiskSync::open(&self.dir).map_err(|e| io_error(&e))?;
        // Readers get the tree once the index has caught up with the segments, never before.
        let own = self.reader.with_tree(tree.clone());
        self.postings.clear();
        let tail = catch_up_index(&own, &tree, &mut self.postings, self.durable_end)?;
        let head = match tail.last() {
            Some(last) => head_of_record(last),
            None => self.head,
        };
        let (registry, versions) = own.load_state(head.position)?;
        self.head = head;
        self.registry = registry;
        self.versions = versions;
        self.reader.replace(Some(tree));
        if self.health == Health::IndexFailed {
            self.health = Health::Ready;
        } else if let Health::DiskFull { .. } = self.health {
            self.health = Health::DiskFull {
                index_failed: false,
            };
        }
        self.publish(true, &tail);
        tracing::info!(
            head = self.head.position,
            "the log's database is open again"
        );
        Ok(())
    }

    /// The disk filled: releases the reserve, and if sled failed, reopens the database into its
    /// room at once, so that no read meets sled's sticky error. Appends wait in
    /// [`Writer::resume`].
    fn disk_filled(&mut self, index_failed: bool) {
        let index_failed = index_failed || self.health.index_failed();
        let was_full = matches!(self.health, Health::DiskFull { .. });
        self.health = Health::DiskFull { index_failed };
        if !was_full {
            match reserve::release(&self.dir) {
                Ok(true) => tracing::warn!(
                    dir = %self.dir.display(),
                    "the log's disk is full: released its reserve so that reads go on"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(%e, "cannot release the log's reserve"),
            }
        }
        if index_failed {
            if let Err(e) = self.reopen() {
                tracing::warn!(%e, "cannot reopen the log's database yet; reads may fail until there is room");
            }
        }
    }

    /// Gets the log ready to append after a storage failure: the database reopened if sled
    /// failed, and the reserve made again if the disk filled, once there is room for both.
    fn resume(&mut self) -> Result<(), StoreError> {
        if self.health.index_failed() {
            self.reopen()?;
        }
        if let Health::DiskFull { .. } = self.health {
            let free = fs2::available_space(&self.dir).map_err(|e| io_error(&e))?;
            if free < RESUME_ROOM || !reserve::make(&self.dir).map_err(|e| io_error(&e))? {
                return Err(no_room(&self.dir, free, RESUME_ROOM));
            }
            self.health = Health::Ready;
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
}

fn no_room(dir: &std::path::Path, free: u64, needed: u64) -> StoreError {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    StoreError::StorageFull(format!(
        "no space left on the log's disk: {} has {:.1} MiB free, and the log needs {:.1} MiB to \
         resume appending; free some space (reads keep working)",
        dir.display(),
        mib(free),
        mib(needed)
    ))
}

pub(crate) fn head_of_record(record: &RecordedEvent) -> Head {
    Head {
        position: record.position(),
        hash: record.hash(),
        recorded_at: Some(record.recorded_at()),
    }
}

/// The checkpoint mark the index holds (the empty mark for a new log).
pub(crate) fn read_mark(tree: &sled::Tree) -> Result<Mark, StoreError> {
    match tree.get(keys::META_CHECKPOINT).map_err(storage_error)? {
        None => Ok(Mark::EMPTY),
        Some(v) => {
            Mark::decode(&v).ok_or_else(|| corrupt(None, "the checkpoint mark is malformed"))
        }
    }
}

/// Indexes what the segments hold past the index's checkpoint, up to `end`, and answers with
/// those records (writing an entry twice is harmless: it is the same).
pub(crate) fn catch_up_index(
    reader: &Reader,
    tree: &sled::Tree,
    postings: &mut Postings,
    end: Position,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mark = read_mark(tree)?;
    let mut tail = Vec::new();
    reader.segments().scan(mark.head + 1, end, &mut |record| {
        tail.push(record);
        true
    })?;
    index_records(tree, postings, &tail)?;
    Ok(tail)
}

/// Writes the index entries of records, in order: each record's place in its terms' posting
/// lists (one block write per list the records touch), and a retraction's mark on its target
/// (the id index is the segments', written with the records). One insert at a time: a sled batch would write its manifest to the disk at once,
/// beside the segment's own sync, and a group need not be atomic in the index (see `keys`).
pub(crate) fn index_records(
    tree: &sled::Tree,
    postings: &mut Postings,
    records: &[RecordedEvent],
) -> Result<(), StoreError> {
    let mut writes = Vec::new();
    let mut listed = Vec::with_capacity(records.len() * 6);
    for record in records {
        let unreadable =
            |e: chancery_domain::RecordError| corrupt(Some(record.position()), &e.to_string());
        let view = record.view().map_err(unreadable)?;
        keys::record_postings(record, &view, &mut listed);
        if record.kind() == Kind::Retraction {
            if let Payload::Retraction(r) = view.payload().map_err(unreadable)? {
                writes.push((
                    keys::retraction(&r.retracts).to_vec(),
                    record.position().to_be_bytes().to_vec(),
                ));
            }
        }
    }
    writes.extend(postings.append(tree, &listed)?);
    let count = writes.len();
    for (k, v) in writes {
        tree.insert(k, v).map_err(storage_error)?;
    }
    reclaim_epoch_garbage(count);
    Ok(())
}

/// Answers every command of a group with the error that stopped it.
fn refuse_all(commands: Vec<Command>, error: &StoreError) {
    for command in commands {
        match command {
            Command::Append { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Restore { reply, .. } => drop(reply.send(Err(error.clone()))),
            Command::Checkpoint { reply } => drop(reply.send(Err(error.clone()))),
        }
    }
}

/// Lets crossbeam-epoch free what many sled writes left behind.
///
/// sled defers the frees of every page it replaces to crossbeam-epoch, which frees deferred
/// garbage only a few bags at a time, when a thread pins. A writer that applies groups of
/// thousands of writes piles garbage up faster than it is freed: memory grew by tens of
/// kilobytes per event until the process was killed. Flushing a pinned guard runs a collection
/// step; doing it in proportion to the writes keeps memory flat (docs/benchmarks.md).
pub(crate) fn reclaim_epoch_garbage(writes: usize) {
    for _ in 0..(writes / 32 + 8) {
        crossbeam_epoch::pin().flush();
    }
}
