//! The key layout of the index tree: every keyspace in one sled tree, with the records
//! themselves in the segment files (see `segments`) and the id index beside them (see `ids`).
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `R` | event id (16 bytes) of a retracted event | position of its retraction (u64 BE) |
//! | `P` | dimension, value, 0, first position (u64 BE) | a block of the term's posting list (see `postings`) |
//! | `M` | name | metadata (`format`; `checkpoint`: the mark of the last checkpoint) |
//!
//! The posting lists' dimensions are the timeline (whose list also gives each event's version),
//! the parties, the issues and the kind.
//!
//! Every entry says which position it is about, and readers ignore entries past the head they
//! read at: an entry written for a record that a crash then took away (a copy whose records are
//! not synced per group) is invisible, and is written again, the same, when that record comes
//! back. So the index never needs to be rolled back; recovery only writes what is missing.
//!
//! Slugs and codes never contain a 0 byte, so `value, 0` ends a prefix exactly.

use chancery_domain::{EventId, EventView, Kind, Position, RecordedEvent, TimelineSlug};
use chancery_store::sequencer;

/// Format 2's id entries (see `upgrade`).
pub const ID: u8 = b'I';
/// Retraction marks: a retracted event's id, and where its retraction is.
pub const RETRACTION: u8 = b'R';
pub const POSTINGS: u8 = b'P';

/// The posting lists' dimensions.
pub const DIM_TIMELINE: u8 = b't';
pub const DIM_PARTY: u8 = b'p';
pub const DIM_ISSUE: u8 = b'i';
pub const DIM_KIND: u8 = b'k';

/// The party and issue value under which retractions and corrections are listed, so that party
/// and issue filters find them (see `chancery_store::filter`).
pub const WILDCARD: &[u8] = b"*";

/// The on-disk format of this layout; stored under `M format`. Format 1 kept the records in the
/// tree and a write-ahead log beside it, format 2 the id index (see `upgrade`).
pub const FORMAT: u64 = 3;

pub const META_FORMAT: &[u8] = b"Mformat";

/// The mark of the last checkpoint (`segments::Mark`): how far the index and the segments'
/// offsets are durable.
pub const META_CHECKPOINT: &[u8] = b"Mcheckpoint";

/// The key of an event's retraction mark.
pub fn retraction(id: &EventId) -> [u8; 17] {
    let mut k = [RETRACTION; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// The prefix of a term's posting list.
pub fn postings(dimension: u8, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 3);
    k.push(POSTINGS);
    k.push(dimension);
    k.extend_from_slice(value);
    k.push(0);
    k
}

pub fn kind_value(kind: Kind) -> [u8; 1] {
    [kind.tag()]
}

/// Reads a big-endian u64 from the last 8 bytes of a key or the first 8 of a value.
pub fn u64_suffix(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.get(bytes.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn u64_prefix(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// What the index says of an event: where it is (the id index), what it is (its record), and
/// whether it was retracted (its `R` mark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdEntry {
    pub position: Position,
    pub kind: Kind,
    /// The position of the retraction that withdrew it, if any.
    pub retracted_at: Option<Position>,
    pub timeline: TimelineSlug,
}

impl IdEntry {
    /// What the sequencer needs of it, as the log stood at `head`.
    pub fn as_of(&self, head: Position) -> sequencer::IdEntry {
        sequencer::IdEntry {
            position: self.position,
            kind: self.kind,
            timeline: self.timeline.clone(),
            retracted: self.retracted_at.is_some_and(|r| r <= head),
        }
    }
}

/// The posting-list entries of one record: its position in the list of each of its terms (the
/// id index is the segments', and a retraction's mark on its target is the caller's).
pub fn record_postings(
    record: &RecordedEvent,
    view: &EventView<'_>,
    postings_of: &mut Vec<(Vec<u8>, Position)>,
) {
    let position = record.position();
    postings_of.push((postings(DIM_TIMELINE, view.timeline.as_bytes()), position));
    postings_of.push((postings(DIM_KIND, &kind_value(record.kind())), position));
    let mut parties: Vec<&str> = Vec::new();
    for (party, _) in view.actors().chain(view.targets()) {
        if !parties.contains(&party) {
            parties.push(party);
            postings_of.push((postings(DIM_PARTY, party.as_bytes()), position));
        }
    }
    for issue in view.issues() {
        postings_of.push((postings(DIM_ISSUE, issue.as_bytes()), position));
    }
    if matches!(record.kind(), Kind::Retraction | Kind::Correction) {
        postings_of.push((postings(DIM_PARTY, WILDCARD), position));
        postings_of.push((postings(DIM_ISSUE, WILDCARD), position));
    }
}
