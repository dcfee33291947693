//! Output types: events, their content and payloads, and the registry's parties, actors, issues
//! and timelines. Each wraps a domain value and resolves names through the registry.

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object, SimpleObject, Union};
use chancery_domain::payload as p;
use chancery_domain::{RecordedEvent, Registry, TimelineSlug};
use chancery_projections::{ChronologyEntry, Content};

use crate::api::api;
use crate::cursor::Cursor;
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::scalars::{DateTime, Long, Party as PartyScalar, Slug, ValidTime};

/// The registry of parties, actors, issues and timelines, for resolving names.
pub(crate) async fn registry(ctx: &Context<'_>) -> ApiResult<Arc<Registry>> {
    Ok(api(ctx)?.log.registry().await?)
}

/// A thing the registry names (a party, an issue, a timeline), as the API shows it: by its key,
/// with its registration when the log has one (a name may be used before it is registered).
/// `$map` is the registry's map of them.
macro_rules! registered {
    ($(#[$doc:meta])* $name:ident { $key:ident: $key_type:ty, $registration:ty, $map:ident }) => {
        $(#[$doc])*
        pub struct $name {
            pub $key: $key_type,
            pub registered: Option<$registration>,
        }

        impl $name {
            pub fn from_registry(registry: &Registry, $key: &$key_type) -> $name {
                $name {
                    $key: $key.clone(),
                    registered: registry.$map.get($key).cloned(),
                }
            }

            /// Every one the registry has.
            pub fn all(registry: &Registry) -> Vec<$name> {
                registry
                    .$map
                    .keys()
                    .map(|key| $name::from_registry(registry, key))
                    .collect()
            }
        }
    };
}

registered!(
    /// A state or organization.
    Party { code: chancery_domain::PartyCode, p::PartyRegistered, parties }
);
registered!(
    /// What is negotiated.
    Issue { slug: chancery_domain::IssueSlug, p::IssueRegistered, issues }
);
registered!(
    /// A dossier of events.
    Timeline { slug: TimelineSlug, p::TimelineRegistered, timelines }
);

#[Object]
impl Party {
    async fn code(&self) -> PartyScalar {
        PartyScalar(self.code.clone())
    }
    async fn name(&self) -> String {
        self.registered
            .as_ref()
            .map_or_else(|| self.code.to_string(), |r| r.name.clone())
    }
    async fn kind(&self) -> Option<PartyKind> {
        self.registered.as_ref().map(|r| r.party_kind.into())
    }
}

/// The GraphQL object of a registered thing with a slug, a title and a description (an issue, a
/// timeline): those three fields, then `$more`.
macro_rules! titled_object {
    ($name:ident { $($more:tt)* }) => {
        #[Object]
        impl $name {
            async fn slug(&self) -> Slug {
                Slug(self.slug.to_string())
            }
            async fn title(&self) -> String {
                self.registered
                    .as_ref()
                    .map_or_else(|| self.slug.to_string(), |r| r.title.clone())
            }
            async fn description(&self) -> Option<&str> {
                self.registered
                    .as_ref()
                    .and_then(|r| r.description.as_deref())
            }
            $($more)*
        }
    };
}

titled_object!(Issue {});
titled_object!(Timeline {
    /// The version of the timeline's last event (the `expectedVersion` for the next append).
    async fn version(&self, ctx: &Context<'_>) -> ApiResult<Long> {
        Ok(Long(
            api(ctx)?
                .log
                .timeline_version(self.slug.clone())
                .await?
                .unwrap_or(0),
        ))
    }
});

/// A person or office acting for a party.
pub struct Actor(pub p::ActorRegistered);

#[Object]
impl Actor {
    async fn slug(&self) -> Slug {
        Slug(self.0.slug.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn party(&self, ctx: &Context<'_>) -> ApiResult<Party> {
        Ok(Party::from_registry(&*registry(ctx).await?, &self.0.party))
    }
    async fn from(&self) -> Option<ValidTime> {
        self.0.from.map(ValidTime)
    }
    async fn to(&self) -> Option<ValidTime> {
        self.0.to.map(ValidTime)
    }
}

/// The timeline a stored record belongs to.
pub(crate) fn timeline_of_record(record: &RecordedEvent) -> ApiResult<TimelineSlug> {
    let view = record.view().map_err(ApiError::unreadable)?;
    TimelineSlug::new(view.timeline).map_err(ApiError::unreadable)
}

/// A party acting or addressed, optionally through one of its actors.
pub struct Participant(pub chancery_domain::Participant);

#[Object]
impl Participant {
    async fn party(&self, ctx: &Context<'_>) -> ApiResult<Party> {
        Ok(Party::from_registry(&*registry(ctx).await?, &self.0.party))
    }
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<Actor>> {
        let Some(slug) = &self.0.actor else {
            return Ok(None);
        };
        Ok(registry(ctx).await?.actors.get(slug).cloned().map(Actor))
    }
}

/// Valid time: when the event happened (or would), as precisely as known.
#[derive(SimpleObject)]
pub struct Occurred {
    pub start: ValidTime,
    pub end: Option<ValidTime>,
    pub precision: Precision,
    pub modality: Modality,
}

impl From<&chancery_domain::Occurred> for Occurred {
    fn from(o: &chancery_domain::Occurred) -> Self {
        Occurred {
            start: ValidTime(o.start),
            end: o.end.map(ValidTime),
            precision: o.precision().into(),
            modality: o.modality.into(),
        }
    }
}

/// Money in an ISO 4217 currency, or a rate in PERCENT, and what it measures.
#[derive(SimpleObject)]
pub struct Amount {
    pub value: f64,
    pub unit: String,
    pub measures: String,
}

impl From<&chancery_domain::Amount> for Amount {
    fn from(a: &chancery_domain::Amount) -> Self {
        Amount {
            value: a.value,
            unit: a.unit.clone(),
            measures: a.measures.clone(),
        }
    }
}

/// Where a claim comes from.
#[derive(SimpleObject)]
pub struct Source {
    pub publication: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub published: Option<ValidTime>,
    pub attribution: Attribution,
    pub quote: Option<String>,
}

/// The event's codes for interoperability with GDELT, ICEWS and POLECAT data.
#[derive(SimpleObject)]
pub struct Codes {
    /// The CAMEO event code (a string: leading zeros matter).
    pub cameo: String,
    pub cameo_label: String,
    pub plover_type: Option<String>,
    pub plover_mode: Option<String>,
    pub quad_class: QuadClass,
    pub goldstein: f64,
    /// The version of Chancery's codes table that gave these codes.
    pub table_version: i32,
}

/// What an event says: who, to whom, about what, when, how much, according to whom.
pub struct EventContent(pub Content);

#[Object]
impl EventContent {
    async fn occurred(&self) -> Option<Occurred> {
        self.0.occurred.as_ref().map(Occurred::from)
    }
    async fn actors(&self) -> Vec<Participant> {
        self.0.actors.iter().cloned().map(Participant).collect()
    }
    async fn targets(&self) -> Vec<Participant> {
        self.0.targets.iter().cloned().map(Participant).collect()
    }
    async fn issues(&self, ctx: &Context<'_>) -> ApiResult<Vec<Issue>> {
        let registry = registry(ctx).await?;
        Ok(self
            .0
            .issues
            .iter()
            .map(|i| Issue::from_registry(&registry, i))
            .collect())
    }
    async fn amounts(&self) -> Vec<Amount> {
        self.0.amounts.iter().map(Amount::from).collect()
    }
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    async fn sources(&self) -> Vec<Source> {
        self.0
            .sources
            .iter()
            .map(|s| Source {
                publication: s.publication.clone(),
                title: s.title.clone(),
                url: s.url.clone(),
                published: s.published.map(ValidTime),
                attribution: s.attribution.into(),
                quote: s.quote.clone(),
            })
            .collect()
    }
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }
    async fn payload(&self) -> Payload {
        Payload::from(&self.0.payload)
    }
    /// CAMEO, PLOVER, QuadClass and Goldstein; none for registrations, retractions and corrections.
    async fn codes(&self) -> Option<Codes> {
        chancery_domain::codes::codes(&self.0).map(|c| Codes {
            cameo: c.cameo.into(),
            cameo_label: c.cameo_label.into(),
            plover_type: c.plover_type.map(Into::into),
            plover_mode: c.plover_mode.map(Into::into),
            quad_class: c.quad_class.into(),
            goldstein: c.goldstein,
            table_version: i32::try_from(chancery_domain::codes::CODES_VERSION).unwrap_or(i32::MAX),
        })
    }
}

/// An event of the log. Its header (id, position, kind, times, hashes) is read without decoding
/// the record; its content is decoded only when a selection asks for it.
pub struct Event {
    pub record: RecordedEvent,
    /// The content as it reads at the question's known-at time, when corrections changed it;
    /// `None` when it is the record's own.
    pub corrected_content: Option<Content>,
    pub retracted: bool,
    pub corrected: bool,
}

impl Event {
    /// An event as recorded, with no retraction or correction known.
    pub fn as_recorded(record: RecordedEvent) -> Event {
        Event {
            record,
            corrected_content: None,
            retracted: false,
            corrected: false,
        }
    }

    /// An event with the content a question's known-at time gives it.
    pub fn with_content(record: RecordedEvent, content: Content) -> Event {
        let corrected = matches!(content, Content::Corrected(_));
        Event {
            record,
            corrected_content: corrected.then_some(content),
            retracted: false,
            corrected,
        }
    }

    /// An event of the chronology, with its content as of the chronology's question.
    pub fn from_chronology(entry: ChronologyEntry) -> Event {
        Event {
            record: entry.record,
            corrected_content: Some(entry.effective),
            retracted: entry.retracted,
            corrected: entry.corrected,
        }
    }

    fn own_content(&self) -> ApiResult<Content> {
        Content::recorded(self.record.clone()).map_err(ApiError::from)
    }
}

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ID(self.record.id().to_string())
    }
    /// The event's place in the global log (gapless, from 1).
    async fn position(&self) -> Long {
        Long(self.record.position())
    }
    async fn timeline(&self, ctx: &Context<'_>) -> ApiResult<Timeline> {
        let slug = timeline_of_record(&self.record)?;
        Ok(Timeline::from_registry(&*registry(ctx).await?, &slug))
    }
    /// The event's version within its timeline.
    async fn version(&self) -> Long {
        Long(self.record.version())
    }
    async fn kind(&self) -> Kind {
        self.record.kind().into()
    }
    /// Transaction time: when the log recorded it.
    async fn recorded_at(&self) -> DateTime {
        DateTime(self.record.recorded_at())
    }
    /// SHA-256 of the record (hex), chained to the previous one.
    async fn hash(&self) -> String {
        self.record.hash().to_hex()
    }
    async fn prev_hash(&self) -> String {
        self.record.prev_hash().to_hex()
    }
    /// Resumes an `events` subscription or a log-ordered list exactly after this event.
    async fn cursor(&self) -> String {
        Cursor::Log(self.record.position()).encode()
    }
    /// Whether a retraction withdrew it (as known at the question's time).
    async fn retracted(&self) -> bool {
        self.retracted
    }
    /// Whether corrections changed it (as known at the question's time).
    async fn corrected(&self) -> bool {
        self.corrected
    }
    /// The event as it reads at the question's time, corrections applied.
    async fn content(&self) -> ApiResult<EventContent> {
        match &self.corrected_content {
            Some(content) => Ok(EventContent(content.clone())),
            None => self.own_content().map(EventContent),
        }
    }
    /// The event exactly as recorded.
    async fn recorded(&self) -> ApiResult<EventContent> {
        self.own_content().map(EventContent)
    }
}

/// What an event's kind carries.
#[derive(Union)]
pub enum Payload {
    Offer(OfferPayload),
    Demand(DemandPayload),
    Threat(ThreatPayload),
    Refusal(RefusalPayload),
    Concession(ConcessionPayload),
    Agreement(AgreementPayload),
    Measure(MeasurePayload),
    Statement(StatementPayload),
    Accusation(AccusationPayload),
    Seminar(SeminarPayload),
    Visit(VisitPayload),
    Talks(TalksPayload),
    Retraction(RetractionPayload),
    Correction(CorrectionPayload),
    PartyRegistered(PartyRegisteredPayload),
    ActorRegistered(ActorRegisteredPayload),
    IssueRegistered(IssueRegisteredPayload),
    TimelineRegistered(TimelineRegisteredPayload),
}

fn id(e: &chancery_domain::EventId) -> ID {
    ID(e.to_string())
}

#[derive(SimpleObject)]
pub struct OfferPayload {
    pub terms: String,
    pub conditions: Vec<String>,
    pub reaffirms: Option<ID>,
}
#[derive(SimpleObject)]
pub struct DemandPayload {
    pub terms: String,
    pub demand_type: DemandType,
    pub deadline: Option<ValidTime>,
    pub reaffirms: Option<ID>,
}
#[derive(SimpleObject)]
pub struct ThreatPayload {
    pub terms: String,
    pub instrument: Instrument,
    pub condition: Option<String>,
    pub deadline: Option<ValidTime>,
}
#[derive(SimpleObject)]
pub struct RefusalPayload {
    pub terms: String,
    pub of: RefusalOf,
    pub refuses: Vec<ID>,
}
#[derive(SimpleObject)]
pub struct ConcessionPayload {
    pub terms: String,
    pub concession_type: ConcessionType,
    pub answers: Vec<ID>,
}
#[derive(SimpleObject)]
pub struct AgreementPayload {
    pub terms: String,
    pub form: AgreementForm,
}
#[derive(SimpleObject)]
pub struct MeasurePayload {
    pub terms: String,
    pub instrument: Instrument,
    pub action: MeasureAction,
    pub announced: ValidTime,
    pub effective: Option<ValidTime>,
    pub rate_percent: Option<f64>,
}
#[derive(SimpleObject)]
pub struct StatementPayload {
    pub claim: String,
    pub tone: Tone,
}
#[derive(SimpleObject)]
pub struct AccusationPayload {
    pub claim: String,
    pub form: AccusationForm,
}
#[derive(SimpleObject)]
pub struct SeminarPayload {
    pub host: PartyScalar,
    pub days: i32,
    pub participants: Vec<String>,
    pub topic: Option<String>,
}
#[derive(SimpleObject)]
pub struct VisitPayload {
    pub visitor: PartyScalar,
    pub host: PartyScalar,
    pub place: String,
    pub purpose: String,
}
#[derive(SimpleObject)]
pub struct TalksPayload {
    pub participants: Vec<PartyScalar>,
    pub place: String,
    pub format: TalksFormat,
    pub rounds: Option<i32>,
}
#[derive(SimpleObject)]
pub struct RetractionPayload {
    pub retracts: ID,
    pub reason: String,
}
#[derive(SimpleObject)]
pub struct CorrectionPayload {
    pub corrects: ID,
    pub reason: String,
    /// The fields the correction gives (camelCase, as in the event's JSON form).
    pub changed_fields: Vec<String>,
    /// The new values, in the event's JSON form.
    pub changes: Json<serde_json::Value>,
}
#[derive(SimpleObject)]
pub struct PartyRegisteredPayload {
    pub code: PartyScalar,
    pub name: String,
    pub party_kind: PartyKind,
}
#[derive(SimpleObject)]
pub struct ActorRegisteredPayload {
    pub slug: Slug,
    pub name: String,
    pub party: PartyScalar,
    pub role: String,
    pub from: Option<ValidTime>,
    pub to: Option<ValidTime>,
}
#[derive(SimpleObject)]
pub struct IssueRegisteredPayload {
    pub slug: Slug,
    pub title: String,
    pub description: Option<String>,
}
#[derive(SimpleObject)]
pub struct TimelineRegisteredPayload {
    pub slug: Slug,
    pub title: String,
    pub description: Option<String>,
}

fn small(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl From<&p::Payload> for Payload {
    fn from(payload: &p::Payload) -> Self {
        use p::Payload as D;
        match payload {
            D::Offer(x) => Payload::Offer(x.into()),
            D::Demand(x) => Payload::Demand(x.into()),
            D::Threat(x) => Payload::Threat(x.into()),
            D::Refusal(x) => Payload::Refusal(x.into()),
            D::Concession(x) => Payload::Concession(x.into()),
            D::Agreement(x) => Payload::Agreement(x.into()),
            D::Measure(x) => Payload::Measure(x.into()),
            D::Statement(x) => Payload::Statement(x.into()),
            D::Accusation(x) => Payload::Accusation(x.into()),
            D::Seminar(x) => Payload::Seminar(x.into()),
            D::Visit(x) => Payload::Visit(x.into()),
            D::Talks(x) => Payload::Talks(x.into()),
            D::Retraction(x) => Payload::Retraction(x.into()),
            D::Correction(x) => Payload::Correction(x.as_ref().into()),
            D::PartyRegistered(x) => Payload::PartyRegistered(x.into()),
            D::ActorRegistered(x) => Payload::ActorRegistered(x.into()),
            D::IssueRegistered(x) => Payload::IssueRegistered(x.into()),
            D::TimelineRegistered(x) => Payload::TimelineRegistered(x.into()),
        }
    }
}

impl From<&p::Offer> for OfferPayload {
    fn from(x: &p::Offer) -> Self {
        OfferPayload {
            terms: x.terms.clone(),
            conditions: x.conditions.clone(),
            reaffirms: x.reaffirms.as_ref().map(id),
        }
    }
}

impl From<&p::Demand> for DemandPayload {
    fn from(x: &p::Demand) -> Self {
        DemandPayload {
            terms: x.terms.clone(),
            demand_type: x.demand_type.into(),
            deadline: x.deadline.map(ValidTime),
            reaffirms: x.reaffirms.as_ref().map(id),
        }
    }
}

impl From<&p::Threat> for ThreatPayload {
    fn from(x: &p::Threat) -> Self {
        ThreatPayload {
            terms: x.terms.clone(),
            instrument: x.instrument.into(),
            condition: x.condition.clone(),
            deadline: x.deadline.map(ValidTime),
        }
    }
}

impl From<&p::Refusal> for RefusalPayload {
    fn from(x: &p::Refusal) -> Self {
        RefusalPayload {
            terms: x.terms.clone(),
            of: x.of.into(),
            refuses: x.refuses.iter().map(id).collect(),
        }
    }
}

impl From<&p::Concession> for ConcessionPayload {
    fn from(x: &p::Concession) -> Self {
        ConcessionPayload {
            terms: x.terms.clone(),
            concession_type: x.concession_type.into(),
            answers: x.answers.iter().map(id).collect(),
        }
    }
}

impl From<&p::Agreement> for AgreementPayload {
    fn from(x: &p::Agreement) -> Self {
        AgreementPayload {
            terms: x.terms.clone(),
            form: x.form.into(),
        }
    }
}

impl From<&p::Measure> for MeasurePayload {
    fn from(x: &p::Measure) -> Self {
        MeasurePayload {
            terms: x.terms.clone(),
            instrument: x.instrument.into(),
            action: x.action.into(),
            announced: ValidTime(x.announced),
            effective: x.effective.map(ValidTime),
            rate_percent: x.rate_percent,
        }
    }
}

impl From<&p::Statement> for StatementPayload {
    fn from(x: &p::Statement) -> Self {
        StatementPayload {
            claim: x.claim.clone(),
            tone: x.tone.into(),
        }
    }
}

impl From<&p::Accusation> for AccusationPayload {
    fn from(x: &p::Accusation) -> Self {
        AccusationPayload {
            claim: x.claim.clone(),
            form: x.form.into(),
        }
    }
}

impl From<&p::Seminar> for SeminarPayload {
    fn from(x: &p::Seminar) -> Self {
        SeminarPayload {
            host: PartyScalar(x.host.clone()),
            days: small(x.days),
            participants: x.participants.clone(),
            topic: x.topic.clone(),
        }
    }
}

impl From<&p::Visit> for VisitPayload {
    fn from(x: &p::Visit) -> Self {
        VisitPayload {
            visitor: PartyScalar(x.visitor.clone()),
            host: PartyScalar(x.host.clone()),
            place: x.place.clone(),
            purpose: x.purpose.clone(),
        }
    }
}

impl From<&p::Talks> for TalksPayload {
    fn from(x: &p::Talks) -> Self {
        TalksPayload {
            participants: x.participants.iter().cloned().map(PartyScalar).collect(),
            place: x.place.clone(),
            format: x.format.into(),
            rounds: x.rounds.map(small),
        }
    }
}

impl From<&p::Retraction> for RetractionPayload {
    fn from(x: &p::Retraction) -> Self {
        RetractionPayload {
            retracts: id(&x.retracts),
            reason: x.reason.clone(),
        }
    }
}

impl From<&p::Correction> for CorrectionPayload {
    fn from(x: &p::Correction) -> Self {
        let changes = serde_json::to_value(&x.changes).unwrap_or(serde_json::Value::Null);
        let changed_fields = changes
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        CorrectionPayload {
            corrects: id(&x.corrects),
            reason: x.reason.clone(),
            changed_fields,
            changes: Json(changes),
        }
    }
}

impl From<&p::PartyRegistered> for PartyRegisteredPayload {
    fn from(x: &p::PartyRegistered) -> Self {
        PartyRegisteredPayload {
            code: PartyScalar(x.code.clone()),
            name: x.name.clone(),
            party_kind: x.party_kind.into(),
        }
    }
}

impl From<&p::ActorRegistered> for ActorRegisteredPayload {
    fn from(x: &p::ActorRegistered) -> Self {
        ActorRegisteredPayload {
            slug: Slug(x.slug.to_string()),
            name: x.name.clone(),
            party: PartyScalar(x.party.clone()),
            role: x.role.clone(),
            from: x.from.map(ValidTime),
            to: x.to.map(ValidTime),
        }
    }
}

impl From<&p::IssueRegistered> for IssueRegisteredPayload {
    fn from(x: &p::IssueRegistered) -> Self {
        IssueRegisteredPayload {
            slug: Slug(x.slug.to_string()),
            title: x.title.clone(),
            description: x.description.clone(),
        }
    }
}

impl From<&p::TimelineRegistered> for TimelineRegisteredPayload {
    fn from(x: &p::TimelineRegistered) -> Self {
        TimelineRegisteredPayload {
            slug: Slug(x.slug.to_string()),
            title: x.title.clone(),
            description: x.description.clone(),
        }
    }
}
