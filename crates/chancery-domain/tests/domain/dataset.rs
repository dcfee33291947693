//! `dataset`: how GDELT, ICEWS or POLECAT coded an imported event, inside the hashed record, in
//! both stored forms; records without it keep their bytes.

use chancery_domain::record::verify_record_hash;
use chancery_domain::sample;
use chancery_domain::*;

fn gdelt_coding() -> DatasetCoding {
    DatasetCoding {
        cameo: Some("1042".into()),
        quad_class: Some(3),
        goldstein: Some(-5.0),
        tone: Some(-2.75),
        ..DatasetCoding::new(Dataset::Gdelt, "748123456")
    }
}

fn coded_demand(recorded_by: Option<&str>, coding: Option<DatasetCoding>) -> NewEvent {
    let mut e = sample::demand("us-china-trade", "USA", "CHN", "trade-deficit", "2018-03");
    e.recorded_by = recorded_by.map(str::to_owned);
    e.dataset = coding;
    e
}

fn sealed(event: NewEvent) -> RecordedEvent {
    let at = Timestamp::parse("2026-12-06T12:00:00Z").unwrap();
    RecordedEvent::seal(3, 2, at, Hash::GENESIS, event)
}

#[test]
fn a_coded_record_round_trips_through_both_forms_and_verifies() {
    for name in [None, Some("import-ana")] {
        let record = sealed(coded_demand(name, Some(gdelt_coding())));
        let line = record.canonical_json().unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.contains(r#""dataset":{"dataset":"GDELT","eventId":"748123456","cameo":"1042","quadClass":3,"goldstein":-5.0,"tone":-2.75}"#),
            "{text}"
        );
        assert_eq!(verify_record_hash(&line), Ok(record.hash()));
        let from_line = decode_record(&line).unwrap();
        assert_eq!(
            from_line, record,
            "the same stored bytes from the canonical JSON"
        );
        let from_stored = decode_record(record.stored()).unwrap();
        let event = from_stored.event().unwrap();
        assert_eq!(event.dataset, Some(gdelt_coding()));
        assert_eq!(event.recorded_by.as_deref(), name);
        assert_eq!(from_stored.canonical_json().unwrap(), line);
        assert_eq!(from_stored.verify(), Ok(record.hash()));
    }
}

#[test]
fn every_dataset_and_code_shape_round_trips() {
    let codings = [
        DatasetCoding {
            cameo: Some("042".into()),
            goldstein: Some(1.9),
            ..DatasetCoding::new(Dataset::Icews, "26981024")
        },
        DatasetCoding {
            plover_type: Some("CONSULT".into()),
            plover_mode: Some("visit".into()),
            quad_class: Some(1),
            intensity: Some(1.0),
            ..DatasetCoding::new(Dataset::Polecat, "20180503-USA-CHN-0001")
        },
        DatasetCoding::new(Dataset::Gdelt, "1"),
    ];
    for coding in codings {
        let event = coded_demand(Some("ana"), Some(coding.clone()));
        assert_eq!(validate(&event), Ok(()), "{coding:?}");
        let record = sealed(event);
        let back = decode_record(record.stored()).unwrap();
        assert_eq!(back.event().unwrap().dataset.as_ref(), Some(&coding));
        let json: NewEvent =
            serde_json::from_slice(&record.event().unwrap().to_canonical_json()).unwrap();
        assert_eq!(json.dataset, Some(coding));
    }
}

#[test]
fn an_event_without_a_coding_encodes_as_before() {
    let plain = sealed(coded_demand(Some("ana"), None));
    let coded = sealed(coded_demand(Some("ana"), Some(gdelt_coding())));
    // The coding is a tail after the name: the rest of the record is the same bytes.
    let (a, b) = (plain.stored(), coded.stored());
    assert!(b.len() > a.len());
    assert_eq!(&a[107..], &b[107..a.len()]);
    assert_eq!(b[a.len()], 2, "the dataset's marker follows the name");
    let text = String::from_utf8(plain.canonical_json().unwrap()).unwrap();
    assert!(!text.contains("dataset"), "{text}");
}

#[test]
fn a_changed_coding_is_caught_by_the_hash() {
    let line = String::from_utf8(
        sealed(coded_demand(None, Some(gdelt_coding())))
            .canonical_json()
            .unwrap(),
    )
    .unwrap();
    crate::assert_tampering_fails_the_hash(
        &line,
        &[
            line.replacen(r#""cameo":"1042""#, r#""cameo":"1041""#, 1),
            line.replacen(r#""goldstein":-5.0"#, r#""goldstein":-4.0"#, 1),
            line.replacen(r#""eventId":"748123456""#, r#""eventId":"748123457""#, 1),
            line.replacen(r#""dataset":"GDELT""#, r#""dataset":"ICEWS""#, 1),
        ],
    );
}

#[test]
fn the_stored_form_refuses_a_coding_out_of_place_or_of_an_unknown_dataset() {
    let named = sealed(coded_demand(Some("ana"), None));
    let coded = sealed(coded_demand(
        None,
        Some(DatasetCoding::new(Dataset::Gdelt, "7")),
    ));
    let unnamed = sealed(coded_demand(None, None));
    let coding_tail = &coded.stored()[unnamed.stored().len()..];
    let with_tail = |base: &RecordedEvent, tail: &[u8]| {
        let mut bytes = base.stored().to_vec();
        bytes.extend_from_slice(tail);
        bytes
    };
    // The name after the coding: markers out of order. Twice the coding. An unknown dataset.
    let mut unknown = coding_tail.to_vec();
    unknown[1] = 9;
    let cases = [
        with_tail(&coded, &[1, 3, b'a', b'n', b'a']),
        with_tail(&coded, coding_tail),
        with_tail(&named, &unknown),
    ];
    for bytes in cases {
        let record = decode_record(&bytes).unwrap();
        assert!(
            matches!(record.event(), Err(RecordError::Malformed(_))),
            "{:?}",
            record.event()
        );
    }
}

#[test]
fn a_coding_must_look_like_what_the_datasets_write() {
    let bad = DatasetCoding {
        cameo: Some("10a2".into()),
        plover_type: Some("consult".into()),
        plover_mode: Some("Visit".into()),
        quad_class: Some(5),
        goldstein: Some(-11.0),
        intensity: Some(f64::NAN),
        tone: Some(120.0),
        ..DatasetCoding::new(Dataset::Gdelt, "748 123")
    };
    let errors = validate(&coded_demand(None, Some(bad))).unwrap_err();
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "dataset.eventId",
            "dataset.cameo",
            "dataset.ploverType",
            "dataset.ploverMode",
            "dataset.quadClass",
            "dataset.goldstein",
            "dataset.intensity",
            "dataset.tone"
        ]
    );
}
