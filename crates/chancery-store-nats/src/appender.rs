//! The appender: one task per server that writes to the stream in groups. Appends and restores
//! queue on a channel; the task takes every request waiting (up to what one atomic batch may
//! hold), has the sequencer check and seal the whole group against a snapshot of the local
//! replica, and publishes the group's records as one atomic batch guarded by the sequence they
//! continue. One round of the stream serves every request of the group, as one `fdatasync`
//! serves a group of the embedded log.
//!
//! An append is answered as soon as the stream acknowledged its group: the group is kept
//! (`ahead`) until the replica applies it, the next group is sealed against the replica with the
//! kept groups on top, and reads wait for the replica to hold what was acknowledged. At most
//! [`MAX_UNAPPLIED`] groups are kept; past that the appender waits for the replica.
//!
//! If the stream has moved past the replica (another server appended first), it refuses the
//! batch whole; the task then reads the stream's last sequence, waits until the replica holds
//! it, and seals the group again (an expected version or an id may now answer differently). Each
//! request gets its own answer: a request the sequencer refused leaves the others to go on.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_nats::Client;
use async_nats::jetstream::stream::Stream;
use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{Position, Timestamp};
use chancery_store::sequencer::{self, Answer, LogState, Request};
use chancery_store::{Head, StoreError};
use chancery_store_sled::SledLog;
use tokio::sync::{mpsc, oneshot, watch};

use crate::ahead::{Ahead, Unapplied};
use crate::config::NatsConfig;
use crate::follower::Progress;
use crate::publish::{self, Outgoing, Published};
use crate::stream;

/// A request waiting for its group, and where its answer goes.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Result<(Answer, Head), StoreError>>,
}

impl Pending {
    fn events(&self) -> usize {
        match &self.request {
            Request::Append(r) => r.events.len(),
            Request::Restore(r) => r.len(),
        }
    }
}

/// What writing to the stream needs: shared by the appender task and the log's own catch-up.
#[derive(Clone)]
pub struct Writer {
    pub config: NatsConfig,
    pub client: Client,
    pub stream: Stream,
    pub replica: SledLog,
    pub progress: watch::Receiver<Progress>,
    /// The last position this server's appends were acknowledged up to.
    pub acked: Arc<AtomicU64>,
}

/// Acknowledged groups kept for the replica to apply, at most; then the appender waits for it.
const MAX_UNAPPLIED: usize = 16;

impl Writer {
    /// Asks the stream for its last sequence. Bounded by the publish timeout rather than the
    /// connection's request timeout: while a replicated stream elects a new leader the request
    /// goes unanswered, and a writer does better to ask again than to wait the full timeout.
    pub async fn stream_last(&self) -> Result<Position, StoreError> {
        let limit = self.config.publish_timeout;
        let asked = tokio::time::timeout(limit, self.stream.get_info()).await;
        let info = match asked {
            Err(_) => {
                return Err(StoreError::Storage(format!(
                    "stream {} did not say its last sequence within {limit:?}",
                    self.config.stream
                )));
            }
            Ok(answer) => answer.map_err(|e| {
                stream::nats_error(&format!("cannot read stream {}", self.config.stream), e)
            })?,
        };
        Ok(info.state.last_sequence)
    }

    /// Waits until the replica has applied `position`, or has stopped.
    pub async fn applied(&self, position: Position) -> Result<(), StoreError> {
        let mut progress = self.progress.clone();
        let reached = tokio::time::timeout(
            self.config.timeout,
            progress.wait_for(|p| p.applied >= position || p.failed.is_some()),
        )
        .await;
        let failed = match reached {
            Err(_) => {
                let at = self.progress.borrow().applied;
                return Err(StoreError::Storage(format!(
                    "the local replica did not reach position {position} of stream {} within \
                     {:?} (it is at {at})",
                    self.config.stream, self.config.timeout
                )));
            }
            Ok(Err(_)) => return Err(StoreError::Closed),
            Ok(Ok(p)) => p.failed.clone(),
        };
        failed.map_or(Ok(()), Err)
    }

