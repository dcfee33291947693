//! Ready-made valid events for tests and benchmarks of this and other crates (feature
//! `testing`): registrations and one builder per common kind.

use crate::event::{Amount, Attribution, NewEvent, Occurred, Participant, Source};
use crate::ids::{EventId, IssueSlug, PartyCode, TimelineSlug};
use crate::payload::*;
use crate::time::ValidTime;

fn party(code: &str) -> PartyCode {
    PartyCode::new(code).unwrap_or_else(|e| panic!("sample party: {e}"))
}

fn issue(slug: &str) -> IssueSlug {
    IssueSlug::new(slug).unwrap_or_else(|e| panic!("sample issue: {e}"))
}

pub fn timeline(slug: &str) -> TimelineSlug {
    TimelineSlug::new(slug).unwrap_or_else(|e| panic!("sample timeline: {e}"))
}

pub fn day(text: &str) -> ValidTime {
    ValidTime::parse(text).unwrap_or_else(|e| panic!("sample date: {e}"))
}

pub fn source(attribution: Attribution) -> Source {
    Source {
        publication: "Example Wire".into(),
        title: Some("A report".into()),
        url: Some("https://example.org/report".into()),
        published: Some(day("2018-05-01")),
        attribution,
        quote: Some("a short quote".into()),
    }
}

pub fn register_timeline(slug: &str) -> NewEvent {
    let t = timeline(slug);
    NewEvent::new(
        t.clone(),
        Payload::TimelineRegistered(TimelineRegistered {
            slug: t,
            title: format!("Timeline {slug}"),
            description: None,
        }),
    )
}

pub fn register_party(timeline_slug: &str, code: &str) -> NewEvent {
    NewEvent::new(
        timeline(timeline_slug),
        Payload::PartyRegistered(PartyRegistered {
            code: party(code),
            name: format!("Party {code}"),
            party_kind: PartyKind::State,
        }),
    )
}

pub fn register_issue(timeline_slug: &str, slug: &str) -> NewEvent {
    NewEvent::new(
        timeline(timeline_slug),
        Payload::IssueRegistered(IssueRegistered {
            slug: issue(slug),
            title: format!("Issue {slug}"),
            description: None,
        }),
    )
}

/// The registrations that make a timeline usable: the timeline, parties and issues.
pub fn world(timeline_slug: &str, parties: &[&str], issues: &[&str]) -> Vec<NewEvent> {
    let mut events = vec![register_timeline(timeline_slug)];
    events.extend(parties.iter().map(|p| register_party(timeline_slug, p)));
    events.extend(issues.iter().map(|i| register_issue(timeline_slug, i)));
    events
}

/// A valid diplomatic event of the given payload, by `actor` towards `target`, on `issues`.
pub fn act(
    timeline_slug: &str,
    payload: Payload,
    actor: &str,
    target: Option<&str>,
    issues: &[&str],
    date: &str,
) -> NewEvent {
    let mut e = NewEvent::new(timeline(timeline_slug), payload);
    e.occurred = Some(Occurred {
        start: day(date),
        end: None,
        modality: crate::event::Modality::Occurred,
    });
    e.actors = vec![Participant::party(party(actor))];
    e.targets = target
        .map(|t| vec![Participant::party(party(t))])
        .unwrap_or_default();
    e.issues = issues.iter().map(|i| issue(i)).collect();
    e.summary = format!("{} by {actor}", e.kind());
    e.sources = vec![source(Attribution::Official)];
    e.confidence = Some(0.9);
    e
}

/// Payloads of the diplomatic kinds with placeholder text, given the choices that decide their
/// codes and stances: for tests that vary those choices only.
pub mod payloads {
    use super::party;
    use crate::ids::EventId;
    use crate::payload::*;
    use crate::time::ValidTime;

    pub fn offer(conditions: Vec<String>) -> Payload {
        Payload::Offer(Offer {
            terms: "open the sector".into(),
            conditions,
            reaffirms: None,
        })
    }

    pub fn demand(demand_type: DemandType) -> Payload {
        Payload::Demand(Demand {
            terms: "change the policy".into(),
            demand_type,
            deadline: None,
            reaffirms: None,
        })
    }

