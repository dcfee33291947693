//! Synthetic logs for benchmarks: a deterministic mix of every act over several timelines,
//! parties and issues, years of valid time, with a share of late reports, retractions and
//! corrections, so that replay does all of its kinds of work.

use chancery_domain::payload::*;
use chancery_domain::{
    Amount, Attribution, EventId, IssueSlug, Modality, NewEvent, Occurred, Participant, PartyCode,
    Payload, Source, TimelineSlug, ValidTime,
};
use chancery_store::{AppendRequest, EventLog, ExpectedVersion, StoreError};

pub const TIMELINES: usize = 4;
pub const PARTIES: usize = 20;
pub const ISSUES: usize = 40;

/// A small, fast, deterministic generator (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn timeline(i: usize) -> TimelineSlug {
    TimelineSlug::new(format!("dossier-{i}")).unwrap_or_else(|e| unreachable_name(&e))
}

fn party(i: usize) -> PartyCode {
    PartyCode::new(format!("P{i:02}")).unwrap_or_else(|e| unreachable_name(&e))
}

fn issue(i: usize) -> IssueSlug {
    IssueSlug::new(format!("issue-{i}")).unwrap_or_else(|e| unreachable_name(&e))
}

fn unreachable_name<T>(e: &chancery_domain::IdError) -> T {
    panic!("a generated name is invalid: {e}")
}

/// The registrations every synthetic log starts with, per timeline (the first also registers
/// the parties and issues).
pub fn registrations(t: usize) -> Vec<NewEvent> {
    let tl = timeline(t);
    let mut out = vec![NewEvent::new(
        tl.clone(),
        Payload::TimelineRegistered(TimelineRegistered {
            slug: tl.clone(),
            title: format!("Dossier {t}"),
            description: None,
        }),
    )];
    if t == 0 {
        for p in 0..PARTIES {
            out.push(NewEvent::new(
                tl.clone(),
                Payload::PartyRegistered(PartyRegistered {
                    code: party(p),
                    name: format!("Party {p}"),
                    party_kind: PartyKind::State,
                }),
            ));
        }
        for i in 0..ISSUES {
            out.push(NewEvent::new(
                tl.clone(),
                Payload::IssueRegistered(IssueRegistered {
                    slug: issue(i),
                    title: format!("Issue {i}"),
                    description: None,
                }),
            ));
        }
    }
    out
}

/// Generates acts (and some retractions and corrections) of one timeline.
pub struct Acts {
    rng: Rng,
    timeline: usize,
    recent: Vec<EventId>,
}

impl Acts {
    pub fn new(seed: u64, timeline: usize) -> Self {
        Self {
            rng: Rng::new(seed),
            timeline,
            recent: Vec::new(),
        }
    }

    /// The next act only (no retraction or correction): for append benchmarks, where every event
    /// must stand on its own.
    pub fn next_act(&mut self, n: u64) -> NewEvent {
        loop {
            let e = self.next_event(n);
            if e.kind().is_diplomatic() {
                return e;
            }
        }
    }

    /// The next event, the `n`th of the log: about one in two hundred a retraction of a recent
    /// act, as many a correction of one, the rest acts.
    pub fn next_event(&mut self, n: u64) -> NewEvent {
        let roll = self.rng.below(1000);
        if let Some(e) = self.retraction_or_correction(roll) {
            return e;
        }
        let actor = self.rng.below(PARTIES);
        let target = (actor + 1 + self.rng.below(PARTIES - 1)) % PARTIES;
        let date = self.valid_day(n);
        let mut e = NewEvent::new(
            timeline(self.timeline),
            self.act_payload(date, actor, target),
        );
        self.describe(&mut e, n, date, (actor, target));
        if self.recent.len() < 512 {
            self.recent.push(e.id);
        } else {
            let i = self.rng.below(512);
            self.recent[i] = e.id;
        }
        e
    }

    /// A retraction of a recent act (`roll` below 5) or a correction of one (below 10), if
    /// there is a recent act.
    fn retraction_or_correction(&mut self, roll: usize) -> Option<NewEvent> {
        if roll >= 10 || self.recent.is_empty() {
            return None;
        }
        let tl = timeline(self.timeline);
        if roll < 5 {
            let id = self.recent.swap_remove(self.rng.below(self.recent.len()));
            let mut e = NewEvent::new(
                tl,
                Payload::Retraction(Retraction {
                    retracts: id,
                    reason: "misreported".into(),
                }),
            );
            e.summary = "retracted".into();
            return Some(e);
        }
        let id = self.recent[self.rng.below(self.recent.len())];
        let changes = CorrectionChanges {
            summary: Some("corrected summary".into()),
            confidence: Some(0.5),
            ..Default::default()
        };
        let mut e = NewEvent::new(
            tl,
            Payload::Correction(Box::new(Correction {
                corrects: id,
                reason: "better source".into(),
                changes,
            })),
        );
        e.summary = "corrected".into();
        Some(e)
    }

