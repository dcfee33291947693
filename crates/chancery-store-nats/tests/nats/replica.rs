//! The local replica: reopened it catches up, and one that does not match its stream is rebuilt
//! from the stream, while a directory that is not a replica is never touched; a message that is
//! not the log's next record stops it.

use chancery_domain::{NewEvent, sample};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, StoreError};
use chancery_store_nats::NatsLog;

use crate::{server, support};

async fn append(log: &NatsLog, events: Vec<NewEvent>) {
    log.append(AppendRequest {
        refers_within: None,
        timeline: sample::timeline("r"),
        expected: ExpectedVersion::Any,
        events,
    })
    .await
    .unwrap();
}

fn world() -> Vec<NewEvent> {
    sample::world("r", &["USA"], &["deficit"])
}

fn statement() -> NewEvent {
    sample::statement("r", "USA", &["deficit"], "2018-05-01")
}

/// Asserts that `replica` catches up to `position` and then holds exactly `other`'s records.
async fn assert_caught_up_with(replica: &NatsLog, other: &NatsLog, position: u64) {
    assert_eq!(replica.catch_up().await.unwrap().position, position);
    assert_eq!(
        support::all_records(replica).await,
        support::all_records(other).await
    );
}

#[test]
fn a_reopened_replica_catches_up_with_what_others_wrote_meanwhile() {
    support::run(|| async {
        let stream = support::fresh_stream();
        let dir = tempfile::tempdir().unwrap();
        let first = support::log_in(&stream, &dir).await;
        append(&first, world()).await;
        drop(first);

        let (other, _other_dir) = support::log_on(&stream).await;
        append(&other, vec![statement(), statement()]).await;

        let again = support::log_in(&stream, &dir).await;
        assert_caught_up_with(&again, &other, 5).await;
    });
}

#[test]
fn a_replica_that_does_not_match_its_stream_is_rebuilt_from_it() {
    support::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let first = support::log_in(&support::fresh_stream(), &dir).await;
        append(&first, world()).await;
        append(&first, vec![statement()]).await;
        drop(first);

        // Another stream, longer, with other records at the replica's head.
        let stream = support::fresh_stream();
        let (other, _other_dir) = support::log_on(&stream).await;
        append(&other, world()).await;
        append(&other, vec![statement(), statement()]).await;

        let rebuilt = support::log_in(&stream, &dir).await;
        assert_caught_up_with(&rebuilt, &other, 5).await;
        assert_eq!(rebuilt.head().await.unwrap(), other.head().await.unwrap());
    });
}

#[test]
fn a_directory_that_is_not_a_replica_is_left_alone() {
    support::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = support::config(&support::fresh_stream(), &dir);
        std::fs::create_dir_all(&config.replica_dir).unwrap();
        let precious = config.replica_dir.join("db");
        std::fs::write(&precious, b"someone's data").unwrap();
        let err = NatsLog::connect(config).await.err().expect("refused");
        assert!(err.to_string().contains("not a NATS replica"), "{err}");
        assert_eq!(std::fs::read(&precious).unwrap(), b"someone's data");
    });
}

#[test]
fn a_message_that_does_not_continue_the_log_stops_the_replica_and_appends_say_so() {
    support::run(|| async {
        let stream = support::fresh_stream();
        let (log, _dir) = support::log_on(&stream).await;
        append(&log, world()).await;
        // Someone else's publish, past Chancery, lands at position 4.
        let client = async_nats::connect(server::url().unwrap()).await.unwrap();
        let ack = client
            .request(format!("{}.r", stream.1), "not a record".into())
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&ack.payload).contains("\"seq\":4"));

        let err = log
            .append(AppendRequest {
                refers_within: None,
                timeline: sample::timeline("r"),
                expected: ExpectedVersion::Any,
                events: vec![statement()],
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Corrupt {
                    position: Some(4),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(log.head().await.unwrap().position, 3, "reads go on");
    });
}
