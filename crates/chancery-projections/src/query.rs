//! Answers from the state for a moment of valid time and a moment of knowledge: positions,
//! standoffs, relations and the chronology. Each reads only the lists of the keys asked about; a
//! position as known now reads one block of its list.

use std::collections::BTreeMap;

use chancery_domain::codes::QuadClass;
use chancery_domain::{Kind, Position, Precision};

use crate::error::ProjectionError;
use crate::facts::{Act, Fact, Stance, StanceRule, precision_of, precision_tag};
use crate::lists::{Decoder, Fold};
use crate::state::{PairKey, PositionKey, ProjectionState, Slot, Stated, present};

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
    /// The events of the current run, oldest first (at most [`MAX_SUPPORTING`], the newest);
    /// empty unless asked for.
    pub supporting: Vec<Slot>,
    /// Every change of stance; empty unless asked for.
    pub history: Vec<Change>,
}

/// The sweep over a position's slots by valid time, reduced to what its answer needs: the newest
/// slot, whether its measure is shown as in force, the last change of stance, the newest slot of
/// the current run and its length. Kept at the start of each block of a position's list for the
/// slots known now, so that a question about the present log starts from the nearest block.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunState {
    /// The newest slot taken up, with its rule.
    pub newest: Option<(Slot, StanceRule)>,
    pub measure_shown: bool,
    pub last: Option<Change>,
    pub run_last: Option<Slot>,
    pub reaffirmed: u32,
}

fn stance_tag(s: Stance) -> u8 {
    s as u8
}

impl Fold<Stated> for RunState {
    /// The state after a block's slots known now.
    fn fold(mut self, items: &[Stated]) -> RunState {
        for item in items.iter().filter(|i| i.known_until == Position::MAX) {
            self.step(item);
        }
        self
    }
}

impl RunState {
    /// Takes up one slot, in sweep order (see [`compute_run`]).
    pub fn step(&mut self, item: &Stated) {
        if let Some((slot, rule)) = self.newest {
            self.take_effect(slot, rule, item.starts, false);
        }
        if self.newest.is_none_or(|(s, _)| item.slot > s) {
            self.newest = Some((item.slot, item.rule));
            let Some(stance) = item.rule.stance_at(item.starts) else {
                return;
            };
            self.measure_shown = stance == Stance::Measure;
            let precision = start_precision(item);
            if self.last.is_some_and(|c| c.stance == stance) {
                self.reaffirmed += 1;
            } else {
                self.last = Some(Change {
                    stance,
                    at: item.starts,
                    precision,
                    slot: item.slot,
                });
                self.reaffirmed = 0;
            }
            self.run_last = Some(item.slot);
        }
    }

    /// A measure imposed by the newest slot takes effect before `until` (or at it, when `until`
    /// is the end of the question).
    fn take_effect(&mut self, slot: Slot, rule: StanceRule, until: i64, inclusive: bool) {
        if self.measure_shown {
            return;
        }
        if let Some(change) = measure_taking_effect(slot, rule, until, inclusive) {
            self.measure_shown = true;
            self.last = Some(change);
            self.run_last = Some(slot);
            self.reaffirmed = 0;
        }
    }

