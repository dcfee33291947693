//! Event kinds and their typed payloads: what each kind of diplomatic act carries, plus the
//! registrations, retractions and corrections that keep the log's facts straight.

use serde::{Deserialize, Serialize};

use crate::event::{Amount, Occurred, Participant, Source};
use crate::ids::{ActorSlug, EventId, IssueSlug, PartyCode, TimelineSlug};
use crate::time::ValidTime;

/// Every kind of event the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Offer,
    Demand,
    Threat,
    Refusal,
    Concession,
    Agreement,
    Measure,
    Statement,
    Accusation,
    Seminar,
    Visit,
    Talks,
    Retraction,
    Correction,
    PartyRegistered,
    ActorRegistered,
    IssueRegistered,
    TimelineRegistered,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::Offer,
        Kind::Demand,
        Kind::Threat,
        Kind::Refusal,
        Kind::Concession,
        Kind::Agreement,
        Kind::Measure,
        Kind::Statement,
        Kind::Accusation,
        Kind::Seminar,
        Kind::Visit,
        Kind::Talks,
        Kind::Retraction,
        Kind::Correction,
        Kind::PartyRegistered,
        Kind::ActorRegistered,
        Kind::IssueRegistered,
        Kind::TimelineRegistered,
    ];

    /// A stable one-byte tag, used in storage indexes. Never renumber: append new kinds.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(tag)).copied()
    }

    /// The kind's name as written in JSON and GraphQL (`DEMAND`, `PARTY_REGISTERED`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Offer => "OFFER",
            Kind::Demand => "DEMAND",
            Kind::Threat => "THREAT",
            Kind::Refusal => "REFUSAL",
            Kind::Concession => "CONCESSION",
            Kind::Agreement => "AGREEMENT",
            Kind::Measure => "MEASURE",
            Kind::Statement => "STATEMENT",
            Kind::Accusation => "ACCUSATION",
            Kind::Seminar => "SEMINAR",
            Kind::Visit => "VISIT",
            Kind::Talks => "TALKS",
            Kind::Retraction => "RETRACTION",
            Kind::Correction => "CORRECTION",
            Kind::PartyRegistered => "PARTY_REGISTERED",
            Kind::ActorRegistered => "ACTOR_REGISTERED",
            Kind::IssueRegistered => "ISSUE_REGISTERED",
            Kind::TimelineRegistered => "TIMELINE_REGISTERED",
        }
    }

    /// What parties did or said: the kinds that need a valid time, actors, a summary and sources,
    /// and that can be retracted or corrected.
    pub const fn is_diplomatic(self) -> bool {
        (self as u8) <= (Kind::Talks as u8)
    }

    pub const fn is_registration(self) -> bool {
        matches!(
            self,
            Kind::PartyRegistered
                | Kind::ActorRegistered
                | Kind::IssueRegistered
                | Kind::TimelineRegistered
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown kind {s:?}"))
    }
}

/// What a kind-specific payload says, typed per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Payload {
    Offer(Offer),
    Demand(Demand),
    Threat(Threat),
    Refusal(Refusal),
    Concession(Concession),
    Agreement(Agreement),
    Measure(Measure),
    Statement(Statement),
    Accusation(Accusation),
    Seminar(Seminar),
    Visit(Visit),
    Talks(Talks),
    Retraction(Retraction),
    Correction(Box<Correction>),
    PartyRegistered(PartyRegistered),
    ActorRegistered(ActorRegistered),
    IssueRegistered(IssueRegistered),
    TimelineRegistered(TimelineRegistered),
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Offer(_) => Kind::Offer,
            Payload::Demand(_) => Kind::Demand,
            Payload::Threat(_) => Kind::Threat,
            Payload::Refusal(_) => Kind::Refusal,
            Payload::Concession(_) => Kind::Concession,
            Payload::Agreement(_) => Kind::Agreement,
            Payload::Measure(_) => Kind::Measure,
            Payload::Statement(_) => Kind::Statement,
            Payload::Accusation(_) => Kind::Accusation,
            Payload::Seminar(_) => Kind::Seminar,
            Payload::Visit(_) => Kind::Visit,
            Payload::Talks(_) => Kind::Talks,
            Payload::Retraction(_) => Kind::Retraction,
            Payload::Correction(_) => Kind::Correction,
            Payload::PartyRegistered(_) => Kind::PartyRegistered,
            Payload::ActorRegistered(_) => Kind::ActorRegistered,
            Payload::IssueRegistered(_) => Kind::IssueRegistered,
            Payload::TimelineRegistered(_) => Kind::TimelineRegistered,
        }
    }

    /// Reads the payload of a given kind from its JSON object.
    pub fn from_json(kind: Kind, json: &str) -> Result<Payload, serde_json::Error> {
        Ok(payload_of_kind!(kind, serde_json::from_str(json)?))
    }

    /// Writes the payload's own object (without its kind).
    pub(crate) fn serialize_body<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        on_payload_body!(self, body => body.serialize(s))
    }
}

