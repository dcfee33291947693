//! Reads of the log: records by position from the segments, by id and timeline version through
//! the index, and filtered scans that walk the smallest fitting index and check the rest of the
//! filter on each record's terms. Every read is bounded by a head: nothing past the head the
//! writer published is ever seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chancery_domain::{EventId, Kind, Position, RecordedEvent, Registry, TimelineSlug};
use chancery_store::{Direction, EventFilter, ReadRequest, StoreError};

use crate::keys::{self, IdEntry};
use crate::postings;
use crate::segments::Segments;

/// Turns a sled error into the store's: a full disk is told apart, so users know what to do.
pub fn storage_error(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => io_error(&io),
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            position: None,
            detail: e.to_string(),
        },
        other => StoreError::Storage(other.to_string()),
    }
}

pub fn io_error(io: &std::io::Error) -> StoreError {
    if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
        // Not `io` itself: sled hands on its sticky errors formatted with `Debug`.
        StoreError::StorageFull(
            "no space left on the log's disk; free some space: appends resume when there is \
             room, reads keep working"
                .into(),
        )
    } else {
        StoreError::Storage(io.to_string())
    }
}

pub fn corrupt(position: Option<Position>, detail: &str) -> StoreError {
    StoreError::Corrupt {
        position,
        detail: detail.to_owned(),
    }
}

/// Reads of the log. Clones share the segments, the index tree (which the writer swaps when it
/// reopens the database: sled refuses every write after its first I/O error, and only a reopen
/// clears that) and the published head.
#[derive(Clone)]
pub struct Reader {
    segments: Arc<Segments>,
    /// `None` only while the writer reopens the database.
    tree: Arc<RwLock<Option<sled::Tree>>>,
    /// The head the writer published: the end of what readers may see.
    published: Arc<AtomicU64>,
}

impl Reader {
    pub fn new(segments: Arc<Segments>, tree: sled::Tree, published: Arc<AtomicU64>) -> Self {
        Self {
            segments,
            tree: Arc::new(RwLock::new(Some(tree))),
            published,
        }
    }

    /// The published head's position.
    pub fn head(&self) -> Position {
        self.published.load(Ordering::Acquire)
    }

    pub fn segments(&self) -> &Arc<Segments> {
        &self.segments
    }

