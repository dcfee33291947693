//! Input types: an event as a client records it (its kind chosen by the one field set in the
//! `@oneOf` payload input), corrections, registrations, filters and as-of times, and their
//! conversion to domain values. Values with a syntax (codes, slugs, dates) are parsed by scalars
//! at coercion; what needs the log (references) is checked by validation at append.

use async_graphql::{ID, InputObject, OneofObject};
use chancery_domain::payload as p;
use chancery_domain::{EventId, IssueSlug, NewEvent, TimelineSlug};

use crate::auth::Timelines;
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::scalars::{DateTime, Long, Party, Slug, ValidTime};

#[derive(InputObject, Clone)]
pub struct OccurredInput {
    pub start: ValidTime,
    pub end: Option<ValidTime>,
    #[graphql(default_with = "Modality::Occurred")]
    pub modality: Modality,
}

#[derive(InputObject, Clone)]
pub struct ParticipantInput {
    pub party: Party,
    /// One of the party's registered actors.
    pub actor: Option<Slug>,
}

#[derive(InputObject, Clone)]
pub struct AmountInput {
    /// A magnitude: non-negative, finite, at most 1e16 (a rate: at most 10,000).
    pub value: f64,
    /// An ISO 4217 currency code (USD, CNY, EUR) or PERCENT.
    pub unit: String,
    /// What it measures ("cut of the annual trade deficit").
    pub measures: String,
}

#[derive(InputObject, Clone)]
pub struct SourceInput {
    pub publication: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub published: Option<ValidTime>,
    pub attribution: Attribution,
    /// A short quote (at most 500 characters), never the full text.
    pub quote: Option<String>,
}

