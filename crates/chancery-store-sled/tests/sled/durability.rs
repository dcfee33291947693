//! What only the sled backend does: reopening resumes at the head, and every commit group is
//! made durable with an fdatasync before it is acknowledged.

use chancery_domain::sample;
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, ReadRequest};
use chancery_store_sled::{SledConfig, SledLog, keys};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn reopening_resumes_at_the_head_with_registry_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rt = runtime();
    let (head, registry) = rt.block_on(async {
        let log = SledLog::open(&path, SledConfig::default()).unwrap();
        let world = sample::world("t", &["USA", "CHN"], &["deficit"]);
        log.append(AppendRequest {
            timeline: sample::timeline("t"),
            expected: ExpectedVersion::NoTimeline,
            events: world,
        })
        .await
        .unwrap();
        (log.head().await.unwrap(), log.registry().await.unwrap())
    });
    rt.block_on(async {
        let log = SledLog::open(&path, SledConfig::default()).unwrap();
        assert_eq!(log.head().await.unwrap(), head);
        assert_eq!(log.registry().await.unwrap(), registry);
        assert_eq!(
            log.timeline_version(sample::timeline("t")).await.unwrap(),
            Some(4)
        );
        let e = sample::statement("t", "USA", &["deficit"], "2018-05-01");
        let out = log
            .append(AppendRequest {
                timeline: sample::timeline("t"),
                expected: ExpectedVersion::Exact(4),
                events: vec![e],
            })
            .await
            .unwrap();
        assert_eq!(out.last_position(), 5);
        let all = log.read(ReadRequest::forward(1, 10)).await.unwrap();
        assert_eq!(
            all[4].prev_hash, head.hash,
            "the chain continues across the reopen"
        );
    });
}

#[test]
fn a_second_process_cannot_open_a_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let _first = SledLog::open(&path, SledConfig::default()).unwrap();
    // sled locks the data file with flock, which conflicts across open files even in one process.
    let err = SledLog::open(&path, SledConfig::default())
        .err()
        .expect("the second open fails");
    assert!(
        err.to_string()
            .contains("in use by another Chancery process"),
        "{err}"
    );
}

#[test]
fn every_commit_group_is_synced_before_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let log = SledLog::open(dir.path().join("log"), SledConfig::default()).unwrap();
        let before = log.writer_stats();
        let world = sample::world("t", &["USA"], &["deficit"]);
        log.append(AppendRequest {
            timeline: sample::timeline("t"),
            expected: ExpectedVersion::Any,
            events: world,
        })
        .await
        .unwrap();
        for _ in 0..5 {
            let e = sample::statement("t", "USA", &["deficit"], "2018-05-01");
            log.append(AppendRequest {
                timeline: sample::timeline("t"),
                expected: ExpectedVersion::Any,
                events: vec![e],
            })
            .await
            .unwrap();
        }
        let after = log.writer_stats();
        // Sequential appends each form their own group; each group syncs once.
        assert_eq!(after.groups - before.groups, 6);
        assert_eq!(after.syncs - before.syncs, 6);
    });
}

async fn append(
    log: &SledLog,
    events: Vec<chancery_domain::NewEvent>,
) -> chancery_store::AppendOutcome {
    log.append(AppendRequest {
        timeline: sample::timeline("t"),
        expected: ExpectedVersion::Any,
        events,
    })
    .await
    .unwrap()
}

/// The party filter that names `party`, read forward over the whole log.
fn by_party(party: &str) -> ReadRequest {
    ReadRequest::forward(1, 100).with_filter(chancery_store::EventFilter {
        parties: vec![chancery_domain::PartyCode::new(party).unwrap()],
        ..chancery_store::EventFilter::all()
    })
}

