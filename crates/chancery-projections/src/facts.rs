//! Facts: the part of each event that projections evaluate, kept compact in memory and in the
//! checkpoint. Parties, issues and timelines are interned as small numbers.

use chancery_domain::codes::{QuadClass, code_key_of, codes, codes_for_key};
use chancery_domain::payload::{MeasureAction, Payload};
use chancery_domain::{
    EventId, EventView, Kind, Modality, NewEvent, Position, Precision, RecordError, Timestamp,
};

use crate::intern::Names;
use crate::lists::Decoder;

/// Where a party stands on an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stance {
    Demand,
    Offer,
    ConditionalOffer,
    Concession,
    Refusal,
    Threat,
    Measure,
    Agreed,
    Statement,
    Withdrawn,
}

impl Stance {
    pub const ALL: [Stance; 10] = [
        Stance::Demand,
        Stance::Offer,
        Stance::ConditionalOffer,
        Stance::Concession,
        Stance::Refusal,
        Stance::Threat,
        Stance::Measure,
        Stance::Agreed,
        Stance::Statement,
        Stance::Withdrawn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stance::Demand => "DEMAND",
            Stance::Offer => "OFFER",
            Stance::ConditionalOffer => "CONDITIONAL_OFFER",
            Stance::Concession => "CONCESSION",
            Stance::Refusal => "REFUSAL",
            Stance::Threat => "THREAT",
            Stance::Measure => "MEASURE",
            Stance::Agreed => "AGREED",
            Stance::Statement => "STATEMENT",
            Stance::Withdrawn => "WITHDRAWN",
        }
    }
}

/// How an event sets its parties' stance on its issues. See [`crate::rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanceRule {
    /// Sets no stance: seminars, visits, talks, accusations.
    None,
    Fixed(Stance),
    /// A measure imposed: a threat until it takes effect, then a measure.
    Impose {
        effective: i64,
    },
    /// A measure eased or lifted: the stance is withdrawn once it takes effect.
    Ease {
        effective: i64,
    },
}

impl StanceRule {
    /// Writes the rule for a checkpoint: a tag, then the stance or the effective date.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            StanceRule::None => out.push(0),
            StanceRule::Fixed(s) => out.extend_from_slice(&[1, s as u8]),
            StanceRule::Impose { effective } => {
                out.push(2);
                out.extend_from_slice(&effective.to_le_bytes());
            }
            StanceRule::Ease { effective } => {
                out.push(3);
                out.extend_from_slice(&effective.to_le_bytes());
            }
        }
    }

    /// The bytes [`StanceRule::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            StanceRule::None => 1,
            StanceRule::Fixed(_) => 2,
            StanceRule::Impose { .. } | StanceRule::Ease { .. } => 9,
        }
    }

    /// Reads back what [`StanceRule::encode`] writes; `None` if the bytes are damaged.
    pub fn decode(d: &mut Decoder<'_>) -> Option<StanceRule> {
        Some(match d.u8()? {
            0 => StanceRule::None,
            1 => StanceRule::Fixed(*Stance::ALL.get(usize::from(d.u8()?))?),
            2 => StanceRule::Impose {
                effective: d.i64()?,
            },
            3 => StanceRule::Ease {
                effective: d.i64()?,
            },
            _ => return None,
        })
    }
}

/// One version of an act: as first recorded, or as a correction left it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// The position from which this version is known: the event's own, or its correction's.
    pub known_from: Position,
    pub timeline: u32,
    pub kind: Kind,
    pub modality: Modality,
    /// The start of valid time, in Unix seconds (the earliest instant it may denote).
    pub valid: i64,
    pub precision: Precision,
    pub rule: StanceRule,
    pub quad: Option<QuadClass>,
    pub goldstein: f64,
    pub actors: Box<[u32]>,
    pub targets: Box<[u32]>,
    pub issues: Box<[u32]>,
}

