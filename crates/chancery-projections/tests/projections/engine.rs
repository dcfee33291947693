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
