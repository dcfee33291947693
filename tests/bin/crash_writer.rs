//! A child process for the crash test: appends to a sled log from several tasks and prints each
//! acknowledged append (`ACK <position> <id>` per event) the moment it is acknowledged, until it
//! is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper: any failure must be loud

use std::io::Write;
use std::sync::Arc;

use chancery_domain::{NewEvent, sample};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion};
use chancery_store_sled::{SledConfig, SledLog};

const TIMELINE: &str = "crash";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: crash-writer <log dir>");
    let log = Arc::new(SledLog::open(&path, SledConfig::default()).expect("the log opens"));
    if log
        .timeline_version(sample::timeline(TIMELINE))
        .await
        .unwrap()
        .is_none()
    {
        let world = sample::world(TIMELINE, &["USA", "CHN"], &["tariffs"]);
        append(&log, ExpectedVersion::NoTimeline, world).await;
    }
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut tasks = Vec::new();
    for task in 0..4u64 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for round in 0u64.. {
                let size = usize::try_from(1 + (round * 7 + task) % 5).unwrap();
                let events: Vec<_> = (0..size)
                    .map(|_| {
                        sample::statement(
                            TIMELINE,
                            ["USA", "CHN"][usize::from(task % 2 == 0)],
                            &["tariffs"],
                            "2018-05-01",
                        )
                    })
                    .collect();
                append(&log, ExpectedVersion::Any, events).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Appends `events` to the crash timeline, and reports each the moment it is acknowledged.
async fn append(log: &SledLog, expected: ExpectedVersion, events: Vec<NewEvent>) {
    let out = log
        .append(AppendRequest {
            refers_within: None,
            timeline: sample::timeline(TIMELINE),
            expected,
            events: events.clone(),
        })
        .await
        .unwrap();
    report(&events, &out.events);
}

fn report(events: &[NewEvent], appended: &[chancery_store::Appended]) {
    let mut out = std::io::stdout().lock();
    for (e, a) in events.iter().zip(appended) {
        writeln!(out, "ACK {} {}", a.position, e.id).unwrap();
    }
    out.flush().unwrap();
}
