//! The codes table: one explicit, versioned mapping from each kind (and payload detail) to a
//! CAMEO event code, a PLOVER event type and mode, a QuadClass and a Goldstein score, so that
//! Chancery's events line up with GDELT, ICEWS and POLECAT data.
//!
//! CAMEO codes are strings ("042", not 42): leading zeros are significant. Goldstein scores and
//! QuadClasses are GDELT's (`CAMEO.goldsteinscale.txt`; QuadClass from the CAMEO root code: 01-05
//! verbal cooperation, 06-08 material cooperation, 09-13 verbal conflict, 14-20 material
//! conflict). PLOVER types and modes follow the CAMEO-to-PLOVER table of the PLOVER manual
//! (draft 0.8, 2021). CAMEO's 01 "make public statement" has no PLOVER type, so statements and
//! seminars carry none. Registrations, retractions and corrections are bookkeeping, not acts
//! between parties: they have no codes.
//!
//! Changing any row changes what researchers get: bump [`CODES_VERSION`] and say why.

use serde::Serialize;

use crate::event::NewEvent;
use crate::payload::{
    AccusationForm, AgreementForm, ConcessionType, DemandType, Instrument, MeasureAction, Payload,
    RefusalOf, TalksFormat, Tone,
};

/// The version of the table below. Exposed with every code so data can say which table made it.
pub const CODES_VERSION: u32 = 1;

/// GDELT's four-way grouping of CAMEO codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuadClass {
    VerbalCooperation = 1,
    MaterialCooperation = 2,
    VerbalConflict = 3,
    MaterialConflict = 4,
}

impl QuadClass {
    pub const ALL: [QuadClass; 4] = [
        QuadClass::VerbalCooperation,
        QuadClass::MaterialCooperation,
        QuadClass::VerbalConflict,
        QuadClass::MaterialConflict,
    ];

    /// GDELT's number for the class (1 to 4).
    pub const fn number(self) -> u8 {
        self as u8
    }
}

/// What decides an event's codes: its kind and the payload detail that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKey {
    Offer,
    Demand(DemandType),
    Threat(Instrument),
    Refusal(RefusalOf),
    Concession(ConcessionType),
    Agreement(AgreementForm),
    Measure(MeasureAction, Instrument),
    Statement(Tone),
    Accusation(AccusationForm),
    Seminar,
    /// A visit recorded from the visitor's side.
    VisitMade,
    /// A visit recorded from the host's side.
    VisitHosted,
    Talks(TalksFormat),
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventCodes {
    pub key: CodeKey,
    /// The CAMEO event code, as a string.
    pub cameo: &'static str,
    /// CAMEO's name for the code.
    pub cameo_label: &'static str,
    pub plover_type: Option<&'static str>,
    pub plover_mode: Option<&'static str>,
    pub quad_class: QuadClass,
    pub goldstein: f64,
}

use CodeKey as K;
use QuadClass::{
    MaterialConflict as MCF, MaterialCooperation as MCO, VerbalConflict as VCF,
    VerbalCooperation as VCO,
};

const fn row(
    key: CodeKey,
    cameo: &'static str,
    cameo_label: &'static str,
    plover_type: Option<&'static str>,
    plover_mode: Option<&'static str>,
    quad_class: QuadClass,
    goldstein: f64,
) -> EventCodes {
    EventCodes {
        key,
        cameo,
        cameo_label,
        plover_type,
        plover_mode,
        quad_class,
        goldstein,
    }
}

/// The row of `key` with the codes of the row `like`: CAMEO gives some keys one code.
const fn same_codes(key: CodeKey, like: EventCodes) -> EventCodes {
    EventCodes { key, ..like }
}

/// A tariff threat, CAMEO 1312: every threat of an economic restriction has its codes.
#[rustfmt::skip]
const THREATEN_TARIFFS: EventCodes = row(K::Threat(Instrument::Tariff), "1312", "Threaten to boycott, embargo, or sanction", Some("THREATEN"), Some("restrict"), VCF, -5.8);

/// A measure eased as a concession, CAMEO 085: every economic restriction eased has its codes.
#[rustfmt::skip]
const EASE_MEASURE: EventCodes = row(K::Concession(ConcessionType::EaseMeasure), "085", "Ease economic sanctions, boycott, embargo", Some("RETREAT"), Some("ease"), MCO, 7.0);

