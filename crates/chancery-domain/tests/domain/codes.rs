//! The codes table, checked against an independent table of expected rows, one real event each.

use chancery_domain::codes::{CODES_TABLE, CODES_VERSION, QuadClass, codes};
use chancery_domain::payload::*;
use chancery_domain::sample::{act, day, payloads};
use chancery_domain::{NewEvent, Participant, PartyCode, Payload};

fn event(payload: Payload) -> NewEvent {
    act("t", payload, "USA", Some("CHN"), &["tariffs"], "2018-05-01")
}

fn measure(action: MeasureAction, instrument: Instrument) -> NewEvent {
    event(payloads::measure(
        action,
        instrument,
        day("2018-05-01"),
        None,
    ))
}

fn talks(format: TalksFormat) -> NewEvent {
    event(payloads::talks(&[], format))
}

/// USA's visit to CHN with `actor` alone among the actors: made by the visitor, hosted by the host.
fn visit(actor: &str) -> NewEvent {
    let mut e = event(payloads::visit("USA", "CHN"));
    e.actors = vec![Participant::party(PartyCode::new(actor).unwrap())];
    e
}

/// (CAMEO, PLOVER type, PLOVER mode, QuadClass 1-4, Goldstein)
type Expected = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    u8,
    f64,
);

/// An event and the codes it must get.
type Row = (NewEvent, Expected);

/// Codes that several rows expect: CAMEO gives every economic restriction threatened, imposed
/// or eased one code, and statements and seminars another.
const THREATEN_RESTRICT: Expected = ("1312", Some("THREATEN"), Some("restrict"), 3, -5.8);
const COERCE_RESTRICT: Expected = ("163", Some("COERCE"), Some("restrict"), 4, -8.0);
const RETREAT_EASE: Expected = ("085", Some("RETREAT"), Some("ease"), 2, 7.0);
const MAKE_STATEMENT: Expected = ("010", None, None, 1, 0.0);

fn expected_rows() -> Vec<Row> {
    use Instrument::*;
    use payloads::{accusation, agreement, concession, demand, refusal, statement, threat};
    let mut rows = vec![
        (
            event(payloads::offer(vec![])),
            ("0311", Some("AGREE"), None, 1, 5.2),
        ),
        (event(threat(Tariff)), THREATEN_RESTRICT),
        (event(threat(Sanction)), THREATEN_RESTRICT),
        (event(threat(ExportControl)), THREATEN_RESTRICT),
        (
            event(threat(HaltNegotiations)),
            ("134", Some("THREATEN"), Some("relations"), 3, -5.8),
        ),
        (
            event(threat(Other)),
            ("130", Some("THREATEN"), None, 3, -4.4),
        ),
        (
            event(refusal(RefusalOf::ToDiscuss, vec![])),
            ("125", Some("REJECT"), Some("meet"), 3, -5.0),
        ),
        (
            event(refusal(RefusalOf::ToAccept, vec![])),
            ("1232", Some("REJECT"), Some("change"), 3, -4.0),
        ),
        (
            event(concession(ConcessionType::AccedeToDemand)),
            ("0832", Some("CONCEDE"), None, 2, 5.0),
        ),
        (event(concession(ConcessionType::EaseMeasure)), RETREAT_EASE),
        (
            event(agreement(AgreementForm::JointStatement)),
            ("037", Some("AGREE"), None, 1, 5.0),
        ),
        (
            event(agreement(AgreementForm::SignedDeal)),
            ("057", Some("SUPPORT"), None, 1, 8.0),
        ),
        (measure(MeasureAction::Impose, Tariff), COERCE_RESTRICT),
        (measure(MeasureAction::Impose, Sanction), COERCE_RESTRICT),
        (
            measure(MeasureAction::Impose, ExportControl),
            COERCE_RESTRICT,
        ),
        (
            measure(MeasureAction::Impose, HaltNegotiations),
            ("164", Some("SANCTION"), Some("withdraw"), 4, -7.0),
        ),
        (
            measure(MeasureAction::Impose, Other),
            ("160", Some("SANCTION"), None, 4, -4.0),
        ),
        (measure(MeasureAction::Ease, Tariff), RETREAT_EASE),
        (measure(MeasureAction::Ease, Sanction), RETREAT_EASE),
        (measure(MeasureAction::Ease, ExportControl), RETREAT_EASE),
        (
            measure(MeasureAction::Ease, HaltNegotiations),
            ("036", Some("AGREE"), None, 1, 4.0),
        ),
        (
            measure(MeasureAction::Ease, Other),
            ("080", Some("CONCEDE"), None, 2, 5.0),
        ),
        (event(statement(Tone::Neutral)), MAKE_STATEMENT),
        (
            event(statement(Tone::Optimistic)),
            ("013", None, None, 1, 0.4),
        ),
        (
            event(statement(Tone::Pessimistic)),
            ("012", None, None, 1, -0.4),
        ),
        (event(payloads::seminar("CHN")), MAKE_STATEMENT),
        (
            visit("USA"),
            ("042", Some("CONSULT"), Some("visit"), 1, 1.9),
        ),
        (visit("CHN"), ("043", Some("CONSULT"), Some("host"), 1, 2.8)),
        (
            talks(TalksFormat::Negotiation),
            ("046", Some("CONSULT"), None, 1, 7.0),
        ),
        (
            talks(TalksFormat::Consultation),
            ("040", Some("CONSULT"), None, 1, 1.0),
        ),
        (
            talks(TalksFormat::Phone),
            ("041", Some("CONSULT"), Some("phone"), 1, 1.0),
        ),
        (
            talks(TalksFormat::ThirdLocation),
            ("044", Some("CONSULT"), Some("third-party"), 1, 2.5),
        ),
    ];
    // Demands share a PLOVER type, QuadClass and Goldstein score; what is asked sets the rest.
    let demands = [
        (DemandType::PolicyChange, "1042", "change"),
        (DemandType::EconomicCooperation, "1011", "assist"),
        (DemandType::EaseMeasures, "1054", "yield"),
        (DemandType::Meeting, "106", "meet"),
    ];
    rows.extend(demands.map(|(demand_type, cameo, mode)| {
        let expected = (cameo, Some("DEMAND"), Some(mode), 3, -5.0);
        (event(demand(demand_type)), expected)
    }));
    // Accusations differ in their CAMEO code only.
    let accusations = [
        (AccusationForm::Criticize, "111"),
        (AccusationForm::Accuse, "112"),
        (AccusationForm::Complain, "114"),
        (AccusationForm::LegalAction, "115"),
    ];
    rows.extend(accusations.map(|(form, cameo)| {
        let expected = (cameo, Some("ACCUSE"), Some("disapprove"), 3, -2.0);
        (event(accusation(form)), expected)
    }));
    rows
}

#[test]
fn every_row_matches_the_expected_table() {
    assert_eq!(
        CODES_VERSION, 1,
        "a changed table needs a new version and new expected rows"
    );
    let expected = expected_rows();
    for (event, (cameo, plover, mode, quad, goldstein)) in &expected {
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
