//! Several Chancery servers on one stream: each `NatsLog` has its own replica, sees what the
//! others append, and writers racing through different logs keep one linear log.

use std::collections::HashMap;
use std::sync::Arc;

use chancery_domain::limits::MAX_BATCH_EVENTS;
use chancery_domain::{Hash, NewEvent, sample};
use chancery_store::contract::next_positions;
use chancery_store::{
    AppendOutcome, AppendRequest, EventFilter, EventLog, ExpectedVersion, ReadRequest, StoreError,
};

use chancery_store_nats::NatsLog;
use tempfile::TempDir;

use crate::support;

const T: &str = "shared";

async fn append(
    log: &dyn EventLog,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome, StoreError> {
    log.append(AppendRequest {
        refers_within: None,
        timeline: sample::timeline(T),
        expected,
        events,
    })
    .await
}

fn statement(actor: &str) -> NewEvent {
    sample::statement(T, actor, &["deficit"], "2018-05-01")
}

fn world() -> Vec<NewEvent> {
    sample::world(T, &["USA", "CHN"], &["deficit", "tariffs"])
}

/// Two logs on one fresh stream, the world registered through the first.
async fn two_logs_in_a_world() -> ((NatsLog, TempDir), (NatsLog, TempDir)) {
    let logs = support::two_logs().await;
    append(&logs.0.0, ExpectedVersion::NoTimeline, world())
        .await
        .unwrap();
    logs
}

#[test]
fn a_second_log_on_the_same_stream_sees_what_the_first_appends() {
    support::run(|| async {
        let ((a, _a_dir), (b, _b_dir)) = support::two_logs().await;
        let mut live = b.subscribe(0, EventFilter::all());

        append(&a, ExpectedVersion::NoTimeline, world())
            .await
            .unwrap();
        assert_eq!(next_positions(&mut live, 5).await, vec![1, 2, 3, 4, 5]);
        let everything = ReadRequest::forward(1, 100);
        assert_eq!(
            b.read(everything.clone()).await.unwrap(),
            a.read(everything.clone()).await.unwrap(),
            "b reads what a appended"
        );
        assert_eq!(b.head().await.unwrap(), a.head().await.unwrap());
        assert_eq!(b.registry().await.unwrap(), a.registry().await.unwrap());
        assert_eq!(
            b.timeline_version(sample::timeline(T)).await.unwrap(),
            Some(5)
        );

        // b writes on top of a's events; a then plans against them.
        let e = statement("USA");
        let by_b = append(&b, ExpectedVersion::Exact(5), vec![e.clone()])
            .await
            .unwrap();
        assert_eq!((by_b.last_position(), by_b.last_version()), (6, 6));
        let err = append(&a, ExpectedVersion::Exact(5), vec![statement("CHN")])
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::WrongExpectedVersion {
                timeline: sample::timeline(T),
                expected: ExpectedVersion::Exact(5),
                actual: Some(6)
            }
        );
        // A retry through a of what b wrote answers with b's positions; other content is refused.
        let retry = append(&a, ExpectedVersion::Exact(5), vec![e.clone()])
            .await
            .unwrap();
        assert!(retry.deduplicated);
        assert_eq!(retry.events, by_b.events);
        let mut other = e.clone();
        other.summary = "something else".into();
        let err = append(&a, ExpectedVersion::Any, vec![other])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::IdConflict { id, position: 6, .. } if id == e.id),
            "{err}"
        );
        assert_eq!(next_positions(&mut live, 1).await, vec![6]);
        assert_eq!(a.catch_up().await.unwrap().position, 6);
    });
}

#[test]
fn writers_racing_through_two_logs_keep_positions_gapless_and_the_chain_linear() {
    support::run(|| async {
        let ((a, _a_dir), (b, _b_dir)) = two_logs_in_a_world().await;
        const TASKS_PER_LOG: usize = 3;
        const APPENDS_EACH: usize = 15;
        let mut tasks = Vec::new();
        for (l, log) in [a.clone(), b.clone()].into_iter().enumerate() {
            for t in 0..TASKS_PER_LOG {
                let log = log.clone();
                tasks.push(tokio::spawn(async move {
                    let mut written = Vec::new();
                    for i in 0..APPENDS_EACH {
                        // Single events and atomic batches of two, both racing.
                        let batch: Vec<_> = (0..1 + (l + t + i) % 2)
                            .map(|_| statement(["USA", "CHN"][l]))
                            .collect();
                        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
                        let out = append(&log, ExpectedVersion::Any, batch).await.unwrap();
                        assert!(!out.deduplicated);
                        for (id, appended) in ids.into_iter().zip(out.events) {
                            assert_eq!(id, appended.id);
                            written.push(appended);
                        }
                    }
                    written
                }));
            }
        }
        let mut by_position = HashMap::new();
        for task in tasks {
            for appended in task.await.unwrap() {
                assert!(
                    by_position.insert(appended.position, appended).is_none(),
                    "two appends got position {}",
                    appended.position
                );
            }
        }
        let end = 5 + by_position.len() as u64;
        assert_eq!(a.catch_up().await.unwrap().position, end);
        assert_eq!(b.catch_up().await.unwrap().position, end);

        let raw = support::all_records(&a).await;
        assert_eq!(raw, support::all_records(&b).await, "one log");
        let mut prev = Hash::GENESIS;
        let mut version = 0;
        for (i, record) in raw.iter().enumerate() {
            let position = record.position();
            assert_eq!(position, i as u64 + 1, "positions are gapless");
            assert_eq!(record.prev_hash(), prev, "position {position} chains");
            assert_eq!(record.verify().unwrap(), record.hash());
            assert_eq!(record.version(), version + 1, "versions are gapless");
            version = record.version();
            prev = record.hash();
            if let Some(appended) = by_position.get(&position) {
                assert_eq!(
                    (appended.id, appended.version),
                    (record.id(), record.version())
                );
            }
        }
        assert_eq!(raw.len() as u64, end);
    });
}

#[test]
fn the_largest_append_is_one_atomic_batch() {
    support::run(|| async {
        let ((a, _a_dir), (b, _b_dir)) = two_logs_in_a_world().await;
        let batch: Vec<_> = (0..MAX_BATCH_EVENTS).map(|_| statement("USA")).collect();
        let out = append(&a, ExpectedVersion::Exact(5), batch).await.unwrap();
        assert_eq!(
            (out.events[0].position, out.last_position()),
            (6, 5 + MAX_BATCH_EVENTS as u64)
        );
        assert_eq!(b.catch_up().await.unwrap(), a.head().await.unwrap());
    });
}

#[test]
fn a_restore_larger_than_one_atomic_batch_is_refused() {
    support::run(|| async {
        let (log, _dir) = support::log_on(&support::fresh_stream()).await;
        let log: Arc<dyn EventLog> = Arc::new(log);
        let err = log
            .restore(vec![Vec::new(); MAX_BATCH_EVENTS + 1])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Limit(_)), "{err}");
    });
}
