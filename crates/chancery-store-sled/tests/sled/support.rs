//! What the sled backend's own tests share: a runtime, logs opened with the default
//! configuration or in many small segments, and appends to the timeline `t`.

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

/// Segments of about 4 KiB: a few records each, so that a few hundred events close dozens.
pub fn small_segments(path: &Path) -> SledLog {
    SledLog::open(
        path,
        SledConfig {
            segment_bytes: 4096,
            ..SledConfig::default()
        },
    )
    .unwrap()
}

/// A log of `count` statements over many small segments, appended in groups of 1 to 7; answers
/// the statements with their positions.
pub fn many_segments(path: &Path, count: usize) -> Vec<(NewEvent, u64)> {
    runtime().block_on(async {
        let log = small_segments(path);
        world(&log).await;
        let events: Vec<NewEvent> = (0..count)
            .map(|i| {
                let day = format!("2018-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
                sample::statement(T, "USA", &["deficit"], &day)
            })
            .collect();
        let mut recorded = Vec::new();
        let mut rest = events.as_slice();
        let mut size = 1;
        while !rest.is_empty() {
            let (group, after) = rest.split_at(size.min(rest.len()));
            let out = append(&log, group.to_vec()).await;
            let first = out.last_position() + 1 - group.len() as u64;
            for (i, e) in group.iter().enumerate() {
                recorded.push((e.clone(), first + i as u64));
            }
            rest = after;
            size = size % 7 + 1;
        }
        recorded
    })
}
