//! Reads of the log tree: events by position, id and timeline version, and filtered scans that
//! walk the smallest fitting index and check the rest of the filter on each event.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chancery_domain::{
    EventId, Kind, Position, RecordedEvent, Registry, TimelineSlug, decode_record,
};
use chancery_store::{Direction, EventFilter, RawRecord, ReadRequest, StoreError};

use crate::keys::{self, IdEntry};

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

/// Reads of the log tree. Clones share the tree, which the writer swaps when it reopens the
/// database: sled refuses every write after its first I/O error (a full disk), and only a reopen
/// clears that.
#[derive(Clone)]
pub struct Reader {
    /// `None` only while the writer reopens the database.
    tree: Arc<RwLock<Option<sled::Tree>>>,
}

impl Reader {
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree: Arc::new(RwLock::new(Some(tree))),
        }
    }

    /// The tree as it is now; each read takes its own handle, so a reopen waits for no reader.
    pub fn tree(&self) -> Result<sled::Tree, StoreError> {
        self.tree
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Storage(
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

    pub fn record(&self, position: Position) -> Result<Option<RecordedEvent>, StoreError> {
        match self
            .tree()?
            .get(keys::event(position))
            .map_err(storage_error)?
        {
            None => Ok(None),
            Some(bytes) => decode(position, &bytes).map(Some),
        }
    }

    /// The last record, if any.
    pub fn last_record(&self) -> Result<Option<(RecordedEvent, Vec<u8>)>, StoreError> {
        let last = self
            .tree()?
            .scan_prefix([keys::EVENT])
            .next_back()
            .transpose()
            .map_err(storage_error)?;
        match last {
            None => Ok(None),
            Some((key, bytes)) => {
                let position = keys::u64_suffix(&key)
                    .ok_or_else(|| corrupt(None, "an event key is malformed"))?;
                Ok(Some((decode(position, &bytes)?, bytes.to_vec())))
            }
        }
    }

    pub fn id_entry(&self, id: &EventId) -> Result<Option<IdEntry>, StoreError> {
        match self.tree()?.get(keys::id(id)).map_err(storage_error)? {
            None => Ok(None),
            Some(v) => IdEntry::decode(&v)
                .map(Some)
                .ok_or_else(|| corrupt(None, &format!("the id entry of {id} is malformed"))),
        }
    }

    pub fn event(&self, id: &EventId) -> Result<Option<RecordedEvent>, StoreError> {
        match self.id_entry(id)? {
            None => Ok(None),
            Some(entry) => self.record(entry.position)?.map(Some).ok_or_else(|| {
                corrupt(
                    Some(entry.position),
                    &format!("event {id} is indexed but its record is missing"),
                )
            }),
        }
    }

    pub fn timeline_version(&self, timeline: &TimelineSlug) -> Result<Option<u64>, StoreError> {
        let value = self
            .tree()?
            .get(keys::timeline_head(timeline))
            .map_err(storage_error)?;
        Ok(value.and_then(|v| keys::u64_prefix(&v)))
    }

    pub fn read(&self, request: &ReadRequest) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        let mut out = Vec::new();
        if request.limit == 0 {
            return Ok(out);
        }
        let backward = request.direction == Direction::Backward;
        let Some(mut positions) = self.positions(&request.filter, request.from, backward) else {
            return self.read_all(request.from, request.limit, backward);
        };
        while out.len() < request.limit {
            let Some(position) = positions.next() else {
                break;
            };
            let position = position?;
            let record = self
                .record(position)?
                .ok_or_else(|| corrupt(Some(position), "indexed but missing"))?;
            if request.filter.matches(&record.event) {
                out.push(Arc::new(record));
            }
        }
        Ok(out)
    }

    /// Every record from `from` on (or back): one scan of the `E` keys, their values decoded as
    /// they come, rather than a lookup per position (replay reads the whole log this way).
    fn read_all(
        &self,
        from: Position,
        limit: usize,
        backward: bool,
    ) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        let tree = self.tree()?;
        let range: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if backward {
            Box::new(tree.range(keys::event(0)..=keys::event(from)).rev())
        } else {
            Box::new(tree.range(keys::event(from)..=keys::event(Position::MAX)))
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        for kv in range.take(limit) {
            let (key, bytes) = kv.map_err(storage_error)?;
            let position =
                keys::u64_suffix(&key).ok_or_else(|| corrupt(None, "an event key is malformed"))?;
            out.push(Arc::new(decode(position, &bytes)?));
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
    ) -> Option<Box<dyn Iterator<Item = Result<Position, StoreError>> + '_>> {
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
        let (dimension, values): (u8, Vec<Vec<u8>>) = if !filter.issues.is_empty() {
            (
                keys::DIM_ISSUE,
                wildcard(
                    filter
                        .issues
                        .iter()
                        .map(|i| i.as_str().as_bytes().to_vec())
                        .collect(),
                ),
            )
        } else if !filter.parties.is_empty() {
            (
                keys::DIM_PARTY,
                wildcard(
                    filter
                        .parties
                        .iter()
                        .map(|p| p.as_str().as_bytes().to_vec())
                        .collect(),
                ),
            )
        } else if !filter.kinds.is_empty() {
            (
                keys::DIM_KIND,
                filter
                    .kinds
                    .iter()
                    .map(|k| keys::kind_value(*k).to_vec())
                    .collect(),
            )
        } else if !filter.timelines.is_empty() {
            (
                keys::DIM_TIMELINE,
                filter
                    .timelines
                    .iter()
                    .map(|t| t.as_str().as_bytes().to_vec())
                    .collect(),
            )
        } else {
            return None;
        };
        let streams: Vec<Box<dyn Iterator<Item = Result<Position, StoreError>>>> = values
            .iter()
            .map(|value| {
                let lo = keys::tag(dimension, value, if backward { 0 } else { from });
                let hi = keys::tag(
                    dimension,
                    value,
                    if backward { from } else { Position::MAX },
                );
                let range = tree.range(lo..=hi);
                let to_position = |kv: Result<(sled::IVec, sled::IVec), sled::Error>| {
                    let (k, _) = kv.map_err(storage_error)?;
                    keys::u64_suffix(&k).ok_or_else(|| corrupt(None, "a tag key is malformed"))
                };
                if backward {
                    Box::new(range.rev().map(to_position)) as Box<dyn Iterator<Item = _>>
                } else {
                    Box::new(range.map(to_position))
                }
            })
            .collect();
        Some(Box::new(Merged::new(streams, backward)))
    }

    pub fn read_timeline(
        &self,
        timeline: &TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        let lo = keys::version(timeline, from_version);
        let hi = keys::version(timeline, u64::MAX);
        let mut out = Vec::new();
        for kv in self.tree()?.range(lo..=hi).take(limit) {
            let (_, value) = kv.map_err(storage_error)?;
            let position = keys::u64_prefix(&value)
                .ok_or_else(|| corrupt(None, "a version entry is malformed"))?;
            let record = self
                .record(position)?
                .ok_or_else(|| corrupt(Some(position), "versioned but missing"))?;
            out.push(Arc::new(record));
        }
        Ok(out)
    }

    pub fn read_raw(&self, from: Position, limit: usize) -> Result<Vec<RawRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self
            .tree()?
            .range(keys::event(from)..=keys::event(Position::MAX))
            .take(limit)
        {
            let (k, v) = kv.map_err(storage_error)?;
            let position =
                keys::u64_suffix(&k).ok_or_else(|| corrupt(None, "an event key is malformed"))?;
            out.push(RawRecord {
                position,
                bytes: v.to_vec(),
            });
        }
        Ok(out)
    }

    /// Rebuilds the registry and timeline versions from the indexes, at open.
    pub fn load_state(&self) -> Result<(Registry, HashMap<TimelineSlug, u64>), StoreError> {
        let mut registry = Registry::default();
        let registrations = [
            Kind::TimelineRegistered,
            Kind::PartyRegistered,
            Kind::ActorRegistered,
            Kind::IssueRegistered,
        ];
        let mut positions = Vec::new();
        for kind in registrations {
            for kv in self
                .tree()?
                .scan_prefix(keys::tag_prefix(keys::DIM_KIND, &keys::kind_value(kind)))
            {
                let (k, _) = kv.map_err(storage_error)?;
                positions.push(
                    keys::u64_suffix(&k).ok_or_else(|| corrupt(None, "a tag key is malformed"))?,
                );
            }
        }
        positions.sort_unstable();
        for position in positions {
            let record = self
                .record(position)?
                .ok_or_else(|| corrupt(Some(position), "indexed but missing"))?;
            registry.apply(&record.event);
        }
        let mut versions = HashMap::new();
        for kv in self.tree()?.scan_prefix([keys::TIMELINE_HEAD]) {
            let (k, v) = kv.map_err(storage_error)?;
            let slug = std::str::from_utf8(&k[1..])
                .ok()
                .and_then(|s| TimelineSlug::new(s).ok());
            let version = keys::u64_prefix(&v);
            match (slug, version) {
                (Some(slug), Some(version)) => {
                    versions.insert(slug, version);
                }
                _ => return Err(corrupt(None, "a timeline head entry is malformed")),
            }
        }
        Ok((registry, versions))
    }
}

pub fn corrupt(position: Option<Position>, detail: &str) -> StoreError {
    StoreError::Corrupt {
        position,
        detail: detail.to_owned(),
    }
}

pub(crate) fn decode(position: Position, bytes: &[u8]) -> Result<RecordedEvent, StoreError> {
    let record = decode_record(bytes).map_err(|e| corrupt(Some(position), &e.to_string()))?;
    if record.position != position {
        return Err(corrupt(
            Some(position),
            &format!("the record says position {}", record.position),
        ));
    }
    Ok(record)
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
    fn new(
        streams: Vec<Box<dyn Iterator<Item = Result<Position, StoreError>> + 'a>>,
        backward: bool,
    ) -> Self {
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
