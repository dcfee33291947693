//! The dataset fixtures (`tests/fixtures/datasets`, written from the published codebooks) read
//! row by row: each row's kind, parties and codes, the dataset's own coding kept beside
//! Chancery's, compressed files read like plain ones, malformed rows named by line and column,
//! and an exported row read back as the same event.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Read;
use std::path::PathBuf;

use chancery_datasets::export::{ExportedParty, gdelt_row, polecat_header, polecat_row};
use chancery_datasets::input::decompressed;
use chancery_datasets::{DatasetRow, Destination, Format, RowCode, event_of, parties};
use chancery_domain::codes::codes;
use chancery_domain::payload::PartyKind;
use chancery_domain::{Dataset, Kind, NewEvent, PartyCode, TimelineSlug, validate};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/datasets")
        .join(name)
}

/// Every row of a fixture, read through the format's reader (decompressing as needed).
fn rows(format: Format, name: &str) -> Vec<DatasetRow> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    let mut text = String::new();
    decompressed(file, name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let mut reader = format.rows();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| reader.line(i as u64 + 1, l).unwrap())
        .collect()
}

fn raw_lines(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn destination() -> Destination {
    Destination {
        timeline: TimelineSlug::new("datasets").unwrap(),
        issue: None,
    }
}

fn name_of(code: &PartyCode) -> String {
    parties::by_code(code.as_str()).map_or_else(|| code.to_string(), |p| p.name.to_owned())
}

/// The kind a CAMEO code becomes, written out here rather than asked of the mapping: the
/// table of `docs/datasets.md`, for the codes the fixtures hold. A visit or talks without
/// another party is a statement.
fn expected_kind(cameo: &str, has_target: bool) -> Kind {
    let two_sided = |k: Kind| if has_target { k } else { Kind::Statement };
    match cameo {
        "010" | "012" | "013" => Kind::Statement,
        "0211" | "1011" | "1042" | "1054" | "106" => Kind::Demand,
        "0311" => Kind::Offer,
        "036" | "163" | "172" => Kind::Measure,
        "037" | "057" | "061" => Kind::Agreement,
        "040" | "041" | "044" | "046" => two_sided(Kind::Talks),
        "042" | "043" => two_sided(Kind::Visit),
        "0831" | "085" => Kind::Concession,
        "111" | "112" => Kind::Accusation,
        "125" | "1232" => Kind::Refusal,
        "1312" | "134" => Kind::Threat,
        other => panic!("the fixture has a code this test does not know: {other}"),
    }
}

#[test]
fn every_gdelt_row_becomes_its_kind_with_the_dataset_s_codes_beside_chancery_s() {
    let lines = raw_lines("gdelt-2.0-sample.export.CSV");
    let rows = rows(Format::Gdelt, "gdelt-2.0-sample.export.CSV");
    assert_eq!(rows.len(), 32);
    let mut made = 0;
    for (row, cols) in rows.iter().zip(&lines) {
        let what = format!("line {} ({})", row.line, cols[0]);
        let event = match event_of(row, &destination(), &name_of) {
            Ok(event) => event,
            Err(why) => {
                // Only the row whose actor has neither a country nor a known group makes none.
                assert!(cols[7].is_empty() && cols[8].is_empty(), "{what}: {why}");
                continue;
            }
        };
        made += 1;
        let cameo = &cols[26];
        let actor = if cols[7].is_empty() {
            &cols[8]
        } else {
            &cols[7]
        };
        let target = if cols[17].is_empty() {
            &cols[18]
        } else {
            &cols[17]
        };
        assert_eq!(event.actors[0].party.as_str(), actor.as_str(), "{what}");
        let has_target = !target.is_empty() && target != actor;
        assert_eq!(
            event.targets.first().map(|t| t.party.as_str()),
            has_target.then_some(target.as_str()),
            "{what}"
        );
        assert_eq!(event.kind(), expected_kind(cameo, has_target), "{what}");
        assert_eq!(
            event.occurred.as_ref().unwrap().start.to_string(),
            format!("{}-{}-{}", &cols[1][..4], &cols[1][4..6], &cols[1][6..8])
        );
        let coding = event.dataset.as_ref().unwrap();
        assert_eq!(coding.dataset, Dataset::Gdelt);
        assert_eq!(coding.event_id, cols[0], "{what}");
        assert_eq!(coding.cameo.as_deref(), Some(cameo.as_str()), "{what}");
        assert_eq!(coding.quad_class, Some(cols[29].parse().unwrap()), "{what}");
        assert_eq!(coding.goldstein, Some(cols[30].parse().unwrap()), "{what}");
        assert_eq!(coding.tone, Some(cols[34].parse().unwrap()), "{what}");
        assert_eq!(
            event.sources[0].url.as_deref(),
            Some(cols[60].as_str()),
            "{what}"
        );
        // Where the codes table has the dataset's code, Chancery's codes are the dataset's.
        let own = codes(&event).unwrap();
        if event.kind() != Kind::Statement || cameo.starts_with("01") {
            let table_has = chancery_domain::codes::CODES_TABLE
                .iter()
                .any(|r| r.cameo == cameo);
            if table_has {
                assert_eq!(own.cameo, cameo, "{what}: Chancery's code");
            }
        }
        assert_eq!(validate(&event), Ok(()), "{what}");
    }
    assert_eq!(made, 31);
}

#[test]
fn every_icews_row_becomes_its_kind_with_its_intensity_as_goldstein() {
    let lines = raw_lines("icews-sample.tab");
    let header = &lines[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows = rows(Format::Icews, "icews-sample.tab");
    assert_eq!(rows.len(), 14);
    for (row, cols) in rows.iter().zip(&lines[1..]) {
        let what = format!("line {}", row.line);
        let event = event_of(row, &destination(), &name_of).unwrap();
        let source = parties::by_name(&cols[col("Source Country")]).unwrap().code;
        let target = parties::by_name(&cols[col("Target Country")])
            .map(|p| p.code)
            .filter(|t| *t != source);
        assert_eq!(event.actors[0].party.as_str(), source, "{what}");
        assert_eq!(
            event.targets.first().map(|t| t.party.as_str()),
            target,
            "{what}"
        );
        let cameo = &cols[col("CAMEO Code")];
        assert_eq!(
            event.kind(),
            expected_kind(cameo, target.is_some()),
            "{what}"
        );
        let coding = event.dataset.as_ref().unwrap();
        assert_eq!(
            (coding.dataset, coding.event_id.as_str()),
            (Dataset::Icews, cols[col("Event ID")].as_str())
        );
        assert_eq!(coding.cameo.as_deref(), Some(cameo.as_str()), "{what}");
        assert_eq!(
            coding.goldstein,
            Some(cols[col("Intensity")].parse().unwrap()),
            "{what}"
        );
        assert!(
            event.sources[0]
                .publication
                .contains(&cols[col("Publisher")]),
            "{what}"
        );
        assert_eq!(validate(&event), Ok(()), "{what}");
    }
}

#[test]
fn every_polecat_row_becomes_its_kind_with_its_plover_codes() {
    let lines = raw_lines("polecat-sample.tsv");
    let header = &lines[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows = rows(Format::Polecat, "polecat-sample.tsv");
    assert_eq!(rows.len(), 14);
    for (row, cols) in rows.iter().zip(&lines[1..]) {
        let what = format!("line {}", row.line);
        let event = event_of(row, &destination(), &name_of).unwrap();
        let event_type = cols[col("Event Type")].as_str();
        let mode = cols[col("Event Mode")].as_str();
        let has_target = cols[col("Recipient Country")] != "None"
            && cols[col("Recipient Country")] != cols[col("Actor Country")];
        let expected = match (event_type, mode) {
            ("AGREE", _) => Kind::Offer,
            ("CONSULT", "visit") if has_target => Kind::Visit,
            ("CONSULT", _) if has_target => Kind::Talks,
            ("CONSULT", _) | ("SUPPORT", _) => Kind::Statement,
            ("CONCEDE" | "AID" | "RETREAT", _) => Kind::Concession,
            ("COOPERATE", _) => Kind::Agreement,
            ("REQUEST", _) => Kind::Demand,
            ("ACCUSE" | "PROTEST", _) => Kind::Accusation,
            ("REJECT", _) => Kind::Refusal,
            ("THREATEN" | "MOBILIZE", _) => Kind::Threat,
            ("SANCTION" | "COERCE" | "ASSAULT", _) => Kind::Measure,
            other => panic!("{what}: the fixture has a type this test does not know: {other:?}"),
        };
        assert_eq!(event.kind(), expected, "{what}: {event_type}/{mode}");
        assert_eq!(
            event.actors[0].party.as_str(),
            cols[col("Actor Country")],
            "{what}"
        );
        let coding = event.dataset.as_ref().unwrap();
        assert_eq!(coding.event_id, cols[col("Event ID")], "{what}");
        assert_eq!(coding.plover_type.as_deref(), Some(event_type), "{what}");
        assert_eq!(
            coding.plover_mode.as_deref(),
            Some(mode).filter(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(
            coding.intensity,
            Some(cols[col("Intensity")].parse().unwrap()),
            "{what}"
        );
        let quad = [
            "VERBAL COOPERATION",
            "MATERIAL COOPERATION",
            "VERBAL CONFLICT",
            "MATERIAL CONFLICT",
        ]
        .iter()
        .position(|q| *q == cols[col("Quad Code")])
        .unwrap();
        assert_eq!(coding.quad_class, Some(quad as u8 + 1), "{what}");
        assert_eq!(validate(&event), Ok(()), "{what}");
    }
}

#[test]
fn gzip_and_zip_files_read_as_the_plain_file() {
    let plain = rows(Format::Gdelt, "gdelt-2.0-sample.export.CSV");
    assert_eq!(rows(Format::Gdelt, "gdelt-2.0-sample.export.CSV.gz"), plain);
    assert_eq!(
        rows(Format::Gdelt, "gdelt-2.0-sample.export.CSV.zip"),
        plain
    );
}

#[test]
fn a_damaged_zip_entry_fails_its_crc_check() {
    let mut bytes = std::fs::read(fixture("gdelt-2.0-sample.export.CSV.zip")).unwrap();
    // Flip a bit inside the compressed data (after the 30-byte header and the entry's name).
    let at = 30 + "gdelt-2.0-sample.export.CSV".len() + 200;
    bytes[at] ^= 0x01;
    let mut text = String::new();
    let read = decompressed(std::io::Cursor::new(bytes), "damaged.zip")
        .unwrap()
        .read_to_string(&mut text);
    assert!(
        read.is_err(),
        "a damaged archive read as {} bytes",
        text.len()
    );
}

#[test]
fn malformed_rows_are_named_by_line_and_column() {
    let read_all = |name: &str| {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let mut reader = Format::Gdelt.rows();
        text.lines()
            .enumerate()
            .map(|(i, l)| reader.line(i as u64 + 1, l))
            .find_map(Result::err)
    };
    let bad = read_all("gdelt-2.0-malformed.export.CSV").unwrap();
    assert_eq!((bad.line, bad.field.as_str()), (6, "GoldsteinScale"));
    assert!(bad.message.contains("\"high\""), "{bad}");
    let short = read_all("gdelt-2.0-short-row.export.CSV").unwrap();
    assert_eq!((short.line, short.field.as_str()), (4, "columns"));
    assert!(short.message.contains("57"), "{short}");
    // A headed format without its header says which column it misses.
    let err = Format::Icews
        .rows()
        .line(1, "Event ID\tEvent Date")
        .unwrap_err();
    assert_eq!(err.field, "Source Country");
    let err = Format::Polecat.rows().line(1, "not a header").unwrap_err();
    assert_eq!(err.field, "Event ID");
}

#[test]
fn re_reading_a_row_gives_the_same_event_id_and_another_timeline_another() {
    let row = &rows(Format::Gdelt, "gdelt-2.0-sample.export.CSV")[3];
    let a = event_of(row, &destination(), &name_of).unwrap();
    let b = event_of(row, &destination(), &name_of).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(a.id.as_uuid().get_version_num(), 7);
    let elsewhere = Destination {
        timeline: TimelineSlug::new("elsewhere").unwrap(),
        issue: None,
    };
    assert_ne!(event_of(row, &elsewhere, &name_of).unwrap().id, a.id);
}

fn exported_party(code: &PartyCode) -> ExportedParty {
    match parties::by_code(code.as_str()) {
        Some(p) => ExportedParty {
            name: p.name.to_owned(),
            kind: p.kind,
        },
        None => ExportedParty {
            name: code.to_string(),
            kind: PartyKind::Organization,
        },
    }
}

/// An event read from a row, written as a row of the same format and read again.
fn round_trip(format: Format, event: &NewEvent) -> NewEvent {
    let line = match format {
        Format::Gdelt => gdelt_row(event, 1, &exported_party).unwrap(),
        Format::Polecat => polecat_row(event, 1, &exported_party).unwrap(),
        Format::Icews => unreachable!("ICEWS is not exported"),
    };
    let mut reader = format.rows();
    if format == Format::Polecat {
        assert!(reader.line(1, &polecat_header()).unwrap().is_none());
    }
    let row = reader.line(2, &line).unwrap().unwrap();
    event_of(&row, &destination(), &name_of).unwrap()
}

#[test]
fn every_fixture_row_exported_reads_back_as_the_same_event() {
    for (format, name) in [
        (Format::Gdelt, "gdelt-2.0-sample.export.CSV"),
        (Format::Polecat, "polecat-sample.tsv"),
    ] {
        for row in rows(format, name) {
            let Ok(event) = event_of(&row, &destination(), &name_of) else {
                continue;
            };
            assert_eq!(
                round_trip(format, &event),
                event,
                "{name}, line {}",
                row.line
            );
        }
    }
}

/// CAMEO codes of every root, those the table has and others.
const CODES: &[&str] = &[
    "010", "012", "013", "020", "0211", "026", "031", "0311", "036", "037", "040", "041", "042",
    "043", "044", "045", "046", "050", "057", "061", "070", "080", "081", "0831", "085", "090",
    "100", "1011", "1042", "1054", "106", "110", "111", "112", "114", "115", "120", "125", "1232",
    "130", "1312", "134", "140", "150", "160", "163", "164", "172", "180", "190", "200",
];
const COUNTRIES: &[&str] = &[
    "USA", "CHN", "JPN", "DEU", "FRA", "GBR", "IND", "BRA", "RUS", "KOR",
];

prop_compose! {
    fn gdelt_line()(
        id in 1u64..2_000_000_000,
        day in 0i64..3650,
        code in prop::sample::select(CODES),
        actor in prop::sample::select(COUNTRIES),
        target in prop::option::of(prop::sample::select(COUNTRIES)),
        goldstein in -100i32..=100,
        tone in -2000i32..=2000,
        quad in 1u8..=4,
        place in prop::option::of("[A-Z][a-z]{2,10}, [A-Z][a-z]{2,10}"),
    ) -> String {
        let date = time::Date::from_calendar_date(2015, time::Month::January, 1).unwrap() + time::Duration::days(day);
        let sql = format!("{:04}{:02}{:02}", date.year(), u8::from(date.month()), date.day());
        let mut cols = vec![String::new(); 61];
        cols[0] = id.to_string();
        cols[1] = sql.clone();
        cols[5] = actor.to_owned();
        cols[7] = actor.to_owned();
        if let Some(t) = target {
            cols[15] = t.to_owned();
            cols[17] = t.to_owned();
        }
        cols[26] = code.to_owned();
        cols[29] = quad.to_string();
        cols[30] = format!("{}", f64::from(goldstein) / 10.0);
        cols[34] = format!("{}", f64::from(tone) / 100.0);
        cols[52] = place.unwrap_or_default();
        cols[59] = format!("{sql}120000");
        cols[60] = format!("https://news.example.com/{id}");
        cols.join("\t")
    }
}

proptest! {
    /// Whatever a GDELT row holds, the event it makes is valid, and exported and read again it
    /// is the same event, with the dataset's codes.
    #[test]
    fn a_gdelt_row_s_event_survives_export_and_import(line in gdelt_line()) {
        let row = Format::Gdelt.rows().line(1, &line).unwrap().unwrap();
        let event = event_of(&row, &destination(), &name_of).unwrap();
        prop_assert_eq!(validate(&event), Ok(()));
        prop_assert_eq!(&round_trip(Format::Gdelt, &event), &event);
        prop_assert!(matches!(&row.code, RowCode::Cameo(c) if event.dataset.as_ref().unwrap().cameo.as_ref() == Some(c)));
    }
}
