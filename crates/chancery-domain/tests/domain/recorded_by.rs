//! `recordedBy`: who recorded an event, inside the hashed record. Records of before names were
//! kept (the version-1 fixtures) keep their bytes and hashes, in both stored forms.

use chancery_domain::record::{encode_record, verify_record_hash};
use chancery_domain::sample;
use chancery_domain::*;

/// The export written by version 1, before names were kept.
const V1_EXPORT: &str = include_str!("../../../../tests/fixtures/v1-demo-export.ndjson");

fn v1_lines() -> impl Iterator<Item = &'static str> {
    // The first line is the export's header.
    V1_EXPORT.lines().skip(1).filter(|l| !l.trim().is_empty())
}

fn demand_by(name: Option<&str>) -> NewEvent {
    let mut e = sample::demand("us-china-trade", "USA", "CHN", "trade-deficit", "2018-03");
    e.recorded_by = name.map(str::to_owned);
    e
}

fn sealed(event: NewEvent) -> RecordedEvent {
    let at = Timestamp::parse("2026-11-28T12:00:00Z").unwrap();
    RecordedEvent::seal(3, 2, at, Hash::GENESIS, event)
}

#[test]
fn a_record_with_recorded_by_round_trips_through_both_forms_and_verifies() {
    let record = sealed(demand_by(Some("recorder-1a2b3c4d")));
    let line = record.canonical_json().unwrap();
    let text = String::from_utf8(line.clone()).unwrap();
    // Last in the event object, inside the hashed body.
    assert!(
        text.contains(r#"},"recordedBy":"recorder-1a2b3c4d"},"hash":""#),
        "{text}"
    );
    assert_eq!(verify_record_hash(&line), Ok(record.hash()));

    let from_line = decode_record(&line).unwrap();
    assert_eq!(from_line, record, "the same stored bytes");
    assert_eq!(
        from_line.event().unwrap().recorded_by.as_deref(),
        Some("recorder-1a2b3c4d")
    );
    let from_stored = decode_record(record.stored()).unwrap();
    assert_eq!(from_stored.event().unwrap(), record.event().unwrap());
    assert_eq!(from_stored.canonical_json().unwrap(), line);
    assert_eq!(from_stored.verify(), Ok(record.hash()));

    // The event's own JSON reads back with its name.
    let json = record.event().unwrap().to_canonical_json();
    let back: NewEvent = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.recorded_by.as_deref(), Some("recorder-1a2b3c4d"));
}

#[test]
fn version_1_records_keep_their_bytes_and_hashes_and_read_as_recorded_by_nobody_known() {
    let mut prev = Hash::GENESIS;
    let mut count = 0;
    for line in v1_lines() {
        let record = decode_record(line.as_bytes()).unwrap();
        let event = record.event().unwrap();
        assert_eq!(event.recorded_by, None, "{line}");
        assert_eq!(record.prev_hash(), prev);
        // Encoded again from what it says: exactly the bytes and hash it had.
        let (again, hash) = encode_record(
            record.position(),
            record.version(),
            record.recorded_at(),
            record.prev_hash(),
            event,
        );
        assert_eq!(String::from_utf8(again).unwrap(), line);
        assert_eq!(verify_record_hash(line.as_bytes()), Ok(hash));
        assert_eq!(hash, record.hash());
        // Through the stored form too.
        let stored = decode_record(record.stored()).unwrap();
        assert_eq!(stored.event().unwrap().recorded_by, None);
        assert_eq!(stored.canonical_json().unwrap(), line.as_bytes());
        assert_eq!(stored.verify(), Ok(hash));
        prev = hash;
        count += 1;
    }
    assert_eq!(count, 28);
}

#[test]
fn an_unknown_recorder_takes_no_byte_of_the_stored_form_and_a_known_one_goes_last() {
    let without = sealed(demand_by(None));
    let with = sealed(demand_by(Some("ana")));
    let (short, long) = (without.stored(), with.stored());
    // The header's hash differs (the name is hashed); everything after the header before the
    // name is the same.
    assert_ne!(without.hash(), with.hash());
    let header = 107;
    assert_eq!(&long[header..short.len()], &short[header..]);
    assert_eq!(&long[short.len()..], b"\x01\x03ana");
}

