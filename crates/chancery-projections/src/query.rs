//! Answers from the state for a moment of valid time and a moment of knowledge: positions,
//! standoffs, relations and the chronology. Each walks only the lists of the keys asked about.

use std::collections::BTreeMap;

use chancery_domain::codes::QuadClass;
use chancery_domain::{Kind, Position, Precision};

use crate::facts::{Act, Fact, Stance, StanceRule};
use crate::state::{PairKey, PositionKey, ProjectionState, Slot, SlotList};

/// The two times of a bitemporal question: the world as of `valid_at` (Unix seconds, inclusive)
/// as the log knew it at position `known_at` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub valid_at: i64,
    pub known_at: Position,
}

/// Supporting events listed with a position, at most (the newest).
pub const MAX_SUPPORTING: usize = 50;

/// A stance change in a position's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub stance: Stance,
    /// When the change took effect in valid time (Unix seconds) and how precisely.
    pub at: i64,
    pub precision: Precision,
    pub slot: Slot,
}

/// A position as computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    pub stance: Stance,
    /// The newest event holding the stance.
    pub latest: Slot,
    /// The event that first stated it (the start of the current run).
    pub first: Slot,
    /// How many later events restated it.
    pub reaffirmed: u32,
    /// The events of the current run, oldest first (at most [`MAX_SUPPORTING`], the newest).
    pub supporting: Vec<Slot>,
    pub history: Vec<Change>,
}

impl ProjectionState {
    /// The fact of a slot if that version was the known one at `known_at`.
    pub fn live(&self, slot: &Slot, known_at: Position) -> Option<&Fact> {
        let act = self.act(slot.position)?;
        let (from, until) = act.known_interval(usize::from(slot.version));
        (from <= known_at && known_at < until).then(|| &act.versions[usize::from(slot.version)])
    }

    pub fn compute_position(&self, key: &PositionKey, when: When) -> Option<Computed> {
        let list = self.positions.get(key)?;
        compute_run(self, list, when)
    }

    /// Every party's position on an issue of a timeline (parties with no stance left out).
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

    /// Relations between two parties per bucket of valid time in `[from, to)`, as of `when`.
    pub fn relations(
        &self,
        pair: PairKey,
        bucket: Bucket,
        from: i64,
        to: i64,
        timeline: Option<u32>,
        when: When,
    ) -> Vec<BucketTotals> {
        let Some(list) = self.relations.get(&pair) else {
            return Vec::new();
        };
        let end = to.min(when.valid_at.saturating_add(1));
        let lo = list.slots.partition_point(|s| s.valid < from);
        let hi = list.slots.partition_point(|s| s.valid < end);
        let mut buckets: BTreeMap<i64, BucketTotals> = BTreeMap::new();
        for slot in &list.slots[lo..hi.max(lo)] {
            let Some(fact) = self.live(slot, when.known_at) else {
                continue;
            };
            if timeline.is_some_and(|t| t != fact.timeline) || !fact.counts_in_relations() {
                continue;
            }
            let Some(quad) = fact.quad else { continue };
            let start = bucket.start_of(fact.valid);
            let totals = buckets.entry(start).or_insert_with(|| BucketTotals {
                start,
                ..BucketTotals::default()
            });
            totals.events += 1;
            totals.by_quad_class[usize::from(quad.number() - 1)] += 1;
            totals.goldstein_sum += fact.goldstein;
        }
        buckets.into_values().collect()
    }

    /// The version of an act to show at `known_at` (a retracted act shows its last version), and
    /// whether it is retracted by then.
    pub fn shown_version<'a>(
        &'a self,
        act: &'a Act,
        known_at: Position,
    ) -> Option<(usize, &'a Fact, bool)> {
        let (v, fact) = act
            .versions
            .iter()
            .enumerate()
            .rev()
            .find(|(_, f)| f.known_from <= known_at)?;
        Some((v, fact, act.retracted_at.is_some_and(|r| r <= known_at)))
    }

    /// A page of the chronology: acts by valid time, filtered, as of `when`.
    pub fn chronology_page(&self, q: &ChronologyQuery) -> (Vec<ChronologyItem>, bool) {
        let slots = &self.chronology.slots;
        let mut items = Vec::new();
        let in_page = |slot: &Slot| -> Option<ChronologyItem> {
            let act = self.act(slot.position)?;
            let (v, fact, retracted) = self.shown_version(act, q.when.known_at)?;
            if usize::from(slot.version) != v
                || (retracted && !q.include_retracted)
                || fact.valid > q.when.valid_at
            {
                return None;
            }
            if q.valid_from.is_some_and(|f| fact.valid < f)
                || q.valid_to.is_some_and(|t| fact.valid >= t)
            {
                return None;
            }
            if !q.matches(fact) {
                return None;
            }
            Some(ChronologyItem {
                slot: *slot,
                retracted,
                corrected: v > 0,
            })
        };
        let mut more = false;
        if q.backward {
            let end = q
                .before
                .map_or(slots.len(), |b| slots.partition_point(|s| *s < b));
            for slot in slots[..end].iter().rev() {
                if let Some(item) = in_page(slot) {
                    if items.len() == q.limit {
                        more = true;
                        break;
                    }
                    items.push(item);
                }
            }
            items.reverse();
        } else {
            let start = q.after.map_or(0, |a| slots.partition_point(|s| *s <= a));
            for slot in &slots[start..] {
                if let Some(item) = in_page(slot) {
                    if items.len() == q.limit {
                        more = true;
                        break;
                    }
                    items.push(item);
                }
            }
        }
        (items, more)
    }
}

