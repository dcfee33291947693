//! Output types: events, their content and payloads, and the registry's parties, actors, issues
//! and timelines. Each wraps a domain value and resolves names through the registry when a
//! field asks for one.

use std::borrow::Borrow;
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
/// `$map` is the registry's map of them. The registration is looked up by the fields that read
/// it, and only by them: a selection of the key alone (a standoff's sides' `party { code }`)
/// costs no lookup and no copy.
macro_rules! registered {
    ($(#[$doc:meta])* $name:ident { $key:ident: $key_type:ty, $registration:ty, $map:ident }) => {
        $(#[$doc])*
        pub struct $name {
            pub $key: $key_type,
            /// The registry it was found in; `None` for one named by the log or a projection,
            /// whose fields ask the request's registry.
            registry: Option<Arc<Registry>>,
        }

        impl $name {
            pub fn from_registry(registry: &Arc<Registry>, $key: &$key_type) -> $name {
                $name {
                    $key: $key.clone(),
                    registry: Some(Arc::clone(registry)),
                }
            }

            /// The one named `key`, as the request's registry has it when a field asks.
            pub fn named($key: &$key_type) -> $name {
                $name {
                    $key: $key.clone(),
                    registry: None,
                }
            }

            /// What `read` takes from the registration, if there is one.
            async fn registration<T>(
                &self,
                ctx: &Context<'_>,
                read: impl FnOnce(&$registration) -> T,
            ) -> ApiResult<Option<T>> {
                let asked;
                let registry = match &self.registry {
                    Some(registry) => registry,
                    None => {
                        asked = registry(ctx).await?;
                        &asked
                    }
                };
                Ok(registry.$map.get(&self.$key).map(read))
            }

            /// What the registration says (`read`), or the key when there is none.
            async fn registered_or_key(
                &self,
                ctx: &Context<'_>,
                read: impl FnOnce(&$registration) -> &String,
            ) -> ApiResult<String> {
                Ok(self
                    .registration(ctx, |r| read(r).clone())
                    .await?
                    .unwrap_or_else(|| self.$key.to_string()))
            }

            /// Every one the registry has.
            pub fn all(registry: &Arc<Registry>) -> Vec<$name> {
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

#[Object(serial)]
impl Party {
    async fn code(&self) -> PartyScalar {
        PartyScalar(self.code.clone())
    }
    async fn name(&self, ctx: &Context<'_>) -> ApiResult<String> {
        self.registered_or_key(ctx, |r| &r.name).await
    }
    async fn kind(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyKind>> {
        self.registration(ctx, |r| r.party_kind.into()).await
    }
}

/// The GraphQL object of a registered thing with a slug, a title and a description (an issue, a
/// timeline): those three fields, then `$more`.
macro_rules! titled_object {
    ($name:ident { $($more:tt)* }) => {
        #[Object(serial)]
        impl $name {
            async fn slug(&self) -> Slug {
                Slug(self.slug.to_string())
            }
            async fn title(&self, ctx: &Context<'_>) -> ApiResult<String> {
                self.registered_or_key(ctx, |r| &r.title).await
            }
            async fn description(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
                Ok(self.registration(ctx, |r| r.description.clone()).await?.flatten())
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

#[Object(serial)]
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
    async fn party(&self) -> Party {
        Party::named(&self.0.party)
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

#[Object(serial)]
impl Participant {
    async fn party(&self) -> Party {
        Party::named(&self.0.party)
    }
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<Actor>> {
        let Some(slug) = &self.0.actor else {
            return Ok(None);
        };
        Ok(registry(ctx).await?.actors.get(slug).cloned().map(Actor))
    }
}

/// A GraphQL object that mirrors a domain struct field for field, and its conversion: each field
/// with its type and how it reads from the domain value (named by `|$x|`).
macro_rules! mirrored_objects {
    ($(
        $(#[$doc:meta])*
        $name:ident from $domain:ty, |$x:ident| {
            $($(#[$field_doc:meta])* $field:ident: $type:ty = $value:expr,)*
        }
    )*) => {$(
        $(#[$doc])*
        #[derive(SimpleObject)]
        #[graphql(serial)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $type,)*
        }

        impl From<&$domain> for $name {
            fn from($x: &$domain) -> Self {
                $name { $($field: $value,)* }
            }
        }
    )*};
}

mirrored_objects! {
    /// Valid time: when the event happened (or would), as precisely as known.
    Occurred from chancery_domain::Occurred, |o| {
        start: ValidTime = ValidTime(o.start),
        end: Option<ValidTime> = o.end.map(ValidTime),
        precision: Precision = o.precision().into(),
        modality: Modality = o.modality.into(),
    }

    /// Money in an ISO 4217 currency, or a rate in PERCENT, and what it measures.
    Amount from chancery_domain::Amount, |a| {
        value: f64 = a.value,
        unit: String = a.unit.clone(),
        measures: String = a.measures.clone(),
    }

    /// Where a claim comes from.
    Source from chancery_domain::Source, |s| {
        publication: String = s.publication.clone(),
        title: Option<String> = s.title.clone(),
        url: Option<String> = s.url.clone(),
        published: Option<ValidTime> = s.published.map(ValidTime),
        attribution: Attribution = s.attribution.into(),
        quote: Option<String> = s.quote.clone(),
    }

    /// The event's codes for interoperability with GDELT, ICEWS and POLECAT data.
    Codes from chancery_domain::codes::EventCodes, |c| {
        /// The CAMEO event code (a string: leading zeros matter).
        cameo: String = c.cameo.into(),
        cameo_label: String = c.cameo_label.into(),
        plover_type: Option<String> = c.plover_type.map(Into::into),
        plover_mode: Option<String> = c.plover_mode.map(Into::into),
        quad_class: QuadClass = c.quad_class.into(),
        goldstein: f64 = c.goldstein,
        /// The version of Chancery's codes table that gave these codes.
        table_version: i32 = small(chancery_domain::codes::CODES_VERSION),
    }

    /// How a coded event dataset coded an event imported from it, as the dataset wrote it,
    /// beside Chancery's own `codes`.
    DatasetCoding from chancery_domain::DatasetCoding, |d| {
        dataset: Dataset = d.dataset.into(),
        /// The dataset's own id of the event (GDELT `GLOBALEVENTID`, ICEWS `Event ID`, POLECAT's).
        event_id: String = d.event_id.clone(),
        /// The dataset's CAMEO event code (GDELT, ICEWS).
        cameo: Option<String> = d.cameo.clone(),
        /// The dataset's PLOVER event type (POLECAT).
        plover_type: Option<String> = d.plover_type.clone(),
        plover_mode: Option<String> = d.plover_mode.clone(),
        /// The dataset's QuadClass or quad code, 1 to 4.
        quad_class: Option<i32> = d.quad_class.map(i32::from),
        /// The dataset's Goldstein score (GDELT `GoldsteinScale`, ICEWS `Intensity`).
        goldstein: Option<f64> = d.goldstein,
        /// POLECAT's intensity.
        intensity: Option<f64> = d.intensity,
        /// GDELT's average tone of the articles.
        tone: Option<f64> = d.tone,
    }
}

/// What an event says: who, to whom, about what, when, how much, according to whom.
pub struct EventContent(pub Content);

#[Object(serial)]
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
        self.0.sources.iter().map(Source::from).collect()
    }
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }
    async fn payload(&self) -> Payload {
        Payload::from(&self.0.payload)
    }
    /// CAMEO, PLOVER, QuadClass and Goldstein; none for registrations, retractions and corrections.
    async fn codes(&self) -> Option<Codes> {
        chancery_domain::codes::codes(&self.0).map(Codes::from)
    }
    /// For an event imported from GDELT, ICEWS or POLECAT: the dataset's id and codes.
    async fn dataset(&self) -> Option<DatasetCoding> {
        self.0.dataset.as_ref().map(DatasetCoding::from)
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

#[Object(serial)]
impl Event {
    async fn id(&self) -> ID {
        ID(self.record.id().to_string())
    }
    /// The event's place in the global log (gapless, from 1).
    async fn position(&self) -> Long {
        Long(self.record.position())
    }
    async fn timeline(&self) -> ApiResult<Timeline> {
        let slug = timeline_of_record(&self.record)?;
        Ok(Timeline::named(&slug))
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
    /// The name of the token that recorded the event; null when unknown (events recorded before
    /// names were kept).
    async fn recorded_by(&self) -> ApiResult<Option<String>> {
        // From the record, on every path (a chronology's corrected content included): who
        // recorded the event, not who corrected it.
        let event = self.record.event().map_err(ApiError::unreadable)?;
        Ok(event.recorded_by.clone())
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

fn id(e: &chancery_domain::EventId) -> ID {
    ID(e.to_string())
}

/// A count the domain keeps as `u32`, as a GraphQL `Int` (capped; the domain keeps it small).
fn small(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The union of the payload objects and its conversion from the domain's payload, whose variants
/// have the same names.
macro_rules! payload_union {
    ($($kind:ident($object:ident),)*) => {
        /// What an event's kind carries.
        #[derive(Union)]
        pub enum Payload {
            $($kind($object),)*
        }

        impl From<&p::Payload> for Payload {
            fn from(payload: &p::Payload) -> Self {
                // `borrow` reaches the domain struct whether the variant holds it or a box of it
                // (as a correction's does).
                match payload {
                    $(p::Payload::$kind(x) => {
                        Payload::$kind(Borrow::<p::$kind>::borrow(x).into())
                    })*
                }
            }
        }
    };
}

payload_union! {
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

mirrored_objects! {
    OfferPayload from p::Offer, |x| {
        terms: String = x.terms.clone(),
        conditions: Vec<String> = x.conditions.clone(),
        reaffirms: Option<ID> = x.reaffirms.as_ref().map(id),
    }
    DemandPayload from p::Demand, |x| {
        terms: String = x.terms.clone(),
        demand_type: DemandType = x.demand_type.into(),
        deadline: Option<ValidTime> = x.deadline.map(ValidTime),
        reaffirms: Option<ID> = x.reaffirms.as_ref().map(id),
    }
    ThreatPayload from p::Threat, |x| {
        terms: String = x.terms.clone(),
        instrument: Instrument = x.instrument.into(),
        condition: Option<String> = x.condition.clone(),
        deadline: Option<ValidTime> = x.deadline.map(ValidTime),
    }
    RefusalPayload from p::Refusal, |x| {
        terms: String = x.terms.clone(),
        of: RefusalOf = x.of.into(),
        refuses: Vec<ID> = x.refuses.iter().map(id).collect(),
    }
    ConcessionPayload from p::Concession, |x| {
        terms: String = x.terms.clone(),
        concession_type: ConcessionType = x.concession_type.into(),
        answers: Vec<ID> = x.answers.iter().map(id).collect(),
    }
    AgreementPayload from p::Agreement, |x| {
        terms: String = x.terms.clone(),
        form: AgreementForm = x.form.into(),
    }
    MeasurePayload from p::Measure, |x| {
        terms: String = x.terms.clone(),
        instrument: Instrument = x.instrument.into(),
        action: MeasureAction = x.action.into(),
        announced: ValidTime = ValidTime(x.announced),
        effective: Option<ValidTime> = x.effective.map(ValidTime),
        rate_percent: Option<f64> = x.rate_percent,
    }
    StatementPayload from p::Statement, |x| {
        claim: String = x.claim.clone(),
        tone: Tone = x.tone.into(),
    }
    AccusationPayload from p::Accusation, |x| {
        claim: String = x.claim.clone(),
        form: AccusationForm = x.form.into(),
    }
    SeminarPayload from p::Seminar, |x| {
        host: PartyScalar = PartyScalar(x.host.clone()),
        days: i32 = small(x.days),
        participants: Vec<String> = x.participants.clone(),
        topic: Option<String> = x.topic.clone(),
    }
    VisitPayload from p::Visit, |x| {
        visitor: PartyScalar = PartyScalar(x.visitor.clone()),
        host: PartyScalar = PartyScalar(x.host.clone()),
        place: String = x.place.clone(),
        purpose: String = x.purpose.clone(),
    }
    TalksPayload from p::Talks, |x| {
        participants: Vec<PartyScalar> = x.participants.iter().cloned().map(PartyScalar).collect(),
        place: String = x.place.clone(),
        format: TalksFormat = x.format.into(),
        rounds: Option<i32> = x.rounds.map(small),
    }
    RetractionPayload from p::Retraction, |x| {
        retracts: ID = id(&x.retracts),
        reason: String = x.reason.clone(),
    }
    PartyRegisteredPayload from p::PartyRegistered, |x| {
        code: PartyScalar = PartyScalar(x.code.clone()),
        name: String = x.name.clone(),
        party_kind: PartyKind = x.party_kind.into(),
    }
    ActorRegisteredPayload from p::ActorRegistered, |x| {
        slug: Slug = Slug(x.slug.to_string()),
        name: String = x.name.clone(),
        party: PartyScalar = PartyScalar(x.party.clone()),
        role: String = x.role.clone(),
        from: Option<ValidTime> = x.from.map(ValidTime),
        to: Option<ValidTime> = x.to.map(ValidTime),
    }
    IssueRegisteredPayload from p::IssueRegistered, |x| {
        slug: Slug = Slug(x.slug.to_string()),
        title: String = x.title.clone(),
        description: Option<String> = x.description.clone(),
    }
    TimelineRegisteredPayload from p::TimelineRegistered, |x| {
        slug: Slug = Slug(x.slug.to_string()),
        title: String = x.title.clone(),
        description: Option<String> = x.description.clone(),
    }
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct CorrectionPayload {
    pub corrects: ID,
    pub reason: String,
    /// The fields the correction gives (camelCase, as in the event's JSON form).
    pub changed_fields: Vec<String>,
    /// The new values, in the event's JSON form.
    pub changes: Json<serde_json::Value>,
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
