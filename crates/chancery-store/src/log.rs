//! The log contract: one trait, [`EventLog`], implemented by every storage backend, with the
//! requests and answers it speaks in.
//!
//! The contract, which `contract` tests for every backend:
//! - `append` is atomic for its batch, checks the expected version of the timeline, validates
//!   every event against the log (and earlier events of the batch), and returns only once the
//!   events are durable. Positions are gapless from 1; versions are gapless from 1 per timeline.
//! - Appends are idempotent by event id: a batch whose every event is already recorded with the
//!   same content returns the original positions (`deduplicated`); an id recorded with other
//!   content is an [`StoreError::IdConflict`].
//! - `subscribe` yields every matching event after a position, history then live, in position
//!   order, with no gap and no duplicate; a subscriber that falls behind reads from storage.

use std::fmt;
use std::sync::Arc;

use chancery_domain::{
    EventId, Hash, NewEvent, Position, RecordedEvent, Registry, TimelineSlug, Timestamp,
};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::error::StoreError;
use crate::filter::EventFilter;

/// What version an append expects its timeline to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Whatever the version.
    Any,
    /// The timeline has no events yet.
    NoTimeline,
    /// The timeline's last event has exactly this version.
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoTimeline => f.write_str("no events yet"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Events to append, all to one timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub timeline: TimelineSlug,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// The timelines whose events this request may name (as refused, answered, reaffirmed,
    /// retracted or corrected): an event of any other is checked as if it were not in the log.
    /// `None` for every timeline. The API sets it from the caller's grant, so that a reference
    /// cannot tell whether an event of a timeline the caller may not read exists.
    pub refers_within: Option<Vec<TimelineSlug>>,
}

/// Where one event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: EventId,
    pub position: Position,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// One entry per event of the request, in order.
    pub events: Vec<Appended>,
    /// True when the whole batch had been recorded before: nothing new was written.
    pub deduplicated: bool,
    /// The records, one per event, in order: what an answer shows without reading them back.
    pub records: Vec<RecordedEvent>,
}

impl AppendOutcome {
    pub fn last_position(&self) -> Position {
        self.events.last().map_or(0, |e| e.position)
    }

    pub fn last_version(&self) -> u64 {
        self.events.last().map_or(0, |e| e.version)
    }
}

/// The end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last position (0 when the log is empty).
    pub position: Position,
    /// The hash of the last event ([`Hash::GENESIS`] when empty).
    pub hash: Hash,
    /// When the last event was recorded.
    pub recorded_at: Option<Timestamp>,
}

impl Head {
    pub const EMPTY: Head = Head {
        position: 0,
        hash: Hash::GENESIS,
        recorded_at: None,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a position towards the head: positions `>= from`.
    Forward,
    /// From a position towards the start: positions `<= from`.
    Backward,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub from: Position,
    pub direction: Direction,
    pub filter: EventFilter,
    pub limit: usize,
}

impl ReadRequest {
    pub fn forward(from: Position, limit: usize) -> Self {
        Self {
            from,
            direction: Direction::Forward,
            filter: EventFilter::all(),
            limit,
        }
    }

    pub fn with_filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    pub restored: u64,
    pub head: Head,
}

/// A live feed of recorded events.
pub type EventStream = BoxStream<'static, Result<RecordedEvent, StoreError>>;

/// The event log. Every backend implements it and passes the contract test suite.
pub trait EventLog: Send + Sync {
    /// Appends a batch atomically; see the module docs for the rules.
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<AppendOutcome, StoreError>>;

    /// Writes records exported from another log verbatim (same positions, times and hashes),
    /// continuing this log's chain: the first must follow the current head. Every record is
    /// checked (hash, chain, positions, versions, validity) before anything is written. The
    /// records are stored bytes in any form `chancery_domain::decode_record` reads: export lines
    /// (canonical JSON) or another log's stored form.
    fn restore(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<RestoreOutcome, StoreError>>;

    fn head(&self) -> BoxFuture<'_, Result<Head, StoreError>>;

    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>>;

    /// Events of one timeline from a version on, in version order.
    fn read_timeline(
        &self,
        timeline: TimelineSlug,
        from_version: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>>;

    fn event(&self, id: EventId) -> BoxFuture<'_, Result<Option<RecordedEvent>, StoreError>>;

    /// The current version of a timeline, `None` when it has no events.
    fn timeline_version(
        &self,
        timeline: TimelineSlug,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>>;

    /// Everything registered so far.
    fn registry(&self) -> BoxFuture<'_, Result<Arc<Registry>, StoreError>>;

    /// Matching events after `after`: history, then live.
    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream;
}
