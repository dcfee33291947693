//! The event log on NATS JetStream: Chancery's backend for several servers sharing one log.
//!
//! - **The stream** ([`stream`]): one JetStream stream on files, subjects
//!   `<prefix>.<timeline>`, nothing else on it, so its sequence is the log's position. Each
//!   message is one record's stored bytes, exactly as the sled backend stores them.
//! - **The replica** ([`replica`], [`follower`]): each [`NatsLog`] keeps a local sled log fed by
//!   an ordered consumer through `SledLog::restore`, which checks every record. Every read and
//!   subscription is served from it.
//! - **Appends** ([`publish`]): wait until the replica holds the stream's last message, plan the
//!   append against it with the sled backend's own rules (`SledLog::plan_append`: validation,
//!   expected version, idempotency, sealing with positions and the hash chain), publish the
//!   records on the condition that the stream's last sequence is still the plan's base, and
//!   answer once the stream acknowledged them *and* the replica applied them. A writer that lost
//!   the race catches up and plans again.

pub mod config;
mod follower;
mod publish;
mod replica;
mod stream;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::stream::Stream;
use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{EventId, Position, RecordedEvent, Registry, TimelineSlug};
use chancery_store::{
    AppendOutcome, AppendRequest, EventFilter, EventLog, EventStream, Head, RawRecord, ReadRequest,
    RestoreOutcome, StoreError,
};
use chancery_store_sled::{Plan, SledLog};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

pub use crate::config::NatsConfig;
pub use crate::stream::MIN_SERVER_VERSION;

use crate::follower::Progress;
use crate::publish::{Outgoing, Published};

/// The event log on a NATS JetStream stream. Cheap to clone; the follower stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct NatsLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: NatsConfig,
    client: Client,
    stream: Stream,
    replica: SledLog,
    progress: watch::Receiver<Progress>,
    follower: JoinHandle<()>,
    /// Appends of this server take turns: planned side by side, all but one would lose the race.
    writing: Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.follower.abort();
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
        Ok(NatsLog {
            inner: Arc::new(Inner {
                config,
                client,
                stream,
                replica,
                progress,
                follower,
                writing: Mutex::new(()),
            }),
        })
    }

    pub fn config(&self) -> &NatsConfig {
        &self.inner.config
    }

    /// Waits until the local replica holds every message the stream holds now, and answers with
    /// its head: what another server wrote is then readable here.
    pub async fn catch_up(&self) -> Result<Head, StoreError> {
        let last = self.stream_last().await?;
        self.applied(last).await?;
        self.inner.replica.head().await
    }

    /// Asks the stream for its last sequence. Bounded by the publish timeout rather than the
    /// connection's request timeout: while a replicated stream elects a new leader the request
    /// goes unanswered, and a writer does better to ask again than to wait the full timeout.
    async fn stream_last(&self) -> Result<Position, StoreError> {
        let limit = self.inner.config.publish_timeout;
        let asked = tokio::time::timeout(limit, self.inner.stream.get_info()).await;
        let info = match asked {
            Err(_) => {
                return Err(StoreError::Storage(format!(
                    "stream {} did not say its last sequence within {limit:?}",
                    self.stream()
                )));
            }
            Ok(answer) => answer.map_err(|e| {
                stream::nats_error(&format!("cannot read stream {}", self.stream()), e)
            })?,
        };
        Ok(info.state.last_sequence)
    }

    fn stream(&self) -> &str {
        &self.inner.config.stream
    }

    /// Waits until the replica has applied `position`, or has stopped.
    async fn applied(&self, position: Position) -> Result<(), StoreError> {
        let mut progress = self.inner.progress.clone();
        let reached = tokio::time::timeout(
            self.inner.config.timeout,
            progress.wait_for(|p| p.applied >= position || p.failed.is_some()),
        )
        .await;
        let failed = match reached {
            Err(_) => {
                let at = self.inner.progress.borrow().applied;
                return Err(StoreError::Storage(format!(
                    "the local replica did not reach position {position} of stream {} within \
                     {:?} (it is at {at})",
                    self.stream(),
                    self.inner.config.timeout
                )));
            }
            Ok(Err(_)) => return Err(StoreError::Closed),
            Ok(Ok(p)) => p.failed.clone(),
        };
        failed.map_or(Ok(()), Err)
    }

    /// Plans against an up-to-date replica and publishes, until the plan wins the race to the
    /// stream or there is nothing to write.
    async fn write<F, Fut>(
        &self,
        plan: F,
        subject: impl Fn(&RecordedEvent) -> String,
    ) -> Result<Plan, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Plan, StoreError>>,
    {
        let config = &self.inner.config;
        // The error of a publish whose answer was lost: until a plan tells, it may have landed.
        let mut unknown: Option<StoreError> = None;
        let fail = |unknown: &Option<StoreError>, e: StoreError| match (unknown, e) {
            (Some(_), StoreError::Storage(why)) => outcome_unknown(StoreError::Storage(why)),
            (_, e) => e,
        };
        let attempts = config.max_attempts.max(1);
        let started = tokio::time::Instant::now();
        for attempt in 0..attempts {
            let last = match self.stream_last().await {
                Ok(last) => last,
                // A stream between leaders answers again within a few seconds: ask again.
                Err(StoreError::Storage(why))
                    if attempt + 1 < attempts && started.elapsed() < config.timeout =>
                {
                    tracing::debug!(attempt, %why, "stream unavailable; retrying");
                    back_off(attempt).await;
                    continue;
                }
                Err(e) => return Err(fail(&unknown, e)),
            };
            self.applied(last).await.map_err(|e| fail(&unknown, e))?;
            let mut plan = plan().await?;
            if plan.records.is_empty() {
                // After a publish that went unanswered, finding every event already written
                // means that publish landed: this append wrote them, it did not find them.
                if unknown.is_some() {
                    plan.outcome.deduplicated = false;
                }
                return Ok(plan);
            }
            let outgoing: Vec<Outgoing<'_>> = plan
                .records
                .iter()
                .map(|(record, bytes)| Outgoing {
                    subject: subject(record),
                    record,
                    bytes,
                })
                .collect();
            let base = plan.base.position;
            match publish::publish(&self.inner.client, &outgoing, base, config.publish_timeout)
                .await
            {
                Ok(Published::Stored(last)) => {
                    let planned = base + plan.records.len() as Position;
                    if last != planned {
                        return Err(StoreError::Corrupt {
                            position: Some(last),
                            detail: format!(
                                "stream {} stored the append up to sequence {last}, where the \
                                 plan said {planned}: the server ignored the expected sequence",
                                self.stream()
                            ),
                        });
                    }
                    return match self.applied(last).await {
                        Ok(()) => Ok(plan),
                        Err(StoreError::Storage(why)) => Err(StoreError::Storage(format!(
                            "the append is stored at positions {} to {last}, but {why}; a \
                             retry with the same event ids answers with them",
                            base + 1
                        ))),
                        Err(e) => Err(e),
                    };
                }
                Ok(Published::Refused(e)) => return Err(e),
                Ok(Published::Raced) => {}
                Err(e) => unknown = Some(e),
            }
            drop(outgoing);
            back_off(attempt).await;
        }
        Err(match unknown {
            Some(e) => outcome_unknown(e),
            None => StoreError::Storage(format!(
                "other writers kept appending to stream {} first, {} times in a row; nothing \
                 was written",
                self.stream(),
                config.max_attempts
            )),
        })
    }
}

