//! From a dataset's code to a Chancery event: the inverse of the codes table (a CAMEO code the
//! table gives a kind to becomes that kind), the nearest kind for every other CAMEO code and
//! every PLOVER type, and the event around it: parties, the day, a summary, the dataset as the
//! source, the dataset's own coding, and an id made from the dataset's event id, so that an
//! import run twice finds what it wrote the first time. `docs/datasets.md` has the table.

use chancery_domain::codes::{CODES_TABLE, CodeKey};
use chancery_domain::event::{Attribution, Occurred, Participant, Source};
use chancery_domain::payload::*;
use chancery_domain::{EventId, IssueSlug, NewEvent, PartyCode, TimelineSlug};
use sha2::{Digest, Sha256};

use crate::row::{DatasetRow, RowCode};

/// Why a row that reads well cannot become an event; such rows are skipped and counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unmapped {
    /// The row names no acting party the importer can use.
    NoActor,
    /// The party code is not a valid Chancery party code.
    BadPartyCode(String),
    /// A country named in words that the party table does not know.
    UnknownCountry(String),
}

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmapped::NoActor => {
                f.write_str("no acting party (the row gives no country or group for its actor)")
            }
            Unmapped::BadPartyCode(code) => write!(f, "{code:?} is not a party code"),
            Unmapped::UnknownCountry(name) => {
                write!(f, "the country {name:?} is not in the party table")
            }
        }
    }
}

/// The key of the codes table a dataset's code maps to: its own row when the table has the
/// code, else the nearest kind.
pub fn key_of(code: &RowCode) -> CodeKey {
    match code {
        RowCode::Cameo(cameo) => cameo_key(cameo),
        RowCode::Plover { event_type, mode } => plover_key(event_type, mode.as_deref()),
    }
}

/// Codes several rows of the table share map to the most general of them.
fn cameo_key(code: &str) -> CodeKey {
    use CodeKey as K;
    match code {
        "1312" => return K::Threat(Instrument::Sanction),
        "163" => return K::Measure(MeasureAction::Impose, Instrument::Sanction),
        "085" => return K::Concession(ConcessionType::EaseMeasure),
        _ => {}
    }
    if let Some(row) = CODES_TABLE.iter().find(|r| r.cameo == code) {
        return row.key;
    }
    let base = code.get(..3).unwrap_or(code);
    match code.get(..2).unwrap_or(code) {
        "01" => K::Statement(match base {
            "012" => Tone::Pessimistic,
            "013" => Tone::Optimistic,
            _ => Tone::Neutral,
        }),
        "02" => K::Demand(match base {
            "021" | "022" | "023" => DemandType::EconomicCooperation,
            "025" => DemandType::EaseMeasures,
            "026" | "027" | "028" => DemandType::Meeting,
            _ => DemandType::PolicyChange,
        }),
        "03" => K::Offer,
        "04" => K::Talks(TalksFormat::Consultation),
        "05" => K::Statement(Tone::Optimistic),
        "06" => K::Agreement(AgreementForm::SignedDeal),
        "08" if base == "081" || base == "085" => K::Concession(ConcessionType::EaseMeasure),
        "07" | "08" => K::Concession(ConcessionType::AccedeToDemand),
        "09" => K::Accusation(AccusationForm::Criticize),
        "10" => K::Demand(match base {
            "101" | "102" | "103" => DemandType::EconomicCooperation,
            "105" => DemandType::EaseMeasures,
            "106" | "107" | "108" => DemandType::Meeting,
            _ => DemandType::PolicyChange,
        }),
        "11" => K::Accusation(match base {
            "112" => AccusationForm::Accuse,
            "114" => AccusationForm::Complain,
            "115" | "116" => AccusationForm::LegalAction,
            _ => AccusationForm::Criticize,
        }),
        "12" => K::Refusal(match base {
            "125" | "126" => RefusalOf::ToDiscuss,
            _ => RefusalOf::ToAccept,
        }),
        "13" => K::Threat(match base {
            "131" => Instrument::Sanction,
            "134" => Instrument::HaltNegotiations,
            _ => Instrument::Other,
        }),
        "14" => K::Accusation(AccusationForm::Complain),
        "15" => K::Threat(Instrument::Other),
        "16" => K::Measure(MeasureAction::Impose, Instrument::Other),
        "17" if base == "172" => K::Measure(MeasureAction::Impose, Instrument::Sanction),
        _ => K::Measure(MeasureAction::Impose, Instrument::Other),
    }
}