    /// The answer at valid time `valid_at`, once every slot up to it is taken up.
    fn answer(mut self, valid_at: i64) -> Option<Computed> {
        if let Some((slot, rule)) = self.newest {
            self.take_effect(slot, rule, valid_at, true);
        }
        let last = self.last?;
        Some(Computed {
            stance: last.stance,
            latest: self.run_last?,
            first: last.slot,
            reaffirmed: self.reaffirmed,
            supporting: Vec::new(),
            history: Vec::new(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.newest {
            None => out.push(0),
            Some((s, rule)) => {
                out.push(1);
                s.encode(out);
                rule.encode(out);
            }
        }
        out.push(u8::from(self.measure_shown));
        match &self.last {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                out.push(stance_tag(c.stance));
                out.extend_from_slice(&c.at.to_le_bytes());
                out.push(precision_tag(c.precision));
                c.slot.encode(out);
            }
        }
        match &self.run_last {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                s.encode(out);
            }
        }
        out.extend_from_slice(&self.reaffirmed.to_le_bytes());
    }

    /// Reads back what [`RunState::encode`] writes; `None` if the bytes are damaged.
    pub fn decode(d: &mut Decoder<'_>) -> Option<RunState> {
        let newest = match d.u8()? {
            0 => None,
            1 => Some((Slot::decode(d)?, StanceRule::decode(d)?)),
            _ => return None,
        };
        let measure_shown = d.u8()? != 0;
        let last = match d.u8()? {
            0 => None,
            1 => Some(Change {
                stance: *Stance::ALL.get(usize::from(d.u8()?))?,
                at: d.i64()?,
                precision: precision_of(d.u8()?)?,
                slot: Slot::decode(d)?,
            }),
            _ => return None,
        };
        let run_last = match d.u8()? {
            0 => None,
            1 => Some(Slot::decode(d)?),
            _ => return None,
        };
        Some(RunState {
            newest,
            measure_shown,
            last,
            run_last,
            reaffirmed: d.u32()?,
        })
    }
}

impl ProjectionState {
    /// A position at `when`. As known now, and without its lists, it reads the block holding
    /// `valid_at` and sweeps from that block's start; otherwise it sweeps the list.
    pub fn compute_position(
        &self,
        key: &PositionKey,
        when: When,
        lists: bool,
    ) -> Result<Option<Computed>, ProjectionError> {
        if when.known_at >= self.head() && !lists {
            let bound = Stated::last_at(when.valid_at);
            let mut blocks =
                self.positions
                    .blocks(present(&self.disk)?, &key.list(), Some(&bound), false)?;
            let Some(found) = blocks.next() else {
                return Ok(None);
            };
            let (_, block) = found?;
            // A question past the block's last slot (one about the present, most often) takes
            // up every slot of it: the block's fold, made once while the block is held.
            if block
                .items
                .last()
                .is_none_or(|last| last.starts <= when.valid_at)
            {
                return Ok(block.folded().answer(when.valid_at));
            }
            let mut state = block.header;
            for item in block
                .items
                .iter()
                .take_while(|i| i.starts <= when.valid_at)
                .filter(|i| i.known_until == Position::MAX)
            {
                state.step(item);
            }
            return Ok(state.answer(when.valid_at));
        }
        let mut items: Vec<Stated> = Vec::new();
        for block in self
            .positions
            .blocks(present(&self.disk)?, &key.list(), None, false)?
        {
            let (_, block) = block?;
            let before = block
                .items
                .iter()
                .take_while(|i| i.starts <= when.valid_at)
                .copied();
            let count = items.len();
            items.extend(before);
            if items.len() - count < block.items.len() {
                break;
            }
        }
        Ok(compute_run(&items, when))
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
    ) -> Result<Vec<BucketTotals>, ProjectionError> {
        let end = to.min(when.valid_at.saturating_add(1));
        let mut buckets: BTreeMap<i64, BucketTotals> = BTreeMap::new();
        let start = Slot::first_at(from);
        'blocks: for block in
            self.relations
                .blocks(present(&self.disk)?, &pair.list(), Some(&start), false)?
        {
            let (_, block) = block?;
            for item in &block.items {
                if item.slot.valid < from {
                    continue;
                }
                if item.slot.valid >= end {
                    break 'blocks;
                }
                if item.known_from > when.known_at || when.known_at >= item.known_until {
                    continue;
                }
                if timeline.is_some_and(|t| t != item.timeline) {
                    continue;
                }
                let start = bucket.start_of(item.slot.valid);
                let totals = buckets.entry(start).or_insert_with(|| BucketTotals {
                    start,
                    ..BucketTotals::default()
                });
                totals.events += 1;
                totals.by_quad_class[usize::from(item.quad.number() - 1)] += 1;
                totals.goldstein_sum += item.goldstein;
            }
        }
        Ok(buckets.into_values().collect())
    }

    /// The version of an act to show at `known_at` (a retracted act shows its last version), and
    /// whether it is retracted by then.
    pub fn shown_version<'a>(
        &self,
        act: &'a Act,
        known_at: Position,
    ) -> Option<(usize, &'a Fact, bool)> {
        let head = act.head(known_at);
        let v = head.shown?;
        Some((v, act.versions.get(v)?, head.retracted))
    }

