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

pub fn statement(timeline_slug: &str, actor: &str, issues: &[&str], date: &str) -> NewEvent {
    act(
        timeline_slug,
        Payload::Statement(Statement {
            claim: "a claim".into(),
            tone: Tone::Neutral,
        }),
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
        Payload::Demand(Demand {
            terms: "change the policy".into(),
            demand_type: DemandType::PolicyChange,
            deadline: None,
            reaffirms: None,
        }),
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
        Payload::Refusal(Refusal {
            terms: "will not discuss it".into(),
            of: RefusalOf::ToDiscuss,
            refuses,
        }),
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
        Payload::Offer(Offer {
            terms: "open the sector".into(),
            conditions: vec![],
            reaffirms: None,
        }),
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
