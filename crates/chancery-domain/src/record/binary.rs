//! The stored form of a record: a fixed header that readers take without decoding anything
//! (position, version, transaction time, both hashes, kind, id), then the envelope's terms in the
//! order filters and projections read them (timeline, valid time, actors, targets, issues, the
//! payload behind its length), then the rest of the envelope. Every field has one encoding, so
//! two different byte strings never decode to the same record: a changed byte either fails to
//! decode or changes the canonical JSON whose hash the record carries.
//!
//! Little-endian fixed-width numbers, LEB128 lengths and counts, UTF-8 strings behind their
//! length, floats as their IEEE bits (exact, so the canonical JSON of a decoded record is the one
//! that was hashed).

use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::event::{Amount, Attribution, Modality, NewEvent, Occurred, Participant, Source};
use crate::ids::{ActorSlug, EventId, IssueSlug, PartyCode, TimelineSlug};
use crate::payload::*;
use crate::record::{Hash, Position, RecordError};
use crate::time::{Timestamp, ValidTime};

/// The first byte of a stored record of this form. A record of the first form (canonical JSON)
/// starts with `{`.
pub const FORM_BINARY: u8 = 0xC2;

/// Where the fixed header's fields sit.
pub(crate) mod at {
    pub const FORM: usize = 0;
    pub const SCHEMA: usize = 1;
    pub const POSITION: usize = 2;
    pub const VERSION: usize = 10;
    pub const RECORDED_AT: usize = 18;
    pub const PREV_HASH: usize = 26;
    pub const HASH: usize = 58;
    pub const KIND: usize = 90;
    pub const ID: usize = 91;
    /// The length of the fixed header; the variable part follows.
    pub const TERMS: usize = 107;
}

/// The fixed header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub schema: u8,
    pub position: Position,
    pub version: u64,
    pub recorded_at: Timestamp,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub kind: Kind,
    pub id: EventId,
}

/// Writes a record's stored form.
pub(crate) fn encode(header: &Header, event: &NewEvent, out: &mut Vec<u8>) {
    out.reserve(at::TERMS + 256 + event.summary.len());
    out.push(FORM_BINARY);
    out.push(header.schema);
    out.extend_from_slice(&header.position.to_le_bytes());
    out.extend_from_slice(&header.version.to_le_bytes());
    out.extend_from_slice(&header.recorded_at.unix_micros().to_le_bytes());
    out.extend_from_slice(&header.prev_hash.0);
    out.extend_from_slice(&header.hash.0);
    out.push(header.kind.tag());
    out.extend_from_slice(header.id.as_bytes());
    let w = &mut Out(out);
    w.str(event.timeline.as_str());
    w.option(event.occurred.as_ref(), |w, o| {
        w.valid_time(&o.start);
        w.option(o.end.as_ref(), Out::valid_time);
        w.u8(modality_tag(o.modality));
    });
    w.participants(&event.actors);
    w.participants(&event.targets);
    w.list(&event.issues, |w, i| w.str(i.as_str()));
    // The payload goes behind its length, so that a reader of the terms can skip it.
    let mut payload = Vec::with_capacity(64);
    encode_payload(&mut Out(&mut payload), &event.payload);
    w.len(payload.len());
    w.0.extend_from_slice(&payload);
    w.list(&event.amounts, Out::amount);
    w.option(event.location.as_deref(), |w, s| w.str(s));
    w.str(&event.summary);
    w.list(&event.sources, Out::source);
    w.option(event.confidence.as_ref(), |w, c| w.f64(*c));
}

