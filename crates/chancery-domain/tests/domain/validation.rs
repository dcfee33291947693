//! Validation: each rule rejects with a message naming the field, and valid events pass.

use chancery_domain::payload::*;
use chancery_domain::sample;
use chancery_domain::*;

fn check_invalid(event: &NewEvent, field: &str, message_part: &str) {
    let errors = validate(event).expect_err("the event should be invalid");
    assert_reported(&errors, field, message_part);
}

/// Asserts that one of `errors` is about `field` and says `message_part`.
fn assert_reported(errors: &ValidationErrors, field: &str, message_part: &str) {
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.field == field && e.message.contains(message_part)),
        "expected {field}: …{message_part}…, got {errors}"
    );
}

fn base() -> NewEvent {
    sample::demand("t", "USA", "CHN", "trade-deficit", "2018-05-01")
}

#[test]
fn a_complete_event_is_valid() {
    assert_eq!(validate(&base()), Ok(()));
    for e in sample::world("t", &["USA", "CHN"], &["trade-deficit"]) {
        assert_eq!(validate(&e), Ok(()), "{}", e.kind());
    }
}

#[test]
fn an_end_before_the_start_is_refused() {
    let mut e = base();
    e.occurred.as_mut().unwrap().end = Some(ValidTime::parse("2018-04-30").unwrap());
    check_invalid(&e, "occurred.end", "before the start");
    // A fuzzy end that overlaps the start is accepted.
    e.occurred.as_mut().unwrap().end = Some(ValidTime::parse("2018-05").unwrap());
    assert_eq!(validate(&e), Ok(()));
}

#[test]
fn amounts_must_be_finite_non_negative_bounded_and_in_a_known_unit() {
    for (value, unit, field, part) in [
        (-1.0, "USD", "amounts[0].value", "negative"),
        (f64::NAN, "USD", "amounts[0].value", "finite"),
        (f64::INFINITY, "USD", "amounts[0].value", "finite"),
        (1e20, "USD", "amounts[0].value", "above the limit"),
        (20_000.0, "PERCENT", "amounts[0].value", "above the limit"),
        (
            5.0,
            "USX",
            "amounts[0].unit",
            "unknown currency code \"USX\"",
        ),
    ] {
        let mut e = base();
        e.amounts = vec![Amount {
            value,
            unit: unit.into(),
            measures: "x".into(),
        }];
        check_invalid(&e, field, part);
    }
}

#[test]
fn diplomatic_events_need_a_summary_actors_a_time_and_sources() {
    let mut e = base();
    e.summary = "   ".into();
    check_invalid(&e, "summary", "must not be empty");
    let mut e = base();
    e.actors.clear();
    check_invalid(&e, "actors", "at least one acting party");
    let mut e = base();
    e.occurred = None;
    check_invalid(&e, "occurred", "is required");
    let mut e = base();
    e.sources.clear();
    check_invalid(&e, "sources", "at least one source");
}

#[test]
fn oversized_text_and_lists_are_refused_with_the_limit() {
    let mut e = base();
    e.summary = "x".repeat(limits::MAX_SUMMARY_CHARS + 1);
    check_invalid(&e, "summary", "the limit is 2000");
    let mut e = base();
    e.sources[0].quote = Some("q".repeat(limits::MAX_QUOTE_CHARS + 1));
    check_invalid(&e, "sources[0].quote", "the limit is 500");
    let mut e = base();
    e.sources = vec![e.sources[0].clone(); limits::MAX_LIST_LEN + 1];
    check_invalid(&e, "sources", "the limit is 32");
    let mut e = base();
    e.sources[0].url = Some("javascript:alert(1)".into());
    check_invalid(&e, "sources[0].url", "http(s) URL");
    let mut e = base();
    e.summary = "bell\u{7}".into();
    check_invalid(&e, "summary", "control characters");
}

#[test]
fn confidence_is_between_zero_and_one() {
    let mut e = base();
    e.confidence = Some(1.5);
    check_invalid(&e, "confidence", "between 0 and 1");
}

#[test]
fn a_measure_takes_effect_after_its_announcement() {
    let mut e = base();
    e.payload = Payload::Measure(Measure {
        terms: "25% tariffs".into(),
        instrument: Instrument::Tariff,
        action: MeasureAction::Impose,
        announced: ValidTime::parse("2018-06-15").unwrap(),
        effective: Some(ValidTime::parse("2018-06-01").unwrap()),
        rate_percent: Some(25.0),
    });
    check_invalid(&e, "payload.effective", "before the announcement");
}