/// The inputs of the kinds of act, the `@oneOf` [`ActInput`] choosing one, and its conversion to
/// the domain payload: each field with its type and how it reads into the payload (from the
/// kind's input `|$x|`, errors named under `$field`, the path of the `act`).
macro_rules! act_inputs {
    (|$x:ident, $field:ident| {
        $($kind:ident($input:ident) {
            $($(#[$attr:meta])* $name:ident: $type:ty = $value:expr,)*
        })*
    }) => {
        $(
            #[derive(InputObject, Clone)]
            pub struct $input {
                $($(#[$attr])* pub $name: $type,)*
            }
        )*

        /// The act: set exactly one field, named after the kind.
        #[derive(OneofObject, Clone)]
        pub enum ActInput {
            $($kind($input),)*
        }

        impl ActInput {
            pub fn to_payload(&self, $field: &str) -> ApiResult<p::Payload> {
                Ok(match self {
                    $(ActInput::$kind($x) => p::Payload::$kind(p::$kind {
                        $($name: $value,)*
                    }),)*
                })
            }
        }
    };
}

act_inputs!(|x, field| {
    Offer(OfferInput) {
        terms: String = x.terms.clone(),
        #[graphql(default)]
        conditions: Vec<String> = x.conditions.clone(),
        /// The earlier offer this one restates.
        reaffirms: Option<ID> = reaffirmed(&x.reaffirms, &format!("{field}.offer.reaffirms"))?,
    }
    Demand(DemandInput) {
        terms: String = x.terms.clone(),
        #[graphql(default_with = "DemandType::PolicyChange")]
        demand_type: DemandType = x.demand_type.into(),
        deadline: Option<ValidTime> = x.deadline.map(|v| v.0),
        reaffirms: Option<ID> = reaffirmed(&x.reaffirms, &format!("{field}.demand.reaffirms"))?,
    }
    Threat(ThreatInput) {
        terms: String = x.terms.clone(),
        instrument: Instrument = x.instrument.into(),
        condition: Option<String> = x.condition.clone(),
        deadline: Option<ValidTime> = x.deadline.map(|v| v.0),
    }
    Refusal(RefusalInput) {
        terms: String = x.terms.clone(),
        of: RefusalOf = x.of.into(),
        #[graphql(default)]
        refuses: Vec<ID> = ids(&x.refuses, &format!("{field}.refusal.refuses"))?,
    }
    Concession(ConcessionInput) {
        terms: String = x.terms.clone(),
        #[graphql(default_with = "ConcessionType::AccedeToDemand")]
        concession_type: ConcessionType = x.concession_type.into(),
        #[graphql(default)]
        answers: Vec<ID> = ids(&x.answers, &format!("{field}.concession.answers"))?,
    }
    Agreement(AgreementInput) {
        terms: String = x.terms.clone(),
        form: AgreementForm = x.form.into(),
    }
    Measure(MeasureInput) {
        terms: String = x.terms.clone(),
        instrument: Instrument = x.instrument.into(),
        #[graphql(default_with = "MeasureAction::Impose")]
        action: MeasureAction = x.action.into(),
        announced: ValidTime = x.announced.0,
        effective: Option<ValidTime> = x.effective.map(|v| v.0),
        rate_percent: Option<f64> = x.rate_percent,
    }
    Statement(StatementInput) {
        claim: String = x.claim.clone(),
        #[graphql(default_with = "Tone::Neutral")]
        tone: Tone = x.tone.into(),
    }
    Accusation(AccusationInput) {
        claim: String = x.claim.clone(),
        form: AccusationForm = x.form.into(),
    }
    Seminar(SeminarInput) {
        host: Party = x.host.0.clone(),
        days: u32 = x.days,
        #[graphql(default)]
        participants: Vec<String> = x.participants.clone(),
        topic: Option<String> = x.topic.clone(),
    }
    Visit(VisitInput) {
        visitor: Party = x.visitor.0.clone(),
        host: Party = x.host.0.clone(),
        place: String = x.place.clone(),
        purpose: String = x.purpose.clone(),
    }
    Talks(TalksInput) {
        participants: Vec<Party> = x.participants.iter().map(|p| p.0.clone()).collect(),
        place: String = x.place.clone(),
        #[graphql(default_with = "TalksFormat::Negotiation")]
        format: TalksFormat = x.format.into(),
        rounds: Option<u32> = x.rounds,
    }
});

/// An act of one or more parties, with its sources.
#[derive(InputObject, Clone)]
pub struct EventInput {
    /// A UUID v7 you choose, so that a retry is idempotent; one is generated if left out.
    pub id: Option<ID>,
    pub occurred: OccurredInput,
    pub actors: Vec<ParticipantInput>,
    #[graphql(default)]
    pub targets: Vec<ParticipantInput>,
    #[graphql(default)]
    pub issues: Vec<Slug>,
    #[graphql(default)]
    pub amounts: Vec<AmountInput>,
    pub location: Option<String>,
    pub summary: String,
    pub sources: Vec<SourceInput>,
    /// From 0 to 1.
    pub confidence: Option<f64>,
    pub act: ActInput,
}

/// What version the timeline must be at: set at most one field; none means any.
#[derive(OneofObject, Clone, Copy)]
pub enum ExpectedVersionInput {
    /// Any version.
    Any(bool),
    /// The timeline has no events yet.
    NoTimeline(bool),
    /// Exactly this version.
    Exact(Long),
}

impl ExpectedVersionInput {
    pub fn to_domain(input: Option<ExpectedVersionInput>) -> chancery_store::ExpectedVersion {
        match input {
            None | Some(ExpectedVersionInput::Any(_)) => chancery_store::ExpectedVersion::Any,
            Some(ExpectedVersionInput::NoTimeline(_)) => {
                chancery_store::ExpectedVersion::NoTimeline
            }
            Some(ExpectedVersionInput::Exact(v)) => chancery_store::ExpectedVersion::Exact(v.0),
        }
    }
}

/// The new values of a correction; fields left out keep their value.
#[derive(InputObject, Clone, Default)]
pub struct ChangesInput {
    pub occurred: Option<OccurredInput>,
    pub actors: Option<Vec<ParticipantInput>>,
    pub targets: Option<Vec<ParticipantInput>>,
    pub issues: Option<Vec<Slug>>,
    pub amounts: Option<Vec<AmountInput>>,
    pub location: Option<String>,
    pub summary: Option<String>,
    pub sources: Option<Vec<SourceInput>>,
    pub confidence: Option<f64>,
    /// A new payload, of the corrected event's kind.
    pub act: Option<ActInput>,
}

/// Which events: within a list any value matches; across lists all must.
#[derive(InputObject, Clone)]
pub struct EventFilterInput {
    #[graphql(default)]
    pub timelines: Vec<Slug>,
    #[graphql(default)]
    pub parties: Vec<Party>,
    #[graphql(default)]
    pub issues: Vec<Slug>,
    #[graphql(default)]
    pub kinds: Vec<Kind>,
    /// Valid time from (inclusive).
    pub valid_from: Option<ValidTime>,
    /// Valid time to (exclusive of anything starting after its span).
    pub valid_to: Option<ValidTime>,
    /// Words that must appear in the summary (case-insensitive).
    pub text: Option<String>,
    /// Include retracted events (flagged `retracted`). Default true.
    #[graphql(default = true)]
    pub include_retracted: bool,
}

/// The two times of a question: the world as of a valid time, as the log knew it at a position
/// or at an instant. Leave all out for now.
#[derive(InputObject, Clone, Copy, Default)]
pub struct AsOfInput {
    pub valid_at: Option<ValidTime>,
    /// What the log held up to this position.
    pub known_at: Option<Long>,
    /// What the log held at this instant of transaction time.
    pub known_at_time: Option<DateTime>,
}

impl AsOfInput {
    pub fn to_domain(input: Option<AsOfInput>) -> ApiResult<chancery_projections::AsOf> {
        let Some(i) = input else {
            return Ok(chancery_projections::AsOf::NOW);
        };
        let known_at = match (i.known_at, i.known_at_time) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "asOf.knownAtTime",
                    "give knownAt or knownAtTime, not both",
                ));
            }
            (Some(p), None) => Some(chancery_projections::KnownAt::Position(p.0)),
            (None, Some(t)) => Some(chancery_projections::KnownAt::Instant(t.0)),
            (None, None) => None,
        };
        Ok(chancery_projections::AsOf {
            valid_at: i.valid_at.map(|v| v.0),
            known_at,
        })
    }
}

