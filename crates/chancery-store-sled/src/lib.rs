//! The embedded event log: Chancery's default backend.
//!
//! Layout of a log directory: the records in append-only segment files (`records/`, see
//! [`segments`]), written once in their stored form, with the id index beside them ([`ids`]);
//! and a sled database holding the other indexes (timeline versions, filter tags, retraction
//! marks: see [`keys`]). Writes go through a single writer
//! thread ([`writer`]) that has the sequencer check and seal each commit group, appends it to the
//! open segment with one write and one `fdatasync`, indexes it, and only then acknowledges.
//! Reads take records from the segments and use the index to find them ([`reader`]).
//! Subscriptions use the shared live feed of `chancery-store`.
//!
//! [`SledLog::snapshot`] gives the log as it stands, for the sequencer: the NATS backend checks
//! and seals its appends against its local replica that way, with the same rules.

mod durability;
mod ids;
pub mod keys;
pub mod postings;
mod reader;
mod reserve;
mod segments;
mod upgrade;
mod v1_wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{EventId, Position, RecordedEvent, Registry, TimelineSlug};
use chancery_store::sequencer::{self, LogState};
use chancery_store::{
    AppendOutcome, AppendRequest, Direction, EventFilter, EventLog, EventStream, ForwardReader,
    Head, LiveFeed, ReadRequest, RestoreOutcome, StoreError,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::reader::{Reader, corrupt, storage_error};
use crate::segments::{Appender, Segments};
use crate::writer::{Command, Health, Shared, View, Writer};

/// The sled tree of the index.
pub(crate) const INDEX_TREE: &str = "index";
/// The directory of the segments, inside the log's.
pub(crate) const RECORDS_DIR: &str = "records";

/// Tuning of the log. The defaults suit a server.
#[derive(Debug, Clone)]
pub struct SledConfig {
    /// Recent events kept in memory for live subscribers; slower ones read from storage.
    pub live_buffer: usize,
    /// Most events the writer commits in one group (one sync).
    pub max_group_events: usize,
    /// sled's page cache for the index, in bytes. The index holds only the posting lists, the
    /// retraction marks and the metadata (the records and ids are in files of their own), and the
    /// writer keeps each list's open block itself, so a small cache serves it: at 16 MiB a
    /// 10M-row import peaked at 198 MB of RSS against 249 MB at 64 MiB, at about the same rate
    /// (75,625 and 77,440 rows/s, one run each side by side).
    pub cache_bytes: u64,
    /// Whether each commit group is made durable with `fdatasync` before it is acknowledged (the
    /// default). Turn it off only for a copy whose durability lies elsewhere, such as the NATS
    /// backend's local replica: a crash may then lose its last groups, which it fetches again.
    pub durable: bool,
    /// Bytes of records after which a segment is closed and the next one started.
    pub segment_bytes: u64,
}

impl Default for SledConfig {
    fn default() -> Self {
        Self {
            live_buffer: 4096,
            max_group_events: 8192,
            cache_bytes: 16 * 1024 * 1024,
            durable: true,
            segment_bytes: 256 * 1024 * 1024,
        }
    }
}

impl SledConfig {
    /// The default configuration without `fdatasync` before acknowledging (`durable: false`): for a
    /// copy whose durability lies elsewhere (the NATS backend's replica) and for tests whose
    /// subject is not durability.
    pub fn unsynced() -> Self {
        Self {
            durable: false,
            ..Self::default()
        }
    }
}

/// sled writes pages larger than a quarter of a segment to blob files, which it never syncs.
/// With 8 MiB segments a page must exceed 2 MiB for that; the index's entries are small, so its
/// pages never do.
pub(crate) const SLED_SEGMENT: usize = 8 * 1024 * 1024;

/// Counters of the writer's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Commit groups made durable.
    pub groups: u64,
    /// `fdatasync` calls made on segments (one per group of a durable log).
    pub syncs: u64,
    /// Checkpoints: the index and the segments' offsets made durable.
    pub checkpoints: u64,
}

/// The log. Cheap to clone; the writer stops when the last clone is dropped.
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

/// The log as it stood when taken: what the sequencer needs to check and seal appends against
/// it, every lookup bounded by that head.
pub struct Snapshot {
    head: Head,
    registry: Arc<Registry>,
    reader: Arc<Reader>,
}

impl Snapshot {
    fn view(&self) -> View<'_> {
        View {
            head: self.head,
            registry: &self.registry,
            versions: None,
            reader: &self.reader,
        }
    }
}

impl LogState for Snapshot {
    fn head(&self) -> Head {
        self.head
    }

    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError> {
        self.view().version(timeline)
    }

    fn id_entry(&self, id: &EventId) -> Result<Option<sequencer::IdEntry>, StoreError> {
        self.view().id_entry(id)
    }

    fn record(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        self.view().record(position)
    }
}

