//! Schema evolution: data written by earlier versions of Chancery is read by every later one.
//! The `v1-` fixtures were written by version 1 (record schema 1, export format 1, store format
//! 1); `v2-store` by the build before the id index left sled (store format 2: the demo's
//! records restored from the version-1 export, then a retraction of its threat), with its
//! export beside it. They must never be regenerated: a change that breaks these tests breaks
//! users' data.

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

/// The retraction the format-2 fixture holds, of the demo's threat.
const V2_RETRACTION: &str = r#"{"id":"016318ff-b000-7000-8000-0000000000b1","timeline":"us-china-trade","kind":"RETRACTION","summary":"Retracted: misdated.","payload":{"retracts":"016318ff-b000-7000-8000-00000000000f","reason":"misdated"}}"#;

#[test]
fn a_store_with_its_id_index_in_sled_opens_finds_its_ids_and_keeps_its_retractions() {
    let dir = tempfile::tempdir().unwrap();
    unpack_store("v2-store.tar.gz", dir.path());
    let (events, _) = verified(dir.path());
    assert_eq!(events, 29);
    let export = chancery_ok(dir.path(), &["export"]);
    let fixture =
        fs::read_to_string(workspace().join("tests/fixtures/v2-store-export.ndjson")).unwrap();
    assert_eq!(export, fixture, "every record reads back as it was written");
    assert!(
        fs::read_dir(dir.path().join("log/records"))
            .unwrap()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "ids")),
        "the open segment's ids are beside it"
    );

    // The retraction again, by its id: found, so nothing is written.
    let again = dir.path().join("again.ndjson");
    fs::write(&again, format!("{V2_RETRACTION}\n")).unwrap();
    let said = chancery_ok(dir.path(), &["import", again.to_str().unwrap()]);
    assert!(said.contains("(1 already present)"), "{said}");

    // Another retraction of the threat: it is still retracted, so refused, and nothing written.
    let other = V2_RETRACTION.replace("0000000000b1", "0000000000b2");
    fs::write(&again, format!("{other}\n")).unwrap();
    let refused = chancery(dir.path(), &["import", again.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("already retracted"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(verified(dir.path()).0, 29);
}
