//! The codes table, checked against an independent table of expected rows, one real event each.

use chancery_domain::codes::{CODES_TABLE, CODES_VERSION, QuadClass, codes};
use chancery_domain::payload::*;
use chancery_domain::sample::{act, day};
use chancery_domain::{NewEvent, Participant, PartyCode, Payload};

fn event(payload: Payload) -> NewEvent {
    act("t", payload, "USA", Some("CHN"), &["tariffs"], "2018-05-01")
}

fn measure(action: MeasureAction, instrument: Instrument) -> Payload {
    Payload::Measure(Measure {
        terms: "x".into(),
        instrument,
        action,
        announced: day("2018-05-01"),
        effective: None,
        rate_percent: None,
    })
}

fn visit(actor: &str) -> NewEvent {
    let mut e = event(Payload::Visit(Visit {
        visitor: PartyCode::new("USA").unwrap(),
        host: PartyCode::new("CHN").unwrap(),
        place: "Beijing".into(),
        purpose: "talks".into(),
    }));
    e.actors = vec![Participant::party(PartyCode::new(actor).unwrap())];
    e
}

/// (event, CAMEO, PLOVER type, PLOVER mode, QuadClass 1-4, Goldstein)
type Row = (
    NewEvent,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    u8,
    f64,
);

fn expected_rows() -> Vec<Row> {
    use Instrument::*;
    vec![
        (
            event(Payload::Offer(Offer {
                terms: "x".into(),
                conditions: vec![],
                reaffirms: None,
            })),
            "0311",
            Some("AGREE"),
            None,
            1,
            5.2,
        ),
        (
            event(Payload::Demand(Demand {
                terms: "x".into(),
                demand_type: DemandType::PolicyChange,
                deadline: None,
                reaffirms: None,
            })),
            "1042",
            Some("DEMAND"),
            Some("change"),
            3,
            -5.0,
        ),
        (
            event(Payload::Demand(Demand {
                terms: "x".into(),
                demand_type: DemandType::EconomicCooperation,
                deadline: None,
                reaffirms: None,
            })),
            "1011",
            Some("DEMAND"),
            Some("assist"),
            3,
            -5.0,
        ),
        (
            event(Payload::Demand(Demand {
                terms: "x".into(),
                demand_type: DemandType::EaseMeasures,
                deadline: None,
                reaffirms: None,
            })),
            "1054",
            Some("DEMAND"),
            Some("yield"),
            3,
            -5.0,
        ),
        (
            event(Payload::Demand(Demand {
                terms: "x".into(),
                demand_type: DemandType::Meeting,
                deadline: None,
                reaffirms: None,
            })),
            "106",
            Some("DEMAND"),
            Some("meet"),
            3,
            -5.0,
        ),
        (
            event(Payload::Threat(Threat {
                terms: "x".into(),
                instrument: Tariff,
                condition: None,
                deadline: None,
            })),
            "1312",
            Some("THREATEN"),
            Some("restrict"),
            3,
            -5.8,
        ),
        (
            event(Payload::Threat(Threat {
                terms: "x".into(),
                instrument: Sanction,
                condition: None,
                deadline: None,
            })),
            "1312",
            Some("THREATEN"),
            Some("restrict"),
            3,
            -5.8,
        ),
        (
            event(Payload::Threat(Threat {
                terms: "x".into(),
                instrument: ExportControl,
                condition: None,
                deadline: None,
            })),
            "1312",
            Some("THREATEN"),
            Some("restrict"),
            3,
            -5.8,
        ),
        (
            event(Payload::Threat(Threat {
                terms: "x".into(),
                instrument: HaltNegotiations,
                condition: None,
                deadline: None,
            })),
            "134",
            Some("THREATEN"),
            Some("relations"),
            3,
            -5.8,
        ),
        (
            event(Payload::Threat(Threat {
                terms: "x".into(),
                instrument: Other,
                condition: None,
                deadline: None,
            })),
            "130",
            Some("THREATEN"),
            None,
            3,
            -4.4,
        ),
        (
            event(Payload::Refusal(Refusal {
                terms: "x".into(),
                of: RefusalOf::ToDiscuss,
                refuses: vec![],
            })),
            "125",
            Some("REJECT"),
            Some("meet"),
            3,
            -5.0,
        ),
        (
            event(Payload::Refusal(Refusal {
                terms: "x".into(),
                of: RefusalOf::ToAccept,
                refuses: vec![],
            })),
            "1232",
            Some("REJECT"),
            Some("change"),
            3,
            -4.0,
        ),
        (
            event(Payload::Concession(Concession {
                terms: "x".into(),
                concession_type: ConcessionType::AccedeToDemand,
                answers: vec![],
            })),
            "0832",
            Some("CONCEDE"),
            None,
            2,
            5.0,
        ),
        (
            event(Payload::Concession(Concession {
                terms: "x".into(),
                concession_type: ConcessionType::EaseMeasure,
                answers: vec![],
            })),
            "085",
            Some("RETREAT"),
            Some("ease"),
            2,
            7.0,
        ),
        (
            event(Payload::Agreement(Agreement {
                terms: "x".into(),
                form: AgreementForm::JointStatement,
            })),
            "037",
            Some("AGREE"),
            None,
            1,
            5.0,
        ),
        (
            event(Payload::Agreement(Agreement {
                terms: "x".into(),
                form: AgreementForm::SignedDeal,
            })),
            "057",
            Some("SUPPORT"),
            None,
            1,
            8.0,
        ),
        (
            event(measure(MeasureAction::Impose, Tariff)),
            "163",
            Some("COERCE"),
            Some("restrict"),
            4,
            -8.0,
        ),
        (
            event(measure(MeasureAction::Impose, Sanction)),
            "163",
            Some("COERCE"),
            Some("restrict"),
            4,
            -8.0,
        ),
        (
            event(measure(MeasureAction::Impose, ExportControl)),
            "163",
            Some("COERCE"),
            Some("restrict"),
            4,
            -8.0,
        ),
        (
            event(measure(MeasureAction::Impose, HaltNegotiations)),
            "164",
            Some("SANCTION"),
            Some("withdraw"),
            4,
            -7.0,
        ),
        (
            event(measure(MeasureAction::Impose, Other)),
            "160",
            Some("SANCTION"),
            None,
            4,
            -4.0,
        ),
        (
            event(measure(MeasureAction::Ease, Tariff)),
            "085",
            Some("RETREAT"),
            Some("ease"),
            2,
            7.0,
        ),
        (
            event(measure(MeasureAction::Ease, Sanction)),
            "085",
            Some("RETREAT"),
            Some("ease"),
            2,
            7.0,
        ),
        (
            event(measure(MeasureAction::Ease, ExportControl)),
            "085",
            Some("RETREAT"),
            Some("ease"),
            2,
            7.0,
        ),
        (
            event(measure(MeasureAction::Ease, HaltNegotiations)),
            "036",
            Some("AGREE"),
            None,
            1,
            4.0,
        ),
        (
            event(measure(MeasureAction::Ease, Other)),
            "080",
            Some("CONCEDE"),
            None,
            2,
            5.0,
        ),
        (
            event(Payload::Statement(Statement {
                claim: "x".into(),
                tone: Tone::Neutral,
            })),
            "010",
            None,
            None,
            1,
            0.0,
        ),
        (
            event(Payload::Statement(Statement {
                claim: "x".into(),
                tone: Tone::Optimistic,
            })),
            "013",
            None,
            None,
            1,
            0.4,
        ),
        (
            event(Payload::Statement(Statement {
                claim: "x".into(),
                tone: Tone::Pessimistic,
            })),
            "012",
            None,
            None,
            1,
            -0.4,
        ),
        (
            event(Payload::Accusation(Accusation {
                claim: "x".into(),
                form: AccusationForm::Criticize,
            })),
            "111",
            Some("ACCUSE"),
            Some("disapprove"),
            3,
            -2.0,
        ),
        (
            event(Payload::Accusation(Accusation {
                claim: "x".into(),
                form: AccusationForm::Accuse,
            })),
            "112",
            Some("ACCUSE"),
            Some("disapprove"),
            3,
            -2.0,
        ),
        (
            event(Payload::Accusation(Accusation {
                claim: "x".into(),
                form: AccusationForm::Complain,
            })),
            "114",
            Some("ACCUSE"),
            Some("disapprove"),
            3,
            -2.0,
        ),
        (
            event(Payload::Accusation(Accusation {
                claim: "x".into(),
                form: AccusationForm::LegalAction,
            })),
            "115",
            Some("ACCUSE"),
            Some("disapprove"),
            3,
            -2.0,
        ),
        (
            event(Payload::Seminar(Seminar {
                host: PartyCode::new("CHN").unwrap(),
                days: 3,
                participants: vec![],
                topic: None,
            })),
            "010",
            None,
            None,
            1,
            0.0,
        ),
        (visit("USA"), "042", Some("CONSULT"), Some("visit"), 1, 1.9),
        (visit("CHN"), "043", Some("CONSULT"), Some("host"), 1, 2.8),
        (
            event(Payload::Talks(Talks {
                participants: vec![],
                place: "x".into(),
                format: TalksFormat::Negotiation,
                rounds: None,
            })),
            "046",
            Some("CONSULT"),
            None,
            1,
            7.0,
        ),
        (
            event(Payload::Talks(Talks {
                participants: vec![],
                place: "x".into(),
                format: TalksFormat::Consultation,
                rounds: None,
            })),
            "040",
            Some("CONSULT"),
            None,
            1,
            1.0,
        ),
        (
            event(Payload::Talks(Talks {
                participants: vec![],
                place: "x".into(),
                format: TalksFormat::Phone,
                rounds: None,
            })),
            "041",
            Some("CONSULT"),
            Some("phone"),
            1,
            1.0,
        ),
        (
            event(Payload::Talks(Talks {
                participants: vec![],
                place: "x".into(),
                format: TalksFormat::ThirdLocation,
                rounds: None,
            })),
            "044",
            Some("CONSULT"),
            Some("third-party"),
            1,
            2.5,
        ),
    ]
}