impl Fact {
    /// The facts of an act (a diplomatic event, possibly as corrected). `None` for
    /// registrations, retractions and corrections, which are not acts.
    pub fn of(event: &NewEvent, known_from: Position, names: &mut Names) -> Option<Fact> {
        if !event.kind().is_diplomatic() {
            return None;
        }
        let occurred = event.occurred.as_ref()?;
        let codes = codes(event);
        let mut actors: Vec<u32> = Vec::new();
        for p in &event.actors {
            let id = names.party(p.party.as_str());
            if !actors.contains(&id) {
                actors.push(id);
            }
        }
        let mut targets: Vec<u32> = Vec::new();
        for p in &event.targets {
            let id = names.party(p.party.as_str());
            if !targets.contains(&id) && !actors.contains(&id) {
                targets.push(id);
            }
        }
        Some(Fact {
            known_from,
            timeline: names.timeline(event.timeline.as_str()),
            kind: event.kind(),
            modality: occurred.modality,
            valid: occurred.start.earliest(),
            precision: occurred.start.precision(),
            rule: stance_rule(&event.payload, occurred.start.earliest()),
            quad: codes.map(|c| c.quad_class),
            goldstein: codes.map_or(0.0, |c| c.goldstein),
            actors: actors.into(),
            targets: targets.into(),
            issues: event
                .issues
                .iter()
                .map(|i| names.issue(i.as_str()))
                .collect(),
        })
    }
}

impl Fact {
    /// [`Fact::of`] from a record's terms, decoding no more than its payload.
    pub fn of_view(
        view: &EventView<'_>,
        known_from: Position,
        names: &mut Names,
    ) -> Result<Option<Fact>, RecordError> {
        if !view.kind.is_diplomatic() {
            return Ok(None);
        }
        let Some(occurred) = view.occurred.as_ref() else {
            return Ok(None);
        };
        let payload = view.payload()?;
        let codes = code_key_of(&payload, &|party| view.actors().any(|(a, _)| a == party))
            .and_then(codes_for_key);
        let mut actors: Vec<u32> = Vec::new();
        for (party, _) in view.actors() {
            let id = names.party(party);
            if !actors.contains(&id) {
                actors.push(id);
            }
        }
        let mut targets: Vec<u32> = Vec::new();
        for (party, _) in view.targets() {
            let id = names.party(party);
            if !targets.contains(&id) && !actors.contains(&id) {
                targets.push(id);
            }
        }
        let valid = occurred.start.earliest();
        Ok(Some(Fact {
            known_from,
            timeline: names.timeline(view.timeline),
            kind: view.kind,
            modality: occurred.modality,
            valid,
            precision: occurred.start.precision(),
            rule: stance_rule(&payload, valid),
            quad: codes.map(|c| c.quad_class),
            goldstein: codes.map_or(0.0, |c| c.goldstein),
            actors: actors.into(),
            targets: targets.into(),
            issues: view.issues().map(|i| names.issue(i)).collect(),
        }))
    }
}

fn stance_rule(payload: &Payload, valid: i64) -> StanceRule {
    match payload {
        Payload::Offer(o) if o.conditions.is_empty() => StanceRule::Fixed(Stance::Offer),
        Payload::Offer(_) => StanceRule::Fixed(Stance::ConditionalOffer),
        Payload::Demand(_) => StanceRule::Fixed(Stance::Demand),
        Payload::Refusal(_) => StanceRule::Fixed(Stance::Refusal),
        Payload::Concession(_) => StanceRule::Fixed(Stance::Concession),
        Payload::Threat(_) => StanceRule::Fixed(Stance::Threat),
        Payload::Agreement(_) => StanceRule::Fixed(Stance::Agreed),
        Payload::Statement(_) => StanceRule::Fixed(Stance::Statement),
        Payload::Measure(m) => {
            let effective = m
                .effective
                .as_ref()
                .map_or(valid.max(m.announced.earliest()), |e| e.earliest());
            match m.action {
                MeasureAction::Impose => StanceRule::Impose { effective },
                MeasureAction::Ease => StanceRule::Ease { effective },
            }
        }
        _ => StanceRule::None,
    }
}

