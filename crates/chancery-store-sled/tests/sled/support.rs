//! What the sled backend's own tests share: a runtime, logs opened with the default
//! configuration, and appends to the timeline `t`.

use std::path::Path;

use chancery_domain::{NewEvent, TimelineSlug, sample};
use chancery_store::{AppendOutcome, AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};

/// The timeline every test writes to.
pub const T: &str = "t";

pub fn runtime() -> tokio::runtime::Runtime {
    chancery_testkit::runtime(2)
}

pub fn t() -> TimelineSlug {
    sample::timeline(T)
}

/// Opens the log at `path` with the default configuration.
pub fn open(path: &Path) -> SledLog {
    SledLog::open(path, SledConfig::default()).unwrap()
}

/// A log with the default configuration in a new temporary directory, after that directory:
/// bound as `let (_dir, log) = temp_log();`, the log closes before its directory goes.
pub fn temp_log() -> (tempfile::TempDir, SledLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"));
    (dir, log)
}

/// Runs `test` on a runtime of its own against a fresh log in a temporary directory.
pub fn with_log(test: impl AsyncFnOnce(&SledLog)) {
    let (_dir, log) = temp_log();
    runtime().block_on(test(&log));
}

/// An append of `events` to `t`.
pub fn request(expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        refers_within: None,
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
