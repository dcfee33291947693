//! The stored form of a record: a fixed header that readers take without decoding anything
//! (position, version, transaction time, both hashes, kind, id), then the envelope's terms in the
//! order filters and projections read them (timeline, valid time, actors, targets, issues, the
//! payload behind its length), then the rest of the envelope, and last the fields a record has
//! only sometimes, each behind its marker byte, in the markers' order: who recorded it, when it is
//! known, then how a coded dataset coded it, for an imported event (a record with neither ends
//! after its confidence, as records always did). Every field has one encoding, so two different byte
//! strings never decode to the same record: a changed byte either fails to decode or changes the
//! canonical JSON whose hash the record carries.
//!
//! Little-endian fixed-width numbers, LEB128 lengths and counts, UTF-8 strings behind their
//! length, floats as their IEEE bits (exact, so the canonical JSON of a decoded record is the one
//! that was hashed).

use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::dataset::{Dataset, DatasetCoding};
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
    encode_header(header, out);
    encode_terms(event, out);
}

/// Writes the fixed header of a record's stored form.
pub(crate) fn encode_header(header: &Header, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + at::TERMS, 0);
    write_header(header, &mut out[start..]);
}

/// Writes the fixed header into the first [`at::TERMS`] bytes of `out`, which holds at least as
/// many: a prepared event's stored form keeps room for it in front of its terms.
pub(crate) fn write_header(header: &Header, out: &mut [u8]) {
    // Both callers make the room first; a short buffer is a bug, not input.
    debug_assert!(out.len() >= at::TERMS, "no room for a record's header");
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(place) = out.get_mut(at..at + bytes.len()) {
            place.copy_from_slice(bytes);
        }
    };
    put(at::FORM, &[FORM_BINARY]);
    put(at::SCHEMA, &[header.schema]);
    put(at::POSITION, &header.position.to_le_bytes());
    put(at::VERSION, &header.version.to_le_bytes());
    put(
        at::RECORDED_AT,
        &header.recorded_at.unix_micros().to_le_bytes(),
    );
    put(at::PREV_HASH, &header.prev_hash.0);
    put(at::HASH, &header.hash.0);
    put(at::KIND, &[header.kind.tag()]);
    put(at::ID, header.id.as_bytes());
}

/// Writes the variable part of a record's stored form, after its header: the event's terms and
/// the rest of its envelope. It depends on the event alone, so it can be written before the
/// record's place in the log is known.
pub(crate) fn encode_terms(event: &NewEvent, out: &mut Vec<u8>) {
    let w = &mut Out(out);
    w.write(&event.timeline);
    w.write(&event.occurred);
    w.write(&event.actors);
    w.write(&event.targets);
    w.write(&event.issues);
    // The payload goes behind its length, so that a reader of the terms can skip it.
    let mut payload = Vec::with_capacity(64);
    write_payload(&mut Out(&mut payload), &event.payload);
    w.len(payload.len());
    w.0.extend_from_slice(&payload);
    w.write(&event.amounts);
    w.write(&event.location);
    w.write(&event.summary);
    w.write(&event.sources);
    w.write(&event.confidence);
    // Nothing when unknown, so that an unknown recorder has one encoding: the end of the record.
    if let Some(name) = &event.recorded_by {
        w.u8(RECORDED_BY);
        w.str(name);
    }
    if let Some(coding) = &event.dataset {
        w.u8(DATASET);
        coding.write(w);
    }
}

/// The marker of the name an event is recorded by, after the envelope.
const RECORDED_BY: u8 = 1;
/// The marker of a dataset's coding, after the name if there is one.
const DATASET: u8 = 2;

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
    actors: RawList<'a>,
    targets: RawList<'a>,
    issues: RawList<'a>,
    payload: &'a [u8],
}