/// Evaluates `$action` on the value a payload holds, whatever its kind, bound to `$body`: for
/// what every kind's value does alike (serialize itself, write its stored form).
macro_rules! on_payload_body {
    ($payload:expr, $body:ident => $action:expr) => {{
        use $crate::payload::Payload;
        match $payload {
            Payload::Offer($body) => $action,
            Payload::Demand($body) => $action,
            Payload::Threat($body) => $action,
            Payload::Refusal($body) => $action,
            Payload::Concession($body) => $action,
            Payload::Agreement($body) => $action,
            Payload::Measure($body) => $action,
            Payload::Statement($body) => $action,
            Payload::Accusation($body) => $action,
            Payload::Seminar($body) => $action,
            Payload::Visit($body) => $action,
            Payload::Talks($body) => $action,
            Payload::Retraction($body) => $action,
            Payload::Correction($body) => $action,
            Payload::PartyRegistered($body) => $action,
            Payload::ActorRegistered($body) => $action,
            Payload::IssueRegistered($body) => $action,
            Payload::TimelineRegistered($body) => $action,
        }
    }};
}
pub(crate) use on_payload_body;

/// The payload of kind `$kind` holding the value `$make`, an expression typed anew for each kind
/// (so one reader serves every kind's value).
macro_rules! payload_of_kind {
    ($kind:expr, $make:expr) => {{
        use $crate::payload::{Kind, Payload};
        match $kind {
            Kind::Offer => Payload::Offer($make),
            Kind::Demand => Payload::Demand($make),
            Kind::Threat => Payload::Threat($make),
            Kind::Refusal => Payload::Refusal($make),
            Kind::Concession => Payload::Concession($make),
            Kind::Agreement => Payload::Agreement($make),
            Kind::Measure => Payload::Measure($make),
            Kind::Statement => Payload::Statement($make),
            Kind::Accusation => Payload::Accusation($make),
            Kind::Seminar => Payload::Seminar($make),
            Kind::Visit => Payload::Visit($make),
            Kind::Talks => Payload::Talks($make),
            Kind::Retraction => Payload::Retraction($make),
            Kind::Correction => Payload::Correction($make),
            Kind::PartyRegistered => Payload::PartyRegistered($make),
            Kind::ActorRegistered => Payload::ActorRegistered($make),
            Kind::IssueRegistered => Payload::IssueRegistered($make),
            Kind::TimelineRegistered => Payload::TimelineRegistered($make),
        }
    }};
}
pub(crate) use payload_of_kind;

/// A proposal of terms. With conditions it is a conditional offer; `reaffirms` names the earlier
/// offer it restates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Offer {
    pub terms: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaffirms: Option<EventId>,
}

/// What a demand asks of the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DemandType {
    #[default]
    PolicyChange,
    EconomicCooperation,
    EaseMeasures,
    Meeting,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Demand {
    pub terms: String,
    #[serde(default)]
    pub demand_type: DemandType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<ValidTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaffirms: Option<EventId>,
}

/// The instrument of a threat or a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Instrument {
    Tariff,
    Sanction,
    ExportControl,
    HaltNegotiations,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Threat {
    pub terms: String,
    pub instrument: Instrument,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<ValidTime>,
}