struct Refs {
    registry: Registry,
    events: Vec<(EventId, EventRef)>,
}

impl References for Refs {
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn event(&self, id: &EventId) -> Option<EventRef> {
        self.events
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.clone())
    }
}

fn refs() -> Refs {
    let mut registry = Registry::default();
    for e in sample::world("t", &["USA", "CHN"], &["trade-deficit"]) {
        registry.apply(&e);
    }
    Refs {
        registry,
        events: vec![],
    }
}

fn check_bad_reference(event: &NewEvent, refs: &Refs, field: &str, part: &str) {
    let errors = validate_references(event, refs).expect_err("the reference should be refused");
    assert_reported(&errors, field, part);
}

/// Adds an unretracted event of `kind` in timeline `t` to the log; answers its id.
fn record(refs: &mut Refs, kind: Kind) -> EventId {
    let id = EventId::new_v7();
    refs.events.push((
        id,
        EventRef {
            kind,
            timeline: TimelineSlug::new("t").unwrap(),
            retracted: false,
        },
    ));
    id
}

fn check_bad_retraction(refs: &Refs, retracts: EventId, part: &str) {
    let retraction = sample::retraction("t", retracts);
    check_bad_reference(&retraction, refs, "payload.retracts", part);
}

#[test]
fn references_must_be_registered() {
    let refs = refs();
    assert_eq!(validate_references(&base(), &refs), Ok(()));
    let e = sample::demand("t", "USA", "FRA", "trade-deficit", "2018-05-01");
    check_bad_reference(&e, &refs, "targets[0].party", "unknown party FRA");
    let e = sample::demand("t", "USA", "CHN", "fishing", "2018-05-01");
    check_bad_reference(&e, &refs, "issues[0]", "unknown issue fishing");
    let e = sample::demand("elsewhere", "USA", "CHN", "trade-deficit", "2018-05-01");
    check_bad_reference(&e, &refs, "timeline", "unknown timeline elsewhere");
    let mut e = base();
    e.actors[0].actor = Some(ActorSlug::new("nobody").unwrap());
    check_bad_reference(&e, &refs, "actors[0].actor", "unknown actor nobody");
}

#[test]
fn registering_twice_is_refused() {
    let refs = refs();
    check_bad_reference(
        &sample::register_party("t", "USA"),
        &refs,
        "payload.code",
        "already registered",
    );
    check_bad_reference(
        &sample::register_timeline("t"),
        &refs,
        "payload.slug",
        "already registered",
    );
}

#[test]
fn a_retraction_must_point_at_an_existing_unretracted_act_of_the_same_timeline() {
    let mut refs = refs();
    check_bad_retraction(&refs, EventId::new_v7(), "no event");

    let target = record(&mut refs, Kind::Demand);
    assert_eq!(
        validate_references(&sample::retraction("t", target), &refs),
        Ok(())
    );

    refs.events[0].1.retracted = true;
    check_bad_retraction(&refs, target, "already retracted");

    let registration = record(&mut refs, Kind::PartyRegistered);
    check_bad_retraction(&refs, registration, "not an act of a party");
}

#[test]
fn a_correction_keeps_the_kind_of_what_it_corrects() {
    let mut refs = refs();
    let target = record(&mut refs, Kind::Demand);
    let mut e = NewEvent::new(
        TimelineSlug::new("t").unwrap(),
        Payload::Correction(Box::new(Correction {
            corrects: target,
            reason: "wrong kind".into(),
            changes: CorrectionChanges {
                payload: Some(Payload::Statement(Statement {
                    claim: "x".into(),
                    tone: Tone::Neutral,
                })),
                ..Default::default()
            },
        })),
    );
    assert_eq!(validate(&e), Ok(()));
    check_bad_reference(
        &e,
        &refs,
        "payload.changes.payload",
        "is a STATEMENT payload but event",
    );

    e.payload = Payload::Correction(Box::new(Correction {
        corrects: target,
        reason: "nothing".into(),
        changes: CorrectionChanges::default(),
    }));
    check_invalid(&e, "payload.changes", "at least one field");
}

#[test]
fn ids_are_uuid_v7() {
    let mut e = base();
    e.id = EventId::from_uuid(uuid_v4());
    check_invalid(&e, "id", "UUID v7");
}

fn uuid_v4() -> uuid::Uuid {
    uuid::Uuid::parse_str("9b2f1c0e-3a4d-4e5f-8a6b-7c8d9e0f1a2b").unwrap()
}
