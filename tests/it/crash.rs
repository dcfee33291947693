//! Crash safety: a writer is killed with SIGKILL at random moments, many times. After each kill,
//! every append it saw acknowledged must be in the log at its position, positions must be
//! gapless, and the hash chain must verify.

use std::process::Command;
use std::time::SystemTime;

use chancery_domain::{EventId, Hash};
use chancery_store::{EventLog, ReadRequest};
use chancery_store_sled::{SledConfig, SledLog};
use chancery_testkit::PATIENCE;
use chancery_testkit::server::Process;

/// A small deterministic generator, seeded from the clock and printed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_appends_survive_sigkill_at_random_moments() {
    let cycles: u64 = std::env::var("CHANCERY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed = std::env::var("CHANCERY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test: {cycles} cycles, seed {seed} (CHANCERY_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let runtime = crate::support::runtime();
    let mut acknowledged: Vec<(u64, EventId)> = Vec::new();

    for cycle in 0..cycles {
        let mut command = Command::new(env!("CARGO_BIN_EXE_crash-writer"));
        command.arg(&path);
        let mut writer = Process::spawn("crash-writer", &command).expect("the writer starts");

        // Kill right after start in some cycles, after a few hundred acks in others.
        let kill_after = if rng.next().is_multiple_of(5) {
            0
        } else {
            rng.next() % 400
        };
        writer
            .wait_lines("its progress", PATIENCE, |lines| {
                let ready = lines.iter().any(|l| l == "READY");
                let acks = lines.iter().filter_map(|l| parse_ack(l)).count() as u64;
                (ready && acks >= kill_after).then_some(())
            })
            .expect("the writer made progress in time");
        writer.kill9().expect("SIGKILL");
        // Acks printed before the kill were acknowledged too.
        acknowledged.extend(writer.lines().iter().filter_map(|l| parse_ack(l)));

        let head = runtime.block_on(check_log(&path, &acknowledged));
        if cycle % 10 == 0 || cycle + 1 == cycles {
            eprintln!(
                "cycle {cycle}: head {head}, {} acknowledged events checked",
                acknowledged.len()
            );
        }
    }
    assert!(
        acknowledged.len() > 100,
        "the writers made real progress ({} acks)",
        acknowledged.len()
    );
    eprintln!(
        "crash test done: {cycles} SIGKILLs, {} acknowledged events all present, chain intact",
        acknowledged.len()
    );
}

fn parse_ack(line: &str) -> Option<(u64, EventId)> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Reopens the log after a kill and checks it; returns its head.
async fn check_log(path: &std::path::Path, acknowledged: &[(u64, EventId)]) -> u64 {
    let log = SledLog::open(path, SledConfig::default()).expect("the log reopens after SIGKILL");
    let head = log.head().await.unwrap();
    let mut prev = Hash::GENESIS;
    let mut next = 1;
    loop {
        let records = log.read(ReadRequest::forward(next, 1000)).await.unwrap();
        if records.is_empty() {
            break;
        }
        for record in records {
            assert_eq!(record.position(), next, "positions are gapless");
            record.verify().expect("each record's hash verifies");
            assert_eq!(record.prev_hash(), prev, "the chain links position {next}");
            prev = record.hash();
            next += 1;
        }
    }
    assert_eq!(next - 1, head.position);
    assert_eq!(prev, head.hash);
    for (position, id) in acknowledged {
        let found = log
            .event(*id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged event {id} at {position} is lost"));
        assert_eq!(found.position(), *position, "acknowledged event {id} moved");
    }
    head.position
}