/// Tariffs imposed, CAMEO 163: every economic restriction imposed has its codes.
#[rustfmt::skip]
const IMPOSE_TARIFFS: EventCodes = row(K::Measure(MeasureAction::Impose, Instrument::Tariff), "163", "Impose embargo, boycott, or sanctions", Some("COERCE"), Some("restrict"), MCF, -8.0);

/// A neutral statement, CAMEO 010: a seminar, which lays out positions, has its codes.
#[rustfmt::skip]
const NEUTRAL_STATEMENT: EventCodes = row(K::Statement(Tone::Neutral), "010", "Make statement", None, None, VCO, 0.0);

/// The table, version [`CODES_VERSION`].
// One row per line, as a table reads; rustfmt would spread each row over nine lines.
#[rustfmt::skip]
pub const CODES_TABLE: &[EventCodes] = &[
    row(K::Offer, "0311", "Express intent to cooperate economically", Some("AGREE"), None, VCO, 5.2),
    row(K::Demand(DemandType::PolicyChange), "1042", "Demand policy change", Some("DEMAND"), Some("change"), VCF, -5.0),
    row(K::Demand(DemandType::EconomicCooperation), "1011", "Demand economic cooperation", Some("DEMAND"), Some("assist"), VCF, -5.0),
    row(K::Demand(DemandType::EaseMeasures), "1054", "Demand easing of economic sanctions, boycott, or embargo", Some("DEMAND"), Some("yield"), VCF, -5.0),
    row(K::Demand(DemandType::Meeting), "106", "Demand meeting, negotiation", Some("DEMAND"), Some("meet"), VCF, -5.0),
    THREATEN_TARIFFS,
    same_codes(K::Threat(Instrument::Sanction), THREATEN_TARIFFS),
    same_codes(K::Threat(Instrument::ExportControl), THREATEN_TARIFFS),
    row(K::Threat(Instrument::HaltNegotiations), "134", "Threaten to halt negotiations", Some("THREATEN"), Some("relations"), VCF, -5.8),
    row(K::Threat(Instrument::Other), "130", "Threaten", Some("THREATEN"), None, VCF, -4.4),
    row(K::Refusal(RefusalOf::ToDiscuss), "125", "Reject proposal to meet, discuss, or negotiate", Some("REJECT"), Some("meet"), VCF, -5.0),
    row(K::Refusal(RefusalOf::ToAccept), "1232", "Reject request or demand for policy change", Some("REJECT"), Some("change"), VCF, -4.0),
    row(K::Concession(ConcessionType::AccedeToDemand), "0832", "Accede to demands for change in policy", Some("CONCEDE"), None, MCO, 5.0),
    EASE_MEASURE,
    row(K::Agreement(AgreementForm::JointStatement), "037", "Express intent to settle dispute", Some("AGREE"), None, VCO, 5.0),
    row(K::Agreement(AgreementForm::SignedDeal), "057", "Sign formal agreement", Some("SUPPORT"), None, VCO, 8.0),
    IMPOSE_TARIFFS,
    same_codes(K::Measure(MeasureAction::Impose, Instrument::Sanction), IMPOSE_TARIFFS),
    same_codes(K::Measure(MeasureAction::Impose, Instrument::ExportControl), IMPOSE_TARIFFS),
    row(K::Measure(MeasureAction::Impose, Instrument::HaltNegotiations), "164", "Halt negotiations", Some("SANCTION"), Some("withdraw"), MCF, -7.0),
    row(K::Measure(MeasureAction::Impose, Instrument::Other), "160", "Reduce relations", Some("SANCTION"), None, MCF, -4.0),
    same_codes(K::Measure(MeasureAction::Ease, Instrument::Tariff), EASE_MEASURE),
    same_codes(K::Measure(MeasureAction::Ease, Instrument::Sanction), EASE_MEASURE),
    same_codes(K::Measure(MeasureAction::Ease, Instrument::ExportControl), EASE_MEASURE),
    row(K::Measure(MeasureAction::Ease, Instrument::HaltNegotiations), "036", "Express intent to meet or negotiate", Some("AGREE"), None, VCO, 4.0),
    row(K::Measure(MeasureAction::Ease, Instrument::Other), "080", "Yield", Some("CONCEDE"), None, MCO, 5.0),
    NEUTRAL_STATEMENT,
    row(K::Statement(Tone::Optimistic), "013", "Make optimistic comment", None, None, VCO, 0.4),
    row(K::Statement(Tone::Pessimistic), "012", "Make pessimistic comment", None, None, VCO, -0.4),
    row(K::Accusation(AccusationForm::Criticize), "111", "Criticize or denounce", Some("ACCUSE"), Some("disapprove"), VCF, -2.0),
    row(K::Accusation(AccusationForm::Accuse), "112", "Accuse", Some("ACCUSE"), Some("disapprove"), VCF, -2.0),
    row(K::Accusation(AccusationForm::Complain), "114", "Complain officially", Some("ACCUSE"), Some("disapprove"), VCF, -2.0),
    row(K::Accusation(AccusationForm::LegalAction), "115", "Bring lawsuit against", Some("ACCUSE"), Some("disapprove"), VCF, -2.0),
    same_codes(K::Seminar, NEUTRAL_STATEMENT),
    row(K::VisitMade, "042", "Make a visit", Some("CONSULT"), Some("visit"), VCO, 1.9),
    row(K::VisitHosted, "043", "Host a visit", Some("CONSULT"), Some("host"), VCO, 2.8),
    row(K::Talks(TalksFormat::Negotiation), "046", "Engage in negotiation", Some("CONSULT"), None, VCO, 7.0),
    row(K::Talks(TalksFormat::Consultation), "040", "Consult", Some("CONSULT"), None, VCO, 1.0),
    row(K::Talks(TalksFormat::Phone), "041", "Discuss by telephone", Some("CONSULT"), Some("phone"), VCO, 1.0),
    row(K::Talks(TalksFormat::ThirdLocation), "044", "Meet at a 'third' location", Some("CONSULT"), Some("third-party"), VCO, 2.5),
];