pub fn event_id(value: &ID, field: &str) -> ApiResult<EventId> {
    value
        .as_str()
        .parse()
        .map_err(|_| ApiError::validation(field, format!("{:?} is not a UUID", value.as_str())))
}

/// Each of a list converted, an error naming the item's place (`field[i]`).
fn each<T, U>(
    values: &[T],
    field: &str,
    convert: impl Fn(&T, &str) -> ApiResult<U>,
) -> ApiResult<Vec<U>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| convert(v, &format!("{field}[{i}]")))
        .collect()
}

fn ids(values: &[ID], field: &str) -> ApiResult<Vec<EventId>> {
    each(values, field, event_id)
}

/// A slug as a typed domain slug (the rule was checked at parse).
fn typed_slug<T: std::str::FromStr>(value: &Slug, field: &str) -> ApiResult<T> {
    value
        .typed()
        .ok_or_else(|| ApiError::validation(field, "not a slug"))
}

pub fn timeline_slug(value: &Slug, field: &str) -> ApiResult<TimelineSlug> {
    typed_slug(value, field)
}

pub fn issue_slugs(values: &[Slug], field: &str) -> ApiResult<Vec<IssueSlug>> {
    each(values, field, typed_slug)
}

fn participant(value: &ParticipantInput, field: &str) -> ApiResult<chancery_domain::Participant> {
    Ok(chancery_domain::Participant {
        party: value.party.0.clone(),
        actor: value
            .actor
            .as_ref()
            .map(|a| typed_slug(a, &format!("{field}.actor")))
            .transpose()?,
    })
}

fn participants(
    values: &[ParticipantInput],
    field: &str,
) -> ApiResult<Vec<chancery_domain::Participant>> {
    each(values, field, participant)
}

fn amounts(values: &[AmountInput]) -> Vec<chancery_domain::Amount> {
    values
        .iter()
        .map(|a| chancery_domain::Amount {
            value: a.value,
            unit: a.unit.clone(),
            measures: a.measures.clone(),
        })
        .collect()
}

fn sources(values: &[SourceInput]) -> Vec<chancery_domain::Source> {
    values
        .iter()
        .map(|s| chancery_domain::Source {
            publication: s.publication.clone(),
            title: s.title.clone(),
            url: s.url.clone(),
            published: s.published.map(|v| v.0),
            attribution: s.attribution.into(),
            quote: s.quote.clone(),
        })
        .collect()
}

fn occurred(o: &OccurredInput) -> chancery_domain::Occurred {
    chancery_domain::Occurred {
        start: o.start.0,
        end: o.end.map(|v| v.0),
        modality: o.modality.into(),
    }
}

