//! What the sled backend's own tests share: a runtime, logs opened with the default
//! configuration, and appends to the timeline `t`.

use std::path::Path;

use chancery_domain::{NewEvent, TimelineSlug, sample};
use chancery_store::{AppendOutcome, AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};

/// The timeline every test writes to.
pub const T: &str = "t";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn t() -> TimelineSlug {
    sample::timeline(T)
}

/// Opens the log at `path` with the default configuration.
pub fn open(path: &Path) -> SledLog {
    SledLog::open(path, SledConfig::default()).unwrap()
}

/// An append of `events` to `t`.
pub fn request(expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        timeline: t(),
        expected,
        events,
    }
}

/// Appends `events` to `t` whatever its version; it must be recorded.
pub async fn append(log: &SledLog, events: Vec<NewEvent>) -> AppendOutcome {
    log.append(request(ExpectedVersion::Any, events))
        .await
        .unwrap()
}

/// Registers `t` with the party USA and the issue `deficit` in a fresh log.
pub async fn world(log: &SledLog) -> AppendOutcome {
    let world = sample::world(T, &["USA"], &["deficit"]);
    log.append(request(ExpectedVersion::NoTimeline, world))
        .await
        .unwrap()
}
