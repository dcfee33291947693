//! The embedded event log on sled: Chancery's default backend.
//!
//! Layout: one sled database per log directory, with the log's keyspaces in one tree (see
//! [`keys`]). Writes go through a single writer thread ([`writer`]) that commits in groups and
//! makes each group durable with `fdatasync` ([`durability`]) before acknowledging. Reads go
//! straight to sled ([`reader`]). Subscriptions use the shared live feed of `chancery-store`.
//!
//! [`SledLog::plan_append`] asks the writer what an append would write without writing it: the
//! NATS backend decides its appends with it, against its local replica, so both backends follow
//! one set of rules.

mod durability;
pub mod keys;
mod reader;
mod reserve;
mod rollback;
mod wal;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{
    EventId, Position, RecordedEvent, Registry, TimelineSlug, ValidationErrors, decode_record,
    validate, verify_record_hash,
};
use chancery_store::{
    AppendOutcome, AppendRequest, Direction, EventFilter, EventLog, EventStream, ForwardReader,
    Head, LiveFeed, RawRecord, ReadRequest, RestoreOutcome, StoreError,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::reader::{Reader, corrupt, storage_error};
use crate::writer::{Command, Planned, Shared, Writer};

/// Tuning of the sled log. The defaults suit a server.
#[derive(Debug, Clone)]
pub struct SledConfig {
    /// Recent events kept in memory for live subscribers; slower ones read from storage.
    pub live_buffer: usize,
    /// Most events the writer commits in one group (one sync).
    pub max_group_events: usize,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// Whether each commit group is made durable with `fdatasync` before it is acknowledged (the
    /// default). Turn it off only for a copy whose durability lies elsewhere, such as the NATS
    /// backend's local replica: a crash may then lose its last groups, which it fetches again.
    pub durable: bool,
}

impl Default for SledConfig {
    fn default() -> Self {
        Self {
            live_buffer: 4096,
            max_group_events: 8192,
            cache_bytes: 128 * 1024 * 1024,
            durable: true,
        }
    }
}

/// What an append or a restore would write, worked out against the log as it is, with nothing
/// written (see [`SledLog::plan_append`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The head the records continue: the first is at `base.position + 1` and chains to
    /// `base.hash`.
    pub base: Head,
    /// Where each event goes, in request order; for a retried append, where each already is.
    pub outcome: AppendOutcome,
    /// The sealed records to write with their stored bytes, in position order, one per entry of
    /// `outcome`; none when the outcome is `deduplicated`.
    pub records: Vec<(Arc<RecordedEvent>, Vec<u8>)>,
}

/// sled writes pages larger than a quarter of a segment to blob files, which it never syncs.
/// With 8 MiB segments a page must exceed 2 MiB for that; a leaf holds at most 17 entries of at
/// most 64 KiB, so the log's pages never do.
pub(crate) const SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// Counters of the writer's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Commit groups made durable.
    pub groups: u64,
    /// `fdatasync` calls made on the write-ahead log (one per group).
    pub syncs: u64,
    /// Checkpoints: sled flushed and synced, the write-ahead log behind it deleted.
    pub checkpoints: u64,
}

/// The sled event log. Cheap to clone; the writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    reader: Arc<Reader>,
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Command>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer after its current group; waiting for it means a
        // reopen of the same directory in this process finds the database released.
        self.commands.take();
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(handle) = writer.take() {
                let _ = handle.join();
            }
        }
    }
}

impl SledLog {
    /// Opens (or creates) the log in `dir`, resuming at its head.
    pub fn open(dir: impl AsRef<Path>, config: SledConfig) -> Result<SledLog, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let db =
            open_released(&sled_config(dir, config.cache_bytes)).map_err(|e| open_error(dir, e))?;
        let reserved = reserve::make(dir).map_err(|e| reader::io_error(&e))?;
        if !reserved {
            tracing::warn!(
                dir = %dir.display(),
                "no room for the log's reserve: a full disk may make reads fail until there is room"
            );
        }
        let tree = db.open_tree("log").map_err(storage_error)?;
        check_format(&tree)?;
        let marked = tree
            .contains_key(keys::META_CHECKPOINT)
            .map_err(storage_error)?;
        if config.durable {
            let undone = rollback::to_checkpoint(&tree)?;
            if undone > 0 {
                tracing::info!(
                    dir = %dir.display(),
                    undone,
                    "took the log back to its last checkpoint; the write-ahead log replays the rest"
                );
            }
        }
        let reader = Reader::new(tree);
        let head = head_of(&reader)?;
        let (registry, versions) = reader.load_state()?;
        let sync = durability::DiskSync::open(dir).map_err(|e| reader::io_error(&e))?;
        // Records acknowledged from the write-ahead log that sled had not made durable yet.
        let wal_dir = dir.join("wal");
        let (tail, wal) = if config.durable {
            let tail = wal::read_tail(&wal_dir, head.position).map_err(|e| corrupt(None, &e))?;
            (
                tail,
                Some(wal::Wal::open(&wal_dir).map_err(|e| reader::io_error(&e))?),
            )
        } else {
            (Vec::new(), None)
        };