/// The earlier event an offer or a demand restates, if it names one.
fn reaffirmed(value: &Option<ID>, field: &str) -> ApiResult<Option<EventId>> {
    value.as_ref().map(|r| event_id(r, field)).transpose()
}

/// An id given by the client, or a new UUID v7.
pub fn new_id(given: &Option<ID>, field: &str) -> ApiResult<EventId> {
    match given {
        Some(id) => event_id(id, field),
        None => Ok(EventId::new_v7()),
    }
}

impl EventInput {
    pub fn to_event(&self, timeline: &TimelineSlug, field: &str) -> ApiResult<NewEvent> {
        let mut e = NewEvent::new(
            timeline.clone(),
            self.act.to_payload(&format!("{field}.act"))?,
        );
        e.id = new_id(&self.id, &format!("{field}.id"))?;
        e.occurred = Some(occurred(&self.occurred));
        e.actors = participants(&self.actors, &format!("{field}.actors"))?;
        e.targets = participants(&self.targets, &format!("{field}.targets"))?;
        e.issues = issue_slugs(&self.issues, &format!("{field}.issues"))?;
        e.amounts = amounts(&self.amounts);
        e.location = self.location.clone();
        e.summary = self.summary.clone();
        e.sources = sources(&self.sources);
        e.confidence = self.confidence;
        Ok(e)
    }
}

impl ChangesInput {
    pub fn to_changes(&self, field: &str) -> ApiResult<p::CorrectionChanges> {
        Ok(p::CorrectionChanges {
            occurred: self.occurred.as_ref().map(occurred),
            actors: self
                .actors
                .as_deref()
                .map(|a| participants(a, &format!("{field}.actors")))
                .transpose()?,
            targets: self
                .targets
                .as_deref()
                .map(|a| participants(a, &format!("{field}.targets")))
                .transpose()?,
            issues: self
                .issues
                .as_deref()
                .map(|i| issue_slugs(i, &format!("{field}.issues")))
                .transpose()?,
            amounts: self.amounts.as_deref().map(amounts),
            location: self.location.clone(),
            summary: self.summary.clone(),
            sources: self.sources.as_deref().map(sources),
            confidence: self.confidence,
            payload: self
                .act
                .as_ref()
                .map(|a| a.to_payload(&format!("{field}.act")))
                .transpose()?,
        })
    }
}

/// Every event, retracted ones too: what a list or a subscription without a filter shows.
impl Default for EventFilterInput {
    fn default() -> Self {
        EventFilterInput {
            timelines: Vec::new(),
            parties: Vec::new(),
            issues: Vec::new(),
            kinds: Vec::new(),
            valid_from: None,
            valid_to: None,
            text: None,
            include_retracted: true,
        }
    }
}

impl EventFilterInput {
    /// Narrows the filter to the timelines a caller is granted: every granted one when it names
    /// none, else those it names that are granted. False when it names only timelines the caller
    /// is not granted: then nothing matches, as if they did not exist.
    pub(crate) fn within(&mut self, granted: &Timelines) -> bool {
        let Some(slugs) = granted.listed() else {
            return true;
        };
        if self.timelines.is_empty() {
            self.timelines = slugs.iter().map(|s| Slug(s.as_str().to_owned())).collect();
            return true;
        }
        self.timelines.retain(|asked| granted.allows(&asked.0));
        !self.timelines.is_empty()
    }

    pub fn to_store_filter(&self) -> ApiResult<chancery_store::EventFilter> {
        Ok(chancery_store::EventFilter {
            timelines: each(&self.timelines, "filter.timelines", timeline_slug)?,
            parties: self.parties.iter().map(|p| p.0.clone()).collect(),
            issues: issue_slugs(&self.issues, "filter.issues")?,
            kinds: self.kinds.iter().map(|k| (*k).into()).collect(),
        })
    }

    /// The part of the filter the log's indexes cannot apply: valid time and text.
    pub fn matches_rest(&self, event: &NewEvent) -> bool {
        self.matches_valid_time(event.occurred.as_ref())
            && self
                .text
                .as_ref()
                .is_none_or(|t| contains_words(&event.summary, t))
    }

    /// [`EventFilterInput::matches_rest`] on a record as recorded: its terms suffice unless the
    /// filter searches text.
    pub fn matches_rest_record(&self, record: &chancery_domain::RecordedEvent) -> ApiResult<bool> {
        if self.text.is_some() {
            return Ok(self.matches_rest(record.event().map_err(ApiError::unreadable)?));
        }
        if self.valid_from.is_none() && self.valid_to.is_none() {
            return Ok(true);
        }
        let view = record.view().map_err(ApiError::unreadable)?;
        Ok(self.matches_valid_time(view.occurred.as_ref()))
    }

