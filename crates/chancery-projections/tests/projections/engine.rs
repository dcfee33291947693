//! The engine's guarantees: checkpoints resume, are never ahead of the log, and belong to their log.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chancery_domain::sample;
use chancery_projections::{AsOf, CheckpointPolicy, ProjectionError, Projections, Stance};
use chancery_store::EventLog;

use crate::support::*;

#[test]
fn a_reopened_checkpoint_resumes_and_equals_a_rebuild() {
    runtime().block_on(async {
        let (log, checkpoints, _keep) = closed_demo().await;
        let reopened = resumed_as_rebuilt(&log, &checkpoints).await;
        assert_china_refuses_on_the_deficit(&reopened).await;
    });
}

/// The projections checkpointed in `dir`, reopened: they hold everything the log does, have
/// nothing to catch up, and equal a rebuild.
async fn resumed_as_rebuilt(log: &Arc<dyn EventLog>, dir: &std::path::Path) -> Arc<Projections> {
    let reopened = open_projections(log, Some(dir)).await;
    assert_eq!(
        reopened.applied(),
        log.head().await.unwrap().position,
        "the checkpoint holds everything applied"
    );
    assert_eq!(reopened.catch_up(&|_, _| {}).await.unwrap(), 0);
    assert!(reopened.same_state_as(&*rebuilt(log).await));
    reopened
}

/// The demo's answer to "where does China stand on the trade deficit now".
async fn assert_china_refuses_on_the_deficit(projections: &Projections) {
    assert_eq!(
        stance(
            projections,
            "us-china-trade",
            "CHN",
            "trade-deficit",
            AsOf::NOW
        )
        .await,
        Some(Stance::Refusal)
    );
}

/// sled files its snapshots as `snap.<lsn>` beside its data file.
fn snapshots_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("snap."))
        .collect()
}

#[test]
fn a_checkpoint_that_reopens_its_database_keeps_answering_and_resumes() {
    runtime().block_on(async {
        let (log, keep) = log_holding(demo_events()).await;
        let dir = keep.path().join("projections");
        // Every checkpoint is past the bound: each save reopens the database.
        let policy = CheckpointPolicy {
            snapshot_after_bytes: 1,
            ..CheckpointPolicy::default()
        };
        let projections = open_projections_with(&log, Some(&dir), policy).await;
        assert!(snapshots_in(&dir).is_empty(), "a new store has no snapshot");
        projections.catch_up(&|_, _| {}).await.unwrap();
        assert!(
            !snapshots_in(&dir).is_empty(),
            "the reopen had sled write its snapshot"
        );
        // The projections read through the reopened database, and write to it.
        assert_china_refuses_on_the_deficit(&projections).await;
        let later = sample::statement(
            "us-china-trade",
            "USA",
            &["made-in-china-2025"],
            "2018-05-05",
        );
        append_all(&*log, vec![later]).await;
        assert_eq!(projections.catch_up(&|_, _| {}).await.unwrap(), 1);
        assert!(projections.same_state_as(&*rebuilt(&log).await));
        projections.close().unwrap();
        drop(projections);

        let reopened = resumed_as_rebuilt(&log, &dir).await;
        assert_eq!(
            stance(
                &reopened,
                "us-china-trade",
                "USA",
                "made-in-china-2025",
                AsOf::NOW
            )
            .await,
            Some(Stance::Statement)
        );
    });
}

/// A world of the demo whose projections are closed: its log, the directory of their checkpoint,
/// and the temporary directory that holds both.
async fn closed_demo() -> (Arc<dyn EventLog>, PathBuf, tempfile::TempDir) {
    let World {
        projections,
        log,
        dir,
    } = world(demo_events()).await;
    projections.close().unwrap();
    drop(projections);
    (log, dir.path().join("projections"), dir)
}

#[test]
fn a_checkpoint_ahead_of_the_log_is_refused() {
    runtime().block_on(async {
        let (_log, dir, _keep) = closed_demo().await;
        // A shorter log in the checkpoint's place: the demo's first ten events only.
        let (short, _other) = log_holding(demo_events().into_iter().take(10).collect()).await;
        let err = Projections::open(short, Some(&dir), CheckpointPolicy::default())
            .await
            .err()
            .unwrap();
        assert_eq!(
            err,
            ProjectionError::AheadOfLog {
                checkpoint: 28,
                head: 10
            }
        );
        assert!(err.to_string().contains("chancery replay"));
    });
}

