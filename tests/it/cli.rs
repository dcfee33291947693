//! The CLI: import, export and verify, as a user runs them.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::*;

#[test]
fn import_verify_export_and_restore_reproduce_the_log_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let demo = demo_file();

    let out = chancery_ok(&a, &["import", demo.to_str().unwrap()]);
    assert!(
        out.contains("imported 28 events (0 already present)"),
        "{out}"
    );
    let out = chancery_ok(&a, &["import", demo.to_str().unwrap()]);
    assert!(
        out.contains("imported 0 events (28 already present)"),
        "a re-import is a no-op: {out}"
    );
    let (events, hash) = verified(&a);
    assert_eq!(events, 28);

    let first = dir.path().join("first.ndjson");
    chancery_ok(&a, &["export", "--out", first.to_str().unwrap()]);
    let out = chancery_ok(&b, &["import", first.to_str().unwrap()]);
    assert!(out.contains("restored 28 records"), "{out}");
    assert_eq!(verified(&b), (28, hash), "same chain, same head hash");
    let second = dir.path().join("second.ndjson");
    chancery_ok(&b, &["export", "--out", second.to_str().unwrap()]);
    assert_eq!(
        fs::read(&first).unwrap(),
        fs::read(&second).unwrap(),
        "the export of the restored store is byte-identical"
    );

    // Restoring again into the restored store changes nothing.
    let out = chancery_ok(&b, &["import", first.to_str().unwrap()]);
    assert!(
        out.contains("restored 0 records (28 already present)"),
        "{out}"
    );
}

/// The record lines of an export (its header left out).
fn records(export: &str) -> Vec<&str> {
    export.lines().skip(1).collect()
}

