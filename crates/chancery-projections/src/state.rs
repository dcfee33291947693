//! The projection state, on disk: an entry per log position (`pages`), and lists of slots sorted
//! by valid time (`lists`): one per position (a party on an issue in a timeline), one per pair of
//! parties, and one for the whole chronology. Only the names, the directory of keys and what
//! changed since the last checkpoint are in memory; the rest is read through bounded caches, so
//! memory does not grow with the log.
//!
//! A slot is one version of one act. Its place in a list is its valid time; it carries the log
//! positions during which that version was the known one. That makes every as-of question a
//! walk over one key's list: no replay, and a late report, a retraction or a correction only
//! changes the lists it touches. A position's list also keeps, at the start of each block, the
//! state of the sweep over the slots before it as known now (see `query`): a question about the
//! present log and any valid time reads one block.

use std::collections::{BTreeMap, BTreeSet};

use chancery_domain::codes::QuadClass;
use chancery_domain::{EventId, NewEvent, Position, Precision, RecordedEvent};

use crate::error::ProjectionError;
use crate::facts::{Act, ActHead, Entry, Fact, StanceRule, precision_of, precision_tag};
use crate::intern::Names;
use crate::lists::{Block, BlockKey, Decoder, Fold, Header, Item, Lists};
use crate::pages::Pages;
use crate::query::RunState;
use crate::values::Disk;
use chancery_store::StoreError;

/// A fast hash for the small integer keys of maps (SipHash showed in replay profiles; the keys
/// are interned ids chosen by us, not by an adversary).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// One version of one act, placed by its valid time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub valid: i64,
    pub precision: Precision,
    pub position: Position,
    pub version: u16,
}

/// Bytes of a slot as [`Slot::encode`] writes it: valid time, precision, position, version.
const SLOT_BYTES: usize = 8 + 1 + 8 + 2;

/// Bytes of an i64 that sort as the numbers do.
fn sortable(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

impl Slot {
    /// Where version `version` of the act at `position` sits in valid-time order.
    fn of_version(fact: &Fact, position: Position, version: usize) -> Slot {
        Slot {
            valid: fact.valid,
            precision: fact.precision,
            position,
            version: u16::try_from(version).unwrap_or(u16::MAX),
        }
    }

    pub fn sort_key_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&sortable(self.valid));
        out.push(precision_tag(self.precision));
        out.extend_from_slice(&self.position.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
    }

    /// Writes the slot for a checkpoint (little-endian, unlike its sort key).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.valid.to_le_bytes());
        out.push(precision_tag(self.precision));
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
    }

    /// Reads back what [`Slot::encode`] writes; `None` if the bytes are damaged.
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Option<Slot> {
        Some(Slot {
            valid: d.i64()?,
            precision: precision_of(d.u8()?)?,
            position: d.u64()?,
            version: d.u16()?,
        })
    }

    /// The sort key of the first slot at or after valid time `valid`.
    pub fn first_at(valid: i64) -> Vec<u8> {
        sortable(valid).to_vec()
    }
}

/// The chronology's items: every version of every act.
impl Item for Slot {
    type Key = Slot;

    fn key(&self) -> Slot {
        *self
    }

    fn key_bytes(key: &Slot, out: &mut Vec<u8>) {
        key.sort_key_into(out);
    }

    fn encode(&self, out: &mut Vec<u8>) {
        Slot::encode(self, out);
    }

    fn encoded_len(&self) -> usize {
        SLOT_BYTES
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Self> {
        Slot::decode(d)
    }
}

/// A position list's item: one version of an act that sets stances, placed where the sweep over
/// valid time takes it up (`starts`: its valid time, or an eased measure's effective date), with
/// what the sweep needs of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stated {
    pub starts: i64,
    pub slot: Slot,
    /// The positions `[known_from, known_until)` during which this version is the known one.
    pub known_from: Position,
    pub known_until: Position,
    pub rule: StanceRule,
}

impl Stated {
    pub fn live_at(&self, known_at: Position) -> bool {
        self.known_from <= known_at && known_at < self.known_until
    }

