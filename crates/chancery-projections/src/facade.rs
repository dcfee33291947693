//! The query facade: what the API layer asks of the projections, in plain Rust. Every question
//! takes an [`AsOf`]: the world as of a valid time, as the log knew it at a position or instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use chancery_domain::payload::Payload;
use chancery_domain::{
    Amount, Attribution, EventId, IssueSlug, Kind, NewEvent, PartyCode, Position, RecordedEvent,
    TimelineSlug, Timestamp, ValidTime,
};

use crate::engine::Projections;
use crate::error::ProjectionError;
use crate::facts::Stance;
use crate::query::{Bucket, BucketTotals, ChronologyQuery, Computed, When};
use crate::rules::{StandoffStatus, standoff_status};
use crate::state::{PairKey, PositionKey, ProjectionState, Slot};

/// What the log knew: up to a position, or up to an instant of transaction time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownAt {
    Position(Position),
    Instant(Timestamp),
}

/// The two times of a question. `None` means now: the present world, as known now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AsOf {
    /// The world as of this valid time (inclusive of its whole span: a day means its end).
    pub valid_at: Option<ValidTime>,
    pub known_at: Option<KnownAt>,
}

impl AsOf {
    pub const NOW: AsOf = AsOf {
        valid_at: None,
        known_at: None,
    };
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PositionQuery {
    pub timeline: Option<TimelineSlug>,
    pub parties: Vec<PartyCode>,
    pub issues: Vec<IssueSlug>,
    pub as_of: AsOf,
    pub lists: PositionLists,
}

/// Which of a position's lists an answer carries. Each costs a lookup per listed event (about
/// 40 ms per answer for the 800 positions of a timeline of 250,000 events), so a question that
/// leaves them out should not pay for them; a list left out is empty. By default both are
/// computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionLists {
    pub supporting: bool,
    pub history: bool,
}