#[test]
fn import_as_records_the_operator_inside_the_hash_and_a_restore_keeps_it_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let demo = demo_file();
    chancery_ok(&a, &["import", "--as", "ana", demo.to_str().unwrap()]);
    let first = dir.path().join("first.ndjson");
    chancery_ok(&a, &["export", "--out", first.to_str().unwrap()]);
    let exported = fs::read_to_string(&first).unwrap();
    assert_eq!(records(&exported).len(), 28);
    for line in records(&exported) {
        assert!(line.contains(r#","recordedBy":"ana"},"hash":""#), "{line}");
    }
    let (_, hash) = verified(&a);

    // Re-run by someone else: nothing new, and the records keep the first operator's name.
    let out = chancery_ok(&a, &["import", "--as", "bo", demo.to_str().unwrap()]);
    assert!(
        out.contains("imported 0 events (28 already present)"),
        "{out}"
    );
    assert_eq!(chancery_ok(&a, &["export"]), exported);

    // Restored by another operator: the records are the export's, byte for byte.
    let out = chancery_ok(&b, &["import", "--as", "cy", first.to_str().unwrap()]);
    assert!(out.contains("restored 28 records"), "{out}");
    assert_eq!(verified(&b), (28, hash));
    assert_eq!(chancery_ok(&b, &["export"]), exported);

    // A changed name is a changed record: its hash no longer holds.
    let tampered = dir.path().join("tampered.ndjson");
    fs::write(
        &tampered,
        exported.replacen(r#""recordedBy":"ana""#, r#""recordedBy":"eve""#, 1),
    )
    .unwrap();
    let out = chancery(&a, &["verify", "--file", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("broken at position 1") && stdout(&out).contains("hash mismatch"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_version_1_export_restored_with_a_name_keeps_its_records_unnamed() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = workspace().join("tests/fixtures/v1-demo-export.ndjson");
    chancery_ok(
        dir.path(),
        &["import", "--as", "ana", fixture.to_str().unwrap()],
    );
    let export = chancery_ok(dir.path(), &["export"]);
    assert_eq!(export.as_bytes(), fs::read(&fixture).unwrap());
    assert!(!export.contains("recordedBy"));
}

/// `chancery import <the demo's first three lines>` into a fresh store with `env` set (and
/// `USER` and `LOGNAME` removed unless `env` sets them): the `recordedBy` of its records.
fn recorded_by_default(env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("three.ndjson");
    write_lines(&file, &demo_lines()[..3]);
    let mut import = std::process::Command::new(chancery_bin());
    import
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("import")
        .arg(&file)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .envs(env.iter().copied());
    let out = import.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let export = chancery_ok(&dir.path().join("data"), &["export"]);
    records(&export)
        .iter()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["event"]["recordedBy"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn import_records_the_os_user_unless_told_and_refuses_a_name_that_is_none() {
    assert_eq!(
        recorded_by_default(&[("USER", "zoe"), ("LOGNAME", "lou")]),
        ["zoe"; 3]
    );
    assert_eq!(recorded_by_default(&[("LOGNAME", "lou")]), ["lou"; 3]);
    assert_eq!(recorded_by_default(&[]), ["unknown"; 3]);

    let dir = tempfile::tempdir().unwrap();
    let demo = demo_file();
    let long = "a".repeat(65);
    for (name, why) in [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        (long.as_str(), "the limit is 64"),
        ("an\na", "control characters"),
    ] {
        let out = chancery(
            dir.path(),
            &["import", "--as", name, demo.to_str().unwrap()],
        );
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("--as") && err.contains(why), "{name:?}: {err}");
    }
    assert_eq!(verified(dir.path()).0, 0, "nothing was written");
}

#[test]
fn csv_export_has_a_header_and_a_row_per_event() {
    let dir = tempfile::tempdir().unwrap();
    chancery_ok(dir.path(), &["import", demo_file().to_str().unwrap()]);
    let csv = chancery_ok(dir.path(), &["export", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 29);
    assert!(lines[0].starts_with("position,version,recordedAt,timeline,id,kind,"));
    let demand = lines
        .iter()
        .find(|l| l.contains(",DEMAND,") && l.contains("trade-deficit"))
        .expect("the deficit demand");
    assert!(
        demand.contains(",1042,DEMAND,3,-5,"),
        "codes are in the row: {demand}"
    );
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn demo_lines() -> Vec<String> {
    fs::read_to_string(demo_file())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Imports the demo file, with `change` made to its lines, into `data`: what `change` answered,
/// and what chancery said.
fn import_changed<T>(data: &Path, change: impl FnOnce(&mut Vec<String>) -> T) -> (T, Output) {
    let file = data.with_extension("ndjson");
    let mut lines = demo_lines();
    let changed = change(&mut lines);
    write_lines(&file, &lines);
    (changed, chancery(data, &["import", file.to_str().unwrap()]))
}

/// The index of the first line that holds `text`.
fn line_with(lines: &[String], text: &str) -> usize {
    lines.iter().position(|l| l.contains(text)).unwrap()
}

#[test]
fn a_malformed_line_is_reported_with_its_number_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ((), out) = import_changed(&data, |lines| {
        lines.insert(12, "{\"id\": \"oops\", ".into()); // line 13
    });
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 13:"), "{}", stderr(&out));
    assert_eq!(verified(&data).0, 0, "nothing was written");
}

#[test]
fn an_invalid_field_is_reported_with_its_line_and_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (at, out) = import_changed(&data, |lines| {
        let at = line_with(lines, "\"kind\":\"THREAT\"");
        lines[at] = lines[at].replacen("\"unit\":\"USD\"", "\"unit\":\"USX\"", 1);
        at
    });
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "line {}: amounts[0].unit: unknown currency code \"USX\"",
            at + 1
        )),
        "{err}"
    );
    assert_eq!(verified(&data).0, 0, "nothing was written");

    // An unknown reference is caught the same way, before anything is written.
    let (at, out) = import_changed(&data, |lines| {
        let at = line_with(lines, "\"kind\":\"DEMAND\"");
        lines[at] = lines[at].replacen(
            "\"targets\":[{\"party\":\"CHN\"}]",
            "\"targets\":[{\"party\":\"FRA\"}]",
            1,
        );
        at
    });
    assert!(
        stderr(&out).contains(&format!(
            "line {}: targets[0].party: unknown party FRA",
            at + 1
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(verified(&data).0, 0);
}

#[test]
fn verify_finds_the_first_broken_position_and_a_tampered_export_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    chancery_ok(&data, &["import", demo_file().to_str().unwrap()]);
    let export = dir.path().join("export.ndjson");
    chancery_ok(&data, &["export", "--out", export.to_str().unwrap()]);

    let mut lines: Vec<String> = fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Line 11 holds position 10.
    lines[10] = lines[10].replacen("\"name\":\"", "\"name\":\"X", 1);
    assert_ne!(
        lines[10],
        fs::read_to_string(&export)
            .unwrap()
            .lines()
            .nth(10)
            .unwrap()
    );
    let tampered = dir.path().join("tampered.ndjson");
    write_lines(&tampered, &lines);

    let out = chancery(&data, &["verify", "--file", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("broken at position 10"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("hash mismatch"), "{}", stdout(&out));

    let fresh = dir.path().join("fresh");
    let out = chancery(&fresh, &["import", tampered.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 11: position 10: hash mismatch"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        verified(&fresh).0,
        0,
        "nothing of a tampered export is restored"
    );
}

#[test]
fn replay_rebuilds_the_projections_and_reports_its_speed() {
    let dir = tempfile::tempdir().unwrap();
    chancery_ok(dir.path(), &["import", demo_file().to_str().unwrap()]);
    for _ in 0..2 {
        let out = chancery_ok(dir.path(), &["replay"]);
        assert!(
            out.starts_with("replayed 28 events into the projections in "),
            "{out}"
        );
        assert!(out.trim_end().ends_with("events/s)"), "{out}");
    }
    assert!(dir.path().join("projections").is_dir());
}

#[test]
fn serve_raises_the_open_file_limit_it_needs_or_says_it_cannot() {
    // 100 connections fit any limit this suite runs under (the soft limit is raised to them).
    let mut modest = Server::start(&["--max-connections", "100"]);
    modest.stop();
    assert!(
        !modest.log().contains("open-file limit"),
        "{}",
        modest.log()
    );
    // No machine lets a process hold a hundred million files (Linux caps it at fs.nr_open).
    let mut greedy = Server::start(&["--max-connections", "100000000"]);
    let log = greedy.wait_for_log("open-file limit");
    assert!(log.contains("--max-connections 100000000"), "{log}");
    assert!(log.contains("LimitNOFILE="), "{log}");
    greedy.stop();
}

/// A line of an event file, the demo's statement 0x12 made into a new event `id`.
fn statement_line(id: &str, summary: &str, sources: serde_json::Value) -> String {
    let lines = demo_lines();
    let mut event: serde_json::Value =
        serde_json::from_str(&lines[line_with(&lines, "000000000012")]).unwrap();
    event["id"] = id.into();
    event["summary"] = summary.into();
    event["sources"] = sources;
    event.to_string()
}

#[test]
fn a_timeline_exports_for_timelinejs_as_the_store_reads_it_now() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    chancery_ok(&data, &["import", demo_file().to_str().unwrap()]);
    // Later: the threat retracted, the statement corrected, and a new statement whose text
    // holds markup and whose source has a URL.
    let threat = "016318ff-b000-7000-8000-00000000000f";
    let statement = "016318ff-b000-7000-8000-000000000012";
    let added = "016318ff-b000-7000-8000-0000000000a1";
    let later = [
        serde_json::json!({ "id": "016318ff-b000-7000-8000-0000000000a2", "timeline": "us-china-trade",
            "kind": "RETRACTION", "summary": "Retracted: misdated.",
            "payload": { "retracts": threat, "reason": "misdated" } }).to_string(),
        serde_json::json!({ "id": "016318ff-b000-7000-8000-0000000000a3", "timeline": "us-china-trade",
            "kind": "CORRECTION", "summary": "Corrected summary.",
            "payload": { "corrects": statement, "reason": "a clearer summary",
                         "changes": { "summary": "China blames savings rates for the imbalance." } } }).to_string(),
        statement_line(added, "<script>alert(1)</script> & more", serde_json::json!([
            { "publication": "Example Wire", "title": "A \"quoted\" title", "url": "https://example.org/story", "attribution": "NAMED" }
        ])),
    ];
    let file = dir.path().join("later.ndjson");
    write_lines(&file, &later);
    chancery_ok(&data, &["import", file.to_str().unwrap()]);

    // `chancery export --format timelinejs` of `slug` into `out`.
    let publish = |slug: &str, out: &Path| {
        let out = out.to_str().unwrap();
        chancery(
            &data,
            &[
                "export",
                "--format",
                "timelinejs",
                "--timeline",
                slug,
                "--out",
                out,
            ],
        )
    };
    let out = dir.path().join("timeline.json");
    let said = publish("us-china-trade", &out);
    assert!(said.status.success(), "{}", stderr(&said));
    assert!(
        stderr(&said).contains("exported 16 events of us-china-trade for TimelineJS"),
        "{}",
        stderr(&said)
    );
    let published: serde_json::Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();

    // TimelineJS's format: a title slide, and events with start_date.year and text.headline.
    assert_eq!(
        published["title"]["text"]["headline"],
        "US-China trade talks, 2018"
    );
    let slides = published["events"].as_array().unwrap();
    let ids: Vec<&str> = slides
        .iter()
        .map(|s| s["unique_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        16,
        "the demo's 16 acts, less the retracted threat, plus the new one"
    );
    assert!(!ids.contains(&threat));
    for slide in slides {
        assert!(
            slide["start_date"]["year"]
                .as_i64()
                .is_some_and(|y| y >= 2018),
            "{slide}"
        );
        assert!(
            !slide["text"]["headline"].as_str().unwrap().is_empty(),
            "{slide}"
        );
        assert!(
            slide["text"]["text"].as_str().unwrap().starts_with("<p>"),
            "{slide}"
        );
        if let Some(end) = slide.get("end_date") {
            assert!(end["year"].as_i64().is_some(), "{slide}");
        }
    }
    let years_months_days: Vec<(i64, i64, i64)> = slides
        .iter()
        .map(|s| {
            let d = &s["start_date"];
            (
                d["year"].as_i64().unwrap(),
                d["month"].as_i64().unwrap_or(0),
                d["day"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(years_months_days.is_sorted(), "{years_months_days:?}");
    let slide = |id: &str| slides.iter().find(|s| s["unique_id"] == id).unwrap();
    assert_eq!(
        slide(statement)["text"]["text"]
            .as_str()
            .unwrap()
            .split("</p>")
            .next(),
        Some("<p>China blames savings rates for the imbalance."),
        "the correction is applied"
    );
    assert_eq!(
        slide(statement)["start_date"],
        serde_json::json!({ "year": 2018, "month": 4, "day": 28, "display_date": "2018-04-28" })
    );
    assert_eq!(slide(statement)["end_date"]["day"], 30);
    let new = slide(added);
    let text = new["text"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>"),
        "{text}"
    );
    assert!(!text.contains("<script"), "{text}");
    assert_eq!(new["media"]["url"], "https://example.org/story");
    assert_eq!(new["media"]["caption"], "A &quot;quoted&quot; title");
    assert_eq!(new["group"], "Statement");

    // A timeline the store does not hold, or no timeline named: refused, and no file written.
    let missing = dir.path().join("missing.json");
    let unknown = publish("no-such-talks", &missing);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("the store holds no timeline no-such-talks"),
        "{}",
        stderr(&unknown)
    );
    assert!(!missing.exists());
    for (args, says) in [
        (&["export", "--format", "timelinejs"][..], "--timeline SLUG"),
        (
            &["export", "--timeline", "us-china-trade"][..],
            "--format timelinejs",
        ),
    ] {
        let refused = chancery(&data, args);
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            stderr(&refused).contains(says),
            "{args:?}: {}",
            stderr(&refused)
        );
    }
}

/// Whether the kernel lets the process `pid` have transparent huge pages, from its status.
#[cfg(target_os = "linux")]
fn huge_pages_allowed(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .unwrap_or_else(|| panic!("no THP_enabled line in the status of {pid}:\n{status}"));
    line.split_whitespace().nth(1) == Some("1")
}

/// The server turns transparent huge pages off for itself (each fault in a huge page zeroes
/// 2 MiB, which replays paid for in time and memory), unless `MIMALLOC_ALLOW_THP` asks for them.
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages_unless_asked_for_them() {
    for (allow, expected) in [(None, false), (Some("1"), true)] {
        let data = tempfile::tempdir().unwrap();
        let mut command = serve_command(data.path(), "127.0.0.1:0", &with_tokens(&[]));
        match allow {
            Some(value) => command.env("MIMALLOC_ALLOW_THP", value),
            None => command.env_remove("MIMALLOC_ALLOW_THP"),
        };
        let process = chancery_testkit::server::Process::spawn("chancery serve", &command).unwrap();
        process
            .wait_address(LISTENING, READY_PATIENCE)
            .unwrap_or_else(|e| panic!("{e}; its log:\n{}", process.log()));
        assert_eq!(
            huge_pages_allowed(process.pid()),
            expected,
            "MIMALLOC_ALLOW_THP={allow:?}"
        );
    }
}