impl<'a> EventView<'a> {
    pub(crate) fn read(bytes: &'a [u8]) -> Result<EventView<'a>, RecordError> {
        let head = header(bytes)?;
        let mut r = In::new(&bytes[at::TERMS..]);
        Ok(EventView {
            kind: head.kind,
            id: head.id,
            timeline: r.str()?,
            occurred: r.read()?,
            actors: r.participants_raw()?,
            targets: r.participants_raw()?,
            issues: r.strings_raw()?,
            payload: r.behind_len()?,
        })
    }

    /// The parties acting, with the actor named for each, in order.
    pub fn actors(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        self.actors.participants()
    }

    pub fn targets(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        self.targets.participants()
    }

    pub fn issues(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.issues.strings()
    }

    /// The kind's payload, decoded.
    pub fn payload(&self) -> Result<Payload, RecordError> {
        decode_payload(self.payload, self.kind)
    }
}

/// A list of participants or strings as stored: checked when the view was read, so that every
/// item decodes, and decoded as it is walked.
#[derive(Debug, Clone, Copy)]
struct RawList<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> RawList<'a> {
    fn participants(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + '_ {
        let mut r = In::new(self.bytes);
        (0..self.count).map_while(move |_| {
            let party = r.str().ok()?;
            let actor = r.option(In::str).ok()?;
            Some((party, actor))
        })
    }

    fn strings(&self) -> impl Iterator<Item = &'a str> + '_ {
        let mut r = In::new(self.bytes);
        (0..self.count).map_while(move |_| r.str().ok())
    }
}

/// Decodes a whole stored record: its header and its event.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, NewEvent), RecordError> {
    let head = header(bytes)?;
    let mut r = In::new(&bytes[at::TERMS..]);
    let event = NewEvent {
        id: head.id,
        timeline: r.read()?,
        occurred: r.read()?,
        actors: r.read()?,
        targets: r.read()?,
        issues: r.read()?,
        payload: decode_payload(r.behind_len()?, head.kind)?,
        amounts: r.read()?,
        location: r.read()?,
        summary: r.read()?,
        sources: r.read()?,
        confidence: r.read()?,
        dataset: None,
        recorded_by: None,
    };
    let (recorded_by, dataset) = r.optional_tail()?;
    let event = NewEvent {
        recorded_by,
        dataset,
        ..event
    };
    r.end()?;
    Ok((head, event))
}

fn malformed(why: &str) -> RecordError {
    RecordError::Malformed(why.to_owned())
}

/// A value with one stored encoding, written by [`Binary::write`] and read back, checked, by
/// [`Binary::read`]. Implemented once per type, so that a field reads as it was written.
trait Binary: Sized {
    fn write(&self, w: &mut Out<'_>);
    fn read(r: &mut In<'_>) -> Result<Self, RecordError>;
}

impl Binary for String {
    fn write(&self, w: &mut Out<'_>) {
        w.str(self);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.str().map(str::to_owned)
    }
}

impl Binary for u32 {
    fn write(&self, w: &mut Out<'_>) {
        w.u32(*self);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.u32()
    }
}

impl Binary for f64 {
    fn write(&self, w: &mut Out<'_>) {
        w.f64(*self);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.f64()
    }
}

impl Binary for DatasetCoding {
    fn write(&self, w: &mut Out<'_>) {
        w.u8(self.dataset.tag());
        w.str(&self.event_id);
        self.cameo.write(w);
        self.plover_type.write(w);
        self.plover_mode.write(w);
        w.option(self.quad_class.as_ref(), |w, q| w.u8(*q));
        self.goldstein.write(w);
        self.intensity.write(w);
        self.tone.write(w);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        let dataset =
            Dataset::from_tag(r.u8()?).ok_or_else(|| malformed("an unknown coded dataset"))?;
        Ok(DatasetCoding {
            dataset,
            event_id: r.read()?,
            cameo: r.read()?,
            plover_type: r.read()?,
            plover_mode: r.read()?,
            quad_class: r.option(In::u8)?,
            goldstein: r.read()?,
            intensity: r.read()?,
            tone: r.read()?,
        })
    }
}

impl Binary for EventId {
    fn write(&self, w: &mut Out<'_>) {
        w.0.extend_from_slice(self.as_bytes());
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        Ok(EventId::from_bytes(r.array()?))
    }
}

impl Binary for ValidTime {
    fn write(&self, w: &mut Out<'_>) {
        w.valid_time(self);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.valid_time()
    }
}

/// An optional value: a flag byte (0 absent, 1 present), then the value.
impl<T: Binary> Binary for Option<T> {
    fn write(&self, w: &mut Out<'_>) {
        w.option(self.as_ref(), |w, v| v.write(w));
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.option(T::read)
    }
}

/// A list: its count, then its items.
impl<T: Binary> Binary for Vec<T> {
    fn write(&self, w: &mut Out<'_>) {
        w.list(self, |w, v| v.write(w));
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        r.list(T::read)
    }
}

impl<T: Binary> Binary for Box<T> {
    fn write(&self, w: &mut Out<'_>) {
        (**self).write(w);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        T::read(r).map(Box::new)
    }
}

/// A payload of any kind, its kind's tag first: the new payload a correction gives.
impl Binary for Payload {
    fn write(&self, w: &mut Out<'_>) {
        w.u8(self.kind().tag());
        write_payload(w, self);
    }
    fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
        let kind = Kind::from_tag(r.u8()?).ok_or_else(|| malformed("unknown kind"))?;
        read_payload(r, kind)
    }
}

/// Codes and slugs are stored as their text, and checked again when read.
macro_rules! binary_validated_string {
    ($($ty:ty),+) => {$(
        impl Binary for $ty {
            fn write(&self, w: &mut Out<'_>) {
                w.str(self.as_str());
            }
            fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
                <$ty>::new(r.str()?).map_err(|e| malformed(&e.to_string()))
            }
        }
    )+};
}

