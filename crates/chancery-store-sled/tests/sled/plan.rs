//! Plans: an append or restore worked out against the log with the writer's own rules, and
//! nothing written; and a log that skips the sync, for replicas whose durability lies elsewhere.

use chancery_domain::{NewEvent, sample, verify_record_hash};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, StoreError};
use chancery_store_sled::{SledConfig, SledLog};

const T: &str = "t";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn request(expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        timeline: sample::timeline(T),
        expected,
        events,
    }
}

#[test]
fn a_plan_is_what_the_append_would_write_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let log = SledLog::open(dir.path().join("log"), SledConfig::default()).unwrap();
        log.append(request(
            ExpectedVersion::NoTimeline,
            sample::world(T, &["USA"], &["deficit"]),
        ))
        .await
        .unwrap();
        let head = log.head().await.unwrap();
        let registry = log.registry().await.unwrap();
        // The second event needs what the first registers.
        let batch = vec![
            sample::register_party(T, "FRA"),
            sample::demand(T, "USA", "FRA", "deficit", "2018-05-01"),
        ];
        let plan = log
            .plan_append(request(ExpectedVersion::Exact(3), batch.clone()))
            .await
            .unwrap();

        assert_eq!(plan.base, head);
        assert!(!plan.outcome.deduplicated);
        let mut prev = head.hash;
        for ((record, bytes), appended) in plan.records.iter().zip(&plan.outcome.events) {
            assert_eq!(verify_record_hash(bytes).unwrap(), record.hash);
            assert_eq!(record.prev_hash, prev, "the plan continues the chain");
            assert_eq!(
                (record.position, record.version, record.event.id),
                (appended.position, appended.version, appended.id)
            );
            prev = record.hash;
        }
        assert_eq!(
            plan.outcome
                .events
                .iter()
                .map(|e| e.position)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );

        assert_eq!(log.head().await.unwrap(), head, "nothing was written");
        assert_eq!(
            log.registry().await.unwrap(),
            registry,
            "FRA is not registered"
        );
        assert!(log.event(batch[0].id).await.unwrap().is_none());

        // Fed back through a restore, the planned records are the append.
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = SledLog::open(copy_dir.path().join("log"), SledConfig::default()).unwrap();
        let raw = log.read_raw(1, 100).await.unwrap();
        copy.restore(raw.into_iter().map(|r| r.bytes).collect())
            .await
            .unwrap();
        let restored = copy
            .restore(plan.records.iter().map(|(_, b)| b.clone()).collect())
            .await
            .unwrap();
        assert_eq!(restored.head.position, 5);
        assert_eq!(restored.head.hash, prev);
        let retry = copy
            .append(request(ExpectedVersion::Exact(3), batch))
            .await
            .unwrap();
        assert!(retry.deduplicated);
        assert_eq!(retry.events, plan.outcome.events);
    });
}

#[test]
fn a_plan_gives_the_appends_answers_conflicts_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let log = SledLog::open(dir.path().join("log"), SledConfig::default()).unwrap();
        let world = sample::world(T, &["USA"], &["deficit"]);
        let first = log
            .append(request(ExpectedVersion::NoTimeline, world.clone()))
            .await
            .unwrap();

        let retry = log
            .plan_append(request(ExpectedVersion::NoTimeline, world.clone()))
            .await
            .unwrap();
        assert!(retry.outcome.deduplicated);
        assert_eq!(retry.outcome.events, first.events);
        assert!(retry.records.is_empty());

        let e = sample::statement(T, "USA", &["deficit"], "2018-05-01");
        let err = log
            .plan_append(request(ExpectedVersion::Exact(2), vec![e.clone()]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::WrongExpectedVersion {
                    actual: Some(3),
                    ..
                }
            ),
            "{err}"
        );
        let mut changed = world[0].clone();
        changed.summary = "other".into();
        let err = log
            .plan_append(request(ExpectedVersion::Any, vec![changed]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::IdConflict { position: 1, .. }),
            "{err}"
        );
        let bad = sample::statement(T, "USA", &["unregistered"], "2018-05-01");
        let err = log
            .plan_append(request(ExpectedVersion::Any, vec![e, bad]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(log.head().await.unwrap().position, 3);
    });
}

#[test]
fn a_restore_plan_checks_the_records_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let log = SledLog::open(dir.path().join("log"), SledConfig::default()).unwrap();
        log.append(request(
            ExpectedVersion::NoTimeline,
            sample::world(T, &["USA"], &["deficit"]),
        ))
        .await
        .unwrap();
        let raw: Vec<Vec<u8>> = log
            .read_raw(1, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.bytes)
            .collect();
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = SledLog::open(copy_dir.path().join("log"), SledConfig::default()).unwrap();

        let plan = copy.plan_restore(raw.clone()).await.unwrap();
        assert_eq!(plan.base.position, 0);
        assert_eq!(
            plan.records
                .iter()
                .map(|(_, b)| b.clone())
                .collect::<Vec<_>>(),
            raw
        );
        assert_eq!(
            copy.head().await.unwrap().position,
            0,
            "nothing was written"
        );
        assert!(copy.registry().await.unwrap().timelines.is_empty());

        let err = copy
            .plan_restore(vec![raw[0].clone(), raw[2].clone()])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Restore(_)), "{err}");
    });
}

#[test]
fn a_log_that_is_not_durable_commits_without_syncing() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let config = SledConfig {
            durable: false,
            ..SledConfig::default()
        };
        let log = SledLog::open(dir.path().join("log"), config).unwrap();
        let before = log.writer_stats();
        log.append(request(
            ExpectedVersion::NoTimeline,
            sample::world(T, &["USA"], &["deficit"]),
        ))
        .await
        .unwrap();
        let after = log.writer_stats();
        assert_eq!(after.groups - before.groups, 1);
        assert_eq!(after.syncs, before.syncs, "no fdatasync");
    });
}
