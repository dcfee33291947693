//! The engine's guarantees: checkpoints resume, are never ahead of the log, and belong to their log.

use std::sync::Arc;
use std::time::Duration;

use chancery_domain::sample;
use chancery_projections::{AsOf, CheckpointPolicy, ProjectionError, Projections, Stance};

use crate::support::*;

#[test]
fn a_reopened_checkpoint_resumes_and_equals_a_rebuild() {
    runtime().block_on(async {
        let World {
            projections,
            log,
            dir,
        } = world(demo_events()).await;
        let head = log.head().await.unwrap().position;
        projections.close().unwrap();
        drop(projections);
        let checkpoints = dir.path().join("projections");
        let reopened = Projections::open(
            Arc::clone(&log),
            Some(&checkpoints),
            CheckpointPolicy::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            reopened.applied(),
            head,
            "the checkpoint holds everything applied"
        );
        assert_eq!(reopened.catch_up(&|_, _| {}).await.unwrap(), 0);
        let rebuilt = Projections::open(Arc::clone(&log), None, CheckpointPolicy::default())
            .await
            .unwrap();
        rebuilt.catch_up(&|_, _| {}).await.unwrap();
        assert!(reopened.same_state_as(&rebuilt));
        assert_eq!(
            stance(
                &reopened,
                "us-china-trade",
                "CHN",
                "trade-deficit",
                AsOf::NOW
            )
            .await,
            Some(Stance::Refusal)
        );
    });
}

/// A world of the demo whose projections are closed, their checkpoint left in
/// `<dir>/projections`: its log and its directory.
async fn closed_demo() -> (Arc<dyn chancery_store::EventLog>, tempfile::TempDir) {
    let World {
        projections,
        log,
        dir,
    } = world(demo_events()).await;
    projections.close().unwrap();
    drop(projections);
    (log, dir)
}

#[test]
fn a_checkpoint_ahead_of_the_log_is_refused() {
    runtime().block_on(async {
        let (_log, keep) = closed_demo().await;
        let dir = keep.path().join("projections");
        // A shorter log in the checkpoint's place: the demo's first ten events only.
        let other = tempfile::tempdir().unwrap();
        let short = open_log(other.path()).await;
        append_all(&*short, demo_events().into_iter().take(10).collect()).await;
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
        let (_log, keep) = closed_demo().await;
        let dir = keep.path().join("projections");
        let other = tempfile::tempdir().unwrap();
        let different = open_log(other.path()).await;
        let mut events = demo_events();
        events.truncate(27);
        events.push(sample::statement(
            "us-china-trade",
            "USA",
            &["tariffs"],
            "2018-05-01",
        ));
        append_all(&*different, events).await;
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
        let rebuilt = Projections::open(different, Some(&dir), CheckpointPolicy::default())
            .await
            .unwrap();
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
            let rebuilt =
                Projections::open(Arc::clone(&log), Some(&dir), CheckpointPolicy::default())
                    .await
                    .unwrap();
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