    /// The sort key of the last item taken up at or before `starts`.
    pub fn last_at(starts: i64) -> Vec<u8> {
        let mut k = sortable(starts).to_vec();
        k.extend_from_slice(&[0xff; 19]);
        k
    }
}

impl Item for Stated {
    type Key = (i64, Slot);

    fn key(&self) -> (i64, Slot) {
        (self.starts, self.slot)
    }

    fn key_bytes(key: &(i64, Slot), out: &mut Vec<u8>) {
        out.extend_from_slice(&sortable(key.0));
        key.1.sort_key_into(out);
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.starts.to_le_bytes());
        self.slot.encode(out);
        out.extend_from_slice(&self.known_from.to_le_bytes());
        out.extend_from_slice(&self.known_until.to_le_bytes());
        self.rule.encode(out);
    }

    fn encoded_len(&self) -> usize {
        8 + SLOT_BYTES + 16 + self.rule.encoded_len()
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Self> {
        Some(Stated {
            starts: d.i64()?,
            slot: Slot::decode(d)?,
            known_from: d.u64()?,
            known_until: d.u64()?,
            rule: StanceRule::decode(d)?,
        })
    }
}

/// A pair's list item: one version of an act that counts in relations, with what relations sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Related {
    pub slot: Slot,
    pub known_from: Position,
    pub known_until: Position,
    pub timeline: u32,
    pub quad: QuadClass,
    pub goldstein: f64,
}

impl Item for Related {
    type Key = Slot;

    fn key(&self) -> Slot {
        self.slot
    }

    fn key_bytes(key: &Slot, out: &mut Vec<u8>) {
        key.sort_key_into(out);
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.slot.encode(out);
        out.extend_from_slice(&self.known_from.to_le_bytes());
        out.extend_from_slice(&self.known_until.to_le_bytes());
        out.extend_from_slice(&self.timeline.to_le_bytes());
        out.push(self.quad.number());
        out.extend_from_slice(&self.goldstein.to_le_bytes());
    }

    fn encoded_len(&self) -> usize {
        SLOT_BYTES + 16 + 4 + 1 + 8
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Self> {
        Some(Related {
            slot: Slot::decode(d)?,
            known_from: d.u64()?,
            known_until: d.u64()?,
            timeline: d.u32()?,
            quad: *QuadClass::ALL.get(usize::from(d.u8()?.checked_sub(1)?))?,
            goldstein: d.f64()?,
        })
    }
}

impl Header for RunState {
    fn encode(&self, out: &mut Vec<u8>) {
        RunState::encode(self, out);
    }

    fn decode(d: &mut Decoder<'_>) -> Option<Self> {
        RunState::decode(d)
    }
}

/// A party's position on an issue within a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PositionKey {
    pub timeline: u32,
    pub party: u32,
    pub issue: u32,
}

impl PositionKey {
    pub fn list(&self) -> [u8; 12] {
        let mut k = [0u8; 12];
        k[..4].copy_from_slice(&self.timeline.to_be_bytes());
        k[4..8].copy_from_slice(&self.party.to_be_bytes());
        k[8..].copy_from_slice(&self.issue.to_be_bytes());
        k
    }
}

/// Two parties, the smaller id first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey(pub u32, pub u32);

impl PairKey {
    pub fn new(a: u32, b: u32) -> Self {
        if a <= b { PairKey(a, b) } else { PairKey(b, a) }
    }

    pub fn list(&self) -> [u8; 8] {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&self.0.to_be_bytes());
        k[4..].copy_from_slice(&self.1.to_be_bytes());
        k
    }
}

