//! Durability: every commit group reaches the disk with an fdatasync before it is acknowledged.
//! sled's own flush only calls sync_file_range, so without Chancery's sync the count would be 0.

use std::fs;
use std::process::Command;

use chancery_domain::sample;

use crate::support::*;

#[test]
fn every_commit_group_is_fdatasynced() {
    let Some(strace) = require_tool("strace", "apt-get install strace") else {
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
        .args([
            "-f",
            "-c",
            "-e",
            "trace=fdatasync,fsync,sync_file_range",
            "-o",
        ])
        .arg(&summary)
        .arg(chancery_bin())
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("import")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let report = fs::read_to_string(&summary).unwrap();
    let calls = |syscall: &str| -> u64 {
        report
            .lines()
            .find(|l| l.split_whitespace().last() == Some(syscall))
            .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    assert_eq!(
        calls("fdatasync"),
        3,
        "one fdatasync per commit group:\n{report}"
    );
    assert!(
        calls("sync_file_range") >= 3,
        "sled's flush ran for each group:\n{report}"
    );
    assert_eq!(verified(&dir.path().join("data")).0, 1228);
}
