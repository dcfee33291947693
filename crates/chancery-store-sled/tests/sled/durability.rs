//! What only the sled backend does: reopening resumes at the head, and every commit group is
//! made durable with an fdatasync before it is acknowledged.

use std::path::PathBuf;

use chancery_domain::sample;
use chancery_store::{EventLog, ExpectedVersion, ReadRequest};
use chancery_store_sled::{SledConfig, SledLog, keys};
use chancery_testkit::disk::{copy_dir, segment_frames};

use crate::support::{T, append, open, request, runtime, t, with_log, world};

#[test]
fn reopening_resumes_at_the_head_with_registry_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rt = runtime();
    let (head, registry) = rt.block_on(async {
        let log = open(&path);
        let world = sample::world(T, &["USA", "CHN"], &["deficit"]);
        log.append(request(ExpectedVersion::NoTimeline, world))
            .await
            .unwrap();
        (log.head().await.unwrap(), log.registry().await.unwrap())
    });
    rt.block_on(async {
        let log = open(&path);
        assert_eq!(log.head().await.unwrap(), head);
        assert_eq!(log.registry().await.unwrap(), registry);
        assert_eq!(log.timeline_version(t()).await.unwrap(), Some(4));
        let e = sample::statement(T, "USA", &["deficit"], "2018-05-01");
        let out = log
            .append(request(ExpectedVersion::Exact(4), vec![e]))
            .await
            .unwrap();
        assert_eq!(out.last_position(), 5);
        let all = log.read(ReadRequest::forward(1, 10)).await.unwrap();
        assert_eq!(
            all[4].prev_hash(),
            head.hash,
            "the chain continues across the reopen"
        );
    });
}

#[test]
fn a_second_process_cannot_open_a_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let _first = open(&path);
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
    with_log(async |log| {
        let before = log.writer_stats();
        append(log, sample::world(T, &["USA"], &["deficit"])).await;
        for _ in 0..5 {
            append(
                log,
                vec![sample::statement(T, "USA", &["deficit"], "2018-05-01")],
            )
            .await;
        }
        let after = log.writer_stats();
        // Sequential appends each form their own group; each group syncs once.
        assert_eq!(after.groups - before.groups, 6);
        assert_eq!(after.syncs - before.syncs, 6);
    });
}

/// The party filter that names `party`, read forward over the whole log.
fn by_party(party: &str) -> ReadRequest {
    ReadRequest::forward(1, 100).with_filter(chancery_store::EventFilter {
        parties: vec![chancery_domain::PartyCode::new(party).unwrap()],
        ..chancery_store::EventFilter::all()
    })
}

/// The last segment file of a log directory.
fn last_segment(log: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(log.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

/// What a crash leaves of a log that `write` appends to: a copy of its directory taken while it
/// runs, once `write` is done. The segments hold every acknowledged group (synced before the
/// answer); the index holds what its last checkpoint made durable, and perhaps more. Answers the
/// directory holding the log and the copy, the copy's path, and what `write` answered.
fn crashed_copy<T>(
    rt: &tokio::runtime::Runtime,
    write: impl AsyncFnOnce(&SledLog) -> T,
) -> (tempfile::TempDir, PathBuf, T) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let crashed = dir.path().join("crashed");
    let answer = rt.block_on(async {
        let log = open(&path);
        let answer = write(&log).await;
        copy_dir(&path, &crashed).unwrap();
        answer
    });
    (dir, crashed, answer)
}

/// A crash between checkpoints: the segments hold groups the index never saw (or saw only in
/// part). Opening indexes them again from the segments: every acknowledged event comes back whole
/// (record, indexes, version, a retraction's mark); a torn write after them is cut off.
#[test]
fn a_crash_after_the_checkpoint_is_indexed_again_from_the_segments() {
    let rt = runtime();
    let (_dir, crashed, (head, records, usa, chn, version)) = crashed_copy(&rt, async |log| {
        append(log, sample::world(T, &["USA", "CHN"], &["deficit"])).await;
        log.checkpoint().await.unwrap();
        let retracted = sample::statement(T, "USA", &["deficit"], "2018-05-01");
        append(log, vec![retracted.clone()]).await;
        append(
            log,
            vec![sample::statement(T, "CHN", &["deficit"], "2018-05-02")],
        )
        .await;
        append(log, vec![sample::retraction(T, retracted.id)]).await;
        // The copy comes before the log's next checkpoint: it checkpoints once a second while
        // appends go on, and these took far less.
        let head = log.head().await.unwrap();
        let records = log.read(ReadRequest::forward(1, 100)).await.unwrap();
        let usa = log.read(by_party("USA")).await.unwrap();
        let chn = log.read(by_party("CHN")).await.unwrap();
        let version = log.timeline_version(t()).await.unwrap();
        (head, records, usa, chn, version)
    });
    assert_eq!(head.position, 7);

    // The crash also tore a group being written: half a frame after the last whole one.
    let segment = last_segment(&crashed);
    let mut bytes = std::fs::read(&segment).unwrap();
    let whole = bytes.len();
    let torn: Vec<u8> = bytes[whole - 40..].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&segment, &bytes).unwrap();

    rt.block_on(async {
        let log = open(&crashed);
        assert_eq!(log.head().await.unwrap(), head);
        assert_eq!(
            log.read(ReadRequest::forward(1, 100)).await.unwrap(),
            records
        );
        assert_eq!(log.read(by_party("USA")).await.unwrap(), usa);
        assert_eq!(log.read(by_party("CHN")).await.unwrap(), chn);
        assert_eq!(log.timeline_version(t()).await.unwrap(), version);
        let again = log
            .append(request(
                ExpectedVersion::Any,
                vec![sample::retraction(T, records[4].id())],
            ))
            .await;
        assert!(
            again.is_err(),
            "the indexed retraction marks its target again: {again:?}"
        );
        let next = sample::statement(T, "CHN", &["deficit"], "2018-05-05");
        let out = append(&log, vec![next.clone()]).await;
        assert_eq!(out.last_position(), 8, "the torn write took no position");
        let read = log.read(ReadRequest::forward(8, 1)).await.unwrap();
        assert_eq!(read[0].event().unwrap(), &next);
        assert_eq!(read[0].prev_hash(), head.hash);
    });
    assert!(
        std::fs::metadata(last_segment(&crashed)).unwrap().len() < bytes.len() as u64 + 1_000,
        "the torn frame was cut off before the next group"
    );
}