/// How the engine hands the next log event to the state: acts and bookkeeping as they are;
/// retractions and corrections with their target resolved (and, for a correction, the corrected
/// event as it reads after the correction).
pub enum Step<'a> {
    Act(&'a RecordedEvent),
    Bookkeeping(&'a RecordedEvent),
    Retraction {
        record: &'a RecordedEvent,
        target: Position,
    },
    Correction {
        record: &'a RecordedEvent,
        target: Position,
        corrected: &'a NewEvent,
    },
}

/// A block with its key.
type KeyedBlock<I, H> = (BlockKey, std::sync::Arc<Block<I, H>>);

/// The keyspaces of the lists in the projections' tree.
const POSITIONS: u8 = b'P';
const RELATIONS: u8 = b'R';
const CHRONOLOGY: u8 = b'C';

/// How much of the state is cached in memory, besides what changed since the last checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CacheSizes {
    pub pages: usize,
    pub blocks: usize,
}

impl Default for CacheSizes {
    fn default() -> Self {
        // About 10 MiB of pages (a page is 256 acts) and 60 MiB of blocks (64 to 128 items).
        CacheSizes {
            pages: 256,
            blocks: 8_192,
        }
    }
}

/// The projections on disk (or their tree), or an error a caller can retry when a reopen of the
/// database is under way.
pub fn present<T>(disk: &Option<T>) -> Result<&T, ProjectionError> {
    disk.as_ref().ok_or_else(|| {
        ProjectionError::Store(StoreError::Reopening(
            "the projections' database is being reopened; retry shortly".into(),
        ))
    })
}

pub struct ProjectionState {
    pub names: Names,
    /// The projections on disk; `None` only while the database is being reopened after a
    /// failed write (every handle on its tree must go before sled lets the database go).
    pub disk: Option<Disk>,
    pub pages: Pages,
    pub positions: Lists<Stated, RunState>,
    pub relations: Lists<Related, ()>,
    pub chronology: Lists<Slot, ()>,
    /// Which parties hold a position on each (timeline, issue): the directory of position keys.
    pub standoff_parties: BTreeMap<(u32, u32), BTreeSet<u32>>,
    /// Whether the directory changed since the last checkpoint.
    pub keys_dirty: bool,
}

impl ProjectionState {
    /// A state over `disk` that holds everything up to `head` (0 for a new one).
    pub fn new(
        disk: Disk,
        head: Position,
        names: Names,
        standoff_parties: BTreeMap<(u32, u32), BTreeSet<u32>>,
        caches: CacheSizes,
    ) -> Self {
        ProjectionState {
            names,
            disk: Some(disk),
            pages: Pages::new(head, caches.pages),
            positions: Lists::new(POSITIONS, caches.blocks / 2),
            relations: Lists::new(RELATIONS, caches.blocks / 4),
            chronology: Lists::new(CHRONOLOGY, caches.blocks / 4),
            standoff_parties,
            keys_dirty: false,
        }
    }

    /// The last position applied.
    pub fn head(&self) -> Position {
        self.pages.head()
    }

    pub fn entry(&self, position: Position) -> Result<Option<Entry>, ProjectionError> {
        self.pages.entry(present(&self.disk)?, position)
    }

    /// The id of the act at `position`, read no further.
    pub fn act_id(&self, position: Position) -> Result<Option<EventId>, ProjectionError> {
        self.pages.act_id(present(&self.disk)?, position)
    }

    /// The head of the act at `position` as known at `known_at` (the version shown, and whether
    /// it is withdrawn), without its facts.
    pub fn act_head(
        &self,
        position: Position,
        known_at: Position,
    ) -> Result<Option<ActHead>, ProjectionError> {
        self.pages
            .act_head(present(&self.disk)?, position, known_at)
    }

    /// What `read` takes from the act at `position`, without a copy of its versions.
    pub fn read_act<R>(
        &self,
        position: Position,
        read: impl FnOnce(&Act) -> R,
    ) -> Result<Option<R>, ProjectionError> {
        self.pages.read_act(present(&self.disk)?, position, read)
    }

    /// The last position recorded at or before an instant (0 if none).
    pub fn position_at_instant(
        &self,
        instant: chancery_domain::Timestamp,
    ) -> Result<Position, ProjectionError> {
        self.pages
            .position_at_instant(present(&self.disk)?, instant)
    }

