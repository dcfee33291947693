//! The projection state: an entry per log position, and indexes of slots sorted by valid time,
//! one list per key (per position key, per pair of parties, and one for the whole chronology).
//!
//! A slot is one version of one act. Its place in a list is its valid time; the act's entry says
//! during which log positions that version was the known one. That makes every as-of question a
//! walk over one key's list: no replay, and a late report, a retraction or a correction only
//! changes the lists it touches.

use std::collections::{BTreeSet, HashMap};

use chancery_domain::{NewEvent, Position, Precision, RecordedEvent, Timestamp};

use crate::error::ProjectionError;
use crate::facts::{Act, Entry, Fact};
use crate::intern::Names;

/// A fast hash for the small integer keys of the indexes (SipHash showed in replay profiles; the
/// keys are interned ids chosen by us, not by an adversary).
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

pub type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Entries per checkpoint page.
pub const PAGE: u64 = 256;

/// One version of one act, placed by its valid time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub valid: i64,
    pub precision: Precision,
    pub position: Position,
    pub version: u16,
}

/// Slots sorted by valid time, with a generation that changes whenever the list's answers may.
#[derive(Debug, Clone, Default)]
pub struct SlotList {
    pub slots: Vec<Slot>,
    /// The latest valid or effective time of any slot: answers for later times are all the same.
    pub settles_at: i64,
    pub generation: u64,
}

impl SlotList {
    fn insert(&mut self, slot: Slot, settles_at: i64) {
        // Most slots come after every other (events arrive roughly in valid-time order); only
        // late reports and corrections need the search.
        if self.slots.last().is_none_or(|last| *last < slot) {
            self.slots.push(slot);
            self.settles_at = self.settles_at.max(settles_at);
            self.generation += 1;
            return;
        }
        let at = self.slots.partition_point(|s| *s < slot);
        if self.slots.get(at) != Some(&slot) {
            self.slots.insert(at, slot);
        }
        self.settles_at = self.settles_at.max(settles_at);
        self.generation += 1;
    }

    fn push_unsorted(&mut self, slot: Slot, settles_at: i64) {
        self.slots.push(slot);
        self.settles_at = self.settles_at.max(settles_at);
    }

    fn finish_load(&mut self) {
        self.slots.sort_unstable();
        self.slots.dedup();
        self.generation += 1;
    }
}

impl PartialEq for SlotList {
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots && self.settles_at == other.settles_at
    }
}

/// A party's position on an issue within a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PositionKey {
    pub timeline: u32,
    pub party: u32,
    pub issue: u32,
}

/// Two parties, the smaller id first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey(pub u32, pub u32);