    /// The tree as it is now; each read takes its own handle, so a reopen waits for no reader.
    pub fn tree(&self) -> Result<sled::Tree, StoreError> {
        self.tree
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Reopening(
                    "the log is being reopened after a write failure; retry shortly".into(),
                )
            })
    }

    /// Puts another tree in place (`None` to let the database go), answering the one before.
    pub fn replace(&self, tree: Option<sled::Tree>) -> Option<sled::Tree> {
        let mut slot = self
            .tree
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *slot, tree)
    }

    /// A reader of the same log with a tree of its own (the writer's, while it reopens).
    pub fn with_tree(&self, tree: sled::Tree) -> Reader {
        Reader {
            segments: Arc::clone(&self.segments),
            tree: Arc::new(RwLock::new(Some(tree))),
            published: Arc::clone(&self.published),
        }
    }

    /// The record at `position`, if it is at most `bound`.
    pub fn record_within(
        &self,
        position: Position,
        bound: Position,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        if position == 0 || position > bound {
            return Ok(None);
        }
        self.segments.read(position)
    }

    /// What the index says of an event, as the log stood at `bound`.
    pub fn id_entry_within(
        &self,
        id: &EventId,
        bound: Position,
    ) -> Result<Option<IdEntry>, StoreError> {
        let Some(record) = self.event_within(id, bound)? else {
            return Ok(None);
        };
        let view = record
            .view()
            .map_err(|e| corrupt(Some(record.position()), &e.to_string()))?;
        let timeline = TimelineSlug::new(view.timeline)
            .map_err(|e| corrupt(Some(record.position()), &e.to_string()))?;
        let retracted_at = self.retraction_of(id, bound)?;
        Ok(Some(IdEntry {
            position: record.position(),
            kind: record.kind(),
            retracted_at,
            timeline,
        }))
    }

    /// The position of the retraction of event `id`, if the log holds one at most `bound`. Its
    /// mark is checked against the record it names: a mark written for a record that a crash
    /// then took away (a copy that skips syncing) may name a position that came back holding
    /// another record.
    fn retraction_of(&self, id: &EventId, bound: Position) -> Result<Option<Position>, StoreError> {
        let mark = self
            .tree()?
            .get(keys::retraction(id))
            .map_err(storage_error)?
            .and_then(|v| keys::u64_prefix(&v));
        let Some(at) = mark else {
            return Ok(None);
        };
        let Some(record) = self.record_within(at, bound)? else {
            return Ok(None);
        };
        let unreadable = |e: chancery_domain::RecordError| corrupt(Some(at), &e.to_string());
        let payload = record
            .view()
            .map_err(unreadable)?
            .payload()
            .map_err(unreadable)?;
        let retracts =
            matches!(payload, chancery_domain::Payload::Retraction(r) if r.retracts == *id);
        Ok(retracts.then_some(at))
    }

    /// The record with `id`, if the log holds one at most `bound`.
    fn event_within(
        &self,
        id: &EventId,
        bound: Position,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let Some(position) = self.segments.find_id(id, bound)? else {
            return Ok(None);
        };
        let record = self.record_within(position, bound)?.ok_or_else(|| {
            corrupt(
                Some(position),
                &format!("event {id} is indexed but its record is missing"),
            )
        })?;
        if record.id() != *id {
            return Err(corrupt(
                Some(position),
                &format!("event {id} is indexed at a record of another id"),
            ));
        }
        Ok(Some(record))
    }

    pub fn event(&self, id: &EventId) -> Result<Option<RecordedEvent>, StoreError> {
        self.event_within(id, self.head())
    }

    /// A timeline's version as the log stood at `bound`: the number of its events up to there.
    pub fn timeline_version_within(
        &self,
        timeline: &str,
        bound: Position,
    ) -> Result<Option<u64>, StoreError> {
        let prefix = keys::postings(keys::DIM_TIMELINE, timeline.as_bytes());
        let count = postings::count(&self.tree()?, &prefix, bound)?;
        Ok((count > 0).then_some(count))
    }

    pub fn timeline_version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError> {
        self.timeline_version_within(timeline.as_str(), self.head())
    }

    pub fn read(&self, request: &ReadRequest) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let mut out = Vec::new();
        if request.limit == 0 {
            return Ok(out);
        }
        let backward = request.direction == Direction::Backward;
        let from = request.from.min(head);
        let Some(mut positions) = self.positions(&request.filter, from, backward, head) else {
            return self.read_all(request.from, request.limit, backward, head);
        };
        // As many positions as records still wanted, read together: never more than the
        // filter could keep.
        let mut batch = Vec::new();
        while out.len() < request.limit {
            batch.clear();
            for position in positions.by_ref().take(request.limit - out.len()) {
                batch.push(position?);
            }
            if batch.is_empty() {
                break;
            }
            for record in self.records_within(&batch, head)? {
                if request.filter.matches_record(&record) {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// The records at `positions` (read from an index), in the order given; a position past
    /// `bound` is an index out of step with the log.
    fn records_within(
        &self,
        positions: &[Position],
        bound: Position,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if let Some(&past) = positions.iter().find(|&&p| p == 0 || p > bound) {
            return Err(corrupt(Some(past), "indexed past the log's end"));
        }
        self.segments.read_many(positions)
    }

    /// Every record from `from` on (or back), read from the segments in one pass.
    fn read_all(
        &self,
        from: Position,
        limit: usize,
        backward: bool,
        head: Position,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let (lo, hi) = if backward {
            let hi = from.min(head);
            (hi.saturating_sub(limit - 1).max(1), hi)
        } else {
            let lo = from.max(1);
            (lo, head.min(lo.saturating_add(limit - 1)))
        };
        let mut out = Vec::with_capacity(
            usize::try_from((hi + 1).saturating_sub(lo))
                .unwrap_or(0)
                .min(65_536),
        );
        self.segments.scan(lo, hi, &mut |record| {
            out.push(record);
            true
        })?;
        if backward {
            out.reverse();
        }
        Ok(out)
    }

    /// Positions to visit for a filter, from the most selective index it allows; `None` for a
    /// filter that names nothing, which no index narrows: [`Reader::read_all`] reads those.
    fn positions(
        &self,
        filter: &EventFilter,
        from: Position,
        backward: bool,
        head: Position,
    ) -> Option<Box<dyn Iterator<Item = Result<Position, StoreError>> + '_>> {
        if filter.is_empty() {
            return None;
        }
        let tree = match self.tree() {
            Ok(tree) => tree,
            Err(e) => return Some(Box::new(std::iter::once(Err(e)))),
        };
        let wildcard = |values: Vec<Vec<u8>>| {
            values
                .into_iter()
                .chain([keys::WILDCARD.to_vec()])
                .collect::<Vec<_>>()
        };
        let names = |list: &[&str]| list.iter().map(|s| s.as_bytes().to_vec()).collect();
        let (dimension, values): (u8, Vec<Vec<u8>>) = if !filter.issues.is_empty() {
            let issues: Vec<&str> = filter.issues.iter().map(|i| i.as_str()).collect();
            (keys::DIM_ISSUE, wildcard(names(&issues)))
        } else if !filter.parties.is_empty() {
            let parties: Vec<&str> = filter.parties.iter().map(|p| p.as_str()).collect();
            (keys::DIM_PARTY, wildcard(names(&parties)))
        } else if !filter.timelines.is_empty() {
            let timelines: Vec<&str> = filter.timelines.iter().map(|t| t.as_str()).collect();
            (keys::DIM_TIMELINE, names(&timelines))
        } else {
            (
                keys::DIM_KIND,
                filter
                    .kinds
                    .iter()
                    .map(|k| keys::kind_value(*k).to_vec())
                    .collect(),
            )
        };
        let streams: Vec<Positions<'_>> = values
            .iter()
            .map(|value| {
                let prefix = keys::postings(dimension, value);
                Box::new(postings::positions(&tree, prefix, from, backward, head)) as Positions<'_>
            })
            .collect();
        Some(Box::new(Merged::new(streams, backward)))
    }

    /// Events of a timeline from a version on, in version order.
    pub fn read_timeline(
        &self,
        timeline: &TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let tree = self.tree()?;
        let prefix = keys::postings(keys::DIM_TIMELINE, timeline.as_str().as_bytes());
        let Some(start) = postings::nth(&tree, &prefix, from_version.max(1) - 1, head)? else {
            return Ok(Vec::new());
        };
        let positions = postings::positions(&tree, prefix, start, false, head)
            .take(limit)
            .collect::<Result<Vec<_>, _>>()?;
        self.records_within(&positions, head)
    }

    /// Rebuilds the registry and the timelines' versions as the log stands at `head`: the
    /// registrations from the kind index, the versions from each registered timeline's last.
    pub fn load_state(
        &self,
        head: Position,
    ) -> Result<(Registry, HashMap<TimelineSlug, u64>), StoreError> {
        let mut registry = Registry::default();
        let tree = self.tree()?;
        let mut positions = Vec::new();
        for kind in [
            Kind::TimelineRegistered,
            Kind::PartyRegistered,
            Kind::ActorRegistered,
            Kind::IssueRegistered,
        ] {
            let prefix = keys::postings(keys::DIM_KIND, &keys::kind_value(kind));
            for position in postings::positions(&tree, prefix, 0, false, head) {
                positions.push(position?);
            }
        }
        positions.sort_unstable();
        for position in positions {
            let record = self
                .record_within(position, head)?
                .ok_or_else(|| corrupt(Some(position), "indexed but missing"))?;
            let event = record
                .event()
                .map_err(|e| corrupt(Some(position), &e.to_string()))?;
            registry.apply(event);
        }
        let mut versions = HashMap::new();
        for timeline in registry.timelines.keys() {
            if let Some(v) = self.timeline_version_within(timeline.as_str(), head)? {
                versions.insert(timeline.clone(), v);
            }
        }
        Ok((registry, versions))
    }
}

/// A stream of positions read from an index.
type Positions<'a> = Box<dyn Iterator<Item = Result<Position, StoreError>> + 'a>;

/// Merges sorted streams of positions into one sorted stream without duplicates.
struct Merged<'a> {
    streams: Vec<std::iter::Peekable<Positions<'a>>>,
    backward: bool,
    last: Option<Position>,
}

impl<'a> Merged<'a> {
    fn new(streams: Vec<Positions<'a>>, backward: bool) -> Self {
        Self {
            streams: streams.into_iter().map(Iterator::peekable).collect(),
            backward,
            last: None,
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<Position, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut best: Option<(usize, Position)> = None;
            for (i, stream) in self.streams.iter_mut().enumerate() {
                match stream.peek() {
                    None => {}
                    Some(Err(_)) => return stream.next(),
                    Some(Ok(p)) => {
                        let better = match best {
                            None => true,
                            Some((_, b)) => {
                                if self.backward {
                                    *p > b
                                } else {
                                    *p < b
                                }
                            }
                        };
                        if better {
                            best = Some((i, *p));
                        }
                    }
                }
            }
            let (i, position) = best?;
            self.streams[i].next();
            if self.last != Some(position) {
                self.last = Some(position);
                return Some(Ok(position));
            }
        }
    }
}
