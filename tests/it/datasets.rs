//! Coded event datasets as a user brings them in and takes them out: `chancery import --format
//! gdelt|icews|polecat`, its report and filters, re-imports, malformed files, standard input,
//! `chancery export --format gdelt|polecat` read back, and `POST /import` for admins.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

fn fixture(name: &str) -> PathBuf {
    workspace().join("tests/fixtures/datasets").join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The store's events as NDJSON export records' `event` objects, registrations left out.
fn acts(data: &Path) -> Vec<Value> {
    chancery_ok(data, &["export"])
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .filter(|e| !e["kind"].as_str().unwrap().ends_with("_REGISTERED"))
        .collect()
}

/// The export's events without who recorded them, sorted: what two imports must agree on.
fn comparable(data: &Path) -> Vec<String> {
    let mut events: Vec<String> = acts(data)
        .into_iter()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("recordedBy");
            e.to_string()
        })
        .collect();
    events.sort();
    events
}

#[test]
fn a_gdelt_file_imports_with_a_report_and_a_second_import_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = fixture("gdelt-2.0-sample.export.CSV");
    let out = chancery(
        &data,
        &[
            "import",
            "--as",
            "ana",
            "--format",
            "gdelt",
            "--timeline",
            "trade-2018",
            arg(&sample),
        ],
    );
    let (text, errors) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{errors}");
    assert!(text.contains("32 rows read from 1 file(s): 31 imported into trade-2018, 0 already imported, 1 skipped"), "{text}");
    assert!(text.contains("1 with no acting party"), "{text}");
    assert!(
        text.contains("registered the timeline trade-2018, 5 parties (CHN, EUR, JPN, USA, WTO)"),
        "{text}"
    );
    assert!(
        errors.contains("gdelt-2.0-sample.export.CSV, line 31: no acting party"),
        "{errors}"
    );
    let (events, _) = verified(&data);
    assert_eq!(events, 31 + 6, "31 acts after a timeline and five parties");

    // The same rows again, zipped: found by their GDELT ids, nothing new.
    let out = chancery_ok(
        &data,
        &[
            "import",
            "--format",
            "gdelt",
            "--timeline",
            "trade-2018",
            arg(&fixture("gdelt-2.0-sample.export.CSV.zip")),
        ],
    );
    assert!(
        out.contains("0 imported into trade-2018, 31 already imported"),
        "{out}"
    );
    assert_eq!(verified(&data).0, 37);

    let stored = acts(&data);
    let demand = stored
        .iter()
        .find(|e| e["dataset"]["eventId"] == "749018742")
        .unwrap();
    assert_eq!(demand["kind"], "DEMAND");
    assert_eq!(demand["payload"]["demandType"], "POLICY_CHANGE");
    assert_eq!(demand["dataset"]["cameo"], "1042");
    assert_eq!(demand["dataset"]["goldstein"], -5.0);
    assert_eq!(
        demand["summary"],
        "United States → China: Demand policy change (GDELT, CAMEO 1042)"
    );
    assert_eq!(demand["recordedBy"], "ana");
}

#[test]
fn a_malformed_file_writes_nothing_unless_bad_rows_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let malformed = fixture("gdelt-2.0-malformed.export.CSV");
    let out = chancery(
        &data,
        &[
            "import",
            "--format",
            "gdelt",
            "--timeline",
            "t",
            arg(&malformed),
        ],
    );
    assert!(!out.status.success());
    let errors = stderr(&out);
    assert!(
        errors.contains("line 6, GoldsteinScale: \"high\" is not a number; nothing was written"),
        "{errors}"
    );
    assert!(errors.contains("--skip-bad"), "{errors}");
    assert_eq!(verified(&data).0, 0, "nothing was written");

    let out = chancery(
        &data,
        &[
            "import",
            "--format",
            "gdelt",
            "--timeline",
            "t",
            "--skip-bad",
            arg(&malformed),
            arg(&fixture("gdelt-2.0-short-row.export.CSV")),
        ],
    );
    let (text, errors) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{errors}");
    assert!(
        text.contains(
            "12 rows read from 2 file(s): 7 imported into t, 3 already imported, 2 skipped"
        ),
        "{text}"
    );
    assert!(text.contains("2 malformed"), "{text}");
    assert!(
        errors.contains("gdelt-2.0-malformed.export.CSV, line 6: GoldsteinScale"),
        "{errors}"
    );
    assert!(
        errors.contains(
            "gdelt-2.0-short-row.export.CSV, line 4: columns: has 57 tab-separated columns"
        ),
        "{errors}"
    );
}

