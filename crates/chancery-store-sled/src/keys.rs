//! The key layout of the log tree. All keyspaces live in one tree, written by one thread in a
//! fixed order (an event's `E` key before its indexes), so that what sled recovers after a crash,
//! a prefix of those writes, can be taken back to the last checkpoint (see `rollback`).
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `E` | position (u64 BE) | the record's canonical bytes |
//! | `I` | event id (16 bytes) | position (u64 BE), kind tag, retracted flag, timeline |
//! | `V` | timeline, 0, version (u64 BE) | position (u64 BE) |
//! | `H` | timeline | the timeline's version (u64 BE) |
//! | `X` | dimension, value, 0, position (u64 BE) | empty: the filter indexes |
//! | `M` | name | metadata (`format`; `checkpoint`: the head at the last checkpoint, u64 BE) |
//!
//! Slugs and codes never contain a 0 byte, so `value, 0` ends a prefix exactly.

use chancery_domain::{EventId, Kind, NewEvent, Position, TimelineSlug};

pub const EVENT: u8 = b'E';
pub const ID: u8 = b'I';
pub const VERSION: u8 = b'V';
pub const TIMELINE_HEAD: u8 = b'H';
pub const TAG: u8 = b'X';
pub const META: u8 = b'M';

/// The filter dimensions of the `X` keyspace.
pub const DIM_TIMELINE: u8 = b't';
pub const DIM_PARTY: u8 = b'p';
pub const DIM_ISSUE: u8 = b'i';
pub const DIM_KIND: u8 = b'k';

/// The party and issue value under which retractions and corrections are indexed, so that party
/// and issue filters find them (see `chancery_store::filter`).
pub const WILDCARD: &[u8] = b"*";

/// The on-disk format of this layout; stored under `M format`.
pub const FORMAT: u64 = 1;

pub fn event(position: Position) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The position of an `E` key; `None` for keys of other keyspaces.
pub fn event_position(key: &[u8]) -> Option<Position> {
    match key {
        [EVENT, rest @ ..] => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

pub fn id(id: &EventId) -> [u8; 17] {
    let mut k = [ID; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

pub fn version(timeline: &TimelineSlug, version: u64) -> Vec<u8> {
    let mut k = version_prefix(timeline);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn version_prefix(timeline: &TimelineSlug) -> Vec<u8> {
    let mut k = Vec::with_capacity(timeline.as_str().len() + 10);
    k.push(VERSION);
    k.extend_from_slice(timeline.as_str().as_bytes());
    k.push(0);
    k
}

pub fn timeline_head(timeline: &TimelineSlug) -> Vec<u8> {
    let mut k = Vec::with_capacity(timeline.as_str().len() + 1);
    k.push(TIMELINE_HEAD);
    k.extend_from_slice(timeline.as_str().as_bytes());
    k
}

pub fn tag_prefix(dimension: u8, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 11);
    k.push(TAG);
    k.push(dimension);
    k.extend_from_slice(value);
    k.push(0);
    k
}

pub fn tag(dimension: u8, value: &[u8], position: Position) -> Vec<u8> {
    let mut k = tag_prefix(dimension, value);
    k.extend_from_slice(&position.to_be_bytes());
    k
}

pub fn kind_value(kind: Kind) -> [u8; 1] {
    [kind.tag()]
}

pub const META_FORMAT: &[u8] = b"Mformat";

/// The head's position when sled was last made durable: what a crash can take sled back to.
pub const META_CHECKPOINT: &[u8] = b"Mcheckpoint";

/// Reads a big-endian u64 from the last 8 bytes of a key or the first 8 of a value.
pub fn u64_suffix(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.get(bytes.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn u64_prefix(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// What the `I` keyspace says of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdEntry {
    pub position: Position,
    pub kind: Kind,
    pub retracted: bool,
    pub timeline: TimelineSlug,
}

impl IdEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(10 + self.timeline.as_str().len());
        v.extend_from_slice(&self.position.to_be_bytes());
        v.push(self.kind.tag());
        v.push(u8::from(self.retracted));
        v.extend_from_slice(self.timeline.as_str().as_bytes());
        v
    }

    pub fn decode(bytes: &[u8]) -> Option<IdEntry> {
        let position = u64_prefix(bytes)?;
        let kind = Kind::from_tag(*bytes.get(8)?)?;
        let retracted = *bytes.get(9)? != 0;
        let timeline = TimelineSlug::new(std::str::from_utf8(bytes.get(10..)?).ok()?).ok()?;
        Some(IdEntry {
            position,
            kind,
            retracted,
            timeline,
        })
    }
}

/// The filter index keys of an event.
pub fn event_tags(event: &NewEvent, position: Position) -> Vec<Vec<u8>> {
    let mut out = vec![
        tag(DIM_TIMELINE, event.timeline.as_str().as_bytes(), position),
        tag(DIM_KIND, &kind_value(event.kind()), position),
    ];
    for party in event.parties() {
        out.push(tag(DIM_PARTY, party.as_str().as_bytes(), position));
    }
    for issue in &event.issues {
        out.push(tag(DIM_ISSUE, issue.as_str().as_bytes(), position));
    }
    if matches!(event.kind(), Kind::Retraction | Kind::Correction) {
        out.push(tag(DIM_PARTY, WILDCARD, position));
        out.push(tag(DIM_ISSUE, WILDCARD, position));
    }
    out
}