    /// The valid day of the `n`th event: it advances with the log, a day every 300 events, with
    /// one event in fifty reported late (up to four months back).
    fn valid_day(&mut self, n: u64) -> time::Date {
        let mut day = i64::try_from(n / 300).unwrap_or(0);
        if self.rng.below(50) == 0 {
            day -= i64::try_from(self.rng.below(120)).unwrap_or(0);
        }
        time::Date::from_calendar_date(2000, time::Month::January, 1).unwrap_or(time::Date::MIN)
            + time::Duration::days(day.max(0))
    }

    /// One of the twelve acts, drawn evenly, of party `actor` towards party `target` on `date`.
    fn act_payload(&mut self, date: time::Date, actor: usize, target: usize) -> Payload {
        match self.rng.below(12) {
            0 => Payload::Offer(Offer {
                terms: "open the sector to foreign firms".into(),
                conditions: vec![],
                reaffirms: None,
            }),
            1 => Payload::Offer(Offer {
                terms: "lower tariffs".into(),
                conditions: vec!["if quotas are lifted".into()],
                reaffirms: None,
            }),
            2 => Payload::Demand(Demand {
                terms: "cut the deficit".into(),
                demand_type: DemandType::PolicyChange,
                deadline: None,
                reaffirms: None,
            }),
            3 => Payload::Refusal(Refusal {
                terms: "will not discuss it".into(),
                of: RefusalOf::ToDiscuss,
                refuses: vec![],
            }),
            4 => Payload::Concession(Concession {
                terms: "accepts an inspection".into(),
                concession_type: ConcessionType::AccedeToDemand,
                answers: vec![],
            }),
            5 => Payload::Threat(Threat {
                terms: "tariffs on goods".into(),
                instrument: Instrument::Tariff,
                condition: None,
                deadline: None,
            }),
            6 => Payload::Measure(Measure {
                terms: "25% tariffs".into(),
                instrument: Instrument::Tariff,
                action: MeasureAction::Impose,
                announced: ValidTime::Day(date),
                effective: Some(ValidTime::Day(date + time::Duration::days(20))),
                rate_percent: Some(25.0),
            }),
            7 => Payload::Statement(Statement {
                claim: "the imbalance comes from savings rates".into(),
                tone: Tone::Neutral,
            }),
            8 => Payload::Accusation(Accusation {
                claim: "unfair subsidies".into(),
                form: AccusationForm::Accuse,
            }),
            9 => Payload::Talks(Talks {
                participants: vec![party(actor), party(target)],
                place: "Geneva".into(),
                format: TalksFormat::Negotiation,
                rounds: Some(1),
            }),
            10 => Payload::Visit(Visit {
                visitor: party(actor),
                host: party(target),
                place: "the capital".into(),
                purpose: "trade talks".into(),
            }),
            _ => Payload::Agreement(Agreement {
                terms: "joint statement".into(),
                form: AgreementForm::JointStatement,
            }),
        }
    }

    /// Fills in an act's details: when it happened (and whether it did), who took part, the
    /// issues, an amount, a summary, a source and a confidence.
    fn describe(
        &mut self,
        e: &mut NewEvent,
        n: u64,
        date: time::Date,
        (actor, target): (usize, usize),
    ) {
        let modality = match self.rng.below(20) {
            0 => Modality::Planned,
            1 => Modality::Hypothetical,
            _ => Modality::Occurred,
        };
        e.occurred = Some(Occurred {
            start: ValidTime::Day(date),
            end: None,
            modality,
        });
        e.actors = vec![Participant {
            party: party(actor),
            actor: None,
        }];
        let other = Participant {
            party: party(target),
            actor: None,
        };
        // The parties to an agreement are all its actors.
        if matches!(e.payload, Payload::Agreement(_)) {
            e.actors.push(other);
        } else {
            e.targets = vec![other];
        }
        e.issues = vec![issue(self.rng.below(ISSUES))];
        if self.rng.below(4) == 0 {
            e.issues.push(issue(self.rng.below(ISSUES)));
            e.issues.dedup();
        }
        e.amounts = vec![Amount {
            value: 1e9 * (1 + self.rng.below(500)) as f64,
            unit: "USD".into(),
            measures: "goods covered".into(),
        }];
        e.summary = format!(
            "Synthetic event {n} between {} and {}: a plausible summary of what happened.",
            party(actor),
            party(target)
        );
        e.sources = vec![Source {
            publication: "Synthetic Wire".into(),
            title: Some("A report".into()),
            url: Some(format!("https://example.org/report/{n}")),
            published: Some(ValidTime::Day(date)),
            attribution: if n % 3 == 0 {
                Attribution::Anonymous
            } else {
                Attribution::Official
            },
            quote: Some("a short quote from the report".into()),
        }];
        e.confidence = Some(0.8);
    }
}

/// Registers timelines `0..count` (their parties, issues and the timeline itself) in `log`.
pub async fn register_timelines(log: &impl EventLog, count: usize) -> Result<(), StoreError> {
    for t in 0..count {
        let events = registrations(t);
        let timeline = events[0].timeline.clone();
        log.append(AppendRequest {
            refers_within: None,
            timeline,
            expected: ExpectedVersion::NoTimeline,
            events,
        })
        .await?;
    }
    Ok(())
}
