//! What only the sled backend does: reopening resumes at the head, and every commit group is
//! made durable with an fdatasync before it is acknowledged.

use chancery_domain::sample;
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, ReadRequest};
use chancery_store_sled::{SledConfig, SledLog};

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
