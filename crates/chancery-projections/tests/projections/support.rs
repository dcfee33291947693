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
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
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

/// A log holding `events`, and its projections caught up (checkpointed in the directory).
pub async fn world(events: Vec<NewEvent>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    append_all(&*log, events).await;
    let projections = Projections::open(
        Arc::clone(&log),
        Some(&dir.path().join("projections")),
        CheckpointPolicy::default(),
    )
    .await
    .unwrap();
    projections.catch_up(&|_, _| {}).await.unwrap();
    World {
        projections,
        log,
        dir,
    }
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
