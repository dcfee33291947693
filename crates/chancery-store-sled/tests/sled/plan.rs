//! Sealing against a snapshot of the log: what the NATS backend does before it publishes. The
//! sequencer's answer against `SledLog::snapshot` is what the append itself would do, and writes
//! nothing; and a log that skips the sync, for replicas whose durability lies elsewhere.

use chancery_domain::{RecordedEvent, Timestamp, sample, verify_record_hash};
use chancery_store::sequencer::{self, Answer, Request, Sealed};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, ReadRequest, StoreError};
use chancery_store_sled::{SledConfig, SledLog};

use crate::support::{T, request, runtime, temp_log, with_log, world};

/// Seals one request against the log as it stands, writing nothing.
fn seal(log: &SledLog, request: Request) -> Sealed {
    sequencer::sequence(
        &log.snapshot(),
        vec![request],
        Timestamp::from_unix_micros(1),
    )
}

/// An append as the stores hand it to the sequencer: checked on its own, its events encoded.
fn prepared(request: AppendRequest) -> Request {
    Request::Append(sequencer::precheck(request).expect("an append valid on its own"))
}

/// The outcome of one sealed append.
fn outcome(sealed: &Sealed) -> Result<chancery_store::AppendOutcome, StoreError> {
    match &sealed.answers[..] {
        [Answer::Append(result)] => result.clone(),
        other => panic!("one append answer, not {other:?}"),
    }
}

async fn stored(log: &SledLog) -> Vec<Vec<u8>> {
    log.read(ReadRequest::forward(1, 100))
        .await
        .unwrap()
        .iter()
        .map(|r| r.stored().to_vec())
        .collect()
}

#[test]
fn sealing_against_a_snapshot_is_what_the_append_would_write_and_leaves_no_trace() {
    with_log(async |log| {
        world(log).await;
        let head = log.head().await.unwrap();
        let registry = log.registry().await.unwrap();
        // The second event needs what the first registers.
        let batch = vec![
            sample::register_party(T, "FRA"),
            sample::demand(T, "USA", "FRA", "deficit", "2018-05-01"),
        ];
        let plan = seal(
            log,
            prepared(request(ExpectedVersion::Exact(3), batch.clone())),
        );
        let planned = outcome(&plan).unwrap();

        assert_eq!(plan.base, head);
        assert!(!planned.deduplicated);
        let mut prev = head.hash;
        for (record, appended) in plan.records.iter().zip(&planned.events) {
            let line = record.canonical_json().unwrap();
            assert_eq!(verify_record_hash(&line).unwrap(), record.hash());
            assert_eq!(record.prev_hash(), prev, "the plan continues the chain");
            assert_eq!(
                (record.position(), record.version(), record.id()),
                (appended.position, appended.version, appended.id)
            );
            prev = record.hash();
        }
        assert_eq!(
            planned
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
        let (_copy_dir, copy) = temp_log();
        copy.restore(stored(log).await).await.unwrap();
        let restored = copy
            .restore(plan.records.iter().map(|r| r.stored().to_vec()).collect())
            .await
            .unwrap();
        assert_eq!(restored.head.position, 5);
        assert_eq!(restored.head.hash, prev);
        let retry = copy
            .append(request(ExpectedVersion::Exact(3), batch))
            .await
            .unwrap();
        assert!(retry.deduplicated);
        assert_eq!(retry.events, planned.events);
    });
}

#[test]
fn sealing_gives_the_appends_answers_conflicts_and_retries() {
    with_log(async |log| {
        let world = sample::world(T, &["USA"], &["deficit"]);
        let first = log
            .append(request(ExpectedVersion::NoTimeline, world.clone()))
            .await
            .unwrap();

        let retry = seal(
            log,
            prepared(request(ExpectedVersion::NoTimeline, world.clone())),
        );
        let answered = outcome(&retry).unwrap();
        assert!(answered.deduplicated);
        assert_eq!(answered.events, first.events);
        assert!(retry.records.is_empty());

        let e = sample::statement(T, "USA", &["deficit"], "2018-05-01");
        let err = outcome(&seal(
            log,
            prepared(request(ExpectedVersion::Exact(2), vec![e.clone()])),
        ))
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
        let err = outcome(&seal(
            log,
            prepared(request(ExpectedVersion::Any, vec![changed])),
        ))
        .unwrap_err();
        assert!(
            matches!(err, StoreError::IdConflict { position: 1, .. }),
            "{err}"
        );
        let bad = sample::statement(T, "USA", &["unregistered"], "2018-05-01");
        let err = outcome(&seal(
            log,
            prepared(request(ExpectedVersion::Any, vec![e, bad])),
        ))
        .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(log.head().await.unwrap().position, 3);
    });
}

#[test]
fn sealing_a_restore_checks_the_records_and_writes_nothing() {
    with_log(async |log| {
        world(log).await;
        let raw = stored(log).await;
        let (_copy_dir, copy) = temp_log();
        let checked = |records: Vec<Vec<u8>>| -> Vec<RecordedEvent> {
            sequencer::check_restore(records, 100).unwrap()
        };

        let plan = seal(&copy, Request::Restore(checked(raw.clone())));
        assert!(matches!(plan.answers[..], [Answer::Restore(Ok(3))]));
        assert_eq!(plan.base.position, 0);
        assert_eq!(
            plan.records
                .iter()
                .map(|r| r.stored().to_vec())
                .collect::<Vec<_>>(),
            raw
        );
        assert_eq!(
            copy.head().await.unwrap().position,
            0,
            "nothing was written"
        );
        assert!(copy.registry().await.unwrap().timelines.is_empty());

        let gap = seal(
            &copy,
            Request::Restore(checked(vec![raw[0].clone(), raw[2].clone()])),
        );
        assert!(
            matches!(
                gap.answers[..],
                [Answer::Restore(Err(StoreError::Restore(_)))]
            ),
            "{:?}",
            gap.answers
        );
        assert!(gap.records.is_empty());
    });
}

#[test]
fn a_log_that_is_not_durable_commits_without_syncing() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let log = SledLog::open(dir.path().join("log"), SledConfig::unsynced()).unwrap();
        let before = log.writer_stats();
        world(&log).await;
        let after = log.writer_stats();
        assert_eq!(after.groups - before.groups, 1);
        assert_eq!(after.syncs, before.syncs, "no fdatasync");
    });
}