/// Between checkpoints a group's keys reach sled one by one, so a crash can leave sled holding
/// part of what came after its last checkpoint, and even an event that was never acknowledged.
/// Opening takes sled back to the checkpoint and replays the write-ahead log: every acknowledged
/// event comes back whole (record, indexes, versions, a retraction's mark), and nothing else.
#[test]
fn a_crash_after_the_checkpoint_is_taken_back_and_the_log_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let saved_wal = dir.path().join("wal-at-crash");
    let rt = runtime();
    let t = || sample::timeline("t");
    let (head, records, usa, chn, version, retracted) = rt.block_on(async {
        let log = SledLog::open(&path, SledConfig::default()).unwrap();
        append(&log, sample::world("t", &["USA", "CHN"], &["deficit"])).await;
        log.checkpoint().await.unwrap();
        let claim = sample::statement("t", "USA", &["deficit"], "2018-05-01");
        let retracted = claim.id;
        append(&log, vec![claim]).await;
        append(
            &log,
            vec![sample::statement("t", "CHN", &["deficit"], "2018-05-02")],
        )
        .await;
        append(&log, vec![sample::retraction("t", retracted)]).await;
        append(
            &log,
            vec![sample::statement("t", "USA", &["deficit"], "2018-05-03")],
        )
        .await;
        // What a crash would leave of the write-ahead log: every acknowledged line.
        std::fs::create_dir(&saved_wal).unwrap();
        for entry in std::fs::read_dir(path.join("wal")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), saved_wal.join(entry.file_name())).unwrap();
        }
        (
            log.head().await.unwrap(),
            log.read(ReadRequest::forward(1, 100)).await.unwrap(),
            log.read(by_party("USA")).await.unwrap(),
            log.read(by_party("CHN")).await.unwrap(),
            log.timeline_version(t()).await.unwrap(),
            retracted,
        )
    });
    assert_eq!(head.position, 8);
    assert_eq!(usa.len(), 3, "USA's registration and its two statements");

    // The crash: sled as it could be found, back at the checkpoint of position 4 with parts of
    // what followed: the last event without its indexes, and an event never acknowledged.
    {
        let db = sled::Config::new()
            .path(&path)
            .segment_size(8 * 1024 * 1024)
            .open()
            .unwrap();
        let tree = db.open_tree("log").unwrap();
        tree.insert(keys::META_CHECKPOINT, &4u64.to_be_bytes())
            .unwrap();
        let last = &records[7];
        for tag in keys::event_tags(&last.event, last.position) {
            tree.remove(tag).unwrap();
        }
        tree.remove(keys::version(&t(), last.version)).unwrap();
        tree.insert(keys::timeline_head(&t()), &7u64.to_be_bytes())
            .unwrap();
        let ghost = sample::statement("t", "CHN", &["deficit"], "2018-05-04");
        let (sealed, bytes) =
            chancery_domain::RecordedEvent::seal(9, 9, last.recorded_at, last.hash, ghost.clone());
        tree.insert(keys::event(9), bytes).unwrap();
        let entry = keys::IdEntry {
            position: 9,
            kind: ghost.kind(),
            retracted: false,
            timeline: t(),
        };
        tree.insert(keys::id(&ghost.id), entry.encode()).unwrap();
        for tag in keys::event_tags(&sealed.event, 9).into_iter().take(2) {
            tree.insert(tag, Vec::new()).unwrap();
        }
        #[allow(clippy::disallowed_methods)] // the crash state on the file; nothing here crashes
        db.flush().unwrap();
    }
    std::fs::remove_dir_all(path.join("wal")).unwrap();
    std::fs::rename(&saved_wal, path.join("wal")).unwrap();

    rt.block_on(async {
        let log = SledLog::open(&path, SledConfig::default()).unwrap();
        assert_eq!(log.head().await.unwrap(), head);
        assert_eq!(
            log.read(ReadRequest::forward(1, 100)).await.unwrap(),
            records
        );
        assert_eq!(log.read(by_party("USA")).await.unwrap(), usa);
        assert_eq!(
            log.read(by_party("CHN")).await.unwrap(),
            chn,
            "the unacknowledged event left no index behind"
        );
        assert_eq!(log.timeline_version(t()).await.unwrap(), version);
        let again = log
            .append(AppendRequest {
                timeline: t(),
                expected: ExpectedVersion::Any,
                events: vec![sample::retraction("t", retracted)],
            })
            .await;
        assert!(
            again.is_err(),
            "the replayed retraction marks its target again: {again:?}"
        );
        let next = sample::statement("t", "CHN", &["deficit"], "2018-05-05");
        let out = append(&log, vec![next.clone()]).await;
        assert_eq!(
            out.last_position(),
            9,
            "the next append takes the ghost's position"
        );
        let read = log.read(ReadRequest::forward(9, 1)).await.unwrap();
        assert_eq!(read[0].event, next);
        assert_eq!(read[0].prev_hash, head.hash);
    });
}