/// PLOVER 2.0's types (and the modes that decide a kind's detail) to kinds.
fn plover_key(event_type: &str, mode: Option<&str>) -> CodeKey {
    use CodeKey as K;
    let mode = mode.unwrap_or("");
    match event_type {
        "AGREE" => K::Offer,
        "CONSULT" => match mode {
            "visit" => K::VisitMade,
            "host" => K::VisitHosted,
            "phone" => K::Talks(TalksFormat::Phone),
            "third-party" => K::Talks(TalksFormat::ThirdLocation),
            _ => K::Talks(TalksFormat::Consultation),
        },
        "SUPPORT" => K::Statement(Tone::Optimistic),
        "CONCEDE" | "AID" => K::Concession(ConcessionType::AccedeToDemand),
        "RETREAT" => K::Concession(ConcessionType::EaseMeasure),
        "COOPERATE" => K::Agreement(AgreementForm::SignedDeal),
        "REQUEST" => K::Demand(match mode {
            "assist" | "aid" | "cooperate" => DemandType::EconomicCooperation,
            "yield" | "ease" => DemandType::EaseMeasures,
            "meet" | "settle" | "mediate" => DemandType::Meeting,
            _ => DemandType::PolicyChange,
        }),
        "ACCUSE" => K::Accusation(match mode {
            "disapprove" | "investigate" => AccusationForm::Criticize,
            _ => AccusationForm::Accuse,
        }),
        "REJECT" => K::Refusal(match mode {
            "meet" | "settle" | "mediate" => RefusalOf::ToDiscuss,
            _ => RefusalOf::ToAccept,
        }),
        "THREATEN" => K::Threat(match mode {
            "restrict" | "sanction" => Instrument::Sanction,
            "relations" => Instrument::HaltNegotiations,
            _ => Instrument::Other,
        }),
        "PROTEST" => K::Accusation(AccusationForm::Complain),
        "SANCTION" => K::Measure(
            MeasureAction::Impose,
            if mode == "withdraw" {
                Instrument::HaltNegotiations
            } else {
                Instrument::Sanction
            },
        ),
        "MOBILIZE" => K::Threat(Instrument::Other),
        _ => K::Measure(MeasureAction::Impose, Instrument::Other),
    }
}

/// PLOVER 2.0's event types: what a POLECAT row may say.
pub const PLOVER_TYPES: [&str; 16] = [
    "AGREE",
    "CONSULT",
    "SUPPORT",
    "CONCEDE",
    "COOPERATE",
    "AID",
    "RETREAT",
    "REQUEST",
    "ACCUSE",
    "REJECT",
    "THREATEN",
    "PROTEST",
    "SANCTION",
    "MOBILIZE",
    "COERCE",
    "ASSAULT",
];

/// CAMEO's names of its twenty root codes, for codes the table has no row of.
const CAMEO_ROOTS: [&str; 20] = [
    "Make public statement",
    "Appeal",
    "Express intent to cooperate",
    "Consult",
    "Engage in diplomatic cooperation",
    "Engage in material cooperation",
    "Provide aid",
    "Yield",
    "Investigate",
    "Demand",
    "Disapprove",
    "Reject",
    "Threaten",
    "Protest",
    "Exhibit force posture",
    "Reduce relations",
    "Coerce",
    "Assault",
    "Fight",
    "Use unconventional mass violence",
];

/// What the dataset says happened, in words: CAMEO's name of the code when the table has the
/// code, else its root's name; a PLOVER type and mode as written.
pub fn label(code: &RowCode) -> String {
    match code {
        RowCode::Cameo(cameo) => match CODES_TABLE.iter().find(|r| r.cameo == cameo) {
            Some(row) => row.cameo_label.to_owned(),
            None => {
                let root: usize = cameo.get(..2).and_then(|r| r.parse().ok()).unwrap_or(0);
                CAMEO_ROOTS
                    .get(root.wrapping_sub(1))
                    .copied()
                    .unwrap_or("Event")
                    .to_owned()
            }
        },
        RowCode::Plover { event_type, mode } => {
            let mut words = event_type.to_lowercase();
            if let Some(first) = words.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            match mode {
                Some(m) => format!("{words} ({m})"),
                None => words,
            }
        }
    }
}

/// The code as the summary cites it: `CAMEO 1042`, `PLOVER REQUEST/change`.
struct Citation<'a>(&'a RowCode);

impl std::fmt::Display for Citation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            RowCode::Cameo(c) => write!(f, "CAMEO {c}"),
            RowCode::Plover {
                event_type,
                mode: Some(m),
            } => write!(f, "PLOVER {event_type}/{m}"),
            RowCode::Plover {
                event_type,
                mode: None,
            } => write!(f, "PLOVER {event_type}"),
        }
    }
}

/// Where an import puts its events.
#[derive(Debug, Clone)]
pub struct Destination {
    pub timeline: TimelineSlug,
    /// An issue every imported event is tagged with.
    pub issue: Option<IssueSlug>,
}

/// A row's parties, as party codes: the actor (required) and the target (when there is one and
/// it is another party).
pub fn parties_of(row: &DatasetRow) -> Result<(PartyCode, Option<PartyCode>), Unmapped> {
    let code = |p: &crate::row::RowParty| {
        if p.code.is_empty() {
            return Err(Unmapped::UnknownCountry(p.name.clone()));
        }
        PartyCode::new(p.code.as_str()).map_err(|_| Unmapped::BadPartyCode(p.code.clone()))
    };
    let actor = code(row.actor.as_ref().ok_or(Unmapped::NoActor)?)?;
    let target = match &row.target {
        Some(t) => Some(code(t)?).filter(|t| *t != actor),
        None => None,
    };
    Ok((actor, target))
}

