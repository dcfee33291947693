//! Connecting to NATS and setting up the log's stream: the server must be recent enough, and the
//! stream must hold our subjects only, on files, with atomic batches allowed.

use async_nats::jetstream::context::ContextBuilder;
use async_nats::jetstream::stream::{
    Config, DiscardPolicy, PersistenceMode, RetentionPolicy, StorageType, Stream,
};
use async_nats::{Client, ConnectOptions};
use chancery_store::StoreError;

use crate::config::NatsConfig;

/// The oldest nats-server that keeps the log's promises: atomic batch publish appeared in 2.12.0,
/// which refused `Nats-Msg-Id` in a batch (error 10177) until 2.12.1; and 2.9 let concurrent
/// writers with conflicting expected sequences both in on replicated streams.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 12, 1);

pub fn nats_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(format!("NATS: {what}: {e}"))
}

/// Connects, checks the server's version, and finds or creates the stream.
pub async fn open(config: &NatsConfig) -> Result<(Client, Stream), StoreError> {
    if config.servers.is_empty() {
        return Err(StoreError::Storage(
            "NATS: no server to connect to was configured".into(),
        ));
    }
    let client = ConnectOptions::new()
        .name("chancery")
        .connection_timeout(config.timeout)
        .request_timeout(Some(config.timeout))
        .connect(config.servers.clone())
        .await
        .map_err(|e| {
            nats_error(
                &format!("cannot connect to {}", config.servers.join(", ")),
                e,
            )
        })?;
    check_version(&client.server_info().version)?;
    let jetstream = ContextBuilder::new()
        .timeout(config.timeout)
        .build(client.clone());
    let stream = jetstream
        .get_or_create_stream(stream_config(config))
        .await
        .map_err(|e| nats_error(&format!("cannot open stream {}", config.stream), e))?;
    check_stream(stream.cached_info().config.clone(), config)?;
    Ok((client, stream))
}

fn stream_config(config: &NatsConfig) -> Config {
    Config {
        name: config.stream.clone(),
        description: Some("Chancery's event log: one message per event, in log order".into()),
        subjects: vec![config.subjects()],
        storage: StorageType::File,
        num_replicas: config.replicas.max(1),
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        duplicate_window: config.duplicate_window,
        allow_atomic_publish: true,
        // The log is append-only: a deleted or purged message would leave a gap in the positions.
        deny_delete: true,
        deny_purge: true,
        // Acknowledge only what is stored (with the server's `sync_interval: always`, synced).
        persist_mode: Some(PersistenceMode::Default),
        ..Config::default()
    }
}

/// Refuses a stream (made by someone else, or by an older setup) that would break the log.
fn check_stream(found: Config, config: &NatsConfig) -> Result<(), StoreError> {
    let refuse = |why: String| {
        Err(StoreError::Storage(format!(
            "NATS: stream {} cannot hold the log: {why}",
            config.stream
        )))
    };
    if found.subjects != [config.subjects()] {
        return refuse(format!(
            "it holds subjects {:?}, but its sequence is the log's position only if it holds {} alone",
            found.subjects,
            config.subjects()
        ));
    }
    if !found.allow_atomic_publish {
        return refuse("atomic batch publish is off (set allow_atomic on the stream)".into());
    }
    if found.storage != StorageType::File {
        return refuse("it is kept in memory, not on files".into());
    }
    if found.persist_mode == Some(PersistenceMode::Async) {
        return refuse("its persist mode is async: it acknowledges before storing".into());
    }
    Ok(())
}

/// Refuses servers older than [`MIN_SERVER_VERSION`].
pub fn check_version(version: &str) -> Result<(), StoreError> {
    let numbers: Vec<Option<u64>> = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().ok())
        .collect();
    let parsed = match numbers[..] {
        [Some(major), Some(minor), Some(patch)] => Some((major, minor, patch)),
        _ => None,
    };
    match parsed {
        Some(v) if v >= MIN_SERVER_VERSION => Ok(()),
        _ => {
            let (major, minor, patch) = MIN_SERVER_VERSION;
            Err(StoreError::Storage(format!(
                "NATS: nats-server {version} is too old: Chancery needs {major}.{minor}.{patch} or \
                 newer (atomic batch publish with message ids; older servers accept conflicting \
                 writes on replicated streams)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_before_2_12_1_are_refused() {
        for ok in ["2.12.1", "2.15.1", "v2.12.3-beta.1", "3.0.0"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for old in ["2.12.0", "2.9.25", "2.11.9", "1.4.0", "2.12", "", "unknown"] {
            let err = check_version(old).err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains("too old")), "{old}");
        }
    }
}