    /// A page of the chronology: acts by valid time, filtered, as of `when`.
    pub fn chronology_page(
        &self,
        q: &ChronologyQuery,
    ) -> Result<(Vec<ChronologyItem>, bool), ProjectionError> {
        let mut items = Vec::new();
        let in_page = |slot: &Slot| -> Result<Option<ChronologyItem>, ProjectionError> {
            let shown = |act: &Act| {
                let (v, fact, retracted) = self.shown_version(act, q.when.known_at)?;
                let left_out = usize::from(slot.version) != v
                    || (retracted && !q.include_retracted)
                    || fact.valid > q.when.valid_at
                    || q.valid_from.is_some_and(|f| fact.valid < f)
                    || q.valid_to.is_some_and(|t| fact.valid >= t)
                    || !q.matches(fact);
                (!left_out).then_some(ChronologyItem {
                    slot: *slot,
                    retracted,
                    corrected: v > 0,
                })
            };
            Ok(self.read_act(slot.position, shown)?.flatten())
        };
        // The page starts past its cursor: after `after` going forward, before `before` going
        // backward; the blocks are read from the one holding the cursor, in the page's direction.
        let cursor = if q.backward { q.before } else { q.after };
        let past_cursor =
            |slot: &Slot| cursor.is_none_or(|c| if q.backward { *slot < c } else { *slot > c });
        let from = cursor.map(|c| {
            let mut k = Vec::new();
            c.sort_key_into(&mut k);
            k
        });
        let mut more = false;
        'blocks: for block in
            self.chronology
                .blocks(present(&self.disk)?, &[], from.as_deref(), q.backward)?
        {
            let (_, block) = block?;
            let slots: Box<dyn Iterator<Item = &Slot>> = if q.backward {
                Box::new(block.items.iter().rev())
            } else {
                Box::new(block.items.iter())
            };
            for slot in slots.filter(|s| past_cursor(s)) {
                if let Some(item) = in_page(slot)? {
                    if items.len() == q.limit {
                        more = true;
                        break 'blocks;
                    }
                    items.push(item);
                }
            }
        }
        if q.backward {
            items.reverse();
        }
        Ok((items, more))
    }
}

/// The current run and the history of a position list, as a sweep over valid time.
///
/// A slot starts setting its stance when it activates: at its valid time, or for an eased measure
/// at its effective date (its place in the list). At any time the stance is that of the newest
/// slot (by valid time, then position) among those active; a measure imposed switches from
/// threat to measure at its effective date while it is the newest. A new newest slot with the
/// stance already held reaffirms it.
fn compute_run(items: &[Stated], when: When) -> Option<Computed> {
    let mut sweep = Sweep::default();
    let mut newest: Option<&Stated> = None;
    for item in items
        .iter()
        .filter(|i| i.live_at(when.known_at) && i.starts <= when.valid_at)
    {
        if let Some(n) = newest {
            sweep.take_effect(n, item.starts, false);
        }
        if newest.is_none_or(|n| item.slot > n.slot) {
            newest = Some(item);
            sweep.measure_shown = false;
            let stance = item.rule.stance_at(item.starts)?;
            sweep.measure_shown = stance == Stance::Measure;
            let precision = start_precision(item);
            sweep.state(stance, item.starts, precision, item.slot);
        }
    }
    if let Some(n) = newest {
        sweep.take_effect(n, when.valid_at, true);
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
    fn take_effect(&mut self, newest: &Stated, until: i64, inclusive: bool) {
        if self.measure_shown {
            return;
        }
        if let Some(change) = measure_taking_effect(newest.slot, newest.rule, until, inclusive) {
            self.measure_shown = true;
            self.history.push(change);
            self.run = vec![newest.slot];
            self.reaffirmed = 0;
        }
    }
}

/// The change to a measure in force, if `rule` imposes one that takes effect before `until` (or
/// at it, when `inclusive`); the measure dates from its effective date, or from its slot's
/// valid time if that is later.
fn measure_taking_effect(
    slot: Slot,
    rule: StanceRule,
    until: i64,
    inclusive: bool,
) -> Option<Change> {
    let StanceRule::Impose { effective } = rule else {
        return None;
    };
    let due = if inclusive {
        effective <= until
    } else {
        effective < until
    };
    due.then(|| Change {
        stance: Stance::Measure,
        at: effective.max(slot.valid),
        precision: Precision::Day,
        slot,
    })
}

/// The precision of a change of stance a slot makes: its own when the sweep takes it up at its
/// valid time, a day when at an eased measure's effective date.
fn start_precision(item: &Stated) -> Precision {
    if item.starts == item.slot.valid {
        item.slot.precision
    } else {
        Precision::Day
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