/// The event a row becomes in `to`. `name` gives a party's name for the summary.
pub fn event_of(
    row: &DatasetRow,
    to: &Destination,
    name: &dyn Fn(&PartyCode) -> String,
) -> Result<NewEvent, Unmapped> {
    let (actor, target) = parties_of(row)?;
    let label = label(&row.code);
    let payload = payload_of(key_of(&row.code), &label, row, &actor, target.as_ref());
    let mut event = NewEvent::with_id(event_id(row, &to.timeline), to.timeline.clone(), payload);
    event.occurred = Some(Occurred {
        start: row.date,
        end: None,
        modality: Default::default(),
    });
    let summary = match &target {
        Some(t) => format!(
            "{} → {}: {label} ({}, {})",
            name(&actor),
            name(t),
            row.dataset,
            Citation(&row.code)
        ),
        None => format!(
            "{}: {label} ({}, {})",
            name(&actor),
            row.dataset,
            Citation(&row.code)
        ),
    };
    event.summary = summary;
    event.actors = vec![Participant::party(actor)];
    event.targets = target.map(Participant::party).into_iter().collect();
    event.issues = to.issue.iter().cloned().collect();
    event.location = row.place.clone();
    event.sources = vec![Source {
        publication: row.publisher.clone(),
        title: None,
        url: row.url.clone(),
        published: row.published,
        // The dataset names the outlet (and GDELT the article) it coded the event from.
        attribution: Attribution::Named,
        quote: None,
    }];
    event.dataset = Some(row.coding());
    Ok(event)
}

/// The text a visit's or talks' place takes when the row names none.
pub const NO_PLACE: &str = "not given by the dataset";

/// The payload of a key. A visit or talks need another party: without one the row is a
/// statement of the actor's.
fn payload_of(
    key: CodeKey,
    label: &str,
    row: &DatasetRow,
    actor: &PartyCode,
    target: Option<&PartyCode>,
) -> Payload {
    let terms = label.to_owned();
    let place = || row.place.clone().unwrap_or_else(|| NO_PLACE.to_owned());
    match key {
        CodeKey::Offer => Payload::Offer(Offer {
            terms,
            conditions: Vec::new(),
            reaffirms: None,
        }),
        CodeKey::Demand(demand_type) => Payload::Demand(Demand {
            terms,
            demand_type,
            deadline: None,
            reaffirms: None,
        }),
        CodeKey::Threat(instrument) => Payload::Threat(Threat {
            terms,
            instrument,
            condition: None,
            deadline: None,
        }),
        CodeKey::Refusal(of) => Payload::Refusal(Refusal {
            terms,
            of,
            refuses: Vec::new(),
        }),
        CodeKey::Concession(concession_type) => Payload::Concession(Concession {
            terms,
            concession_type,
            answers: Vec::new(),
        }),
        CodeKey::Agreement(form) => Payload::Agreement(Agreement { terms, form }),
        CodeKey::Measure(action, instrument) => Payload::Measure(Measure {
            terms,
            instrument,
            action,
            announced: row.date,
            effective: None,
            rate_percent: None,
        }),
        CodeKey::Statement(tone) => Payload::Statement(Statement { claim: terms, tone }),
        CodeKey::Accusation(form) => Payload::Accusation(Accusation { claim: terms, form }),
        CodeKey::VisitMade | CodeKey::VisitHosted if target.is_some() => {
            let other = target.cloned().unwrap_or_else(|| actor.clone());
            let (visitor, host) = if key == CodeKey::VisitMade {
                (actor.clone(), other)
            } else {
                (other, actor.clone())
            };
            Payload::Visit(Visit {
                visitor,
                host,
                place: place(),
                purpose: terms,
            })
        }
        CodeKey::Talks(format) if target.is_some() => Payload::Talks(Talks {
            participants: [Some(actor.clone()), target.cloned()]
                .into_iter()
                .flatten()
                .collect(),
            place: place(),
            format,
            rounds: None,
        }),
        CodeKey::Seminar | CodeKey::VisitMade | CodeKey::VisitHosted | CodeKey::Talks(_) => {
            Payload::Statement(Statement {
                claim: terms,
                tone: Tone::Neutral,
            })
        }
    }
}

/// The event id of a row in a timeline: a UUID v7 whose time is the row's day and whose other
/// bits come from a hash of the dataset, the timeline and the dataset's event id. The same row
/// imported into the same timeline again has the same id, so it is found and skipped.
pub fn event_id(row: &DatasetRow, timeline: &TimelineSlug) -> EventId {
    let digest = Sha256::new()
        .chain_update(row.dataset.as_str())
        .chain_update([0])
        .chain_update(timeline.as_str())
        .chain_update([0])
        .chain_update(&row.event_id)
        .finalize();
    let millis = u64::try_from(row.date.earliest().saturating_mul(1_000)).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    EventId::from_bytes(bytes)
}