/// What the projections keep of each position of the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Registrations, retractions and corrections: only when they were recorded.
    Bookkeeping {
        recorded_at: Timestamp,
    },
    Act(Act),
}

impl Entry {
    pub fn recorded_at(&self) -> Timestamp {
        match self {
            Entry::Bookkeeping { recorded_at } => *recorded_at,
            Entry::Act(a) => a.recorded_at,
        }
    }
}

/// An act and every version of it the log holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    pub id: EventId,
    pub recorded_at: Timestamp,
    /// Oldest first; each ends where the next begins.
    pub versions: Vec<Fact>,
    /// The position of the retraction that withdrew it, if any.
    pub retracted_at: Option<Position>,
}

impl Act {
    /// The positions `[from, until)` during which version `v` is the known one.
    pub fn known_interval(&self, v: usize) -> (Position, Position) {
        let from = self.versions.get(v).map_or(Position::MAX, |f| f.known_from);
        let until = self
            .versions
            .get(v + 1)
            .map(|f| f.known_from)
            .or(self.retracted_at)
            .unwrap_or(Position::MAX);
        (from, until)
    }
}

// Binary encoding of entries for the checkpoint: little-endian, versioned by the projection
// version (a change here is a change of PROJECTION_VERSION, which rebuilds).

/// A precision's tag in the checkpoint.
pub(crate) fn precision_tag(p: Precision) -> u8 {
    match p {
        Precision::Year => 0,
        Precision::Month => 1,
        Precision::Day => 2,
        Precision::Instant => 3,
    }
}

/// Reads back a precision's tag; `None` if it is damaged.
pub(crate) fn precision_of(tag: u8) -> Option<Precision> {
    Some(match tag {
        0 => Precision::Year,
        1 => Precision::Month,
        2 => Precision::Day,
        3 => Precision::Instant,
        _ => return None,
    })
}