/// Reads the fixed header; the variable part is not looked at.
pub(crate) fn header(bytes: &[u8]) -> Result<Header, RecordError> {
    if bytes.len() < at::TERMS {
        return Err(malformed("shorter than a record's header"));
    }
    if bytes[at::FORM] != FORM_BINARY {
        return Err(malformed("not a stored record"));
    }
    let kind = Kind::from_tag(bytes[at::KIND]).ok_or_else(|| malformed("unknown kind"))?;
    let micros = i64::from_le_bytes(fixed(bytes, at::RECORDED_AT));
    // Only an instant that has a text form (years 0 to 9999) can be hashed and exported.
    let year = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map(|t| t.year())
        .unwrap_or(-1);
    if !(0..=9999).contains(&year) {
        return Err(malformed("its transaction time is out of range"));
    }
    Ok(Header {
        schema: bytes[at::SCHEMA],
        position: u64::from_le_bytes(fixed(bytes, at::POSITION)),
        version: u64::from_le_bytes(fixed(bytes, at::VERSION)),
        recorded_at: Timestamp::from_unix_micros(micros),
        prev_hash: Hash(fixed(bytes, at::PREV_HASH)),
        hash: Hash(fixed(bytes, at::HASH)),
        kind,
        id: EventId::from_bytes(fixed(bytes, at::ID)),
    })
}

