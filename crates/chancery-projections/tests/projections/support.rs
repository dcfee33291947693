//! Helpers: a sled log in a temporary directory, fed with events, and its projections.

use std::sync::Arc;

use chancery_domain::{NewEvent, TimelineSlug};
use chancery_projections::{
    AsOf, CheckpointPolicy, PositionQuery, PositionView, Projections, Stance, StandoffStatus,
};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};

pub struct World {
    pub projections: Arc<Projections>,
    pub log: Arc<dyn EventLog>,
    pub dir: tempfile::TempDir,
}

pub fn runtime() -> tokio::runtime::Runtime {
    chancery_testkit::runtime(2)
}

/// Appends events, one append per run of consecutive events of the same timeline.
pub async fn append_all(log: &dyn EventLog, events: Vec<NewEvent>) {
    let mut batch: Vec<NewEvent> = Vec::new();
    for e in events {
        if batch.first().is_some_and(|b| b.timeline != e.timeline) || batch.len() == 1000 {
            flush(log, &mut batch).await;
        }
        batch.push(e);
    }
    flush(log, &mut batch).await;
}

async fn flush(log: &dyn EventLog, batch: &mut Vec<NewEvent>) {
    let Some(timeline) = batch.first().map(|e| e.timeline.clone()) else {
        return;
    };
    let events = std::mem::take(batch);
    log.append(AppendRequest {
        refers_within: None,
        timeline,
        expected: ExpectedVersion::Any,
        events,
    })
    .await
    .unwrap();
}

pub async fn open_log(dir: &std::path::Path) -> Arc<dyn EventLog> {
    Arc::new(SledLog::open(dir.join("log"), SledConfig::default()).unwrap())
}

/// A log in a new temporary directory, holding `events`, and that directory.
pub async fn log_holding(events: Vec<NewEvent>) -> (Arc<dyn EventLog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    append_all(&*log, events).await;
    (log, dir)
}

/// The projections of `log` as they open, checkpointed in `checkpoints` if given.
pub async fn open_projections(
    log: &Arc<dyn EventLog>,
    checkpoints: Option<&std::path::Path>,
) -> Arc<Projections> {
    open_projections_with(log, checkpoints, CheckpointPolicy::default()).await
}

/// [`open_projections`] under a checkpoint policy of the test's own.
pub async fn open_projections_with(
    log: &Arc<dyn EventLog>,
    checkpoints: Option<&std::path::Path>,
    policy: CheckpointPolicy,
) -> Arc<Projections> {
    Projections::open(Arc::clone(log), checkpoints, policy)
        .await
        .unwrap()
}

/// The projections of `log` built from position 1, without a checkpoint.
pub async fn rebuilt(log: &Arc<dyn EventLog>) -> Arc<Projections> {
    let projections = open_projections(log, None).await;
    projections.catch_up(&|_, _| {}).await.unwrap();
    projections
}

/// A log holding `events`, and its projections caught up (checkpointed in the directory).
pub async fn world(events: Vec<NewEvent>) -> World {
    let (log, dir) = log_holding(events).await;
    let projections = open_projections(&log, Some(&dir.path().join("projections"))).await;
    projections.catch_up(&|_, _| {}).await.unwrap();
    World {
        projections,
        log,
        dir,
    }
}

/// Runs `test` on a runtime of its own against a world holding `events`.
pub fn in_world(events: Vec<NewEvent>, test: impl AsyncFnOnce(&World)) {
    runtime().block_on(async {
        let w = world(events).await;
        test(&w).await;
    });
}

/// [`in_world`] for a test that asks only the world's projections.
pub fn with_projections(events: Vec<NewEvent>, test: impl AsyncFnOnce(&Projections)) {
    in_world(events, async |w| test(&w.projections).await);
}

pub fn demo_events() -> Vec<NewEvent> {
    include_str!("../../../chancery/demo/us-china-trade-2018.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn timeline(slug: &str) -> TimelineSlug {
    TimelineSlug::new(slug).unwrap()
}

/// The world as of a valid time (`2018-05`, `2018-05-01`), as known now.
pub fn at(date: &str) -> AsOf {
    AsOf {
        valid_at: Some(date.parse().unwrap()),
        known_at: None,
    }
}

/// The present world as known when the log ended at `position`.
pub fn known_at(position: chancery_domain::Position) -> AsOf {
    AsOf {
        valid_at: None,
        known_at: Some(chancery_projections::KnownAt::Position(position)),
    }
}

/// Relations between parties `a` and `b` over every timeline and all of valid time.
pub fn relations_between(
    a: &str,
    b: &str,
    bucket: chancery_projections::Bucket,
    as_of: AsOf,
) -> chancery_projections::RelationsQuery {
    chancery_projections::RelationsQuery {
        a: a.parse().unwrap(),
        b: b.parse().unwrap(),
        bucket,
        from: None,
        to: None,
        timeline: None,
        as_of,
    }
}

pub async fn position(
    p: &Projections,
    timeline_slug: &str,
    party: &str,
    issue: &str,
    as_of: AsOf,
) -> Option<PositionView> {
    let q = PositionQuery {
        timeline: Some(timeline(timeline_slug)),
        parties: vec![party.parse().unwrap()],
        issues: vec![issue.parse().unwrap()],
        as_of,
        ..PositionQuery::default()
    };
    let mut found = p.positions(&q).await.unwrap();
    assert!(found.len() <= 1);
    found.pop()
}

/// The position `party` holds now on `issue`, which the test expects to exist.
pub async fn held(p: &Projections, timeline_slug: &str, party: &str, issue: &str) -> PositionView {
    position(p, timeline_slug, party, issue, AsOf::NOW)
        .await
        .unwrap_or_else(|| panic!("{party} holds no position on {issue}"))
}

pub async fn stance(
    p: &Projections,
    timeline_slug: &str,
    party: &str,
    issue: &str,
    as_of: AsOf,
) -> Option<Stance> {
    position(p, timeline_slug, party, issue, as_of)
        .await
        .map(|v| v.stance)
}

pub fn status(
    p: &Projections,
    timeline_slug: &str,
    issue: &str,
    as_of: AsOf,
) -> Option<StandoffStatus> {
    let found = p
        .standoffs(
            Some(&timeline(timeline_slug)),
            &[issue.parse().unwrap()],
            &as_of,
        )
        .unwrap();
    found.first().map(|s| s.status)
}

/// Asserts each row's stance of a party on an issue of the timeline: (party, issue, as of,
/// expected stance).
pub async fn assert_stances(
    p: &Projections,
    timeline_slug: &str,
    rows: &[(&str, &str, AsOf, Option<Stance>)],
) {
    for &(party, issue, as_of, expected) in rows {
        assert_eq!(
            stance(p, timeline_slug, party, issue, as_of).await,
            expected,
            "{party} on {issue} as of {as_of:?}"
        );
    }
}

/// Asserts each row's status of an issue of the timeline: (issue, as of, expected status).
pub fn assert_statuses(
    p: &Projections,
    timeline_slug: &str,
    rows: &[(&str, AsOf, Option<StandoffStatus>)],
) {
    for &(issue, as_of, expected) in rows {
        assert_eq!(
            status(p, timeline_slug, issue, as_of),
            expected,
            "{issue} as of {as_of:?}"
        );
    }
}