#[test]
fn a_checkpoint_of_another_log_is_refused_and_a_reset_rebuilds() {
    runtime().block_on(async {
        let (_log, dir, _keep) = closed_demo().await;
        let mut events = demo_events();
        events.truncate(27);
        events.push(sample::statement(
            "us-china-trade",
            "USA",
            &["tariffs"],
            "2018-05-01",
        ));
        let (different, _other) = log_holding(events).await;
        let err = Projections::open(
            Arc::clone(&different),
            Some(&dir),
            CheckpointPolicy::default(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err, ProjectionError::Diverged { position: 28 });
        Projections::reset(&dir).unwrap();
        let rebuilt = open_projections(&different, Some(&dir)).await;
        assert_eq!(rebuilt.applied(), 0);
        assert_eq!(rebuilt.catch_up(&|_, _| {}).await.unwrap(), 28);
    });
}

/// Bytes of the files under `dir`, 0 if it is gone.
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn a_reset_frees_the_checkpoint_s_space_and_refuses_one_in_use() {
    runtime().block_on(async {
        let World {
            projections,
            log,
            dir: keep,
        } = world(demo_events()).await;
        let dir = keep.path().join("projections");
        let err = Projections::reset(&dir).err();
        assert!(
            matches!(err, Some(ProjectionError::Storage(_))),
            "a checkpoint held open is not reset: {err:?}"
        );
        projections.close().unwrap();
        drop(projections);
        let before = bytes_under(&dir);
        assert!(before > 0, "the checkpoint was written");
        let mut sizes = Vec::new();
        for _ in 0..3 {
            Projections::reset(&dir).unwrap();
            assert_eq!(bytes_under(&dir), 0, "a reset leaves nothing behind");
            let rebuilt = open_projections(&log, Some(&dir)).await;
            assert_eq!(rebuilt.applied(), 0);
            rebuilt.catch_up(&|_, _| {}).await.unwrap();
            rebuilt.close().unwrap();
            drop(rebuilt);
            sizes.push(bytes_under(&dir));
        }
        // Each rebuild writes the same, from nothing: the third takes about the first's room
        // (sled's files vary by a few KiB from run to run), not three times it.
        let (least, most) = (
            sizes.iter().min().copied().unwrap_or(0),
            sizes.iter().max().copied().unwrap_or(0),
        );
        assert!(
            most < 2 * least,
            "three rebuilds take no more room than one: {sizes:?} bytes"
        );
    });
}

/// The value files of a checkpoint directory, with their sizes.
fn value_files(dir: &std::path::Path) -> Vec<(PathBuf, u64)> {
    std::fs::read_dir(dir.join("values"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "val"))
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect()
}

/// Value files of 4 KiB: every checkpoint closes some, and rewrites leave them mostly dead.
const SMALL_FILES: CheckpointPolicy = CheckpointPolicy {
    every_events: 10_000,
    every: Duration::from_secs(2),
    snapshot_after_bytes: 256 << 20,
    value_file_bytes: 4096,
};

/// Appends `rounds` statements, each applied and checkpointed on its own, that change the same
/// lists again and again, now at their end, now before it.
async fn rewrite_rounds(log: &Arc<dyn EventLog>, projections: &Projections, rounds: usize) {
    let dates = ["2018-06-01", "2018-04-01", "2018-07-15", "2018-03-10"];
    for round in 0..rounds {
        let late = sample::statement(
            "us-china-trade",
            if round % 2 == 0 { "USA" } else { "CHN" },
            &["made-in-china-2025", "trade-deficit"],
            dates[round % dates.len()],
        );
        append_all(&**log, vec![late]).await;
        assert_eq!(projections.catch_up(&|_, _| {}).await.unwrap(), 1);
        projections.save().unwrap();
    }
}

#[test]
fn bytes_a_crash_left_after_the_last_checkpoint_are_cut_off_at_the_next_start() {
    runtime().block_on(async {
        let (log, keep) = log_holding(demo_events()).await;
        let dir = keep.path().join("projections");
        // Files of 64 KiB: the demo's state fits in the first, and the rounds below fill the
        // next ones and leave the first mostly dead, to be compacted.
        let policy = CheckpointPolicy {
            value_file_bytes: 64 << 10,
            ..SMALL_FILES
        };
        let projections = open_projections_with(&log, Some(&dir), policy).await;
        projections.catch_up(&|_, _| {}).await.unwrap();
        projections.close().unwrap();
        drop(projections);
        // A checkpoint that a crash cut short: half a frame after the last whole one.
        let files = value_files(&dir);
        assert_eq!(files.len(), 1, "{files:?}");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&files[0].0)
            .unwrap();
        std::io::Write::write_all(&mut file, &[0x2a; 100]).unwrap();
        drop(file);

        let projections = open_projections_with(&log, Some(&dir), policy).await;
        // A list of its own, written once right after the cut and never again: it must
        // outlive the compaction of the file it went to.
        let once = sample::statement(
            "us-china-trade",
            "CHN",
            &["auto-sector-access"],
            "2018-05-20",
        );
        append_all(&*log, vec![once]).await;
        assert_eq!(projections.catch_up(&|_, _| {}).await.unwrap(), 1);
        projections.save().unwrap();
        rewrite_rounds(&log, &projections, 80).await;
        assert!(
            !value_files(&dir)
                .iter()
                .any(|(path, _)| *path == files[0].0),
            "the first file was compacted"
        );
        assert!(projections.same_state_as(&*rebuilt(&log).await));
        projections.close().unwrap();
        drop(projections);
        resumed_as_rebuilt(&log, &dir).await;
    });
}