    /// Waits until the replica holds every append this server acknowledged: reads wait for it,
    /// so that a caller reads its own writes. Free when the replica is there already.
    pub async fn settled(&self) -> Result<(), StoreError> {
        let acked = self.acked.load(Ordering::Acquire);
        if self.progress.borrow().applied >= acked {
            return Ok(());
        }
        self.applied(acked).await
    }

    /// Takes groups of requests from the queue and writes them, until the queue closes.
    pub async fn run(self, mut queue: mpsc::Receiver<Pending>) {
        let mut carried: Option<Pending> = None;
        let mut unapplied: Vec<Unapplied> = Vec::new();
        loop {
            let first = match carried.take() {
                Some(p) => p,
                None => match queue.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            let mut events = first.events();
            let mut group = vec![first];
            // What one atomic batch may hold; a request that would not fit waits for the next.
            while events < MAX_BATCH_EVENTS {
                match queue.try_recv() {
                    Ok(next) if events + next.events() <= MAX_BATCH_EVENTS => {
                        events += next.events();
                        group.push(next);
                    }
                    Ok(next) => {
                        carried = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let (requests, replies): (Vec<Request>, Vec<_>) =
                group.into_iter().map(|p| (p.request, p.reply)).unzip();
            match self.write(requests, &mut unapplied).await {
                Ok((answers, head)) => {
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        drop(reply.send(Ok((answer, head))));
                    }
                }
                Err(error) => {
                    for reply in replies {
                        drop(reply.send(Err(error.clone())));
                    }
                }
            }
        }
    }

    /// Seals a group against an up-to-date replica and publishes it, until it wins the race to
    /// the stream or there is nothing to write; answers what each request gets.
    async fn write(
        &self,
        requests: Vec<Request>,
        unapplied: &mut Vec<Unapplied>,
    ) -> Result<(Vec<Answer>, Head), StoreError> {
        let config = &self.config;
        // Publishes whose answer was lost: until a sealing tells, they may have landed.
        let mut unknown: Option<LostPublish> = None;
        let fail = |unknown: &Option<LostPublish>, e: StoreError| match (unknown, e) {
            (Some(_), StoreError::Storage(why)) => outcome_unknown(StoreError::Storage(why)),
            (_, e) => e,
        };
        let attempts = config.max_attempts.max(1);
        let started = tokio::time::Instant::now();
        // The first sealing of a group goes on the local replica as it is (with this server's
        // acknowledged groups on top), without asking the stream where it is: the publish is
        // guarded by the sequence it continues, so a stored batch proves that view was current,
        // and a view behind the stream costs one refused batch. A writer the stream has not moved
        // past saves a round trip per group.
        let mut trust_replica = true;
        let mut attempt = 0;
        while attempt < attempts {
            if trust_replica {
                let failed = self.progress.borrow().failed.clone();
                if let Some(e) = failed {
                    return Err(e);
                }
            } else {
                let last = match self.stream_last().await {
                    Ok(last) => last,
                    // A stream between leaders answers again within a few seconds: ask again.
                    Err(StoreError::Storage(why))
                        if attempt + 1 < attempts && started.elapsed() < config.timeout =>
                    {
                        tracing::debug!(attempt, %why, "stream unavailable; retrying");
                        back_off(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    Err(e) => return Err(fail(&unknown, e)),
                };
                self.applied(last).await.map_err(|e| fail(&unknown, e))?;
            }
            if unapplied.len() >= MAX_UNAPPLIED {
                let oldest = unapplied.first().map_or(0, Unapplied::head);
                self.applied(oldest).await.map_err(|e| fail(&unknown, e))?;
            }
            let now = Timestamp::from_system_time(SystemTime::now());
            let mut sealed = {
                let replica = self.replica.snapshot();
                // Groups the snapshot holds whole are the replica's now. Those left continue one
                // another up to the last acknowledgement, and any other server's append lies
                // past them, where the publish's guard refuses a group sealed without it.
                let replica_head = LogState::head(&replica).position;
                unapplied.retain(|g| g.head() > replica_head);
                let view = Ahead {
                    replica: &replica,
                    unapplied,
                };
                sequencer::sequence(&view, copy_of(&requests), now)
            };
            let mut answers = std::mem::take(&mut sealed.answers);
            if sealed.records.is_empty() {
                // Nothing to publish, so no guard to prove the replica current: refusals and
                // events found already written are answered from a replica known to hold the
                // stream's last message.
                if trust_replica {
                    trust_replica = false;
                    continue;
                }
                // After a publish that went unanswered, events found past where it continued the
                // stream mean that it landed: these appends wrote them, they did not find them.
                // Events found at or before it were in the log before, as a resent append finds
                // them.
                if let Some(lost) = &unknown {
                    written_by_lost_publish(&mut answers, lost.since);
                }
                return Ok((answers, sealed.head));
            }
            let outgoing: Vec<Outgoing<'_>> = sealed
                .records
                .iter()
                .map(|record| Outgoing {
                    subject: config.subject_of(record.view().map_or("", |v| v.timeline)),
                    record,
                })
                .collect();
            let base = sealed.base.position;
            match publish::publish(&self.client, &outgoing, base, config.publish_timeout).await {
                Ok(Published::Stored(last)) => {
                    let planned = base + sealed.records.len() as Position;
                    if last != planned {
                        return Err(StoreError::Corrupt {
                            position: Some(last),
                            detail: format!(
                                "stream {} stored the append up to sequence {last}, where the \
                                 plan said {planned}: the server ignored the expected sequence",
                                config.stream
                            ),
                        });
                    }
                    drop(outgoing);
                    self.acked.fetch_max(last, Ordering::AcqRel);
                    let head = sealed.head;
                    unapplied.push(Unapplied::of(sealed));
                    return Ok((answers, head));
                }
                Ok(Published::Refused(e)) => return Err(e),
                Ok(Published::Raced) => {}
                Err(error) => {
                    let since = unknown.as_ref().map_or(base, |lost| lost.since.min(base));
                    unknown = Some(LostPublish { error, since });
                }
            }
            drop(outgoing);
            trust_replica = false;
            back_off(attempt).await;
            attempt += 1;
        }
        Err(match unknown {
            Some(lost) => outcome_unknown(lost.error),
            None => StoreError::Storage(format!(
                "other writers kept appending to stream {} first, {} times in a row; nothing \
                 was written",
                config.stream, config.max_attempts
            )),
        })
    }
}

/// Publishes of one append whose answers were lost.
struct LostPublish {
    /// The last one's error.
    error: StoreError,
    /// Where the earliest continued the stream: they can only have stored records past it, so
    /// events found at or before it were in the log before them.
    since: Position,
}

/// Marks as written, not found, the appends whose events lie past `since`, where a publish whose
/// answer was lost continued the stream: that publish stored them.
fn written_by_lost_publish(answers: &mut [Answer], since: Position) {
    for answer in answers {
        if let Answer::Append(Ok(outcome)) = answer {
            if outcome.events.first().is_some_and(|e| e.position > since) {
                outcome.deduplicated = false;
            }
        }
    }
}

/// The requests again, for another sealing (the records are shared, not copied).
fn copy_of(requests: &[Request]) -> Vec<Request> {
    requests
        .iter()
        .map(|r| match r {
            Request::Append(a) => Request::Append(a.clone()),
            Request::Restore(records) => Request::Restore(records.clone()),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use chancery_domain::EventId;
    use chancery_store::{AppendOutcome, Appended};

    use super::*;

    fn found_at(position: Position) -> Answer {
        Answer::Append(Ok(AppendOutcome {
            events: vec![Appended {
                id: EventId::new_v7(),
                position,
                version: 1,
            }],
            deduplicated: true,
            records: Vec::new(),
        }))
    }

    fn deduplicated(answer: &Answer) -> bool {
        matches!(answer, Answer::Append(Ok(outcome)) if outcome.deduplicated)
    }

    #[test]
    fn events_past_a_lost_publish_were_written_by_it_and_those_before_it_were_found() {
        // A publish continuing the stream at 86 went unanswered: an event found at 86 was there
        // before it (a resent append), one found at 87 is what that publish stored.
        let mut answers = vec![found_at(86), found_at(87)];
        written_by_lost_publish(&mut answers, 86);
        assert!(
            deduplicated(&answers[0]),
            "the event at 86 predates the lost publish"
        );
        assert!(
            !deduplicated(&answers[1]),
            "the lost publish stored the event at 87"
        );
    }
}
