//! Writing sealed records to the stream: one message per record (its stored form), guarded by
//! the sequence the records continue, as one atomic batch when there are several.
//!
//! Headers (nats-server 2.12.1+, ADR-50 "JetStream Batch Publishing"; verified against 2.15.1):
//! - `Nats-Expected-Last-Sequence` on the only or first message: the stream stores nothing unless
//!   its last sequence is the plan's base, so the hash chain stays linear and positions gapless.
//! - `Nats-Msg-Id` = the event id on every message: JetStream refuses it again within the
//!   stream's duplicate window.
//! - `Nats-Batch-Id`, `Nats-Batch-Sequence` (1, 2, ...) on every message of a batch, and
//!   `Nats-Batch-Commit: 1` on the last: the server stores the whole batch or none of it. The
//!   first message is a request (the server answers an empty body, or an error), the middle ones
//!   are plain publishes, the last is a request answered by the publish ack.
//!
//! As the server behaves: a single publish retried with a stale expected sequence is refused for
//! the sequence (10071) before any duplicate check; a batch holding an id seen within the window
//! fails whole (10201). Either way the writer catches up and plans again, and the replica answers.

use std::time::Duration;

use async_nats::{Client, HeaderMap, Request, StatusCode};
use bytes::Bytes;
use chancery_domain::{EventId, Position, RecordedEvent};
use chancery_store::StoreError;
use serde::Deserialize;

use crate::stream::nats_error;

const MSG_ID: &str = "Nats-Msg-Id";
const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
pub const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// JetStream's error code for a failed `Nats-Expected-Last-Sequence`.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's error code for a batch holding a `Nats-Msg-Id` seen within the duplicate window.
const BATCH_DUPLICATE_MSG_ID: u64 = 10201;

/// What the stream said to a publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// Stored; the stream's sequence of the last message.
    Stored(Position),
    /// Not stored: another writer got there first (the stream moved past the plan's base), or an
    /// event id was published already. Catch up and plan again.
    Raced,
    /// Not stored, and trying again will not help (too large, batches not allowed, ...).
    Refused(StoreError),
}

/// A record to publish, and where it goes.
pub struct Outgoing<'a> {
    pub subject: String,
    pub record: &'a RecordedEvent,
}

/// Publishes records that continue the stream at sequence `base`.
///
/// An `Err` means the outcome is unknown (no answer, a lost connection): the records may have
/// been stored. Catching up and planning again tells: the plan then finds their ids.
pub async fn publish(
    client: &Client,
    records: &[Outgoing<'_>],
    base: Position,
    timeout: Duration,
) -> Result<Published, StoreError> {
    let Some((last, rest)) = records.split_last() else {
        return Ok(Published::Stored(base));
    };
    if rest.is_empty() {
        let mut headers = message_headers(last.record.id());
        headers.insert(EXPECTED_LAST_SEQUENCE, base.to_string());
        let reply = request(client, last, headers, timeout).await?;
        return ack(&reply);
    }
    let batch = EventId::new_v7().to_string();
    for (i, out) in rest.iter().enumerate() {
        let mut headers = message_headers(out.record.id());
        headers.insert(BATCH_ID, batch.as_str());
        headers.insert(BATCH_SEQUENCE, (i + 1).to_string());
        if i == 0 {
            headers.insert(EXPECTED_LAST_SEQUENCE, base.to_string());
            let reply = request(client, out, headers, timeout).await?;
            if !reply.payload.is_empty() {
                // The batch was refused at its start (an error, never an ack).
                return ack(&reply);
            }
        } else {
            client
                .publish_with_headers(out.subject.clone(), headers, payload(out))
                .await
                .map_err(|e| nats_error("publishing a batch failed, the outcome is unknown", e))?;
        }
    }
    let mut headers = message_headers(last.record.id());
    headers.insert(BATCH_ID, batch.as_str());
    headers.insert(BATCH_SEQUENCE, records.len().to_string());
    headers.insert(BATCH_COMMIT, "1");
    let reply = request(client, last, headers, timeout).await?;
    ack(&reply)
}

fn message_headers(id: EventId) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, id.to_string());
    headers
}

fn payload(out: &Outgoing<'_>) -> Bytes {
    Bytes::copy_from_slice(out.record.stored())
}

async fn request(
    client: &Client,
    out: &Outgoing<'_>,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<async_nats::Message, StoreError> {
    let reply = client
        .send_request(
            out.subject.clone(),
            Request::new()
                .headers(headers)
                .payload(payload(out))
                .timeout(Some(timeout)),
        )
        .await
        .map_err(|e| nats_error("no answer to a publish, the outcome is unknown", e))?;
    if reply.status == Some(StatusCode::NO_RESPONDERS) {
        return Err(StoreError::Storage(format!(
            "NATS: no stream takes subject {}",
            out.subject
        )));
    }
    Ok(reply)
}

#[derive(Deserialize)]
struct Ack {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    error: Option<AckError>,
}

#[derive(Deserialize)]
struct AckError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

fn ack(reply: &async_nats::Message) -> Result<Published, StoreError> {
    let ack: Ack = serde_json::from_slice(&reply.payload).map_err(|e| {
        StoreError::Storage(format!(
            "NATS: a publish was answered with {:?}, not an acknowledgement ({e}); the outcome \
             is unknown",
            String::from_utf8_lossy(&reply.payload)
        ))
    })?;
    match ack.error {
        Some(e) if e.err_code == WRONG_LAST_SEQUENCE || e.err_code == BATCH_DUPLICATE_MSG_ID => {
            Ok(Published::Raced)
        }
        Some(e) => Ok(Published::Refused(StoreError::Storage(format!(
            "NATS: the stream refused the append: {} (error {}); nothing was written",
            e.description, e.err_code
        )))),
        // An id within the duplicate window: the plan was made on an outdated replica.
        None if ack.duplicate => Ok(Published::Raced),
        None => Ok(Published::Stored(ack.seq)),
    }
}
