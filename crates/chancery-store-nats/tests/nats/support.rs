//! Logs for the tests: each on a stream of its own (its own name and subjects) on the shared
//! server, with a replica in a temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chancery_store::contract::{Fixture, LIVE_BUFFER};
use chancery_store_nats::{NatsConfig, NatsLog};
use tempfile::TempDir;

use crate::server;

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// A stream no other test uses: its name and subject prefix.
pub fn fresh_stream() -> (String, String) {
    let n = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
    (format!("T{n}"), format!("t{n}.log"))
}

/// The configuration of a log on `stream`, with its replica in `dir`.
pub fn config((stream, prefix): &(String, String), dir: &TempDir) -> NatsConfig {
    let url = server::url().expect("the caller checked that a server runs");
    NatsConfig {
        stream: stream.clone(),
        subject_prefix: prefix.clone(),
        live_buffer: LIVE_BUFFER,
        ..NatsConfig::new(vec![url.to_owned()], dir.path().join("replica"))
    }
}

/// A log on `stream`, with its replica in `dir`.
pub async fn log_in(stream: &(String, String), dir: &TempDir) -> NatsLog {
    NatsLog::connect(config(stream, dir))
        .await
        .expect("the log connects")
}

/// A log on `stream`, with a replica of its own, and the directory that must outlive it.
pub async fn log_on(stream: &(String, String)) -> (NatsLog, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    (log_in(stream, &dir).await, dir)
}

/// Two logs on one fresh stream, each with a replica of its own (in a directory that must
/// outlive it), as two Chancery servers have.
pub async fn two_logs() -> ((NatsLog, TempDir), (NatsLog, TempDir)) {
    let stream = fresh_stream();
    (log_on(&stream).await, log_on(&stream).await)
}

/// A fresh, empty log, as the contract suite wants.
pub async fn fixture() -> Fixture {
    let (log, dir) = log_on(&fresh_stream()).await;
    // The log must close before its directory goes: the guard drops them in that order.
    let guard = (log.clone(), dir);
    Fixture {
        log: Arc::new(log),
        guard: Box::new(guard),
    }
}

/// Runs a test on a runtime of its own, unless no nats-server is at hand (see `server::url`).
pub fn run<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) {
    if server::url().is_none() {
        return;
    }
    chancery_testkit::runtime(4).block_on(test());
}

/// Every record of a log, in order.
pub async fn all_records(log: &NatsLog) -> Vec<chancery_domain::RecordedEvent> {
    use chancery_store::EventLog;
    log.read(chancery_store::ReadRequest::forward(1, usize::MAX))
        .await
        .unwrap()
}
