//! The id index beside the segments: every id is found in whichever segment holds it, across
//! reopens; what is derived (a closed segment's run, the open segment's ids file) is made again
//! from the records when it is missing, short or damaged; a damaged block is an error, never an
//! answer.

use std::fs;
use std::path::{Path, PathBuf};

use chancery_domain::{EventId, NewEvent};
use chancery_store::{EventLog, StoreError};
use chancery_store_sled::SledLog;

use crate::support::{append, many_segments, runtime, small_segments};

/// The log's files of the id index with extension `ext`, sorted (oldest segment first).
fn files(path: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(path.join("records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    found
}

/// Every event is found at its position, and an append of any of them again is deduplicated.
fn all_found(log: &SledLog, recorded: &[(NewEvent, u64)]) {
    runtime().block_on(async {
        for (event, position) in recorded {
            let found = log.event(event.id).await.unwrap();
            assert_eq!(found.map(|r| r.position()), Some(*position), "{}", event.id);
        }
        for (event, _) in recorded.iter().step_by(17) {
            let out = append(log, vec![event.clone()]).await;
            assert!(out.deduplicated, "{} is appended again", event.id);
        }
        let absent = EventId::new_v7();
        assert!(log.event(absent).await.unwrap().is_none());
    });
}

#[test]
fn ids_are_found_in_every_segment_before_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let recorded = many_segments(&path, 300);
    let runs = files(&path, "run");
    assert!(runs.len() > 20, "{} closed segments", runs.len());
    assert_eq!(
        files(&path, "ids").len(),
        1,
        "only the open segment has an ids file"
    );
    assert_eq!(files(&path, "seg").len(), runs.len() + 1);
    all_found(&small_segments(&path), &recorded);
}

#[test]
fn a_missing_damaged_or_short_part_of_the_id_index_is_made_again_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let recorded = many_segments(&path, 200);
    let runs = files(&path, "run");
    fs::remove_file(&runs[3]).unwrap();
    let mut footer = fs::read(&runs[5]).unwrap();
    let last = footer.len() - 1;
    footer[last] ^= 0x01;
    fs::write(&runs[5], &footer).unwrap();
    fs::write(&files(&path, "ids")[0], b"").unwrap();
    let log = small_segments(&path);
    assert!(runs[3].exists(), "the missing run is made again");
    assert_ne!(
        fs::read(&runs[5]).unwrap(),
        footer,
        "the damaged run is made again"
    );
    all_found(&log, &recorded);
}

#[test]
fn a_changed_byte_in_a_run_is_an_error_and_never_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let recorded = many_segments(&path, 100);
    // The oldest run: its segment holds the registrations and the first statements, all in its
    // first block, and a lookup reaches it only after every newer segment said no.
    let oldest = &files(&path, "run")[0];
    let mut bytes = fs::read(oldest).unwrap();
    bytes[0] ^= 0x01;
    fs::write(oldest, &bytes).unwrap();
    let log = small_segments(&path);
    let (first, position) = &recorded[0];
    let second: u64 = files(&path, "seg")[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        *position < second,
        "the first statement is in the oldest segment"
    );
    let answer = runtime().block_on(log.event(first.id));
    assert!(
        matches!(answer, Err(StoreError::Corrupt { .. })),
        "{answer:?}"
    );
}