/// The key that decides an event's codes, or `None` for bookkeeping events.
pub fn code_key(event: &NewEvent) -> Option<CodeKey> {
    code_key_of(&event.payload, &|party| {
        event.actors.iter().any(|a| a.party.as_str() == party)
    })
}

/// The codes key of a payload, given which parties act (a visit's code depends on whether the
/// visitor or the host acts): for readers that hold an event's terms rather than the event.
pub fn code_key_of(payload: &Payload, acts: &dyn Fn(&str) -> bool) -> Option<CodeKey> {
    Some(match payload {
        Payload::Offer(_) => K::Offer,
        Payload::Demand(d) => K::Demand(d.demand_type),
        Payload::Threat(t) => K::Threat(t.instrument),
        Payload::Refusal(r) => K::Refusal(r.of),
        Payload::Concession(c) => K::Concession(c.concession_type),
        Payload::Agreement(a) => K::Agreement(a.form),
        Payload::Measure(m) => K::Measure(m.action, m.instrument),
        Payload::Statement(s) => K::Statement(s.tone),
        Payload::Accusation(a) => K::Accusation(a.form),
        Payload::Seminar(_) => K::Seminar,
        Payload::Visit(v) => {
            let visitor_acts = acts(v.visitor.as_str());
            let host_acts = acts(v.host.as_str());
            if host_acts && !visitor_acts {
                K::VisitHosted
            } else {
                K::VisitMade
            }
        }
        Payload::Talks(t) => K::Talks(t.format),
        Payload::Retraction(_)
        | Payload::Correction(_)
        | Payload::PartyRegistered(_)
        | Payload::ActorRegistered(_)
        | Payload::IssueRegistered(_)
        | Payload::TimelineRegistered(_) => return None,
    })
}

/// The codes of a key.
pub fn codes_for_key(key: CodeKey) -> Option<&'static EventCodes> {
    CODES_TABLE.iter().find(|row| row.key == key)
}

/// The codes of an event, or `None` for registrations, retractions and corrections.
pub fn codes(event: &NewEvent) -> Option<&'static EventCodes> {
    code_key(event).and_then(codes_for_key)
}