binary_validated_string!(PartyCode, ActorSlug, IssueSlug, TimelineSlug);

/// Small enums are stored as one-byte tags, by their place in one table per enum (so that no
/// enum is ever cast); an unknown tag fails with "unknown <what>".
macro_rules! binary_tags {
    ($ty:ty, [$($variant:path),+ $(,)?]) => {
        binary_tags!($ty, concat!("unknown ", stringify!($ty)), [$($variant),+]);
    };
    ($ty:ty, $unknown:expr, [$($variant:path),+ $(,)?]) => {
        impl Binary for $ty {
            fn write(&self, w: &mut Out<'_>) {
                let all = [$($variant),+];
                let tag = all.iter().position(|x| x == self).and_then(|i| u8::try_from(i).ok());
                w.u8(tag.unwrap_or(u8::MAX));
            }
            fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
                let all = [$($variant),+];
                all.get(usize::from(r.u8()?)).copied().ok_or_else(|| malformed($unknown))
            }
        }
    };
}

binary_tags!(
    Modality,
    "unknown modality",
    [
        Modality::Occurred,
        Modality::Planned,
        Modality::Hypothetical,
        Modality::Denied,
    ]
);
binary_tags!(
    Attribution,
    "unknown attribution",
    [
        Attribution::Named,
        Attribution::Anonymous,
        Attribution::Official,
    ]
);
binary_tags!(
    DemandType,
    [
        DemandType::PolicyChange,
        DemandType::EconomicCooperation,
        DemandType::EaseMeasures,
        DemandType::Meeting,
    ]
);
binary_tags!(
    Instrument,
    [
        Instrument::Tariff,
        Instrument::Sanction,
        Instrument::ExportControl,
        Instrument::HaltNegotiations,
        Instrument::Other,
    ]
);
binary_tags!(RefusalOf, [RefusalOf::ToDiscuss, RefusalOf::ToAccept]);
binary_tags!(
    ConcessionType,
    [ConcessionType::AccedeToDemand, ConcessionType::EaseMeasure]
);
binary_tags!(
    AgreementForm,
    [AgreementForm::JointStatement, AgreementForm::SignedDeal]
);
binary_tags!(MeasureAction, [MeasureAction::Impose, MeasureAction::Ease]);
binary_tags!(Tone, [Tone::Neutral, Tone::Optimistic, Tone::Pessimistic]);
binary_tags!(
    AccusationForm,
    [
        AccusationForm::Criticize,
        AccusationForm::Accuse,
        AccusationForm::Complain,
        AccusationForm::LegalAction,
    ]
);
binary_tags!(
    TalksFormat,
    [
        TalksFormat::Negotiation,
        TalksFormat::Consultation,
        TalksFormat::Phone,
        TalksFormat::ThirdLocation,
    ]
);
binary_tags!(
    PartyKind,
    [PartyKind::State, PartyKind::Organization, PartyKind::Other]
);