    pub fn apply(&mut self, step: Step<'_>) -> Result<(), ProjectionError> {
        let record = match &step {
            Step::Act(r) | Step::Bookkeeping(r) => *r,
            Step::Retraction { record, .. } | Step::Correction { record, .. } => *record,
        };
        let position = record.position();
        if position != self.head() + 1 {
            return Err(ProjectionError::OutOfOrder {
                expected: self.head() + 1,
                got: position,
            });
        }
        let bookkeeping = Entry::Bookkeeping {
            recorded_at: record.recorded_at(),
        };
        match step {
            Step::Act(r) => {
                let unreadable = |e: chancery_domain::RecordError| {
                    ProjectionError::Corrupt(format!("the record at {position}: {e}"))
                };
                let view = r.view().map_err(unreadable)?;
                let fact = Fact::of_view(&view, position, &mut self.names).map_err(unreadable)?;
                match fact {
                    Some(fact) => {
                        // Indexed first, so that the page takes the fact itself, not a copy.
                        self.index_version(position, 0, &fact, Position::MAX)?;
                        self.pages.push(
                            present(&self.disk)?,
                            Entry::Act(Act {
                                id: r.id(),
                                recorded_at: r.recorded_at(),
                                versions: vec![fact],
                                retracted_at: None,
                            }),
                        )?;
                    }
                    None => self.pages.push(present(&self.disk)?, bookkeeping)?,
                }
            }
            Step::Bookkeeping(_) => self.pages.push(present(&self.disk)?, bookkeeping)?,
            Step::Retraction { target, .. } => {
                self.pages.push(present(&self.disk)?, bookkeeping)?;
                let act = self.pages.act_mut(present(&self.disk)?, target)?;
                act.retracted_at = Some(position);
                let last = act.versions.len().saturating_sub(1);
                let fact = act.versions.get(last).cloned();
                if let Some(fact) = fact {
                    self.end_version(target, last, &fact, position)?;
                }
            }
            Step::Correction {
                target, corrected, ..
            } => {
                self.pages.push(present(&self.disk)?, bookkeeping)?;
                let fact = Fact::of(corrected, position, &mut self.names).ok_or_else(|| {
                    ProjectionError::Corrupt(format!(
                        "the correction at {position} does not leave an act"
                    ))
                })?;
                let act = self.pages.act_mut(present(&self.disk)?, target)?;
                act.versions.push(fact.clone());
                let new = act.versions.len() - 1;
                let until = act.retracted_at.unwrap_or(Position::MAX);
                let old = act.versions.get(new - 1).cloned();
                if let Some(old) = old {
                    self.end_version(target, new - 1, &old, position)?;
                }
                self.index_version(target, new, &fact, until)?;
            }
        }
        Ok(())
    }

    /// Adds one version's slots to every list it belongs to.
    fn index_version(
        &mut self,
        position: Position,
        version: usize,
        fact: &Fact,
        known_until: Position,
    ) -> Result<(), ProjectionError> {
        let slot = Slot::of_version(fact, position, version);
        self.chronology.insert(present(&self.disk)?, &[], slot)?;
        if fact.sets_stances() {
            let stated = Stated {
                starts: starts_of(fact),
                slot,
                known_from: fact.known_from,
                known_until,
                rule: fact.rule,
            };
            for key in position_keys(fact) {
                let block = self
                    .positions
                    .insert(present(&self.disk)?, &key.list(), stated)?;
                self.restate(&key, &block)?;
                let parties = self
                    .standoff_parties
                    .entry((key.timeline, key.issue))
                    .or_default();
                if parties.insert(key.party) {
                    self.keys_dirty = true;
                }
            }
        }
        if let (true, Some(quad)) = (fact.counts_in_relations(), fact.quad) {
            let related = Related {
                slot,
                known_from: fact.known_from,
                known_until,
                timeline: fact.timeline,
                quad,
                goldstein: fact.goldstein,
            };
            for pair in pairs(fact) {
                self.relations
                    .insert(present(&self.disk)?, &pair.list(), related)?;
            }
        }
        Ok(())
    }