/// A group whose last frame never reached the disk is dropped whole: the frames before it, though
/// intact, are not a group's end.
#[test]
fn a_group_cut_short_is_dropped_whole() {
    let rt = runtime();
    let (_dir, crashed, head) = crashed_copy(&rt, async |log| {
        world(log).await;
        log.checkpoint().await.unwrap();
        let head = log.head().await.unwrap();
        let events = (0..3)
            .map(|i| sample::statement(T, "USA", &["deficit"], &format!("2018-05-0{}", i + 1)))
            .collect();
        append(log, events).await;
        head
    });
    // The last frame of the three-event group goes: the two before it stay whole on disk.
    let segment = last_segment(&crashed);
    let bytes = std::fs::read(&segment).unwrap();
    let last = segment_frames(&bytes).last().unwrap().start;
    std::fs::write(&segment, &bytes[..last]).unwrap();

    rt.block_on(async {
        let log = open(&crashed);
        assert_eq!(log.head().await.unwrap(), head, "none of the group is kept");
        assert_eq!(
            log.read(ReadRequest::forward(1, 100)).await.unwrap().len() as u64,
            head.position
        );
        let out = append(
            &log,
            vec![sample::statement(T, "USA", &["deficit"], "2018-06-01")],
        )
        .await;
        assert_eq!(out.last_position(), head.position + 1);
    });
}

/// Index entries about positions past the head (what a copy that skips syncing can keep after a
/// power cut) are never seen: reads and appends act as if they were not there, and the record
/// that comes back at that position writes them again. The id index's file beyond its records,
/// a retraction's mark and posting-list entries are all written past the head here.
#[test]
fn index_entries_past_the_head_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rt = runtime();
    let ghost = sample::statement(T, "USA", &["deficit"], "2018-05-01");
    let kept = sample::statement(T, "USA", &["deficit"], "2018-04-01");
    let head = rt.block_on(async {
        let log = open(&path);
        world(&log).await;
        append(&log, vec![kept.clone()]).await;
        log.head().await.unwrap()
    });
    {
        let ids = last_segment(&path).with_extension("ids");
        let mut held = std::fs::read(&ids).unwrap();
        assert_eq!(held.len() as u64, head.position * 16, "one id per record");
        held.extend_from_slice(ghost.id.as_bytes());
        std::fs::write(&ids, &held).unwrap();
        let db = chancery_store_sled::open_released(
            &sled::Config::new()
                .path(&path)
                .segment_size(8 * 1024 * 1024),
        )
        .unwrap();
        let tree = db.open_tree("index").unwrap();
        let ghost_at = head.position + 1;
        tree.insert(keys::retraction(&kept.id), &ghost_at.to_be_bytes())
            .unwrap();
        let writes = chancery_store_sled::postings::Postings::default()
            .append(
                &tree,
                &[
                    (keys::postings(keys::DIM_PARTY, b"USA"), ghost_at),
                    (keys::postings(keys::DIM_TIMELINE, T.as_bytes()), ghost_at),
                ],
            )
            .unwrap();
        for (k, v) in writes {
            tree.insert(k, v).unwrap();
        }
        // A store built by hand for the test: no crash to survive, so sled's flush will do.
        #[allow(clippy::disallowed_methods)]
        db.flush().unwrap();
    }
    rt.block_on(async {
        let log = open(&path);
        assert_eq!(log.head().await.unwrap(), head);
        assert!(log.event(ghost.id).await.unwrap().is_none());
        assert_eq!(
            log.read(by_party("USA")).await.unwrap().len(),
            1,
            "the ghost's tag is past the head"
        );
        assert_eq!(
            log.timeline_version(t()).await.unwrap(),
            Some(head.position)
        );
        let out = append(&log, vec![ghost.clone()]).await;
        assert!(!out.deduplicated, "the ghost's id is not a record");
        assert_eq!(out.last_position(), head.position + 1);
        assert_eq!(
            log.event(ghost.id).await.unwrap().unwrap().position(),
            head.position + 1
        );
        assert_eq!(log.read(by_party("USA")).await.unwrap().len(), 2);
        // The mark says the kept event was retracted at the ghost's position, which holds a
        // statement: the mark is not believed.
        let out = append(&log, vec![sample::retraction(T, kept.id)]).await;
        assert_eq!(out.last_position(), head.position + 2);
    });
}
