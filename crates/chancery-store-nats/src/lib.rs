//! The event log on NATS JetStream: Chancery's backend for several servers sharing one log.
//!
//! - **The stream** ([`stream`]): one JetStream stream on files, subjects
//!   `<prefix>.<timeline>`, nothing else on it, so its sequence is the log's position. Each
//!   message is one record's stored form, exactly as the embedded backend stores it.
//! - **The replica** ([`replica`], [`follower`]): each [`NatsLog`] keeps a local sled log fed by
//!   an ordered consumer through `SledLog::restore`, which checks every record. Every read and
//!   subscription is served from it.
//! - **Appends** ([`appender`], [`publish`]): one task per server takes the appends waiting, has
//!   the sequencer check and seal the whole group against a snapshot of the replica
//!   (`chancery_store::sequencer`, the rules every backend applies: validation, expected version,
//!   idempotency, sealing with positions and the hash chain), publishes the records as one atomic
//!   batch on the condition that the stream's last sequence is still the one they continue, and
//!   answers once the stream acknowledged them. The next group is sealed against the replica with
//!   the acknowledged groups it has not applied yet on top ([`ahead`]); reads wait until the
//!   replica holds every acknowledged append, so a caller reads its own writes. A group that lost
//!   the race, or that publishes nothing, is sealed again on a replica that holds the stream's
//!   last message.

mod ahead;
mod appender;
pub mod config;
mod follower;
mod publish;
mod replica;
mod stream;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{EventId, Position, RecordedEvent, Registry, TimelineSlug};
use chancery_store::sequencer::{self, Answer, Request};
use chancery_store::{
    AppendOutcome, AppendRequest, EventFilter, EventLog, EventStream, Head, ReadRequest,
    RestoreOutcome, StoreError,
};
use chancery_store_sled::SledLog;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use crate::config::NatsConfig;
pub use crate::stream::MIN_SERVER_VERSION;

use crate::appender::{Pending, Writer};
use crate::follower::Progress;

/// The event log on a NATS JetStream stream. Cheap to clone; the follower and the appender stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct NatsLog {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    follower: JoinHandle<()>,
    appender: JoinHandle<()>,
    queue: mpsc::Sender<Pending>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.follower.abort();
        self.appender.abort();
    }
}

impl NatsLog {
    /// Connects to NATS, finds or creates the stream, opens (or rebuilds) the local replica, and
    /// starts following the stream. Needs a Tokio runtime.
    pub async fn connect(config: NatsConfig) -> Result<NatsLog, StoreError> {
        let (client, stream) = stream::open(&config).await?;
        let replica = replica::open(&config, &stream).await?;
        let applied = replica.head().await?.position;
        let (progress_tx, progress) = watch::channel(Progress {
            applied,
            failed: None,
        });
        let follower = tokio::spawn(follower::run(
            client.clone(),
            stream.clone(),
            replica.clone(),
            progress_tx,
        ));
        let writer = Writer {
            config,
            client,
            stream,
            replica,
            progress,
            acked: Arc::new(AtomicU64::new(applied)),
        };
        let (queue, pending) = mpsc::channel(1024);
        let appender = tokio::spawn(writer.clone().run(pending));
        Ok(NatsLog {
            inner: Arc::new(Inner {
                writer,
                follower,
                appender,
                queue,
            }),
        })
    }

    pub fn config(&self) -> &NatsConfig {
        &self.inner.writer.config
    }

    fn replica(&self) -> &SledLog {
        &self.inner.writer.replica
    }

    /// Waits until the local replica holds every message the stream holds now, and answers with
    /// its head: what another server wrote is then readable here.
    pub async fn catch_up(&self) -> Result<Head, StoreError> {
        let last = self.inner.writer.stream_last().await?;
        self.inner.writer.applied(last).await?;
        self.replica().head().await
    }

    /// A read of the replica, asked once the replica holds every append this server
    /// acknowledged (`read` is called only then: some reads take what they answer when called).
    fn settled_then<'a, T: Send + 'a>(
        &'a self,
        read: impl FnOnce(&'a SledLog) -> BoxFuture<'a, Result<T, StoreError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        async move {
            self.inner.writer.settled().await?;
            read(self.replica()).await
        }
        .boxed()
    }

    /// Hands a request to the appender and waits for its answer.
    async fn submit(&self, request: Request) -> Result<(Answer, Head), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl EventLog for NatsLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        async move {
            let request = sequencer::precheck(request)?;
            match self.submit(Request::Append(request)).await? {
                (Answer::Append(result), _) => result,
                (Answer::Restore(_), _) => Err(StoreError::Storage("mismatched answer".into())),
            }
        }
        .boxed()
    }

    fn restore(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<RestoreOutcome, StoreError>> {
        async move {
            if records.len() > MAX_BATCH_EVENTS {
                return Err(StoreError::Limit(format!(
                    "{} records in one restore; the limit is {MAX_BATCH_EVENTS}, what one \
                     atomic batch on the stream may hold: split the restore",
                    records.len()
                )));
            }
            let records = sequencer::check_restore(records, MAX_BATCH_EVENTS)?;
            match self.submit(Request::Restore(records)).await? {
                (Answer::Restore(result), head) => Ok(RestoreOutcome {
                    restored: result?,
                    head,
                }),
                (Answer::Append(_), _) => Err(StoreError::Storage("mismatched answer".into())),
            }
        }
        .boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>> {
        self.settled_then(|replica| replica.head())
    }

    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
        self.settled_then(|replica| replica.read(request))
    }

    fn read_timeline(
        &self,
        timeline: TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>> {
        self.settled_then(move |replica| replica.read_timeline(timeline, from_version, limit))
    }

    fn event(&self, id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, StoreError>> {
        self.settled_then(move |replica| replica.event(id))
    }

    fn timeline_version(
        &self,
        timeline: TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        self.settled_then(|replica| replica.timeline_version(timeline))
    }

    fn registry(&self) -> BoxFuture<'_, Result<Arc<Registry>, StoreError>> {
        self.settled_then(|replica| replica.registry())
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        self.replica().subscribe(after, filter)
    }
}
