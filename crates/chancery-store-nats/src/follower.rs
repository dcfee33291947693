//! The follower: one task that feeds the local replica from the stream. An ordered consumer
//! delivers messages from the replica's head + 1 on; each run of messages at hand goes to the
//! replica in one `restore`, which checks every record (hash, chain, position, version,
//! validity) before writing it, and then feeds the replica's subscribers.
//!
//! An atomic batch is applied whole: the stream keeps each message's batch headers, and messages
//! wait until the one that commits their batch has arrived, so that no read on this server sees
//! half of another server's append (JetStream consumers may deliver a batch in parts).
//!
//! A message that is not the next record of the log stops the follower for good: the stream is
//! not a Chancery log, or not this one, and appends say so. A lost connection or a consumer that
//! went away only pauses it: it starts a new consumer from where the replica is.

use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::stream::Stream;
use chancery_domain::Position;
use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_store::{EventLog, StoreError};
use chancery_store_sled::SledLog;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::publish;

/// Messages handed to the replica at once, at most: room for two whole atomic batches, so that
/// one that started in a run can always finish in it.
const CHUNK: usize = 2 * MAX_BATCH_EVENTS;

/// How far the replica has applied the stream, and why it stopped if it did.
#[derive(Debug, Clone)]
pub struct Progress {
    pub applied: Position,
    pub failed: Option<StoreError>,
}

enum Stop {
    /// The replica cannot go on with this stream.
    Fatal(StoreError),
    /// NATS is unreachable or the consumer went away: start again from the replica's head.
    Pause(String),
}

fn pause(e: impl std::fmt::Display) -> Stop {
    Stop::Pause(e.to_string())
}

/// Feeds `replica` from `stream` until it hits something it cannot apply, publishing progress.
pub async fn run(
    client: Client,
    stream: Stream,
    replica: SledLog,
    progress: watch::Sender<Progress>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let from = progress.borrow().applied + 1;
        match follow(&client, &stream, &replica, &progress, from).await {
            Stop::Fatal(e) => {
                tracing::error!(stream = stream.cached_info().config.name, "{e}");
                progress.send_modify(|p| p.failed = Some(e));
                return;
            }
            Stop::Pause(why) => {
                tracing::warn!(
                    stream = stream.cached_info().config.name,
                    "following the stream paused at position {}: {why}",
                    progress.borrow().applied
                );
            }
        }
        // Pacing the retries while NATS is away, not waiting for anything to happen.
        tokio::time::sleep(backoff).await;
        let went_on = progress.borrow().applied >= from;
        backoff = if went_on {
            Duration::from_millis(50)
        } else {
            (backoff * 2).min(Duration::from_secs(2))
        };
    }
}

async fn follow(
    client: &Client,
    stream: &Stream,
    replica: &SledLog,
    progress: &watch::Sender<Progress>,
    from: Position,
) -> Stop {
    let consumer = match stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..OrderedConfig::default()
        })
        .await
    {
        Ok(consumer) => consumer,
        Err(e) => return pause(format!("cannot create a consumer: {e}")),
    };
    let mut messages = match consumer.messages().await {
        Ok(messages) => messages,
        Err(e) => return pause(format!("cannot subscribe: {e}")),
    };
    let mut pending = Vec::new();
    loop {
        let mut stop = None;
        match messages.next().await {
            Some(Ok(message)) => pending.push(message),
            Some(Err(e)) => return pause(e),
            None => return pause("the consumer ended"),
        }
        while pending.len() < CHUNK {
            match messages.next().now_or_never() {
                Some(Some(Ok(message))) => pending.push(message),
                Some(Some(Err(e))) => {
                    stop = Some(pause(e));
                    break;
                }
                Some(None) => {
                    stop = Some(pause("the consumer ended"));
                    break;
                }
                None => break,
            }
        }
        let whole = pending.iter().rposition(ends_a_unit).map_or(0, |i| i + 1);
        if whole == 0 && pending.len() >= CHUNK {
            return Stop::Fatal(StoreError::Corrupt {
                position: Some(progress.borrow().applied + 1),
                detail: format!(
                    "the stream holds an atomic batch of more than {CHUNK} messages, or one \
                     that was never committed"
                ),
            });
        }
        let rest = pending.split_off(whole);
        if let Err(e) = apply(replica, progress, std::mem::replace(&mut pending, rest)).await {
            return e;
        }
        if let Some(stop) = stop {
            return stop;
        }
    }
}

/// Whether the replica may show everything up to this message: it is on its own, or it commits
/// its atomic batch.
fn ends_a_unit(message: &async_nats::jetstream::Message) -> bool {
    message.headers.as_ref().is_none_or(|headers| {
        headers.get(publish::BATCH_ID).is_none() || headers.get(publish::BATCH_COMMIT).is_some()
    })
}

async fn apply(
    replica: &SledLog,
    progress: &watch::Sender<Progress>,
    batch: Vec<async_nats::jetstream::Message>,
) -> Result<(), Stop> {
    let applied = progress.borrow().applied;
    let mut next = applied + 1;
    let mut records = Vec::with_capacity(batch.len());
    for message in batch {
        let sequence = message.info().map_err(pause)?.stream_sequence;
        if sequence < next {
            // Delivered again after the consumer was recreated.
            continue;
        }
        if sequence > next {
            return Err(Stop::Fatal(StoreError::Corrupt {
                position: Some(next),
                detail: format!(
                    "the stream has no message at sequence {next} (the next is {sequence}): \
                     messages were deleted, so the log has a gap"
                ),
            }));
        }
        records.push(message.message.payload.to_vec());
        next += 1;
    }
    if records.is_empty() {
        return Ok(());
    }
    let first = applied + 1;
    match replica.restore(records).await {
        Ok(outcome) => {
            progress.send_modify(|p| p.applied = outcome.head.position);
            Ok(())
        }
        Err(e @ (StoreError::Storage(_) | StoreError::StorageFull(_))) => {
            Err(pause(format!("the replica cannot write: {e}")))
        }
        Err(StoreError::Closed) => Err(Stop::Fatal(StoreError::Closed)),
        Err(e) => Err(Stop::Fatal(StoreError::Corrupt {
            position: Some(first),
            detail: format!(
                "the stream's messages from sequence {first} on are not records that continue \
                 this log ({e}); the local replica stops there"
            ),
        })),
    }
}