/// `N` bytes at `from`; zeros past the end (callers check the length first).
pub(crate) fn fixed<const N: usize>(bytes: &[u8], from: usize) -> [u8; N] {
    bytes
        .get(from..from + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

/// The envelope's terms, borrowed from the stored bytes: what filters and projections read,
/// without decoding the summary, sources or amounts. The payload is decoded on request.
#[derive(Debug, Clone)]
pub struct EventView<'a> {
    pub kind: Kind,
    pub id: EventId,
    pub timeline: &'a str,
    pub occurred: Option<Occurred>,
    actors: Participants<'a>,
    targets: Participants<'a>,
    issues: Strings<'a>,
    payload: &'a [u8],
}

impl<'a> EventView<'a> {
    pub(crate) fn read(bytes: &'a [u8]) -> Result<EventView<'a>, RecordError> {
        let head = header(bytes)?;
        let mut r = In::new(&bytes[at::TERMS..]);
        let timeline = r.str()?;
        let occurred = r.option(In::occurred)?;
        let actors = r.participants_raw()?;
        let targets = r.participants_raw()?;
        let issues = r.strings_raw()?;
        let length = r.len()?;
        let payload = r.take(length)?;
        Ok(EventView {
            kind: head.kind,
            id: head.id,
            timeline,
            occurred,
            actors,
            targets,
            issues,
            payload,
        })
    }

    /// The parties acting, with the actor named for each, in order.
    pub fn actors(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        self.actors.iter()
    }

    pub fn targets(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        self.targets.iter()
    }

    pub fn issues(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.issues.iter()
    }

    /// The kind's payload, decoded.
    pub fn payload(&self) -> Result<Payload, RecordError> {
        let mut r = In::new(self.payload);
        let payload = decode_payload(&mut r, self.kind)?;
        r.end()?;
        Ok(payload)
    }
}

/// A list of participants as stored: decoded as it is walked.
#[derive(Debug, Clone, Copy)]
struct Participants<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> Participants<'a> {
    fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        let mut r = In::new(self.bytes);
        // Checked when the view was read: every item decodes.
        (0..self.count).map_while(move |_| {
            let party = r.str().ok()?;
            let actor = r.option(In::str).ok()?;
            Some((party, actor))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Strings<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> Strings<'a> {
    fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let mut r = In::new(self.bytes);
        (0..self.count).map_while(move |_| r.str().ok())
    }
}

/// Decodes a whole stored record: its header and its event.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, NewEvent), RecordError> {
    let head = header(bytes)?;
    let mut r = In::new(&bytes[at::TERMS..]);
    let timeline = TimelineSlug::new(r.str()?).map_err(|e| malformed(&e.to_string()))?;
    let occurred = r.option(In::occurred)?;
    let actors = r.participants()?;
    let targets = r.participants()?;
    let issues = r.list(|r| IssueSlug::new(r.str()?).map_err(|e| malformed(&e.to_string())))?;
    let length = r.len()?;
    let mut p = In::new(r.take(length)?);
    let payload = decode_payload(&mut p, head.kind)?;
    p.end()?;
    let amounts = r.list(In::amount)?;
    let location = r.option(|r| r.str().map(str::to_owned))?;
    let summary = r.str()?.to_owned();
    let sources = r.list(In::source)?;
    let confidence = r.option(In::f64)?;
    r.end()?;
    Ok((
        head,
        NewEvent {
            id: head.id,
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
        },
    ))
}

fn malformed(why: &str) -> RecordError {
    RecordError::Malformed(why.to_owned())
}

fn modality_tag(m: Modality) -> u8 {
    match m {
        Modality::Occurred => 0,
        Modality::Planned => 1,
        Modality::Hypothetical => 2,
        Modality::Denied => 3,
    }
}

fn attribution_tag(a: Attribution) -> u8 {
    match a {
        Attribution::Named => 0,
        Attribution::Anonymous => 1,
        Attribution::Official => 2,
    }
}

/// Tags of the kinds' small enums, one table each way, so that no enum is ever cast.
macro_rules! tags {
    ($name:ident, $from:ident, $ty:ty, [$($variant:path),+ $(,)?]) => {
        fn $name(v: $ty) -> u8 {
            let all = [$($variant),+];
            all.iter().position(|x| *x == v).and_then(|i| u8::try_from(i).ok()).unwrap_or(u8::MAX)
        }
        fn $from(tag: u8) -> Result<$ty, RecordError> {
            let all = [$($variant),+];
            all.get(usize::from(tag)).copied().ok_or_else(|| malformed(concat!("unknown ", stringify!($ty))))
        }
    };
}

tags!(
    demand_type_tag,
    demand_type_of,
    DemandType,
    [
        DemandType::PolicyChange,
        DemandType::EconomicCooperation,
        DemandType::EaseMeasures,
        DemandType::Meeting,
    ]
);
tags!(
    instrument_tag,
    instrument_of,
    Instrument,
    [
        Instrument::Tariff,
        Instrument::Sanction,
        Instrument::ExportControl,
        Instrument::HaltNegotiations,
        Instrument::Other,
    ]
);
tags!(
    refusal_of_tag,
    refusal_of_of,
    RefusalOf,
    [RefusalOf::ToDiscuss, RefusalOf::ToAccept]
);
tags!(
    concession_type_tag,
    concession_type_of,
    ConcessionType,
    [ConcessionType::AccedeToDemand, ConcessionType::EaseMeasure,]
);
tags!(
    agreement_form_tag,
    agreement_form_of,
    AgreementForm,
    [AgreementForm::JointStatement, AgreementForm::SignedDeal,]
);
tags!(
    measure_action_tag,
    measure_action_of,
    MeasureAction,
    [MeasureAction::Impose, MeasureAction::Ease]
);
tags!(
    tone_tag,
    tone_of,
    Tone,
    [Tone::Neutral, Tone::Optimistic, Tone::Pessimistic]
);
tags!(
    accusation_form_tag,
    accusation_form_of,
    AccusationForm,
    [
        AccusationForm::Criticize,
        AccusationForm::Accuse,
        AccusationForm::Complain,
        AccusationForm::LegalAction,
    ]
);
tags!(
    talks_format_tag,
    talks_format_of,
    TalksFormat,
    [
        TalksFormat::Negotiation,
        TalksFormat::Consultation,
        TalksFormat::Phone,
        TalksFormat::ThirdLocation,
    ]
);
tags!(
    party_kind_tag,
    party_kind_of,
    PartyKind,
    [PartyKind::State, PartyKind::Organization, PartyKind::Other]
);

fn encode_payload(w: &mut Out<'_>, payload: &Payload) {
    match payload {
        Payload::Offer(o) => {
            w.str(&o.terms);
            w.list(&o.conditions, |w, c| w.str(c));
            w.option(o.reaffirms.as_ref(), Out::id);
        }
        Payload::Demand(d) => {
            w.str(&d.terms);
            w.u8(demand_type_tag(d.demand_type));
            w.option(d.deadline.as_ref(), Out::valid_time);
            w.option(d.reaffirms.as_ref(), Out::id);
        }
        Payload::Threat(t) => {
            w.str(&t.terms);
            w.u8(instrument_tag(t.instrument));
            w.option(t.condition.as_deref(), |w, s| w.str(s));
            w.option(t.deadline.as_ref(), Out::valid_time);
        }
        Payload::Refusal(r) => {
            w.str(&r.terms);
            w.u8(refusal_of_tag(r.of));
            w.list(&r.refuses, Out::id);
        }
        Payload::Concession(c) => {
            w.str(&c.terms);
            w.u8(concession_type_tag(c.concession_type));
            w.list(&c.answers, Out::id);
        }
        Payload::Agreement(a) => {
            w.str(&a.terms);
            w.u8(agreement_form_tag(a.form));
        }
        Payload::Measure(m) => {
            w.str(&m.terms);
            w.u8(instrument_tag(m.instrument));
            w.u8(measure_action_tag(m.action));
            w.valid_time(&m.announced);
            w.option(m.effective.as_ref(), Out::valid_time);
            w.option(m.rate_percent.as_ref(), |w, r| w.f64(*r));
        }
        Payload::Statement(s) => {
            w.str(&s.claim);
            w.u8(tone_tag(s.tone));
        }
        Payload::Accusation(a) => {
            w.str(&a.claim);
            w.u8(accusation_form_tag(a.form));
        }
        Payload::Seminar(s) => {
            w.str(s.host.as_str());
            w.u32(s.days);
            w.list(&s.participants, |w, p| w.str(p));
            w.option(s.topic.as_deref(), |w, t| w.str(t));
        }
        Payload::Visit(v) => {
            w.str(v.visitor.as_str());
            w.str(v.host.as_str());
            w.str(&v.place);
            w.str(&v.purpose);
        }
        Payload::Talks(t) => {
            w.list(&t.participants, |w, p| w.str(p.as_str()));
            w.str(&t.place);
            w.u8(talks_format_tag(t.format));
            w.option(t.rounds.as_ref(), |w, r| w.u32(*r));
        }
        Payload::Retraction(r) => {
            w.id(&r.retracts);
            w.str(&r.reason);
        }
        Payload::Correction(c) => {
            w.id(&c.corrects);
            w.str(&c.reason);
            let ch = &c.changes;
            w.option(ch.occurred.as_ref(), |w, o| {
                w.valid_time(&o.start);
                w.option(o.end.as_ref(), Out::valid_time);
                w.u8(modality_tag(o.modality));
            });
            w.option(ch.actors.as_deref(), Out::participants);
            w.option(ch.targets.as_deref(), Out::participants);
            w.option(ch.issues.as_deref(), |w, l| {
                w.list(l, |w, i| w.str(i.as_str()))
            });
            w.option(ch.amounts.as_deref(), |w, l| w.list(l, Out::amount));
            w.option(ch.location.as_deref(), |w, s| w.str(s));
            w.option(ch.summary.as_deref(), |w, s| w.str(s));
            w.option(ch.sources.as_deref(), |w, l| w.list(l, Out::source));
            w.option(ch.confidence.as_ref(), |w, c| w.f64(*c));
            w.option(ch.payload.as_ref(), |w, p| {
                w.u8(p.kind().tag());
                encode_payload(w, p);
            });
        }
        Payload::PartyRegistered(p) => {
            w.str(p.code.as_str());
            w.str(&p.name);
            w.u8(party_kind_tag(p.party_kind));
        }
        Payload::ActorRegistered(a) => {
            w.str(a.slug.as_str());
            w.str(&a.name);
            w.str(a.party.as_str());
            w.str(&a.role);
            w.option(a.from.as_ref(), Out::valid_time);
            w.option(a.to.as_ref(), Out::valid_time);
        }
        Payload::IssueRegistered(i) => {
            w.str(i.slug.as_str());
            w.str(&i.title);
            w.option(i.description.as_deref(), |w, s| w.str(s));
        }
        Payload::TimelineRegistered(t) => {
            w.str(t.slug.as_str());
            w.str(&t.title);
            w.option(t.description.as_deref(), |w, s| w.str(s));
        }
    }
}

fn decode_payload(r: &mut In<'_>, kind: Kind) -> Result<Payload, RecordError> {
    Ok(match kind {
        Kind::Offer => Payload::Offer(Offer {
            terms: r.string()?,
            conditions: r.list(In::string)?,
            reaffirms: r.option(In::id)?,
        }),
        Kind::Demand => Payload::Demand(Demand {
            terms: r.string()?,
            demand_type: demand_type_of(r.u8()?)?,
            deadline: r.option(In::valid_time)?,
            reaffirms: r.option(In::id)?,
        }),
        Kind::Threat => Payload::Threat(Threat {
            terms: r.string()?,
            instrument: instrument_of(r.u8()?)?,
            condition: r.option(In::string)?,
            deadline: r.option(In::valid_time)?,
        }),
        Kind::Refusal => Payload::Refusal(Refusal {
            terms: r.string()?,
            of: refusal_of_of(r.u8()?)?,
            refuses: r.list(In::id)?,
        }),
        Kind::Concession => Payload::Concession(Concession {
            terms: r.string()?,
            concession_type: concession_type_of(r.u8()?)?,
            answers: r.list(In::id)?,
        }),
        Kind::Agreement => Payload::Agreement(Agreement {
            terms: r.string()?,
            form: agreement_form_of(r.u8()?)?,
        }),
        Kind::Measure => Payload::Measure(Measure {
            terms: r.string()?,
            instrument: instrument_of(r.u8()?)?,
            action: measure_action_of(r.u8()?)?,
            announced: r.valid_time()?,
            effective: r.option(In::valid_time)?,
            rate_percent: r.option(In::f64)?,
        }),
        Kind::Statement => Payload::Statement(Statement {
            claim: r.string()?,
            tone: tone_of(r.u8()?)?,
        }),
        Kind::Accusation => Payload::Accusation(Accusation {
            claim: r.string()?,
            form: accusation_form_of(r.u8()?)?,
        }),
        Kind::Seminar => Payload::Seminar(Seminar {
            host: r.party()?,
            days: r.u32()?,
            participants: r.list(In::string)?,
            topic: r.option(In::string)?,
        }),
        Kind::Visit => Payload::Visit(Visit {
            visitor: r.party()?,
            host: r.party()?,
            place: r.string()?,
            purpose: r.string()?,
        }),
        Kind::Talks => Payload::Talks(Talks {
            participants: r.list(In::party)?,
            place: r.string()?,
            format: talks_format_of(r.u8()?)?,
            rounds: r.option(In::u32)?,
        }),
        Kind::Retraction => Payload::Retraction(Retraction {
            retracts: r.id()?,
            reason: r.string()?,
        }),
        Kind::Correction => {
            let corrects = r.id()?;
            let reason = r.string()?;
            let changes = CorrectionChanges {
                occurred: r.option(In::occurred)?,
                actors: r.option(In::participants)?,
                targets: r.option(In::participants)?,
                issues: r.option(|r| {
                    r.list(|r| IssueSlug::new(r.str()?).map_err(|e| malformed(&e.to_string())))
                })?,
                amounts: r.option(|r| r.list(In::amount))?,
                location: r.option(In::string)?,
                summary: r.option(In::string)?,
                sources: r.option(|r| r.list(In::source))?,
                confidence: r.option(In::f64)?,
                payload: r.option(|r| {
                    let kind = Kind::from_tag(r.u8()?).ok_or_else(|| malformed("unknown kind"))?;
                    decode_payload(r, kind)
                })?,
            };
            Payload::Correction(Box::new(Correction {
                corrects,
                reason,
                changes,
            }))
        }
        Kind::PartyRegistered => Payload::PartyRegistered(PartyRegistered {
            code: r.party()?,
            name: r.string()?,
            party_kind: party_kind_of(r.u8()?)?,
        }),
        Kind::ActorRegistered => Payload::ActorRegistered(ActorRegistered {
            slug: ActorSlug::new(r.str()?).map_err(|e| malformed(&e.to_string()))?,
            name: r.string()?,
            party: r.party()?,
            role: r.string()?,
            from: r.option(In::valid_time)?,
            to: r.option(In::valid_time)?,
        }),
        Kind::IssueRegistered => Payload::IssueRegistered(IssueRegistered {
            slug: IssueSlug::new(r.str()?).map_err(|e| malformed(&e.to_string()))?,
            title: r.string()?,
            description: r.option(In::string)?,
        }),
        Kind::TimelineRegistered => Payload::TimelineRegistered(TimelineRegistered {
            slug: TimelineSlug::new(r.str()?).map_err(|e| malformed(&e.to_string()))?,
            title: r.string()?,
            description: r.option(In::string)?,
        }),
    })
}

/// The writing side.
struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    fn len(&mut self, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn id(&mut self, id: &EventId) {
        self.0.extend_from_slice(id.as_bytes());
    }

    fn option<T: ?Sized>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                write(self, v);
            }
        }
    }

    fn list<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        for item in items {
            write(self, item);
        }
    }

    fn participants(&mut self, list: &[Participant]) {
        self.list(list, |w, p| {
            w.str(p.party.as_str());
            w.option(p.actor.as_ref(), |w, a| w.str(a.as_str()));
        });
    }

    fn amount(&mut self, a: &Amount) {
        self.f64(a.value);
        self.str(&a.unit);
        self.str(&a.measures);
    }

    fn source(&mut self, s: &Source) {
        self.str(&s.publication);
        self.option(s.title.as_deref(), |w, t| w.str(t));
        self.option(s.url.as_deref(), |w, u| w.str(u));
        self.option(s.published.as_ref(), Out::valid_time);
        self.u8(attribution_tag(s.attribution));
        self.option(s.quote.as_deref(), |w, q| w.str(q));
    }

    fn valid_time(&mut self, t: &ValidTime) {
        match *t {
            ValidTime::Year(y) => {
                self.u8(0);
                self.0.extend_from_slice(&y.to_le_bytes());
            }
            ValidTime::Month(y, m) => {
                self.u8(1);
                self.0.extend_from_slice(&y.to_le_bytes());
                self.u8(m as u8);
            }
            ValidTime::Day(d) => {
                self.u8(2);
                self.0.extend_from_slice(&d.to_julian_day().to_le_bytes());
            }
            ValidTime::Instant(t) => {
                self.u8(3);
                self.0.extend_from_slice(&t.unix_timestamp().to_le_bytes());
                self.u32(t.nanosecond());
                self.0
                    .extend_from_slice(&t.offset().whole_seconds().to_le_bytes());
            }
        }
    }
}