#[test]
fn a_changed_byte_of_the_recorded_by_is_caught_by_the_hash() {
    let line = String::from_utf8(sealed(demand_by(Some("ana"))).canonical_json().unwrap()).unwrap();
    let tampered = [
        line.replacen(r#""recordedBy":"ana""#, r#""recordedBy":"anb""#, 1),
        line.replacen(r#""recordedBy":"ana""#, r#""recordedBy":"Ana""#, 1),
        line.replacen(r#","recordedBy":"ana""#, "", 1),
    ];
    crate::assert_tampering_fails_the_hash(&line, &tampered);
    for t in &tampered {
        assert!(decode_record(t.as_bytes()).is_err(), "{t}");
    }
    // A v1 record given a name it never had fails its hash too.
    let v1 = v1_lines().nth(3).unwrap();
    let named = v1.replacen(r#"},"hash":""#, r#"},"recordedBy":"ana"},"hash":""#, 1);
    assert_ne!(named, v1);
    assert!(matches!(
        verify_record_hash(named.as_bytes()),
        Err(RecordError::HashMismatch { .. })
    ));
    // `null` is not another way to say "unknown": it is not the canonical form.
    let null = v1.replacen(r#"},"hash":""#, r#"},"recordedBy":null},"hash":""#, 1);
    assert!(decode_record(null.as_bytes()).is_err());
}

#[test]
fn the_stored_form_refuses_anything_but_nothing_or_a_marked_name_after_the_envelope() {
    let without = sealed(demand_by(None));
    let with = sealed(demand_by(Some("ana")));
    let broken = |base: &RecordedEvent, tail: &[u8]| {
        let mut bytes = base.stored().to_vec();
        bytes.extend_from_slice(tail);
        bytes
    };
    let mut cut = with.stored().to_vec();
    cut.pop();
    let cases = [
        // "Unknown" written as an absent option: a second encoding of no name.
        broken(&without, &[0]),
        broken(&without, &[9, 3, b'a', b'n', b'a']),
        broken(&without, &[1]),
        broken(&without, &[1, 0xff, 0xff]),
        broken(&with, &[0]),
        cut,
    ];
    for bytes in cases {
        let record = decode_record(&bytes).unwrap();
        assert!(
            matches!(record.event(), Err(RecordError::Malformed(_))),
            "{:?} decoded: {:?}",
            &bytes[without.stored().len() - 2..],
            record.event()
        );
    }
}

#[test]
fn recorded_by_is_a_short_one_line_name() {
    let field_errors = |name: &str| -> Vec<String> {
        match validate(&demand_by(Some(name))) {
            Ok(()) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.to_string()).collect(),
        }
    };
    assert!(field_errors("ana").is_empty());
    assert!(field_errors(&"é".repeat(64)).is_empty());
    assert_eq!(
        field_errors(&"a".repeat(65)),
        ["recordedBy: is 65 characters long; the limit is 64"]
    );
    assert_eq!(field_errors(""), ["recordedBy: must not be empty"]);
    assert_eq!(field_errors("  "), ["recordedBy: must not be empty"]);
    for name in ["an\na", "an\ta", "an\u{7f}a"] {
        assert_eq!(
            field_errors(name),
            ["recordedBy: must not contain control characters"],
            "{name:?}"
        );
    }
    assert!(validate(&demand_by(None)).is_ok());
    assert_eq!(validate_recorded_by("ana"), Ok(()));
    assert!(validate_recorded_by("").is_err());
}

#[test]
fn the_same_content_ignores_who_recorded_it() {
    let ana = demand_by(Some("ana"));
    let mut nobody = ana.clone();
    nobody.recorded_by = None;
    assert!(ana.same_content(&nobody));
    let mut bo = ana.clone();
    bo.recorded_by = Some("bo".into());
    assert!(ana.same_content(&bo));
    assert_ne!(ana, bo, "equality still sees the name");
    let mut other = bo.clone();
    other.summary = "something else".into();
    assert!(!ana.same_content(&other));
}