#[test]
fn filters_keep_a_dyad_and_a_period_and_an_issue_tags_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = chancery_ok(
        &data,
        &[
            "import",
            "--format",
            "gdelt",
            "--timeline",
            "t",
            "--dyad",
            "CHN,USA",
            "--from",
            "2018-04",
            "--to",
            "2018-05-04",
            "--issue",
            "trade-war",
            arg(&fixture("gdelt-2.0-sample.export.CSV.gz")),
        ],
    );
    assert!(
        out.contains("registered the timeline t, the issue trade-war, 2 parties (CHN, USA)"),
        "{out}"
    );
    let stored = acts(&data);
    assert_eq!(stored.len(), 10, "{out}");
    for e in &stored {
        let parties: Vec<&str> = [&e["actors"][0]["party"], &e["targets"][0]["party"]]
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(
            parties == ["USA", "CHN"] || parties == ["CHN", "USA"],
            "{e}"
        );
        let day = e["occurred"]["start"].as_str().unwrap();
        assert!(("2018-04-01"..="2018-05-04").contains(&day), "{e}");
        assert_eq!(e["issues"], serde_json::json!(["trade-war"]), "{e}");
    }
    let skipped = out
        .lines()
        .find(|l| l.contains("outside --dyad/--from/--to"))
        .unwrap();
    assert!(skipped.trim().starts_with("21 "), "{out}");
}

#[test]
fn icews_and_polecat_files_import_their_rows() {
    for (format, name, parties) in [
        ("icews", "icews-sample.tab", "3 parties (CHN, JPN, USA)"),
        ("polecat", "polecat-sample.tsv", "2 parties (CHN, USA)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = chancery_ok(
            &data,
            &[
                "import",
                "--format",
                format,
                "--timeline",
                format,
                arg(&fixture(name)),
            ],
        );
        assert!(out.contains(&format!("14 rows read from 1 file(s): 14 imported into {format}, 0 already imported, 0 skipped")), "{out}");
        assert!(out.contains(parties), "{out}");
        let stored = acts(&data);
        assert!(
            stored
                .iter()
                .all(|e| e["dataset"]["dataset"] == format.to_uppercase()),
            "{stored:?}"
        );
    }
}

#[test]
fn an_export_imported_again_gives_back_the_same_events_and_codes() {
    for (format, name) in [
        ("gdelt", "gdelt-2.0-sample.export.CSV"),
        ("polecat", "polecat-sample.tsv"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        chancery_ok(
            &a,
            &[
                "import",
                "--format",
                format,
                "--timeline",
                "t",
                arg(&fixture(name)),
            ],
        );
        let exported = dir.path().join("rows");
        chancery_ok(
            &a,
            &[
                "export",
                "--format",
                format,
                "--timeline",
                "t",
                "--out",
                arg(&exported),
            ],
        );
        chancery_ok(
            &b,
            &[
                "import",
                "--format",
                format,
                "--timeline",
                "t",
                arg(&exported),
            ],
        );
        let (first, second) = (comparable(&a), comparable(&b));
        assert!(!first.is_empty());
        assert_eq!(first, second, "{format}: the events read back differ");
        // And into the store it came from: all there already.
        let out = chancery_ok(
            &a,
            &[
                "import",
                "--format",
                format,
                "--timeline",
                "t",
                arg(&exported),
            ],
        );
        assert!(
            out.contains(&format!(
                "0 imported into t, {} already imported",
                first.len()
            )),
            "{out}"
        );
    }
}

#[test]
fn standard_input_is_read_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(chancery_bin())
        .args([
            "--data",
            arg(&data),
            "import",
            "--format",
            "gdelt",
            "--timeline",
            "t",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let gz = std::fs::read(fixture("gdelt-2.0-sample.export.CSV.gz")).unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("31 imported into t"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("standard input, line 31"),
        "{}",
        stderr(&out)
    );
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-stdin"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the copy of standard input was left behind"
    );
}

#[test]
fn bad_flags_are_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = fixture("gdelt-2.0-sample.export.CSV");
    let demo = demo_file();
    let cases: [(&[&str], &str); 6] = [
        (&["--format", "gdelt", arg(&sample)], "--timeline SLUG"),
        (
            &["--format", "gdelt", "--timeline", "T!", arg(&sample)],
            "--timeline \"T!\"",
        ),
        (
            &[
                "--format",
                "gdelt",
                "--timeline",
                "t",
                "--dyad",
                "USA",
                arg(&sample),
            ],
            "--dyad \"USA\": give two party codes",
        ),
        (
            &[
                "--format",
                "gdelt",
                "--timeline",
                "t",
                "--from",
                "2018-13",
                arg(&sample),
            ],
            "--from \"2018-13\"",
        ),
        (
            &[
                "--format",
                "gdelt",
                "--timeline",
                "t",
                "--from",
                "2018-06",
                "--to",
                "2018-05",
                arg(&sample),
            ],
            "--to 2018-05 is before --from 2018-06",
        ),
        (
            &["--timeline", "t", arg(&demo)],
            "--timeline is for coded datasets",
        ),
    ];
    for (args, says) in cases {
        let out = chancery(&data, &[&["import"], args].concat());
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!data.exists() || verified(&data).0 == 0);
}