impl SledLog {
    /// Opens (or creates) the log in `dir`, resuming at its head: a store of format 1 is
    /// upgraded first, and what the segments hold past the last checkpoint is indexed again.
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
        upgrade::if_needed(&db, dir, config.segment_bytes)?;
        let tree = db.open_tree(INDEX_TREE).map_err(storage_error)?;
        check_format(&db, &tree, dir)?;
        let mark = writer::read_mark(&tree)?;
        let (segments, tail) = Segments::open(&dir.join(RECORDS_DIR), mark)?;
        let segments = Arc::new(segments);
        let published = Arc::new(AtomicU64::new(mark.head));
        let reader = Reader::new(Arc::clone(&segments), tree.clone(), Arc::clone(&published));
        let mut postings = postings::Postings::default();
        writer::index_records(&tree, &mut postings, &tail.records)?;
        let head = head_of(
            &reader,
            tail.records
                .last()
                .map_or(mark.head, RecordedEvent::position),
        )?;
        let (registry, versions) = reader.load_state(head.position)?;
        published.store(head.position, Ordering::Release);
        if !tail.records.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                records = tail.records.len(),
                "indexed the records written since the last checkpoint"
            );
        }
        let sync = durability::DiskSync::open(dir).map_err(|e| reader::io_error(&e))?;
        let appender = Appender::new(
            Arc::clone(&segments),
            mark,
            config.segment_bytes,
            config.durable,
        )?;
        let feed = LiveFeed::new(head.position, config.live_buffer.max(1));
        let shared = Arc::new(Shared {
            head: RwLock::new(head),
            published,
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
            health: Health::Ready,
            failure_logged: false,
            reader: reader.clone(),
            appender,
            sync,
            head,
            durable_end: head.position,
            versions,
            registry,
            shared: Arc::clone(&shared),
            postings,
            max_group_events: config.max_group_events.max(MAX_BATCH_EVENTS),
            last_checkpoint: std::time::Instant::now(),
        };
        if !tail.records.is_empty() || mark.head != head.position {
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

    /// Makes the index durable up to the head (the writer does this every second while appends
    /// go on, and at shutdown).
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

    /// The log as it stands now, for the sequencer: a backend that stores records elsewhere
    /// first (the NATS stream) checks and seals its appends against it, and feeds what it stored
    /// back through [`EventLog::restore`]. Lookups never see past this head.
    pub fn snapshot(&self) -> Snapshot {
        let head = self.head_now();
        Snapshot {
            head,
            registry: self.registry_now().unwrap_or_default(),
            reader: Arc::clone(&self.inner.reader),
        }
    }

    fn registry_now(&self) -> Result<Arc<Registry>, StoreError> {
        self.inner
            .shared
            .registry
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| StoreError::Storage("registry lock poisoned".into()))
    }

    /// Bytes the log takes on disk: its segments, and sled's files.
    pub fn disk_bytes(&self) -> u64 {
        self.inner.reader.segments().disk_bytes()
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

/// sled's settings for the index in `dir`.
pub(crate) fn sled_config(dir: &Path, cache_bytes: u64) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .segment_size(SLED_SEGMENT)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None)
}

/// The head at `position`: its record read and its hash checked, so that a damaged last record
/// is found at open.
fn head_of(reader: &Reader, position: Position) -> Result<Head, StoreError> {
    if position == 0 {
        return Ok(Head::EMPTY);
    }
    let record = reader
        .record_within(position, position)?
        .ok_or_else(|| corrupt(Some(position), "the last record is missing"))?;
    record.verify().map_err(|e| {
        corrupt(
            Some(position),
            &format!("the last record fails its check: {e}"),
        )
    })?;
    Ok(writer::head_of_record(&record))
}

/// Opens a sled database, waiting up to two seconds for a lock that this process released (see
/// [`chancery_store::open_released`]).
pub fn open_released(config: &sled::Config) -> sled::Result<sled::Db> {
    chancery_store::open_released(|| config.open())
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

/// Checks the store's format, upgrading one of format 2 (see `upgrade`).
fn check_format(db: &sled::Db, tree: &sled::Tree, dir: &Path) -> Result<(), StoreError> {
    match tree.get(keys::META_FORMAT).map_err(storage_error)? {
        Some(v) if keys::u64_prefix(&v) == Some(keys::FORMAT) => Ok(()),
        Some(v) if keys::u64_prefix(&v) == Some(upgrade::FORMAT_2) => {
            upgrade::from_format_2(db, tree, dir)
        }
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

impl ForwardReader for Reader {
    fn read_forward(
        &self,
        from: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
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
            let request = sequencer::precheck(request)?;
            self.send(|reply| Command::Append { request, reply }).await
        }
        .boxed()
    }

    fn restore(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<RestoreOutcome, StoreError>> {
        async move {
            let records = sequencer::check_restore(records, MAX_BATCH_EVENTS * 10)?;
            if records.is_empty() {
                return Ok(RestoreOutcome {
                    restored: 0,
                    head: self.head_now(),
                });
            }
            self.send(|reply| Command::Restore { records, reply }).await
        }
        .boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>> {
        let head = self.head_now();
        async move { Ok(head) }.boxed()
    }

    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
        async move { self.inner.reader.read(&request) }.boxed()
    }

    fn read_timeline(
        &self,
        timeline: TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
        async move {
            self.inner
                .reader
                .read_timeline(&timeline, from_version, limit)
        }
        .boxed()
    }

    fn event(&self, id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, StoreError>> {
        async move { self.inner.reader.event(&id) }.boxed()
    }

    fn timeline_version(
        &self,
        timeline: TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        async move { self.inner.reader.timeline_version(&timeline) }.boxed()
    }

    fn registry(&self) -> BoxFuture<'_, Result<Arc<Registry>, StoreError>> {
        let registry = self.registry_now();
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
