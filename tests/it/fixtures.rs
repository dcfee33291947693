//! Schema evolution: data written by the first version of Chancery is read by every later one.
//! The fixtures were written by version 1 (record schema 1, export format 1, store format 1) and
//! must never be regenerated: a change that breaks these tests breaks users' data.

use std::fs;

use crate::support::*;

const V1_HEAD_HASH: &str = "8360452ddbe0c871d5b3d773115ce3700f7ac31f783d996c625fa628d4639ce6";

#[test]
fn an_export_written_by_version_1_verifies_and_restores_byte_for_byte() {
    let fixture = workspace().join("tests/fixtures/v1-demo-export.ndjson");
    let out = chancery_ok(
        &workspace(),
        &["verify", "--file", fixture.to_str().unwrap()],
    );
    assert!(
        out.contains(&format!(
            "28 events, chain intact, head hash {V1_HEAD_HASH}"
        )),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    chancery_ok(dir.path(), &["import", fixture.to_str().unwrap()]);
    let again = chancery_ok(dir.path(), &["export"]);
    assert_eq!(
        again.as_bytes(),
        fs::read(&fixture).unwrap(),
        "decoding and re-exporting changes nothing"
    );
}

#[test]
fn a_store_written_by_version_1_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    unpack_v1_store(dir.path());
    assert_eq!(verified(dir.path()), (28, V1_HEAD_HASH.to_owned()));
    let csv = chancery_ok(dir.path(), &["export", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 29, "every record decodes");
    let export = chancery_ok(dir.path(), &["export"]);
    let fixture =
        fs::read_to_string(workspace().join("tests/fixtures/v1-demo-export.ndjson")).unwrap();
    assert_eq!(export, fixture);
}