#[test]
fn an_admin_imports_over_http_and_others_are_refused() {
    let limited = "admin:limited-admin-token-0123:elsewhere";
    let server = Server::start(&with_tokens(&["--token", limited]));
    server.wait_ready();
    let http = server.http();
    let gz = std::fs::read(fixture("gdelt-2.0-sample.export.CSV.gz")).unwrap();
    let post = |path: &str, token: &str, body: &[u8]| {
        http.request(
            "POST",
            path,
            &[("authorization", &format!("Bearer {token}"))],
            Some(body),
        )
        .unwrap()
    };
    let reply = post(
        "/import?format=gdelt&timeline=trade-2018&issue=trade-war",
        ADMIN,
        &gz,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let report = reply.json_body();
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(32), Some(31)),
        "{report}"
    );
    assert_eq!(report["unmappedExamples"][0]["file"], "the request body");
    assert_eq!(report["issueRegistered"], true);
    let head = server.head();
    let found = server.query(r#"{ events(filter: { timelines: ["trade-2018"], kinds: [DEMAND] }, first: 50) { edges { node { content { dataset { dataset eventId cameo goldstein } codes { cameo } } } } } }"#);
    let demands = found["events"]["edges"].as_array().unwrap();
    assert!(
        demands
            .iter()
            .any(|d| d["node"]["content"]["dataset"]["cameo"] == "1042"
                && d["node"]["content"]["codes"]["cameo"] == "1042"),
        "{found}"
    );

    // Again: nothing new.
    let report = post("/import?format=gdelt&timeline=trade-2018", ADMIN, &gz).json_body();
    assert_eq!(
        (
            report["imported"].as_u64(),
            report["alreadyImported"].as_u64()
        ),
        (Some(0), Some(31)),
        "{report}"
    );

    let malformed = std::fs::read(fixture("gdelt-2.0-malformed.export.CSV")).unwrap();
    let reply = post(
        "/import?format=gdelt&timeline=trade-2018",
        ADMIN,
        &malformed,
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("line 6, GoldsteinScale"),
        "{}",
        reply.text()
    );
    for (token, path, status) in [
        (RECORDER, "/import?format=gdelt&timeline=trade-2018", 403),
        (
            "limited-admin-token-0123",
            "/import?format=gdelt&timeline=trade-2018",
            403,
        ),
        (
            "not-a-token-at-all-0123456",
            "/import?format=gdelt&timeline=trade-2018",
            401,
        ),
        (ADMIN, "/import?format=csv&timeline=trade-2018", 400),
        (ADMIN, "/import?format=gdelt&timeline=Bad!", 400),
    ] {
        let reply = post(path, token, &gz);
        assert_eq!(
            reply.status,
            status,
            "{path} with {token}: {}",
            reply.text()
        );
    }
    assert_eq!(server.head(), head, "a refused import wrote something");
}