#[test]
fn every_row_matches_the_expected_table() {
    assert_eq!(
        CODES_VERSION, 1,
        "a changed table needs a new version and new expected rows"
    );
    let expected = expected_rows();
    for (event, cameo, plover, mode, quad, goldstein) in &expected {
        let got = codes(event).unwrap_or_else(|| panic!("no codes for {:?}", event.payload));
        let what = format!("{:?}", got.key);
        assert_eq!(got.cameo, *cameo, "{what}");
        assert_eq!(got.plover_type, *plover, "{what}");
        assert_eq!(got.plover_mode, *mode, "{what}");
        assert_eq!(got.quad_class.number(), *quad, "{what}");
        assert_eq!(got.goldstein, *goldstein, "{what}");
    }
    assert_eq!(
        expected.len(),
        CODES_TABLE.len(),
        "every row of the table is covered above"
    );
}

#[test]
fn every_row_is_consistent_with_gdelt_conventions() {
    for row in CODES_TABLE {
        assert!(
            row.cameo.len() >= 3 && row.cameo.bytes().all(|b| b.is_ascii_digit()),
            "{:?}",
            row.key
        );
        let root: u8 = row.cameo[..2].parse().unwrap();
        let quad = match root {
            1..=5 => QuadClass::VerbalCooperation,
            6..=8 => QuadClass::MaterialCooperation,
            9..=13 => QuadClass::VerbalConflict,
            _ => QuadClass::MaterialConflict,
        };
        assert_eq!(row.quad_class, quad, "{:?}", row.key);
        assert!((-10.0..=10.0).contains(&row.goldstein));
    }
    let keys: Vec<_> = CODES_TABLE.iter().map(|r| r.key).collect();
    for (i, k) in keys.iter().enumerate() {
        assert!(!keys[..i].contains(k), "duplicate row for {k:?}");
    }
}

#[test]
fn bookkeeping_events_have_no_codes() {
    for e in chancery_domain::sample::world("t", &["USA"], &["tariffs"]) {
        assert!(codes(&e).is_none(), "{}", e.kind());
    }
    let r = chancery_domain::sample::retraction("t", chancery_domain::EventId::new_v7());
    assert!(codes(&r).is_none());
}
