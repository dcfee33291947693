//! The event envelope: what every event says besides its kind-specific payload (who, to whom,
//! about what, when, how much, according to whom), and its JSON form.

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetCoding;
use crate::ids::{ActorSlug, EventId, IssueSlug, PartyCode, TimelineSlug};
use crate::payload::{Kind, Payload};
use crate::time::{Precision, ValidTime};

/// Whether the event happened, is planned, is only envisaged, or is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Modality {
    #[default]
    Occurred,
    Planned,
    Hypothetical,
    Denied,
}

/// Valid time: when the event happened (or would), as precisely as known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Occurred {
    pub start: ValidTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<ValidTime>,
    #[serde(default)]
    pub modality: Modality,
}

impl Occurred {
    /// The precision of the start, which is the event's precision.
    pub fn precision(&self) -> Precision {
        self.start.precision()
    }
}

/// A party acting or addressed, optionally through a named actor of that party.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Participant {
    pub party: PartyCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorSlug>,
}

impl Participant {
    pub fn party(party: PartyCode) -> Self {
        Self { party, actor: None }
    }
}

/// An amount: money in an ISO 4217 currency, or a rate in `PERCENT`, and what it measures
/// ("cut of the annual trade deficit", "Chinese goods covered by the tariffs").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Amount {
    pub value: f64,
    pub unit: String,
    pub measures: String,
}

/// How a source attributes what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Attribution {
    /// A named person said it on the record.
    Named,
    /// People who asked not to be named.
    Anonymous,
    /// An official statement, communiqué or document.
    Official,
}

/// Where a claim comes from: a citation and a short quote, never the full text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    pub publication: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<ValidTime>,
    pub attribution: Attribution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// An event as a client submits it, before the store gives it a position, a version, a
/// transaction time and a hash.
///
/// JSON form: the envelope's fields, `kind`, the kind's `payload` object, then `dataset` for an
/// event imported from a coded dataset, and last `recordedBy` when it is known.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: EventId,
    pub timeline: TimelineSlug,
    pub occurred: Option<Occurred>,
    pub actors: Vec<Participant>,
    pub targets: Vec<Participant>,
    pub issues: Vec<IssueSlug>,
    pub amounts: Vec<Amount>,
    pub location: Option<String>,
    pub summary: String,
    pub sources: Vec<Source>,
    pub confidence: Option<f64>,
    pub payload: Payload,
    /// How a coded event dataset coded it, for an event imported from one (GDELT, ICEWS,
    /// POLECAT); `None` otherwise, and then the record holds no such field.
    pub dataset: Option<DatasetCoding>,
    /// The name of who recorded it (a token's name, or the operator of an import); never a
    /// secret. Set by the store's caller, not by clients; `None` for events recorded before
    /// names were kept, whose records hold no such field and so keep their bytes and hashes.
    pub recorded_by: Option<String>,
}

impl NewEvent {
    /// An event of the given payload with an empty envelope, to be filled in by the caller.
    pub fn new(timeline: TimelineSlug, payload: Payload) -> Self {
        Self::with_id(EventId::new_v7(), timeline, payload)
    }

    /// [`NewEvent::new`] with an id the caller already has (an imported row's id made from the
    /// dataset's own), so that none is drawn for it.
    pub fn with_id(id: EventId, timeline: TimelineSlug, payload: Payload) -> Self {
        Self {
            id,
            timeline,
            occurred: None,
            actors: Vec::new(),
            targets: Vec::new(),
            issues: Vec::new(),
            amounts: Vec::new(),
            location: None,
            summary: String::new(),
            sources: Vec::new(),
            confidence: None,
            payload,
            dataset: None,
            recorded_by: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// Every party named as an actor or a target, each once, actors first.
    pub fn parties(&self) -> Vec<&PartyCode> {
        let mut parties: Vec<&PartyCode> = Vec::new();
        for p in self.actors.iter().chain(&self.targets) {
            if !parties.contains(&&p.party) {
                parties.push(&p.party);
            }
        }
        parties
    }

    /// The earlier events this one points at (retracts, corrects, reaffirms, refuses, answers).
    pub fn referenced_events(&self) -> Vec<EventId> {
        match &self.payload {
            Payload::Offer(o) => o.reaffirms.into_iter().collect(),
            Payload::Demand(d) => d.reaffirms.into_iter().collect(),
            Payload::Refusal(r) => r.refuses.clone(),
            Payload::Concession(c) => c.answers.clone(),
            Payload::Retraction(r) => vec![r.retracts],
            Payload::Correction(c) => vec![c.corrects],
            _ => Vec::new(),
        }
    }

    /// Whether two events say the same thing, whoever recorded them: `recorded_by` is left out,
    /// so that a retry of an append or an import by another token or operator is recognised as
    /// the same event rather than refused as another one under its id.
    pub fn same_content(&self, other: &NewEvent) -> bool {
        // Destructured in full, so that a new field must be placed on one side or the other.
        let NewEvent {
            id,
            timeline,
            occurred,
            actors,
            targets,
            issues,
            amounts,
            location,
            summary,
            sources,
            confidence,
            payload,
            dataset,
            recorded_by: _,
        } = self;
        *id == other.id
            && *timeline == other.timeline
            && *occurred == other.occurred
            && *actors == other.actors
            && *targets == other.targets
            && *issues == other.issues
            && *amounts == other.amounts
            && *location == other.location
            && *summary == other.summary
            && *sources == other.sources
            && *confidence == other.confidence
            && *payload == other.payload
            && *dataset == other.dataset
    }

    /// The length of [`NewEvent::to_canonical_json`], counted without making it.
    pub fn canonical_json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        // As in `to_canonical_json`: plain data serializes without failing.
        serde_json::to_writer(&mut count, self).map_or(0, |()| count.0)
    }

    /// The canonical JSON of this event: fixed field order, no whitespace, optional fields left
    /// out when empty. Equal events have equal encodings.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Sized for the field names and the longest texts, so that the buffer rarely grows
        // (each growth copies what is written so far); every append and import row makes one.
        let texts: usize = self.summary.len()
            + self.location.as_ref().map_or(0, String::len)
            + self
                .sources
                .iter()
                .map(|s| {
                    128 + s.publication.len()
                        + [&s.title, &s.url, &s.quote]
                            .into_iter()
                            .map(|t| t.as_ref().map_or(0, String::len))
                            .sum::<usize>()
                })
                .sum::<usize>();
        let mut json = Vec::with_capacity(768 + texts);
        // Serializing plain data into a Vec cannot fail: no map has non-string keys.
        match serde_json::to_writer(&mut json, self) {
            Ok(()) => json,
            Err(_) => Vec::new(),
        }
    }
}