        let feed = LiveFeed::new(head.position, config.live_buffer.max(1));
        let shared = Arc::new(Shared {
            head: RwLock::new(head),
            registry: RwLock::new(Arc::new(registry.clone())),
            feed,
            syncs: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel(1024);
        let mut writer = Writer {
            db: Some(db),
            dir: dir.to_owned(),
            cache_bytes: config.cache_bytes,
            sled_failed: false,
            disk_full: false,
            reopening: false,
            failure_logged: false,
            reader: reader.clone(),
            sync,
            head,
            versions,
            registry,
            shared: Arc::clone(&shared),
            max_group_events: config.max_group_events.max(MAX_BATCH_EVENTS),
            unsynced: Vec::new(),
            unsynced_lines: Vec::new(),
            wal,
            last_checkpoint: std::time::Instant::now(),
        };
        if !tail.is_empty() {
            writer.recover(tail)?;
        } else if config.durable && !marked {
            // Groups are not atomic in sled between checkpoints: a crash must find a mark to
            // go back to.
            writer.checkpoint()?;
        }
        let handle = std::thread::Builder::new()
            .name("chancery-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(SledLog {
            inner: Arc::new(Inner {
                path: dir.to_owned(),
                reader: Arc::new(reader),
                shared,
                commands: Some(tx),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes sled durable up to the head and drops the write-ahead log behind it (the writer does
    /// this every second while appends go on, and at shutdown).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.send(|reply| Command::Checkpoint { reply }).await
    }

    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            groups: self.inner.shared.groups.load(Ordering::Relaxed),
            syncs: self.inner.shared.syncs.load(Ordering::Relaxed),
            checkpoints: self.inner.shared.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Works out what [`EventLog::append`] would do, against the log as it is now, and writes
    /// nothing: the sealed records (positions from the head on, chained to its hash, with their
    /// versions and `recordedAt`) and the outcome, or the error the append would give. The rules
    /// are the append's own: validation, expected version, idempotency by id.
    ///
    /// For a backend that stores the records elsewhere first and feeds them back through
    /// [`EventLog::restore`]; the plan holds only while nothing else is written in between.
    pub async fn plan_append(&self, request: AppendRequest) -> Result<Plan, StoreError> {
        precheck(&request)?;
        self.send(|reply| Command::Plan {
            what: Planned::Append(request),
            reply,
        })
        .await
    }

    /// Checks records as [`EventLog::restore`] would, writing nothing, and answers with them as
    /// a plan (their positions, ids and versions).
    pub async fn plan_restore(&self, records: Vec<Vec<u8>>) -> Result<Plan, StoreError> {
        let decoded = checked_records(records)?;
        if decoded.is_empty() {
            return Ok(Plan {
                base: self.head_now(),
                outcome: AppendOutcome {
                    events: Vec::new(),
                    deduplicated: false,
                },
                records: Vec::new(),
            });
        }
        self.send(|reply| Command::Plan {
            what: Planned::Restore(decoded),
            reply,
        })
        .await
    }

    async fn send<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let commands = self.inner.commands.as_ref().ok_or(StoreError::Closed)?;
        commands
            .send(command(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn head_now(&self) -> Head {
        self.inner
            .shared
            .head
            .read()
            .map(|h| *h)
            .unwrap_or(Head::EMPTY)
    }
}

/// sled's settings for the log in `dir`.
pub(crate) fn sled_config(dir: &Path, cache_bytes: u64) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .segment_size(SEGMENT_SIZE)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None)
}

/// The head of the log as sled holds it: its last record, checked.
pub(crate) fn head_of(reader: &Reader) -> Result<Head, StoreError> {
    Ok(match reader.last_record()? {
        None => Head::EMPTY,
        Some((record, bytes)) => {
            verify_record_hash(&bytes).map_err(|e| {
                corrupt(
                    Some(record.position),
                    &format!("the last record fails its check: {e}"),
                )
            })?;
            Head {
                position: record.position,
                hash: record.hash,
                recorded_at: Some(record.recorded_at),
            }
        }
    })
}

/// Opens a sled database, waiting up to two seconds for a lock that this process released: sled
/// closes its file from a background thread pool shortly after the last handle is dropped, so an
/// immediate reopen (a restart within one process, a test) can find the lock still held. Another
/// process holding it fails after the wait, with a message saying so.
pub(crate) fn open_released(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn open_error(dir: &Path, e: sled::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("lock") {
        StoreError::Storage(format!(
            "{} is in use by another Chancery process ({text})",
            dir.display()
        ))
    } else if let sled::Error::Corruption { at, .. } = e {
        // sled checks its data file's checksums as it recovers; it says where only sometimes.
        let place = at.map_or_else(
            || "found while recovering".to_owned(),
            |at| format!("at {at:?}"),
        );
        StoreError::Corrupt {
            position: None,
            detail: format!(
                "{}, sled's data file, is damaged ({place}); restore the log from a backup",
                dir.join("db").display()
            ),
        }
    } else {
        storage_error(e)
    }
}

fn check_format(tree: &sled::Tree) -> Result<(), StoreError> {
    match tree.get(keys::META_FORMAT).map_err(storage_error)? {
        Some(v) if keys::u64_prefix(&v) == Some(keys::FORMAT) => Ok(()),
        Some(v) => Err(StoreError::Corrupt {
            position: None,
            detail: format!(
                "store format {:?} is not format {} of this build",
                keys::u64_prefix(&v),
                keys::FORMAT
            ),
        }),
        None => {
            if tree.first().map_err(storage_error)?.is_some() {
                return Err(corrupt(None, "the store has data but no format marker"));
            }
            tree.insert(keys::META_FORMAT, &keys::FORMAT.to_be_bytes())
                .map_err(storage_error)?;
            Ok(())
        }
    }
}

/// Structural checks done by the caller's task, so the writer thread only does what needs order.
fn precheck(request: &AppendRequest) -> Result<(), StoreError> {
    if request.events.is_empty() {
        return Err(StoreError::Invalid(ValidationErrors::single(
            "events",
            "an append needs at least one event",
        )));
    }
    if request.events.len() > MAX_BATCH_EVENTS {
        return Err(StoreError::Limit(format!(
            "{} events in one append; the limit is {MAX_BATCH_EVENTS}: split the batch",
            request.events.len()
        )));
    }
    let mut ids = HashSet::with_capacity(request.events.len());
    for (i, event) in request.events.iter().enumerate() {
        validate(event).map_err(|e| StoreError::Invalid(e.within(&format!("events[{i}]"))))?;
        if !ids.insert(event.id) {
            return Err(StoreError::Invalid(ValidationErrors::single(
                format!("events[{i}].id"),
                format!("{} appears twice in this batch", event.id),
            )));
        }
    }
    Ok(())
}

/// The checks of a restore done by the caller's task: each record's hash, decoding and validity.
fn checked_records(records: Vec<Vec<u8>>) -> Result<Vec<(RecordedEvent, Vec<u8>)>, StoreError> {
    if records.len() > MAX_BATCH_EVENTS * 10 {
        return Err(StoreError::Limit(format!(
            "{} records in one restore; the limit is {}",
            records.len(),
            MAX_BATCH_EVENTS * 10
        )));
    }
    let mut decoded = Vec::with_capacity(records.len());
    for (i, bytes) in records.into_iter().enumerate() {
        let refuse = |why: String| {
            StoreError::Restore(format!(
                "record {} of the batch {why}; nothing was restored",
                i + 1
            ))
        };
        verify_record_hash(&bytes).map_err(|e| refuse(format!("fails its hash check: {e}")))?;
        let record = decode_record(&bytes).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        validate(&record.event).map_err(|e| refuse(format!("is invalid: {e}")))?;
        decoded.push((record, bytes));
    }
    Ok(decoded)
}

impl ForwardReader for Reader {
    fn read_forward(
        &self,
        from: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        let request = ReadRequest {
            from,
            direction: Direction::Forward,
            filter: filter.clone(),
            limit,
        };
        async move { self.read(&request) }.boxed()
    }
}

impl EventLog for SledLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        async move {
            precheck(&request)?;
            self.send(|reply| Command::Append { request, reply }).await
        }
        .boxed()
    }

    fn restore(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<RestoreOutcome, StoreError>> {
        async move {
            let decoded = checked_records(records)?;
            if decoded.is_empty() {
                return Ok(RestoreOutcome {
                    restored: 0,
                    head: self.head_now(),
                });
            }
            self.send(|reply| Command::Restore {
                records: decoded,
                reply,
            })
            .await
        }
        .boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>> {
        let head = self.head_now();
        async move { Ok(head) }.boxed()
    }

    fn read(
        &self,
        request: ReadRequest,
    ) -> BoxFuture<'_, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        async move { self.inner.reader.read(&request) }.boxed()
    }

    fn read_timeline(
        &self,
        timeline: TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        async move {
            self.inner
                .reader
                .read_timeline(&timeline, from_version, limit)
        }
        .boxed()
    }

    fn read_raw(
        &self,
        from: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RawRecord>, StoreError>> {
        async move { self.inner.reader.read_raw(from, limit) }.boxed()
    }

    fn event(&self, id: EventId) -> BoxFuture<'_, Result<Option<Arc<RecordedEvent>>, StoreError>> {
        async move { Ok(self.inner.reader.event(&id)?.map(Arc::new)) }.boxed()
    }

    fn timeline_version(
        &self,
        timeline: TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        async move { self.inner.reader.timeline_version(&timeline) }.boxed()
    }

    fn registry(&self) -> BoxFuture<'_, Result<Arc<Registry>, StoreError>> {
        let registry = self
            .inner
            .shared
            .registry
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| StoreError::Storage("registry lock poisoned".into()));
        async move { registry }.boxed()
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        chancery_store::live::subscribe(
            Arc::clone(&self.inner.shared.feed),
            Arc::clone(&self.inner.reader),
            after,
            filter,
        )
    }
}
