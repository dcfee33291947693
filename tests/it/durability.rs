//! Durability: every commit group reaches the disk with an fdatasync of its segment before it is
//! acknowledged, and the index's sled files are synced at checkpoints. sled's flush alone only
//! calls sync_file_range, so without Chancery's syncs the counts below would be 0.

use std::fs;
use std::process::Command;

use chancery_domain::sample;
use chancery_testkit::ci;

use crate::support::*;

#[test]
fn every_commit_group_is_fdatasynced() {
    let Some(strace) = ci::require_tool(
        "strace",
        "apt-get install strace",
        "this test checked nothing",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 28 demo events, then 1,200 more in the same timeline: the import appends them in batches of
    // 500, one after another, so they form exactly three commit groups.
    let mut lines: Vec<String> = fs::read_to_string(demo_file())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for _ in 0..1200 {
        let e = sample::statement("us-china-trade", "USA", &["tariffs"], "2018-05-02");
        lines.push(String::from_utf8(e.to_canonical_json()).unwrap());
    }
    let file = dir.path().join("events.ndjson");
    fs::write(&file, lines.join("\n")).unwrap();
    let summary = dir.path().join("strace.txt");

    let status = Command::new(strace)
        // -y names each descriptor's file, so the segments' syncs can be told from sled's.
        .args(["-f", "-y", "-e", "trace=fdatasync,fsync", "-o"])
        .arg(&summary)
        .arg(chancery_bin())
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("import")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let trace = fs::read_to_string(&summary).unwrap();
    let syncs_of = |suffix: &str| {
        trace
            .lines()
            .filter(|l| l.contains("fdatasync(") && l.contains(suffix) && l.contains("= 0"))
            .count()
    };
    assert_eq!(
        syncs_of(".seg>"),
        3,
        "one fdatasync of the segment per commit group:\n{trace}"
    );
    assert!(
        syncs_of("/db>") >= 1,
        "sled's data file is synced at the checkpoint on close:\n{trace}"
    );
    assert_eq!(verified(&dir.path().join("data")).0, 1228);
}