impl Default for PositionLists {
    fn default() -> Self {
        PositionLists {
            supporting: true,
            history: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PositionChange {
    pub stance: Stance,
    pub at: ValidTime,
    pub event: EventId,
}

/// Where a party stands on an issue of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionView {
    pub timeline: TimelineSlug,
    pub party: PartyCode,
    pub issue: IssueSlug,
    pub stance: Stance,
    /// The newest event holding the stance, as it reads at the question's known-at time.
    pub event: Content,
    pub event_position: Position,
    pub amounts: Vec<Amount>,
    pub conditions: Vec<String>,
    pub first_stated: ValidTime,
    pub last_reaffirmed: ValidTime,
    pub reaffirmed: u32,
    /// The events of the current stance, oldest first (the newest 50 at most).
    pub supporting: Vec<EventId>,
    pub attribution: Vec<Attribution>,
    pub confidence: Option<f64>,
    pub history: Vec<PositionChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub party: PartyCode,
    pub stance: Stance,
    pub event: EventId,
}

/// Where an issue stands between the parties of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StandoffView {
    pub timeline: TimelineSlug,
    pub issue: IssueSlug,
    pub status: StandoffStatus,
    pub sides: Vec<Side>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationsQuery {
    pub a: PartyCode,
    pub b: PartyCode,
    pub bucket: Bucket,
    pub from: Option<ValidTime>,
    pub to: Option<ValidTime>,
    pub timeline: Option<TimelineSlug>,
    pub as_of: AsOf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationsBucket {
    /// The first day of the bucket.
    pub start: ValidTime,
    pub totals: BucketTotals,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChronologyRequest {
    pub timelines: Vec<TimelineSlug>,
    pub parties: Vec<PartyCode>,
    pub issues: Vec<IssueSlug>,
    pub kinds: Vec<Kind>,
    pub valid_from: Option<ValidTime>,
    pub valid_to: Option<ValidTime>,
    pub as_of: AsOf,
    pub after: Option<Slot>,
    pub before: Option<Slot>,
    /// Take the page from the end (the last `limit` before `before`).
    pub backward: bool,
    pub limit: usize,
    pub include_retracted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChronologyEntry {
    /// Where the entry sits in valid-time order; a cursor for the next page.
    pub slot: Slot,
    pub record: RecordedEvent,
    /// The event as it reads at the question's known-at time (corrections applied).
    pub effective: Content,
    pub retracted: bool,
    pub corrected: bool,
}

/// An event's content as it reads at a question's known-at time: the record's own when no
/// correction is known by then (shared, not copied), else a corrected copy.
#[derive(Debug, Clone)]
pub enum Content {
    /// Made by [`Content::recorded`] only, which decodes the record first.
    Recorded(RecordedEvent),
    Corrected(Arc<NewEvent>),
}

impl Content {
    /// A record's own content: decoded now, so that reading it later cannot fail.
    pub fn recorded(record: RecordedEvent) -> Result<Content, ProjectionError> {
        record.event().map_err(|e| {
            ProjectionError::Corrupt(format!("the record at position {}: {e}", record.position()))
        })?;
        Ok(Content::Recorded(record))
    }

    pub fn to_event(&self) -> NewEvent {
        NewEvent::clone(self)
    }
}

impl std::ops::Deref for Content {
    type Target = NewEvent;

    fn deref(&self) -> &NewEvent {
        match self {
            Content::Recorded(record) => match record.decoded() {
                Some(event) => event,
                // `Content::recorded` decoded it: a decoded event stays decoded.
                None => unreachable!("a recorded content is decoded when it is made"),
            },
            Content::Corrected(event) => event,
        }
    }
}

impl PartialEq for Content {
    fn eq(&self, other: &Content) -> bool {
        **self == **other
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChronologyPage {
    pub entries: Vec<ChronologyEntry>,
    pub has_more: bool,
}

/// Reads of the present time by the projections in this process. `now_seconds` is their only
/// clock: a question without a valid time is asked as of now.
static PRESENT_TIME_READS: AtomicU64 = AtomicU64::new(0);

fn now_seconds() -> i64 {
    PRESENT_TIME_READS.fetch_add(1, Ordering::SeqCst);
    Timestamp::from_system_time(SystemTime::now()).unix_seconds()
}

/// How many times the projections have read the present time in this process. An answer
/// computed while this count stood still did not depend on the present, only on the state it
/// was computed from (the answer cache keeps such answers past the second they were asked in).
pub fn present_time_reads() -> u64 {
    PRESENT_TIME_READS.load(Ordering::SeqCst)
}

fn valid_time(seconds: i64, precision: chancery_domain::Precision) -> ValidTime {
    ValidTime::from_earliest(seconds, precision)
        .unwrap_or(ValidTime::Year(chancery_domain::time::MIN_YEAR))
}

impl Projections {
    fn read_state(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, crate::engine::Inner>, ProjectionError> {
        self.inner
            .read()
            .map_err(|_| ProjectionError::Corrupt("state lock poisoned".into()))
    }

    /// The two times of a question as numbers: now is the present time and the applied head.
    pub fn when(&self, as_of: &AsOf) -> Result<When, ProjectionError> {
        let inner = self.read_state()?;
        resolve(&inner.state, as_of)
    }

    /// Where parties stand on issues, by timeline, issue and party name.
    pub async fn positions(
        &self,
        query: &PositionQuery,
    ) -> Result<Vec<PositionView>, ProjectionError> {
        let (when, found) = {
            let inner = self.read_state()?;
            let state = &inner.state;
            let when = resolve(state, &query.as_of)?;
            let Some(keys) = position_keys(state, query) else {
                return Ok(Vec::new());
            };
            let mut found = Vec::new();
            let lists = query.lists.supporting || query.lists.history;
            for key in keys {
                if let Some(computed) = state.compute_position(&key, when, lists)? {
                    let (supporting, history) = position_lists(state, &computed, query.lists)?;
                    let Some(names) = names_of(state, &key) else {
                        continue;
                    };
                    found.push(FoundPosition {
                        names,
                        computed,
                        supporting,
                        history,
                    });
                }
            }
            (when, found)
        };
        let mut views = Vec::with_capacity(found.len());
        for position in found {
            let Some(event) = self
                .effective_event(position.computed.latest.position, when.known_at)
                .await?
            else {
                continue;
            };
            views.push(position.into_view(event));
        }
        Ok(views)
    }

    pub fn standoffs(
        &self,
        timeline: Option<&TimelineSlug>,
        issues: &[IssueSlug],
        as_of: &AsOf,
    ) -> Result<Vec<StandoffView>, ProjectionError> {
        let inner = self.read_state()?;
        let state = &inner.state;
        let when = resolve(state, as_of)?;
        let (Some(timeline_ids), Some(issue_ids)) = (
            state.names.timelines.known_ids(timeline.as_slice()),
            state.names.issues.known_ids(issues),
        ) else {
            return Ok(Vec::new());
        };
        let mut groups: Vec<(u32, u32)> = state
            .standoff_parties
            .keys()
            .filter(|(t, i)| admits(&timeline_ids, *t) && admits(&issue_ids, *i))
            .copied()
            .collect();
        groups.sort_by(|a, b| {
            (
                state.names.timelines.name(a.0),
                state.names.issues.name(a.1),
            )
                .cmp(&(
                    state.names.timelines.name(b.0),
                    state.names.issues.name(b.1),
                ))
        });
        let mut out = Vec::new();
        for (t, i) in groups {
            let mut sides = Vec::new();
            for key in state.standoff_keys(t, i) {
                if let Some(computed) = state.compute_position(&key, when, false)? {
                    let Some((_, party, _)) = names_of(state, &key) else {
                        continue;
                    };
                    let Some(event) = state.act_id(computed.latest.position)? else {
                        continue;
                    };
                    sides.push(Side {
                        party,
                        stance: computed.stance,
                        event,
                    });
                }
            }
            if sides.is_empty() {
                continue;
            }
            sides.sort_by(|a, b| a.party.cmp(&b.party));
            let stances: Vec<Stance> = sides.iter().map(|s| s.stance).collect();
            let Some((timeline, _, issue)) = names_of(
                state,
                &PositionKey {
                    timeline: t,
                    party: sides_party(state, t, i),
                    issue: i,
                },
            ) else {
                continue;
            };
            out.push(StandoffView {
                timeline,
                issue,
                status: standoff_status(&stances),
                sides,
            });
        }
        Ok(out)
    }

    pub fn relations(
        &self,
        query: &RelationsQuery,
    ) -> Result<Vec<RelationsBucket>, ProjectionError> {
        let inner = self.read_state()?;
        let state = &inner.state;
        let when = resolve(state, &query.as_of)?;
        let (Some(a), Some(b)) = (
            state.names.parties.get(query.a.as_str()),
            state.names.parties.get(query.b.as_str()),
        ) else {
            return Ok(Vec::new());
        };
        let Some(timelines) = state.names.timelines.known_ids(query.timeline.as_slice()) else {
            return Ok(Vec::new());
        };
        let timeline = timelines.first().copied();
        let from = query.from.map_or(i64::MIN, |f| f.earliest());
        let to = query.to.map_or(i64::MAX, |t| t.end_exclusive());
        Ok(state
            .relations(PairKey::new(a, b), query.bucket, from, to, timeline, when)?
            .into_iter()
            .map(|totals| RelationsBucket {
                start: valid_time(totals.start, chancery_domain::Precision::Day),
                totals,
            })
            .collect())
    }

    pub async fn chronology(
        &self,
        request: &ChronologyRequest,
    ) -> Result<ChronologyPage, ProjectionError> {
        let (when, items, has_more) = {
            let inner = self.read_state()?;
            let state = &inner.state;
            let when = resolve(state, &request.as_of)?;
            let timelines = state.names.timelines.known_ids(&request.timelines);
            let parties = state.names.parties.known_ids(&request.parties);
            let issues = state.names.issues.known_ids(&request.issues);
            let (Some(timelines), Some(parties), Some(issues)) = (timelines, parties, issues)
            else {
                return Ok(ChronologyPage {
                    entries: Vec::new(),
                    has_more: false,
                });
            };
            let query = ChronologyQuery {
                timelines,
                parties,
                issues,
                kinds: request.kinds.clone(),
                valid_from: request.valid_from.map(|v| v.earliest()),
                valid_to: request.valid_to.map(|v| v.end_exclusive()),
                when,
                after: request.after,
                before: request.before,
                backward: request.backward,
                limit: request.limit,
                include_retracted: request.include_retracted,
            };
            let (items, more) = state.chronology_page(&query)?;
            (when, items, more)
        };
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let Some(record) = self.record(item.slot.position).await? else {
                continue;
            };
            let effective = match item.corrected {
                true => {
                    self.effective_event(item.slot.position, when.known_at)
                        .await?
                }
                false => None,
            };
            let effective = match effective {
                Some(content) => content,
                None => Content::recorded(record.clone())?,
            };
            entries.push(ChronologyEntry {
                slot: item.slot,
                record,
                effective,
                retracted: item.retracted,
                corrected: item.corrected,
            });
        }
        Ok(ChronologyPage { entries, has_more })
    }

    /// Whether an event is retracted, and whether corrected, as known at a position.
    pub fn status_of(
        &self,
        position: Position,
        known_at: Option<Position>,
    ) -> Result<Option<(bool, bool)>, ProjectionError> {
        let inner = self.read_state()?;
        let state = &inner.state;
        let known_at = known_at.unwrap_or(state.head());
        Ok(state
            .act_head(position, known_at)?
            .and_then(|head| Some((head.retracted, head.shown? > 0))))
    }
}

fn resolve(state: &ProjectionState, as_of: &AsOf) -> Result<When, ProjectionError> {
    let head = state.head();
    let known_at = match as_of.known_at {
        None => head,
        Some(KnownAt::Position(p)) => p.min(head),
        Some(KnownAt::Instant(t)) => state.position_at_instant(t)?,
    };
    let valid_at = as_of
        .valid_at
        .map_or_else(now_seconds, |v| v.end_exclusive() - 1);
    Ok(When { valid_at, known_at })
}

/// The keys of the positions a query asks for, in name order; `None` when it names a
/// timeline, or only parties or issues, that the log never mentioned (nothing matches).
fn position_keys(state: &ProjectionState, query: &PositionQuery) -> Option<Vec<PositionKey>> {
    let names = &state.names;
    let timelines = names.timelines.known_ids(query.timeline.as_slice())?;
    let parties = names.parties.known_ids(&query.parties)?;
    let issues = names.issues.known_ids(&query.issues)?;
    let mut keys: Vec<PositionKey> = state
        .position_keys()
        .into_iter()
        .filter(|k| {
            admits(&timelines, k.timeline) && admits(&parties, k.party) && admits(&issues, k.issue)
        })
        .collect();
    keys.sort_by(|a, b| {
        let name = |k: &PositionKey| {
            (
                names.timelines.name(k.timeline),
                names.issues.name(k.issue),
                names.parties.name(k.party),
            )
        };
        name(a).cmp(&name(b))
    });
    Some(keys)
}

/// Whether a filter of ids lets `id` through: an empty filter lets everything through.
fn admits(filter: &[u32], id: u32) -> bool {
    filter.is_empty() || filter.contains(&id)
}

/// A position's supporting events and stance changes, each only if the question asks for it.
fn position_lists(
    state: &ProjectionState,
    computed: &Computed,
    lists: PositionLists,
) -> Result<(Vec<EventId>, Vec<PositionChange>), ProjectionError> {
    let mut supporting: Vec<EventId> = Vec::new();
    if lists.supporting {
        for s in &computed.supporting {
            if let Some(event) = state.act_id(s.position)? {
                supporting.push(event);
            }
        }
    }
    let mut history: Vec<PositionChange> = Vec::new();
    if lists.history {
        for c in &computed.history {
            if let Some(event) = state.act_id(c.slot.position)? {
                history.push(PositionChange {
                    stance: c.stance,
                    at: valid_time(c.at, c.precision),
                    event,
                });
            }
        }
    }
    Ok((supporting, history))
}

/// A position as computed under the state lock, before its event is read from the log.
struct FoundPosition {
    names: (TimelineSlug, PartyCode, IssueSlug),
    computed: Computed,
    supporting: Vec<EventId>,
    history: Vec<PositionChange>,
}

impl FoundPosition {
    /// The answer, given the newest event holding the stance as it reads at the question's time.
    fn into_view(self, event: Content) -> PositionView {
        let FoundPosition {
            names: (timeline, party, issue),
            computed,
            supporting,
            history,
        } = self;
        PositionView {
            timeline,
            party,
            issue,
            stance: computed.stance,
            amounts: event.amounts.clone(),
            conditions: conditions(&event),
            first_stated: valid_time(computed.first.valid, computed.first.precision),
            last_reaffirmed: valid_time(computed.latest.valid, computed.latest.precision),
            reaffirmed: computed.reaffirmed,
            supporting,
            attribution: attributions(&event),
            confidence: event.confidence,
            history,
            event_position: computed.latest.position,
            event,
        }
    }
}

/// The names of a key. Interned names were valid slugs and codes when interned, so this fails
/// only on a damaged checkpoint; such keys are left out of answers.
fn names_of(
    state: &ProjectionState,
    key: &PositionKey,
) -> Option<(TimelineSlug, PartyCode, IssueSlug)> {
    Some((
        TimelineSlug::new(state.names.timelines.name(key.timeline)).ok()?,
        PartyCode::new(state.names.parties.name(key.party)).ok()?,
        IssueSlug::new(state.names.issues.name(key.issue)).ok()?,
    ))
}

/// Any party of a standoff, to name its key (the party is not part of the standoff's name).
fn sides_party(state: &ProjectionState, timeline: u32, issue: u32) -> u32 {
    state
        .standoff_parties
        .get(&(timeline, issue))
        .and_then(|p| p.first().copied())
        .unwrap_or(0)
}

fn conditions(event: &NewEvent) -> Vec<String> {
    match &event.payload {
        Payload::Offer(o) => o.conditions.clone(),
        Payload::Threat(t) => t.condition.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

fn attributions(event: &NewEvent) -> Vec<Attribution> {
    let mut out: Vec<Attribution> = Vec::new();
    for s in &event.sources {
        if !out.contains(&s.attribution) {
            out.push(s.attribution);
        }
    }
    out
}