    /// Ends the known interval of one version's slots at `until` (a retraction's or the next
    /// correction's position).
    fn end_version(
        &mut self,
        position: Position,
        version: usize,
        fact: &Fact,
        until: Position,
    ) -> Result<(), ProjectionError> {
        let slot = Slot::of_version(fact, position, version);
        if fact.sets_stances() {
            let item_key = (starts_of(fact), slot);
            for key in position_keys(fact) {
                let block =
                    self.positions
                        .update(present(&self.disk)?, &key.list(), &item_key, |s| {
                            s.known_until = until;
                        })?;
                if let Some(block) = block {
                    self.restate(&key, &block)?;
                }
            }
        }
        if fact.counts_in_relations() {
            for pair in pairs(fact) {
                self.relations
                    .update(present(&self.disk)?, &pair.list(), &slot, |r| {
                        r.known_until = until
                    })?;
            }
        }
        Ok(())
    }

    /// After a change in a position's block, brings the sweep state at the start of every later
    /// block up to date, as far as it changes.
    fn restate(&mut self, key: &PositionKey, changed: &[u8]) -> Result<(), ProjectionError> {
        let list = key.list();
        if self.positions.is_tail(present(&self.disk)?, &list, changed) {
            // No block after it: no start to bring up to date.
            return Ok(());
        }
        let prefix = self.positions.prefix(&list);
        let sort_key = changed.get(prefix.len()..).unwrap_or_default().to_vec();
        let mut end: Option<RunState> = None;
        let mut updates = Vec::new();
        // Read as the walk goes: it stops at the first block whose start is already right, and
        // the blocks past it are never read.
        for walked in self
            .positions
            .blocks(present(&self.disk)?, &list, Some(&sort_key), false)?
        {
            let (block_key, block): KeyedBlock<Stated, RunState> = walked?;
            if let Some(start) = end {
                if block.header == start {
                    break;
                }
                updates.push((block_key, start));
                end = Some(start.fold(&block.items));
            } else {
                end = Some(*block.folded());
            }
        }
        for (block_key, start) in updates {
            self.positions
                .set_header(present(&self.disk)?, block_key, start)?;
        }
        Ok(())
    }