    pub fn threat(instrument: Instrument) -> Payload {
        Payload::Threat(Threat {
            terms: "tariffs on goods".into(),
            instrument,
            condition: None,
            deadline: None,
        })
    }

    pub fn refusal(of: RefusalOf, refuses: Vec<EventId>) -> Payload {
        Payload::Refusal(Refusal {
            terms: "will not discuss it".into(),
            of,
            refuses,
        })
    }

    pub fn concession(concession_type: ConcessionType) -> Payload {
        Payload::Concession(Concession {
            terms: "accepts an inspection".into(),
            concession_type,
            answers: vec![],
        })
    }

    pub fn agreement(form: AgreementForm) -> Payload {
        Payload::Agreement(Agreement {
            terms: "a deal".into(),
            form,
        })
    }

    pub fn measure(
        action: MeasureAction,
        instrument: Instrument,
        announced: ValidTime,
        effective: Option<ValidTime>,
    ) -> Payload {
        Payload::Measure(Measure {
            terms: "tariffs".into(),
            instrument,
            action,
            announced,
            effective,
            rate_percent: None,
        })
    }

    pub fn statement(tone: Tone) -> Payload {
        Payload::Statement(Statement {
            claim: "a claim".into(),
            tone,
        })
    }

    pub fn accusation(form: AccusationForm) -> Payload {
        Payload::Accusation(Accusation {
            claim: "unfair subsidies".into(),
            form,
        })
    }

    /// A three-day seminar hosted by party `host`.
    pub fn seminar(host: &str) -> Payload {
        Payload::Seminar(Seminar {
            host: party(host),
            days: 3,
            participants: vec![],
            topic: None,
        })
    }

    pub fn visit(visitor: &str, host: &str) -> Payload {
        Payload::Visit(Visit {
            visitor: party(visitor),
            host: party(host),
            place: "Beijing".into(),
            purpose: "talks".into(),
        })
    }

    pub fn talks(participants: &[&str], format: TalksFormat) -> Payload {
        Payload::Talks(Talks {
            participants: participants.iter().map(|p| party(p)).collect(),
            place: "Beijing".into(),
            format,
            rounds: None,
        })
    }
}

pub fn statement(timeline_slug: &str, actor: &str, issues: &[&str], date: &str) -> NewEvent {
    act(
        timeline_slug,
        payloads::statement(Tone::Neutral),
        actor,
        None,
        issues,
        date,
    )
}

pub fn demand(
    timeline_slug: &str,
    actor: &str,
    target: &str,
    issue_slug: &str,
    date: &str,
) -> NewEvent {
    let mut e = act(
        timeline_slug,
        payloads::demand(DemandType::PolicyChange),
        actor,
        Some(target),
        &[issue_slug],
        date,
    );
    e.amounts = vec![Amount {
        value: 100e9,
        unit: "USD".into(),
        measures: "cut demanded".into(),
    }];
    e
}

pub fn refusal(
    timeline_slug: &str,
    actor: &str,
    target: &str,
    issue_slug: &str,
    date: &str,
    refuses: Vec<EventId>,
) -> NewEvent {
    act(
        timeline_slug,
        payloads::refusal(RefusalOf::ToDiscuss, refuses),
        actor,
        Some(target),
        &[issue_slug],
        date,
    )
}

pub fn offer(
    timeline_slug: &str,
    actor: &str,
    target: &str,
    issue_slug: &str,
    date: &str,
) -> NewEvent {
    act(
        timeline_slug,
        payloads::offer(vec![]),
        actor,
        Some(target),
        &[issue_slug],
        date,
    )
}

pub fn retraction(timeline_slug: &str, retracts: EventId) -> NewEvent {
    let mut e = NewEvent::new(
        timeline(timeline_slug),
        Payload::Retraction(Retraction {
            retracts,
            reason: "misreported".into(),
        }),
    );
    e.summary = "retracted: misreported".into();
    e
}

pub fn correction(timeline_slug: &str, corrects: EventId, changes: CorrectionChanges) -> NewEvent {
    let mut e = NewEvent::new(
        timeline(timeline_slug),
        Payload::Correction(Box::new(Correction {
            corrects,
            reason: "misreported".into(),
            changes,
        })),
    );
    e.summary = "corrected: misreported".into();
    e
}