/// A struct is stored as its fields, one after another, in the order listed here: one list
/// serves both writing and reading.
macro_rules! binary_struct {
    ($($ty:ident { $($field:ident),+ $(,)? })+) => {$(
        impl Binary for $ty {
            fn write(&self, w: &mut Out<'_>) {
                $(self.$field.write(w);)+
            }
            fn read(r: &mut In<'_>) -> Result<Self, RecordError> {
                Ok($ty { $($field: r.read()?),+ })
            }
        }
    )+};
}

binary_struct! {
    Occurred { start, end, modality }
    Participant { party, actor }
    Amount { value, unit, measures }
    Source { publication, title, url, published, attribution, quote }
    Offer { terms, conditions, reaffirms }
    Demand { terms, demand_type, deadline, reaffirms }
    Threat { terms, instrument, condition, deadline }
    Refusal { terms, of, refuses }
    Concession { terms, concession_type, answers }
    Agreement { terms, form }
    Measure { terms, instrument, action, announced, effective, rate_percent }
    Statement { claim, tone }
    Accusation { claim, form }
    Seminar { host, days, participants, topic }
    Visit { visitor, host, place, purpose }
    Talks { participants, place, format, rounds }
    Retraction { retracts, reason }
    Correction { corrects, reason, changes }
    CorrectionChanges {
        occurred, actors, targets, issues, amounts, location, summary, sources, confidence, payload
    }
    PartyRegistered { code, name, party_kind }
    ActorRegistered { slug, name, party, role, from, to }
    IssueRegistered { slug, title, description }
    TimelineRegistered { slug, title, description }
}

/// Writes a payload's fields; its kind is stored apart (in the header, or before it).
fn write_payload(w: &mut Out<'_>, payload: &Payload) {
    on_payload_body!(payload, body => body.write(w));
}

/// Reads the fields of a payload of the given kind.
fn read_payload(r: &mut In<'_>, kind: Kind) -> Result<Payload, RecordError> {
    Ok(payload_of_kind!(kind, r.read()?))
}

/// Decodes a payload stored behind its length: its bytes must hold exactly one payload.
fn decode_payload(bytes: &[u8], kind: Kind) -> Result<Payload, RecordError> {
    let mut r = In::new(bytes);
    let payload = read_payload(&mut r, kind)?;
    r.end()?;
    Ok(payload)
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

    fn write<T: Binary>(&mut self, value: &T) {
        value.write(self);
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

    fn read<T: Binary>(&mut self) -> Result<T, RecordError> {
        T::read(self)
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

    /// The fields after the envelope: who recorded the event, then a dataset's coding, each
    /// behind its marker and only when present. Markers come in increasing order, so a record
    /// has one encoding; an absent field has no marker of its own, and any other byte is damage.
    fn optional_tail(&mut self) -> Result<(Option<String>, Option<DatasetCoding>), RecordError> {
        let (mut recorded_by, mut dataset) = (None, None);
        let mut last = 0;
        while !self.bytes.is_empty() {
            let marker = self.u8()?;
            if marker <= last {
                return Err(malformed("the markers after the envelope are out of order"));
            }
            last = marker;
            match marker {
                RECORDED_BY => recorded_by = Some(self.str()?.to_owned()),
                DATASET => dataset = Some(DatasetCoding::read(self)?),
                _ => return Err(malformed("a bad marker after the envelope")),
            }
        }
        Ok((recorded_by, dataset))
    }

    /// The bytes stored behind a length (the payload), taken whole.
    fn behind_len(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.len()?;
        self.take(n)
    }

    /// A list of participants, checked and kept as bytes for [`EventView`].
    fn participants_raw(&mut self) -> Result<RawList<'a>, RecordError> {
        self.raw_list(|r| {
            r.str()?;
            r.option(In::str).map(drop)
        })
    }

    /// A list of strings, checked and kept as bytes for [`EventView`].
    fn strings_raw(&mut self) -> Result<RawList<'a>, RecordError> {
        self.raw_list(|r| r.str().map(drop))
    }

    /// A list whose items `check` reads past, kept as the bytes they span.
    fn raw_list(
        &mut self,
        mut check: impl FnMut(&mut Self) -> Result<(), RecordError>,
    ) -> Result<RawList<'a>, RecordError> {
        let count = self.len()?;
        let items = self.bytes;
        for _ in 0..count {
            check(self)?;
        }
        let used = items.len() - self.bytes.len();
        Ok(RawList {
            count,
            bytes: &items[..used],
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