#[test]
fn rewritten_blocks_are_compacted_and_the_state_reads_back_whole() {
    runtime().block_on(async {
        let (log, keep) = log_holding(demo_events()).await;
        let dir = keep.path().join("projections");
        let projections = open_projections_with(&log, Some(&dir), SMALL_FILES).await;
        projections.catch_up(&|_, _| {}).await.unwrap();
        projections.save().unwrap();
        rewrite_rounds(&log, &projections, 60).await;
        assert!(projections.same_state_as(&*rebuilt(&log).await));
        projections.close().unwrap();
        drop(projections);
        let compacted: u64 = value_files(&dir).iter().map(|(_, len)| len).sum();

        // The same state written once, from nothing, in files as small.
        let fresh_dir = keep.path().join("fresh");
        let fresh = open_projections_with(&log, Some(&fresh_dir), SMALL_FILES).await;
        fresh.catch_up(&|_, _| {}).await.unwrap();
        fresh.close().unwrap();
        drop(fresh);
        let once: u64 = value_files(&fresh_dir).iter().map(|(_, len)| len).sum();
        // Closed files are kept at least half live, and the open one and those a checkpoint
        // just compacted may be dead besides.
        assert!(
            compacted <= 2 * once + 8 * 4096,
            "60 checkpoints of rewrites take {compacted} bytes of value files; the state written once takes {once}"
        );

        let reopened = resumed_as_rebuilt(&log, &dir).await;
        assert_china_refuses_on_the_deficit(&reopened).await;
    });
}

#[test]
fn a_changed_byte_in_a_value_file_is_an_error_not_an_answer() {
    runtime().block_on(async {
        let (log, dir, _keep) = closed_demo().await;
        for (path, len) in value_files(&dir) {
            // Every frame of a state written once is live: change a byte inside each quarter.
            let mut bytes = std::fs::read(&path).unwrap();
            for quarter in 1..4 {
                let at = usize::try_from(len).unwrap() * quarter / 4;
                bytes[at] ^= 0x55;
            }
            std::fs::write(&path, bytes).unwrap();
        }
        let reopened = open_projections(&log, Some(&dir)).await;
        let q = chancery_projections::PositionQuery {
            timeline: Some(timeline("us-china-trade")),
            ..chancery_projections::PositionQuery::default()
        };
        let err = reopened.positions(&q).await.err();
        assert!(
            matches!(&err, Some(ProjectionError::Corrupt(m)) if m.contains("damaged")),
            "{err:?}"
        );
    });
}

#[test]
fn following_the_log_reads_your_writes_within_a_bound() {
    runtime().block_on(async {
        let w = world(demo_events()).await;
        let follower = Arc::clone(&w.projections);
        let task = tokio::spawn(async move { follower.follow().await });
        let e = sample::statement(
            "us-china-trade",
            "USA",
            &["made-in-china-2025"],
            "2018-05-05",
        );
        append_all(&*w.log, vec![e]).await;
        let head = w.log.head().await.unwrap().position;
        w.projections
            .wait_for(head, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            stance(
                &w.projections,
                "us-china-trade",
                "USA",
                "made-in-china-2025",
                AsOf::NOW
            )
            .await,
            Some(Stance::Statement)
        );
        let err = w
            .projections
            .wait_for(head + 5, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProjectionError::NotYet { applied, .. } if applied == head),
            "{err}"
        );
        task.abort();
    });
}