/// The reading side: every read checks that the bytes are there and mean something.
struct In<'a> {
    bytes: &'a [u8],
}

impl<'a> In<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.bytes.len() {
            return Err(malformed("cut short"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| malformed("cut short"))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn end(&self) -> Result<(), RecordError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed("has bytes past its end"))
        }
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, RecordError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }

    /// A LEB128 length, in its shortest form only (so that it has one encoding).
    fn len(&mut self) -> Result<usize, RecordError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(malformed("a length is not in its shortest form"));
                }
                return usize::try_from(n).map_err(|_| malformed("a length is too large"));
            }
        }
        Err(malformed("a length is too long"))
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| malformed("a string is not UTF-8"))
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.str().map(str::to_owned)
    }

    fn party(&mut self) -> Result<PartyCode, RecordError> {
        PartyCode::new(self.str()?).map_err(|e| malformed(&e.to_string()))
    }

    fn id(&mut self) -> Result<EventId, RecordError> {
        Ok(EventId::from_bytes(self.array()?))
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Option<T>, RecordError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(malformed("an optional field has a bad flag")),
        }
    }

    fn list<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Vec<T>, RecordError> {
        let n = self.len()?;
        // Each item takes a byte at least: a count past what is left is damage, not a reason to
        // reserve memory.
        if n > self.bytes.len() {
            return Err(malformed("a list is longer than the record"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }

    fn occurred(&mut self) -> Result<Occurred, RecordError> {
        Ok(Occurred {
            start: self.valid_time()?,
            end: self.option(In::valid_time)?,
            modality: match self.u8()? {
                0 => Modality::Occurred,
                1 => Modality::Planned,
                2 => Modality::Hypothetical,
                3 => Modality::Denied,
                _ => return Err(malformed("unknown modality")),
            },
        })
    }

    fn participants(&mut self) -> Result<Vec<Participant>, RecordError> {
        self.list(|r| {
            Ok(Participant {
                party: r.party()?,
                actor: r
                    .option(|r| ActorSlug::new(r.str()?).map_err(|e| malformed(&e.to_string())))?,
            })
        })
    }

    /// A list of participants, checked and kept as bytes for [`EventView`].
    fn participants_raw(&mut self) -> Result<Participants<'a>, RecordError> {
        let count = self.len()?;
        let items = self.bytes;
        for _ in 0..count {
            self.str()?;
            self.option(In::str)?;
        }
        let used = items.len() - self.bytes.len();
        Ok(Participants {
            count,
            bytes: &items[..used],
        })
    }

    fn strings_raw(&mut self) -> Result<Strings<'a>, RecordError> {
        let count = self.len()?;
        let items = self.bytes;
        for _ in 0..count {
            self.str()?;
        }
        let used = items.len() - self.bytes.len();
        Ok(Strings {
            count,
            bytes: &items[..used],
        })
    }

    fn amount(&mut self) -> Result<Amount, RecordError> {
        Ok(Amount {
            value: self.f64()?,
            unit: self.string()?,
            measures: self.string()?,
        })
    }

    fn source(&mut self) -> Result<Source, RecordError> {
        Ok(Source {
            publication: self.string()?,
            title: self.option(In::string)?,
            url: self.option(In::string)?,
            published: self.option(In::valid_time)?,
            attribution: match self.u8()? {
                0 => Attribution::Named,
                1 => Attribution::Anonymous,
                2 => Attribution::Official,
                _ => return Err(malformed("unknown attribution")),
            },
            quote: self.option(In::string)?,
        })
    }

    fn valid_time(&mut self) -> Result<ValidTime, RecordError> {
        let bad = || malformed("a valid time is out of range");
        Ok(match self.u8()? {
            0 => ValidTime::Year(self.i32()?),
            1 => {
                let year = self.i32()?;
                let month = Month::try_from(self.u8()?).map_err(|_| bad())?;
                ValidTime::Month(year, month)
            }
            2 => ValidTime::Day(Date::from_julian_day(self.i32()?).map_err(|_| bad())?),
            3 => {
                let seconds = self.i64()?;
                let nanos = self.u32()?;
                let offset = self.i32()?;
                if nanos >= 1_000_000_000 {
                    return Err(bad());
                }
                let offset = UtcOffset::from_whole_seconds(offset).map_err(|_| bad())?;
                let at = OffsetDateTime::from_unix_timestamp(seconds)
                    .map_err(|_| bad())?
                    .replace_nanosecond(nanos)
                    .map_err(|_| bad())?
                    .checked_to_offset(offset)
                    .ok_or_else(bad)?;
                // Only what RFC 3339 can write: whole-minute offsets, four-digit years.
                if offset.seconds_past_minute() != 0 || !(0..=9999).contains(&at.year()) {
                    return Err(bad());
                }
                ValidTime::Instant(at)
            }
            _ => return Err(malformed("unknown precision")),
        })
    }
}