/// The current run and the history of a position list, as a sweep over valid time.
///
/// A slot starts setting its stance when it activates: at its valid time, or for an eased measure
/// at its effective date. At any time the stance is that of the newest slot (by valid time, then
/// position) among those active; a measure imposed switches from threat to measure at its
/// effective date while it is the newest. A new newest slot with the stance already held
/// reaffirms it.
fn compute_run(state: &ProjectionState, list: &SlotList, when: When) -> Option<Computed> {
    let end = list.slots.partition_point(|s| s.valid <= when.valid_at);
    let mut active: Vec<(i64, Slot, &Fact)> = list.slots[..end]
        .iter()
        .filter_map(|slot| {
            let fact = state.live(slot, when.known_at)?;
            let starts = match fact.rule {
                StanceRule::None => return None,
                StanceRule::Ease { effective } => effective.max(fact.valid),
                _ => fact.valid,
            };
            (fact.sets_stances() && starts <= when.valid_at).then_some((starts, *slot, fact))
        })
        .collect();
    active.sort_by_key(|(starts, slot, _)| (*starts, *slot));

    let mut sweep = Sweep::default();
    let mut newest: Option<(Slot, &Fact)> = None;
    for (starts, slot, fact) in active {
        if let Some((s, f)) = newest {
            sweep.take_effect(s, f, starts, false);
        }
        if newest.is_none_or(|(s, _)| slot > s) {
            newest = Some((slot, fact));
            sweep.measure_shown = false;
            let stance = fact.stance_at(starts)?;
            sweep.measure_shown = stance == Stance::Measure;
            let precision = if starts == fact.valid {
                fact.precision
            } else {
                Precision::Day
            };
            sweep.state(stance, starts, precision, slot);
        }
    }
    if let Some((s, f)) = newest {
        sweep.take_effect(s, f, when.valid_at, true);
    }
    let last = *sweep.history.last()?;
    Some(Computed {
        stance: last.stance,
        latest: *sweep.run.last()?,
        first: last.slot,
        reaffirmed: sweep.reaffirmed,
        supporting: sweep.run,
        history: sweep.history,
    })
}

#[derive(Default)]
struct Sweep {
    history: Vec<Change>,
    run: Vec<Slot>,
    reaffirmed: u32,
    measure_shown: bool,
}

impl Sweep {
    fn state(&mut self, stance: Stance, at: i64, precision: Precision, slot: Slot) {
        if self.history.last().is_some_and(|c| c.stance == stance) {
            self.reaffirmed += 1;
            self.run.push(slot);
            if self.run.len() > MAX_SUPPORTING {
                self.run.remove(0);
            }
        } else {
            self.history.push(Change {
                stance,
                at,
                precision,
                slot,
            });
            self.run = vec![slot];
            self.reaffirmed = 0;
        }
    }

    /// A measure imposed by the newest slot takes effect before `until` (or at it, when `until`
    /// is the end of the question).
    fn take_effect(&mut self, slot: Slot, fact: &Fact, until: i64, inclusive: bool) {
        if let StanceRule::Impose { effective } = fact.rule {
            let due = if inclusive {
                effective <= until
            } else {
                effective < until
            };
            if !self.measure_shown && due {
                self.measure_shown = true;
                self.history.push(Change {
                    stance: Stance::Measure,
                    at: effective.max(fact.valid),
                    precision: Precision::Day,
                    slot,
                });
                self.run = vec![slot];
                self.reaffirmed = 0;
            }
        }
    }
}

/// The width of a relations bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Day,
    /// ISO weeks, from Monday.
    Week,
    Month,
}

impl Bucket {
    /// The start (Unix seconds, UTC midnight) of the bucket holding `t`.
    pub fn start_of(self, t: i64) -> i64 {
        let day = t.div_euclid(86_400);
        match self {
            Bucket::Day => day * 86_400,
            Bucket::Week => (day - (day + 3).rem_euclid(7)) * 86_400,
            Bucket::Month => match time::OffsetDateTime::from_unix_timestamp(day * 86_400) {
                Ok(t) => (day - i64::from(t.day()) + 1) * 86_400,
                Err(_) => day * 86_400,
            },
        }
    }
}

/// Totals of one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketTotals {
    pub start: i64,
    pub events: u32,
    /// Events per QuadClass, in order 1 to 4.
    pub by_quad_class: [u32; 4],
    pub goldstein_sum: f64,
}

impl BucketTotals {
    pub fn goldstein_mean(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.goldstein_sum / f64::from(self.events)
        }
    }

    pub fn count(&self, quad: QuadClass) -> u32 {
        self.by_quad_class[usize::from(quad.number() - 1)]
    }
}

/// A chronology page request, with names already resolved to ids.
#[derive(Debug, Clone)]
pub struct ChronologyQuery {
    pub timelines: Vec<u32>,
    pub parties: Vec<u32>,
    pub issues: Vec<u32>,
    pub kinds: Vec<Kind>,
    /// Valid time range `[from, to)`, Unix seconds.
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    pub when: When,
    pub after: Option<Slot>,
    pub before: Option<Slot>,
    pub backward: bool,
    pub limit: usize,
    pub include_retracted: bool,
}

impl ChronologyQuery {
    fn matches(&self, fact: &Fact) -> bool {
        (self.timelines.is_empty() || self.timelines.contains(&fact.timeline))
            && (self.kinds.is_empty() || self.kinds.contains(&fact.kind))
            && (self.parties.is_empty()
                || fact
                    .actors
                    .iter()
                    .chain(fact.targets.iter())
                    .any(|p| self.parties.contains(p)))
            && (self.issues.is_empty() || fact.issues.iter().any(|i| self.issues.contains(i)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChronologyItem {
    pub slot: Slot,
    pub retracted: bool,
    pub corrected: bool,
}