/// What is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefusalOf {
    /// Refuses to discuss or negotiate it at all.
    ToDiscuss,
    /// Refuses to accept the demand or proposal.
    ToAccept,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Refusal {
    pub terms: String,
    pub of: RefusalOf,
    /// The events (usually demands) refused, when they are in the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refuses: Vec<EventId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConcessionType {
    /// Gives in to a demand for a change of policy.
    #[default]
    AccedeToDemand,
    /// Eases or lifts a measure (a tariff, a sanction).
    EaseMeasure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Concession {
    pub terms: String,
    #[serde(default)]
    pub concession_type: ConcessionType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<EventId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgreementForm {
    JointStatement,
    SignedDeal,
}

/// An agreement; usually joint (every signing party among the actors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Agreement {
    pub terms: String,
    pub form: AgreementForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MeasureAction {
    #[default]
    Impose,
    Ease,
}

/// A measure taken: announced on one date, effective (perhaps) on a later one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Measure {
    pub terms: String,
    pub instrument: Instrument,
    #[serde(default)]
    pub action: MeasureAction,
    pub announced: ValidTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<ValidTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_percent: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tone {
    #[default]
    Neutral,
    Optimistic,
    Pessimistic,
}

/// A stated position or claim ("the imbalance comes from savings rates").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Statement {
    pub claim: String,
    #[serde(default)]
    pub tone: Tone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccusationForm {
    Criticize,
    Accuse,
    Complain,
    /// A legal action or a formal case (a WTO dispute, a "currency manipulator" designation).
    LegalAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Accusation {
    pub claim: String,
    pub form: AccusationForm,
}

/// A seminar or conference that lays out positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Seminar {
    pub host: PartyCode,
    pub days: u32,
    /// Who took part, as the sources describe them ("six senior officials").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// A visit. Recorded with the visitor among the actors it is a visit made; with only the host
/// among the actors, a visit hosted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Visit {
    pub visitor: PartyCode,
    pub host: PartyCode,
    pub place: String,
    pub purpose: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TalksFormat {
    #[default]
    Negotiation,
    Consultation,
    Phone,
    ThirdLocation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Talks {
    pub participants: Vec<PartyCode>,
    pub place: String,
    #[serde(default)]
    pub format: TalksFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
}

/// Withdraws an earlier event: projections then act as if it had never been recorded, while the
/// log keeps both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retraction {
    pub retracts: EventId,
    pub reason: String,
}

/// Replaces fields of an earlier event; fields left out keep their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Correction {
    pub corrects: EventId,
    pub reason: String,
    pub changes: CorrectionChanges,
}

/// The new values a correction gives. `payload` must be of the corrected event's kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorrectionChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<Occurred>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Participant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Participant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<IssueSlug>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amounts: Option<Vec<Amount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

impl CorrectionChanges {
    pub fn is_empty(&self) -> bool {
        *self == CorrectionChanges::default()
    }

    /// The event as corrected: every field given replaces the event's; the rest stay. The id,
    /// timeline and kind never change.
    pub fn apply_to(&self, event: &mut crate::event::NewEvent) {
        let c = self.clone();
        let kind = event.kind();
        replace_if_given(&mut event.occurred, c.occurred.map(Some));
        replace_if_given(&mut event.actors, c.actors);
        replace_if_given(&mut event.targets, c.targets);
        replace_if_given(&mut event.issues, c.issues);
        replace_if_given(&mut event.amounts, c.amounts);
        replace_if_given(&mut event.location, c.location.map(Some));
        replace_if_given(&mut event.summary, c.summary);
        replace_if_given(&mut event.sources, c.sources);
        replace_if_given(&mut event.confidence, c.confidence.map(Some));
        replace_if_given(&mut event.payload, c.payload.filter(|p| p.kind() == kind));
    }
}

/// Puts the value a correction gives in place of the old one; without one, the old stays.
fn replace_if_given<T>(slot: &mut T, given: Option<T>) {
    if let Some(value) = given {
        *slot = value;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartyKind {
    State,
    Organization,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PartyRegistered {
    pub code: PartyCode,
    pub name: String,
    pub party_kind: PartyKind,
}

/// A person or office acting for a party, with a role held from/to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActorRegistered {
    pub slug: ActorSlug,
    pub name: String,
    pub party: PartyCode,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ValidTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ValidTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueRegistered {
    pub slug: IssueSlug,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Opens a timeline; it must be the timeline's first event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimelineRegistered {
    pub slug: TimelineSlug,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