    /// Whether an event that happened at `occurred` falls within the filter's valid time (any
    /// does when the filter has none; one without a valid time does not when it has).
    fn matches_valid_time(&self, occurred: Option<&chancery_domain::Occurred>) -> bool {
        match (occurred, self.valid_from, self.valid_to) {
            (_, None, None) => true,
            (None, _, _) => false,
            (Some(o), from, to) => {
                from.is_none_or(|f| o.start.earliest() >= f.0.earliest())
                    && to.is_none_or(|t| o.start.earliest() < t.0.end_exclusive())
            }
        }
    }
}

/// Whether every word of `query` appears in `text`, ignoring case.
pub fn contains_words(text: &str, query: &str) -> bool {
    let text = text.to_lowercase();
    query
        .split_whitespace()
        .all(|w| text.contains(&w.to_lowercase()))
}

#[derive(InputObject, Clone)]
pub struct RegisterPartyInput {
    pub id: Option<ID>,
    /// The timeline whose log records the registration (parties are shared by all timelines).
    pub timeline: Slug,
    pub code: Party,
    pub name: String,
    pub kind: PartyKind,
}

#[derive(InputObject, Clone)]
pub struct RegisterActorInput {
    pub id: Option<ID>,
    pub timeline: Slug,
    pub slug: Slug,
    pub name: String,
    pub party: Party,
    pub role: String,
    pub from: Option<ValidTime>,
    pub to: Option<ValidTime>,
}

#[derive(InputObject, Clone)]
pub struct RegisterIssueInput {
    pub id: Option<ID>,
    pub timeline: Slug,
    pub slug: Slug,
    pub title: String,
    pub description: Option<String>,
}

#[derive(InputObject, Clone)]
pub struct RegisterTimelineInput {
    pub id: Option<ID>,
    pub slug: Slug,
    pub title: String,
    pub description: Option<String>,
}

/// An event given as `input` (a registration, a retraction, a correction), recorded in
/// `timeline`, with the id the client gave (or a new one).
pub fn input_event(
    timeline: TimelineSlug,
    payload: p::Payload,
    id: &Option<ID>,
) -> ApiResult<NewEvent> {
    let mut e = NewEvent::new(timeline, payload);
    e.id = new_id(id, "input.id")?;
    Ok(e)
}

impl RegisterPartyInput {
    pub fn to_event(&self) -> ApiResult<NewEvent> {
        let payload = p::Payload::PartyRegistered(p::PartyRegistered {
            code: self.code.0.clone(),
            name: self.name.clone(),
            party_kind: self.kind.into(),
        });
        input_event(
            timeline_slug(&self.timeline, "input.timeline")?,
            payload,
            &self.id,
        )
    }
}

impl RegisterActorInput {
    pub fn to_event(&self) -> ApiResult<NewEvent> {
        let timeline = timeline_slug(&self.timeline, "input.timeline")?;
        let payload = p::Payload::ActorRegistered(p::ActorRegistered {
            slug: typed_slug(&self.slug, "input.slug")?,
            name: self.name.clone(),
            party: self.party.0.clone(),
            role: self.role.clone(),
            from: self.from.map(|v| v.0),
            to: self.to.map(|v| v.0),
        });
        input_event(timeline, payload, &self.id)
    }
}

impl RegisterIssueInput {
    pub fn to_event(&self) -> ApiResult<NewEvent> {
        let timeline = timeline_slug(&self.timeline, "input.timeline")?;
        let payload = p::Payload::IssueRegistered(p::IssueRegistered {
            slug: typed_slug(&self.slug, "input.slug")?,
            title: self.title.clone(),
            description: self.description.clone(),
        });
        input_event(timeline, payload, &self.id)
    }
}

impl RegisterTimelineInput {
    pub fn to_event(&self) -> ApiResult<NewEvent> {
        let slug = timeline_slug(&self.slug, "input.slug")?;
        let payload = p::Payload::TimelineRegistered(p::TimelineRegistered {
            slug: slug.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
        });
        input_event(slug, payload, &self.id)
    }
}