    /// Every position key of a timeline and issue.
    pub fn standoff_keys(&self, timeline: u32, issue: u32) -> Vec<PositionKey> {
        self.standoff_parties
            .get(&(timeline, issue))
            .map(|parties| {
                parties
                    .iter()
                    .map(|party| PositionKey {
                        timeline,
                        party: *party,
                        issue,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every position key.
    pub fn position_keys(&self) -> Vec<PositionKey> {
        self.standoff_parties
            .iter()
            .flat_map(|((timeline, issue), parties)| {
                parties.iter().map(|party| PositionKey {
                    timeline: *timeline,
                    party: *party,
                    issue: *issue,
                })
            })
            .collect()
    }

    /// Everything the state holds, in a form that compares equal when two states answer every
    /// question alike (for tests of replay): the entries, and every list's items in order.
    pub fn dump(&self) -> Result<Dump, ProjectionError> {
        let mut entries = Vec::with_capacity(usize::try_from(self.head()).unwrap_or(0));
        for p in 1..=self.head() {
            entries.push(self.entry(p)?);
        }
        let mut positions = BTreeMap::new();
        for key in self.position_keys() {
            let items: Vec<Stated> = self
                .positions
                .blocks(present(&self.disk)?, &key.list(), None, false)?
                .map(|b| b.map(|(_, b)| b.items.clone()))
                .collect::<Result<Vec<_>, _>>()?
                .concat();
            positions.insert(key, items);
        }
        let chronology: Vec<Slot> = self
            .chronology
            .blocks(present(&self.disk)?, &[], None, false)?
            .map(|b| b.map(|(_, b)| b.items.clone()))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let names = (
            self.names.parties.len(),
            self.names.issues.len(),
            self.names.timelines.len(),
        );
        Ok(Dump {
            entries,
            positions,
            chronology,
            names,
            standoff_parties: self.standoff_parties.clone(),
        })
    }
}

/// See [`ProjectionState::dump`].
#[derive(Debug, PartialEq)]
pub struct Dump {
    pub entries: Vec<Option<Entry>>,
    pub positions: BTreeMap<PositionKey, Vec<Stated>>,
    pub chronology: Vec<Slot>,
    pub names: (usize, usize, usize),
    pub standoff_parties: BTreeMap<(u32, u32), BTreeSet<u32>>,
}

/// When the sweep over valid time takes a version up: its valid time, or an eased measure's
/// effective date.
fn starts_of(fact: &Fact) -> i64 {
    match fact.rule {
        StanceRule::Ease { effective } => effective.max(fact.valid),
        _ => fact.valid,
    }
}

/// The position keys a version sets stances on: each acting party on each issue.
fn position_keys(fact: &Fact) -> Vec<PositionKey> {
    let mut keys = Vec::new();
    for party in fact.actors.iter() {
        for issue in fact.issues.iter() {
            keys.push(PositionKey {
                timeline: fact.timeline,
                party: *party,
                issue: *issue,
            });
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The pairs of parties an act relates: each actor with each target, and actors acting jointly.
pub fn pairs(fact: &Fact) -> Vec<PairKey> {
    let mut out = Vec::new();
    for (i, a) in fact.actors.iter().enumerate() {
        for t in fact.targets.iter() {
            if a != t {
                out.push(PairKey::new(*a, *t));
            }
        }
        for b in &fact.actors[i + 1..] {
            out.push(PairKey::new(*a, *b));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Stance;
    use crate::values::Encode;

    fn encoded<I: Item>(item: &I) -> usize {
        let mut out = Vec::new();
        item.encode(&mut out);
        out.len()
    }

    /// A checkpoint's room check counts the bytes of every block without encoding it.
    #[test]
    fn items_and_blocks_count_the_bytes_they_encode() {
        let slot = Slot {
            valid: -1_000,
            precision: Precision::Month,
            position: 42,
            version: 1,
        };
        assert_eq!(slot.encoded_len(), encoded(&slot));
        let rules = [
            StanceRule::None,
            StanceRule::Fixed(Stance::Threat),
            StanceRule::Impose { effective: 7 },
            StanceRule::Ease { effective: 9 },
        ];
        let stated: Vec<Stated> = rules
            .iter()
            .map(|rule| Stated {
                starts: 3,
                slot,
                known_from: 42,
                known_until: Position::MAX,
                rule: *rule,
            })
            .collect();
        for s in &stated {
            assert_eq!(s.encoded_len(), encoded(s), "{s:?}");
        }
        let related = Related {
            slot,
            known_from: 42,
            known_until: 50,
            timeline: 2,
            quad: QuadClass::MaterialConflict,
            goldstein: -9.5,
        };
        assert_eq!(related.encoded_len(), encoded(&related));
        let block = Block::new(RunState::default(), stated);
        let mut out = Vec::new();
        block.encode(&mut out);
        assert_eq!(block.encoded_len(), out.len());
    }

    /// The longest key the lists make, a position list's prefix and its items' sort key, and
    /// the key past every sort key that finds a list's last block, are block keys.
    #[test]
    fn the_longest_keys_of_the_lists_are_block_keys() {
        let slot = Slot {
            valid: i64::MIN,
            precision: Precision::Day,
            position: Position::MAX,
            version: u16::MAX,
        };
        let mut longest = vec![0u8];
        longest.extend_from_slice(
            &PositionKey {
                timeline: u32::MAX,
                party: u32::MAX,
                issue: u32::MAX,
            }
            .list(),
        );
        let prefix = longest.len();
        Stated::key_bytes(&(i64::MAX, slot), &mut longest);
        assert!(BlockKey::of(&longest).is_ok(), "{} bytes", longest.len());
        longest.truncate(prefix);
        longest.extend_from_slice(&[0xff; 40]);
        assert!(BlockKey::of(&longest).is_ok(), "{} bytes", longest.len());
    }
}