impl Serialize for NewEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Body<'a>(&'a Payload);
        impl Serialize for Body<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_body(s)
            }
        }

        let mut s = serializer.serialize_struct("NewEvent", 15)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("timeline", &self.timeline)?;
        s.serialize_field("kind", &self.kind())?;
        serialize_if_present(&mut s, "occurred", &self.occurred)?;
        serialize_if_present(&mut s, "actors", &self.actors)?;
        serialize_if_present(&mut s, "targets", &self.targets)?;
        serialize_if_present(&mut s, "issues", &self.issues)?;
        serialize_if_present(&mut s, "amounts", &self.amounts)?;
        serialize_if_present(&mut s, "location", &self.location)?;
        serialize_if_present(&mut s, "summary", &self.summary)?;
        serialize_if_present(&mut s, "sources", &self.sources)?;
        serialize_if_present(&mut s, "confidence", &self.confidence)?;
        s.serialize_field("payload", &Body(&self.payload))?;
        // Only for imported events: every other record hashes as it did before datasets.
        serialize_if_present(&mut s, "dataset", &self.dataset)?;
        // Last, and only when known: a record of before names were kept hashes as it did.
        serialize_if_present(&mut s, "recordedBy", &self.recorded_by)?;
        s.end()
    }
}

/// An envelope field that the JSON form leaves out when it is empty.
trait Optional: Serialize {
    fn is_present(&self) -> bool;
}

impl<T: Serialize> Optional for Option<T> {
    fn is_present(&self) -> bool {
        self.is_some()
    }
}

impl<T: Serialize> Optional for Vec<T> {
    fn is_present(&self) -> bool {
        !self.is_empty()
    }
}

impl Optional for String {
    fn is_present(&self) -> bool {
        !self.is_empty()
    }
}

/// Writes an optional envelope field, or nothing when it is empty (an option's value is
/// written as the value itself).
fn serialize_if_present<S: SerializeStruct, T: Optional>(
    s: &mut S,
    key: &'static str,
    value: &T,
) -> Result<(), S::Error> {
    if value.is_present() {
        s.serialize_field(key, value)
    } else {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewEventWire {
    id: EventId,
    timeline: TimelineSlug,
    kind: Kind,
    #[serde(default)]
    occurred: Option<Occurred>,
    #[serde(default)]
    actors: Vec<Participant>,
    #[serde(default)]
    targets: Vec<Participant>,
    #[serde(default)]
    issues: Vec<IssueSlug>,
    #[serde(default)]
    amounts: Vec<Amount>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    sources: Vec<Source>,
    #[serde(default)]
    confidence: Option<f64>,
    payload: Box<serde_json::value::RawValue>,
    #[serde(default)]
    dataset: Option<DatasetCoding>,
    #[serde(default)]
    recorded_by: Option<String>,
}

impl<'de> Deserialize<'de> for NewEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = NewEventWire::deserialize(deserializer)?;
        let payload = Payload::from_json(wire.kind, wire.payload.get())
            .map_err(|e| D::Error::custom(format!("payload of {}: {e}", wire.kind)))?;
        Ok(NewEvent {
            id: wire.id,
            timeline: wire.timeline,
            occurred: wire.occurred,
            actors: wire.actors,
            targets: wire.targets,
            issues: wire.issues,
            amounts: wire.amounts,
            location: wire.location,
            summary: wire.summary,
            sources: wire.sources,
            confidence: wire.confidence,
            payload,
            dataset: wire.dataset,
            recorded_by: wire.recorded_by,
        })
    }
}