pub fn encode(entry: &Entry, out: &mut Vec<u8>) {
    match entry {
        Entry::Bookkeeping { recorded_at } => {
            out.push(0);
            out.extend_from_slice(&recorded_at.unix_micros().to_le_bytes());
        }
        Entry::Act(a) => {
            out.push(1);
            out.extend_from_slice(&a.recorded_at.unix_micros().to_le_bytes());
            out.extend_from_slice(a.id.as_bytes());
            out.extend_from_slice(&a.retracted_at.unwrap_or(0).to_le_bytes());
            out.push(u8::try_from(a.versions.len()).unwrap_or(u8::MAX));
            for f in a.versions.iter().take(usize::from(u8::MAX)) {
                out.extend_from_slice(&f.known_from.to_le_bytes());
                out.extend_from_slice(&f.timeline.to_le_bytes());
                out.push(f.kind.tag());
                out.push(f.modality as u8);
                out.extend_from_slice(&f.valid.to_le_bytes());
                out.push(precision_tag(f.precision));
                f.rule.encode(out);
                out.push(f.quad.map_or(0, QuadClass::number));
                out.extend_from_slice(&f.goldstein.to_le_bytes());
                for list in [&f.actors, &f.targets, &f.issues] {
                    out.push(u8::try_from(list.len()).unwrap_or(u8::MAX));
                    for x in list.iter().take(usize::from(u8::MAX)) {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// What the log's readers ask of an act most (whether to show it, and as which version) without
/// its facts: read from a stored entry with no allocation (see [`Decoder::act_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActHead {
    /// The version known at the position asked about; `None` if none was known yet.
    pub shown: Option<usize>,
    /// Whether a retraction known at that position withdrew the act.
    pub retracted: bool,
}

impl Act {
    /// The act's head as known at `known_at` (see [`ActHead`]).
    pub fn head(&self, known_at: Position) -> ActHead {
        ActHead {
            shown: self.versions.iter().rposition(|f| f.known_from <= known_at),
            retracted: self.retracted_at.is_some_and(|r| r <= known_at),
        }
    }
}

/// Bytes of a fact after its `known_from`, up to its lists: timeline, kind, modality, valid
/// time, precision.
const FACT_FIXED: usize = 4 + 1 + 1 + 8 + 1;
/// Bytes of a fact after its stance rule, up to its lists: quad class, Goldstein.
const FACT_CODES: usize = 1 + 8;

/// Reads entries back; `None` if the bytes are damaged.
impl Decoder<'_> {
    fn list(&mut self) -> Option<Box<[u32]>> {
        let n = self.u8()?;
        (0..n).map(|_| self.u32()).collect()
    }

    fn skip_list(&mut self) -> Option<()> {
        let n = self.u8()?;
        self.skip(4 * usize::from(n))
    }

    /// Passes over one entry, checking only that its parts are where they should be.
    pub fn skip_entry(&mut self) -> Option<()> {
        let tag = self.u8()?;
        self.skip(8)?;
        if tag == 0 {
            return Some(());
        }
        self.skip(16 + 8)?;
        for _ in 0..self.u8()? {
            self.skip(8)?;
            self.skip_fact()?;
        }
        Some(())
    }

    /// Passes over a fact from past its `known_from` to its end.
    fn skip_fact(&mut self) -> Option<()> {
        self.skip(FACT_FIXED)?;
        StanceRule::decode(self)?;
        self.skip(FACT_CODES)?;
        for _ in 0..3 {
            self.skip_list()?;
        }
        Some(())
    }

    /// The id of the act an entry holds, read no further: `Some(None)` for a bookkeeping entry.
    pub fn act_id(&mut self) -> Option<Option<EventId>> {
        let tag = self.u8()?;
        self.skip(8)?;
        if tag == 0 {
            return Some(None);
        }
        Some(Some(EventId::from_bytes(self.take::<16>()?)))
    }

    /// The head of the act an entry holds, as known at `known_at`, its facts passed over:
    /// `Some(None)` for a bookkeeping entry.
    pub fn act_head(&mut self, known_at: Position) -> Option<Option<ActHead>> {
        let tag = self.u8()?;
        self.skip(8)?;
        if tag == 0 {
            return Some(None);
        }
        self.skip(16)?;
        let retracted_at = self.u64()?;
        let mut shown = None;
        for v in 0..usize::from(self.u8()?) {
            if self.u64()? <= known_at {
                shown = Some(v);
            }
            self.skip_fact()?;
        }
        Some(Some(ActHead {
            shown,
            retracted: retracted_at != 0 && retracted_at <= known_at,
        }))
    }

    pub fn entry(&mut self) -> Option<Entry> {
        let tag = self.u8()?;
        let recorded_at = Timestamp::from_unix_micros(self.i64()?);
        if tag == 0 {
            return Some(Entry::Bookkeeping { recorded_at });
        }
        let id = EventId::from_bytes(self.take::<16>()?);
        let retracted_at = Some(self.u64()?).filter(|p| *p != 0);
        let n = self.u8()?;
        let mut versions = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let known_from = self.u64()?;
            let timeline = self.u32()?;
            let kind = Kind::from_tag(self.u8()?)?;
            let modality = match self.u8()? {
                0 => Modality::Occurred,
                1 => Modality::Planned,
                2 => Modality::Hypothetical,
                3 => Modality::Denied,
                _ => return None,
            };
            let valid = self.i64()?;
            let precision = precision_of(self.u8()?)?;
            let rule = StanceRule::decode(self)?;
            let quad = match self.u8()? {
                0 => None,
                n => Some(*QuadClass::ALL.get(usize::from(n) - 1)?),
            };
            let goldstein = f64::from_le_bytes(self.take()?);
            let actors = self.list()?;
            let targets = self.list()?;
            let issues = self.list()?;
            versions.push(Fact {
                known_from,
                timeline,
                kind,
                modality,
                valid,
                precision,
                rule,
                quad,
                goldstein,
                actors,
                targets,
                issues,
            });
        }
        Some(Entry::Act(Act {
            id,
            recorded_at,
            versions,
            retracted_at,
        }))
    }
}
