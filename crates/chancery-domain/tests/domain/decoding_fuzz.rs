//! Bounded fuzzing of what the store reads back from disk, a file or a stream: `decode_record`
//! and `verify_record_hash` over arbitrary bytes and over damaged valid records. Neither may
//! panic, and damage must never pass for a good record. Cases per property: `CHANCERY_FUZZ_CASES`
//! (default 10,000, about 5 s in a debug build).

use chancery_domain::record::verify_record_hash;
use chancery_domain::*;
use chancery_testkit::fuzz::{self, damage};
use proptest::prelude::*;

/// The demo scenario: every kind of event, with sources, amounts, actors and references.
const DEMO: &str = include_str!("../../../chancery/demo/us-china-trade-2018.ndjson");

/// The demo's events sealed into a chain, as the sled writer would store them; every other one
/// recorded by a named token (its name last in both forms), the rest by nobody known.
fn demo_records() -> &'static [(RecordedEvent, Vec<u8>)] {
    static RECORDS: std::sync::OnceLock<Vec<(RecordedEvent, Vec<u8>)>> = std::sync::OnceLock::new();
    RECORDS.get_or_init(seal_demo)
}

fn seal_demo() -> Vec<(RecordedEvent, Vec<u8>)> {
    let at = Timestamp::parse("2026-11-28T12:00:00.000001Z").unwrap();
    let mut prev = Hash::GENESIS;
    DEMO.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let mut event: NewEvent = serde_json::from_str(line).unwrap();
            event.recorded_by = (i % 2 == 1).then(|| "recorder-1a2b3c4d".to_owned());
            let position = i as u64 + 1;
            let record = RecordedEvent::seal(position, position, at, prev, event);
            prev = record.hash();
            let line = record.canonical_json().unwrap();
            (record, line)
        })
        .collect()
}

/// Whether a decoded record is self-consistent: its carried hash is the hash of its content.
fn hash_matches_content(r: &RecordedEvent) -> bool {
    r.verify().is_ok()
}

/// Checks what a reader may conclude from a damaged export line: the hash check refuses
/// anything but the original bytes, and so does decoding (which checks the hash and the
/// canonical form).
fn check_damaged(original: &(RecordedEvent, Vec<u8>), damaged: &[u8]) -> Result<(), TestCaseError> {
    let (record, bytes) = original;
    let verified = verify_record_hash(damaged);
    let decoded = decode_record(damaged);
    if damaged == bytes.as_slice() {
        prop_assert_eq!(verified, Ok(record.hash()));
        prop_assert_eq!(decoded, Ok(record.clone()));
        return Ok(());
    }
    prop_assert!(
        verified.is_err(),
        "damaged bytes verified: {}",
        String::from_utf8_lossy(damaged)
    );
    prop_assert!(
        decoded.is_err(),
        "damaged bytes decoded: {}",
        String::from_utf8_lossy(damaged)
    );
    Ok(())
}

/// Checks what a reader may conclude from a damaged stored record: either it does not decode,
/// or its content no longer hashes to the hash it carries, or it is the original record.
fn check_damaged_stored(record: &RecordedEvent, damaged: &[u8]) -> Result<(), TestCaseError> {
    let decoded = decode_record(damaged).and_then(|r| r.event().map(|_| r.clone()));
    if let Ok(decoded) = decoded {
        if hash_matches_content(&decoded) {
            prop_assert_eq!(
                &decoded,
                record,
                "damage decoded to another record whose hash holds"
            );
            prop_assert_eq!(damaged, record.stored(), "two stored forms of one record");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz::config("CHANCERY_FUZZ_CASES", 10_000, 500))]

    /// Arbitrary bytes: never a panic, and nothing short of a sealed record verifies.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let verified = verify_record_hash(&bytes);
        let decoded = decode_record(&bytes);
        if let (Ok(hash), Ok(record)) = (&verified, &decoded) {
            prop_assert_eq!(*hash, record.hash());
        }
        // As a stored record: the header may read, the rest never panics, nothing verifies.
        if let Ok(record) = decode_record(&bytes) {
            let _ = record.view().map(|v| v.payload());
            if record.event().is_ok() {
                prop_assert!(record.verify().is_err());
            }
        }
    }

    /// JSON-shaped text near the record's grammar reaches the field parsers, not only the
    /// tokenizer: never a panic.
    #[test]
    fn record_shaped_text_never_panics(
        schema in prop_oneof![Just("1".to_owned()), "-?[0-9]{1,22}(\\.[0-9]+)?(e[0-9]{1,3})?"],
        position in "-?[0-9]{1,22}",
        recorded_at in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,9})?Z?",
        prev in "[0-9a-fA-F]{0,66}",
        event in "\\{(\"[a-z]{1,8}\":(\"[^\"\\\\]{0,12}\"|[0-9.e-]{1,8}|null|\\[\\]|\\{\\}),?){0,6}\\}",
    ) {
        let text = format!(
            "{{\"schema\":{schema},\"position\":{position},\"version\":1,\"recordedAt\":\"{recorded_at}\",\"prevHash\":\"{prev}\",\"event\":{event},\"hash\":\"{}\"}}",
            Hash::GENESIS
        );
        let _ = decode_record(text.as_bytes());
        prop_assert!(verify_record_hash(text.as_bytes()).is_err());
    }

    /// Damaged valid records (bit flips, replaced, inserted and deleted bytes, truncation):
    /// never a panic, and never accepted as a good record unless unchanged.
    #[test]
    fn damaged_records_are_never_taken_for_good_ones(
        pick in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let records = demo_records();
        let original = &records[pick.index(records.len())];
        let mut damaged = original.1.clone();
        for d in &damages {
            d.apply(&mut damaged);
        }
        check_damaged(original, &damaged)?;
    }

    /// The same damage to records in their stored form: never a panic, and never a record
    /// whose hash holds unless unchanged.
    #[test]
    fn damaged_stored_records_are_never_taken_for_good_ones(
        pick in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let records = demo_records();
        let (record, _) = &records[pick.index(records.len())];
        let mut damaged = record.stored().to_vec();
        for d in &damages {
            d.apply(&mut damaged);
        }
        check_damaged_stored(record, &damaged)?;
    }
}

/// Every demo record survives the trip, so the damage property starts from good records.
#[test]
fn demo_records_verify_and_decode() {
    for (record, bytes) in demo_records() {
        assert_eq!(verify_record_hash(bytes), Ok(record.hash()));
        assert_eq!(decode_record(bytes).as_ref(), Ok(record));
        let stored = decode_record(record.stored()).unwrap();
        assert_eq!(stored.event().unwrap(), record.event().unwrap());
        assert_eq!(stored.verify(), Ok(record.hash()));
        assert_eq!(&stored.canonical_json().unwrap(), bytes);
    }
}

/// A change of spelling that means the same record (an upper-case UUID digit) is refused by the
/// hash check: verification is over bytes, not over meaning, so an export line has one spelling.
#[test]
fn a_respelled_record_does_not_verify() {
    let records = demo_records();
    let (record, bytes) = &records[12];
    let text = String::from_utf8(bytes.clone()).unwrap();
    let respelled = text.replacen("016318ff", "016318FF", 1);
    assert_ne!(respelled, text);
    let event: NewEvent = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&respelled).unwrap()["event"].clone(),
    )
    .unwrap();
    assert_eq!(&event, record.event().unwrap(), "it means the same event");
    assert!(verify_record_hash(respelled.as_bytes()).is_err());
    assert!(decode_record(respelled.as_bytes()).is_err());
}