fn outcome_unknown(e: StoreError) -> StoreError {
    StoreError::Storage(format!(
        "{e}; an earlier publish of this append went unanswered, so the outcome is unknown: \
         retry with the same event ids"
    ))
}

/// After a lost race, the first retry goes at once (the winner's records are already on their
/// way); later ones wait a little, at random, so that two writers do not keep colliding.
async fn back_off(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let ceiling = 1u64 << attempt.min(5);
    let jitter = RandomState::new().hash_one(attempt) % (ceiling * 1000);
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}

impl EventLog for NatsLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        async move {
            let _turn = self.inner.writing.lock().await;
            let subject = self.inner.config.subject(&request.timeline);
            let replica = &self.inner.replica;
            let plan = self
                .write(|| replica.plan_append(request.clone()), |_| subject.clone())
                .await?;
            Ok(plan.outcome)
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
            let _turn = self.inner.writing.lock().await;
            let replica = &self.inner.replica;
            let config = &self.inner.config;
            let plan = self
                .write(
                    || replica.plan_restore(records.clone()),
                    |record| config.subject(&record.event.timeline),
                )
                .await?;
            let head = match plan.records.last() {
                Some((last, _)) => Head {
                    position: last.position,
                    hash: last.hash,
                    recorded_at: Some(last.recorded_at),
                },
                None => replica.head().await?,
            };
            Ok(RestoreOutcome {
                restored: plan.records.len() as u64,
                head,
            })
        }
        .boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>> {
        self.inner.replica.head()
    }

    fn read(
        &self,
        request: ReadRequest,
    ) -> BoxFuture<'_, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        self.inner.replica.read(request)
    }

    fn read_timeline(
        &self,
        timeline: TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<RecordedEvent>>, StoreError>> {
        self.inner
            .replica
            .read_timeline(timeline, from_version, limit)
    }

    fn read_raw(
        &self,
        from: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RawRecord>, StoreError>> {
        self.inner.replica.read_raw(from, limit)
    }

    fn event(&self, id: EventId) -> BoxFuture<'_, Result<Option<Arc<RecordedEvent>>, StoreError>> {
        self.inner.replica.event(id)
    }

    fn timeline_version(
        &self,
        timeline: TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        self.inner.replica.timeline_version(timeline)
    }

    fn registry(&self) -> BoxFuture<'_, Result<Arc<Registry>, StoreError>> {
        self.inner.replica.registry()
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        self.inner.replica.subscribe(after, filter)
    }
}