impl PairKey {
    pub fn new(a: u32, b: u32) -> Self {
        if a <= b { PairKey(a, b) } else { PairKey(b, a) }
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

#[derive(Debug, Clone, Default)]
pub struct ProjectionState {
    pub names: Names,
    /// One per log position: `entries[p - 1]` is position `p`.
    pub entries: Vec<Entry>,
    pub positions: IdMap<PositionKey, SlotList>,
    /// Which parties hold a position on each (timeline, issue).
    pub standoff_parties: IdMap<(u32, u32), BTreeSet<u32>>,
    pub relations: IdMap<PairKey, SlotList>,
    /// Every version of every act, by valid time.
    pub chronology: SlotList,
    /// Checkpoint pages changed since the last checkpoint.
    pub dirty_pages: BTreeSet<u64>,
}

pub fn page_of(position: Position) -> u64 {
    (position - 1) / PAGE
}

impl ProjectionState {
    /// The last position applied.
    pub fn head(&self) -> Position {
        self.entries.len() as Position
    }

    pub fn entry(&self, position: Position) -> Option<&Entry> {
        usize::try_from(position.checked_sub(1)?)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    pub fn act(&self, position: Position) -> Option<&Act> {
        match self.entry(position)? {
            Entry::Act(a) => Some(a),
            Entry::Bookkeeping { .. } => None,
        }
    }

    /// The last position recorded at or before an instant (0 if none).
    pub fn position_at_instant(&self, instant: Timestamp) -> Position {
        self.entries.partition_point(|e| e.recorded_at() <= instant) as Position
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
        match step {
            Step::Act(r) => {
                let unreadable = |e: chancery_domain::RecordError| {
                    ProjectionError::Corrupt(format!("the record at {position}: {e}"))
                };
                let view = r.view().map_err(unreadable)?;
                let fact = Fact::of_view(&view, position, &mut self.names).map_err(unreadable)?;
                match fact {
                    Some(fact) => {
                        self.entries.push(Entry::Act(Act {
                            id: r.id(),
                            recorded_at: r.recorded_at(),
                            versions: vec![fact],
                            retracted_at: None,
                        }));
                        self.index_version(position, 0, false);
                    }
                    None => self.entries.push(Entry::Bookkeeping {
                        recorded_at: r.recorded_at(),
                    }),
                }
            }
            Step::Bookkeeping(r) => self.entries.push(Entry::Bookkeeping {
                recorded_at: r.recorded_at(),
            }),
            Step::Retraction { record, target } => {
                self.entries.push(Entry::Bookkeeping {
                    recorded_at: record.recorded_at(),
                });
                let act = self.act_mut(target)?;
                act.retracted_at = Some(position);
                let last = act.versions.len().saturating_sub(1);
                self.touch_version(target, last);
                self.dirty_pages.insert(page_of(target));
            }
            Step::Correction {
                record,
                target,
                corrected,
            } => {
                self.entries.push(Entry::Bookkeeping {
                    recorded_at: record.recorded_at(),
                });
                let fact = Fact::of(corrected, position, &mut self.names).ok_or_else(|| {
                    ProjectionError::Corrupt(format!(
                        "the correction at {position} does not leave an act"
                    ))
                })?;
                let act = self.act_mut(target)?;
                act.versions.push(fact);
                let new = act.versions.len() - 1;
                self.touch_version(target, new - 1);
                self.index_version(target, new, false);
                self.dirty_pages.insert(page_of(target));
            }
        }
        self.dirty_pages.insert(page_of(position));
        Ok(())
    }

    fn act_mut(&mut self, position: Position) -> Result<&mut Act, ProjectionError> {
        let i = usize::try_from(position.saturating_sub(1)).unwrap_or(usize::MAX);
        match self.entries.get_mut(i) {
            Some(Entry::Act(a)) => Ok(a),
            _ => Err(ProjectionError::Corrupt(format!(
                "position {position} is not an act"
            ))),
        }
    }

    /// Adds one version's slots to every list it belongs to.
    fn index_version(&mut self, position: Position, version: usize, loading: bool) {
        let Some(Entry::Act(act)) = self.entry(position) else {
            return;
        };
        let Some(fact) = act.versions.get(version) else {
            return;
        };
        let slot = Slot {
            valid: fact.valid,
            precision: fact.precision,
            position,
            version: u16::try_from(version).unwrap_or(u16::MAX),
        };
        let settles = fact.settles_at();
        let mut position_keys = Vec::new();
        if fact.sets_stances() {
            for party in fact.actors.iter() {
                for issue in fact.issues.iter() {
                    position_keys.push(PositionKey {
                        timeline: fact.timeline,
                        party: *party,
                        issue: *issue,
                    });
                }
            }
        }
        let pairs = if fact.counts_in_relations() {
            pairs(fact)
        } else {
            Vec::new()
        };
        let insert = |list: &mut SlotList| {
            if loading {
                list.push_unsorted(slot, settles)
            } else {
                list.insert(slot, settles)
            }
        };
        insert(&mut self.chronology);
        for key in position_keys {
            insert(self.positions.entry(key).or_default());
            self.standoff_parties
                .entry((key.timeline, key.issue))
                .or_default()
                .insert(key.party);
        }
        for pair in pairs {
            insert(self.relations.entry(pair).or_default());
        }
    }

    /// Marks every list holding a version as changed (its known interval just ended).
    fn touch_version(&mut self, position: Position, version: usize) {
        let Some(Entry::Act(act)) = self.entry(position) else {
            return;
        };
        let Some(fact) = act.versions.get(version) else {
            return;
        };
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
        let pairs = pairs(fact);
        self.chronology.generation += 1;
        for key in keys {
            if let Some(list) = self.positions.get_mut(&key) {
                list.generation += 1;
            }
        }
        for pair in pairs {
            if let Some(list) = self.relations.get_mut(&pair) {
                list.generation += 1;
            }
        }
    }

    /// Rebuilds every index from the entries, after loading a checkpoint.
    pub fn index_all(&mut self) {
        for p in 1..=self.head() {
            let versions = self.act(p).map_or(0, |a| a.versions.len());
            for v in 0..versions {
                self.index_version(p, v, true);
            }
        }
        self.chronology.finish_load();
        for list in self
            .positions
            .values_mut()
            .chain(self.relations.values_mut())
        {
            list.finish_load();
        }
    }

    /// Whether two states answer every question alike (indexes and entries; not caches).
    pub fn same_as(&self, other: &ProjectionState) -> bool {
        self.entries == other.entries
            && self.positions == other.positions
            && self.relations == other.relations
            && self.chronology == other.chronology
            && self.standoff_parties == other.standoff_parties
    }
}

/// The pairs of parties an act relates: each actor with each target, and actors acting jointly.
fn pairs(fact: &Fact) -> Vec<PairKey> {
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
