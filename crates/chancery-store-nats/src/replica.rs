//! The local replica: a sled log in a directory of its own, a copy of the stream that serves
//! reads and subscriptions. Its durability lies in the stream, so it skips `fdatasync`; a
//! replica that lost its last writes in a crash just fetches them again.
//!
//! A replica is used only if its last record is byte for byte the stream's message at that
//! sequence: since every record chains to the one before it, that vouches for all of it. One that
//! does not match (another stream, a stream recreated) is deleted and rebuilt from position 1.
//! The directory carries a marker file, so that only a directory this backend made is ever
//! deleted, never a sled log that happens to be there.

use std::path::Path;

use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use chancery_domain::decode_record;
use chancery_store::{EventLog, StoreError};
use chancery_store_sled::{SledConfig, SledLog};

use crate::config::NatsConfig;
use crate::stream::nats_error;

/// The marker file of a replica directory.
const MARKER: &str = "CHANCERY-NATS-REPLICA";

/// Opens the replica in `config.replica_dir`, rebuilding it when it does not match `stream`.
pub async fn open(config: &NatsConfig, stream: &Stream) -> Result<SledLog, StoreError> {
    let replica = open_dir(config).await?;
    let Some(mismatch) = mismatch(&replica, stream).await? else {
        return Ok(replica);
    };
    tracing::warn!(
        replica = %config.replica_dir.display(),
        stream = config.stream,
        "the local replica does not match the stream ({mismatch}): rebuilding it from position 1"
    );
    drop(replica);
    let dir = config.replica_dir.clone();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
        .await
        .map_err(|e| StoreError::Storage(format!("the replica's removal failed: {e}")))?
        .map_err(|e| {
            StoreError::Storage(format!(
                "cannot remove the mismatched replica in {}: {e}",
                config.replica_dir.display()
            ))
        })?;
    open_dir(config).await
}

async fn open_dir(config: &NatsConfig) -> Result<SledLog, StoreError> {
    let dir = config.replica_dir.clone();
    let sled_config = SledConfig {
        live_buffer: config.live_buffer,
        ..SledConfig::unsynced()
    };
    let stream = config.stream.clone();
    tokio::task::spawn_blocking(move || {
        claim(&dir, &stream)?;
        SledLog::open(&dir, sled_config)
    })
    .await
    .map_err(|e| StoreError::Storage(format!("opening the replica failed: {e}")))?
}

/// Makes sure `dir` is a replica directory: marks an empty or new one, refuses anything else.
fn claim(dir: &Path, stream: &str) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Storage(format!("{}: {e}", dir.display()));
    let marker = dir.join(MARKER);
    if marker.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    if std::fs::read_dir(dir).map_err(io)?.next().is_some() {
        return Err(StoreError::Storage(format!(
            "{} is not empty and is not a NATS replica: give the replica a directory of its own",
            dir.display()
        )));
    }
    std::fs::write(
        &marker,
        format!("The local replica of NATS stream {stream}; safe to delete: it is rebuilt.\n"),
    )
    .map_err(io)
}

/// Why the replica cannot be used with this stream, if it cannot.
async fn mismatch(replica: &SledLog, stream: &Stream) -> Result<Option<String>, StoreError> {
    let head = replica.head().await?;
    if head.position == 0 {
        return Ok(None);
    }
    let theirs = match stream.get_raw_message(head.position).await {
        Ok(message) => message.payload,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(Some(format!(
                "the stream has no message at position {}, the replica's head",
                head.position
            )));
        }
        Err(e) => return Err(nats_error("cannot read the stream", e)),
    };
    // The stream's message may be in an older stored form than the replica's: their hashes say
    // whether they are the same record.
    let their_hash = match decode_record(&theirs).and_then(|r| r.verify()) {
        Ok(hash) if hash == head.hash => return Ok(None),
        Ok(hash) => hash.to_string(),
        Err(e) => format!("none ({e})"),
    };
    Ok(Some(format!(
        "at position {} the replica's record has hash {} and the stream's message {their_hash}",
        head.position, head.hash
    )))
}
